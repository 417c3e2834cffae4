//! `debug-pprof`: one named pprof profile from the debug socket (`allocs`,
//! `block`, `mutex`, `threadcreate`, ...), stored byte for byte so
//! `go tool pprof` opens it. Its `profile` parameter names it.

use serde::Deserialize;

use super::{CollectError, Context, Outcome, debug_get};
use crate::bundle::Output;
use crate::spec::Spec;

/// The profiles Go's runtime serves as profile.proto without a duration.
pub const PROFILES: &[&str] = &[
    "allocs",
    "block",
    "goroutine",
    "heap",
    "mutex",
    "threadcreate",
];

/// The `params` of a `debug-pprof` spec.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub profile: String,
}

/// Checks a spec's parameters; the error names the bad value.
pub fn check(params: &Params) -> Result<(), String> {
    if PROFILES.contains(&params.profile.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "profile {:?} is not one of {}",
            params.profile,
            PROFILES.join(", ")
        ))
    }
}

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: Params =
        super::decode_params(&spec.params).expect("params are checked when the spec loads");
    let url = format!("/debug/pprof/{}", params.profile);
    match debug_get(ctx, &url, super::DEBUG_DEADLINE).await? {
        Ok(data) => {
            out.put(data).await?;
            Ok(Outcome::Done)
        }
        Err(skipped) => Ok(skipped),
    }
}
