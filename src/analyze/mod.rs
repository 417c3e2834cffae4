//! Analyzers: pure functions from a bundle's entries to findings.
//!
//! Because they read only the bundle (its files and its collector records),
//! the same analyzers run at the end of `collect` and later, offline, on a
//! bundle from another machine. They find their input by collector kind, not
//! by path, so an operator's spec that moves a file does not blind them. One
//! file per analyzer.

mod audit;
mod collectors;
mod containers;
mod deprecations;
mod disk;
mod events;
pub mod goroutine_dump;
mod goroutines;
mod kernel;
mod plugins;
pub mod pprof_data;
mod profiles;
mod shims;
mod tasks;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bundle::Entries;
use crate::bundle::manifest::CollectorRecord;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    /// The heading word used in summaries.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::Warning => "Warning",
            Severity::Info => "Info",
        }
    }
}

/// Something in the bundle worth a reader's attention.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// The analyzer that made it.
    pub analyzer: String,
    pub title: String,
    /// What was seen.
    pub evidence: String,
    /// The bundle file that shows it.
    pub file: Option<String>,
    /// What to do about it.
    pub action: String,
}

/// What analyzers read: the bundle's files and its collector records.
pub struct Input<'a> {
    pub entries: &'a Entries,
    pub collectors: &'a [CollectorRecord],
}

impl Input<'_> {
    /// Decodes the first JSON file written by a collector of `kind`, with
    /// its path. Absent or undecodable files give `None`: an analyzer has
    /// nothing to say about data that is not there.
    fn json_of_kind<T: DeserializeOwned>(&self, kind: &str) -> Option<(String, T)> {
        self.jsons_of_kind(kind).into_iter().next()
    }

    /// Every JSON file written by collectors of `kind` that decodes as `T`,
    /// with its path.
    fn jsons_of_kind<T: DeserializeOwned>(&self, kind: &str) -> Vec<(String, T)> {
        self.files_of_kind(kind)
            .filter_map(|path| {
                let value = self.entries.json(path)?.ok()?;
                Some((path.to_string(), value))
            })
            .collect()
    }

    /// The text files written by collectors of `kind`, with their paths.
    fn texts_of_kind(&self, kind: &str) -> Vec<(String, String)> {
        self.files_of_kind(kind)
            .filter_map(|path| {
                let text = String::from_utf8_lossy(self.entries.get(path)?).into_owned();
                Some((path.to_string(), text))
            })
            .collect()
    }

    fn files_of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.collectors
            .iter()
            .filter(move |record| record.kind == kind)
            .flat_map(|record| record.files.iter().map(String::as_str))
    }

    /// Every file written by collectors of `kind` whose path ends with
    /// `suffix`, with its path, in the order the collectors ran.
    fn bytes_of_kind(&self, kind: &str, suffix: &str) -> Vec<(String, &[u8])> {
        self.files_of_kind(kind)
            .filter(|path| path.ends_with(suffix))
            .filter_map(|path| Some((path.to_string(), self.entries.get(path)?)))
            .collect()
    }
}

/// Runs every analyzer; findings come most severe first.
pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(collectors::analyze(input));
    findings.extend(plugins::analyze(input));
    findings.extend(deprecations::analyze(input));
    findings.extend(tasks::analyze(input));
    findings.extend(containers::analyze(input));
    findings.extend(disk::analyze(input));
    findings.extend(events::analyze(input));
    findings.extend(shims::analyze(input));
    findings.extend(goroutines::analyze(input));
    findings.extend(profiles::analyze(input));
    findings.extend(audit::analyze(input));
    findings.extend(kernel::analyze(input));
    findings.sort_by_key(|finding| finding.severity);
    findings
}
