//! Shims that are gone, silent or left over.
//!
//! A task dir whose shim is gone means containerd lost the process that
//! supervises the container: exits go unreported and `ctr task` commands
//! hang or fail. A shim that is alive but silent is the usual root of
//! "containerd hangs on one container". Shim processes of this daemon with
//! no task dir, and sockets nobody serves, are leftovers of crashes that
//! hold memory or confuse the next start.

use super::{Finding, Input, Severity};
use crate::kinds::{Call, ShimTask, ShimsReport};

pub fn analyze(input: &Input) -> Vec<Finding> {
    let Some((file, report)) = input.json_of_kind::<ShimsReport>("shims") else {
        return Vec::new();
    };
    let mut findings: Vec<Finding> = report
        .tasks
        .iter()
        .filter_map(|task| task_finding(task, &file))
        .collect();

    for orphan in &report.orphans {
        let task = match (&orphan.namespace, &orphan.id) {
            (Some(ns), Some(id)) => format!("{ns}/{id}"),
            _ => "an unknown task".to_string(),
        };
        findings.push(Finding {
            severity: Severity::Warning,
            analyzer: "shims".into(),
            title: format!("shim process {} of {task} has no task dir", orphan.pid),
            evidence: format!(
                "process {} ({}) serves containerd at {}, but there is no \
                 {}/io.containerd.runtime.v2.task/{task}",
                orphan.pid,
                orphan.cmdline.join(" "),
                report.daemon_address,
                report.state_dir
            ),
            file: Some(file.clone()),
            action: format!(
                "containerd no longer tracks this shim (its task was deleted while the \
                 shim stayed, or the state dir was wiped). Check with `ctr -n <ns> tasks ls` \
                 that no task uses it, then stop it with `kill {}`; its containers go with it.",
                orphan.pid
            ),
        });
    }

    if !report.stale_sockets.is_empty() {
        findings.push(Finding {
            severity: Severity::Info,
            analyzer: "shims".into(),
            title: format!(
                "{} shim socket(s) left without a process",
                report.stale_sockets.len()
            ),
            evidence: format!(
                "no process listens on {}, and no task dir names them",
                report.stale_sockets.join(", ")
            ),
            file: Some(file.clone()),
            action: "These are left by shims that died without cleaning up. They are \
                     harmless, and can be removed once no task dir names them."
                .into(),
        });
    }
    findings
}

/// The finding for one task dir, if its shim is gone or does not answer.
fn task_finding(task: &ShimTask, file: &str) -> Option<Finding> {
    let name = format!("{}/{}", task.namespace, task.id);
    let connect_error = match &task.connect {
        Call::Ok(_) => None,
        Call::Error(error) => Some(error.clone()),
        // No address means nothing to ask; the files say why.
        Call::Skipped(_) => return None,
    };
    let address = format!(
        "{} names {}",
        task.address_file.as_deref().unwrap_or("the task dir"),
        task.address.as_deref().unwrap_or("no address")
    );
    let init = task
        .init_pid
        .map(|pid| format!("init.pid {pid}"))
        .unwrap_or_else(|| "no init.pid".into());

    if let Some(error) = connect_error {
        let socket = match &task.socket {
            Some(s) if s.listening => format!("a process listens on {}", s.path),
            Some(s) if s.exists => format!("{} is left with no process listening", s.path),
            Some(s) => format!("{} does not exist", s.path),
            None => "no socket path".into(),
        };
        let alive = task.process.is_some() || task.socket.as_ref().is_some_and(|s| s.listening);
        if alive {
            let pid = task.process.as_ref().map(|p| p.pid.to_string());
            return Some(Finding {
                severity: Severity::Critical,
                analyzer: "shims".into(),
                title: format!("the shim of task {name} does not answer"),
                evidence: format!(
                    "in {}: {address}; {socket}; shim process {}; Connect: {error}",
                    task.dir,
                    pid.as_deref().unwrap_or("not found")
                ),
                file: Some(file.to_string()),
                action: format!(
                    "containerd calls to this task will hang too. Dump the shim's goroutines \
                     with `kill -USR1 {}` (they go to the shim's log) to see where it is \
                     stuck; if it stays stuck, kill the shim and delete the task with \
                     `ctr -n {} tasks delete --force {}`.",
                    pid.as_deref().unwrap_or("<shim pid>"),
                    task.namespace,
                    task.id
                ),
            });
        }
        return Some(Finding {
            severity: Severity::Critical,
            analyzer: "shims".into(),
            title: format!("the shim of task {name} is gone"),
            evidence: format!(
                "in {}: {address}; {socket}; no containerd-shim process has -namespace {} \
                 -id {}; {init}; Connect: {error}",
                task.dir, task.namespace, task.id
            ),
            file: Some(file.to_string()),
            action: format!(
                "Nothing supervises this container any more: its exit will not be seen. \
                 Look for why the shim died (OOM killer in the kernel log, the shim's log), \
                 then clean up with `ctr -n {} tasks delete --force {}` (Kubernetes: delete \
                 the pod), and remove the socket file if it stays.",
                task.namespace, task.id
            ),
        });
    }

    // Connected, but the task itself could not be read.
    if let Call::Error(error) = &task.state {
        return Some(Finding {
            severity: Severity::Warning,
            analyzer: "shims".into(),
            title: format!("the shim of task {name} answers Connect but not State"),
            evidence: format!("in {}: {address}; State: {error}", task.dir),
            file: Some(file.to_string()),
            action: "The shim is alive but cannot report the task; its log (and \
                     `kill -USR1` on the shim for a goroutine dump) says why."
                .into(),
        });
    }
    None
}
