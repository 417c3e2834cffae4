//! Tasks in states that need a look: unknown (containerd lost track of the
//! shim), stopped but never deleted (with or without an error exit), and
//! paused.

use super::{Finding, Input, Severity};
use crate::kinds::TaskRecord;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, tasks) in input.jsons_of_kind::<Vec<TaskRecord>>("containerd-tasks") {
        for task in tasks {
            let name = format!("{}/{}", task.namespace, task.id);
            let finding = |severity, title: String, evidence: String, action: &str| Finding {
                severity,
                analyzer: "tasks".into(),
                title,
                evidence,
                file: Some(file.clone()),
                action: action.into(),
            };
            match task.status.as_str() {
                "unknown" => findings.push(finding(
                    Severity::Critical,
                    format!("task {name} is in UNKNOWN state"),
                    match &task.state_error {
                        Some(error) => error.clone(),
                        None => format!("pid {} as last known", task.pid),
                    },
                    "containerd cannot reach the task's shim: check the shim process and its \
                     socket (shim collectors), and the daemon's log around the time it was lost.",
                )),
                "stopped" if task.exit_status != 0 => findings.push(finding(
                    Severity::Warning,
                    format!("task {name} exited with status {}", task.exit_status),
                    format!(
                        "stopped{}, not deleted",
                        task.exited_at
                            .map(|at| format!(" at {at}"))
                            .unwrap_or_default()
                    ),
                    "Read the container's own log for the cause (137 is SIGKILL, often the \
                     OOM killer); delete the task once understood.",
                )),
                "stopped" => findings.push(finding(
                    Severity::Info,
                    format!("task {name} stopped but was never deleted"),
                    "exit status 0".into(),
                    "Whatever started it did not clean up; `ctr tasks delete` removes it.",
                )),
                "paused" | "pausing" => findings.push(finding(
                    Severity::Warning,
                    format!("task {name} is {}", task.status),
                    format!("pid {}", task.pid),
                    "A paused task holds its resources and answers nothing; resume it \
                     (`ctr tasks resume`) if the pause was not intended.",
                )),
                _ => {}
            }
        }
    }
    findings
}
