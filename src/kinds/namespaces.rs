//! `containerd-namespaces`: every namespace with its labels.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CollectError, Context, Outcome};
use crate::bundle::Output;

#[derive(Serialize)]
struct Namespace {
    name: String,
    labels: BTreeMap<String, String>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let mut namespaces: Vec<Namespace> = ctx
        .containerd
        .namespaces()
        .await?
        .into_iter()
        .map(|ns| Namespace {
            name: ns.name,
            labels: ns.labels.into_iter().collect(),
        })
        .collect();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    out.put_json(&namespaces).await?;
    Ok(Outcome::Done)
}
