//! Compiles the protobuf definitions in `proto/` (the ones containerd-client
//! does not provide) with prost. Every `.proto` file there is compiled; each
//! package becomes a module in `src/proto.rs`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<PathBuf> = Vec::new();
    // git keeps no empty folder: a checkout without own messages has no `proto/`.
    let entries = match std::fs::read_dir("proto") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        entries => entries?,
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    prost_build::Config::new().compile_protos(&files, &["proto"])?;
    Ok(())
}
