//! The `rctr-diag` binary: parses the command line, starts logging, hands
//! over to the library and turns the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rctr_diag::cli::Cli::parse();
    rctr_diag::cli::init_logging(cli.verbosity());
    match rctr_diag::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rctr-diag: {err:#}");
            rctr_diag::cli::Exit::NoBundle.into()
        }
    }
}
