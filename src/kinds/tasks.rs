//! `containerd-tasks`: every task of every namespace, with its processes
//! and its cgroup metrics.
//!
//! Metrics arrive as protobuf `Any` values (cgroup v1 or v2 statistics);
//! they are decoded into JSON so a reader needs no protobuf tooling.
//!
//! A task's pids are the processes in its cgroup. `Tasks.ListPids` gets them
//! by having the shim run `runc ps`, a process per task; reading the
//! cgroup's `cgroup.procs` directly (the file runc reads) gives the same
//! answer without it, which matters on a node with hundreds of tasks. The
//! cgroup comes from the container's OCI spec; when it cannot be read there
//! (a systemd-managed path, another mount namespace), the kind falls back to
//! `ListPids`. Each record says where its pids came from.

use std::collections::HashMap;

use futures::StreamExt;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::proto::{cgroups_v1, cgroups_v2};
use crate::source::{cgroup, error_chain};

/// One task as written to `<ns>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub namespace: String,
    pub id: String,
    pub pid: u32,
    /// `unknown`, `created`, `running`, `stopped`, `paused` or `pausing`.
    pub status: String,
    pub exit_status: u32,
    pub exited_at: Option<String>,
    pub pids: Option<Vec<u32>>,
    /// `cgroup` (read from the task's cgroup.procs) or `ListPids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_error: Option<String>,
    pub metrics: Option<Value>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    for namespace in ctx.containerd.namespace_names(&ctx.namespaces).await? {
        let tasks = ctx.containerd.tasks(&namespace).await?;
        let mut metrics: HashMap<String, Value> =
            match ctx.containerd.task_metrics(&namespace).await {
                Ok(metrics) => metrics
                    .into_iter()
                    .filter_map(|m| Some((m.id, metrics_json(m.data.as_ref()?))))
                    .collect(),
                Err(err) => {
                    tracing::warn!(%namespace, error = %error_chain(&err), "no task metrics");
                    HashMap::new()
                }
            };

        // Pids are one call per task: ask them concurrently; the source's
        // bound on calls in flight keeps the daemon's load in check.
        let namespace = namespace.as_str();
        let cgroups: HashMap<String, String> = match ctx.containerd.containers(namespace).await {
            Ok(containers) => containers
                .into_iter()
                .filter_map(|c| Some((c.id, cgroup::spec_path_of(&c.spec?.value)?)))
                .collect(),
            Err(_) => HashMap::new(),
        };
        let cgroups = &cgroups;
        let mut records: Vec<TaskRecord> = futures::stream::iter(tasks)
            .map(|task| async move {
                // The list names a task by `id`; `container_id` is left empty.
                let id = if task.id.is_empty() {
                    task.container_id.clone()
                } else {
                    task.id.clone()
                };
                let status = status_name(task.status);
                let live = matches!(status, "running" | "paused" | "pausing");
                let from_cgroup = cgroups
                    .get(&id)
                    .filter(|_| live)
                    .and_then(|p| cgroup::procs(p));
                let (pids, pids_from, pids_error) = match (live, from_cgroup) {
                    (false, _) => (None, None, None),
                    (true, Some(pids)) => (Some(pids), Some("cgroup".to_string()), None),
                    (true, None) => match ctx.containerd.task_pids(namespace, &id).await {
                        Ok(pids) => (Some(pids), Some("ListPids".to_string()), None),
                        Err(err) => (None, None, Some(error_chain(&err))),
                    },
                };
                TaskRecord {
                    namespace: namespace.to_string(),
                    metrics: None,
                    id,
                    pid: task.pid,
                    status: status.to_string(),
                    exit_status: task.exit_status,
                    exited_at: task
                        .exited_at
                        .as_ref()
                        .filter(|t| t.seconds > 0)
                        .map(rfc3339),
                    pids,
                    pids_from,
                    pids_error,
                }
            })
            .buffer_unordered(PIDS_IN_FLIGHT)
            .collect()
            .await;
        for record in &mut records {
            record.metrics = metrics.remove(&record.id);
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        let data = serde_json::to_vec_pretty(&records).expect("records encode as JSON");
        out.put_in(&format!("{namespace}.json"), data).await?;
    }
    Ok(Outcome::Done)
}

/// Pids requests queued at once; the containerd source bounds how many are
/// actually in flight.
const PIDS_IN_FLIGHT: usize = 16;

/// The name `ctr tasks ls` shows for a task status.
pub fn status_name(status: i32) -> &'static str {
    match status {
        1 => "created",
        2 => "running",
        3 => "stopped",
        4 => "paused",
        5 => "pausing",
        _ => "unknown",
    }
}

/// Decodes cgroup statistics; an unknown type is kept as its name and
/// size rather than dropped.
fn metrics_json(any: &prost_types::Any) -> Value {
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    let decoded = match type_name {
        "io.containerd.cgroups.v1.Metrics" => cgroups_v1::Metrics::decode(any.value.as_slice())
            .ok()
            .and_then(|m| serde_json::to_value(m).ok()),
        "io.containerd.cgroups.v2.Metrics" => cgroups_v2::Metrics::decode(any.value.as_slice())
            .ok()
            .and_then(|m| serde_json::to_value(m).ok()),
        _ => None,
    };
    match decoded {
        Some(mut value) => {
            value["type"] = Value::from(type_name);
            value
        }
        None => serde_json::json!({"type": type_name, "undecoded_bytes": any.value.len()}),
    }
}
