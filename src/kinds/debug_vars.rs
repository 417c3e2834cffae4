//! `debug-vars`: the daemon's expvar JSON (`/debug/vars`: command line and
//! Go memory statistics), stored as served.

use super::{CollectError, Context, Outcome, debug_get};
use crate::bundle::Output;

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    match debug_get(ctx, "/debug/vars", super::DEBUG_DEADLINE).await? {
        Ok(data) => {
            out.put(data).await?;
            Ok(Outcome::Done)
        }
        Err(skipped) => Ok(skipped),
    }
}
