//! The host as a source of data: sysinfo for machine facts, `/proc` for
//! finding which process serves a unix socket and how it was started.
//!
//! Nothing here talks to containerd, so it keeps working when the daemon
//! hangs. The socket owner is found through the kernel's socket table
//! (`/proc/net/unix`) and each process's descriptors, which identifies the
//! right daemon even when several run on one machine.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The config file containerd reads when its command line names none.
pub const DEFAULT_CONFIG: &str = "/etc/containerd/config.toml";
/// The spellings of containerd's config flag its flag parser accepts.
const CONFIG_FLAGS: [&str; 4] = ["--config", "-config", "-c", "--c"];

/// Finds the pid of the process that holds the listening unix socket bound
/// at `path`, or `None` when no process does.
pub fn socket_owner(path: &Path) -> std::io::Result<Option<u32>> {
    let inodes = listening_inodes(path)?;
    if inodes.is_empty() {
        return Ok(None);
    }

    let mut pids: Vec<u32> = fs::read_dir("/proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            if inode.is_some_and(|inode| inodes.contains(&inode)) {
                return Ok(Some(pid));
            }
        }
    }
    Ok(None)
}

/// Inodes of listening sockets bound at `path`, from `/proc/net/unix`.
fn listening_inodes(path: &Path) -> std::io::Result<HashSet<u64>> {
    // A socket moved or replaced since binding keeps its old name in the
    // table; the inode of the file itself is not the socket's inode, so the
    // name is what ties them.
    let wanted = path.to_string_lossy();
    let table = fs::read_to_string("/proc/net/unix")?;
    let mut inodes = HashSet::new();
    for line in table.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || fields[7..].join(" ") != wanted {
            continue;
        }
        let listening = fields[3] == "00010000";
        if let (true, Ok(inode)) = (listening, fields[6].parse()) {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// The paths of every listening unix socket in the kernel's table: a path
/// not in it has no process serving it.
pub fn listening_unix_paths() -> std::io::Result<HashSet<String>> {
    let table = fs::read_to_string("/proc/net/unix")?;
    let mut paths = HashSet::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 8 && fields[3] == "00010000" {
            paths.insert(fields[7..].join(" "));
        }
    }
    Ok(paths)
}

/// The number of open descriptors of a process, if readable.
pub fn open_fds(pid: u32) -> Option<usize> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

/// The owner uid of a process, if readable.
pub fn process_uid(pid: u32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|meta| meta.uid())
}

/// The arguments process `pid` was started with, if readable.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
    )
}

/// The value of the flag spelled as any of `names` in a command line, given
/// as `NAME VALUE` or `NAME=VALUE`. As in containerd's flag parser the last
/// one wins and `--` ends the flags.
pub fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    let mut found = None;
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        for name in names {
            if arg == name {
                if let Some(value) = args.next() {
                    found = Some(value.clone());
                }
                break;
            }
            if let Some(value) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                found = Some(value.to_string());
                break;
            }
        }
    }
    found
}

/// The config file a containerd command line names (`--config`, `-c`). A
/// relative path is relative to the daemon's working folder, read from
/// `/proc/<pid>/cwd` when `pid` is given.
pub fn config_in(args: &[String], pid: Option<u32>) -> Option<PathBuf> {
    let path = PathBuf::from(flag_value(args, &CONFIG_FLAGS)?);
    match pid {
        Some(pid) if path.is_relative() => {
            let cwd = fs::read_link(format!("/proc/{pid}/cwd"))
                .unwrap_or_else(|_| PathBuf::from(format!("/proc/{pid}/cwd")));
            Some(cwd.join(path))
        }
        _ => Some(path),
    }
}

/// The config file daemon process `pid` was started with, when its command
/// line names one.
pub fn daemon_config(pid: u32) -> Option<PathBuf> {
    config_in(&cmdline(pid)?, Some(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn config_flag_in_every_spelling_the_daemon_takes() {
        for line in [
            "containerd --config /a.toml",
            "containerd -c /a.toml",
            "containerd -config /a.toml",
            "containerd --c /a.toml",
            "containerd --config=/a.toml",
            "containerd -c=/a.toml",
            "containerd --log-level debug --config /a.toml --address /s",
        ] {
            assert_eq!(
                config_in(&args(line), None),
                Some("/a.toml".into()),
                "{line}"
            );
        }
        assert_eq!(config_in(&args("containerd --log-level debug"), None), None);
        assert_eq!(config_in(&args("containerd --config"), None), None);
        assert_eq!(config_in(&args("containerd -cfoo"), None), None);
        assert_eq!(config_in(&args("containerd --cgroup x"), None), None);
        assert_eq!(config_in(&args("containerd --conf /a.toml"), None), None);
    }

    #[test]
    fn the_last_config_flag_wins_and_double_dash_ends_the_flags() {
        let line = "containerd -c /first.toml --config=/second.toml";
        assert_eq!(config_in(&args(line), None), Some("/second.toml".into()));
        let line = "containerd -c /first.toml -- --config /after.toml";
        assert_eq!(config_in(&args(line), None), Some("/first.toml".into()));
    }

    #[test]
    fn a_relative_config_is_read_from_the_daemons_working_folder() {
        let cwd = std::env::current_dir().unwrap();
        let line = "containerd --config conf/c.toml";
        let found = config_in(&args(line), Some(std::process::id()));
        assert_eq!(found, Some(cwd.join("conf/c.toml")));
    }

    #[test]
    fn finds_this_process_as_owner_of_its_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(socket_owner(&path).unwrap(), Some(std::process::id()));
    }

    #[test]
    fn no_owner_for_an_unbound_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(socket_owner(&dir.path().join("none.sock")).unwrap(), None);
    }
}
