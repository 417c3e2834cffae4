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
//!
//! A shim that does not answer is the incident this kind must survive.
//! containerd answers `Tasks.List` by asking each shim in turn, two seconds
//! each, and `Tasks.Metrics` waits on a silent shim for as long as the call
//! lasts. So both whole-namespace calls have a deadline (`list_timeout`);
//! past it the kind asks task by task (`Tasks.Get` for each container,
//! `Tasks.Metrics` filtered by id), each under `call_timeout`, and stops
//! asking before its own timeout so what was answered is written. A task
//! whose state or metrics could not be had says why in its record.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::{CollectError, Context, Outcome, asking_ends, decode_params, rfc3339};
use crate::bundle::Output;
use crate::proto::{cgroups_v1, cgroups_v2};
use crate::source::{ContainerdError, cgroup, error_chain};
use crate::spec::Spec;
use containerd_client::types::v1::Process;

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
    /// Why containerd gave no state for the task (the status is then
    /// `unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_error: Option<String>,
    pub pids: Option<Vec<u32>>,
    /// `cgroup` (read from the task's cgroup.procs) or `ListPids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_error: Option<String>,
    pub metrics: Option<Value>,
    /// Why a live task has no metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
}

/// The kind's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Deadline for `Tasks.List` and `Tasks.Metrics` of a whole namespace.
    #[serde(
        default = "default_list_timeout",
        deserialize_with = "super::duration_param"
    )]
    pub list_timeout: Duration,
    /// Deadline for each call about one task.
    #[serde(
        default = "default_call_timeout",
        deserialize_with = "super::duration_param"
    )]
    pub call_timeout: Duration,
}

fn default_list_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Longer than the two seconds containerd gives a shim to tell a task's
/// state, so a silent shim's task comes back from containerd as `unknown`.
fn default_call_timeout() -> Duration {
    Duration::from_secs(3)
}

/// The share of the spec's timeout spent asking; the rest is for writing.
const BUDGET_SHARE: f32 = 0.8;

/// Checks a spec's params table.
pub fn check_params(params: &toml::Table) -> Result<(), String> {
    let params: Params = decode_params(params)?;
    if params.list_timeout.is_zero() || params.call_timeout.is_zero() {
        return Err("list_timeout and call_timeout must be longer than zero".into());
    }
    Ok(())
}

/// Why a per-task call was not made.
const NOT_ASKED: &str = "not asked: the collector's time for asking ran out";
/// Why a per-task call was given up.
const NOT_ANSWERED: &str = "no answer before the collector's time for asking ran out";

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: Params = decode_params(&spec.params).expect("params were checked at load");
    let ends = asking_ends(ctx, spec.timeout, BUDGET_SHARE);
    for namespace in ctx.containerd.namespace_names(&ctx.namespaces).await? {
        let namespace = namespace.as_str();
        let mut records = namespace_tasks(ctx, namespace, &params, ends).await?;
        records.sort_by(|a, b| a.id.cmp(&b.id));
        let data = serde_json::to_vec_pretty(&records).expect("records encode as JSON");
        out.put_in(&format!("{namespace}.json"), data).await?;
    }
    Ok(Outcome::Done)
}

/// The tasks of one namespace, with their pids and metrics.
async fn namespace_tasks(
    ctx: &Context,
    namespace: &str,
    params: &Params,
    ends: Instant,
) -> Result<Vec<TaskRecord>, CollectError> {
    // The three lists do not depend on each other: a silent shim that holds
    // up the metrics must not hold up the list.
    let containerd = &ctx.containerd;
    let (listed, metrics, containers) = tokio::join!(
        containerd.tasks(namespace, params.list_timeout),
        containerd.task_metrics(namespace, Vec::new(), params.list_timeout),
        containerd.containers(namespace),
    );
    let cgroups: HashMap<String, Option<String>> = match &containers {
        Ok(containers) => containers
            .iter()
            .map(|c| {
                let path = c.spec.as_ref().and_then(|s| cgroup::spec_path_of(&s.value));
                (c.id.clone(), path)
            })
            .collect(),
        Err(err) => {
            tracing::debug!(%namespace, error = %error_chain(err), "no cgroup paths");
            HashMap::new()
        }
    };

    let tasks: Vec<(Process, Option<String>)> = match listed {
        Ok(tasks) => tasks.into_iter().map(|task| (task, None)).collect(),
        Err(err @ ContainerdError::Deadline { .. }) if containers.is_ok() => {
            tracing::warn!(%namespace, error = %error_chain(&err), "asking task by task");
            let ids: Vec<String> = cgroups.keys().cloned().collect();
            let answers = each_within(ids, params.call_timeout, ends, |id, limit| async move {
                containerd.task(namespace, &id, limit).await
            })
            .await;
            answers
                .into_iter()
                .filter_map(|(id, answer)| match answer {
                    Ok(Some(task)) => Some((task, None)),
                    Ok(None) => None,
                    Err(error) => Some((
                        Process {
                            id,
                            ..Process::default()
                        },
                        Some(error),
                    )),
                })
                .collect()
        }
        Err(err) => return Err(err.into()),
    };
    let mut records = with_pids(ctx, namespace, tasks, &cgroups, params, ends).await;

    let decoded = |metrics: Vec<containerd_client::types::Metric>| {
        metrics
            .into_iter()
            .filter_map(|m| Some((m.id, metrics_json(m.data.as_ref()?))))
            .collect::<HashMap<String, Value>>()
    };
    let (mut metrics, mut errors) = match metrics {
        Ok(metrics) => (decoded(metrics), HashMap::new()),
        Err(err @ ContainerdError::Deadline { .. }) => {
            tracing::warn!(%namespace, error = %error_chain(&err), "metrics task by task");
            let ids: Vec<String> = records
                .iter()
                .filter(|r| is_live(&r.status))
                .map(|r| r.id.clone())
                .collect();
            let answers = each_within(ids, params.call_timeout, ends, |id, limit| async move {
                let filters = vec![format!("id=={}", serde_json::Value::from(id))];
                containerd.task_metrics(namespace, filters, limit).await
            })
            .await;
            let mut metrics = HashMap::new();
            let mut errors = HashMap::new();
            for (id, answer) in answers {
                match answer {
                    Ok(answer) => metrics.extend(decoded(answer)),
                    Err(error) => {
                        errors.insert(id, error);
                    }
                }
            }
            (metrics, errors)
        }
        Err(err) => {
            tracing::warn!(%namespace, error = %error_chain(&err), "no task metrics");
            (HashMap::new(), HashMap::new())
        }
    };
    for record in &mut records {
        record.metrics = metrics.remove(&record.id);
        record.metrics_error = errors.remove(&record.id);
    }
    Ok(records)
}

/// Whether a task with this status has processes to show.
fn is_live(status: &str) -> bool {
    matches!(status, "running" | "paused" | "pausing")
}

/// Turns tasks into records with their pids: from the cgroup, else one
/// `ListPids` call per task, asked concurrently under the source's bound.
async fn with_pids(
    ctx: &Context,
    namespace: &str,
    tasks: Vec<(Process, Option<String>)>,
    cgroups: &HashMap<String, Option<String>>,
    params: &Params,
    ends: Instant,
) -> Vec<TaskRecord> {
    let mut records: Vec<TaskRecord> = tasks
        .into_iter()
        .map(|(task, state_error)| {
            // The list names a task by `id`; `container_id` is left empty.
            let id = if task.id.is_empty() {
                task.container_id.clone()
            } else {
                task.id.clone()
            };
            let status = status_name(task.status);
            let pids = cgroups
                .get(&id)
                .and_then(Option::as_deref)
                .filter(|_| is_live(status))
                .and_then(cgroup::procs);
            TaskRecord {
                namespace: namespace.to_string(),
                pid: task.pid,
                status: status.to_string(),
                exit_status: task.exit_status,
                exited_at: task
                    .exited_at
                    .as_ref()
                    .filter(|t| t.seconds > 0)
                    .map(rfc3339),
                state_error,
                pids_from: pids.as_ref().map(|_| "cgroup".to_string()),
                pids,
                pids_error: None,
                metrics: None,
                metrics_error: None,
                id,
            }
        })
        .collect();

    let unread: Vec<String> = records
        .iter()
        .filter(|r| is_live(&r.status) && r.pids.is_none())
        .map(|r| r.id.clone())
        .collect();
    let containerd = &ctx.containerd;
    let mut answers: HashMap<String, Result<Vec<u32>, String>> =
        each_within(unread, params.call_timeout, ends, |id, limit| async move {
            containerd.task_pids(namespace, &id, limit).await
        })
        .await
        .into_iter()
        .collect();
    for record in &mut records {
        match answers.remove(&record.id) {
            Some(Ok(pids)) => {
                record.pids = Some(pids);
                record.pids_from = Some("ListPids".to_string());
            }
            Some(Err(error)) => record.pids_error = Some(error),
            None => {}
        }
    }
    records
}

/// Asks `ask` about each id, several at once (the source bounds how many
/// reach the daemon), each under `limit` and none started after `ends`;
/// a failure is kept as its error chain.
async fn each_within<T, F, Fut>(
    ids: Vec<String>,
    limit: Duration,
    ends: Instant,
    ask: F,
) -> Vec<(String, Result<T, String>)>
where
    F: Fn(String, Duration) -> Fut,
    Fut: Future<Output = Result<T, ContainerdError>>,
{
    futures::stream::iter(ids)
        .map(|id| {
            let left = ends.saturating_duration_since(Instant::now()).min(limit);
            let asked = (!left.is_zero()).then(|| ask(id.clone(), left));
            async move {
                // The wait for a slot of the source's bound counts too.
                let answer = match asked {
                    Some(asked) => match tokio::time::timeout_at(ends, asked).await {
                        Ok(answer) => answer.map_err(|err| error_chain(&err)),
                        Err(_) => Err(NOT_ANSWERED.to_string()),
                    },
                    None => Err(NOT_ASKED.to_string()),
                };
                (id, answer)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

/// Per-task requests queued at once; the containerd source bounds how many
/// are actually in flight.
const IN_FLIGHT: usize = 16;

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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn params(text: &str) -> Result<(), String> {
        check_params(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn params_default_and_reject_zero_or_unknown_keys() {
        assert_eq!(params(""), Ok(()));
        assert_eq!(
            params("list_timeout = \"2s\"\ncall_timeout = \"1s\""),
            Ok(())
        );
        let zero = params("call_timeout = \"0s\"").unwrap_err();
        assert!(zero.contains("longer than zero"), "{zero}");
        let unknown = params("timeout = \"1s\"").unwrap_err();
        assert!(unknown.contains("timeout"), "{unknown}");
        let malformed = params("list_timeout = \"soon\"").unwrap_err();
        assert!(malformed.contains("list_timeout"), "{malformed}");
    }

    #[tokio::test]
    async fn calls_past_the_end_are_not_made_and_slow_ones_are_given_up() {
        let deadline = |limit| ContainerdError::Deadline {
            path: PathBuf::from("/run/containerd/containerd.sock"),
            rpc: "Tasks.Get",
            limit,
        };
        let ids = vec![
            "quick".to_string(),
            "slow".to_string(),
            "failing".to_string(),
        ];
        let ends = Instant::now() + Duration::from_millis(200);
        let answers = each_within(ids, Duration::from_secs(3), ends, |id, limit| async move {
            match id.as_str() {
                "quick" => Ok(limit),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(limit)
                }
                _ => Err(deadline(limit)),
            }
        })
        .await;
        let answers: HashMap<String, Result<Duration, String>> = answers.into_iter().collect();
        let quick = answers["quick"].clone().unwrap();
        assert!(quick <= Duration::from_millis(200), "{quick:?}");
        assert_eq!(answers["slow"], Err(NOT_ANSWERED.to_string()));
        let failing = answers["failing"].clone().unwrap_err();
        assert!(
            failing.starts_with("Tasks.Get got no answer from containerd at"),
            "{failing}"
        );

        let late = each_within(
            vec!["late".into()],
            Duration::from_secs(3),
            ends,
            |_, limit| async move { Ok::<_, ContainerdError>(limit) },
        )
        .await;
        assert_eq!(late[0].1, Err(NOT_ASKED.to_string()));
    }

    /// Decodes `bytes` as a Tasks.Metrics payload of type `type_name`.
    fn decode_metrics(type_name: &str, bytes: &[u8]) -> Value {
        metrics_json(&prost_types::Any {
            type_url: type_name.into(),
            value: bytes.to_vec(),
        })
    }

    // The payloads below are written out byte by byte, field numbers as
    // containerd's cgroups library puts them on the wire, so a wrong number
    // in proto/ fails here: the daemons of the test bed report only the
    // cgroup version of the machine they run on.

    #[test]
    fn cgroup_v1_metrics_decode_to_json() {
        let bytes = [
            0x12, 0x04, 0x08, 0x07, 0x10, 0x64, // pids: current 7, limit 100
            0x22, 0x06, 0x8a, 0x02, 0x03, 0x10, 0x80, 0x20, // memory.usage.usage 4096
            0x42, 0x02, 0x08, 0x05, // cgroup_stats, not declared: skipped
            0x4a, 0x02, 0x18, 0x01, // memory_oom_control.oom_kill 1
        ];
        let json = decode_metrics("io.containerd.cgroups.v1.Metrics", &bytes);
        assert_eq!(json["type"], "io.containerd.cgroups.v1.Metrics");
        assert_eq!(json["pids"]["current"], 7);
        assert_eq!(json["pids"]["limit"], 100);
        assert_eq!(json["memory"]["usage"]["usage"], 4096);
        assert_eq!(json["memory_oom_control"]["oom_kill"], 1);
        assert!(json.get("cgroup_stats").is_none(), "{json}");
    }

    #[test]
    fn cgroup_v2_metrics_decode_to_json() {
        let bytes = [
            0x0a, 0x04, 0x08, 0x07, 0x10, 0x64, // pids: current 7, limit 100
            0x22, 0x04, 0x80, 0x02, 0x80, 0x20, // memory.usage 4096
            0x32, 0x04, 0x0a, 0x02, 0x08, 0x08, // io, not declared: skipped
            0x42, 0x02, 0x28, 0x01, // memory_events.oom_kill 1
        ];
        let json = decode_metrics("io.containerd.cgroups.v2.Metrics", &bytes);
        assert_eq!(json["type"], "io.containerd.cgroups.v2.Metrics");
        assert_eq!(json["pids"]["current"], 7);
        assert_eq!(json["pids"]["limit"], 100);
        assert_eq!(json["memory"]["usage"], 4096);
        assert_eq!(json["memory_events"]["oom_kill"], 1);
        assert!(json.get("io").is_none(), "{json}");
    }

    #[test]
    fn an_unknown_or_broken_payload_keeps_its_type_and_size() {
        assert_eq!(
            decode_metrics("types.example/io.other.Metrics", &[1, 2, 3]),
            serde_json::json!({"type": "io.other.Metrics", "undecoded_bytes": 3})
        );
        assert_eq!(
            decode_metrics("io.containerd.cgroups.v2.Metrics", &[0x12, 0x09, 0x08]),
            serde_json::json!({"type": "io.containerd.cgroups.v2.Metrics", "undecoded_bytes": 3})
        );
    }
}
