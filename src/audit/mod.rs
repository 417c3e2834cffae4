//! The upgrade audit: what in this node's setup is deprecated in, or removed
//! by, a target containerd release.
//!
//! Three sources are read and joined on the rules of [`rules::RULES`]:
//! the daemon's own deprecation warnings (live, from 1.6.25 / 1.7.9 on, and
//! only for what it ran into since its last start), the config file with its
//! imports (static: works on every version and without a daemon, and sees
//! settings the daemon raises nothing for), and the daemon's content (images
//! stored as Docker schema 1, containers bound to a runtime or label the
//! target drops). A rule found by several sources is one finding; when the
//! daemon says which release removes it, its word wins over the table.
//!
//! The target release decides what blocks: a rule removed at or before it is
//! a blocker, one only deprecated is a warning, a version 3 migration note is
//! a note. The report is data ([`Report`], versioned by
//! [`FORMAT_VERSION`]); `rctr-diag audit` prints it and `collect` stores it.

pub mod config;
pub mod render;
pub mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kinds::unreported_note;
use crate::source::{Containerd, DaemonVersion, error_chain, host};
use config::FoundBy;
use rules::{Content, RULES, Release, Rule};

/// The version of the audit report's JSON shape; raised on any change that
/// removes or renames a field.
pub const FORMAT_VERSION: u32 = 1;

/// How long one call to containerd may take during an audit.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// The mediaTypes of Docker schema 1 manifests.
const SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// What the audit is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The release to check against; default: see [`default_target`].
    pub target: Option<Release>,
    /// The config file; default: the daemon's, else containerd's default.
    pub config: Option<PathBuf>,
    /// Namespaces whose content is checked; empty means all.
    pub namespaces: Vec<String>,
}

/// How much a finding matters for the target release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Removed at or before the target: the upgrade breaks it.
    Blocker,
    /// Deprecated, still there in the target.
    Warning,
    /// Nothing breaks; the config should move to the newer form.
    Note,
}

impl Level {
    /// The word used in tables.
    pub fn word(self) -> &'static str {
        match self {
            Level::Blocker => "blocker",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// Where a finding was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The daemon's deprecation warnings.
    Daemon,
    /// The config file or one it imports.
    Config,
    /// Images or containers in the daemon.
    Content,
}

/// The audit report (`audit.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub format_version: u32,
    /// False when the audit could not run: nothing to read, or a config file
    /// that could not be read; `failure` says why.
    pub ran: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub target: String,
    /// Why this target: given, or how the default was chosen.
    pub target_reason: String,
    pub containerd: DaemonPart,
    pub config: ConfigPart,
    pub live: LivePart,
    pub content: ContentPart,
    pub counts: Counts,
    /// Most severe first.
    pub findings: Vec<AuditFinding>,
}

/// The daemon as the audit reached it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonPart {
    pub address: String,
    pub reachable: bool,
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The config files read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigPart {
    pub path: Option<String>,
    pub found_by: Option<FoundBy>,
    /// The file and its imports, in load order.
    pub files: Vec<ConfigFileRef>,
    /// Why nothing (or not everything) was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One config file read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigFileRef {
    pub path: String,
    pub version: i64,
}

/// The daemon's own warnings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LivePart {
    /// False when the daemon is unreachable or too old to report them.
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub warnings: Vec<LiveWarning>,
}

/// One warning the daemon reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveWarning {
    pub id: String,
    pub message: String,
    pub last_occurrence: Option<String>,
    /// The rule it maps to; `None` for an id the table does not know.
    pub rule: Option<String>,
}

/// The content checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPart {
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub namespaces: Vec<String>,
    pub images_checked: usize,
    pub containers_checked: usize,
}

/// Findings per level.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub blockers: usize,
    pub warnings: usize,
    pub notes: usize,
}

/// One deprecated or removed thing in use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditFinding {
    /// The rule's id in the table (or the daemon's warning id when the table
    /// does not know it).
    pub rule: String,
    pub level: Level,
    pub title: String,
    /// containerd's warning id for it, if it has one.
    pub warning_id: Option<String>,
    pub deprecated_in: String,
    /// The release that removes it; `None` when no removal is planned.
    pub removed_in: Option<String>,
    /// Where `removed_in` comes from: `daemon` (its message) or `table`.
    pub removed_in_from: Option<String>,
    pub sources: Vec<Source>,
    /// Where it was seen: `FILE: KEY PATH`, `namespace/image`,
    /// `namespace/container`, or `daemon warning`.
    pub locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_message: Option<String>,
    /// What to do instead.
    pub instead: String,
}

impl Report {
    /// The exit code the audit maps to: 0 clean, 1 blockers, 2 not run.
    pub fn exit_code(&self) -> u8 {
        if !self.ran {
            2
        } else if self.counts.blockers > 0 {
            1
        } else {
            0
        }
    }
}

/// Runs the audit against the daemon behind `containerd` (reachable or not).
pub async fn run(containerd: &Containerd, options: &Options) -> Report {
    let address = containerd.address().to_path_buf();
    let version = deadline("Version.Version", containerd.version())
        .await
        .cloned();
    let daemon = DaemonPart {
        address: address.display().to_string(),
        reachable: version.is_ok(),
        version: version.as_ref().ok().map(|v| v.version.clone()),
        error: version.as_ref().err().cloned(),
    };

    // Scanning /proc for the daemon and reading files block: off the runtime.
    let (config_part, files, config_failed) = {
        let (address, options, reachable) = (address.clone(), options.clone(), daemon.reachable);
        tokio::task::spawn_blocking(move || read_config(&address, &options, reachable))
            .await
            .expect("reading the config does not panic")
    };
    let (live, live_hits) = match &version {
        Ok(version) => live(containerd, version).await,
        Err(err) => (
            LivePart {
                available: false,
                note: Some(format!("daemon not reachable: {err}")),
                warnings: Vec::new(),
            },
            Vec::new(),
        ),
    };
    let (content, content_hits) = if daemon.reachable {
        content(containerd, &options.namespaces).await
    } else {
        (
            ContentPart {
                available: false,
                note: Some("daemon not reachable".into()),
                namespaces: Vec::new(),
                images_checked: 0,
                containers_checked: 0,
            },
            Vec::new(),
        )
    };

    let running = version.as_ref().ok().and_then(DaemonVersion::release);
    let running = running.map(|(major, minor, _)| Release { major, minor });
    let config_version = files.first().map(|file| file.version);
    let (target, target_reason) = match options.target {
        Some(target) => (target, "given with --target".to_string()),
        None => default_target(running, config_version),
    };

    let mut hits = static_hits(&files);
    hits.extend(live_hits);
    hits.extend(content_hits);
    let findings = judge(hits, target);
    let mut counts = Counts::default();
    for finding in &findings {
        match finding.level {
            Level::Blocker => counts.blockers += 1,
            Level::Warning => counts.warnings += 1,
            Level::Note => counts.notes += 1,
        }
    }

    let failure = if let Some(err) = config_failed {
        Some(err)
    } else if files.is_empty() && !daemon.reachable {
        Some(format!(
            "nothing to audit: no config file was read and containerd at {} is not reachable",
            address.display()
        ))
    } else {
        None
    };
    Report {
        format_version: FORMAT_VERSION,
        ran: failure.is_none(),
        failure,
        target: target.to_string(),
        target_reason,
        containerd: daemon,
        config: config_part,
        live,
        content,
        counts,
        findings,
    }
}

/// Chooses the target when none is given: the first release after the
/// running one that removes something in the table, else the next minor.
/// Without a daemon, a version 3 config file stands for 2.0, older ones for
/// the 1.x series.
pub fn default_target(running: Option<Release>, config_version: Option<i64>) -> (Release, String) {
    let (base, what) = match (running, config_version) {
        (Some(release), _) => (release, format!("containerd {release}")),
        (None, Some(v)) if v >= 3 => (
            Release { major: 2, minor: 0 },
            format!("containerd 2.0 (daemon not reachable; config version {v} needs 2.0+)"),
        ),
        (None, v) => (
            Release {
                major: 1,
                minor: u32::MAX,
            },
            format!(
                "containerd 1.x (daemon not reachable; config version {})",
                v.unwrap_or(1)
            ),
        ),
    };
    let next_removal = RULES
        .iter()
        .filter_map(|rule| rule.removed_in.and_then(Release::parse))
        .filter(|removed| *removed > base)
        .min();
    match next_removal {
        Some(release) => (
            release,
            format!("default: the first release after {what} that removes something"),
        ),
        None => (
            base.next_minor(),
            format!("default: the release after {what}; no later removal is planned"),
        ),
    }
}

/// One sighting of a rule, before sightings are joined into findings.
struct Hit {
    rule: RuleRef,
    source: Source,
    location: String,
    daemon_message: Option<String>,
}

/// A rule of the table, or a warning id the table does not know.
#[derive(Clone)]
enum RuleRef {
    Known(&'static Rule),
    Unknown(String),
}

impl RuleRef {
    fn id(&self) -> String {
        match self {
            RuleRef::Known(rule) => rule.id.to_string(),
            RuleRef::Unknown(id) => id.clone(),
        }
    }
}

fn read_config(
    address: &Path,
    options: &Options,
    reachable: bool,
) -> (ConfigPart, Vec<config::ConfigFile>, Option<String>) {
    let (path, found_by) = match &options.config {
        Some(path) => (path.clone(), FoundBy::Flag),
        None => match config::from_daemon(address) {
            Some(path) => (path, FoundBy::DaemonCommandLine),
            None => (PathBuf::from(host::DEFAULT_CONFIG), FoundBy::Default),
        },
    };
    let mut part = ConfigPart {
        path: Some(path.display().to_string()),
        found_by: Some(found_by),
        files: Vec::new(),
        note: None,
    };
    match config::load(&path) {
        Ok(files) => {
            part.files = files
                .iter()
                .map(|file| ConfigFileRef {
                    path: file.path.display().to_string(),
                    version: file.version,
                })
                .collect();
            (part, files, None)
        }
        // containerd runs on built-in defaults without a file at its default
        // path; with a daemon to ask, that is a finding-free config.
        Err(config::ConfigError::Read { source, .. })
            if found_by == FoundBy::Default
                && source.kind() == std::io::ErrorKind::NotFound
                && reachable =>
        {
            part.note = Some(format!(
                "no config file at {}: the daemon runs on built-in defaults",
                path.display()
            ));
            (part, Vec::new(), None)
        }
        Err(err) => {
            let text = error_chain(&err);
            part.note = Some(text.clone());
            (part, Vec::new(), Some(text))
        }
    }
}

fn static_hits(files: &[config::ConfigFile]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for file in files {
        // Versions past 3 are read with version 3's paths. A file without a
        // version (typical of drop-in imports) is migrated from version 1,
        // which keeps full plugin names as they are: both forms count there.
        let versions = match file.version {
            1 => vec![1, 2],
            v => vec![v.min(3)],
        };
        for rule in RULES {
            let mut keys: Vec<String> = Vec::new();
            for m in rule.matches {
                for version in &versions {
                    for key in m.find(&file.table, *version) {
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
            }
            for key in keys {
                let location = if key.is_empty() {
                    format!("{} (version {})", file.path.display(), file.version)
                } else {
                    format!("{}: {key}", file.path.display())
                };
                hits.push(Hit {
                    rule: RuleRef::Known(rule),
                    source: Source::Config,
                    location,
                    daemon_message: None,
                });
            }
        }
    }
    hits
}

async fn live(containerd: &Containerd, version: &DaemonVersion) -> (LivePart, Vec<Hit>) {
    let server = match deadline("Introspection.Server", containerd.server()).await {
        Ok(server) => server,
        Err(err) => {
            let part = LivePart {
                available: false,
                note: Some(err),
                warnings: Vec::new(),
            };
            return (part, Vec::new());
        }
    };
    let mut warnings = Vec::new();
    let mut hits = Vec::new();
    for warning in server.deprecations {
        let rule = match rules::by_warning(&warning.id) {
            Some(rule) => RuleRef::Known(rule),
            None => RuleRef::Unknown(warning.id.clone()),
        };
        warnings.push(LiveWarning {
            id: warning.id.clone(),
            message: warning.message.clone(),
            last_occurrence: warning.last_occurrence.as_ref().map(crate::kinds::rfc3339),
            rule: matches!(rule, RuleRef::Known(_)).then(|| rule.id()),
        });
        hits.push(Hit {
            rule,
            source: Source::Daemon,
            location: "daemon warning".into(),
            daemon_message: Some(warning.message),
        });
    }
    let note = if warnings.is_empty() {
        unreported_note(version)
    } else {
        None
    };
    let part = LivePart {
        available: note.is_none(),
        note,
        warnings,
    };
    (part, hits)
}

async fn content(containerd: &Containerd, wanted: &[String]) -> (ContentPart, Vec<Hit>) {
    let mut part = ContentPart {
        available: true,
        note: None,
        namespaces: Vec::new(),
        images_checked: 0,
        containers_checked: 0,
    };
    let mut hits = Vec::new();
    let namespaces = match deadline("Namespaces.List", containerd.namespace_names(wanted)).await {
        Ok(names) => names,
        Err(err) => {
            part.available = false;
            part.note = Some(err);
            return (part, hits);
        }
    };
    let mut problems = Vec::new();
    for ns in &namespaces {
        match deadline("Images.List", containerd.images(ns)).await {
            Ok(images) => {
                part.images_checked += images.len();
                for image in images {
                    let media_type = image.target.map(|t| t.media_type).unwrap_or_default();
                    if SCHEMA1.contains(&media_type.as_str()) {
                        hits.push(content_hit(
                            Content::Schema1Images,
                            format!("image {ns}/{} ({media_type})", image.name),
                        ));
                    }
                }
            }
            Err(err) => problems.push(format!("{ns}: {err}")),
        }
        match deadline("Containers.List", containerd.containers(ns)).await {
            Ok(containers) => {
                part.containers_checked += containers.len();
                for container in containers {
                    let runtime = container.runtime.map(|r| r.name).unwrap_or_default();
                    for rule in RULES {
                        let hit = match rule.content {
                            Content::Runtime(name) => runtime == name,
                            Content::Label(label) => container.labels.contains_key(label),
                            _ => false,
                        };
                        if hit {
                            hits.push(Hit {
                                rule: RuleRef::Known(rule),
                                source: Source::Content,
                                location: format!(
                                    "container {ns}/{} (runtime {runtime})",
                                    container.id
                                ),
                                daemon_message: None,
                            });
                        }
                    }
                }
            }
            Err(err) => problems.push(format!("{ns}: {err}")),
        }
    }
    part.namespaces = namespaces;
    if !problems.is_empty() {
        part.note = Some(format!(
            "not every namespace was read: {}",
            problems.join("; ")
        ));
    }
    (part, hits)
}

fn content_hit(kind: Content, location: String) -> Hit {
    let rule = RULES
        .iter()
        .find(|rule| rule.content == kind)
        .expect("the table has a rule for every content check");
    Hit {
        rule: RuleRef::Known(rule),
        source: Source::Content,
        location,
        daemon_message: None,
    }
}

/// Joins sightings per rule and grades them against `target`.
fn judge(hits: Vec<Hit>, target: Release) -> Vec<AuditFinding> {
    let mut by_rule: BTreeMap<String, (RuleRef, Vec<Hit>)> = BTreeMap::new();
    for hit in hits {
        by_rule
            .entry(hit.rule.id())
            .or_insert_with(|| (hit.rule.clone(), Vec::new()))
            .1
            .push(hit);
    }

    let mut findings = Vec::new();
    for (id, (rule, hits)) in by_rule {
        let daemon_message = hits.iter().find_map(|hit| hit.daemon_message.clone());
        let from_daemon = daemon_message.as_deref().and_then(removal_in_message);
        let (title, warning_id, deprecated_in, table_removal, instead) = match rule {
            RuleRef::Known(rule) => (
                rule.title.to_string(),
                rule.warning.map(String::from),
                rule.deprecated_in.to_string(),
                rule.removed_in.and_then(Release::parse),
                rule.instead.to_string(),
            ),
            RuleRef::Unknown(ref warning) => (
                format!("deprecated feature {warning}"),
                Some(warning.clone()),
                "unknown".to_string(),
                None,
                "follow the daemon's message".to_string(),
            ),
        };
        let (removed, removed_from) = match (from_daemon, table_removal) {
            (Some(release), _) => (Some(release), Some("daemon")),
            (None, Some(release)) => (Some(release), Some("table")),
            (None, None) => (None, None),
        };
        let deprecated = Release::parse(&deprecated_in);
        let confirmed = daemon_message.is_some();
        let level = match (removed, deprecated) {
            (Some(removed), _) if removed <= target => Level::Blocker,
            (None, _) if warning_id.is_none() => Level::Note,
            (_, Some(deprecated)) if deprecated <= target => Level::Warning,
            // A deprecation newer than the target is no concern for it,
            // unless the running daemon already raises it.
            _ if confirmed => Level::Warning,
            _ => continue,
        };
        // Notes (migration hints) apply only from the release that
        // introduced the newer form.
        if level == Level::Note && deprecated.is_some_and(|d| d > target) {
            continue;
        }

        let mut sources: Vec<Source> = hits.iter().map(|hit| hit.source).collect();
        sources.sort();
        sources.dedup();
        let mut locations: Vec<String> = hits.into_iter().map(|hit| hit.location).collect();
        locations.dedup();
        findings.push(AuditFinding {
            rule: id,
            level,
            title,
            warning_id,
            deprecated_in,
            removed_in: removed.map(|r| r.to_string()),
            removed_in_from: removed_from.map(String::from),
            sources,
            locations,
            daemon_message,
            instead,
        });
    }
    findings.sort_by(|a, b| a.level.cmp(&b.level).then_with(|| a.rule.cmp(&b.rule)));
    findings
}

/// The release a daemon's warning message names for the removal (or for
/// disabling, which breaks as much): the earliest `removed in containerd
/// vX.Y` / `disabled in containerd vX.Y`.
pub fn removal_in_message(message: &str) -> Option<Release> {
    ["removed in containerd ", "disabled in containerd "]
        .iter()
        .flat_map(|needle| message.match_indices(needle).map(|(at, n)| at + n.len()))
        .filter_map(|start| Release::parse(&message[start..]))
        .min()
}

/// Runs a containerd call under the audit's per-call deadline; the error is
/// the whole chain as text.
async fn deadline<T>(
    rpc: &str,
    call: impl Future<Output = Result<T, crate::source::ContainerdError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(error_chain(&err)),
        Err(_) => Err(format!(
            "{rpc} gave no answer within {}",
            humantime::format_duration(CALL_DEADLINE)
        )),
    }
}

#[cfg(test)]
mod tests;
