//! `containerd-deprecations`: the deprecation warnings the daemon has raised.
//!
//! `Introspection.Server` carries them only from containerd 1.6.25 and 1.7.9
//! on; older daemons send the field empty. An empty list therefore means
//! "none" only on a daemon that reports them, so the daemon's version decides
//! between "none" and "not reported", and the latter ends as skipped with the
//! reason rather than as a clean bill of health.

use serde::{Deserialize, Serialize};

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::source::DaemonVersion;

/// `containerd/deprecations.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeprecationReport {
    pub containerd_version: String,
    /// False when this daemon cannot report deprecations; `note` says why.
    pub reported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub warnings: Vec<Warning>,
}

/// One deprecation warning, as the daemon reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warning {
    pub id: String,
    pub message: String,
    pub last_occurrence: Option<String>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let version = ctx.containerd.version().await?.clone();
    let server = ctx.containerd.server().await?;
    let warnings: Vec<Warning> = server
        .deprecations
        .into_iter()
        .map(|warning| Warning {
            id: warning.id,
            message: warning.message,
            last_occurrence: warning.last_occurrence.as_ref().map(rfc3339),
        })
        .collect();

    let note = if warnings.is_empty() {
        unreported_note(&version)
    } else {
        None
    };
    let report = DeprecationReport {
        containerd_version: version.version,
        reported: note.is_none(),
        note: note.clone(),
        warnings,
    };
    out.put_json(&report).await?;
    Ok(note.map_or(Outcome::Done, Outcome::Skipped))
}

/// Why an empty list of warnings says nothing, or `None` when it means
/// there are none.
pub(crate) fn unreported_note(version: &DaemonVersion) -> Option<String> {
    match version.release() {
        Some(release) if reports_deprecations(release) => None,
        Some(_) => Some(format!(
            "not reported by containerd {}; reporting began in 1.6.25 / 1.7.9",
            version.version
        )),
        None => Some(format!(
            "cannot tell whether containerd {:?} reports deprecations; \
             reporting began in 1.6.25 / 1.7.9",
            version.version
        )),
    }
}

fn reports_deprecations((major, minor, patch): (u32, u32, u32)) -> bool {
    match (major, minor) {
        (0, _) => false,
        (1, 0..=5) => false,
        (1, 6) => patch >= 25,
        (1, 7) => patch >= 9,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(version: &str) -> Option<String> {
        unreported_note(&DaemonVersion {
            version: version.into(),
            revision: String::new(),
        })
    }

    #[test]
    fn old_daemons_cannot_report() {
        assert_eq!(
            note("1.6.20~ds1").as_deref(),
            Some("not reported by containerd 1.6.20~ds1; reporting began in 1.6.25 / 1.7.9")
        );
        assert!(note("1.7.8").is_some());
        assert!(note("1.5.18").is_some());
    }

    #[test]
    fn newer_daemons_report() {
        for version in [
            "1.6.25",
            "1.7.9",
            "1.7.24~ds1",
            "1.8.0",
            "2.0.0",
            "2.1.9+unknown",
        ] {
            assert_eq!(note(version), None, "{version}");
        }
    }

    #[test]
    fn unparseable_version_is_not_taken_as_clean() {
        assert!(note("devel").unwrap().contains("cannot tell"));
    }
}
