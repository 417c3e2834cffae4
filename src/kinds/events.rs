//! `containerd-events`: what happened during the run, one JSON line per
//! event.
//!
//! containerd keeps no event history, so "recent events" means listening
//! for a window (`--events-for`) while the other collectors work. The window
//! ends early enough to write what was heard before the collector's or the
//! run's deadline. Payloads are decoded into JSON; a type this build does
//! not know is kept as its name and base64 bytes.

use std::collections::HashMap;
use std::time::Instant;

use base64::Engine;
use containerd_client::events;
use containerd_client::services::v1::{ImageCreate, ImageDelete, ImageUpdate};
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::spec::Spec;

/// One line of `events.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub timestamp: Option<String>,
    pub namespace: String,
    pub topic: String,
    /// The payload's type name, e.g. `containerd.events.TaskExit`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub event: Value,
}

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    if ctx.events_for.is_zero() {
        return Ok(Outcome::Skipped(
            "the events window is off (--events-for 0)".into(),
        ));
    }

    // End the window with time to spare for writing what was heard.
    let started = Instant::now();
    let margin = std::time::Duration::from_millis(500);
    let window_end = (started + ctx.events_for)
        .min(ctx.deadline.checked_sub(margin).unwrap_or(started))
        .min(
            (started + spec.timeout)
                .checked_sub(margin)
                .unwrap_or(started),
        );

    // containerd sends the stream's headers only with the first event, so
    // the subscription itself waits inside the window.
    let mut lines = Vec::new();
    let mut stream =
        match tokio::time::timeout_at(window_end.into(), ctx.containerd.subscribe()).await {
            Ok(stream) => stream?,
            Err(_) => {
                // Silence means "no events" only if the daemon answers at all.
                let probe = std::time::Duration::from_secs(1);
                if tokio::time::timeout(probe, ctx.containerd.version())
                    .await
                    .is_err()
                {
                    return Err(CollectError::NoAnswer(format!(
                        "containerd at {} answered neither the subscription nor a version probe",
                        ctx.containerd.address().display()
                    )));
                }
                out.put(lines).await?;
                return Ok(Outcome::Done);
            }
        };
    let mut ended_early = None;
    loop {
        match tokio::time::timeout_at(window_end.into(), stream.message()).await {
            Err(_) => break,
            Ok(Ok(Some(envelope))) => {
                let (type_name, event) = match &envelope.event {
                    Some(any) => decode(any),
                    None => (String::new(), Value::Null),
                };
                let record = EventRecord {
                    timestamp: envelope.timestamp.as_ref().map(rfc3339),
                    namespace: envelope.namespace,
                    topic: envelope.topic,
                    type_name,
                    event,
                };
                let mut line = serde_json::to_vec(&record).expect("an event encodes");
                line.push(b'\n');
                lines.extend(line);
            }
            Ok(Ok(None)) => {
                ended_early = Some("containerd closed the event stream".to_string());
                break;
            }
            Ok(Err(status)) => {
                let err = ctx.containerd.classify("Events.Subscribe", status);
                ended_early = Some(crate::source::error_chain(&err));
                break;
            }
        }
    }
    out.put(lines).await?;
    Ok(match ended_early {
        Some(reason) => Outcome::Skipped(format!("events window cut short: {reason}")),
        None => Outcome::Done,
    })
}

/// Decodes a payload by its type name.
fn decode(any: &prost_types::Any) -> (String, Value) {
    let type_name = any
        .type_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let bytes = any.value.as_slice();
    let value = match type_name.strip_prefix("containerd.events.") {
        Some("TaskCreate") => events::TaskCreate::decode(bytes).ok().map(|e| {
            json!({"container_id": e.container_id, "bundle": e.bundle, "pid": e.pid,
                   "checkpoint": e.checkpoint})
        }),
        Some("TaskStart") => events::TaskStart::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id, "pid": e.pid})),
        Some("TaskExit") => events::TaskExit::decode(bytes).ok().map(|e| {
            json!({"container_id": e.container_id, "id": e.id, "pid": e.pid,
                   "exit_status": e.exit_status, "exited_at": e.exited_at.as_ref().map(rfc3339)})
        }),
        Some("TaskDelete") => events::TaskDelete::decode(bytes).ok().map(|e| {
            json!({"container_id": e.container_id, "id": e.id, "pid": e.pid,
                   "exit_status": e.exit_status, "exited_at": e.exited_at.as_ref().map(rfc3339)})
        }),
        Some("TaskOOM") => events::TaskOom::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id})),
        Some("TaskExecAdded") => events::TaskExecAdded::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id, "exec_id": e.exec_id})),
        Some("TaskExecStarted") => events::TaskExecStarted::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id, "exec_id": e.exec_id, "pid": e.pid})),
        Some("TaskPaused") => events::TaskPaused::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id})),
        Some("TaskResumed") => events::TaskResumed::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id})),
        Some("TaskCheckpointed") => events::TaskCheckpointed::decode(bytes)
            .ok()
            .map(|e| json!({"container_id": e.container_id, "checkpoint": e.checkpoint})),
        Some("ContainerCreate") => events::ContainerCreate::decode(bytes).ok().map(|e| {
            json!({"id": e.id, "image": e.image,
                   "runtime": e.runtime.map(|r| r.name)})
        }),
        Some("ContainerUpdate") => events::ContainerUpdate::decode(bytes).ok().map(|e| {
            json!({"id": e.id, "image": e.image, "labels": sorted(e.labels),
                   "snapshot_key": e.snapshot_key})
        }),
        Some("ContainerDelete") => events::ContainerDelete::decode(bytes)
            .ok()
            .map(|e| json!({"id": e.id})),
        Some("ContentCreate") => events::ContentCreate::decode(bytes)
            .ok()
            .map(|e| json!({"digest": e.digest, "size": e.size})),
        Some("ContentDelete") => events::ContentDelete::decode(bytes)
            .ok()
            .map(|e| json!({"digest": e.digest})),
        Some("NamespaceCreate") => events::NamespaceCreate::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name, "labels": sorted(e.labels)})),
        Some("NamespaceUpdate") => events::NamespaceUpdate::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name, "labels": sorted(e.labels)})),
        Some("NamespaceDelete") => events::NamespaceDelete::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name})),
        Some("SnapshotPrepare") => events::SnapshotPrepare::decode(bytes)
            .ok()
            .map(|e| json!({"key": e.key, "parent": e.parent, "snapshotter": e.snapshotter})),
        Some("SnapshotCommit") => events::SnapshotCommit::decode(bytes)
            .ok()
            .map(|e| json!({"key": e.key, "name": e.name, "snapshotter": e.snapshotter})),
        Some("SnapshotRemove") => events::SnapshotRemove::decode(bytes)
            .ok()
            .map(|e| json!({"key": e.key, "snapshotter": e.snapshotter})),
        _ => decode_image_event(&type_name, bytes),
    };
    let value = value.unwrap_or_else(
        || json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    );
    (type_name, value)
}

fn decode_image_event(type_name: &str, bytes: &[u8]) -> Option<Value> {
    match type_name {
        "containerd.services.images.v1.ImageCreate" => ImageCreate::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name, "labels": sorted(e.labels)})),
        "containerd.services.images.v1.ImageUpdate" => ImageUpdate::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name, "labels": sorted(e.labels)})),
        "containerd.services.images.v1.ImageDelete" => ImageDelete::decode(bytes)
            .ok()
            .map(|e| json!({"name": e.name})),
        _ => None,
    }
}

fn sorted(map: HashMap<String, String>) -> std::collections::BTreeMap<String, String> {
    map.into_iter().collect()
}
