//! The host as a source of data: sysinfo for machine facts, `/proc` for
//! finding which process serves a unix socket.
//!
//! Nothing here talks to containerd, so it keeps working when the daemon
//! hangs. The socket owner is found through the kernel's socket table
//! (`/proc/net/unix`) and each process's descriptors, which identifies the
//! right daemon even when several run on one machine.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
