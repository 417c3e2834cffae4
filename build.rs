//! Compiles the protobuf definitions in `proto/` (the ones containerd-client
//! does not provide) with prost. Every `.proto` file there is compiled; each
//! package becomes a module in `src/proto.rs`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir("proto")? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    prost_build::Config::new()
        // Metrics go into the bundle as JSON.
        .type_attribute(".io.containerd.cgroups", "#[derive(serde::Serialize)]")
        .type_attribute(".containerd.runc", "#[derive(serde::Serialize)]")
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
