//! `containerd-config`: the daemon's config file and the files it imports,
//! with credentials redacted.
//!
//! The file that matters is the one the running daemon was started with, so
//! it is taken from that process's command line (`--config`/`-c`), found by
//! the socket it listens on; only when that fails is the default
//! `/etc/containerd/config.toml` read. `imports` entries (paths or globs,
//! relative to the config's folder) are followed one level, as containerd
//! does for the top file's imports. Registry credentials are redacted before
//! anything reaches the bundle, and `source.json` says which file was read
//! and why.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::expand;
use super::limit::{self, DEFAULT_MAX_BYTES};
use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::source::host;

/// At most this many imported files.
const MAX_IMPORTS: usize = 64;

#[derive(Serialize)]
struct Source {
    config: String,
    found_by: String,
    pid: Option<u32>,
    imports: Vec<String>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let address = ctx.containerd.address().to_path_buf();
    let (path, found_by, pid) = tokio::task::spawn_blocking(move || locate(&address))
        .await
        .expect("reading /proc does not panic");
    if !path.is_file() {
        return Ok(Outcome::Skipped(format!(
            "no config file at {} ({found_by}); containerd runs on its defaults",
            path.display()
        )));
    }

    let read_path = path.clone();
    let (data, size) =
        tokio::task::spawn_blocking(move || limit::read_tail(&read_path, DEFAULT_MAX_BYTES))
            .await
            .expect("reading a file does not panic")
            .map_err(|source| CollectError::Host {
                what: format!("containerd's config {}", path.display()),
                source,
            })?;
    let imports = imports_of(&path, &String::from_utf8_lossy(&data));
    limit::put_capped(
        out,
        Some("config.toml"),
        data,
        size,
        DEFAULT_MAX_BYTES,
        true,
    )
    .await?;

    let mut copied = Vec::new();
    for import in imports {
        let read = import.clone();
        let result =
            tokio::task::spawn_blocking(move || limit::read_tail(&read, DEFAULT_MAX_BYTES))
                .await
                .expect("reading a file does not panic");
        let Ok((data, size)) = result else { continue };
        let name = format!(
            "imports/{}",
            import.display().to_string().trim_start_matches('/')
        );
        if crate::spec::check_bundle_path(&name).is_err() {
            continue;
        }
        limit::put_capped(out, Some(&name), data, size, DEFAULT_MAX_BYTES, ctx.redact).await?;
        copied.push(import.display().to_string());
    }

    let source = Source {
        config: path.display().to_string(),
        found_by,
        pid,
        imports: copied,
    };
    let json = serde_json::to_vec_pretty(&source).expect("a source encodes");
    out.put_in("source.json", json).await?;
    Ok(Outcome::Done)
}

/// The config path of the daemon on `address`, how it was found, its pid.
fn locate(address: &Path) -> (PathBuf, String, Option<u32>) {
    let Ok(Some(pid)) = host::socket_owner(address) else {
        return (
            host::DEFAULT_CONFIG.into(),
            "default path: no process found on the socket".into(),
            None,
        );
    };
    match host::daemon_config(pid) {
        Some(path) => (path, format!("--config of process {pid}"), Some(pid)),
        None => (
            host::DEFAULT_CONFIG.into(),
            format!("default path: process {pid} has no --config"),
            Some(pid),
        ),
    }
}

/// The files a config's `imports` name, globs expanded.
fn imports_of(config: &Path, text: &str) -> Vec<PathBuf> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(imports) = table.get("imports").and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    let dir = config.parent().unwrap_or(Path::new("/"));
    let patterns: Vec<String> = imports
        .iter()
        .filter_map(|v| v.as_str())
        .map(|p| dir.join(p).display().to_string())
        .collect();
    expand(&patterns, MAX_IMPORTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_relative_and_globbed_imports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/a.toml"), "").unwrap();
        std::fs::write(dir.path().join("conf.d/b.toml"), "").unwrap();
        let config = dir.path().join("config.toml");
        let found = imports_of(&config, "version = 2\nimports = [\"conf.d/*.toml\"]\n");
        assert_eq!(found.len(), 2);
    }
}
