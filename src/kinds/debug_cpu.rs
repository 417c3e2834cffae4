//! `debug-cpu-profile`: a CPU profile of `--cpu-profile` length from the
//! debug socket, stored as served, with its top functions and a flame graph.
//!
//! Go takes the length in whole seconds, so it is rounded up. The request's
//! deadline is the profile's length plus the usual margin.

use std::time::Duration;

use super::{CollectError, Context, Outcome, debug_get};
use crate::analyze::pprof_data::{self, Stacks};
use crate::bundle::Output;

/// What `top.json` of a CPU profile holds.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct CpuTop {
    pub cpu: pprof_data::Top,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    if ctx.cpu_profile.is_zero() {
        return Ok(Outcome::Skipped("turned off by --cpu-profile 0".into()));
    }
    let seconds = ctx.cpu_profile.as_secs_f64().ceil().max(1.0) as u64;
    let url = format!("/debug/pprof/profile?seconds={seconds}");
    let limit = Duration::from_secs(seconds) + super::DEBUG_DEADLINE;
    let data = match debug_get(ctx, &url, limit).await? {
        Ok(data) => data,
        Err(skipped) => return Ok(skipped),
    };
    out.put_in("cpu.pb.gz", data.clone()).await?;

    let (top, svg) = tokio::task::spawn_blocking(move || {
        let stacks = Stacks::new(&pprof_data::decode(&data)?);
        let sample_type = stacks.default_sample_type().unwrap_or_else(|| "cpu".into());
        let top = CpuTop {
            cpu: stacks.top(&sample_type, super::debug_heap::TOP)?,
        };
        let title = format!("containerd CPU, {seconds}s");
        let svg = stacks.flame_graph(&sample_type, &title)?;
        Ok::<_, pprof_data::ProfileError>((top, svg))
    })
    .await
    .expect("reading a profile does not panic")
    .map_err(|source| CollectError::Profile {
        url: url.clone(),
        source,
    })?;
    out.put_in("top.json", super::json_bytes("top.json", &top)?)
        .await?;
    out.put_in("cpu.svg", svg).await?;
    Ok(Outcome::Done)
}
