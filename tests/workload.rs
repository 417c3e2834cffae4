//! Containers, tasks, snapshots and events in the bundle equal what `ctr`
//! says about the same daemon, with real running, failed, killed and
//! OOM-killed containers on every series; secrets stay out of the bundle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::bundle::{
    Bundle, assert_manifest_lists_every_file, bundle_path, collect_from, rctr_diag, wait_output,
};
use common::{Daemon, IMAGE, Series, unique_id};
use serde_json::Value;

const SECRET: &str = "s3cr3t-value-4711";

/// Waits until `ctr tasks ls` shows `id` as STOPPED.
fn wait_stopped(daemon: &Daemon, ns: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let list = daemon.ctr_ns_ok(ns, &["tasks", "ls"]);
        if list
            .lines()
            .any(|l| l.starts_with(id) && l.contains("STOPPED"))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("task {id} did not stop");
}

/// A daemon with a running, a failed, a killed, an idle and a secretive
/// container, in a namespace of its own: runc's state is per namespace and
/// shared by the daemons of parallel tests.
fn populated(series: Series) -> (Daemon, String) {
    let daemon = Daemon::start(series);
    let ns = unique_id("wl");
    let ns = ns.as_str();
    daemon.run_container(ns, "web", &["sleep", "3600"]);
    daemon.run_container(ns, "bad", &["sh", "-c", "exit 3"]);
    daemon.run_container(ns, "killed", &["sleep", "3600"]);
    daemon.ctr_ns_ok(ns, &["tasks", "kill", "-s", "SIGKILL", "killed"]);
    daemon.ctr_ns_ok(ns, &["containers", "create", IMAGE, "idle", "true"]);
    let env = format!("API_TOKEN={SECRET}");
    daemon.run_container_with(ns, "secretive", &["--env", &env], &["sleep", "3600"]);
    wait_stopped(&daemon, ns, "bad");
    wait_stopped(&daemon, ns, "killed");
    (daemon, ns.to_string())
}

fn list(bundle: &Bundle, path: &str) -> Vec<Value> {
    bundle.json(path).as_array().unwrap().clone()
}

fn by_id(items: Vec<Value>) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect()
}

fn titles(bundle: &Bundle) -> Vec<String> {
    bundle.json("summary.json")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect()
}

/// Parses `ctr snapshots usage`'s human sizes ("8.0 KiB") back to bytes.
fn human_bytes(size: &str, unit: &str) -> f64 {
    let n: f64 = size.parse().unwrap();
    let scale = match unit {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    n * scale
}

fn workload_matches_ctr(series: Series) {
    let (daemon, ns) = populated(series);
    let ns = ns.as_str();
    let (run, bundle, _out) = collect_from(&daemon, &["--events-for", "0"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_manifest_lists_every_file(&bundle);

    // Containers: the same ids, images, runtimes and snapshots as ctr.
    let ours = by_id(list(&bundle, &format!("containerd/containers/{ns}.json")));
    let ids: BTreeSet<String> = daemon
        .ctr_ns_ok(ns, &["containers", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ours.keys().cloned().collect::<BTreeSet<_>>(), ids);
    for (id, container) in &ours {
        let info: Value =
            serde_json::from_str(&daemon.ctr_ns_ok(ns, &["containers", "info", id])).unwrap();
        assert_eq!(container["image"], info["Image"], "{id}");
        assert_eq!(container["runtime"], info["Runtime"]["Name"], "{id}");
        assert_eq!(container["snapshotter"], info["Snapshotter"], "{id}");
        assert_eq!(container["snapshot_key"], info["SnapshotKey"], "{id}");
        let spec = container["spec_file"].as_str().unwrap();
        assert_eq!(
            bundle.json(spec)["process"]["args"],
            info["Spec"]["process"]["args"]
        );
    }

    // Tasks: the same pids and statuses as `ctr tasks ls`.
    let tasks = by_id(list(&bundle, &format!("containerd/tasks/{ns}.json")));
    let ctr_tasks: BTreeMap<String, (u64, String)> = daemon
        .ctr_ns_ok(ns, &["tasks", "ls"])
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].to_lowercase()),
            )
        })
        .collect();
    let ours: BTreeMap<String, (u64, String)> = tasks
        .iter()
        .map(|(id, t)| {
            (
                id.clone(),
                (
                    t["pid"].as_u64().unwrap(),
                    t["status"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(ours, ctr_tasks);
    assert_eq!(tasks["bad"]["exit_status"], 3);
    assert_eq!(tasks["killed"]["exit_status"], 137);

    // Processes of a running task, and its decoded metrics.
    let ps: BTreeSet<u64> = daemon
        .ctr_ns_ok(ns, &["tasks", "ps", "web"])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let pids: BTreeSet<u64> = tasks["web"]["pids"]
        .as_array()
        .unwrap_or_else(|| panic!("no pids: {}", tasks["web"]))
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(pids, ps);
    assert_eq!(tasks["web"]["pids_from"], "cgroup", "{}", tasks["web"]);
    let metrics = &tasks["web"]["metrics"];
    assert!(
        metrics["type"]
            .as_str()
            .unwrap()
            .starts_with("io.containerd.cgroups.v"),
        "{metrics}"
    );
    assert!(
        metrics["pids"]["current"].as_u64().unwrap() >= 1,
        "{metrics}"
    );

    // Snapshot usage equals `ctr snapshots usage` (sizes as ctr rounds them).
    let snapshots = bundle.json(&format!("containerd/snapshots/{ns}.json"));
    let overlay = snapshots["snapshotters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["snapshotter"] == "overlayfs")
        .expect("overlayfs is loaded");
    assert_eq!(overlay["budget_exhausted"], false);
    let ours: BTreeMap<String, (f64, i64)> = overlay["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["key"].as_str().unwrap().to_string();
            (
                key,
                (
                    s["size"].as_i64().unwrap() as f64,
                    s["inodes"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    let usage = daemon.ctr_ns_ok(ns, &["snapshots", "--snapshotter", "overlayfs", "usage"]);
    let theirs: BTreeMap<String, (f64, i64)> = usage
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (
                f[0].to_string(),
                (human_bytes(f[1], f[2]), f[3].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (key, (size, inodes)) in &ours {
        let (their_size, their_inodes) = theirs[key];
        assert_eq!(*inodes, their_inodes, "{key}");
        assert!(
            (size - their_size).abs() <= their_size * 0.05 + 1.0,
            "{key}: {size} vs {usage}"
        );
    }
    let filesystems = list(&bundle, "containerd/snapshots/filesystems.json");
    assert!(
        filesystems
            .iter()
            .any(|fs| fs["holds"] == "snapshotter overlayfs")
    );

    // Findings point at what looks wrong.
    let titles = titles(&bundle);
    for expected in [
        format!("task {ns}/bad exited with status 3"),
        format!("task {ns}/killed exited with status 137"),
        "1 container(s) have no task".to_string(),
    ] {
        assert!(titles.contains(&expected), "{expected} not in {titles:?}");
    }

    // The secret never reaches the bundle; the manifest counts redactions.
    for (path, data) in &bundle.files {
        assert!(
            !String::from_utf8_lossy(data).contains(SECRET),
            "{path} holds the secret"
        );
    }
    let redactions = bundle.collector("workload.containers")["redactions"]
        .as_u64()
        .unwrap();
    assert!(redactions >= 1);
}

#[test]
fn workload_matches_ctr_on_1_6() {
    workload_matches_ctr(Series::V1_6);
}

#[test]
fn workload_matches_ctr_on_1_7() {
    workload_matches_ctr(Series::V1_7);
}

#[test]
fn workload_matches_ctr_on_2_1() {
    workload_matches_ctr(Series::V2_1);
}

#[test]
fn no_redact_keeps_the_environment() {
    let daemon = Daemon::start(Series::V2_1);
    let ns = unique_id("wl");
    let ns = ns.as_str();
    let env = format!("API_TOKEN={SECRET}");
    daemon.run_container_with(ns, "secretive", &["--env", &env], &["sleep", "3600"]);
    let (_, bundle, _out) = collect_from(
        &daemon,
        &["--events-for", "0", "--only", "workload", "--no-redact"],
    );
    let spec = bundle.json(&format!("containerd/containers/{ns}/secretive.spec.json"));
    let env: Vec<&str> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&format!("API_TOKEN={SECRET}").as_str()),
        "{env:?}"
    );
    assert!(
        bundle
            .collector("workload.containers")
            .get("redactions")
            .is_none()
    );
}

fn oom_kill_is_heard_during_the_window(series: Series) {
    let daemon = Daemon::start(series);
    let ns = unique_id("wl");
    let ns = ns.as_str();
    daemon.import_image(ns);
    let out = tempfile::tempdir().unwrap();
    let collect = rctr_diag()
        .args([
            "collect",
            "--system-collectors",
            "/nonexistent",
            "--only",
            "workload",
        ])
        .args(["--events-for", "15s", "-a"])
        .arg(&daemon.address)
        .arg("-o")
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Within the window: a container that outgrows its 16 MiB limit.
    std::thread::sleep(Duration::from_millis(1500));
    daemon.run_container_with(
        ns,
        "hog",
        &["--memory-limit", "16777216"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    let run = wait_output(collect, Duration::from_secs(40));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let bundle = Bundle::open(&bundle_path(&run));
    let events: Vec<Value> = bundle
        .text("containerd/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen = |type_name: &str| {
        events
            .iter()
            .any(|e| e["type"] == type_name && e["event"]["container_id"] == "hog")
    };
    assert!(
        seen("containerd.events.TaskOOM"),
        "no OOM event in {events:?}"
    );
    assert!(
        seen("containerd.events.TaskExit"),
        "no exit event in {events:?}"
    );
    assert!(events.iter().all(|e| e["namespace"] == ns), "{events:?}");

    let titles = titles(&bundle);
    assert!(
        titles.contains(&format!("OOM kill in {ns}/hog")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.contains("exit(s) with an error status")),
        "{titles:?}"
    );
}

#[test]
fn oom_kill_is_heard_during_the_window_on_1_6() {
    oom_kill_is_heard_during_the_window(Series::V1_6);
}

#[test]
fn oom_kill_is_heard_during_the_window_on_1_7() {
    oom_kill_is_heard_during_the_window(Series::V1_7);
}

#[test]
fn oom_kill_is_heard_during_the_window_on_2_1() {
    oom_kill_is_heard_during_the_window(Series::V2_1);
}
