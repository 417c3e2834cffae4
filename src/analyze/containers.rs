//! Containers without a task: created but never started, or whose task
//! was deleted while the container stayed.

use std::collections::HashSet;

use super::{Finding, Input, Severity};
use crate::kinds::{ContainerRecord, TaskRecord};

pub fn analyze(input: &Input) -> Vec<Finding> {
    // Without the task list, nothing can be said about missing tasks.
    let task_files = input.jsons_of_kind::<Vec<TaskRecord>>("containerd-tasks");
    if task_files.is_empty() {
        return Vec::new();
    }
    let tasks: HashSet<(String, String)> = task_files
        .into_iter()
        .flat_map(|(_, tasks)| tasks)
        .map(|task| (task.namespace, task.id))
        .collect();

    let mut findings = Vec::new();
    for (file, containers) in input.jsons_of_kind::<Vec<ContainerRecord>>("containerd-containers") {
        let idle: Vec<String> = containers
            .iter()
            .filter(|c| !tasks.contains(&(c.namespace.clone(), c.id.clone())))
            .map(|c| format!("{}/{}", c.namespace, c.id))
            .collect();
        if idle.is_empty() {
            continue;
        }
        findings.push(Finding {
            severity: Severity::Info,
            analyzer: "containers".into(),
            title: format!("{} container(s) have no task", idle.len()),
            evidence: idle.join(", "),
            file: Some(file),
            action: "Normal for containers created but not started; otherwise their task \
                     was deleted and the container left behind, holding its snapshot."
                .into(),
        });
    }
    findings
}
