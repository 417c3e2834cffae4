//! `debug-heap`: the heap profile from the debug socket, stored as served
//! (gzipped profile.proto, for `go tool pprof`), with the top allocation
//! sites by in-use bytes and objects and a flame graph of in-use bytes.

use super::{CollectError, Context, Outcome, debug_get};
use crate::analyze::pprof_data::{self, Stacks};
use crate::bundle::Output;

const URL: &str = "/debug/pprof/heap";
/// How many functions the top lists keep.
pub const TOP: usize = 25;

/// What `top.json` of a heap profile holds.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct HeapTop {
    pub inuse_space: pprof_data::Top,
    pub inuse_objects: pprof_data::Top,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let data = match debug_get(ctx, URL, super::DEBUG_DEADLINE).await? {
        Ok(data) => data,
        Err(skipped) => return Ok(skipped),
    };
    out.put_in("heap.pb.gz", data.clone()).await?;

    let (top, svg) = tokio::task::spawn_blocking(move || {
        let stacks = Stacks::new(&pprof_data::decode(&data)?);
        let top = HeapTop {
            inuse_space: stacks.top("inuse_space", TOP)?,
            inuse_objects: stacks.top("inuse_objects", TOP)?,
        };
        let svg = stacks.flame_graph("inuse_space", "containerd heap in use (bytes)")?;
        Ok::<_, pprof_data::ProfileError>((top, svg))
    })
    .await
    .expect("reading a profile does not panic")
    .map_err(|source| CollectError::Profile {
        url: URL.into(),
        source,
    })?;
    out.put_in("top.json", super::json_bytes("top.json", &top)?)
        .await?;
    out.put_in("heap-inuse.svg", svg).await?;
    Ok(Outcome::Done)
}
