//! The kernel's messages: OOM kills and hung tasks.
//!
//! Both explain symptoms that look like containerd's fault (a container that
//! vanished, a daemon or shim that stopped answering) but happen in the
//! kernel. A kill or hang that hits containerd or a shim itself is critical;
//! others are warnings, since they may be the workload's own limits.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, Input, Severity};

/// `Killed process 1234 (name)`, in both global and cgroup OOM reports.
static OOM_KILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Killed process (\d+) \(([^)]*)\)").expect("the OOM pattern compiles")
});

/// `task name:1234 blocked for more than 120 seconds`.
static HUNG_TASK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"task (\S+):(\d+) blocked for more than (\d+) seconds")
        .expect("the hung task pattern compiles")
});

/// At most this many lines of evidence per finding.
const EVIDENCE_LINES: usize = 10;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let logs = input
        .collectors
        .iter()
        .filter(|record| record.kind == "kernel-log")
        .flat_map(|record| &record.files)
        .filter_map(|path| Some((path, input.entries.get(path)?)));
    let mut findings = Vec::new();
    for (path, data) in logs {
        let text = String::from_utf8_lossy(data);
        findings.extend(oom_kills(path, &text));
        findings.extend(hung_tasks(path, &text));
    }
    findings
}

fn is_containerd(name: &str) -> bool {
    name.starts_with("containerd")
}

fn oom_kills(path: &str, text: &str) -> Option<Finding> {
    let kills: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| Some((line, OOM_KILL.captures(line)?.get(2)?.as_str())))
        .collect();
    if kills.is_empty() {
        return None;
    }
    let ours = kills.iter().any(|(_, name)| is_containerd(name));
    Some(Finding {
        severity: if ours {
            Severity::Critical
        } else {
            Severity::Warning
        },
        analyzer: "kernel".into(),
        title: if ours {
            "the kernel OOM-killed containerd or a shim".into()
        } else {
            format!("the kernel OOM-killed {} process(es)", kills.len())
        },
        evidence: evidence(kills.iter().map(|(line, _)| *line)),
        file: Some(path.to_string()),
        action: "A memory limit (of a container's cgroup, or of the node) was hit. Check the \
                 limits of the containers named; if containerd or a shim was killed, raise \
                 the memory available to its cgroup (systemd unit) and look for a leak in \
                 its heap profile."
            .into(),
    })
}

fn hung_tasks(path: &str, text: &str) -> Option<Finding> {
    let hangs: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| Some((line, HUNG_TASK.captures(line)?.get(1)?.as_str())))
        .collect();
    if hangs.is_empty() {
        return None;
    }
    let ours = hangs.iter().any(|(_, name)| is_containerd(name));
    Some(Finding {
        severity: if ours {
            Severity::Critical
        } else {
            Severity::Warning
        },
        analyzer: "kernel".into(),
        title: format!("{} task(s) hung in the kernel", hangs.len()),
        evidence: evidence(hangs.iter().map(|(line, _)| *line)),
        file: Some(path.to_string()),
        action: "Tasks stayed in uninterruptible sleep for minutes, usually waiting on \
                 storage (overlayfs over a slow disk, NFS) or a frozen cgroup. The stack \
                 trace after each line in the kernel log shows where; containerd calls that \
                 touch those mounts hang with them."
            .into(),
    })
}

fn evidence<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let lines: Vec<&str> = lines.collect();
    let mut text = lines
        .iter()
        .take(EVIDENCE_LINES)
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > EVIDENCE_LINES {
        text += &format!("\n... {} more", lines.len() - EVIDENCE_LINES);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Entries;
    use crate::bundle::manifest::{CollectorRecord, Status};

    fn run(log: &str) -> Vec<Finding> {
        let mut entries = Entries::default();
        entries.insert("logs/kernel.log", log.as_bytes().to_vec());
        let records = vec![CollectorRecord {
            name: "logs.kernel".into(),
            kind: "kernel-log".into(),
            status: Status::Ok,
            duration_ms: 1,
            reason: None,
            error: None,
            files: vec!["logs/kernel.log".into()],
            redactions: 0,
            cuts: vec![],
        }];
        analyze(&Input {
            entries: &entries,
            collectors: &records,
        })
    }

    #[test]
    fn oom_kill_of_a_shim_is_critical() {
        let log = "[  10.0] Memory cgroup out of memory: Killed process 4242 (containerd-shim) \
                   total-vm:1kB\n[  11.0] Out of memory: Killed process 77 (java) total-vm:9kB\n";
        let findings = run(log);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(findings[0].evidence.contains("4242"), "{findings:?}");
        assert_eq!(findings[0].file.as_deref(), Some("logs/kernel.log"));
    }

    #[test]
    fn hung_task_is_a_warning_and_quiet_logs_say_nothing() {
        let log = "INFO: task kworker/1:2:311 blocked for more than 122 seconds.\n";
        let findings = run(log);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(findings[0].title, "1 task(s) hung in the kernel");
        assert!(run("[ 1.0] eth0: link up\n").is_empty());
    }
}
