//! `containerd-server`: what `Introspection.Server` says about the daemon.
//!
//! Daemons before 1.6.25 / 1.7.0 send only the uuid; their pid and pid
//! namespace come back as zero, which is written as `null` rather than as a
//! pid that does not exist.

use serde::Serialize;

use super::{CollectError, Context, Outcome};
use crate::bundle::Output;

#[derive(Serialize)]
struct Server {
    uuid: String,
    pid: Option<u64>,
    pidns: Option<u64>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let response = ctx.containerd.server().await?;
    let server = Server {
        uuid: response.uuid,
        pid: Some(response.pid).filter(|pid| *pid != 0),
        pidns: Some(response.pidns).filter(|ns| *ns != 0),
    };
    out.put_json(&server).await?;
    Ok(Outcome::Done)
}
