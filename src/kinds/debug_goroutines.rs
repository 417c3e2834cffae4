//! `debug-goroutines`: every goroutine's full stack from the debug socket
//! (`/debug/pprof/goroutine?debug=2`), with its summary beside it.
//!
//! The dump is stored as served; the summary (counts by state, groups of
//! identical stacks, long lock waits) is computed at collection so a reader
//! of the bundle sees it without tools, and again by the analyzer from the
//! dump itself, so older bundles get findings too.

use super::{CollectError, Context, Outcome, debug_get};
use crate::analyze::goroutine_dump;
use crate::bundle::Output;

const URL: &str = "/debug/pprof/goroutine?debug=2";

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let data = match debug_get(ctx, URL, super::DEBUG_DEADLINE).await? {
        Ok(data) => data,
        Err(skipped) => return Ok(skipped),
    };
    let text = String::from_utf8_lossy(&data).into_owned();
    out.put_in("goroutines.txt", data).await?;
    let summary = goroutine_dump::summarize(&goroutine_dump::parse(&text));
    out.put_in("summary.json", super::json_bytes("summary.json", &summary)?)
        .await?;
    Ok(Outcome::Done)
}
