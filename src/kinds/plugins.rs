//! `containerd-plugins`: every plugin, with whether it loaded.
//!
//! The status follows `ctr plugins ls`: a plugin without an init error is
//! ok; one whose error says "skip plugin" chose not to load on this host
//! (a snapshotter whose filesystem is absent, say) and is normal; any other
//! error is a plugin that failed to load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CollectError, Context, Outcome};
use crate::bundle::Output;

/// Whether a plugin loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginStatus {
    Ok,
    Skip,
    Error,
}

/// One plugin as written to `containerd/plugins.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub status: PluginStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_error: Option<String>,
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub exports: BTreeMap<String, String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let plugins = ctx.containerd.plugins(Vec::new()).await?;
    let records: Vec<PluginRecord> = plugins
        .into_iter()
        .map(|plugin| {
            let init_error = plugin.init_err.map(|status| status.message);
            let status = match &init_error {
                None => PluginStatus::Ok,
                Some(message) if message.contains("skip plugin") => PluginStatus::Skip,
                Some(_) => PluginStatus::Error,
            };
            let platforms = plugin
                .platforms
                .iter()
                .map(|p| {
                    let mut text = format!("{}/{}", p.os, p.architecture);
                    if !p.variant.is_empty() {
                        text = format!("{text}/{}", p.variant);
                    }
                    text
                })
                .collect();
            PluginRecord {
                kind: plugin.r#type,
                id: plugin.id,
                status,
                init_error,
                requires: plugin.requires,
                platforms,
                exports: plugin.exports.into_iter().collect(),
                capabilities: plugin.capabilities,
            }
        })
        .collect();
    out.put_json(&records).await?;
    Ok(Outcome::Done)
}
