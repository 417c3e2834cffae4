//! `rctr-diag inspect`: the analyzers re-run on a bundle, offline.
//!
//! Because analyzers read only bundle entries and collector records, a
//! bundle read back gives the same findings as the run that made it; a newer
//! rctr-diag may find more in an old bundle. Integrity problems (a file that
//! does not match its sha256, a listed file that is absent) become findings
//! of their own, since the rest of the bundle is still worth reading.

use std::path::Path;

use crate::analyze::{self, Finding, Severity};
use crate::bundle::reader::{self, BundleContents, Problem, ReadError};
use crate::report::Summary;

/// Reads the bundle at `path` and builds its summary with fresh findings.
pub fn inspect(path: &Path) -> Result<Summary, ReadError> {
    let BundleContents {
        manifest,
        entries,
        problems,
    } = reader::read(path)?;
    let mut findings = integrity(&problems);
    findings.extend(analyze::analyze(&analyze::Input {
        entries: &entries,
        collectors: &manifest.collectors,
    }));
    findings.sort_by_key(|finding| finding.severity);
    Ok(Summary::new(&manifest, findings))
}

/// Findings for files that do not match the manifest.
fn integrity(problems: &[Problem]) -> Vec<Finding> {
    problems
        .iter()
        .map(|problem| match problem {
            Problem::Mismatch { path } => Finding {
                severity: Severity::Critical,
                analyzer: "integrity".into(),
                title: format!("{path} does not match its sha256 in the manifest"),
                evidence: format!("the sha256 of {path} differs from manifest.json"),
                file: Some(path.clone()),
                action: "The file was changed or damaged after collection; do not trust it. \
                         Collect a new bundle if the file matters."
                    .into(),
            },
            Problem::Missing { path } => Finding {
                severity: Severity::Warning,
                analyzer: "integrity".into(),
                title: format!("{path} is listed in the manifest but absent"),
                evidence: format!("manifest.json lists {path}; the archive does not hold it"),
                file: Some("manifest.json".into()),
                action: "The bundle was repacked without this file; collect a new bundle if \
                         it matters."
                    .into(),
            },
        })
        .collect()
}
