//! What the events window heard: OOM kills, exits with an error status,
//! and heavy churn of containers and tasks.

use std::collections::BTreeMap;

use super::{Finding, Input, Severity};
use crate::kinds::EventRecord;

/// Creates and deletes in one window above which churn is a finding.
const CHURN: usize = 20;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, text) in input.texts_of_kind("containerd-events") {
        let events: Vec<EventRecord> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let finding = |severity, title: String, evidence: String, action: &str| Finding {
            severity,
            analyzer: "events".into(),
            title,
            evidence,
            file: Some(file.clone()),
            action: action.into(),
        };

        let mut ooms: BTreeMap<String, usize> = BTreeMap::new();
        let mut failed_exits = Vec::new();
        let mut churn = 0;
        for event in &events {
            let container = |key: &str| {
                format!(
                    "{}/{}",
                    event.namespace,
                    event.event[key].as_str().unwrap_or("?")
                )
            };
            match event.type_name.as_str() {
                "containerd.events.TaskOOM" => {
                    *ooms.entry(container("container_id")).or_default() += 1
                }
                "containerd.events.TaskExit" => {
                    let status = event.event["exit_status"].as_u64().unwrap_or(0);
                    if status != 0 {
                        failed_exits.push(format!("{} ({status})", container("container_id")));
                    }
                }
                "containerd.events.TaskCreate"
                | "containerd.events.TaskDelete"
                | "containerd.events.ContainerCreate"
                | "containerd.events.ContainerDelete" => churn += 1,
                _ => {}
            }
        }

        for (container, count) in ooms {
            findings.push(finding(
                Severity::Critical,
                format!("OOM kill in {container}"),
                format!("{count} TaskOOM event(s) during the events window"),
                "The container hit its memory limit: raise the limit or find what grows \
                 (its metrics in the task list show usage and failcnt).",
            ));
        }
        if !failed_exits.is_empty() {
            findings.push(finding(
                Severity::Warning,
                format!(
                    "{} task exit(s) with an error status during the run",
                    failed_exits.len()
                ),
                failed_exits.join(", "),
                "Read those containers' logs; 137 means SIGKILL (often the OOM killer).",
            ));
        }
        if churn >= CHURN {
            findings.push(finding(
                Severity::Warning,
                "heavy container churn".into(),
                format!("{churn} container/task creates and deletes during the events window"),
                "Something is restarting containers in a loop (a crashing workload, or an \
                 orchestrator retrying); find the container ids in the events file.",
            ));
        }
    }
    findings
}
