//! The upgrade audit's findings (`audit` kind), one bundle finding each.
//!
//! A blocker for the target release is a warning here, not critical: it
//! breaks the next upgrade, not the node today. Deprecations that still work
//! in the target and version 3 migration notes are info. An audit that could
//! not run says so, so its silence is not read as a clean node.

use super::{Finding, Input, Severity};
use crate::audit::{Level, Report};

pub fn analyze(input: &Input) -> Vec<Finding> {
    let Some((file, report)) = input.json_of_kind::<Report>("audit") else {
        return Vec::new();
    };
    if let Some(failure) = &report.failure {
        return vec![Finding {
            severity: Severity::Warning,
            analyzer: "audit".into(),
            title: "the upgrade audit could not run".into(),
            evidence: failure.clone(),
            file: Some(file),
            action: "Run `rctr-diag audit --config PATH` with the daemon's config file.".into(),
        }];
    }
    report
        .findings
        .iter()
        .map(|finding| {
            let (severity, title) = match finding.level {
                Level::Blocker => (
                    Severity::Warning,
                    format!(
                        "upgrade to containerd {} blocked: {} ({})",
                        report.target, finding.title, finding.rule
                    ),
                ),
                Level::Warning => (
                    Severity::Info,
                    format!("deprecated: {} ({})", finding.title, finding.rule),
                ),
                Level::Note => (
                    Severity::Info,
                    format!("config migration: {} ({})", finding.title, finding.rule),
                ),
            };
            let removal = match &finding.removed_in {
                Some(release) => format!("removed in {release}"),
                None => "no removal planned".into(),
            };
            Finding {
                severity,
                analyzer: "audit".into(),
                title,
                evidence: format!(
                    "deprecated in {}, {removal}; seen at {}",
                    finding.deprecated_in,
                    finding.locations.join(", ")
                ),
                file: Some(file.clone()),
                action: format!("Instead: {}.", finding.instead),
            }
        })
        .collect()
}
