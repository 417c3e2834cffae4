//! `audit`: the upgrade audit of `rctr-diag audit`, stored in the bundle.
//!
//! The same [`crate::audit::run`] as the command, against the run's daemon
//! and namespaces, with the config file found from the daemon's command line.
//! It needs no daemon: without one the static part still runs. An audit
//! that could not run at all ends as skipped with the reason; its report is
//! written anyway so the reader sees what was tried.

use serde::Deserialize;

use super::{CollectError, Context, Outcome, decode_params};
use crate::audit::{self, rules::Release};
use crate::bundle::Output;
use crate::spec::Spec;

/// The kind's `params`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The release to check against, e.g. "2.0"; default as in the command.
    pub target: Option<String>,
}

impl Params {
    /// Checks the parameters of a spec.
    pub fn check(params: &toml::Table) -> Result<(), String> {
        let params: Params = decode_params(params)?;
        match params.target.as_deref().map(Release::parse) {
            Some(None) => Err(format!(
                "target {:?} is not a release such as 2.0",
                params.target.unwrap_or_default()
            )),
            _ => Ok(()),
        }
    }
}

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: Params = decode_params(&spec.params).unwrap_or_default();
    let options = audit::Options {
        target: params.target.as_deref().and_then(Release::parse),
        config: None,
        namespaces: ctx.namespaces.clone(),
    };
    let report = audit::run(&ctx.containerd, &options).await;
    out.put_json(&report).await?;
    Ok(match report.failure {
        Some(failure) => Outcome::Skipped(failure),
        None => Outcome::Done,
    })
}
