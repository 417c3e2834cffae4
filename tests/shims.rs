//! The `shims` collector against real containerd daemons: what each shim
//! says about its task must equal what `ctr shim state` says, a killed shim
//! must become a finding, a frozen daemon must not hide its shims, and
//! secrets in a container's environment must stay out of the bundle.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::bundle::{Bundle, assert_manifest_lists_every_file, collect_from};
use common::{Daemon, Series, Stopped, unique_id};
use serde_json::Value;

const NS: &str = "rctr-shims";
const SECRET: &str = "s3cr3t-value";

/// The task API a series' shims serve.
fn task_api(series: Series) -> &'static str {
    match series {
        Series::V1_6 | Series::V1_7 => "containerd.task.v2.Task",
        Series::V2_1 => "containerd.task.v3.Task",
    }
}

/// `ctr -n NS shim --id ID state`, parsed.
fn ctr_shim_state(daemon: &Daemon, id: &str) -> Value {
    let text = daemon.ctr_ns_ok(NS, &["shim", "--id", id, "state"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ctr shim state: {e}: {text}"))
}

/// containerd's name for a task status number.
fn status_name(number: u64) -> &'static str {
    [
        "UNKNOWN", "CREATED", "RUNNING", "STOPPED", "PAUSED", "PAUSING",
    ][number as usize]
}

/// Waits until `ctr tasks ls` shows task `id` as STOPPED.
fn wait_stopped(daemon: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listing = daemon.ctr_ns_ok(NS, &["tasks", "ls"]);
        let stopped = listing.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.first() == Some(&id) && fields.last() == Some(&"STOPPED")
        });
        if stopped {
            return;
        }
        assert!(Instant::now() < deadline, "{id} did not stop: {listing}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The record of task `id` in the bundle's `shims/shims.json`.
fn task_record(bundle: &Bundle, id: &str) -> Value {
    let report = bundle.json("shims/shims.json");
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["namespace"] == NS && task["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {report:#}"))
        .clone()
}

/// The findings of the shims analyzer.
fn shim_findings(bundle: &Bundle) -> Vec<Value> {
    bundle.json("summary.json")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["analyzer"] == "shims")
        .cloned()
        .collect()
}

/// Waits until process `pid` is gone.
fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "process {pid} did not die");
        thread::sleep(Duration::from_millis(20));
    }
}

fn shim_state_equals_ctr(series: Series) {
    let daemon = Daemon::start(series);
    let running = unique_id("running");
    let exited = unique_id("exited");
    // Two processes (busybox sh execs its last command), so the pid sets
    // below are more than the init pid.
    daemon.run_container(NS, &running, &["sh", "-c", "sleep 3600 & sleep 3600"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.ctr_tasks_ps(NS, &running).len() < 2 {
        assert!(Instant::now() < deadline, "{running} did not fork");
        thread::sleep(Duration::from_millis(50));
    }
    daemon.run_container(NS, &exited, &["sh", "-c", "exit 3"]);
    wait_stopped(&daemon, &exited);

    let (run, bundle, _out) = collect_from(&daemon, &["--only", "shims"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert_manifest_lists_every_file(&bundle);
    assert_eq!(bundle.collector("shims.tasks")["status"], "ok");

    // The state dir came from the daemon's own config.
    let report = bundle.json("shims/shims.json");
    assert_eq!(report["state_dir"], daemon.state.to_str().unwrap());
    let found_by = report["state_dir_found_by"].as_str().unwrap();
    assert!(
        found_by.contains(daemon.config_path.to_str().unwrap()),
        "{found_by}"
    );
    assert_eq!(report["tasks"].as_array().unwrap().len(), 2, "{report:#}");

    let shims = daemon.shim_pids();
    for id in [&running, &exited] {
        let ctr = ctr_shim_state(&daemon, id);
        let task = task_record(&bundle, id);
        let state = &task["state"]["ok"];
        assert_eq!(state["id"], ctr["id"], "{id}: {task:#}");
        assert_eq!(state["bundle"], ctr["bundle"], "{id}");
        assert_eq!(state["pid"], ctr["pid"], "{id}");
        assert_eq!(
            state["status"],
            status_name(ctr["status"].as_u64().unwrap()),
            "{id}"
        );
        assert_eq!(
            state["exit_status"],
            ctr["exit_status"].as_u64().unwrap_or(0),
            "{id}"
        );
        assert_eq!(task["dir"], ctr["bundle"], "{id}");
        assert_eq!(task["api"], task_api(series), "{id}");
        let address_file = if series == Series::V2_1 {
            "bootstrap.json"
        } else {
            "address"
        };
        assert_eq!(task["address_file"], address_file, "{id}");
        assert_eq!(task["init_pid"], ctr["pid"], "{id}");

        // The shim process is the one Connect names, and it is this daemon's.
        let shim_pid = task["connect"]["ok"]["shim_pid"].as_u64().unwrap() as u32;
        assert!(shims.contains(&shim_pid), "{shim_pid} not in {shims:?}");
        assert_eq!(task["connect"]["ok"]["task_pid"], ctr["pid"], "{id}");
        let process = &task["process"];
        assert_eq!(process["pid"], shim_pid, "{id}");
        assert_eq!(process["id"], id.as_str());
        assert_eq!(process["namespace"], NS);
        assert!(process["rss_bytes"].as_u64().unwrap() > 0);
        assert!(process["threads"].as_u64().unwrap() > 0);
        assert!(process["open_files"].as_u64().unwrap() > 0);
        assert!(!process["start_time"].as_str().unwrap().is_empty());
        assert!(task["socket"]["listening"].as_bool().unwrap());
    }
    assert_eq!(
        task_record(&bundle, &running)["state"]["ok"]["status"],
        "RUNNING"
    );
    let exited_state = &task_record(&bundle, &exited)["state"]["ok"];
    assert_eq!(exited_state["status"], "STOPPED");
    assert_eq!(exited_state["exit_status"], 3);
    // By default the pids come from the task's cgroup, and they are the
    // processes `ctr tasks ps` lists.
    let record = task_record(&bundle, &running);
    assert_eq!(record["pids_from"], "cgroup", "{record:#}");
    assert!(
        record["cgroups_path"]
            .as_str()
            .unwrap()
            .ends_with(running.as_str())
    );
    let ps = daemon.ctr_tasks_ps(NS, &running);
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert_eq!(pid_set(&record), ps);

    // Healthy shims of this daemon are not findings.
    let mine: Vec<Value> = shim_findings(&bundle)
        .into_iter()
        .filter(|f| f["title"].as_str().unwrap().contains(NS))
        .collect();
    assert!(mine.is_empty(), "{mine:#?}");
    assert!(report["orphans"].as_array().unwrap().is_empty());

    // Asked to, the collector takes the pids from each shim instead: the
    // same set.
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(
        specs.path().join("site.toml"),
        "[[collector]]\nname = \"site.shims\"\nkind = \"shims\"\n\
         description = \"pids as each shim reports them\"\noutput = \"site-shims/\"\n\
         timeout = \"20s\"\ntags = [\"site\"]\nparams = { pids = \"shim\" }\n",
    )
    .unwrap();
    let dir = specs.path().to_str().unwrap();
    let (run, bundle, _out) = collect_from(&daemon, &["--collectors", dir, "--only", "site"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = bundle.json("site-shims/shims.json");
    let record = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["id"] == running.as_str())
        .unwrap_or_else(|| panic!("no task {running} in {report:#}"));
    assert_eq!(record["pids_from"], "shim", "{record:#}");
    assert_eq!(pid_set(record), daemon.ctr_tasks_ps(NS, &running));
}

/// The pids a task record of `shims.json` holds.
fn pid_set(task: &Value) -> BTreeSet<u64> {
    task["pids"]["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("no pids: {task:#}"))
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect()
}

#[test]
fn shim_state_equals_ctr_on_1_6() {
    shim_state_equals_ctr(Series::V1_6);
}

#[test]
fn shim_state_equals_ctr_on_1_7() {
    shim_state_equals_ctr(Series::V1_7);
}

#[test]
fn shim_state_equals_ctr_on_2_1() {
    shim_state_equals_ctr(Series::V2_1);
}

/// The task dir of task `id`.
fn task_dir(daemon: &Daemon, id: &str) -> PathBuf {
    daemon
        .state
        .join("io.containerd.runtime.v2.task")
        .join(NS)
        .join(id)
}

/// A pid file of a task dir.
fn read_pid(dir: &Path, name: &str) -> u32 {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.trim().parse().unwrap()
}

/// The shim socket a task dir names (`address` or `bootstrap.json`).
fn socket_of(dir: &Path) -> String {
    let address = match std::fs::read(dir.join("bootstrap.json")) {
        Ok(data) => {
            let boot: Value = serde_json::from_slice(&data).unwrap();
            boot["address"].as_str().unwrap().to_string()
        }
        Err(_) => std::fs::read_to_string(dir.join("address")).unwrap(),
    };
    address.trim().trim_start_matches("unix://").to_string()
}

/// What a killed shim leaves behind (its socket, its container's process);
/// removed on drop, also when the test fails.
#[derive(Default)]
struct Leftovers {
    sockets: Vec<String>,
    /// Container processes, with the command they must still be running.
    processes: Vec<u32>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for &pid in &self.processes {
            // Only a process still running the test's `sleep` is ours to kill.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.starts_with(b"sleep\0") {
                sigkill(pid);
            }
        }
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

fn sigkill(pid: u32) {
    // SAFETY: kill has no memory preconditions; callers pass pids they started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

fn killed_shim_is_a_finding(series: Series) {
    let daemon = Daemon::start(series);
    let cleaned = unique_id("cleaned");
    let lost = unique_id("lost");
    daemon.run_container(NS, &cleaned, &["sleep", "3600"]);
    daemon.run_container(NS, &lost, &["sleep", "3600"]);
    let (cleaned_dir, lost_dir) = (task_dir(&daemon, &cleaned), task_dir(&daemon, &lost));
    let cleaned_socket = socket_of(&cleaned_dir);
    let cleaned_init = read_pid(&cleaned_dir, "init.pid");
    let lost_init = read_pid(&lost_dir, "init.pid");
    let _leftovers = Leftovers {
        sockets: vec![cleaned_socket.clone(), socket_of(&lost_dir)],
        processes: vec![cleaned_init, lost_init],
    };

    // A running containerd notices a dead shim and removes its task dir.
    let shim = daemon.shim_pid_of(&cleaned);
    sigkill(shim);
    wait_gone(shim);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cleaned_dir.exists() {
        assert!(Instant::now() < deadline, "containerd kept {cleaned_dir:?}");
        thread::sleep(Duration::from_millis(50));
    }

    // A hung one does not: the task dir stays and names a dead shim.
    daemon.freeze();
    let shim = daemon.shim_pid_of(&lost);
    sigkill(shim);
    wait_gone(shim);
    let (_run, bundle, _out) = collect_from(&daemon, &["--only", "shims"]);
    daemon.thaw();

    let task = task_record(&bundle, &lost);
    assert!(task["connect"]["error"].is_string(), "{task:#}");
    assert!(task["process"].is_null(), "{task:#}");
    assert_eq!(task["socket"]["listening"], false, "{task:#}");
    let title = format!("the shim of task {NS}/{lost} is gone");
    let findings = shim_findings(&bundle);
    let finding = findings
        .iter()
        .find(|f| f["title"] == title.as_str())
        .unwrap_or_else(|| panic!("no finding {title:?} in {findings:#?}"));
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["file"], "shims/shims.json");
    let evidence = finding["evidence"].as_str().unwrap();
    assert!(evidence.contains(lost_dir.to_str().unwrap()), "{evidence}");
    assert!(
        evidence.contains(&format!("init.pid {lost_init}")),
        "{evidence}"
    );
    let socket = socket_of(&lost_dir);
    assert!(
        evidence.contains(&format!("{socket} is left with no process listening")),
        "{evidence}"
    );
    let action = finding["action"].as_str().unwrap();
    assert!(
        action.contains(&format!("tasks delete --force {lost}")),
        "{action}"
    );

    // The cleaned-up shim's socket stays behind with nobody serving it.
    let report = bundle.json("shims/shims.json");
    let stale = report["stale_sockets"].as_array().unwrap();
    assert!(
        stale.contains(&Value::from(cleaned_socket.as_str())),
        "{report:#}"
    );
    assert!(
        !stale.contains(&Value::from(socket.as_str())),
        "named by a task dir"
    );
    let finding = findings
        .iter()
        .find(|f| {
            f["title"]
                .as_str()
                .unwrap()
                .contains("socket(s) left without a process")
        })
        .unwrap_or_else(|| panic!("no stale socket finding in {findings:#?}"));
    assert_eq!(finding["severity"], "info");
    assert!(
        finding["evidence"]
            .as_str()
            .unwrap()
            .contains(&cleaned_socket)
    );
}

#[test]
fn killed_shim_is_a_finding_on_1_6() {
    killed_shim_is_a_finding(Series::V1_6);
}

#[test]
fn killed_shim_is_a_finding_on_1_7() {
    killed_shim_is_a_finding(Series::V1_7);
}

#[test]
fn killed_shim_is_a_finding_on_2_1() {
    killed_shim_is_a_finding(Series::V2_1);
}

fn frozen_daemon_still_shows_its_shims(series: Series) {
    let daemon = Daemon::start(series);
    let ids = [unique_id("frozen"), unique_id("frozen")];
    for id in &ids {
        daemon.run_container(NS, id, &["sleep", "3600"]);
    }

    daemon.freeze();
    let (run, bundle, _out) = collect_from(&daemon, &["--timeout", "20s", "--hung-after", "2s"]);
    // Without the probe each call waits out its collector's timeout.
    let (unprobed, unprobed_bundle, _out) = collect_from(
        &daemon,
        &[
            "--only",
            "containerd.version",
            "--timeout",
            "4s",
            "--hung-after",
            "0",
        ],
    );
    daemon.thaw();

    assert_eq!(run.status.code(), Some(1), "the containerd collectors fail");
    assert_manifest_lists_every_file(&bundle);
    // Every collector that asks the daemon or its debug socket ended when
    // the probes got no answer, long before its own timeout.
    let manifest = bundle.json("manifest.json");
    let mut silenced = Vec::new();
    for record in manifest["collectors"].as_array().unwrap() {
        let name = record["name"].as_str().unwrap();
        let asks = name.starts_with("containerd.")
            || name.starts_with("workload.")
            || (name.starts_with("profiles.") && name != "profiles.signal-dump");
        if !asks {
            continue;
        }
        let error = record["error"].as_str().unwrap_or_default();
        let expected = if name.starts_with("profiles.") {
            "did not answer GET /debug/vars within 2s"
        } else {
            "did not answer a Version call within 2s"
        };
        assert_eq!(record["status"], "failed", "{record}");
        assert!(error.contains(expected), "{record}");
        assert!(record["duration_ms"].as_u64().unwrap() < 4_000, "{record}");
        silenced.push(name.to_string());
    }
    assert!(silenced.len() >= 10, "{silenced:?}");
    let summary = bundle.json("summary.json");
    let hung = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "containerd did not answer");
    assert!(hung.is_some(), "{summary:#}");

    assert_eq!(unprobed.status.code(), Some(1));
    let version = unprobed_bundle.collector("containerd.version");
    assert_eq!(version["status"], "timed_out", "{version}");
    let shims = bundle.collector("shims.tasks");
    assert_eq!(shims["status"], "ok", "{shims}");
    let report = bundle.json("shims/shims.json");
    assert_eq!(report["state_dir"], daemon.state.to_str().unwrap());
    assert_eq!(report["tasks"].as_array().unwrap().len(), ids.len());
    for id in &ids {
        let task = task_record(&bundle, id);
        assert_eq!(task["state"]["ok"]["status"], "RUNNING", "{task:#}");
        assert_eq!(task["api"], task_api(series));
        assert!(task["process"]["pid"].is_u64(), "{task:#}");
    }
    assert!(shim_findings(&bundle).iter().all(|f| {
        let title = f["title"].as_str().unwrap();
        !ids.iter().any(|id| title.contains(id.as_str()))
    }));
}

#[test]
fn frozen_daemon_still_shows_its_shims_on_1_6() {
    frozen_daemon_still_shows_its_shims(Series::V1_6);
}

#[test]
fn frozen_daemon_still_shows_its_shims_on_1_7() {
    frozen_daemon_still_shows_its_shims(Series::V1_7);
}

#[test]
fn frozen_daemon_still_shows_its_shims_on_2_1() {
    frozen_daemon_still_shows_its_shims(Series::V2_1);
}

/// The bundle files that contain `needle`.
fn files_containing(bundle: &Bundle, needle: &str) -> Vec<String> {
    bundle
        .files
        .iter()
        .filter(|(_, data)| data.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(path, _)| path.clone())
        .collect()
}

fn secrets_stay_out_unless_asked(series: Series) {
    let daemon = Daemon::start(series);
    let id = unique_id("secret");
    let env = format!("API_TOKEN={SECRET}");
    daemon.run_container_with(NS, &id, &["--env", &env], &["sleep", "3600"]);
    let config = format!("shims/{NS}/{id}/config.json");

    // By default: in no file of the whole bundle; the name stays.
    let (_run, bundle, _out) = collect_from(&daemon, &[]);
    assert_eq!(files_containing(&bundle, SECRET), Vec::<String>::new());
    let spec = bundle.json(&config);
    let env = spec["process"]["env"].as_array().unwrap();
    assert!(
        env.contains(&Value::from("API_TOKEN=<redacted>")),
        "{env:?}"
    );
    let task = task_record(&bundle, &id);
    assert!(task["env_redacted"].as_u64().unwrap() >= 1);
    assert_eq!(bundle.json("shims/shims.json")["redacted"], true);

    // With --no-redact the spec is kept as containerd wrote it.
    let (_run, bundle, _out) = collect_from(&daemon, &["--no-redact", "--only", "shims"]);
    assert_eq!(files_containing(&bundle, SECRET), vec![config.clone()]);
    let on_disk = std::fs::read(task_dir(&daemon, &id).join("config.json")).unwrap();
    assert_eq!(bundle.files[&config], on_disk);
    assert_eq!(task_record(&bundle, &id)["env_redacted"], 0);
    assert_eq!(bundle.json("shims/shims.json")["redacted"], false);
}

#[test]
fn secrets_stay_out_unless_asked_on_1_6() {
    secrets_stay_out_unless_asked(Series::V1_6);
}

#[test]
fn secrets_stay_out_unless_asked_on_1_7() {
    secrets_stay_out_unless_asked(Series::V1_7);
}

#[test]
fn secrets_stay_out_unless_asked_on_2_1() {
    secrets_stay_out_unless_asked(Series::V2_1);
}

fn silent_shim_does_not_answer(series: Series) {
    let daemon = Daemon::start(series);
    let id = unique_id("silent");
    daemon.run_container(NS, &id, &["sleep", "3600"]);
    let shim = daemon.shim_pid_of(&id);

    let stopped = Stopped::stop(shim);
    let (run, bundle, _out) = collect_from(&daemon, &["--only", "shims"]);
    drop(stopped);

    assert_eq!(
        run.status.code(),
        Some(0),
        "a silent shim is a finding, not a failure"
    );
    let task = task_record(&bundle, &id);
    let error = task["connect"]["error"].as_str().unwrap();
    assert!(error.contains("Connect got no answer within 2s"), "{error}");
    assert_eq!(task["process"]["pid"], shim);
    assert_eq!(task["process_found_by"], "command line");
    let title = format!("the shim of task {NS}/{id} does not answer");
    let findings = shim_findings(&bundle);
    let finding = findings
        .iter()
        .find(|f| f["title"] == title.as_str())
        .unwrap_or_else(|| panic!("no finding {title:?} in {findings:#?}"));
    assert_eq!(finding["severity"], "critical");
    let evidence = finding["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&format!("shim process {shim}")),
        "{evidence}"
    );
    assert!(evidence.contains("a process listens on"), "{evidence}");
    let action = finding["action"].as_str().unwrap();
    assert!(action.contains(&format!("kill -USR1 {shim}")), "{action}");
}

#[test]
fn silent_shim_does_not_answer_on_1_6() {
    silent_shim_does_not_answer(Series::V1_6);
}

#[test]
fn silent_shim_does_not_answer_on_1_7() {
    silent_shim_does_not_answer(Series::V1_7);
}

#[test]
fn silent_shim_does_not_answer_on_2_1() {
    silent_shim_does_not_answer(Series::V2_1);
}

/// A task dir moved out of the state dir; moved back on drop.
struct Moved {
    from: PathBuf,
    to: PathBuf,
}

impl Drop for Moved {
    fn drop(&mut self) {
        std::fs::rename(&self.to, &self.from).expect("move the task dir back");
    }
}

fn shim_without_task_dir_is_an_orphan(series: Series) {
    let daemon = Daemon::start(series);
    let id = unique_id("orphan");
    daemon.run_container(NS, &id, &["sleep", "3600"]);
    let shim = daemon.shim_pid_of(&id);

    let dir = task_dir(&daemon, &id);
    let moved = Moved {
        to: daemon.dir.join("moved-task-dir"),
        from: dir.clone(),
    };
    std::fs::rename(&moved.from, &moved.to).unwrap();
    let (_run, bundle, _out) = collect_from(&daemon, &["--only", "shims"]);
    let (_run, other_ns, _out2) =
        collect_from(&daemon, &["--only", "shims", "-n", "rctr-elsewhere"]);
    drop(moved);

    let report = bundle.json("shims/shims.json");
    let orphans = report["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{report:#}");
    assert_eq!(orphans[0]["pid"], shim);
    assert_eq!(orphans[0]["id"], id.as_str());
    assert_eq!(orphans[0]["namespace"], NS);
    assert!(report["tasks"].as_array().unwrap().is_empty());
    let title = format!("shim process {shim} of {NS}/{id} has no task dir");
    let findings = shim_findings(&bundle);
    let finding = findings
        .iter()
        .find(|f| f["title"] == title.as_str())
        .unwrap_or_else(|| panic!("no finding {title:?} in {findings:#?}"));
    assert_eq!(finding["severity"], "warning");
    let evidence = finding["evidence"].as_str().unwrap();
    assert!(evidence.contains(dir.to_str().unwrap()), "{evidence}");
    assert!(
        evidence.contains(daemon.address.to_str().unwrap()),
        "{evidence}"
    );

    // Looking at another namespace sees neither the task nor its shim.
    let report = other_ns.json("shims/shims.json");
    assert!(
        report["orphans"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}

#[test]
fn shim_without_task_dir_is_an_orphan_on_1_6() {
    shim_without_task_dir_is_an_orphan(Series::V1_6);
}

#[test]
fn shim_without_task_dir_is_an_orphan_on_1_7() {
    shim_without_task_dir_is_an_orphan(Series::V1_7);
}

#[test]
fn shim_without_task_dir_is_an_orphan_on_2_1() {
    shim_without_task_dir_is_an_orphan(Series::V2_1);
}

#[test]
fn shims_not_asked_in_time_are_said_so_and_the_rest_is_kept() {
    let daemon = Daemon::start(Series::V2_1);
    let (silent, fine) = (unique_id("slow"), unique_id("fine"));
    daemon.run_container(NS, &silent, &["sleep", "3600"]);
    daemon.run_container(NS, &fine, &["sleep", "3600"]);
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(
        specs.path().join("site.toml"),
        "[[collector]]\nname = \"site.shims\"\nkind = \"shims\"\n\
         description = \"shims with a short budget\"\noutput = \"site-shims/\"\n\
         timeout = \"4s\"\ntags = [\"site\"]\nparams = { call_timeout = \"10s\" }\n",
    )
    .unwrap();

    let shim = daemon.shim_pid_of(&silent);
    let stopped = Stopped::stop(shim);
    let dir = specs.path().to_str().unwrap();
    let (run, bundle, _out) = collect_from(&daemon, &["--collectors", dir, "--only", "site"]);
    drop(stopped);

    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let record = bundle.collector("site.shims");
    assert_eq!(record["status"], "skipped", "{record}");
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("1 of 2 shims were not asked"),
        "{reason}"
    );
    let report = bundle.json("site-shims/shims.json");
    let task = |id: &str| {
        report["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        task(&silent)["connect"]["skipped"],
        "not asked: the collector's time ran out"
    );
    assert_eq!(task(&fine)["state"]["ok"]["status"], "RUNNING");
}
