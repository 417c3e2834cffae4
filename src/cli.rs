//! The command line: flags in containerd's own vocabulary, and the
//! subcommands that drive the library.
//!
//! stdout carries only results (the bundle path, a listing, or JSON); logs
//! and errors go to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use sysinfo::System;

use crate::analyze::{self, Finding};
use crate::audit::{self, rules::Release};
use crate::bundle::manifest::{self, DaemonRef, HostId, Manifest, Tool};
use crate::bundle::{BundleWriter, resolve_target, spawn_writer};
use crate::engine;
use crate::kinds::Context;
use crate::report::{Counts, Summary};
use crate::source::{Containerd, Silence, debug, host};
use crate::spec::{self, Selection, Spec};

/// Where operators put their own collector specs.
const SYSTEM_SPECS: &str = "/etc/rctr-diag/collectors.d";

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The bundle was written and every collector was ok or skipped.
    Clean = 0,
    /// The bundle was written, but some collectors failed, timed out or
    /// were interrupted.
    Partial = 1,
    /// No bundle could be written.
    NoBundle = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Collects a support bundle from a node running containerd.
#[derive(Debug, Parser)]
#[command(name = "rctr-diag", version, about)]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log more: -v for each collector's start and end, -vv for decisions.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Collect a support bundle (.tar.gz) from this node.
    Collect(Box<CollectArgs>),
    /// List every known collector: name, kind, tags, default, description.
    Collectors(CollectorsArgs),
    /// Check this node for what is deprecated in, or removed by, a target
    /// containerd release. Exit 0: nothing blocks; 1: blockers found;
    /// 2: the audit could not run.
    Audit(AuditArgs),
    /// Re-run the analyzers on an existing bundle, offline, and print the
    /// summary.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The bundle (.tar.gz) to read.
    bundle: PathBuf,
    /// Output format: md (Markdown, pasteable into a GitHub issue) or json.
    #[arg(long, value_enum, default_value = "md")]
    format: InspectFormat,
    /// Same as --format md.
    #[arg(long, conflicts_with = "format")]
    markdown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InspectFormat {
    Md,
    Json,
}

#[derive(Debug, Args)]
struct SpecArgs {
    /// Also load collector specs (*.toml) from this folder; repeatable.
    #[arg(long = "collectors", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Folder of the operator's system-wide collector specs.
    #[arg(long, value_name = "DIR", default_value = SYSTEM_SPECS, hide = true)]
    system_collectors: PathBuf,
}

#[derive(Debug, Args)]
struct CollectArgs {
    /// containerd's gRPC socket.
    #[arg(
        short,
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    address: PathBuf,
    /// containerd's debug socket (pprof, expvar). Default: the `[debug]
    /// address` in containerd's config file, else /run/containerd/debug.sock.
    #[arg(long, value_name = "PATH")]
    debug_address: Option<PathBuf>,
    /// Length of the CPU profile taken over the debug socket; 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    cpu_profile: Duration,
    /// Send SIGUSR1 to containerd and collect the goroutine stack file it
    /// writes; =2 takes two dumps seconds apart to see what does not move.
    /// Off by default: it signals the running daemon.
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1",
        value_parser = clap::value_parser!(u8).range(1..=2)
    )]
    signal_dump: Option<u8>,
    /// Namespace to look into; repeatable. Default: all namespaces.
    #[arg(short, long = "namespace", value_name = "NAME")]
    namespaces: Vec<String>,
    /// Folder for the bundle, or the bundle's file path (*.tar.gz).
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Deadline for the whole run, e.g. 30s or 2m.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Run only these collectors (names or tags; comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "NAME|TAG")]
    only: Vec<String>,
    /// Do not run these collectors (names or tags).
    #[arg(long, value_delimiter = ',', value_name = "NAME|TAG")]
    skip: Vec<String>,
    /// Listen for containerd events this long (0 turns it off).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    events_for: Duration,
    /// Keep secrets (environment values, credentials) in the bundle.
    #[arg(long)]
    no_redact: bool,
    /// At most this many calls in flight to containerd at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_calls: usize,
    /// Count containerd's socket (or its debug socket) as hung when a probe
    /// (a Version call; GET /debug/vars) gets no answer this long: calls to
    /// it then end at once instead of each waiting out its collector's
    /// timeout (0 turns the probes off).
    #[arg(long, default_value = "4s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    hung_after: Duration,
    /// Print a JSON object (bundle path, collector counts, findings) instead
    /// of the bare bundle path.
    #[arg(long)]
    json: bool,
    /// Largest bundle to write (compressed), e.g. 100MiB or 2G; when the
    /// output would be larger, the lowest-priority files are dropped.
    #[arg(long, default_value = "100MiB", value_name = "SIZE", value_parser = crate::bundle::budget::parse_size)]
    max_size: u64,
    /// Start even when the output folder has less free space than --max-size.
    #[arg(long)]
    force: bool,
    /// How far back journals and logs reach, e.g. 1h or 30m.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    since: Duration,
    #[command(flatten)]
    specs: SpecArgs,
    /// containerd's state dir (its `state` setting). Default: read from the
    /// running daemon's flags and config, else /run/containerd.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CollectorsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    specs: SpecArgs,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// containerd's gRPC socket.
    #[arg(
        short,
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    address: PathBuf,
    /// The release to check against, e.g. 2.0. Default: the first release
    /// after the running one that removes something.
    #[arg(long, value_name = "VERSION", value_parser = parse_release)]
    target: Option<Release>,
    /// containerd's config file. Default: the one on the daemon's command
    /// line, else /etc/containerd/config.toml.
    #[arg(short, long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    format: AuditFormat,
}

/// How `audit` prints its report.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Table,
    Json,
    Markdown,
}

fn parse_release(text: &str) -> Result<Release, String> {
    Release::parse(text).ok_or_else(|| format!("{text:?} is not a release such as 2.0 or 1.7"))
}

impl Cli {
    /// The log level the flags ask for.
    pub fn verbosity(&self) -> tracing::Level {
        match (self.quiet, self.verbose) {
            (true, _) => tracing::Level::ERROR,
            (false, 0) => tracing::Level::WARN,
            (false, 1) => tracing::Level::INFO,
            _ => tracing::Level::DEBUG,
        }
    }
}

/// Starts logging to stderr at `level`.
pub fn init_logging(level: tracing::Level) {
    tracing_subscriber::fmt()
        .with_writer(crate::progress::log_writer)
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs the command the flags name.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Collect(args) => collect(*args, quiet).map(ExitCode::from),
        Command::Collectors(args) => list(args).map(ExitCode::from),
        Command::Audit(args) => audit(args).map(ExitCode::from),
        Command::Inspect(args) => inspect(args).map(ExitCode::from),
    }
}

/// Runs the upgrade audit and prints it; returns 0, 1 or 2 (see [`audit`]).
fn audit(args: AuditArgs) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let containerd = Containerd::new(args.address.clone(), 4);
    let options = audit::Options {
        target: args.target,
        config: args.config.clone(),
        namespaces: Vec::new(),
    };
    let report = runtime.block_on(audit::run(&containerd, &options));
    runtime.shutdown_timeout(Duration::from_millis(200));

    let text = match args.format {
        AuditFormat::Table => audit::render::table(&report),
        AuditFormat::Markdown => audit::render::markdown(&report),
        AuditFormat::Json => {
            let mut text = serde_json::to_string_pretty(&report)?;
            text.push('\n');
            text
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if let Some(failure) = &report.failure {
        tracing::error!(%failure, "audit could not run");
    }
    Ok(report.exit_code())
}

fn inspect(args: InspectArgs) -> anyhow::Result<Exit> {
    let summary = crate::inspect::inspect(&args.bundle)?;
    let mut out = std::io::stdout().lock();
    if args.format == InspectFormat::Json && !args.markdown {
        let report = CollectReport {
            bundle: &args.bundle,
            complete: summary.complete,
            counts: &summary.counts,
            findings: &summary.findings,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", summary.markdown())?;
    }
    Ok(Exit::Clean)
}

fn load_specs(args: &SpecArgs) -> anyhow::Result<Vec<Spec>> {
    Ok(spec::load(Some(&args.system_collectors), &args.dirs)?)
}

fn list(args: CollectorsArgs) -> anyhow::Result<Exit> {
    #[derive(Serialize)]
    struct Line<'a> {
        name: &'a str,
        kind: &'a str,
        tags: &'a [String],
        default: bool,
        timeout: String,
        output: &'a str,
        description: &'a str,
        origin: &'a str,
        priority: u8,
    }
    let specs = load_specs(&args.specs)?;
    let lines: Vec<Line> = specs
        .iter()
        .map(|spec| Line {
            name: &spec.name,
            kind: spec.kind.name(),
            tags: &spec.tags,
            default: spec.default,
            timeout: humantime::format_duration(spec.timeout).to_string(),
            output: &spec.output,
            description: &spec.description,
            origin: &spec.origin,
            priority: spec.priority,
        })
        .collect();

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &lines)?;
        writeln!(out)?;
        return Ok(Exit::Clean);
    }
    let width = |f: fn(&Line) -> usize| lines.iter().map(f).max().unwrap_or(0);
    let name_w = width(|l| l.name.len()).max(4);
    let kind_w = width(|l| l.kind.len()).max(4);
    let tags_w = width(|l| l.tags.join(",").len()).max(4);
    writeln!(
        out,
        "{:name_w$}  {:kind_w$}  {:tags_w$}  DEFAULT  DESCRIPTION",
        "NAME", "KIND", "TAGS"
    )?;
    for line in &lines {
        writeln!(
            out,
            "{:name_w$}  {:kind_w$}  {:tags_w$}  {:7}  {}",
            line.name,
            line.kind,
            line.tags.join(","),
            if line.default { "yes" } else { "no" },
            line.description
        )?;
    }
    Ok(Exit::Clean)
}

/// What `collect --json` prints.
#[derive(Serialize)]
struct CollectReport<'a> {
    bundle: &'a Path,
    complete: bool,
    counts: &'a Counts,
    findings: &'a [Finding],
}

fn collect(args: CollectArgs, quiet: bool) -> anyhow::Result<Exit> {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();

    // Plan: every spec is checked before anything runs.
    let specs = load_specs(&args.specs)?;
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    let chosen = spec::select(&specs, &selection)?;

    // The destination is opened first, so an unwritable folder costs nothing.
    let hostname = System::host_name().unwrap_or_else(|| "unknown-host".into());
    let file_name = format!(
        "rctr-diag-{}-{}.tar.gz",
        file_safe(&hostname),
        started_at.format("%Y%m%dT%H%M%SZ")
    );
    let target = resolve_target(args.output.as_deref(), &file_name)?;
    let dir = target.dir.clone();
    let mut writer = BundleWriter::create(target, started_at.timestamp().max(0) as u64)?;
    // After the create, so an unwritable folder is named as such; a refusal
    // drops the writer, which removes its temporary file.
    check_free_space(&dir, args.max_size, args.force)?;
    let priorities = chosen
        .iter()
        .map(|s| (s.name.clone(), s.priority))
        .collect();
    writer.set_budget(args.max_size, priorities)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The live display only on a terminal; a pipe gets log lines at most.
    let tty = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (events, display) = match tty.then(|| crate::progress::start(chosen.len())) {
        Some((events, display)) => (Some(events), Some(display)),
        None => (None, None),
    };
    let result = runtime.block_on(collect_into(
        &args, chosen, writer, started_at, clock, events,
    ));
    // A blocking read stuck in the kernel must not hold the process.
    runtime.shutdown_timeout(Duration::from_millis(200));
    if let Some(display) = display {
        display.finish();
    }
    let (path, manifest, summary) = result?;
    if tty {
        tell_outcome(&path, &summary);
    }

    let exit = if !manifest.complete || manifest.collectors.iter().any(|c| c.status.is_failure()) {
        Exit::Partial
    } else {
        Exit::Clean
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = CollectReport {
            bundle: &path,
            complete: manifest.complete,
            counts: &summary.counts,
            findings: &summary.findings,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", path.display())?;
    }
    Ok(exit)
}

async fn collect_into(
    args: &CollectArgs,
    chosen: Vec<Spec>,
    writer: BundleWriter,
    started_at: chrono::DateTime<chrono::Utc>,
    clock: Instant,
    events: Option<engine::Events>,
) -> anyhow::Result<(PathBuf, Manifest, Summary)> {
    let stop = interrupt_signal().context("cannot listen for SIGINT and SIGTERM")?;
    let (sink, thread) = spawn_writer(writer);

    // Leave a moment of the overall deadline for the report and the archive.
    let reserve = (args.timeout / 10).min(Duration::from_secs(1));
    let deadline = clock + args.timeout.saturating_sub(reserve);
    let debug = find_debug_address(args).await;
    let ctx = Arc::new(Context {
        containerd: Containerd::new(args.address.clone(), args.max_calls),
        debug_address: debug.path.clone(),
        namespaces: args.namespaces.clone(),
        state_dir: args.state_dir.clone(),
        redact: !args.no_redact,
        events_for: args.events_for,
        deadline,
        debug_origin: debug.origin.clone(),
        cpu_profile: args.cpu_profile,
        signal_dumps: args.signal_dump.unwrap_or(0),
        since: args.since,
        debug_silence: Silence::default(),
    });
    // Probe only what a chosen collector asks: `--only shims` must not
    // touch the daemon.
    let mut probes = tokio::task::JoinSet::new();
    if !args.hung_after.is_zero() {
        let limit = args.hung_after;
        if chosen.iter().any(|spec| spec.kind.asks_containerd()) {
            let ctx = ctx.clone();
            probes.spawn(async move { ctx.containerd.probe(limit).await });
        }
        if chosen.iter().any(|spec| spec.kind.uses_debug_socket()) {
            let ctx = ctx.clone();
            probes.spawn(async move {
                debug::probe(&ctx.debug_address, limit, &ctx.debug_silence).await
            });
        }
    }
    let result = engine::run_with_events(chosen, ctx.clone(), &sink, deadline, stop, events).await;
    probes.abort_all();
    drop(sink);
    let (mut writer, failure) = thread.close().await;
    if let Some(err) = failure {
        return Err(err.into());
    }
    let mut records = result.records;
    for (collector, cut) in writer.dropped() {
        if let Some(record) = records.iter_mut().find(|r| &r.name == collector) {
            record.files.retain(|path| path != &cut.path);
            record.cuts.push(cut.clone());
        }
    }

    let finished_at = chrono::Utc::now();
    let version = ctx.containerd.known_version();
    let mut manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command_line: std::env::args().collect(),
        host: HostId {
            hostname: System::host_name().unwrap_or_default(),
            os: System::long_os_version(),
            kernel: System::kernel_version(),
        },
        containerd: DaemonRef {
            address: args.address.display().to_string(),
            debug_address: debug.path.display().to_string(),
            version: version.map(|v| v.version.clone()),
            revision: version.map(|v| v.revision.clone()),
        },
        started_at: rfc3339(started_at),
        finished_at: rfc3339(finished_at),
        duration_ms: clock.elapsed().as_millis() as u64,
        complete: result.interrupted.is_none(),
        incomplete_reason: result.interrupted,
        collectors: records,
        files: Vec::new(),
    };

    // Analyze, then report: the summaries are files of the bundle too.
    let findings = analyze::analyze(&analyze::Input {
        entries: writer.entries(),
        collectors: &manifest.collectors,
    });
    let summary = Summary::new(&manifest, findings);
    writer.add("report", "summary.json", &json_bytes(&summary)?)?;
    writer.add("report", "summary.md", summary.markdown().as_bytes())?;
    manifest.files = writer.files().to_vec();
    writer.add("report", "manifest.json", &json_bytes(&manifest)?)?;
    let path = writer.finish()?;
    Ok((path, manifest, summary))
}

/// Finds the debug socket: the flag, else the config of the daemon that
/// holds `--address`, else the default.
async fn find_debug_address(args: &CollectArgs) -> debug::DebugAddress {
    let explicit = args.debug_address.clone();
    let address = args.address.clone();
    let lookup = tokio::task::spawn_blocking(move || {
        let pid = match explicit {
            Some(_) => None,
            None => host::socket_owner(&address).ok().flatten(),
        };
        debug::resolve(explicit.as_deref(), pid)
    });
    // Scanning /proc is quick; a stuck read must not hold the run.
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(found)) => found,
        _ => debug::DebugAddress {
            path: PathBuf::from(debug::DEFAULT_ADDRESS),
            origin: "default; the daemon's config could not be looked up in time".into(),
            config: None,
        },
    }
}

/// Tells the operator on the terminal where the bundle is, its size and the
/// top findings; stdout keeps only the path or the JSON.
fn tell_outcome(path: &Path, summary: &Summary) {
    let size = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "bundle: {} ({})",
        path.display(),
        crate::bundle::budget::format_size(size)
    );
    for finding in summary.findings.iter().take(5) {
        let _ = writeln!(err, "  {}: {}", finding.severity.word(), finding.title);
    }
    if summary.findings.len() > 5 {
        let _ = writeln!(
            err,
            "  ... {} more in summary.md",
            summary.findings.len() - 5
        );
    }
}

/// Refuses to start when `dir` has less free space than `budget`.
fn check_free_space(dir: &Path, budget: u64, force: bool) -> anyhow::Result<()> {
    use crate::bundle::budget::{format_size, free_space};
    let free = free_space(dir)
        .with_context(|| format!("cannot read the free space of {}", dir.display()))?;
    if free < budget && !force {
        anyhow::bail!(
            "only {} free in {}, less than the bundle's budget of {} (--max-size): free some \
             space, choose another --output, lower --max-size, or pass --force",
            format_size(free),
            dir.display(),
            format_size(budget)
        );
    }
    Ok(())
}

/// Resolves with the name of the first SIGINT or SIGTERM.
fn interrupt_signal() -> std::io::Result<impl Future<Output = String>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "interrupted by SIGINT".to_string(),
            _ = term.recv() => "interrupted by SIGTERM".to_string(),
        }
    })
}

fn json_bytes<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut data = serde_json::to_vec_pretty(value)?;
    data.push(b'\n');
    Ok(data)
}

fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Keeps letters, digits, '-' and '.'; anything else becomes '_'.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
