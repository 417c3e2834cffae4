//! `containerd-containers`: every container of every namespace, with its
//! OCI spec.
//!
//! One list per namespace (`<ns>.json`) and one spec per container
//! (`<ns>/<id>.spec.json`). Specs are redacted unless the operator opted
//! out: environment values, credential-looking flags, labels and
//! annotations never reach the bundle by default.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::bundle::redact::{redact_map, redact_oci_spec};
use crate::proto::runc_options;

/// One container as written to `<ns>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub namespace: String,
    pub id: String,
    pub image: String,
    pub runtime: String,
    /// The runtime's options, decoded when they are runc's.
    pub runtime_options: Option<Value>,
    pub snapshotter: String,
    pub snapshot_key: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    /// The bundle path of the container's OCI spec, if it had one.
    pub spec_file: Option<String>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    for namespace in ctx.containerd.namespace_names(&ctx.namespaces).await? {
        let containers = ctx.containerd.containers(&namespace).await?;
        let mut records = Vec::with_capacity(containers.len());
        for container in containers {
            let spec_file = match container.spec.as_ref() {
                Some(spec) => {
                    let name = format!("{namespace}/{}.spec.json", container.id);
                    out.put_in(&name, spec_json(ctx, out, &spec.value)).await?;
                    Some(format!("{}{name}", out.base()))
                }
                None => None,
            };
            let runtime = container.runtime.unwrap_or_default();
            let mut labels = serde_json::to_value(&container.labels).unwrap_or_default();
            if ctx.redact {
                out.add_redactions(redact_map(&mut labels));
            }
            records.push(ContainerRecord {
                namespace: namespace.clone(),
                id: container.id,
                image: container.image,
                runtime: runtime.name,
                runtime_options: runtime.options.as_ref().map(options_json),
                snapshotter: container.snapshotter,
                snapshot_key: container.snapshot_key,
                labels: serde_json::from_value(labels).unwrap_or_default(),
                created_at: container.created_at.as_ref().map(rfc3339),
                updated_at: container.updated_at.as_ref().map(rfc3339),
                sandbox: container.sandbox,
                spec_file,
            });
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        let data = serde_json::to_vec_pretty(&records).expect("records encode as JSON");
        out.put_in(&format!("{namespace}.json"), data).await?;
    }
    Ok(Outcome::Done)
}

/// The spec as pretty JSON, redacted unless the operator opted out. A spec
/// that is not JSON is kept as it came, but only with `--no-redact`.
fn spec_json(ctx: &Context, out: &Output, raw: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(mut spec) => {
            if ctx.redact {
                out.add_redactions(redact_oci_spec(&mut spec));
            }
            serde_json::to_vec_pretty(&spec).expect("a JSON value encodes")
        }
        Err(_) if !ctx.redact => raw.to_vec(),
        Err(err) => format!("{{\"error\": \"spec is not JSON, withheld: {err}\"}}").into_bytes(),
    }
}

/// Runtime options as JSON: runc's decoded, others as type and bytes.
fn options_json(any: &prost_types::Any) -> Value {
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    if type_name == "containerd.runc.v1.Options"
        && let Ok(options) = runc_options::Options::decode(any.value.as_slice())
    {
        let mut value = serde_json::to_value(options).unwrap_or_default();
        value["type"] = Value::from(type_name);
        return value;
    }
    serde_json::json!({
        "type": type_name,
        "base64": base64::engine::general_purpose::STANDARD.encode(&any.value),
    })
}
