//! A container's cgroup, read from the kernel's cgroup filesystem.
//!
//! `runc ps` answers with the pids listed in the container's cgroup; reading
//! that file directly gives the same answer without starting a process per
//! container, which matters on a node with hundreds of them.

use serde_json::Value;

/// Where the cgroup filesystems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The hierarchies that list a container's processes, tried in order: the
/// unified (v2) root, then the v1 `pids` and `memory` controllers, then a
/// hybrid host's v2 mount.
const PROCS_HIERARCHIES: [&str; 4] = ["", "pids/", "memory/", "unified/"];

/// The cgroup path an OCI spec asks for, when it is a plain cgroupfs path.
/// systemd-managed paths (`slice:prefix:name`) name units, not files.
pub fn spec_path(spec: &Value) -> Option<String> {
    let path = spec["linux"]["cgroupsPath"].as_str()?;
    (path.starts_with('/') && !path.contains(':')).then(|| path.to_string())
}

/// [`spec_path`] of a spec still in its JSON bytes.
pub fn spec_path_of(spec: &[u8]) -> Option<String> {
    spec_path(&serde_json::from_slice(spec).ok()?)
}

/// The pids in the cgroup at `path`, sorted; `None` when no hierarchy has
/// that cgroup (removed, or the path lives in another mount namespace).
pub fn procs(path: &str) -> Option<Vec<u32>> {
    let relative = path.trim_start_matches('/');
    PROCS_HIERARCHIES.iter().find_map(|hierarchy| {
        let file = format!("{CGROUP_ROOT}/{hierarchy}{relative}/cgroup.procs");
        let text = std::fs::read_to_string(file).ok()?;
        let mut pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        pids.sort_unstable();
        Some(pids)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_kept_and_systemd_paths_are_not() {
        let spec = |path: &str| serde_json::json!({"linux": {"cgroupsPath": path}});
        assert_eq!(spec_path(&spec("/bench/c1")).as_deref(), Some("/bench/c1"));
        assert_eq!(spec_path(&spec("system.slice:cri-containerd:abc")), None);
        assert_eq!(spec_path(&spec("relative/path")), None);
        assert_eq!(spec_path(&serde_json::json!({"linux": {}})), None);
        assert_eq!(spec_path_of(b"not json"), None);
    }

    #[test]
    fn own_cgroup_lists_this_process() {
        // Every process is in some cgroup; /proc/self/cgroup names it.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        // The v1 pids hierarchy is tried before memory, so name the pids cgroup there;
        // on a v2 host the one line has no controllers.
        let path_of = |wanted: &str| {
            own.lines().find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                (controllers == wanted).then(|| path.to_string())
            })
        };
        let path = path_of("pids")
            .or_else(|| path_of(""))
            .expect("a cgroup that lists processes");
        let pids = procs(&path).expect("own cgroup is readable");
        assert!(pids.contains(&std::process::id()), "{pids:?}");
        assert_eq!(procs("/no/such/cgroup/rctr-diag"), None);
    }
}
