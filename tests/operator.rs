//! The bundle in an operator's hands: operator-declared `file`, `glob`,
//! `exec` and `journal` collectors with their caps, credentials kept out of
//! the bundle, and `rctr-diag inspect` on good and damaged bundles.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::bundle::{Bundle, assert_manifest_lists_every_file, bundle_path, collect, rctr_diag};
use common::{Daemon, DaemonOptions, Series, output_within};
use serde_json::Value;

/// A folder holding one operator spec file with `text`.
fn spec_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("operator.toml"), text).unwrap();
    dir
}

/// Runs `collect --only <only>` with the specs in `specs`, no daemon needed.
fn collect_only(specs: &Path, only: &str, out: &Path) -> (Output, Bundle, PathBuf) {
    let run = collect(
        &[
            "-a",
            "/nonexistent/containerd.sock",
            "--collectors",
            specs.to_str().unwrap(),
            "--only",
            only,
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let path = bundle_path(&run);
    (run, Bundle::open(&path), path)
}

fn stderr(run: &Output) -> String {
    String::from_utf8_lossy(&run.stderr).into_owned()
}

/// Pids of processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmd| String::from_utf8_lossy(&cmd).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn log_over_its_cap_keeps_the_newest_lines_and_records_the_cut() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("daemon.log");
    let text: String = (0..5000).map(|i| format!("log line {i:05}\n")).collect();
    std::fs::write(&log, &text).unwrap();
    let specs = spec_dir(&format!(
        r#"
[[collector]]
name = "op.log"
kind = "journal"
description = "a unit's journal, falling back to its log file"
output = "op/daemon.log"
timeout = "10s"
tags = ["op"]
[collector.params]
unit = "rctr-test-unit"
fallback = ["/nonexistent/first.log", "{}"]
max_bytes = 1000

[[collector]]
name = "op.nolog"
kind = "journal"
description = "a unit with neither journald nor a log file"
output = "op/none.log"
timeout = "10s"
tags = ["op"]
[collector.params]
unit = "rctr-test-unit"
"#,
        log.display()
    ));
    let out = tempfile::tempdir().unwrap();
    let (run, bundle, _) = collect_only(specs.path(), "op", out.path());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_manifest_lists_every_file(&bundle);

    // This machine runs no journald: the fallback file is what was read.
    let kept = bundle.text("op/daemon.log");
    assert!(kept.len() <= 1000, "{} bytes kept", kept.len());
    assert!(
        kept.ends_with("log line 04999\n"),
        "newest line kept: {kept}"
    );
    assert!(
        kept.starts_with("log line "),
        "starts at a whole line: {kept}"
    );
    assert!(text.ends_with(&kept));
    let record = bundle.collector("op.log");
    assert_eq!(record["status"], "ok");
    let cut = &record["cuts"][0];
    assert_eq!(cut["path"], "op/daemon.log");
    assert_eq!(cut["original_bytes"], text.len());
    assert_eq!(cut["kept_bytes"], kept.len());
    let summary = bundle.json("summary.json");
    assert_eq!(summary["cuts"][0]["path"], "op/daemon.log", "{summary}");

    // No journald and no log file is a skip with the reason, not a failure.
    let none = bundle.collector("op.nolog");
    assert_eq!(none["status"], "skipped", "{none}");
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .contains("journald is not running"),
        "{none}"
    );
}

fn credentials_stay_out(series: Series) {
    let daemon = Daemon::start_with(series, &DaemonOptions::deprecated_registry());
    let secret = "rctr-test-secret";
    assert!(
        std::fs::read_to_string(&daemon.config_path)
            .unwrap()
            .contains(secret)
    );
    // The daemon's own log goes in too: containerd may print its CRI config.
    let specs = spec_dir(&format!(
        r#"
[[collector]]
name = "op.daemon-log"
kind = "journal"
description = "the test daemon's log file"
output = "op/containerd.log"
timeout = "10s"
tags = ["op"]
[collector.params]
unit = "containerd"
fallback = ["{}"]
"#,
        daemon.log_path.display()
    ));
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            daemon.address.to_str().unwrap(),
            "--debug-address",
            daemon.debug_address.to_str().unwrap(),
            "--collectors",
            specs.path().to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let bundle = Bundle::open(&bundle_path(&run));
    assert_manifest_lists_every_file(&bundle);

    for (path, data) in &bundle.files {
        let text = String::from_utf8_lossy(data);
        assert!(
            !text.contains(secret),
            "{series:?}: {path} holds the password"
        );
    }
    let record = bundle.collector("config.containerd");
    assert_eq!(record["status"], "ok", "{record}");
    assert!(record["redactions"].as_u64().unwrap() >= 1, "{record}");
    let source = bundle.json("config/containerd/source.json");
    assert_eq!(source["config"], daemon.config_path.to_str().unwrap());
    assert_eq!(source["pid"], daemon.pid);
    let config = bundle.text("config/containerd/config.toml");
    assert!(config.contains("password = \"<redacted>\""), "{config}");
    assert!(config.contains("mirror.rctr-test.invalid"), "{config}");
    assert!(config.contains("username = \"rctr\""), "{config}");
    let md = bundle.text("summary.md");
    assert!(md.contains("value(s) redacted"), "{md}");

    // The running daemon's binary answered `--version`.
    let version = bundle.json("host/containerd-version.json");
    let stdout = version["stdout"].as_str().unwrap();
    assert!(
        stdout.contains(&format!(" {}", series.version_prefix()))
            || stdout.contains(&format!(" v{}", series.version_prefix())),
        "{series:?}: {stdout}"
    );
}

#[test]
fn registry_credentials_never_reach_the_bundle_on_1_6() {
    credentials_stay_out(Series::V1_6);
}

#[test]
fn registry_credentials_never_reach_the_bundle_on_1_7() {
    credentials_stay_out(Series::V1_7);
}

#[test]
fn registry_credentials_never_reach_the_bundle_on_2_1() {
    credentials_stay_out(Series::V2_1);
}

#[test]
fn exec_that_never_ends_is_killed_at_its_deadline_with_its_children() {
    let specs = spec_dir(
        r#"
[[collector]]
name = "op.sleep"
kind = "exec"
description = "a command that never ends"
output = "op/sleep.json"
timeout = "20s"
tags = ["op"]
[collector.params]
argv = ["sleep", "600.0417"]
deadline = "1s"

[[collector]]
name = "op.group"
kind = "exec"
description = "a command whose children never end"
output = "op/group/"
timeout = "20s"
tags = ["op"]
[collector.params]
argv = ["sh", "-c", "echo started; sleep 600.0418 & sleep 600.0419"]
deadline = "1s"
"#,
    );
    let out = tempfile::tempdir().unwrap();
    let (run, bundle, _) = collect_only(specs.path(), "op", out.path());
    assert_eq!(run.status.code(), Some(1), "timed out is partial");
    assert_manifest_lists_every_file(&bundle);

    for name in ["op.sleep", "op.group"] {
        let record = bundle.collector(name);
        assert_eq!(record["status"], "timed_out", "{record}");
        assert!(
            record["error"].as_str().unwrap().contains("deadline of 1s"),
            "{record}"
        );
    }
    let result = bundle.json("op/sleep.json");
    assert_eq!(result["timed_out"], true);
    assert_eq!(result["signal"], 9);
    assert_eq!(bundle.text("op/group/stdout.txt"), "started\n");
    let leftovers = processes_with("600.041");
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn file_spec_does_not_follow_a_symlink_out_of_its_roots() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().canonicalize().unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.join("shadow")).unwrap();
    std::fs::write(dir.join("app.conf"), "level = debug\ntoken = \"tok-123\"\n").unwrap();
    std::fs::write(dir.join("server.key"), "not really a key\n").unwrap();
    let specs = spec_dir(&format!(
        r#"
[[collector]]
name = "op.files"
kind = "file"
description = "named files in one folder"
output = "op/files/"
timeout = "5s"
tags = ["op"]
[collector.params]
paths = ["{dir}/shadow", "{dir}/app.conf"]

[[collector]]
name = "op.glob"
kind = "glob"
description = "every file of the folder"
output = "op/glob/"
timeout = "5s"
tags = ["op"]
[collector.params]
patterns = ["{dir}/*"]
"#,
        dir = dir.display()
    ));
    let out = tempfile::tempdir().unwrap();
    let (run, bundle, _) = collect_only(specs.path(), "op", out.path());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_manifest_lists_every_file(&bundle);

    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let first = shadow.lines().next().unwrap();
    for (path, data) in &bundle.files {
        assert!(!path.ends_with("/shadow"), "{path} copied");
        assert!(!path.ends_with(".key"), "{path} copied");
        assert!(!String::from_utf8_lossy(data).contains(first), "{path}");
    }
    let rel = dir.display().to_string();
    let rel = rel.trim_start_matches('/');
    let conf = bundle.text(&format!("op/glob/{rel}/app.conf"));
    assert_eq!(conf, "level = debug\ntoken = \"<redacted>\"\n");
    assert!(
        bundle
            .files
            .contains_key(&format!("op/files/{rel}/app.conf"))
    );

    let record = bundle.collector("op.glob");
    assert_eq!(record["redactions"], 1, "{record}");
    let reasons: Vec<String> = record["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cut| format!("{} {}", cut["path"], cut["reason"]))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("/shadow") && r.contains("outside")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("server.key") && r.contains("private key")),
        "{reasons:?}"
    );
}

fn inspect(args: &[&str]) -> Output {
    let mut cmd = rctr_diag();
    cmd.arg("inspect").args(args);
    output_within(cmd, Duration::from_secs(30)).expect("inspect finishes")
}

#[test]
fn inspect_prints_the_same_findings_as_collect() {
    let daemon = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            daemon.address.to_str().unwrap(),
            "--debug-address",
            daemon.debug_address.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(60),
    );
    let collected: Value = serde_json::from_slice(&run.stdout).unwrap();
    let findings = &collected["findings"];
    assert!(!findings.as_array().unwrap().is_empty(), "{collected}");
    let path = bundle_path(&run);

    let json = inspect(&[path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let inspected: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(&inspected["findings"], findings);
    assert_eq!(inspected["counts"], collected["counts"]);

    let md = inspect(&[path.to_str().unwrap(), "--markdown"]);
    assert_eq!(md.status.code(), Some(0), "{}", stderr(&md));
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("# rctr-diag summary"), "{md}");
    for finding in findings.as_array().unwrap() {
        assert!(md.contains(finding["title"].as_str().unwrap()), "{md}");
    }
}

/// Rewrites the bundle at `path` into `to`, changing files with `edit`.
fn repack(path: &Path, to: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let bundle = Bundle::open(path);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, data) in &bundle.files {
        let data = edit(name, data.clone());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        let full = format!("{}/{name}", bundle.top);
        tar.append_data(&mut header, full, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn inspect_refuses_damaged_and_foreign_archives_with_exit_2() {
    let specs = spec_dir(
        r#"
[[collector]]
name = "op.filler"
kind = "exec"
description = "enough output that the archive spans many blocks"
output = "op/filler/"
timeout = "10s"
tags = ["op"]
[collector.params]
argv = ["seq", "1", "200000"]
"#,
    );
    let out = tempfile::tempdir().unwrap();
    let (_, _, path) = collect_only(specs.path(), "op,host.info", out.path());
    let good = inspect(&[path.to_str().unwrap()]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let bytes = std::fs::read(&path).unwrap();
    let work = tempfile::tempdir().unwrap();

    let expect_refusal = |name: &str, data: &[u8], words: &str| {
        let file = work.path().join(name);
        std::fs::write(&file, data).unwrap();
        let run = inspect(&[file.to_str().unwrap()]);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(file.to_str().unwrap()),
            "{name} is named: {err}"
        );
        assert!(err.contains(words), "{name}: {err}");
        assert!(run.stdout.is_empty(), "{name}: nothing on stdout");
    };
    expect_refusal(
        "truncated.tar.gz",
        &bytes[..bytes.len() / 2],
        "truncated or corrupt",
    );
    let mut corrupted = bytes.clone();
    let middle = corrupted.len() / 2;
    for byte in &mut corrupted[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    expect_refusal("corrupted.tar.gz", &corrupted, "truncated or corrupt");
    expect_refusal("notes.tar.gz", b"just some text\n", "not a gzip");

    // A tar.gz of something else.
    let mut foreign = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut foreign, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        tar.append_data(&mut header, "photos/cat.txt", &b"meow!\n"[..])
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    }
    expect_refusal("foreign.tar.gz", &foreign, "not an rctr-diag bundle");

    // A newer major format is refused with what to do.
    let newer = work.path().join("newer.tar.gz");
    repack(&path, &newer, |name, data| {
        if name != "manifest.json" {
            return data;
        }
        let mut manifest: Value = serde_json::from_slice(&data).unwrap();
        manifest["format_version"] = 2.into();
        serde_json::to_vec(&manifest).unwrap()
    });
    let run = inspect(&[newer.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("newer"), "{}", stderr(&run));

    // A bundle of the first format version, from before per-collector
    // redactions and cuts were recorded, still reads.
    let older = work.path().join("older.tar.gz");
    repack(&path, &older, |name, data| {
        if name != "manifest.json" {
            return data;
        }
        let mut manifest: Value = serde_json::from_slice(&data).unwrap();
        for record in manifest["collectors"].as_array_mut().unwrap() {
            let record = record.as_object_mut().unwrap();
            record.remove("redactions");
            record.remove("cuts");
        }
        serde_json::to_vec(&manifest).unwrap()
    });
    let run = inspect(&[older.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));

    // A file changed after collection: the rest is read, the file is named.
    let changed = work.path().join("changed.tar.gz");
    repack(&path, &changed, |name, data| {
        if name == "host/info.json" {
            b"{\"hostname\": \"somewhere-else\"}".to_vec()
        } else {
            data
        }
    });
    let run = inspect(&[changed.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["severity"], "critical", "{report}");
    assert_eq!(finding["file"], "host/info.json", "{report}");
    assert!(
        finding["title"].as_str().unwrap().contains("sha256"),
        "{report}"
    );
}

#[test]
fn over_the_size_budget_the_lowest_priority_output_is_dropped() {
    // Random bytes do not compress: each stream is about 1.5 MiB in the archive.
    let specs = spec_dir(
        r#"
[[collector]]
name = "op.keep"
kind = "exec"
description = "high-priority output"
output = "op/keep/"
timeout = "10s"
tags = ["op"]
priority = 90
[collector.params]
argv = ["head", "-c", "1500000", "/dev/urandom"]
max_bytes = 2000000
redact = false

[[collector]]
name = "op.drop"
kind = "exec"
description = "low-priority output"
output = "op/drop/"
timeout = "10s"
tags = ["op"]
priority = 10
[collector.params]
argv = ["head", "-c", "1500000", "/dev/urandom"]
max_bytes = 2000000
redact = false
"#,
    );
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            "/nonexistent/containerd.sock",
            "--collectors",
            specs.path().to_str().unwrap(),
            "--only",
            "op",
            "--max-size",
            "2MiB",
            "-o",
            out.path().to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let path = bundle_path(&run);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= 2 << 20, "bundle is {size} bytes");
    let bundle = Bundle::open(&path);
    assert_manifest_lists_every_file(&bundle);

    assert_eq!(bundle.files["op/keep/stdout.txt"].len(), 1_500_000);
    assert!(!bundle.files.contains_key("op/drop/stdout.txt"));
    let record = bundle.collector("op.drop");
    let cut = record["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cut| cut["path"] == "op/drop/stdout.txt")
        .unwrap_or_else(|| panic!("the drop is recorded: {record}"));
    assert_eq!(cut["kept_bytes"], 0);
    assert!(
        cut["reason"].as_str().unwrap().contains("--max-size 2 MiB"),
        "{cut}"
    );
    let files: Vec<&Value> = record["files"].as_array().unwrap().iter().collect();
    assert!(
        !files.contains(&&Value::from("op/drop/stdout.txt")),
        "{record}"
    );
    let md = bundle.text("summary.md");
    assert!(md.contains("op/drop/stdout.txt"), "{md}");
}

#[test]
fn too_little_free_space_refuses_to_start_unless_forced() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "-a",
        "/nonexistent/containerd.sock",
        "--only",
        "host.info",
        "--max-size",
        "900T",
        "-o",
        out.path().to_str().unwrap(),
    ];
    let run = collect(&args, Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(2));
    let err = stderr(&run);
    assert!(
        err.contains("less than the bundle's budget of 900 TiB"),
        "{err}"
    );
    assert!(err.contains(out.path().to_str().unwrap()), "{err}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    let run = collect(&forced, Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    bundle_path(&run);
}

/// A private tmux server, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let tmux = Tmux {
            socket: common::unique_id("rctr-tmux"),
        };
        let status = std::process::Command::new("tmux")
            .args([
                "-L",
                &tmux.socket,
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "40",
            ])
            .arg(command)
            .status()
            .expect("tmux runs");
        assert!(status.success());
        tmux
    }

    fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `found` holds, for at most a minute.
    fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        for _ in 0..600 {
            let screen = self.screen();
            if found(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("never saw {what}; screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

const SLOW_SPEC: &str = r#"
[[collector]]
name = "op.slow"
kind = "exec"
description = "a command that takes a few seconds"
output = "op/slow.json"
timeout = "30s"
tags = ["op"]
[collector.params]
argv = ["sleep", "3"]
"#;

#[test]
fn progress_is_shown_on_a_terminal() {
    let specs = spec_dir(SLOW_SPEC);
    let out = tempfile::tempdir().unwrap();
    let done = out.path().join("done");
    let command = format!(
        "{} collect -a /nonexistent/containerd.sock --system-collectors /nonexistent \
         --collectors {} --only op,host -o {}; touch {}; sleep 600",
        env!("CARGO_BIN_EXE_rctr-diag"),
        specs.path().display(),
        out.path().display(),
        done.display()
    );
    let tmux = Tmux::start(&command);

    // While the slow collector runs, the live line names it with its time.
    let live = tmux.wait_for("the live line", |s| s.contains("running: op.slow"));
    let line = live
        .lines()
        .find(|l| l.contains("running: op.slow"))
        .unwrap();
    assert!(
        line.contains(" ok, ") && line.contains(" failed; 1 running"),
        "{line}"
    );
    assert!(line.contains('/'), "done/total shown: {line}");

    // At the end: the line is gone; the bundle, its size and findings stay.
    let end = tmux.wait_for("the end", |_| done.exists());
    assert!(!end.contains("running:"), "{end}");
    let bundle = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a bundle");
    let told = format!("bundle: {} (", bundle.display());
    assert!(end.contains(&told), "{end}");
    assert!(end.contains("KiB)"), "{end}");
}

#[test]
fn no_progress_on_a_pipe() {
    let specs = spec_dir(SLOW_SPEC);
    let out = tempfile::tempdir().unwrap();
    let (run, _, path) = collect_only(specs.path(), "op", out.path());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(!err.contains("running"), "{err}");
    assert!(!err.contains("bundle:"), "{err}");
    assert!(!err.contains('\x1b'), "no terminal control: {err:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        path.to_str().unwrap(),
        "stdout holds only the path"
    );
}

/// The message part of `dmesg` lines, without timestamps.
fn kernel_messages(text: &str) -> Vec<String> {
    // `[    1.234567] message` (dmesg, /dev/kmsg) or `2026-...+00:00 message` (iso).
    text.lines()
        .filter_map(|line| match line.starts_with('[') {
            true => line.split_once("] ").map(|(_, m)| m.trim().to_string()),
            false => line.split_once(' ').map(|(_, m)| m.trim().to_string()),
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn kernel_log_equals_dmesg_and_falls_back_to_kmsg() {
    let dmesg = std::process::Command::new("dmesg").output().unwrap();
    let known = kernel_messages(&String::from_utf8_lossy(&dmesg.stdout));
    // Its first message is the oldest still in the ring buffer.
    let first = known
        .first()
        .expect("the kernel has logged something")
        .clone();

    for path_env in [None, Some("/nonexistent")] {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = rctr_diag();
        cmd.args(["collect", "-a", "/nonexistent/containerd.sock", "--only"])
            .args(["logs.kernel", "--system-collectors", "/nonexistent", "-o"])
            .arg(out.path());
        if let Some(path) = path_env {
            // No dmesg in PATH: /dev/kmsg is read instead.
            cmd.env("PATH", path);
        }
        let run = output_within(cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        let bundle = Bundle::open(&bundle_path(&run));
        let record = bundle.collector("logs.kernel");
        assert_eq!(record["status"], "ok", "{record}");
        let log = bundle.text("logs/kernel.log");
        let got = kernel_messages(&log);
        assert!(
            got.iter()
                .any(|m| m.ends_with(&first) || first.ends_with(m.as_str())),
            "{path_env:?}: the oldest message {first:?} is in the bundle:\n{log}"
        );
    }
}
