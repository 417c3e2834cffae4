//! Collector kinds: the Rust behind the specs, one file per kind.
//!
//! A kind reads from a source through the shared [`Context`] and writes
//! through its [`Output`]; it never touches the archive, never decides its own
//! deadline (the engine does) and reports a known limit as
//! [`Outcome::Skipped`] with the reason, not as an error.

mod audit;
mod containerd_process;
mod containers;
mod debug_cpu;
mod debug_goroutines;
mod debug_heap;
mod debug_pprof;
mod debug_vars;
mod deprecations;
mod events;
mod host_info;
mod namespaces;
mod plugins;
mod server;
mod shims;
mod signal_dump;
mod snapshots;
mod tasks;
mod version;

mod containerd_config;
mod exec;
mod files;
mod journal;
mod kernel_log;
mod limit;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::analyze::pprof_data::ProfileError;
use crate::bundle::{Output, SinkError};
use crate::source::debug::{self, DebugError};
use crate::source::{Containerd, ContainerdError, Silence};
use crate::spec::Spec;

pub use containers::ContainerRecord;
pub use debug_cpu::CpuTop;
pub use debug_heap::HeapTop;
pub(crate) use deprecations::unreported_note;
pub use deprecations::{DeprecationReport, Warning};
pub use events::EventRecord;
pub use plugins::{PluginRecord, PluginStatus};
pub use shims::{Call, ShimProcess, ShimTask, ShimsReport, SocketState};
pub use snapshots::{Filesystem, NamespaceSnapshots, SnapshotRecord, SnapshotterReport};
pub use tasks::{TaskRecord, status_name};

/// Everything collectors share during one run.
pub struct Context {
    pub containerd: Containerd,
    pub debug_address: PathBuf,
    /// Namespaces to look into; empty means all.
    pub namespaces: Vec<String>,
    /// containerd's state dir when the operator names it; else it is found
    /// from the daemon.
    pub state_dir: Option<PathBuf>,
    /// Whether secrets are replaced before they reach the bundle.
    pub redact: bool,
    /// How long to listen for events; zero turns the events collector off.
    pub events_for: Duration,
    /// The run's deadline; kinds that wait for a window end it before this.
    pub deadline: Instant,
    /// How `debug_address` was found (flag, config file, default).
    pub debug_origin: String,
    /// How long a CPU profile runs; zero turns it off.
    pub cpu_profile: Duration,
    /// How many SIGUSR1 stack dumps to take; zero (the default) takes none.
    pub signal_dumps: u8,
    /// How far back journals and logs reach (`--since`).
    pub since: Duration,
    /// Marked when the debug socket did not answer its probe.
    pub debug_silence: Silence,
}

/// How long one quick request to the debug socket may take.
const DEBUG_DEADLINE: Duration = Duration::from_secs(10);

/// How a collector that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Nothing (or not everything) could be collected, for a known reason
    /// the operator may act on.
    Skipped(String),
    /// The collector's own deadline cut it short; what it had is written.
    TimedOut(String),
}

/// Why a collector failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    NoAnswer(String),
    #[error("cannot read {what}")]
    Host {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Debug(#[from] DebugError),
    #[error("cannot read the profile from {url}")]
    Profile {
        url: String,
        #[source]
        source: ProfileError,
    },
    #[error("cannot send SIGUSR1 to containerd (pid {pid})")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd wrote no new stack file {path} within {}", humantime::format_duration(*.limit))]
    StackFile { path: PathBuf, limit: Duration },
}

/// A collector kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ContainerdVersion,
    ContainerdServer,
    ContainerdPlugins,
    ContainerdNamespaces,
    ContainerdDeprecations,
    HostInfo,
    ContainerdProcess,
    ContainerdContainers,
    ContainerdTasks,
    ContainerdSnapshots,
    ContainerdEvents,
    Shims,
    DebugGoroutines,
    DebugHeap,
    DebugCpuProfile,
    DebugPprof,
    DebugVars,
    SignalDump,
    Audit,
    File,
    Glob,
    Exec,
    Journal,
    ContainerdConfig,
    KernelLog,
}

impl Kind {
    /// Every kind, in the order `rctr-diag collectors` lists them.
    pub const ALL: &[Kind] = &[
        Kind::ContainerdVersion,
        Kind::ContainerdServer,
        Kind::ContainerdPlugins,
        Kind::ContainerdNamespaces,
        Kind::ContainerdDeprecations,
        Kind::HostInfo,
        Kind::ContainerdProcess,
        Kind::ContainerdContainers,
        Kind::ContainerdTasks,
        Kind::ContainerdSnapshots,
        Kind::ContainerdEvents,
        Kind::Shims,
        Kind::DebugGoroutines,
        Kind::DebugHeap,
        Kind::DebugCpuProfile,
        Kind::DebugPprof,
        Kind::DebugVars,
        Kind::SignalDump,
        Kind::Audit,
        Kind::File,
        Kind::Glob,
        Kind::Exec,
        Kind::Journal,
        Kind::ContainerdConfig,
        Kind::KernelLog,
    ];

    /// The name used in spec files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ContainerdVersion => "containerd-version",
            Kind::ContainerdServer => "containerd-server",
            Kind::ContainerdPlugins => "containerd-plugins",
            Kind::ContainerdNamespaces => "containerd-namespaces",
            Kind::ContainerdDeprecations => "containerd-deprecations",
            Kind::HostInfo => "host-info",
            Kind::ContainerdProcess => "containerd-process",
            Kind::ContainerdContainers => "containerd-containers",
            Kind::ContainerdTasks => "containerd-tasks",
            Kind::ContainerdSnapshots => "containerd-snapshots",
            Kind::ContainerdEvents => "containerd-events",
            Kind::Shims => "shims",
            Kind::DebugGoroutines => "debug-goroutines",
            Kind::DebugHeap => "debug-heap",
            Kind::DebugCpuProfile => "debug-cpu-profile",
            Kind::DebugPprof => "debug-pprof",
            Kind::DebugVars => "debug-vars",
            Kind::SignalDump => "signal-dump",
            Kind::Audit => "audit",
            Kind::File => "file",
            Kind::Glob => "glob",
            Kind::Exec => "exec",
            Kind::Journal => "journal",
            Kind::ContainerdConfig => "containerd-config",
            Kind::KernelLog => "kernel-log",
        }
    }

    /// Looks a kind up by its spec name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|kind| kind.name() == name)
    }

    /// Whether the kind needs the daemon to answer.
    pub fn needs_daemon(self) -> bool {
        !matches!(
            self,
            Kind::HostInfo
                | Kind::ContainerdProcess
                | Kind::Shims
                | Kind::Audit
                | Kind::File
                | Kind::Glob
                | Kind::Exec
                | Kind::Journal
                | Kind::ContainerdConfig
                | Kind::KernelLog
        )
    }

    /// Whether the kind calls containerd's gRPC API.
    pub fn asks_containerd(self) -> bool {
        matches!(
            self,
            Kind::ContainerdVersion
                | Kind::ContainerdServer
                | Kind::ContainerdPlugins
                | Kind::ContainerdNamespaces
                | Kind::ContainerdDeprecations
                | Kind::ContainerdContainers
                | Kind::ContainerdTasks
                | Kind::ContainerdSnapshots
                | Kind::ContainerdEvents
                | Kind::Audit
        )
    }

    /// Whether the kind reads containerd's debug socket.
    pub fn uses_debug_socket(self) -> bool {
        matches!(
            self,
            Kind::DebugGoroutines
                | Kind::DebugHeap
                | Kind::DebugCpuProfile
                | Kind::DebugPprof
                | Kind::DebugVars
        )
    }

    /// Checks a spec's `params` table for this kind; the error names the
    /// offending key.
    pub fn check_params(self, params: &toml::Table) -> Result<(), String> {
        match self {
            Kind::ContainerdSnapshots => snapshots::check_params(params),
            Kind::Shims => shims::check_params(params),
            Kind::ContainerdTasks => tasks::check_params(params),
            Kind::DebugPprof => debug_pprof::check(&decode_params(params)?),
            Kind::Audit => audit::Params::check(params),
            Kind::File => files::check_file(&decode_params(params)?),
            Kind::Glob => files::check_glob(&decode_params(params)?),
            Kind::Exec => exec::check(&decode_params(params)?),
            Kind::Journal => journal::check(&decode_params(params)?),
            Kind::KernelLog => decode_params::<kernel_log::KernelLogParams>(params).map(|_| ()),
            _ => no_params(self, params),
        }
    }

    /// Runs the kind for `spec`.
    pub async fn collect(
        self,
        ctx: &Context,
        spec: &Spec,
        out: &Output,
    ) -> Result<Outcome, CollectError> {
        match self {
            Kind::ContainerdVersion => version::collect(ctx, out).await,
            Kind::ContainerdServer => server::collect(ctx, out).await,
            Kind::ContainerdPlugins => plugins::collect(ctx, out).await,
            Kind::ContainerdNamespaces => namespaces::collect(ctx, out).await,
            Kind::ContainerdDeprecations => deprecations::collect(ctx, out).await,
            Kind::HostInfo => host_info::collect(out).await,
            Kind::ContainerdProcess => containerd_process::collect(ctx, out).await,
            Kind::ContainerdContainers => containers::collect(ctx, out).await,
            Kind::ContainerdTasks => tasks::collect(ctx, spec, out).await,
            Kind::ContainerdSnapshots => snapshots::collect(ctx, spec, out).await,
            Kind::ContainerdEvents => events::collect(ctx, spec, out).await,
            Kind::Shims => shims::collect(ctx, &spec.params, spec.timeout, out).await,
            Kind::DebugGoroutines => debug_goroutines::collect(ctx, out).await,
            Kind::DebugHeap => debug_heap::collect(ctx, out).await,
            Kind::DebugCpuProfile => debug_cpu::collect(ctx, out).await,
            Kind::DebugPprof => debug_pprof::collect(ctx, spec, out).await,
            Kind::DebugVars => debug_vars::collect(ctx, out).await,
            Kind::SignalDump => signal_dump::collect(ctx, out).await,
            Kind::Audit => audit::collect(ctx, spec, out).await,
            Kind::File => files::collect_file(ctx, spec, out).await,
            Kind::Glob => files::collect_glob(ctx, spec, out).await,
            Kind::Exec => exec::collect(ctx, spec, out).await,
            Kind::Journal => journal::collect(ctx, spec, out).await,
            Kind::ContainerdConfig => containerd_config::collect(ctx, out).await,
            Kind::KernelLog => kernel_log::collect(ctx, spec, out).await,
        }
    }
}

fn no_params(kind: Kind, params: &toml::Table) -> Result<(), String> {
    match params.keys().next() {
        Some(key) => Err(format!("kind {} takes no parameter {key:?}", kind.name())),
        None => Ok(()),
    }
}

/// When a kind that asks many things one by one stops asking: at `share`
/// of its spec's timeout, and early enough before the run's deadline to
/// write what it has.
fn asking_ends(ctx: &Context, timeout: Duration, share: f32) -> tokio::time::Instant {
    let started = tokio::time::Instant::now();
    let to_write = timeout.mul_f32(1.0 - share).min(Duration::from_secs(1));
    let run_end = tokio::time::Instant::from_std(ctx.deadline);
    (started + timeout.mul_f32(share)).min(run_end.checked_sub(to_write).unwrap_or(started))
}

/// Reads a duration parameter written as text, e.g. `"2s"` or `"1m 30s"`.
fn duration_param<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(de)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Decodes a spec's `params` table into a kind's typed parameters.
fn decode_params<T: serde::de::DeserializeOwned>(params: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(params.clone())).map_err(|err| err.to_string())
}

/// GETs `url` from the debug socket under `limit`. A socket that does not
/// exist is a known limit: the inner `Err` is the skip, with the reason and
/// the config lines that turn the socket on.
async fn debug_get(
    ctx: &Context,
    url: &str,
    limit: Duration,
) -> Result<Result<Vec<u8>, Outcome>, CollectError> {
    match debug::get_unless_silent(&ctx.debug_address, url, limit, &ctx.debug_silence).await {
        Ok(data) => Ok(Ok(data)),
        Err(DebugError::Missing(path)) => Ok(Err(Outcome::Skipped(format!(
            "{} ({}): the debug socket is not enabled; add to containerd's config \
             and restart it:\n{}",
            DebugError::Missing(path.clone()),
            ctx.debug_origin,
            debug::enabling_lines(&path)
        )))),
        Err(err) => Err(err.into()),
    }
}

/// Encodes `value`, bound for file `name`, as pretty JSON with a final newline.
fn json_bytes<T: serde::Serialize>(name: &str, value: &T) -> Result<Vec<u8>, CollectError> {
    let mut data = serde_json::to_vec_pretty(value).map_err(|source| {
        CollectError::Sink(crate::bundle::SinkError::Encode {
            path: name.into(),
            source,
        })
    })?;
    data.push(b'\n');
    Ok(data)
}

/// Formats seconds since the epoch as RFC 3339 UTC; empty when out of range.
fn epoch_rfc3339(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Formats a protobuf timestamp as RFC 3339 UTC.
pub(crate) fn rfc3339(ts: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{}s", ts.seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_are_unique() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(*kind));
        }
        let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
