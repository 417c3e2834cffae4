//! `file` and `glob`: copying files an operator names into the bundle.
//!
//! Operators point these at paths on a node that may hold secrets and
//! special files, so the copy is conservative: a path is resolved (symlinks
//! followed) and copied only when its real path stays under the spec's
//! `roots` (by default the folder each path or pattern names); sockets, fifos
//! and devices are never opened; `*.key` files and files holding a PEM
//! private key block are left out. Everything left out is recorded as a cut
//! with the reason, so the manifest says why a file is missing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::limit::{self, DEFAULT_MAX_BYTES};
use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::bundle::manifest::Cut;
use crate::bundle::redact;
use crate::spec::Spec;

/// At most this many files per `glob` spec unless it says.
const DEFAULT_MAX_FILES: usize = 200;

/// `file` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileParams {
    /// Absolute paths of the files to copy.
    pub paths: Vec<String>,
    /// Folders the real paths must stay under; default: each path's folder.
    #[serde(default)]
    pub roots: Vec<String>,
    pub max_bytes: Option<u64>,
    #[serde(default = "yes")]
    pub redact: bool,
}

/// `glob` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobParams {
    /// Absolute glob patterns (`/etc/cni/net.d/*`).
    pub patterns: Vec<String>,
    /// Folders the real paths must stay under; default: each pattern's
    /// folder before its first wildcard.
    #[serde(default)]
    pub roots: Vec<String>,
    pub max_bytes: Option<u64>,
    pub max_files: Option<usize>,
    #[serde(default = "yes")]
    pub redact: bool,
}

fn yes() -> bool {
    true
}

/// Checks `file` parameters.
pub fn check_file(params: &FileParams) -> Result<(), String> {
    if params.paths.is_empty() {
        return Err("paths must name at least one file".into());
    }
    check_absolute(params.paths.iter().chain(&params.roots))
}

/// Checks `glob` parameters.
pub fn check_glob(params: &GlobParams) -> Result<(), String> {
    if params.patterns.is_empty() {
        return Err("patterns must name at least one pattern".into());
    }
    for pattern in &params.patterns {
        glob::Pattern::new(pattern).map_err(|err| format!("pattern {pattern:?}: {err}"))?;
    }
    check_absolute(params.patterns.iter().chain(&params.roots))
}

fn check_absolute<'a>(mut paths: impl Iterator<Item = &'a String>) -> Result<(), String> {
    match paths.find(|p| !p.starts_with('/')) {
        Some(path) => Err(format!("{path:?} is not an absolute path")),
        None => Ok(()),
    }
}

/// Runs a `file` spec.
pub async fn collect_file(
    ctx: &Context,
    spec: &Spec,
    out: &Output,
) -> Result<Outcome, CollectError> {
    let params: FileParams = super::decode_params(&spec.params).expect("checked when loaded");
    let roots = if params.roots.is_empty() {
        params.paths.iter().map(|p| parent(p)).collect()
    } else {
        params.roots.clone()
    };
    let paths: Vec<PathBuf> = params.paths.iter().map(PathBuf::from).collect();
    let max = params.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    copy(paths, roots, max, params.redact && ctx.redact, out).await
}

/// Runs a `glob` spec.
pub async fn collect_glob(
    ctx: &Context,
    spec: &Spec,
    out: &Output,
) -> Result<Outcome, CollectError> {
    let params: GlobParams = super::decode_params(&spec.params).expect("checked when loaded");
    let roots = if params.roots.is_empty() {
        params.patterns.iter().map(|p| literal_prefix(p)).collect()
    } else {
        params.roots.clone()
    };
    let max_files = params.max_files.unwrap_or(DEFAULT_MAX_FILES);
    let patterns = params.patterns.clone();
    let paths = tokio::task::spawn_blocking(move || expand(&patterns, max_files))
        .await
        .expect("expanding globs does not panic");
    if paths.is_empty() {
        return Ok(Outcome::Skipped(format!(
            "no file matches {}",
            params.patterns.join(", ")
        )));
    }
    let max = params.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    copy(paths, roots, max, params.redact && ctx.redact, out).await
}

/// Every path matching `patterns`, sorted, at most `max_files`.
pub fn expand(patterns: &[String], max_files: usize) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = patterns
        .iter()
        .filter_map(|p| glob::glob(p).ok())
        .flat_map(|paths| paths.flatten())
        .collect();
    paths.sort();
    paths.dedup();
    paths.truncate(max_files);
    paths
}

/// What reading one source path gave.
enum Read {
    Copy {
        path: PathBuf,
        data: Vec<u8>,
        size: u64,
    },
    Left {
        path: PathBuf,
        why: String,
    },
    Missing,
}

async fn copy(
    paths: Vec<PathBuf>,
    roots: Vec<String>,
    max: u64,
    redacting: bool,
    out: &Output,
) -> Result<Outcome, CollectError> {
    let wanted: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let reads = tokio::task::spawn_blocking(move || {
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .collect();
        paths
            .into_iter()
            .map(|path| read_one(path, &roots, max))
            .collect::<Vec<_>>()
    })
    .await
    .expect("reading files does not panic");

    let folder = out.base().ends_with('/');
    let mut copied = 0;
    for read in reads {
        match read {
            Read::Copy { path, data, size } => {
                let name = bundle_name(&path);
                let name = folder.then_some(name.as_str());
                if !folder && copied > 0 {
                    break;
                }
                limit::put_capped(out, name, data, size, max, redacting).await?;
                copied += 1;
            }
            Read::Left { path, why } => out.note_cut(Cut {
                path: path.display().to_string(),
                original_bytes: 0,
                kept_bytes: 0,
                reason: why,
            }),
            Read::Missing => {}
        }
    }
    if copied == 0 && out.cuts().is_empty() {
        return Ok(Outcome::Skipped(format!(
            "no such file: {}",
            wanted.join(", ")
        )));
    }
    Ok(Outcome::Done)
}

fn read_one(path: PathBuf, roots: &[PathBuf], max: u64) -> Read {
    let left = |why: String| Read::Left {
        path: path.clone(),
        why,
    };
    if std::fs::symlink_metadata(&path).is_err() {
        return Read::Missing;
    }
    let real = match std::fs::canonicalize(&path) {
        Ok(real) => real,
        Err(err) => return left(format!("cannot resolve: {err}")),
    };
    if !roots.iter().any(|root| real.starts_with(root)) {
        return left(format!(
            "resolves to {} outside the allowed roots",
            real.display()
        ));
    }
    let meta = match std::fs::metadata(&real) {
        Ok(meta) => meta,
        Err(err) => return left(format!("cannot stat: {err}")),
    };
    if !meta.file_type().is_file() {
        return left("not a regular file (socket, fifo, device or folder)".into());
    }
    if is_key_name(&path) || is_key_name(&real) {
        return left("private key file (*.key), never copied".into());
    }
    match limit::read_tail(&real, max) {
        Ok((data, size)) if redact::holds_private_key(&data) => {
            let _ = size;
            left("holds a private key block, never copied".into())
        }
        Ok((data, size)) => Read::Copy { path, data, size },
        Err(err) => left(format!("cannot read: {err}")),
    }
}

fn is_key_name(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "key")
}

/// The bundle name of a source file: its absolute path without the `/`.
fn bundle_name(path: &Path) -> String {
    let text = path.display().to_string();
    let name = text.trim_start_matches('/');
    let safe: String = name
        .chars()
        .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
        .collect();
    safe.split('/')
        .map(|part| {
            if part == ".." || part == "." {
                "_"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn parent(path: &str) -> String {
    Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/".into())
}

/// The folder of a pattern before its first wildcard.
fn literal_prefix(pattern: &str) -> String {
    let cut = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let literal = &pattern[..cut];
    match literal.rfind('/') {
        Some(0) | None => "/".into(),
        Some(at) => literal[..at].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_default_to_the_literal_folder() {
        assert_eq!(literal_prefix("/etc/cni/net.d/*.conf"), "/etc/cni/net.d");
        assert_eq!(literal_prefix("/etc/x*/y"), "/etc");
        assert_eq!(literal_prefix("/*"), "/");
        assert_eq!(parent("/etc/containerd/config.toml"), "/etc/containerd");
    }

    #[test]
    fn leaves_out_escaping_links_special_files_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("out")).unwrap();
        std::fs::write(root.join("tls.key"), "x").unwrap();
        std::fs::write(
            root.join("pem.txt"),
            "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(root.join("ok.toml"), "a = 1\n").unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(root.join("s.sock")).unwrap();
        let roots = vec![root.clone()];
        for name in ["out", "tls.key", "pem.txt", "s.sock"] {
            assert!(
                matches!(read_one(root.join(name), &roots, 100), Read::Left { .. }),
                "{name}"
            );
        }
        assert!(matches!(
            read_one(root.join("ok.toml"), &roots, 100),
            Read::Copy { .. }
        ));
        assert!(matches!(
            read_one(root.join("none"), &roots, 100),
            Read::Missing
        ));
    }
}
