//! `rctr-diag audit` against real containerd daemons: the daemon's own
//! warnings and the static reading of its config file must agree where the
//! daemon reports, the static part must still see the same problems where it
//! cannot (1.6.20) or where no daemon runs, content checks must name what
//! `ctr` lists, and the exit code must gate on blockers.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::bundle::{Bundle, collect_from, rctr_diag};
use common::{Daemon, DaemonOptions, IMAGE, Series, output_within, unique_id};
use serde_json::Value;

const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Runs `rctr-diag audit ARGS`.
fn audit(args: &[&str]) -> Output {
    let mut cmd = rctr_diag();
    cmd.arg("audit").args(args);
    output_within(cmd, Duration::from_secs(60)).expect("rctr-diag audit finishes")
}

/// Runs `rctr-diag audit --format json ARGS`; returns the exit code and the
/// report.
fn audit_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = audit(&all);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit printed no JSON ({e}): stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["format_version"], 1);
    (out.status.code().expect("an exit code"), report)
}

fn audit_daemon(daemon: &Daemon, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["-a", daemon.address.to_str().unwrap()];
    args.extend_from_slice(extra);
    audit_json(&args)
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().unwrap()
}

fn finding<'a>(report: &'a Value, rule: &str) -> &'a Value {
    findings(report)
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no finding {rule}: {report:#}"))
}

fn has_source(finding: &Value, source: &str) -> bool {
    finding["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == source)
}

/// Rule ids of findings seen in the config file.
fn config_rules(report: &Value) -> BTreeSet<String> {
    findings(report)
        .iter()
        .filter(|f| has_source(f, "config"))
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// Warning ids `ctr deprecations list` prints.
fn ctr_warning_ids(daemon: &Daemon) -> BTreeSet<String> {
    let listed = daemon.ctr_ok(&["deprecations", "list", "--format", "json"]);
    // ctr prints nothing at all when there are none.
    if listed.trim().is_empty() {
        return BTreeSet::new();
    }
    let listed: Vec<Value> = serde_json::from_str(&listed).expect("ctr prints JSON");
    listed
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn live_warnings_and_static_findings_agree_on_1_7() {
    let daemon = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    let expected = ctr_warning_ids(&daemon);
    assert!(
        expected.contains("io.containerd.deprecation/cri-registry-mirrors"),
        "{expected:?}"
    );

    // No --config: the file is found from the daemon's command line.
    let (code, report) = audit_daemon(&daemon, &[]);
    assert_eq!(report["ran"], true, "{report:#}");
    assert_eq!(report["config"]["found_by"], "daemon_command_line");
    assert_eq!(
        report["config"]["path"],
        daemon.config_path.to_str().unwrap()
    );
    assert_eq!(report["target"], "2.0", "1.7's next removal is 2.0");
    assert_eq!(report["live"]["available"], true);

    // The live warnings are ctr's, and each maps to a rule of the table.
    let live: BTreeSet<String> = report["live"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(w["rule"].is_string(), "unmapped warning {w}");
            w["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(live, expected);

    // Agreement: the warning ids of the config findings are the live ones,
    // and each live one was also found in the file.
    let static_ids: BTreeSet<String> = findings(&report)
        .iter()
        .filter(|f| has_source(f, "config") && f["warning_id"].is_string())
        .map(|f| f["warning_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(static_ids, live);
    for id in &live {
        let rule = id.trim_start_matches("io.containerd.deprecation/");
        let found = finding(&report, rule);
        assert!(has_source(found, "daemon") && has_source(found, "config"));
        // The daemon's message decides the removal: 1.7 says 2.1.
        assert_eq!(found["removed_in_from"], "daemon");
        let message = found["daemon_message"].as_str().unwrap();
        let removed = found["removed_in"].as_str().unwrap();
        assert!(
            message.contains(&format!("removed in containerd v{removed}")),
            "{message}"
        );
        assert_eq!(found["level"], "warning", "not removed by 2.0");
    }
    // The config file's own location is named, never a secret value.
    let configs = finding(&report, "cri-registry-configs");
    let locations = configs["locations"].to_string();
    assert!(locations.contains(daemon.config_path.to_str().unwrap()));
    assert!(!report.to_string().contains("rctr-test-secret"));
    assert_eq!(code, 0, "no blockers for 2.0: {report:#}");

    // Against 2.1, where 1.7's messages put the removal, they block.
    let (code, report) = audit_daemon(&daemon, &["--target", "2.1"]);
    assert_eq!(finding(&report, "cri-registry-mirrors")["level"], "blocker");
    assert_eq!(code, 1);

    // The other formats say the same.
    let table = audit(&["-a", daemon.address.to_str().unwrap(), "--target", "2.1"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("blocker") && table.contains("cri-registry-mirrors"),
        "{table}"
    );
    let md = audit(&[
        "-a",
        daemon.address.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    assert_eq!(md.status.code(), Some(0));
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.contains("| **warning** | `cri-registry-mirrors`"),
        "{md}"
    );

    // collect runs the same audit into the bundle, and the findings follow.
    let (_run, bundle, _out) = collect_from(&daemon, &["--only", "audit"]);
    let stored = bundle.json("audit/audit.json");
    assert_eq!(stored["format_version"], 1);
    assert_eq!(config_rules(&stored), config_rules(&report));
    assert_eq!(bundle.collector("audit.upgrade")["status"], "ok");
    let summary = bundle.json("summary.json");
    let titles: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["analyzer"] == "audit")
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.contains("(cri-registry-mirrors)")),
        "{titles:?}"
    );
}

#[test]
fn static_audit_on_1_6_reports_the_same_config_problems() {
    let newer = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    let (_, reference) = audit_daemon(&newer, &[]);
    drop(newer);

    let daemon = Daemon::start_with(Series::V1_6, &DaemonOptions::deprecated_registry());
    // 1.6.20's ctr has no `deprecations` command: the daemon cannot say.
    let help = daemon.ctr(&["deprecations", "list"]);
    assert!(!help.status.success());
    let (code, report) = audit_daemon(&daemon, &[]);
    assert_eq!(report["ran"], true);
    assert_eq!(report["live"]["available"], false);
    assert_eq!(report["live"]["warnings"], serde_json::json!([]));
    let note = report["live"]["note"].as_str().unwrap();
    assert!(note.contains("reporting began in 1.6.25 / 1.7.9"), "{note}");
    assert_eq!(report["target"], "2.0");

    // The same problems as on 1.7, from the file alone, with the table's
    // removal release.
    assert_eq!(config_rules(&report), config_rules(&reference));
    for rule in ["cri-registry-mirrors", "cri-registry-configs"] {
        let found = finding(&report, rule);
        assert_eq!(found["sources"], serde_json::json!(["config"]));
        assert_eq!(found["removed_in_from"], "table");
        assert_eq!(found["removed_in"], "2.4");
    }
    assert_eq!(code, 0);
}

#[test]
fn version_2_config_on_2_1_gets_version_3_migration_notes() {
    let options = DaemonOptions {
        cri: true,
        extra_config: "[plugins.\"io.containerd.monitor.v1.cgroups\"]\n  no_prometheus = true\n"
            .into(),
        ..DaemonOptions::new()
    };
    let daemon = Daemon::start_with(Series::V2_1, &options);
    let (code, report) = audit_daemon(&daemon, &[]);
    assert_eq!(report["live"]["available"], true);
    assert_eq!(report["containerd"]["reachable"], true);
    for rule in [
        "config-version",
        "config-v3-cri-split",
        "config-v3-cgroups-monitor",
    ] {
        let note = finding(&report, rule);
        assert_eq!(note["level"], "note", "{note}");
        assert!(note["instead"].as_str().unwrap().len() > 10);
    }
    assert!(
        finding(&report, "config-v3-cri-split")["instead"]
            .as_str()
            .unwrap()
            .contains("io.containerd.cri.v1.images")
    );
    assert_eq!(report["counts"]["blockers"], 0, "{report:#}");
    assert_eq!(code, 0);

    // The daemon itself agrees it raised nothing for this file.
    assert!(ctr_warning_ids(&daemon).is_empty());
    drop(daemon);

    // A version 2 registry section raises the same warnings on 2.1 as the
    // static reading finds, with 2.1's removal releases.
    let daemon = Daemon::start_with(Series::V2_1, &DaemonOptions::deprecated_registry());
    let expected = ctr_warning_ids(&daemon);
    let (code, report) = audit_daemon(&daemon, &[]);
    let static_ids: BTreeSet<String> = findings(&report)
        .iter()
        .filter(|f| has_source(f, "config") && f["warning_id"].is_string())
        .map(|f| f["warning_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(static_ids, expected);
    for id in &expected {
        let rule = id.trim_start_matches("io.containerd.deprecation/");
        let found = finding(&report, rule);
        assert_eq!(found["removed_in_from"], "daemon");
        assert_eq!(found["level"], "blocker", "removed by the default target");
    }
    assert_eq!(report["target"], "2.4");
    assert_eq!(code, 1);
}

#[test]
fn hung_daemon_still_gets_the_static_audit() {
    let daemon = Daemon::start_with(Series::V1_7, &DaemonOptions::deprecated_registry());
    daemon.freeze();
    let (code, report) = audit_daemon(&daemon, &[]);
    daemon.thaw();
    assert_eq!(report["containerd"]["reachable"], false);
    let error = report["containerd"]["error"].as_str().unwrap();
    assert!(error.contains("no answer"), "{error}");
    // The process still names its config file.
    assert_eq!(report["config"]["found_by"], "daemon_command_line");
    let mirrors = finding(&report, "cri-registry-mirrors");
    assert_eq!(mirrors["sources"], serde_json::json!(["config"]));
    assert_eq!(report["target"], "2.0");
    assert_eq!(code, 0);
}

#[test]
fn content_checks_name_schema1_images_and_old_runtimes() {
    let daemon = Daemon::start(Series::V1_7);
    let ns = "rctr-audit";
    daemon.import_image(ns);
    let old = unique_id("runc-v1");
    daemon.ctr_ns_ok(
        ns,
        &[
            "containers",
            "create",
            "--runtime",
            "io.containerd.runc.v1",
            "--label",
            "containerd.io/restart.logpath=/var/log/old.log",
            IMAGE,
            &old,
        ],
    );
    let current = unique_id("runc-v2");
    daemon.ctr_ns_ok(ns, &["containers", "create", IMAGE, &current]);
    let schema1 = "registry.rctr-test.invalid/old:schema1";
    create_image(&daemon.address, ns, schema1, SCHEMA1);

    // What ctr lists: the runtime per container, the type per image.
    let containers = daemon.ctr_ns_ok(ns, &["containers", "ls"]);
    let old_line = containers.lines().find(|l| l.starts_with(&old)).unwrap();
    assert!(
        old_line.trim_end().ends_with("io.containerd.runc.v1"),
        "{containers}"
    );
    let images = daemon.ctr_ns_ok(ns, &["images", "ls"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with(schema1) && l.contains(SCHEMA1)),
        "{images}"
    );

    let (code, report) = audit_daemon(&daemon, &[]);
    assert_eq!(report["content"]["available"], true);
    assert_eq!(report["content"]["containers_checked"], 2);
    assert_eq!(report["content"]["images_checked"], 2);

    let runc = finding(&report, "runtime-runc-v1");
    assert_eq!(runc["level"], "blocker");
    assert_eq!(runc["sources"], serde_json::json!(["content"]));
    let where_ = runc["locations"].to_string();
    assert!(where_.contains(&format!("{ns}/{old}")), "{where_}");
    assert!(!where_.contains(&current), "{where_}");
    let logpath = finding(&report, "restart-logpath");
    assert!(logpath["locations"].to_string().contains(&old));
    let image = finding(&report, "pull-schema-1-image");
    assert_eq!(image["level"], "blocker");
    assert!(
        image["locations"]
            .to_string()
            .contains(&format!("{ns}/{schema1}"))
    );
    assert_eq!(code, 1, "blockers for 2.0");
}

/// Stores an image record whose target has `media_type` (the content itself
/// is not needed for the record), as an old pull would have left it.
fn create_image(address: &Path, namespace: &str, name: &str, media_type: &str) {
    use containerd_client::services::v1::images_client::ImagesClient;
    use containerd_client::services::v1::{CreateImageRequest, Image};
    use containerd_client::types::Descriptor;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = containerd_client::connect(address).await.unwrap();
        let mut client = ImagesClient::new(channel);
        let image = Image {
            name: name.into(),
            target: Some(Descriptor {
                media_type: media_type.into(),
                digest: format!("sha256:{}", "ab".repeat(32)),
                size: 1234,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut request = tonic::Request::new(CreateImageRequest {
            image: Some(image),
            source_date_epoch: None,
        });
        request
            .metadata_mut()
            .insert("containerd-namespace", namespace.parse().unwrap());
        tokio::time::timeout(Duration::from_secs(10), client.create(request))
            .await
            .expect("Images.Create answers")
            .expect("Images.Create succeeds");
    });
}

#[test]
fn offline_audit_exits_by_the_config_alone() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit");
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("containerd.sock");
    let nowhere = nowhere.to_str().unwrap();

    // A version 2 file: assumed 1.x, so the target is 2.0 and systemd_cgroup
    // blocks.
    let file = fixtures.join("cri-systemd-cgroup-v1.toml");
    let (code, report) = audit_json(&["-a", nowhere, "--config", file.to_str().unwrap()]);
    assert_eq!(report["containerd"]["reachable"], false);
    assert_eq!(report["live"]["available"], false);
    assert_eq!(report["content"]["available"], false);
    assert_eq!(report["config"]["found_by"], "flag");
    assert_eq!(report["target"], "2.0");
    assert_eq!(
        finding(&report, "cri-systemd-cgroup-v1")["level"],
        "blocker"
    );
    assert_eq!(code, 1);

    // Imports are followed, relative to the file.
    let main = dir.path().join("config.toml");
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(&main, "version = 3\nimports = [\"conf.d/*.toml\"]\n").unwrap();
    std::fs::copy(
        fixtures.join("cri-registry-mirrors.toml"),
        dir.path().join("conf.d/10-mirrors.toml"),
    )
    .unwrap();
    let (code, report) = audit_json(&["-a", nowhere, "-c", main.to_str().unwrap()]);
    assert_eq!(report["config"]["files"].as_array().unwrap().len(), 2);
    let mirrors = finding(&report, "cri-registry-mirrors");
    assert!(mirrors["locations"].to_string().contains("10-mirrors.toml"));
    assert_eq!(code, 0, "2.1 is the target of a version 3 file");

    // A clean version 3 file: nothing, exit 0.
    let clean = fixtures.join("clean-v3.toml");
    let (code, report) = audit_json(&["-a", nowhere, "--config", clean.to_str().unwrap()]);
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(code, 0);

    // Nothing to read: exit 2 with the reason.
    let missing = dir.path().join("missing.toml");
    let (code, report) = audit_json(&["-a", nowhere, "--config", missing.to_str().unwrap()]);
    assert_eq!(report["ran"], false);
    assert!(report["failure"].as_str().unwrap().contains("missing.toml"));
    assert_eq!(code, 2);

    // A target that is not a release is a usage error.
    let out = audit(&["-a", nowhere, "--target", "next"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn audit_kind_runs_without_a_daemon_in_collect() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("containerd.sock");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = common::bundle::collect(
        &[
            "-a",
            nowhere.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--only",
            "audit",
        ],
        Duration::from_secs(60),
    );
    let bundle = Bundle::open(&common::bundle::bundle_path(&run));
    let stored = bundle.json("audit/audit.json");
    assert_eq!(stored["ran"], false);
    let record = bundle.collector("audit.upgrade");
    assert_eq!(record["status"], "skipped");
    let summary = bundle.text("summary.md");
    assert!(
        summary.contains("the upgrade audit could not run"),
        "{summary}"
    );
}
