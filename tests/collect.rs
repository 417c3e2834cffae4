//! `rctr-diag collect` against real containerd daemons: what the bundle says
//! must equal what `ctr` says about the same daemon, on every series, and bad
//! inputs must give clear errors without losing what could be collected.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bundle::{
    Bundle, assert_manifest_lists_every_file, assert_only_bundle_in, bundle_path, collect,
    collect_from, rctr_diag, spawn_collect_from,
};
use common::{Daemon, DaemonOptions, Series, output_within, unique_id};
use serde_json::Value;

/// `ctr version`'s server version and revision.
fn ctr_version(daemon: &Daemon) -> (String, String) {
    let text = daemon.ctr_ok(&["version"]);
    let server = text.split("Server:").nth(1).expect("a Server section");
    let field = |name: &str| {
        server
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("Version:"), field("Revision:"))
}

/// `ctr plugins ls` as (type, id, status) triples.
fn ctr_plugins(daemon: &Daemon) -> BTreeSet<(String, String, String)> {
    daemon
        .ctr_ok(&["plugins", "ls"])
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let status = fields.last().unwrap().to_string();
            (fields[0].to_string(), fields[1].to_string(), status)
        })
        .collect()
}

fn bundle_matches_ctr(series: Series) {
    let daemon = Daemon::start(series);
    let ns = "rctr-collect";
    daemon.import_image(ns);
    daemon.run_container(ns, &unique_id("collect"), &["sleep", "3600"]);

    let (run, bundle, _out) = collect_from(&daemon, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);

    // Version and revision.
    let (version, revision) = ctr_version(&daemon);
    let ours = bundle.json("containerd/version.json");
    assert_eq!(ours["version"], version.as_str());
    assert_eq!(ours["revision"], revision.as_str());
    let manifest = bundle.json("manifest.json");
    assert_eq!(manifest["containerd"]["version"], version.as_str());

    // Plugins, with the status ctr derives from the init error.
    let ours: BTreeSet<(String, String, String)> = bundle
        .json("containerd/plugins.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("type"), s("id"), s("status"))
        })
        .collect();
    assert_eq!(ours, ctr_plugins(&daemon));

    // Namespaces.
    let ctr_ns: BTreeSet<String> = daemon
        .ctr_ok(&["namespaces", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    let ours: BTreeSet<String> = bundle
        .json("containerd/namespaces.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert!(ours.contains(ns));
    assert_eq!(ours, ctr_ns);

    // The server's pid is the daemon we started, where the daemon says it.
    let server = bundle.json("containerd/server.json");
    if series != Series::V1_6 {
        assert_eq!(server["pid"], daemon.pid);
    }
    let process = bundle.json("host/containerd-process.json");
    assert_eq!(process["pid"], daemon.pid);
    assert_eq!(process["found_by"], "listening socket");
    assert!(process["rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(process["threads"].as_u64().unwrap() >= 1);

    // The record of the run.
    assert_manifest_lists_every_file(&bundle);
    assert!(bundle.top.starts_with("rctr-diag-"), "{}", bundle.top);
    for name in ["containerd.version", "containerd.plugins", "host.info"] {
        assert_eq!(bundle.collector(name)["status"], "ok", "{name}");
    }
    assert_eq!(run.status.code(), Some(0), "stderr: {stderr}");

    // Deprecations: reported from 1.7.9 on, explained as unreported before.
    let deprecations = bundle.json("containerd/deprecations.json");
    let summary_md = bundle.text("summary.md");
    if series == Series::V1_6 {
        assert_eq!(deprecations["reported"], false);
        let note =
            format!("not reported by containerd {version}; reporting began in 1.6.25 / 1.7.9");
        assert_eq!(deprecations["note"], note.as_str());
        let record = bundle.collector("containerd.deprecations");
        assert_eq!(record["status"], "skipped");
        assert_eq!(record["reason"], note.as_str());
        assert!(summary_md.contains(&note), "{summary_md}");
    } else {
        assert_eq!(deprecations["reported"], true);
        assert_eq!(bundle.collector("containerd.deprecations")["status"], "ok");
    }
}

#[test]
fn bundle_matches_ctr_on_1_6() {
    bundle_matches_ctr(Series::V1_6);
}

#[test]
fn bundle_matches_ctr_on_1_7() {
    bundle_matches_ctr(Series::V1_7);
}

#[test]
fn bundle_matches_ctr_on_2_1() {
    bundle_matches_ctr(Series::V2_1);
}

#[test]
fn deprecation_warnings_equal_ctr_and_become_findings() {
    let daemon = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    let listed = daemon.ctr_ok(&["deprecations", "list", "--format", "json"]);
    let expected: Vec<Value> = serde_json::from_str(&listed).expect("ctr prints JSON");
    let pairs = |warnings: &[Value], id: &str, message: &str| -> BTreeSet<(String, String)> {
        warnings
            .iter()
            .map(|w| {
                (
                    w[id].as_str().unwrap().into(),
                    w[message].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let expected = pairs(&expected, "id", "message");
    assert!(
        expected
            .iter()
            .any(|(id, _)| id.ends_with("cri-registry-mirrors")),
        "the config raises warnings: {listed}"
    );

    let (run, bundle, _out) = collect_from(&daemon, &["--json"]);
    let report = bundle.json("containerd/deprecations.json");
    assert_eq!(report["reported"], true);
    let ours = pairs(report["warnings"].as_array().unwrap(), "id", "message");
    assert_eq!(ours, expected);

    let summary = bundle.json("summary.json");
    let summary_md = bundle.text("summary.md");
    let printed: Value = serde_json::from_slice(&run.stdout).unwrap();
    for (id, message) in &expected {
        let title = format!("deprecated: {id}");
        let found = summary["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["title"] == title.as_str())
            .unwrap_or_else(|| panic!("no finding {title}: {summary}"));
        assert_eq!(found["severity"], "warning");
        assert!(
            found["evidence"]
                .as_str()
                .unwrap()
                .contains(message.as_str())
        );
        assert!(summary_md.contains(&format!("**{title}**")), "{summary_md}");
        assert!(
            printed["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["title"] == title.as_str())
        );
    }
}

/// Runs against an address that cannot work and checks the bundle that
/// still comes out: daemon collectors failed with `error`, host ones ok.
fn bundle_despite_bad_address(address: &Path, error: &str, finding: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            address.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--timeout",
            "20s",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let path = bundle_path(&run);
    assert_only_bundle_in(out.path(), &path);
    let bundle = Bundle::open(&path);
    assert_manifest_lists_every_file(&bundle);
    for name in [
        "containerd.version",
        "containerd.plugins",
        "containerd.namespaces",
    ] {
        let record = bundle.collector(name);
        assert_eq!(record["status"], "failed", "{record}");
        assert!(
            record["error"].as_str().unwrap().contains(error),
            "{record}"
        );
    }
    assert_eq!(bundle.collector("host.info")["status"], "ok");
    let summary = bundle.json("summary.json");
    assert_eq!(summary["findings"][0]["severity"], "critical", "{summary}");
    assert_eq!(summary["findings"][0]["title"], finding, "{summary}");
}

#[test]
fn missing_socket_is_named_and_the_host_is_still_collected() {
    let dir = tempfile::tempdir().unwrap();
    let address = dir.path().join("containerd.sock");
    let error = format!("containerd socket {} does not exist", address.display());
    bundle_despite_bad_address(&address, &error, "containerd could not be reached");
}

#[test]
fn plain_file_is_not_taken_for_a_socket() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let error = format!(
        "{} is a regular file, not a unix socket",
        file.path().display()
    );
    bundle_despite_bad_address(file.path(), &error, "containerd could not be reached");
}

#[test]
fn socket_of_another_server_is_not_containerd() {
    let dir = tempfile::tempdir().unwrap();
    let address = dir.path().join("web.sock");
    let listener = UnixListener::bind(&address).unwrap();
    // An HTTP/1.1 server that answers every connection with a 400.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let error = format!("{} does not answer as containerd", address.display());
    bundle_despite_bad_address(&address, &error, "the socket is not containerd's");
}

#[test]
fn missing_output_folder_is_named_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-here");
    let run = collect(&["-o", missing.to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&format!(
            "output folder {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(run.stdout.is_empty());
    assert!(!missing.exists());
}

/// A read-only tmpfs, unmounted when dropped (also when the test fails).
struct ReadOnlyMount(tempfile::TempDir);

impl ReadOnlyMount {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "rctr-test-ro"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a read-only tmpfs needs root");
        ReadOnlyMount(dir)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn read_only_output_folder_is_named_and_nothing_is_left() {
    let mount = ReadOnlyMount::new();
    let run = collect(
        &["-o", mount.0.path().to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot create the bundle in {}",
            mount.0.path().display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(std::fs::read_dir(mount.0.path()).unwrap().count(), 0);
}

#[test]
fn malformed_spec_file_is_named_with_its_key_before_anything_runs() {
    let specs = tempfile::tempdir().unwrap();
    let file = specs.path().join("site.toml");
    std::fs::write(
        &file,
        "[[collector]]\nname = \"site.thing\"\nkind = \"host-info\"\n\
         description = \"a site collector\"\noutput = \"site/x.json\"\ntimeout = \"ten\"\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "--collectors",
            specs.path().to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("collector \"site.thing\".timeout"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "no bundle, no temp file"
    );
}

#[test]
fn operator_spec_adds_a_collector() {
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(
        specs.path().join("site.toml"),
        "[[collector]]\nname = \"site.host\"\nkind = \"host-info\"\n\
         description = \"host facts again, under site/\"\noutput = \"site/host.json\"\n\
         timeout = \"3s\"\ntags = [\"site\"]\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "--collectors",
            specs.path().to_str().unwrap(),
            "--only",
            "site",
            "-o",
            out.path().to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bundle = Bundle::open(&bundle_path(&run));
    assert!(
        bundle.json("site/host.json")["memory"]["total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let names: Vec<Value> = bundle.json("manifest.json")["collectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![Value::from("site.host")]);
}

fn hung_daemon_still_yields_bundle(series: Series) {
    let daemon = Daemon::start(series);
    daemon.freeze();
    let started = Instant::now();
    let out = tempfile::tempdir().unwrap();
    let run = collect(
        &[
            "-a",
            daemon.address.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--timeout",
            "10s",
        ],
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    daemon.thaw();

    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert_eq!(run.status.code(), Some(1));
    let path = bundle_path(&run);
    assert_only_bundle_in(out.path(), &path);
    let bundle = Bundle::open(&path);
    assert_manifest_lists_every_file(&bundle);
    // The Version probe got no answer within --hung-after (4s by default),
    // which ended every call before its collector's timeout.
    for name in [
        "containerd.version",
        "containerd.server",
        "containerd.plugins",
    ] {
        let record = bundle.collector(name);
        assert_eq!(record["status"], "failed", "{record}");
        let error = record["error"].as_str().unwrap();
        assert!(
            error.contains("did not answer a Version call within 4s"),
            "{record}"
        );
    }
    assert_eq!(bundle.collector("host.info")["status"], "ok");
    let process = bundle.collector("host.containerd-process");
    assert_eq!(process["status"], "ok", "{process}");
    assert_eq!(
        bundle.json("host/containerd-process.json")["pid"],
        daemon.pid
    );
    let summary = bundle.json("summary.json");
    assert_eq!(summary["findings"][0]["title"], "containerd did not answer");
}

#[test]
fn hung_daemon_still_yields_bundle_on_1_6() {
    hung_daemon_still_yields_bundle(Series::V1_6);
}

#[test]
fn hung_daemon_still_yields_bundle_on_1_7() {
    hung_daemon_still_yields_bundle(Series::V1_7);
}

#[test]
fn hung_daemon_still_yields_bundle_on_2_1() {
    hung_daemon_still_yields_bundle(Series::V2_1);
}

#[test]
fn interrupt_finishes_an_incomplete_bundle() {
    let daemon = Daemon::start(Series::V2_1);
    daemon.freeze();
    let out = tempfile::tempdir().unwrap();
    // The daemon's collectors must still be waiting when SIGINT comes.
    let mut child = spawn_collect_from(&daemon, out.path(), &["--hung-after", "0"]);
    // Give the host collectors time to finish while the daemon ones hang.
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let pid = child.id();
    let waited = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    daemon.thaw();
    let Some(status) = waited else {
        let _ = child.kill();
        panic!("rctr-diag {pid} did not finish after SIGINT");
    };
    let run = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    let path = bundle_path(&run);
    assert_only_bundle_in(out.path(), &path);
    let bundle = Bundle::open(&path);
    assert_manifest_lists_every_file(&bundle);
    let manifest = bundle.json("manifest.json");
    assert_eq!(manifest["complete"], false);
    assert_eq!(manifest["incomplete_reason"], "interrupted by SIGINT");
    assert_eq!(
        bundle.collector("containerd.version")["status"],
        "interrupted"
    );
    assert_eq!(bundle.collector("host.info")["status"], "ok");
    assert!(
        bundle
            .text("summary.md")
            .contains("**INCOMPLETE**: interrupted by SIGINT")
    );
}

#[test]
fn collectors_lists_every_builtin_collector() {
    let out = output_within(
        {
            let mut cmd = rctr_diag();
            cmd.args([
                "collectors",
                "--json",
                "--system-collectors",
                "/nonexistent",
            ]);
            cmd
        },
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.status.success());
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeSet<&str> = listed.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in ["containerd.version", "containerd.deprecations", "host.info"] {
        assert!(names.contains(name), "{names:?}");
    }
    for collector in &listed {
        for key in ["kind", "tags", "default", "description"] {
            assert!(!collector[key].is_null(), "{collector}");
        }
    }
}
