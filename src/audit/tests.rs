//! The rules against config fixtures, and the grading against a target.
//!
//! Every fixture in `tests/fixtures/audit/` starts with `# expect: ID, ...`:
//! the rules it must raise and no others. The first one is the rule the
//! fixture is about; every rule that matches config files has a fixture.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

fn expected(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().next().unwrap_or_default();
    let list = line
        .strip_prefix("# expect:")
        .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", path.display()));
    list.split(',')
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect()
}

fn audit_file(path: &Path, target: &str) -> Vec<AuditFinding> {
    let files = config::load(path).unwrap();
    judge(static_hits(&files), Release::parse(target).unwrap())
}

#[test]
fn each_fixture_raises_exactly_its_rules_with_the_table_removal() {
    for path in fixtures() {
        let expect = expected(&path);
        let findings = audit_file(&path, "2.4");
        let got: BTreeSet<String> = findings.iter().map(|f| f.rule.clone()).collect();
        let want: BTreeSet<String> = expect.iter().cloned().collect();
        assert_eq!(got, want, "{}", path.display());

        for finding in &findings {
            let rule = rules::by_id(&finding.rule).unwrap();
            assert_eq!(finding.removed_in.as_deref(), rule.removed_in);
            assert_eq!(finding.deprecated_in, rule.deprecated_in);
            assert_eq!(finding.sources, vec![Source::Config]);
            let file = path.display().to_string();
            assert!(
                finding.locations.iter().all(|l| l.starts_with(&file)),
                "{:?}",
                finding.locations
            );
        }
    }
}

#[test]
fn every_config_rule_has_a_fixture() {
    let covered: BTreeSet<String> = fixtures()
        .iter()
        .filter_map(|path| expected(path).into_iter().next())
        .collect();
    for rule in RULES.iter().filter(|rule| !rule.matches.is_empty()) {
        assert!(covered.contains(rule.id), "no fixture for {}", rule.id);
    }
}

#[test]
fn clean_version_3_config_raises_nothing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/clean-v3.toml");
    for target in ["1.7", "2.0", "2.4", "3.0"] {
        assert!(audit_file(&path, target).is_empty(), "target {target}");
    }
}

#[test]
fn the_target_decides_blocker_warning_and_note() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit/cri-systemd-cgroup-v1.toml");
    let level = |target: &str, rule: &str| {
        audit_file(&path, target)
            .into_iter()
            .find(|f| f.rule == rule)
            .map(|f| f.level)
    };
    assert_eq!(level("1.7", "cri-systemd-cgroup-v1"), Some(Level::Warning));
    assert_eq!(level("2.0", "cri-systemd-cgroup-v1"), Some(Level::Blocker));
    assert_eq!(level("1.7", "config-version"), None, "no v3 before 2.0");
    assert_eq!(level("2.0", "config-version"), Some(Level::Note));

    // A removal the daemon never warns about is still a warning before it.
    let no_pivot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/cri-no-pivot.toml");
    let found = |target: &str| {
        audit_file(&no_pivot, target)
            .into_iter()
            .find(|f| f.rule == "cri-no-pivot")
            .map(|f| f.level)
    };
    assert_eq!(found("1.7"), Some(Level::Warning));
    assert_eq!(found("2.0"), Some(Level::Blocker));

    let mirrors = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit/cri-registry-mirrors.toml");
    let findings = audit_file(&mirrors, "2.3");
    assert_eq!(findings[0].level, Level::Warning);
    let findings = audit_file(&mirrors, "2.4");
    assert_eq!(findings[0].level, Level::Blocker);
}

#[test]
fn the_daemon_message_sets_the_removal() {
    let message = "The `mirrors` property of `[plugins.\"io.containerd.grpc.v1.cri\".registry]` \
                   is deprecated since containerd v1.5 and will be removed in containerd v2.1.\
                   Use `config_path` instead.";
    assert_eq!(
        removal_in_message(message),
        Some(Release { major: 2, minor: 1 })
    );
    let schema1 = "Schema 1 images are deprecated since containerd v1.7, disabled in \
                   containerd v2.0, and will be removed in containerd v2.1.";
    assert_eq!(
        removal_in_message(schema1),
        Some(Release { major: 2, minor: 0 })
    );
    assert_eq!(
        removal_in_message("NRI plugin uses a deprecated interface."),
        None
    );

    let rule = rules::by_id("cri-registry-mirrors").unwrap();
    let hits = vec![
        Hit {
            rule: RuleRef::Known(rule),
            source: Source::Config,
            location: "config.toml: registry.mirrors".into(),
            daemon_message: None,
        },
        Hit {
            rule: RuleRef::Known(rule),
            source: Source::Daemon,
            location: "daemon warning".into(),
            daemon_message: Some(message.into()),
        },
    ];
    let findings = judge(hits, Release { major: 2, minor: 1 });
    assert_eq!(findings.len(), 1);
    let finding = &findings[0];
    assert_eq!(finding.removed_in.as_deref(), Some("2.1"));
    assert_eq!(finding.removed_in_from.as_deref(), Some("daemon"));
    assert_eq!(finding.level, Level::Blocker);
    assert_eq!(finding.sources, vec![Source::Daemon, Source::Config]);
}

#[test]
fn unknown_daemon_warnings_are_kept() {
    let hits = vec![Hit {
        rule: RuleRef::Unknown("io.containerd.deprecation/something-new".into()),
        source: Source::Daemon,
        location: "daemon warning".into(),
        daemon_message: Some(
            "Something is deprecated and will be removed in containerd v3.0".into(),
        ),
    }];
    let findings = judge(hits, Release { major: 2, minor: 4 });
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].level, Level::Warning);
    assert_eq!(findings[0].removed_in.as_deref(), Some("3.0"));
}

#[test]
fn default_target_is_the_next_release_that_removes_something() {
    let release = |major, minor| Release { major, minor };
    assert_eq!(
        default_target(Some(release(1, 7)), Some(2)).0,
        release(2, 0)
    );
    assert_eq!(default_target(Some(release(1, 6)), None).0, release(2, 0));
    assert_eq!(
        default_target(Some(release(2, 0)), Some(2)).0,
        release(2, 1)
    );
    assert_eq!(
        default_target(Some(release(2, 1)), Some(2)).0,
        release(2, 4)
    );
    // Past every planned removal: the next minor.
    assert_eq!(default_target(Some(release(2, 9)), None).0, release(2, 10));
    // Without a daemon: the config's version stands for the series.
    assert_eq!(default_target(None, Some(2)).0, release(2, 0));
    assert_eq!(default_target(None, Some(3)).0, release(2, 1));
    assert_eq!(default_target(None, None).0, release(2, 0));
}
