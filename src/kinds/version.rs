//! `containerd-version`: the daemon's version and git revision.

use super::{CollectError, Context, Outcome};
use crate::bundle::Output;

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let version = ctx.containerd.version().await?;
    out.put_json(version).await?;
    Ok(Outcome::Done)
}
