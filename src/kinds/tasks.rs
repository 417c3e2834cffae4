//! `containerd-tasks`: every task of every namespace, with its processes
//! and its cgroup metrics.
//!
//! Metrics arrive as protobuf `Any` values (cgroup v1 or v2 statistics);
//! they are decoded into JSON so a reader needs no protobuf tooling. Pids
//! are asked for only for tasks that can have processes.

use std::collections::HashMap;

use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::proto::{cgroups_v1, cgroups_v2};
use crate::source::error_chain;

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

        let mut records = Vec::with_capacity(tasks.len());
        for task in tasks {
            // The list names a task by `id`; `container_id` is left empty.
            let id = if task.id.is_empty() {
                task.container_id.clone()
            } else {
                task.id.clone()
            };
            let status = status_name(task.status);
            let (pids, pids_error) = if matches!(status, "running" | "paused" | "pausing") {
                match ctx.containerd.task_pids(&namespace, &id).await {
                    Ok(pids) => (Some(pids), None),
                    Err(err) => (None, Some(error_chain(&err))),
                }
            } else {
                (None, None)
            };
            records.push(TaskRecord {
                namespace: namespace.clone(),
                metrics: metrics.remove(&id),
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
                pids_error,
            });
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        let data = serde_json::to_vec_pretty(&records).expect("records encode as JSON");
        out.put_in(&format!("{namespace}.json"), data).await?;
    }
    Ok(Outcome::Done)
}

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
