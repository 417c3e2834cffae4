//! Disk: filesystems under containerd's data running full, active
//! snapshots that no container uses, and the largest active snapshots with
//! the containers they belong to.

use std::collections::HashMap;

use super::{Finding, Input, Severity};
use crate::kinds::{ContainerRecord, Filesystem, NamespaceSnapshots};

/// Above this share used (bytes or inodes), a filesystem is a finding.
const FULL_PERCENT: f64 = 85.0;
/// How many of the largest active snapshots to name.
const LARGEST: usize = 5;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, filesystems) in input.jsons_of_kind::<Vec<Filesystem>>("containerd-snapshots") {
        for fs in filesystems {
            let worst = fs.used_percent.max(fs.inodes_used_percent);
            if worst <= FULL_PERCENT {
                continue;
            }
            findings.push(Finding {
                severity: if worst >= 95.0 {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                analyzer: "disk".into(),
                title: format!("filesystem holding the {} is {worst:.0}% full", fs.holds),
                evidence: format!(
                    "{}: {:.1}% of bytes used ({} bytes available), {:.1}% of inodes used",
                    fs.path, fs.used_percent, fs.available_bytes, fs.inodes_used_percent
                ),
                file: Some(file.clone()),
                action: "Free space before containerd fails to pull or start containers: \
                         remove unused images (`ctr images rm`), stopped containers, and \
                         leftover snapshots."
                    .into(),
            });
        }
    }

    // Which container owns which active snapshot.
    let mut owners: HashMap<(String, String, String), String> = HashMap::new();
    let containers = input.jsons_of_kind::<Vec<ContainerRecord>>("containerd-containers");
    for (_, list) in &containers {
        for c in list {
            let key = (
                c.namespace.clone(),
                c.snapshotter.clone(),
                c.snapshot_key.clone(),
            );
            owners.insert(key, c.id.clone());
        }
    }

    let mut active = Vec::new();
    for (file, ns) in input.jsons_of_kind::<NamespaceSnapshots>("containerd-snapshots") {
        let mut orphans = Vec::new();
        for report in &ns.snapshotters {
            for snap in report.snapshots.iter().filter(|s| s.kind == "active") {
                let key = (
                    ns.namespace.clone(),
                    report.snapshotter.clone(),
                    snap.key.clone(),
                );
                let owner = owners.get(&key).cloned();
                if owner.is_none() {
                    orphans.push(format!("{}:{}", report.snapshotter, snap.key));
                }
                active.push((
                    snap.size.unwrap_or(0),
                    ns.namespace.clone(),
                    snap.key.clone(),
                    owner,
                    file.clone(),
                ));
            }
        }
        if !orphans.is_empty() && !containers.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                analyzer: "disk".into(),
                title: format!(
                    "{} active snapshot(s) in namespace {} belong to no container",
                    orphans.len(),
                    ns.namespace
                ),
                evidence: orphans.join(", "),
                file: Some(file.clone()),
                action: "Left by an interrupted pull or a container removed without its \
                         snapshot; if no client is using them, remove them with \
                         `ctr snapshots rm`."
                    .into(),
            });
        }
    }

    active.sort_by_key(|a| std::cmp::Reverse(a.0));
    let largest: Vec<String> = active
        .iter()
        .filter(|(size, ..)| *size > 0)
        .take(LARGEST)
        .map(|(size, ns, key, owner, _)| {
            let owner = owner
                .as_deref()
                .map(|o| format!("container {o}"))
                .unwrap_or_else(|| "no container".into());
            format!("{ns}/{key} ({size} bytes, {owner})")
        })
        .collect();
    if let (false, Some((.., file))) = (largest.is_empty(), active.first()) {
        findings.push(Finding {
            severity: Severity::Info,
            analyzer: "disk".into(),
            title: "largest active snapshots".into(),
            evidence: largest.join("; "),
            file: Some(file.clone()),
            action: "A container writing much into its root filesystem grows its snapshot; \
                     large ones are worth a volume instead."
                .into(),
        });
    }
    findings
}
