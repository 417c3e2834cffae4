//! `journal`: a systemd unit's log for the last `--since`, or a log file.
//!
//! With journald running, `journalctl` is asked for the unit's entries since
//! then; when the output is over `max_bytes`, the newest part is kept, since
//! the moments before collection are what an incident needs. Nodes without
//! journald (containers, minimal distributions) write the daemon's log to a
//! file instead: the spec's `fallback` paths are tried in order and the
//! newest part of the first that exists is copied. Neither being there is a
//! skip with the reason, not a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::exec::{self, Start};
use super::limit::{self, DEFAULT_LOG_MAX_BYTES};
use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::spec::Spec;

/// Present while journald runs.
const JOURNALD_SOCKETS: &[&str] = &["/run/systemd/journal/socket", "/run/systemd/system"];

/// `journal` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalParams {
    /// The systemd unit, e.g. `containerd`.
    pub unit: String,
    /// Log files to read, in order, when there is no journald.
    #[serde(default)]
    pub fallback: Vec<String>,
    pub max_bytes: Option<u64>,
}

/// Checks `journal` parameters.
pub fn check(params: &JournalParams) -> Result<(), String> {
    if params.unit.is_empty() || params.unit.starts_with('-') {
        return Err(format!("unit {:?} is not a unit name", params.unit));
    }
    match params.fallback.iter().find(|p| !p.starts_with('/')) {
        Some(path) => Err(format!("fallback {path:?} is not an absolute path")),
        None => Ok(()),
    }
}

/// Runs a `journal` spec.
pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: JournalParams = super::decode_params(&spec.params).expect("checked when loaded");
    let max = params.max_bytes.unwrap_or(DEFAULT_LOG_MAX_BYTES);

    let journald = JOURNALD_SOCKETS.iter().any(|p| Path::new(p).exists());
    let mut why_not = if journald {
        let argv = journalctl_argv(&params.unit, ctx.since);
        match exec::run(&argv, spec.timeout.mul_f64(0.9), max).await {
            Ok(result) if result.exit_code == Some(0) => {
                let size = result.stdout_bytes;
                limit::put_capped(out, None, result.stdout, size, max, ctx.redact).await?;
                return Ok(Outcome::Done);
            }
            Ok(result) if result.timed_out => "journalctl did not finish in time".to_string(),
            Ok(result) => format!(
                "journalctl failed: {}",
                String::from_utf8_lossy(&result.stderr).trim()
            ),
            Err(Start::NotFound(_)) => "journalctl is not installed".to_string(),
            Err(Start::Failed(err)) => format!("cannot run journalctl: {err}"),
        }
    } else {
        "journald is not running".to_string()
    };

    let fallback: Vec<PathBuf> = params.fallback.iter().map(PathBuf::from).collect();
    let found = tokio::task::spawn_blocking(move || {
        fallback
            .into_iter()
            .find(|path| path.is_file())
            .map(|path| limit::read_tail(&path, max).map(|read| (path, read)))
    })
    .await
    .expect("reading a log file does not panic");
    match found {
        Some(Ok((_, (data, size)))) => {
            limit::put_capped(out, None, data, size, max, ctx.redact).await?;
            Ok(Outcome::Done)
        }
        Some(Err(source)) => Err(CollectError::Host {
            what: format!("the log file of {}", params.unit),
            source,
        }),
        None => {
            if !params.fallback.is_empty() {
                why_not += &format!(" and no log file at {}", params.fallback.join(", "));
            }
            Ok(Outcome::Skipped(why_not))
        }
    }
}

/// The journalctl command for `unit` over the last `since`.
fn journalctl_argv(unit: &str, since: Duration) -> Vec<String> {
    [
        "journalctl",
        "--no-pager",
        "--quiet",
        "--output=short-iso-precise",
        &format!("--unit={unit}"),
        &format!("--since=-{}s", since.as_secs().max(1)),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
