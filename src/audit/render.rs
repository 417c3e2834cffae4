//! The audit report as text: a terminal table and Markdown (for a ticket or
//! a pull request). JSON is the report itself, serialized.

use std::fmt::Write;

use super::{AuditFinding, Report};

/// Renders the report for a terminal.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    header_lines(report, &mut |line| {
        let _ = writeln!(out, "{line}");
    });
    let _ = writeln!(out);
    if report.findings.is_empty() {
        let _ = writeln!(out, "No deprecated or removed feature found.");
        return out;
    }
    let rows: Vec<[String; 4]> = report
        .findings
        .iter()
        .map(|f| {
            [
                f.level.word().to_string(),
                f.rule.clone(),
                f.removed_in.clone().unwrap_or_else(|| "-".into()),
                f.deprecated_in.clone(),
            ]
        })
        .collect();
    let width = |i: usize, title: &str| {
        rows.iter()
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (w0, w1, w2, w3) = (
        width(0, "LEVEL"),
        width(1, "RULE"),
        width(2, "REMOVED"),
        width(3, "DEPRECATED"),
    );
    let _ = writeln!(
        out,
        "{:w0$}  {:w1$}  {:w2$}  {:w3$}  WHAT",
        "LEVEL", "RULE", "REMOVED", "DEPRECATED"
    );
    for (row, finding) in rows.iter().zip(&report.findings) {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            row[0], row[1], row[2], row[3], finding.title
        );
        let indent = " ".repeat(w0 + 2);
        for location in &finding.locations {
            let _ = writeln!(out, "{indent}at {location}");
        }
        let _ = writeln!(out, "{indent}instead: {}", finding.instead);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", counts_line(report));
    out
}

/// Renders the report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# containerd upgrade audit: target {}\n",
        report.target
    );
    header_lines(report, &mut |line| {
        let _ = writeln!(out, "- {line}");
    });
    let _ = writeln!(out, "\n{}\n", counts_line(report));
    if report.findings.is_empty() {
        let _ = writeln!(out, "No deprecated or removed feature found.");
        return out;
    }
    let _ = writeln!(
        out,
        "| level | rule | removed in | deprecated in | seen by | where | instead |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    for finding in &report.findings {
        let _ = writeln!(out, "{}", markdown_row(finding));
    }
    out
}

fn markdown_row(f: &AuditFinding) -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let sources: Vec<&str> = f
        .sources
        .iter()
        .map(|s| match s {
            super::Source::Daemon => "daemon",
            super::Source::Config => "config",
            super::Source::Content => "content",
        })
        .collect();
    let removed = match (&f.removed_in, f.removed_in_from.as_deref()) {
        (Some(r), Some("daemon")) => format!("{r} (daemon)"),
        (Some(r), _) => r.clone(),
        (None, _) => "-".into(),
    };
    format!(
        "| **{}** | `{}` {} | {} | {} | {} | {} | {} |",
        f.level.word(),
        f.rule,
        cell(&f.title),
        removed,
        f.deprecated_in,
        sources.join(", "),
        cell(
            &f.locations
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join("<br>")
        ),
        cell(&f.instead)
    )
}

fn header_lines(report: &Report, line: &mut dyn FnMut(String)) {
    line(format!(
        "target: containerd {} ({})",
        report.target, report.target_reason
    ));
    let daemon = &report.containerd;
    line(match (&daemon.version, &daemon.error) {
        (Some(version), _) => format!("daemon: containerd {version} at {}", daemon.address),
        (None, Some(err)) => format!("daemon: not reachable ({err})"),
        (None, None) => format!("daemon: not reachable at {}", daemon.address),
    });
    let config = &report.config;
    match (&config.note, config.files.is_empty()) {
        (Some(note), _) => line(format!("config: {note}")),
        (None, true) => line("config: none read".into()),
        (None, false) => {
            let files: Vec<String> = config
                .files
                .iter()
                .map(|f| format!("{} (version {})", f.path, f.version))
                .collect();
            line(format!("config: {}", files.join(", ")));
        }
    }
    let live = &report.live;
    line(match (&live.note, live.available) {
        (Some(note), _) => format!("daemon warnings: unavailable: {note}"),
        (None, _) => format!("daemon warnings: {}", live.warnings.len()),
    });
    let content = &report.content;
    line(match &content.note {
        Some(note) if !content.available => format!("content: unavailable: {note}"),
        note => format!(
            "content: {} images and {} containers in {} namespaces{}",
            content.images_checked,
            content.containers_checked,
            content.namespaces.len(),
            note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
        ),
    });
    if let Some(failure) = &report.failure {
        line(format!("audit could not run: {failure}"));
    }
}

fn counts_line(report: &Report) -> String {
    format!(
        "{} blocker(s), {} warning(s), {} note(s) for containerd {}",
        report.counts.blockers, report.counts.warnings, report.counts.notes, report.target
    )
}
