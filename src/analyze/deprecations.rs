//! Deprecation warnings raised by the daemon, one finding each; and a note
//! when the daemon is too old to raise them, so silence is not read as
//! "nothing deprecated".

use super::{Finding, Input, Severity};
use crate::kinds::DeprecationReport;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let Some((file, report)) = input.json_of_kind::<DeprecationReport>("containerd-deprecations")
    else {
        return Vec::new();
    };
    if !report.reported {
        return vec![Finding {
            severity: Severity::Info,
            analyzer: "deprecations".into(),
            title: "this containerd cannot report deprecated features".into(),
            evidence: report.note.unwrap_or_default(),
            file: Some(file),
            action: "Check the configuration file against containerd's deprecation list \
                     before upgrading."
                .into(),
        }];
    }
    report
        .warnings
        .into_iter()
        .map(|warning| {
            let mut evidence = warning.message;
            if let Some(at) = warning.last_occurrence {
                evidence.push_str(&format!(" (last seen {at})"));
            }
            Finding {
                severity: Severity::Warning,
                analyzer: "deprecations".into(),
                title: format!("deprecated: {}", warning.id),
                evidence,
                file: Some(file.clone()),
                action: "Move off the deprecated feature as the message says before \
                         upgrading to the release that removes it."
                    .into(),
            }
        })
        .collect()
}
