//! Tests of the test bed itself: every series boots, imports the image, runs a container,
//! and leaves nothing behind once the daemon is dropped, also after a panic.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, DaemonOptions, IMAGE, Series, shim_pids_for, unique_id};

/// Asserts that a daemon that lived at `dir` with socket `address` left nothing behind.
fn assert_gone(dir: &Path, address: &Path, task_pids: &[u32]) {
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert_eq!(
        shim_pids_for(address),
        Vec::<u32>::new(),
        "shims of {} remain",
        address.display()
    );
    for pid in task_pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "container process {pid} is still alive: {stat}"
        );
    }
}

/// Returns the shim socket a task's bundle names: `address` on 1.x, `bootstrap.json` on 2.x.
fn shim_socket(daemon: &Daemon, ns: &str, id: &str) -> PathBuf {
    let bundle = daemon
        .state
        .join("io.containerd.runtime.v2.task")
        .join(ns)
        .join(id);
    let address = match std::fs::read_to_string(bundle.join("address")) {
        Ok(address) => address,
        Err(_) => {
            let bootstrap = std::fs::read(bundle.join("bootstrap.json")).expect("bootstrap.json");
            let bootstrap: serde_json::Value = serde_json::from_slice(&bootstrap).unwrap();
            bootstrap["address"].as_str().unwrap().to_string()
        }
    };
    PathBuf::from(
        address
            .trim()
            .strip_prefix("unix://")
            .expect("a unix:// address"),
    )
}

/// Returns the pid and status `ctr tasks ls` shows for `id`.
fn task_of(daemon: &Daemon, ns: &str, id: &str) -> Option<(u32, String)> {
    daemon
        .ctr_ns_ok(ns, &["tasks", "ls"])
        .lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap(), f[2].to_string()))
        })
}

fn runs_a_container_and_cleans_up(series: Series) {
    let daemon = Daemon::start(series);
    eprintln!("containerd {series:?} booted in {:?}", daemon.boot_time);

    let version = daemon.ctr_ok(&["version"]);
    let server = version
        .split("Server:")
        .nth(1)
        .expect("ctr version shows the server");
    assert!(
        server.contains(&format!("Version:  {}", series.version_prefix())),
        "unexpected server version for {series:?}:\n{version}"
    );

    let ns = "rctr-bed";
    daemon.import_image(ns);
    assert!(
        daemon
            .ctr_ns_ok(ns, &["images", "ls", "-q"])
            .lines()
            .any(|l| l == IMAGE)
    );

    let id = unique_id("bed");
    daemon.run_container(
        ns,
        &id,
        &["sh", "-c", "echo hello from busybox; exec sleep 3600"],
    );
    let (pid, status) = task_of(&daemon, ns, &id).expect("the task is listed");
    assert_eq!(status, "RUNNING");
    assert!(!daemon.shim_pids().is_empty(), "a shim serves the task");
    let log = daemon.container_log(ns, &id);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("hello from busybox")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no output in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (dir, address) = (daemon.dir.clone(), daemon.address.clone());
    drop(daemon);
    assert_gone(&dir, &address, &[pid]);
}

#[test]
fn v1_6_runs_a_container_and_cleans_up() {
    runs_a_container_and_cleans_up(Series::V1_6);
}

#[test]
fn v1_7_runs_a_container_and_cleans_up() {
    runs_a_container_and_cleans_up(Series::V1_7);
}

#[test]
fn v2_1_runs_a_container_and_cleans_up() {
    runs_a_container_and_cleans_up(Series::V2_1);
}

#[test]
fn a_panicking_test_still_cleans_up() {
    for series in Series::ALL {
        let left = std::sync::Mutex::new(None::<(PathBuf, PathBuf, u32)>);
        let result = std::panic::catch_unwind(|| {
            let daemon = Daemon::start(series);
            let id = unique_id("panic");
            daemon.run_container("default", &id, &["sleep", "3600"]);
            let (pid, _) = task_of(&daemon, "default", &id).unwrap();
            *left.lock().unwrap() = Some((daemon.dir.clone(), daemon.address.clone(), pid));
            panic!("the test fails with a container running");
        });
        assert!(result.is_err());
        let (dir, address, pid) = left.into_inner().unwrap().expect("the daemon started");
        assert_gone(&dir, &address, &[pid]);
    }
}

#[test]
fn a_frozen_daemon_times_out_and_is_still_cleaned_up() {
    let daemon = Daemon::start(Series::V1_7);
    let id = unique_id("frozen");
    daemon.run_container("default", &id, &["sleep", "3600"]);
    let (pid, _) = task_of(&daemon, "default", &id).unwrap();

    daemon.freeze();
    let answer = daemon.ctr_timeout(&["version"], Duration::from_secs(2));
    assert!(answer.is_err(), "a frozen daemon answered: {answer:?}");
    assert!(
        !daemon.shim_pids().is_empty(),
        "the shim outlives a hung daemon"
    );

    let (dir, address) = (daemon.dir.clone(), daemon.address.clone());
    drop(daemon);
    assert_gone(&dir, &address, &[pid]);
}

#[test]
fn shims_of_a_crashed_daemon_are_killed_on_drop() {
    for series in Series::ALL {
        let daemon = Daemon::start(series);
        let id = unique_id("crash");
        daemon.run_container("default", &id, &["sleep", "3600"]);
        let (pid, _) = task_of(&daemon, "default", &id).unwrap();
        let socket = shim_socket(&daemon, "default", &id);
        assert!(socket.exists(), "{} is missing", socket.display());

        daemon.crash();
        assert!(!daemon.is_running());
        assert!(
            !daemon.shim_pids().is_empty(),
            "the shim outlives a crashed daemon"
        );

        let (dir, address) = (daemon.dir.clone(), daemon.address.clone());
        drop(daemon);
        assert_gone(&dir, &address, &[pid]);
        let runc_state = Path::new("/run/containerd/runc/default").join(&id);
        assert!(!runc_state.exists(), "runc still knows {id}");
        assert!(
            !socket.exists(),
            "{series:?}: the shim socket {} remains",
            socket.display()
        );
    }
}

#[test]
fn daemons_run_side_by_side() {
    // Two CRI daemons of one series prove the stream server and NRI do not collide.
    let daemons: Vec<Daemon> = Series::ALL
        .iter()
        .map(|&s| Daemon::start(s))
        .chain((0..2).map(|_| {
            Daemon::start_with(
                Series::V2_1,
                &DaemonOptions {
                    cri: true,
                    ..DaemonOptions::new()
                },
            )
        }))
        .collect();
    for daemon in &daemons {
        let id = unique_id("side");
        daemon.run_container("side", &id, &["sleep", "3600"]);
        assert_eq!(task_of(daemon, "side", &id).unwrap().1, "RUNNING");
        let plugins = daemon.ctr_ok(&["plugins", "ls"]);
        let cri = plugins
            .lines()
            .find(|l| l.contains("io.containerd.grpc.v1 ") && l.contains(" cri "));
        assert_eq!(
            cri.is_some(),
            daemon.options.cri,
            "{:?} CRI plugin: {cri:?}",
            daemon.series
        );
    }
}

#[test]
fn debug_socket_serves_expvar_unless_disabled() {
    let daemon = Daemon::start(Series::V1_6);
    let vars = common::http_get_unix(&daemon.debug_address, "/debug/vars", Duration::from_secs(5))
        .expect("GET /debug/vars");
    assert!(vars.starts_with("HTTP/1.0 200"), "{vars}");
    assert!(vars.contains("\"memstats\""));

    let quiet = Daemon::start_with(
        Series::V2_1,
        &DaemonOptions {
            debug_socket: false,
            ..DaemonOptions::new()
        },
    );
    assert!(!quiet.debug_address.exists());
}

#[test]
fn deprecated_registry_config_lists_deprecations_on_1_7() {
    let daemon = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    let listed = daemon.ctr_ok(&["deprecations", "list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON list");
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "io.containerd.deprecation/cri-registry-configs",
            "io.containerd.deprecation/cri-registry-mirrors"
        ]
    );

    // Without those settings, 1.7 has nothing to list and prints nothing at all.
    let plain = Daemon::start(Series::V1_7);
    assert_eq!(
        plain
            .ctr_ok(&["deprecations", "list", "--format", "json"])
            .trim(),
        ""
    );
}

#[test]
fn sigusr1_dump_lands_in_the_daemons_tmp() {
    let daemon = Daemon::start(Series::V2_1);
    // SAFETY: kill has no memory preconditions; the pid is the daemon's.
    unsafe { libc::kill(daemon.pid as libc::pid_t, libc::SIGUSR1) };
    let dump = daemon
        .tmp
        .join(format!("containerd.{}.stacks.log", daemon.pid));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&dump)
        .unwrap_or_default()
        .contains("goroutine")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no stack dump at {}",
            dump.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
