//! The summary: `summary.json` for machines and `summary.md` for people.
//!
//! Both say the same thing: which host and daemon, whether the bundle is
//! complete, the findings by severity, and how each collector ended. The
//! Markdown reads in a terminal and pastes into a GitHub issue as it is.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, Severity};
use crate::bundle::manifest::{CollectorRecord, Cut, DaemonRef, Manifest, Status};

/// Evidence longer than this, or on several lines, is folded in a
/// `<details>` block so a pasted summary stays short.
const FOLD_AT: usize = 160;

/// The summary format this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub format_version: u32,
    pub tool_version: String,
    pub host: String,
    pub containerd: DaemonRef,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    pub counts: Counts,
    pub findings: Vec<Finding>,
    pub collectors: Vec<CollectorLine>,
    /// Files cut to a cap, left out, or dropped to fit the size budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts: Vec<CutLine>,
}

/// A file cut or left out, with the collector that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CutLine {
    pub collector: String,
    #[serde(flatten)]
    pub cut: Cut,
}

/// How many collectors ended in each status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: usize,
    pub skipped: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub interrupted: usize,
}

impl Counts {
    /// Counts the statuses of `records`.
    pub fn of(records: &[CollectorRecord]) -> Self {
        let mut counts = Counts::default();
        for record in records {
            match record.status {
                Status::Ok => counts.ok += 1,
                Status::Skipped => counts.skipped += 1,
                Status::Failed => counts.failed += 1,
                Status::TimedOut => counts.timed_out += 1,
                Status::Interrupted => counts.interrupted += 1,
            }
        }
        counts
    }
}

/// One collector, as the summary shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectorLine {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many credential values were redacted from its output.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Builds the summary of a run from its manifest and findings.
    pub fn new(manifest: &Manifest, findings: Vec<Finding>) -> Self {
        Summary {
            format_version: FORMAT_VERSION,
            tool_version: manifest.tool.version.clone(),
            host: manifest.host.hostname.clone(),
            containerd: manifest.containerd.clone(),
            started_at: manifest.started_at.clone(),
            finished_at: manifest.finished_at.clone(),
            duration_ms: manifest.duration_ms,
            complete: manifest.complete,
            incomplete_reason: manifest.incomplete_reason.clone(),
            counts: Counts::of(&manifest.collectors),
            findings,
            collectors: manifest
                .collectors
                .iter()
                .map(|record| CollectorLine {
                    name: record.name.clone(),
                    status: record.status,
                    duration_ms: record.duration_ms,
                    detail: record.error.clone().or_else(|| record.reason.clone()),
                    redactions: record.redactions,
                })
                .collect(),
            cuts: manifest
                .collectors
                .iter()
                .flat_map(|record| {
                    record.cuts.iter().map(|cut| CutLine {
                        collector: record.name.clone(),
                        cut: cut.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Renders `summary.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let version = match (&self.containerd.version, &self.containerd.revision) {
            (Some(v), Some(r)) if !r.is_empty() => format!("{v} (revision {r})"),
            (Some(v), _) => v.clone(),
            (None, _) => "unknown (the daemon did not answer)".into(),
        };
        let _ = writeln!(md, "# rctr-diag summary: {}\n", self.host);
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| containerd | {} |", cell(&version));
        let _ = writeln!(md, "| address | `{}` |", self.containerd.address);
        let _ = writeln!(
            md,
            "| collected | {} to {} ({}) |",
            self.started_at,
            self.finished_at,
            humantime::format_duration(std::time::Duration::from_millis(self.duration_ms))
        );
        let state = if self.complete {
            "complete".to_string()
        } else {
            format!(
                "**INCOMPLETE**: {}",
                self.incomplete_reason
                    .as_deref()
                    .unwrap_or("unknown reason")
            )
        };
        let _ = writeln!(md, "| bundle | {} |", cell(&state));
        let c = &self.counts;
        let _ = writeln!(
            md,
            "| collectors | {} ok, {} skipped, {} failed, {} timed out, {} interrupted |",
            c.ok, c.skipped, c.failed, c.timed_out, c.interrupted
        );
        let _ = writeln!(md, "| rctr-diag | {} |\n", self.tool_version);

        let _ = writeln!(md, "## Findings\n");
        if self.findings.is_empty() {
            let _ = writeln!(md, "Nothing looks wrong in what was collected.\n");
        }
        for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
            let group: Vec<&Finding> = self
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(md, "### {} ({})\n", severity.word(), group.len());
            for finding in group {
                let _ = writeln!(md, "- **{}**", finding.title);
                if finding.evidence.len() > FOLD_AT || finding.evidence.contains('\n') {
                    let _ = writeln!(
                        md,
                        "  - <details><summary>seen</summary>\n\n    ```text\n{}\n    ```\n\n    </details>",
                        indent(&finding.evidence.replace("```", "'''"))
                    );
                } else if !finding.evidence.is_empty() {
                    let _ = writeln!(md, "  - seen: {}", finding.evidence);
                }
                if let Some(file) = &finding.file {
                    let _ = writeln!(md, "  - evidence: `{file}`");
                }
                let _ = writeln!(md, "  - what to do: {}", finding.action);
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Collectors\n");
        let _ = writeln!(
            md,
            "| collector | status | time | detail |\n|---|---|---|---|"
        );
        for line in &self.collectors {
            let mut detail = line.detail.clone().unwrap_or_default();
            if line.redactions > 0 {
                let sep = if detail.is_empty() { "" } else { "; " };
                detail += &format!("{sep}{} value(s) redacted", line.redactions);
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} ms | {} |",
                line.name,
                line.status.word(),
                line.duration_ms,
                cell(&detail)
            );
        }

        if !self.cuts.is_empty() {
            let _ = writeln!(md, "\n## Cut or left out\n");
            let _ = writeln!(
                md,
                "<details><summary>{} file(s)</summary>\n",
                self.cuts.len()
            );
            let _ = writeln!(
                md,
                "| collector | file | size | kept | why |\n|---|---|---|---|---|"
            );
            for line in &self.cuts {
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {} | {} | {} |",
                    line.collector,
                    cell(&line.cut.path),
                    line.cut.original_bytes,
                    line.cut.kept_bytes,
                    cell(&line.cut.reason)
                );
            }
            let _ = writeln!(md, "\n</details>");
        }
        md
    }
}

/// Indents every line by four spaces, to sit inside a list item.
fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Makes text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::{HostId, Tool};

    fn manifest(records: Vec<CollectorRecord>) -> Manifest {
        Manifest {
            format_version: 1,
            tool: Tool {
                name: "rctr-diag".into(),
                version: "0.0.0".into(),
            },
            command_line: vec![],
            host: HostId {
                hostname: "node1".into(),
                ..Default::default()
            },
            containerd: DaemonRef {
                address: "/run/containerd/containerd.sock".into(),
                ..Default::default()
            },
            started_at: "t0".into(),
            finished_at: "t1".into(),
            duration_ms: 1500,
            complete: false,
            incomplete_reason: Some("interrupted by SIGINT".into()),
            collectors: records,
            files: vec![],
        }
    }

    fn record(name: &str, status: Status, error: Option<&str>) -> CollectorRecord {
        CollectorRecord {
            name: name.into(),
            kind: "host-info".into(),
            status,
            duration_ms: 3,
            reason: None,
            error: error.map(String::from),
            files: vec![],
            redactions: 0,
            cuts: vec![],
        }
    }

    #[test]
    fn markdown_shows_state_findings_and_collectors() {
        let records = vec![
            record("a", Status::Ok, None),
            record("b", Status::TimedOut, Some("no | result")),
        ];
        let finding = Finding {
            severity: Severity::Critical,
            analyzer: "x".into(),
            title: "containerd did not answer".into(),
            evidence: "timeout".into(),
            file: Some("manifest.json".into()),
            action: "look".into(),
        };
        let summary = Summary::new(&manifest(records), vec![finding]);
        assert_eq!(summary.counts.ok, 1);
        assert_eq!(summary.counts.timed_out, 1);

        let md = summary.markdown();
        assert!(md.contains("**INCOMPLETE**: interrupted by SIGINT"), "{md}");
        assert!(md.contains("### Critical (1)"), "{md}");
        assert!(md.contains("- **containerd did not answer**"), "{md}");
        assert!(
            md.contains("| b | timed out | 3 ms | no \\| result |"),
            "{md}"
        );
    }

    #[test]
    fn long_evidence_and_cuts_fold_into_details() {
        let mut record = record("logs.x", Status::Ok, None);
        record.redactions = 2;
        record.cuts.push(Cut {
            path: "logs/x.log".into(),
            original_bytes: 5000,
            kept_bytes: 1000,
            reason: "kept the newest 1000 bytes".into(),
        });
        let finding = Finding {
            severity: Severity::Warning,
            analyzer: "kernel".into(),
            title: "2 task(s) hung".into(),
            evidence: "line one\nline two".into(),
            file: Some("logs/kernel.log".into()),
            action: "look".into(),
        };
        let md = Summary::new(&manifest(vec![record]), vec![finding]).markdown();
        assert!(
            md.contains("  - <details><summary>seen</summary>\n\n    ```text\n    line one\n    line two\n    ```\n\n    </details>"),
            "{md}"
        );
        assert!(
            md.contains("| logs.x | ok | 3 ms | 2 value(s) redacted |"),
            "{md}"
        );
        assert!(md.contains("<details><summary>1 file(s)</summary>"), "{md}");
        assert!(
            md.contains("| logs.x | `logs/x.log` | 5000 | 1000 | kept the newest 1000 bytes |"),
            "{md}"
        );
    }
}
