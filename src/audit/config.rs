//! The daemon's config file as containerd reads it: which file, and the
//! files it imports.
//!
//! The file is the one named by `--config`, else the one on the daemon's
//! command line (`--config`/`-c`, found through the process that holds the
//! socket), else containerd's default path. `imports` are resolved the way
//! containerd resolves them: relative to the importing file, globs expanded,
//! each file loaded once. Every file is kept apart with its own `version`,
//! because containerd migrates each by that version and a finding should
//! name the file to edit.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::host;

/// How the config path was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// `--config` of rctr-diag.
    Flag,
    /// The daemon's own command line.
    DaemonCommandLine,
    /// containerd's default path.
    Default,
}

/// One loaded config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// The file's `version`, 1 when absent.
    pub version: i64,
    pub table: toml::Table,
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read containerd config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd config {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("containerd config {path}: `imports` must be a list of paths")]
    Imports { path: PathBuf },
    #[error("containerd config {path}: bad import pattern {pattern:?}: {message}")]
    Glob {
        path: PathBuf,
        pattern: String,
        message: String,
    },
}

/// Finds the config path of the daemon listening on `address` from its
/// command line, if one is named there.
pub fn from_daemon(address: &Path) -> Option<PathBuf> {
    host::daemon_config(host::socket_owner(address).ok()??)
}

/// Loads `path` and, transitively, every file it imports.
pub fn load(path: &Path) -> Result<Vec<ConfigFile>, ConfigError> {
    let mut files: Vec<ConfigFile> = Vec::new();
    let mut pending = vec![clean(path)];
    while !pending.is_empty() {
        let next = pending.remove(0);
        if files.iter().any(|file| file.path == next) {
            continue;
        }
        let file = load_one(&next)?;
        pending.extend(imports(&file)?);
        files.push(file);
    }
    Ok(files)
}

fn load_one(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|err| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: err.message().to_string(),
    })?;
    let version = table
        .get("version")
        .and_then(toml::Value::as_integer)
        .filter(|v| *v > 0)
        .unwrap_or(1);
    Ok(ConfigFile {
        path: path.to_path_buf(),
        version,
        table,
    })
}

/// The files `file` imports, relative to its folder, globs expanded.
fn imports(file: &ConfigFile) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(value) = file.table.get("imports") else {
        return Ok(Vec::new());
    };
    let bad = || ConfigError::Imports {
        path: file.path.clone(),
    };
    let list = value.as_array().ok_or_else(bad)?;
    let base = file.path.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    for item in list {
        let pattern = item.as_str().ok_or_else(bad)?;
        let full = clean(&base.join(pattern));
        if !pattern.contains(['*', '?', '[']) {
            out.push(full);
            continue;
        }
        let full = full.to_string_lossy().into_owned();
        let glob_error = |message: String| ConfigError::Glob {
            path: file.path.clone(),
            pattern: pattern.to_string(),
            message,
        };
        let mut matches: Vec<PathBuf> = glob::glob(&full)
            .map_err(|err| glob_error(err.to_string()))?
            .filter_map(Result::ok)
            .collect();
        matches.sort();
        out.extend(matches);
    }
    Ok(out)
}

/// Resolves `.` and `..` without touching the filesystem, as containerd's
/// `filepath.Clean` does, so one file reached two ways is loaded once.
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_resolve_relative_with_globs_once() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("config.toml");
        fs::create_dir(dir.path().join("conf.d")).unwrap();
        fs::write(
            &main,
            "version = 2\nimports = [\"conf.d/*.toml\", \"extra.toml\"]\n",
        )
        .unwrap();
        fs::write(dir.path().join("conf.d/b.toml"), "version = 3\n").unwrap();
        fs::write(
            dir.path().join("conf.d/a.toml"),
            "imports = [\"../config.toml\"]\n",
        )
        .unwrap();
        fs::write(dir.path().join("extra.toml"), "version = 2\n").unwrap();

        let files = load(&main).unwrap();
        let names: Vec<(String, i64)> = files
            .iter()
            .map(|f| {
                let rel = f.path.strip_prefix(dir.path()).unwrap_or(&f.path);
                (rel.display().to_string(), f.version)
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("config.toml".into(), 2),
                ("conf.d/a.toml".into(), 1),
                ("conf.d/b.toml".into(), 3),
                ("extra.toml".into(), 2),
            ]
        );
    }

    #[test]
    fn a_missing_import_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("config.toml");
        fs::write(&main, "imports = [\"gone.toml\"]\n").unwrap();
        let err = load(&main).unwrap_err().to_string();
        assert!(err.contains("gone.toml"), "{err}");
    }
}
