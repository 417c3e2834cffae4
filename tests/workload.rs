//! Containers, tasks, snapshots and events in the bundle equal what `ctr`
//! says about the same daemon, with real running, failed, killed and
//! OOM-killed containers on every series; secrets stay out of the bundle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::bundle::{
    Bundle, assert_manifest_lists_every_file, bundle_path, collect_from, spawn_collect_from,
    wait_output,
};
use common::{Daemon, DaemonOptions, GROUP_LABEL, IMAGE, Series, Stopped, unique_id};
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

/// The pids a task record of the tasks collector holds.
fn record_pids(task: &Value) -> BTreeSet<u64> {
    task["pids"]
        .as_array()
        .unwrap_or_else(|| panic!("no pids: {task}"))
        .iter()
        .map(|p| p.as_u64().unwrap())
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
    assert_eq!(record_pids(&tasks["web"]), daemon.ctr_tasks_ps(ns, "web"));
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
    let collect = spawn_collect_from(
        &daemon,
        out.path(),
        &["--only", "workload", "--events-for", "15s"],
    );

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

/// The size of the tmpfs that holds the troubled node's containerd root.
const TROUBLED_ROOT_BYTES: u64 = 128 * 1024 * 1024;
/// How much of that tmpfs the test fills.
const TROUBLED_FILL_PERCENT: u64 = 90;
/// Containers created and removed during the events window.
const CHURN_RUNS: usize = 8;

/// Fills the filesystem holding `dir` up to `percent` of its blocks with a file in `dir`.
fn fill_to(dir: &std::path::Path, percent: u64) {
    use std::io::Write as _;
    let (total, free) = space(dir);
    let target_free = total * (100 - percent) / 100;
    let mut missing = free.saturating_sub(target_free);
    let mut file = std::fs::File::create(dir.join("rctr-test-filler")).unwrap();
    let chunk = vec![0x5a_u8; 1024 * 1024];
    while missing > 0 {
        let n = missing.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        missing -= n as u64;
    }
    file.sync_all().unwrap();
}

/// `(total bytes, free bytes)` of the filesystem holding `path`.
fn space(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs is plain old data for which all-zero bytes are a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is writable for the call.
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    let block = stat.f_frsize as u64;
    (stat.f_blocks as u64 * block, stat.f_bfree as u64 * block)
}

/// `df`'s own figure for the share of `path`'s filesystem in use.
fn df_percent(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("df")
        .args(["--output=pcent"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).unwrap_or_else(|| panic!("df: {text}"));
    line.trim().trim_end_matches('%').parse().unwrap()
}

/// The first finding titled `title`.
fn finding(bundle: &Bundle, title: &str) -> Value {
    bundle.json("summary.json")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == title)
        .unwrap_or_else(|| panic!("no finding {title:?} in {:?}", titles(bundle)))
        .clone()
}

/// Waits until `ctr snapshots usage KEY` reports at least `bytes`.
fn wait_usage(daemon: &Daemon, ns: &str, key: &str, bytes: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let usage = daemon.ctr_ns_ok(ns, &["snapshots", "usage", key]);
        let size = usage
            .lines()
            .skip(1)
            .find_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f.first() == Some(&key)).then(|| human_bytes(f[1], f[2]))
            })
            .unwrap_or(0.0);
        if size >= bytes {
            return size;
        }
        assert!(Instant::now() < deadline, "{key} stays at {usage}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node in trouble: the disk under containerd's root nearly full, a paused
/// task, a snapshot no container uses, a container that wrote into its root
/// filesystem, and containers created and removed in a hurry while collect
/// listens. Each becomes its finding, with figures that match ctr and df.
fn troubled_node_yields_its_findings(series: Series) {
    let options = DaemonOptions {
        root_tmpfs_bytes: Some(TROUBLED_ROOT_BYTES),
        ..DaemonOptions::new()
    };
    let daemon = Daemon::start_with(series, &options);
    let ns = unique_id("wl");
    let ns = ns.as_str();
    daemon.run_container(ns, "frozen", &["sleep", "3600"]);
    daemon.ctr_ns_ok(ns, &["tasks", "pause", "frozen"]);
    let write = "dd if=/dev/zero of=/written bs=1M count=4 && sleep 3600";
    daemon.run_container(ns, "writer", &["sh", "-c", write]);
    daemon.ctr_ns_ok(ns, &["snapshots", "prepare", "stray"]);
    wait_usage(&daemon, ns, "writer", 4.0 * 1024.0 * 1024.0);
    fill_to(&daemon.root, TROUBLED_FILL_PERCENT);

    // Churn in a namespace of its own, so no container of `ns` comes or goes
    // between the container and snapshot lists.
    let churn_ns = format!("{ns}-churn");
    daemon.import_image(&churn_ns);
    let out = tempfile::tempdir().unwrap();
    let collect = spawn_collect_from(
        &daemon,
        out.path(),
        &["--only", "workload", "--events-for", "12s"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    for k in 0..CHURN_RUNS {
        let id = format!("churn-{k}");
        daemon.ctr_ns_ok(&churn_ns, &["run", "--rm", IMAGE, &id, "true"]);
    }
    let run = wait_output(collect, Duration::from_secs(60));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bundle = Bundle::open(&bundle_path(&run));

    // The paused task, as ctr sees it.
    assert!(
        daemon
            .ctr_ns_ok(ns, &["tasks", "ls"])
            .lines()
            .any(|l| l.starts_with("frozen") && l.contains("PAUSED"))
    );
    let tasks = by_id(list(&bundle, &format!("containerd/tasks/{ns}.json")));
    assert_eq!(tasks["frozen"]["status"], "paused");
    finding(&bundle, &format!("task {ns}/frozen is paused"));

    // The snapshot nobody uses.
    let stray = finding(
        &bundle,
        &format!("1 active snapshot(s) in namespace {ns} belong to no container"),
    );
    assert_eq!(stray["evidence"], "overlayfs:stray");

    // The largest active snapshot is the writer's, with ctr's size.
    let largest = finding(&bundle, "largest active snapshots");
    let evidence = largest["evidence"].as_str().unwrap();
    let first = evidence.split("; ").next().unwrap();
    let prefix = format!("{ns}/writer (");
    let bytes: f64 = first
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" bytes, container writer)"))
        .unwrap_or_else(|| panic!("{evidence}"))
        .parse()
        .unwrap();
    let theirs = wait_usage(&daemon, ns, "writer", 0.0);
    assert!(
        (bytes - theirs).abs() <= theirs * 0.05 + 1.0,
        "{bytes} vs ctr's {theirs}"
    );

    // The full disk, as df sees it.
    let filesystems = list(&bundle, "containerd/snapshots/filesystems.json");
    let overlay = filesystems
        .iter()
        .find(|fs| fs["holds"] == "snapshotter overlayfs")
        .expect("overlayfs is loaded");
    let ours = overlay["used_percent"].as_f64().unwrap();
    let df = df_percent(&daemon.root);
    assert!((ours - df).abs() <= 2.0, "{ours}% vs df's {df}%");
    let full = finding(
        &bundle,
        &format!("filesystem holding the snapshotter overlayfs is {ours:.0}% full"),
    );
    assert_eq!(full["severity"], "warning", "{full}");

    // The churn, counted from the events the bundle holds.
    let churn_types = [
        "containerd.events.TaskCreate",
        "containerd.events.TaskDelete",
        "containerd.events.ContainerCreate",
        "containerd.events.ContainerDelete",
    ];
    let counted = bundle
        .text("containerd/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| churn_types.contains(&e["type"].as_str().unwrap_or_default()))
        .inspect(|e| assert_eq!(e["namespace"], churn_ns.as_str(), "{e}"))
        .count();
    assert!(counted >= 20, "only {counted} churn events");
    let churn = finding(&bundle, "heavy container churn");
    assert_eq!(
        churn["evidence"],
        format!("{counted} container/task creates and deletes during the events window")
    );
}

#[test]
fn troubled_node_yields_its_findings_on_1_6() {
    troubled_node_yields_its_findings(Series::V1_6);
}

#[test]
fn troubled_node_yields_its_findings_on_1_7() {
    troubled_node_yields_its_findings(Series::V1_7);
}

#[test]
fn troubled_node_yields_its_findings_on_2_1() {
    troubled_node_yields_its_findings(Series::V2_1);
}

/// Tasks of one shim that all go silent at once (the shim stopped with
/// SIGSTOP) hold up containerd's whole-namespace list and metrics; the
/// tasks collector asks task by task instead and still lists every task,
/// as `ctr tasks ls` does, with the healthy one's pids and metrics.
fn silent_shim_does_not_cost_the_task_list(series: Series) {
    let daemon = Daemon::start(series);
    let ns = unique_id("wl");
    let ns = ns.as_str();
    let group = format!("{GROUP_LABEL}{}", unique_id("g"));
    let silent = ["silent-0", "silent-1", "silent-2"];
    for id in silent {
        daemon.run_container_with(ns, id, &["--label", &group], &["sleep", "3600"]);
    }
    daemon.run_container(ns, "healthy", &["sleep", "3600"]);
    let ps = daemon.ctr_tasks_ps(ns, "healthy");

    let stopped = Stopped::stop(daemon.shim_pid_of(silent[0]));
    let (run, bundle, _out) = collect_from(&daemon, &["--only", "workload.tasks"]);
    let ctr_tasks = daemon.ctr_ns_ok(ns, &["tasks", "ls"]);
    drop(stopped);

    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(bundle.collector("workload.tasks")["status"], "ok");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("asking task by task"), "{stderr}");
    assert!(stderr.contains("metrics task by task"), "{stderr}");

    // The same tasks and statuses as ctr, which waits on the silent shim.
    let tasks = by_id(list(&bundle, &format!("containerd/tasks/{ns}.json")));
    let theirs: BTreeMap<String, String> = ctr_tasks
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f[0].to_string(), f[2].to_lowercase())
        })
        .collect();
    let ours: BTreeMap<String, String> = tasks
        .iter()
        .map(|(id, t)| (id.clone(), t["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ours, theirs);
    for id in silent {
        assert_eq!(tasks[id]["status"], "unknown", "{}", tasks[id]);
        assert!(
            titles(&bundle).contains(&format!("task {ns}/{id} is in UNKNOWN state")),
            "{:?}",
            titles(&bundle)
        );
    }

    // The healthy task lost nothing.
    let healthy = &tasks["healthy"];
    assert_eq!(record_pids(healthy), ps);
    assert!(
        healthy["metrics"]["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("io.containerd.cgroups.v")),
        "{healthy}"
    );
    assert!(healthy.get("metrics_error").is_none(), "{healthy}");
}

#[test]
fn silent_shim_does_not_cost_the_task_list_on_1_6() {
    silent_shim_does_not_cost_the_task_list(Series::V1_6);
}

#[test]
fn silent_shim_does_not_cost_the_task_list_on_1_7() {
    silent_shim_does_not_cost_the_task_list(Series::V1_7);
}

#[test]
fn silent_shim_does_not_cost_the_task_list_on_2_1() {
    silent_shim_does_not_cost_the_task_list(Series::V2_1);
}
