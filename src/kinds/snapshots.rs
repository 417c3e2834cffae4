//! `containerd-snapshots`: the snapshots of every loaded snapshotter, what
//! they cost on disk, and how full the filesystems under them are.
//!
//! `Snapshots.Usage` of an active overlayfs snapshot makes the daemon walk
//! its upper directory, which is slow on a large node and loads a daemon
//! that may already struggle. So usage is asked with bounded concurrency and
//! within a time budget (spec params `usage_concurrency`, `usage_budget`);
//! when the budget runs out the file says how many were measured.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{CollectError, Context, Outcome, decode_params, rfc3339};
use crate::bundle::Output;
use crate::spec::Spec;

/// The spec parameters of this kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_budget", deserialize_with = "super::duration_param")]
    pub usage_budget: Duration,
    #[serde(default = "default_concurrency")]
    pub usage_concurrency: usize,
}

fn default_budget() -> Duration {
    Duration::from_secs(20)
}

fn default_concurrency() -> usize {
    4
}

/// Checks a spec's params table.
pub fn check_params(params: &toml::Table) -> Result<(), String> {
    let params: Params = decode_params(params)?;
    if params.usage_concurrency == 0 {
        return Err("usage_concurrency must be at least 1".into());
    }
    Ok(())
}

/// One snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub key: String,
    pub parent: String,
    /// `active`, `committed`, `view` or `unknown`.
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Bytes used, when measured.
    pub size: Option<i64>,
    pub inodes: Option<i64>,
}

/// Sums over the snapshots of one kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Total {
    pub count: u64,
    pub size: i64,
    pub inodes: i64,
}

/// The snapshots of one snapshotter in one namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotterReport {
    pub snapshotter: String,
    pub count: usize,
    /// How many snapshots had their usage measured.
    pub measured: usize,
    pub budget_exhausted: bool,
    /// Totals by kind, over the measured snapshots.
    pub totals: BTreeMap<String, Total>,
    pub snapshots: Vec<SnapshotRecord>,
}

/// `<ns>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceSnapshots {
    pub namespace: String,
    pub snapshotters: Vec<SnapshotterReport>,
}

/// Space on a filesystem that holds containerd's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Filesystem {
    pub path: String,
    pub holds: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
    pub inodes_total: u64,
    pub inodes_free: u64,
    pub inodes_used_percent: f64,
}

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: Params = decode_params(&spec.params).expect("params were checked at load");

    // Loaded snapshotters, and the directories their data lives in.
    let plugins = ctx.containerd.plugins(Vec::new()).await?;
    let mut snapshotters = Vec::new();
    let mut roots = Vec::new();
    for plugin in &plugins {
        let root = plugin.exports.get("root");
        match plugin.r#type.as_str() {
            "io.containerd.snapshotter.v1" if plugin.init_err.is_none() => {
                snapshotters.push(plugin.id.clone());
                if let Some(root) = root {
                    roots.push((root.clone(), format!("snapshotter {}", plugin.id)));
                }
            }
            "io.containerd.content.v1" => {
                if let Some(root) = root {
                    roots.push((root.clone(), "content store".to_string()));
                }
            }
            _ => {}
        }
    }
    snapshotters.sort();

    let filesystems: Vec<Filesystem> = roots
        .into_iter()
        .filter_map(|(path, holds)| filesystem(&path, &holds))
        .collect();
    out.put_in("filesystems.json", json(&filesystems)).await?;

    let budget_end = Instant::now() + params.usage_budget;
    let mut exhausted = false;
    for namespace in ctx.containerd.namespace_names(&ctx.namespaces).await? {
        let mut reports = Vec::new();
        for snapshotter in &snapshotters {
            let infos = ctx.containerd.snapshots(&namespace, snapshotter).await?;
            let report = measure(ctx, &namespace, snapshotter, infos, &params, budget_end).await;
            exhausted |= report.budget_exhausted;
            reports.push(report);
        }
        let file = NamespaceSnapshots {
            namespace: namespace.clone(),
            snapshotters: reports,
        };
        out.put_in(&format!("{namespace}.json"), json(&file))
            .await?;
    }

    if exhausted {
        return Ok(Outcome::Skipped(format!(
            "usage budget of {} ran out before every snapshot was measured; \
             see `measured` per snapshotter",
            humantime::format_duration(params.usage_budget)
        )));
    }
    Ok(Outcome::Done)
}

/// Asks the usage of each snapshot, a few at a time, until the budget ends.
async fn measure(
    ctx: &Context,
    namespace: &str,
    snapshotter: &str,
    infos: Vec<containerd_client::services::v1::snapshots::Info>,
    params: &Params,
    budget_end: Instant,
) -> SnapshotterReport {
    let mut snapshots: Vec<SnapshotRecord> = infos
        .into_iter()
        .map(|info| SnapshotRecord {
            kind: kind_name(info.kind).to_string(),
            key: info.name,
            parent: info.parent,
            labels: info.labels.into_iter().collect(),
            created_at: info.created_at.as_ref().map(rfc3339),
            updated_at: info.updated_at.as_ref().map(rfc3339),
            size: None,
            inodes: None,
        })
        .collect();
    snapshots.sort_by(|a, b| a.key.cmp(&b.key));

    let keys: Vec<(usize, String)> = snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.key.clone()))
        .collect();
    let mut usages = futures::stream::iter(keys)
        .map(|(index, key)| async move {
            let usage = ctx
                .containerd
                .snapshot_usage(namespace, snapshotter, &key)
                .await;
            (index, usage)
        })
        .buffer_unordered(params.usage_concurrency);
    let mut budget_exhausted = false;
    loop {
        match tokio::time::timeout_at(budget_end.into(), usages.next()).await {
            Ok(Some((index, Ok((size, inodes))))) => {
                snapshots[index].size = Some(size);
                snapshots[index].inodes = Some(inodes);
            }
            Ok(Some((index, Err(err)))) => {
                tracing::debug!(key = %snapshots[index].key, error = %err, "no usage");
            }
            Ok(None) => break,
            Err(_) => {
                budget_exhausted = true;
                break;
            }
        }
    }

    let mut totals: BTreeMap<String, Total> = BTreeMap::new();
    for snapshot in &snapshots {
        if let (Some(size), Some(inodes)) = (snapshot.size, snapshot.inodes) {
            let total = totals.entry(snapshot.kind.clone()).or_default();
            total.count += 1;
            total.size += size;
            total.inodes += inodes;
        }
    }
    SnapshotterReport {
        snapshotter: snapshotter.to_string(),
        count: snapshots.len(),
        measured: snapshots.iter().filter(|s| s.size.is_some()).count(),
        budget_exhausted,
        totals,
        snapshots,
    }
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "view",
        2 => "active",
        3 => "committed",
        _ => "unknown",
    }
}

/// Space and inodes of the filesystem holding `path`, if it is here.
fn filesystem(path: &str, holds: &str) -> Option<Filesystem> {
    let c_path = CString::new(path).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a
    // properly sized, writable statvfs that the call fills in.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * block;
    let free = stat.f_bfree as u64 * block;
    let percent = |used: u64, all: u64| {
        if all == 0 {
            0.0
        } else {
            (used as f64 * 1000.0 / all as f64).round() / 10.0
        }
    };
    Some(Filesystem {
        path: path.to_string(),
        holds: holds.to_string(),
        total_bytes: total,
        available_bytes: stat.f_bavail as u64 * block,
        used_percent: percent(total - free, total),
        inodes_total: stat.f_files as u64,
        inodes_free: stat.f_ffree as u64,
        inodes_used_percent: percent(
            stat.f_files as u64 - stat.f_ffree as u64,
            stat.f_files as u64,
        ),
    })
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("snapshot records encode as JSON")
}
