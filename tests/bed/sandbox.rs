//! The demo: a real `rctr-diag collect` against a sandbox containerd.
//!
//! Starts a private containerd from the test bed (debug socket on), runs a
//! few real containers in it (one of them exits with an error), runs
//! `rctr-diag collect` against it, prints the bundle's summary, and tears
//! everything down. Run it through `tests/bed/demo`, which installs the test
//! bed and builds the binaries first.
//!
//! Usage: `sandbox [--series 1.6|1.7|2.1] [-- extra rctr-diag collect flags]`

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Daemon, DaemonOptions, Series};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut series = Series::V2_1;
    if let Some(at) = args.iter().position(|a| a == "--series") {
        let value = args.get(at + 1).cloned().unwrap_or_default();
        series = match value.as_str() {
            "1.6" => Series::V1_6,
            "1.7" => Series::V1_7,
            "2.1" => Series::V2_1,
            other => {
                eprintln!("sandbox: --series takes 1.6, 1.7 or 2.1, not {other:?}");
                std::process::exit(2);
            }
        };
        args.drain(at..(at + 2).min(args.len()));
    }
    args.retain(|a| a != "--");

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = repo.join("target/demo");
    std::fs::create_dir_all(&out).expect("create target/demo");
    let exe = std::env::current_exe().expect("own path");
    let rctr_diag = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("rctr-diag"))
        .expect("the rctr-diag binary beside the examples folder");

    eprintln!("sandbox: starting containerd {series:?}");
    let daemon = Daemon::start_with(series, &DaemonOptions::new());
    for (id, command) in [
        ("web", vec!["sleep", "3600"]),
        ("worker", vec!["sleep", "3600"]),
        ("failing-job", vec!["sh", "-c", "exit 3"]),
    ] {
        daemon.run_container("demo", id, &command);
    }
    eprintln!(
        "sandbox: containerd at {} with 3 containers",
        daemon.address.display()
    );

    let run = Command::new(&rctr_diag)
        .arg("collect")
        .arg("--address")
        .arg(&daemon.address)
        .arg("--debug-address")
        .arg(&daemon.debug_address)
        .arg("--output")
        .arg(&out)
        .args(&args)
        .output()
        .expect("run rctr-diag");
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let code = run.status.code().unwrap_or(2);
    let Some(bundle) = stdout
        .lines()
        .last()
        .filter(|line| line.ends_with(".tar.gz"))
    else {
        print!("{stdout}");
        eprintln!("sandbox: rctr-diag wrote no bundle (exit {code})");
        drop(daemon);
        std::process::exit(code);
    };

    let summary = Command::new("tar")
        .args(["-xzOf", bundle, "--wildcards", "*/summary.md"])
        .output()
        .expect("run tar");
    println!("{}", String::from_utf8_lossy(&summary.stdout));
    println!("bundle: {bundle}");
    println!("rctr-diag exit code: {code}");
    drop(daemon);
}
