//! Profiles against real containerd daemons: every profile the debug socket
//! serves lands in the bundle and decodes, the goroutine summary counts every
//! goroutine of the dump, and the heap and CPU top lists say what
//! `go tool pprof -top` says about the same files. Without a debug socket the
//! collectors are skipped with the config lines that enable it, and SIGUSR1
//! dumps stand in; a frozen daemon costs the profiles their deadlines and
//! nothing else.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::bundle::{
    Bundle, assert_manifest_lists_every_file, bundle_path, collect, collect_from,
};
use common::{Daemon, DaemonOptions, Series, output_within};
use rctr_diag::analyze::pprof_data;
use serde_json::Value;

/// The collectors that read the debug socket, with their spec timeouts.
const DEBUG_COLLECTORS: &[(&str, u64)] = &[
    ("profiles.goroutines", 15),
    ("profiles.heap", 15),
    ("profiles.cpu", 75),
    ("profiles.allocs", 15),
    ("profiles.block", 15),
    ("profiles.mutex", 15),
    ("profiles.threadcreate", 15),
    ("profiles.vars", 15),
];

const RAW_PROFILES: &[&str] = &[
    "profiles/heap/heap.pb.gz",
    "profiles/cpu/cpu.pb.gz",
    "profiles/allocs.pb.gz",
    "profiles/block.pb.gz",
    "profiles/mutex.pb.gz",
    "profiles/threadcreate.pb.gz",
];

/// How many `goroutine N [...]:` headers a dump has, counted plainly.
fn headers(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.strip_prefix("goroutine ")
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(id, rest)| id.parse::<u64>().is_ok() && rest.starts_with('['))
        })
        .count()
}

/// What `go tool pprof -top` prints (values in `unit`, or plain counts when
/// `unit` is empty): the total and, per function, flat and
/// cumulative values (rows of one name summed).
struct GoTop {
    total: i64,
    rows: HashMap<String, (i64, i64)>,
    first: String,
}

fn go_top(file: &Path, sample_index: &str, unit: &str) -> GoTop {
    let mut cmd = Command::new("go");
    cmd.args([
        "tool",
        "pprof",
        "-top",
        "-nodefraction=0",
        "-nodecount=1000000",
    ])
    .arg(format!("-sample_index={sample_index}"));
    if !unit.is_empty() {
        cmd.arg(format!("-unit={unit}"));
    }
    cmd.arg(file).env("HOME", file.parent().unwrap());
    let out = output_within(cmd, Duration::from_secs(60)).expect("go tool pprof finishes");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number = |field: &str| -> i64 {
        let digits: String = field
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().unwrap_or(0)
    };
    let total_line = text
        .lines()
        .find(|l| l.contains(" total"))
        .unwrap_or_else(|| panic!("no total in {text}"));
    let total = number(
        total_line
            .trim_end_matches(" total")
            .rsplit(' ')
            .next()
            .unwrap(),
    );
    let mut rows: HashMap<String, (i64, i64)> = HashMap::new();
    let mut first = String::new();
    let body = text.split_once("flat%").map(|(_, b)| b).unwrap_or("");
    for line in body.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 {
            continue;
        }
        let name = fields[5..].join(" ");
        let name = name.trim_end_matches(" (inline)").to_string();
        if first.is_empty() {
            first = name.clone();
        }
        let row = rows.entry(name).or_default();
        row.0 += number(fields[0]);
        row.1 = row.1.max(number(fields[3]));
    }
    GoTop { total, rows, first }
}

/// Checks a top list of ours against `go tool pprof -top` on the same file.
fn assert_top_matches(ours: &Value, theirs: &GoTop, what: &str) {
    assert_eq!(
        ours["total"].as_i64().unwrap(),
        theirs.total,
        "{what} total"
    );
    let by_flat = ours["by_flat"].as_array().unwrap();
    for entry in by_flat.iter().filter(|e| e["flat"].as_i64() != Some(0)) {
        let name = entry["function"].as_str().unwrap();
        let (flat, _) = theirs
            .rows
            .get(name)
            .unwrap_or_else(|| panic!("{what}: pprof has no {name}"));
        assert_eq!(
            entry["flat"].as_i64().unwrap(),
            *flat,
            "{what} flat of {name}"
        );
    }
    for entry in ours["by_cum"].as_array().unwrap() {
        let name = entry["function"].as_str().unwrap();
        let (_, cum) = theirs
            .rows
            .get(name)
            .unwrap_or_else(|| panic!("{what}: pprof has no {name}"));
        assert_eq!(entry["cum"].as_i64().unwrap(), *cum, "{what} cum of {name}");
    }
    // The function pprof lists first has the largest flat value in ours too.
    if theirs.total != 0 {
        let top_flat = by_flat[0]["flat"].as_i64().unwrap();
        assert_eq!(theirs.rows[&theirs.first].0, top_flat, "{what} first row");
    }
}

/// Keeps the daemon busy (ctr calls in a loop) while the closure runs, so the
/// CPU profile has samples.
fn with_load<T>(daemon: &Daemon, work: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = daemon.ctr_timeout(&["plugins", "ls"], Duration::from_secs(5));
            }
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

fn profiles_match_go_tool_pprof(series: Series) {
    let daemon = Daemon::start(series);
    let args = ["--only", "profiles,host", "--cpu-profile", "1s"];
    let (run, bundle, _out) = with_load(&daemon, || collect_from(&daemon, &args));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert_manifest_lists_every_file(&bundle);
    for (name, _) in DEBUG_COLLECTORS {
        assert_eq!(bundle.collector(name)["status"], "ok", "{name}: {stderr}");
    }

    // Every profile is stored gzipped as served and decodes.
    for path in RAW_PROFILES {
        let data = &bundle.files[*path];
        assert!(data.starts_with(&[0x1f, 0x8b]), "{path} is gzipped");
        let profile = pprof_data::decode(data).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!profile.sample_type.is_empty(), "{path} has sample types");
    }
    let vars = bundle.json("profiles/vars.json");
    assert!(vars["memstats"]["HeapInuse"].as_i64().unwrap() > 0);

    // The goroutine summary counts every goroutine of the dump.
    let dump = bundle.text("profiles/goroutines/goroutines.txt");
    let summary = bundle.json("profiles/goroutines/summary.json");
    assert!(headers(&dump) > 5, "{dump}");
    assert_eq!(summary["total"].as_u64().unwrap() as usize, headers(&dump));
    let by_state: u64 = summary["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_state as usize, headers(&dump));

    // Heap and CPU top lists agree with go tool pprof on the stored files.
    let dir = tempfile::tempdir().unwrap();
    let heap_file = dir.path().join("heap.pb.gz");
    std::fs::write(&heap_file, &bundle.files["profiles/heap/heap.pb.gz"]).unwrap();
    let heap = bundle.json("profiles/heap/top.json");
    let theirs = go_top(&heap_file, "inuse_space", "B");
    assert!(theirs.total > 0);
    assert_top_matches(&heap["inuse_space"], &theirs, "heap inuse_space");
    let theirs = go_top(&heap_file, "inuse_objects", "");
    assert_top_matches(&heap["inuse_objects"], &theirs, "heap inuse_objects");

    let cpu_file = dir.path().join("cpu.pb.gz");
    std::fs::write(&cpu_file, &bundle.files["profiles/cpu/cpu.pb.gz"]).unwrap();
    let cpu = bundle.json("profiles/cpu/top.json");
    assert_eq!(cpu["cpu"]["sample_type"], "cpu");
    let theirs = go_top(&cpu_file, "cpu", "ns");
    assert_top_matches(&cpu["cpu"], &theirs, "cpu");
    eprintln!(
        "{series:?}: heap in use {} B, CPU {} ns in {} functions, {} goroutines",
        heap["inuse_space"]["total"],
        theirs.total,
        theirs.rows.len(),
        headers(&dump)
    );

    // Flame graphs need no Go toolchain to read.
    for svg in ["profiles/heap/heap-inuse.svg", "profiles/cpu/cpu.svg"] {
        assert!(bundle.text(svg).contains("<svg"), "{svg}");
    }

    // The summary reports the goroutines, heap, CPU and memory.
    let findings = bundle.json("summary.json")["findings"].clone();
    let titles: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    let goroutines = format!("containerd runs {} goroutines", headers(&dump));
    for wanted in [
        goroutines.as_str(),
        "heap in use",
        "CPU:",
        "containerd memory",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(wanted)),
            "{wanted} in {titles:?}"
        );
    }
}

#[test]
fn profiles_match_go_tool_pprof_on_1_6() {
    profiles_match_go_tool_pprof(Series::V1_6);
}

#[test]
fn profiles_match_go_tool_pprof_on_1_7() {
    profiles_match_go_tool_pprof(Series::V1_7);
}

#[test]
fn profiles_match_go_tool_pprof_on_2_1() {
    profiles_match_go_tool_pprof(Series::V2_1);
}

#[test]
fn debug_address_is_read_from_the_daemons_config() {
    let daemon = Daemon::start(Series::V2_1);
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            daemon.address.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--only",
            "profiles.goroutines,profiles.vars",
        ],
        Duration::from_secs(60),
    );
    let bundle = Bundle::open(&bundle_path(&run));
    let manifest = bundle.json("manifest.json");
    assert_eq!(
        manifest["containerd"]["debug_address"],
        daemon.debug_address.to_str().unwrap()
    );
    assert_eq!(bundle.collector("profiles.goroutines")["status"], "ok");
    assert_eq!(bundle.collector("profiles.vars")["status"], "ok");
}

fn without_socket() -> Daemon {
    let options = DaemonOptions {
        debug_socket: false,
        ..DaemonOptions::new()
    };
    Daemon::start_with(Series::V1_7, &options)
}

#[test]
fn without_debug_socket_profiles_are_skipped_with_the_enabling_config() {
    let daemon = without_socket();
    let args = ["--only", "profiles,host", "--cpu-profile", "1s"];
    let (run, bundle, _out) = collect_from(&daemon, &args);
    assert_eq!(run.status.code(), Some(0));
    assert_manifest_lists_every_file(&bundle);

    let lines = format!(
        "[debug]\n  address = \"{}\"",
        daemon.debug_address.display()
    );
    for (name, _) in DEBUG_COLLECTORS {
        let record = bundle.collector(name);
        assert_eq!(record["status"], "skipped", "{name}");
        let reason = record["reason"].as_str().unwrap();
        assert!(reason.contains("does not exist"), "{reason}");
        assert!(reason.contains(&lines), "{reason}");
    }
    let signal = bundle.collector("profiles.signal-dump");
    assert_eq!(signal["status"], "skipped");
    assert!(signal["reason"].as_str().unwrap().contains("--signal-dump"));

    let summary = bundle.json("summary.json");
    let note = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().contains("debug socket is off"))
        .expect("a finding says the debug socket is off");
    assert_eq!(note["severity"], "info");
    let setting = format!("address = \"{}\"", daemon.debug_address.display());
    assert!(note["evidence"].as_str().unwrap().contains("[debug]"));
    assert!(note["evidence"].as_str().unwrap().contains(&setting));
    assert!(bundle.text("summary.md").contains("debug socket is off"));
}

#[test]
fn signal_dump_collects_and_compares_the_daemons_stack_files() {
    let daemon = without_socket();
    let args = ["--only", "profiles.signal-dump", "--signal-dump=2"];
    let (run, bundle, _out) = collect_from(&daemon, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert_eq!(bundle.collector("profiles.signal-dump")["status"], "ok");

    // The daemon wrote its stack file in its own TMPDIR; the second dump is
    // what it holds now.
    let written = daemon
        .tmp
        .join(format!("containerd.{}.stacks.log", daemon.pid));
    let on_disk = std::fs::read(&written).expect("the daemon wrote its stack file");
    assert_eq!(bundle.files["profiles/signal-dump/stacks-2.log"], on_disk);

    let summary = bundle.json("profiles/signal-dump/summary.json");
    assert_eq!(summary["pid"], daemon.pid);
    for n in 1..=2 {
        let text = bundle.text(&format!("profiles/signal-dump/stacks-{n}.log"));
        assert!(headers(&text) > 5, "{text}");
        assert_eq!(
            summary["dumps"][n - 1]["total"].as_u64().unwrap() as usize,
            headers(&text)
        );
    }
    // The main goroutine waits for the daemon's end in both dumps.
    assert!(summary["unmoved_total"].as_u64().unwrap() >= 1);
    let findings = bundle.json("summary.json")["findings"].clone();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"].as_str().unwrap().starts_with("containerd runs ")),
        "{findings}"
    );
}

#[test]
fn frozen_daemon_costs_profiles_their_deadlines_only() {
    let daemon = Daemon::start(Series::V1_7);
    daemon.freeze();
    let args = [
        "--only",
        "profiles,host",
        "--cpu-profile",
        "1s",
        "--timeout",
        "50s",
    ];
    // Without the probe, each request waits out its own deadline.
    let unprobed: Vec<&str> = args.iter().copied().chain(["--hung-after", "0"]).collect();
    let (run, bundle, _out) = collect_from(&daemon, &unprobed);
    // With it, every request ends when the probe gets no answer.
    let probed: Vec<&str> = args.iter().copied().chain(["--hung-after", "2s"]).collect();
    let (probed_run, probed_bundle, _out) = collect_from(&daemon, &probed);
    daemon.thaw();

    for (run, bundle) in [(&run, &bundle), (&probed_run, &probed_bundle)] {
        assert_eq!(run.status.code(), Some(1), "partial: the profiles failed");
        assert_manifest_lists_every_file(bundle);
        assert_eq!(bundle.collector("host.info")["status"], "ok");
        assert_eq!(bundle.collector("host.containerd-process")["status"], "ok");
        assert!(bundle.files.contains_key("host/info.json"));
        assert!(bundle.files.contains_key("host/containerd-process.json"));
    }
    for (name, timeout) in DEBUG_COLLECTORS {
        let record = bundle.collector(name);
        let status = record["status"].as_str().unwrap();
        assert!(
            ["failed", "timed_out"].contains(&status),
            "{name}: {record}"
        );
        let error = record["error"].as_str().unwrap();
        assert!(error.contains("no answer within"), "{name}: {error}");
        assert!(
            record["duration_ms"].as_u64().unwrap() <= timeout * 1000,
            "{record}"
        );

        let record = probed_bundle.collector(name);
        assert_eq!(record["status"], "failed", "{record}");
        let error = record["error"].as_str().unwrap();
        assert!(
            error.contains("did not answer GET /debug/vars within 2s"),
            "{name}: {error}"
        );
        assert!(record["duration_ms"].as_u64().unwrap() < 4_000, "{record}");
    }
}

#[test]
fn committed_heap_profile_matches_go_tool_pprof() {
    // A heap profile taken from the test bed's containerd 2.1, kept small.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pprof/heap-2.1.pb.gz");
    let data = std::fs::read(&file).unwrap();
    let stacks = pprof_data::Stacks::new(&pprof_data::decode(&data).unwrap());
    assert_eq!(stacks.default_sample_type().as_deref(), Some("inuse_space"));
    for (sample_type, unit) in [
        ("inuse_space", "B"),
        ("inuse_objects", ""),
        ("alloc_space", "B"),
    ] {
        let ours = serde_json::to_value(stacks.top(sample_type, 25).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("heap.pb.gz");
        std::fs::write(&copy, &data).unwrap();
        assert_top_matches(&ours, &go_top(&copy, sample_type, unit), sample_type);
    }
}
