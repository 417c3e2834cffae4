//! containerd's state directory on disk: where it is, and the task bundle
//! directories the runtime keeps there for each running task.
//!
//! Everything here reads files only, so it works while the daemon hangs or
//! is down. Task bundles hold a fifo (`log`) and a mount (`rootfs`): only
//! regular files named here are opened, and nothing is walked below the
//! task directory.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::source::host;

/// Where containerd keeps its state when nothing says otherwise.
pub const DEFAULT_STATE: &str = "/run/containerd";
/// The runtime v2 plugin's folder under the state dir.
pub const TASK_DIR: &str = "io.containerd.runtime.v2.task";
/// The largest task bundle file read; OCI specs are a few KiB.
const MAX_FILE: u64 = 4 << 20;

/// The state directory and how it was found.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub path: PathBuf,
    pub found_by: String,
}

/// Finds the state dir: `flag` if given, else from the command line (and
/// config file) of the daemon listening on `address`, else the default.
pub fn locate(flag: Option<&Path>, address: &Path) -> StateDir {
    if let Some(path) = flag {
        return StateDir {
            path: path.to_path_buf(),
            found_by: "--state-dir".into(),
        };
    }
    let from_daemon = host::socket_owner(address)
        .ok()
        .flatten()
        .and_then(|pid| from_command_line(&host::cmdline(pid)?, Some(pid)));
    from_daemon.unwrap_or_else(|| StateDir {
        path: PathBuf::from(DEFAULT_STATE),
        found_by: "default".into(),
    })
}

/// Reads the state dir from containerd's arguments: `--state`, else the
/// `state` key of the `--config`/`-c` file (or the default config file).
/// `pid` is the daemon's, for a config path relative to its working folder.
fn from_command_line(args: &[String], pid: Option<u32>) -> Option<StateDir> {
    if let Some(state) = host::flag_value(args, &["--state", "-state"]) {
        return Some(StateDir {
            path: PathBuf::from(state),
            found_by: "daemon --state".into(),
        });
    }
    let config = host::config_in(args, pid).unwrap_or_else(|| PathBuf::from(host::DEFAULT_CONFIG));
    let text = fs::read_to_string(&config).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let state = table.get("state")?.as_str()?;
    Some(StateDir {
        path: PathBuf::from(state),
        found_by: format!("state in {}", config.display()),
    })
}

/// A task bundle directory: `<state>/io.containerd.runtime.v2.task/<ns>/<id>`.
#[derive(Debug, Clone)]
pub struct TaskDir {
    pub namespace: String,
    pub id: String,
    pub path: PathBuf,
}

/// Lists every task bundle directory under `state`, sorted by namespace
/// and id; none when the runtime folder does not exist.
pub fn task_dirs(state: &Path) -> std::io::Result<Vec<TaskDir>> {
    let root = state.join(TASK_DIR);
    let namespaces = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut dirs = Vec::new();
    for ns in namespaces {
        let ns = ns?;
        if !ns.file_type()?.is_dir() {
            continue;
        }
        let namespace = ns.file_name().to_string_lossy().into_owned();
        for task in fs::read_dir(ns.path())? {
            let task = task?;
            if task.file_type()?.is_dir() {
                dirs.push(TaskDir {
                    namespace: namespace.clone(),
                    id: task.file_name().to_string_lossy().into_owned(),
                    path: task.path(),
                });
            }
        }
    }
    dirs.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    Ok(dirs)
}

/// One entry of a task directory, with its file type.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// file, dir, fifo, socket, symlink or other.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Lists a task directory's entries without descending into any.
pub fn list_entries(dir: &Path) -> std::io::Result<Vec<DirEntry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let kind = if kind.is_file() {
            "file"
        } else if kind.is_dir() {
            "dir"
        } else if kind.is_fifo() {
            "fifo"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_symlink() {
            "symlink"
        } else {
            "other"
        };
        entries.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind: kind.into(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Reads a small regular file of a task dir; `Ok(None)` when it is absent.
/// Anything but a regular file (the `log` fifo) is refused, never opened.
pub fn read_small_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, more than the {MAX_FILE} read", meta.len()),
        ));
    }
    fs::read(path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn state_flag_wins_in_both_spellings() {
        let found = from_command_line(&args(&["containerd", "--state", "/s1"]), None).unwrap();
        assert_eq!(found.path, Path::new("/s1"));
        let found = from_command_line(&args(&["containerd", "--state=/s2"]), None).unwrap();
        assert_eq!(found.path, Path::new("/s2"));
    }

    #[test]
    fn state_comes_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        fs::write(
            &config,
            "version = 2\nstate = \"/x/state\"\n[grpc]\naddress = \"/a\"\n",
        )
        .unwrap();
        let config = config.to_str().unwrap();
        let found = from_command_line(&args(&["containerd", "-c", config]), None).unwrap();
        assert_eq!(found.path, Path::new("/x/state"));
        assert!(found.found_by.contains(config));
        let with_eq = format!("--config={config}");
        let found = from_command_line(&args(&["containerd", &with_eq]), None).unwrap();
        assert_eq!(found.path, Path::new("/x/state"));
    }

    #[test]
    fn the_log_fifo_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("log");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated string for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(read_small_file(&fifo).is_err());
        assert_eq!(read_small_file(&dir.path().join("absent")).unwrap(), None);
        let listed = list_entries(dir.path()).unwrap();
        assert_eq!(listed[0].kind, "fifo");
    }
}
