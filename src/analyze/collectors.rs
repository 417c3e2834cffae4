//! Collectors that did not succeed.
//!
//! When the daemon's version could not be had, containerd itself is the
//! problem (down, hung, or the wrong socket), and that is the first thing a
//! reader should see. Other failures are listed so nobody mistakes a missing
//! file for a clean result.

use super::{Finding, Input, Severity};
use crate::bundle::manifest::Status;
use crate::kinds::Kind;

fn needs_daemon(kind: &str) -> bool {
    Kind::from_name(kind).is_some_and(Kind::needs_daemon)
}

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    let daemon = input
        .collectors
        .iter()
        .find(|record| record.kind == "containerd-version" && record.status.is_failure());
    if let Some(record) = daemon {
        let error = record.error.clone().unwrap_or_default();
        let (title, action) = if error.contains("does not answer as containerd") {
            (
                "the socket is not containerd's",
                "Something other than containerd listens on --address; point it at \
                 containerd's `grpc.address`.",
            )
        } else if record.status == Status::TimedOut
            || error.contains("did not answer a Version call")
        {
            (
                "containerd did not answer",
                "The daemon accepts connections but does not respond: a goroutine dump \
                 (debug socket, or SIGUSR1) shows where it is stuck.",
            )
        } else {
            (
                "containerd could not be reached",
                "Check that containerd runs and that --address names its socket \
                 (`grpc.address` in its config).",
            )
        };
        findings.push(Finding {
            severity: Severity::Critical,
            analyzer: "collectors".into(),
            title: title.into(),
            evidence: error,
            file: Some("manifest.json".into()),
            action: action.into(),
        });
    }

    let others: Vec<String> = input
        .collectors
        .iter()
        .filter(|record| record.status.is_failure())
        .filter(|record| daemon.is_none() || !needs_daemon(&record.kind))
        .map(|record| format!("{} ({})", record.name, record.status.word()))
        .collect();
    if !others.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            analyzer: "collectors".into(),
            title: format!("{} collector(s) did not succeed", others.len()),
            evidence: others.join(", "),
            file: Some("manifest.json".into()),
            action: "The files these collectors write are missing or partial; see each \
                     collector's error in the manifest."
                .into(),
        });
    }
    findings
}
