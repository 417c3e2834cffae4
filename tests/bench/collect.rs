//! Benchmark: `rctr-diag collect` against the way operators gather the same facts today,
//! one `ctr` call after another (`tests/bench/baseline.sh`).
//!
//! For each container count N it boots a containerd 2.1 of the test bed, starts N real
//! `sleep` containers (grouped 25 to a shim, so 500 fit in memory and start quickly), then
//! times both ways against that same daemon: wall time as the median of several runs, and
//! peak RSS as the kernel reports it when the run's process is reaped. It prints a
//! Markdown table to stdout (also written to `target/bench/collect.md`) and one pass/fail
//! line per target; missing a target does not fail the run, only a broken run or a shim
//! left behind does. Progress goes to stderr.
//!
//! Run with `cargo bench --bench collect -- [--n 10,100,500]`: cargo builds the
//! `rctr-diag` binary with the bench profile first, so the measured binary is the current
//! optimized one.

#[path = "../common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::{Daemon, GROUP_LABEL, Series, shim_pids_for, unique_id};

/// The container counts measured when `--n` is not given.
const DEFAULT_COUNTS: [usize; 3] = [10, 100, 500];
/// How many containers share one shim (`io.containerd.runc.v2.group`).
const GROUP_SIZE: usize = 25;
/// How many `ctr run` go at once while setting up.
const SETUP_PARALLELISM: usize = 4;
/// The namespace the containers run in.
const NAMESPACE: &str = "bench";
/// How long one `rctr-diag collect` may take (its own `--timeout`).
const COLLECT_TIMEOUT: &str = "5m";

/// The targets the report checks.
const SPEEDUP_AT_100: f64 = 20.0;
/// How much worse than linear growth of collect's time still passes.
const LINEAR_SLACK: f64 = 1.25;
/// collect's peak RSS at the largest N.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// What the command line asks for.
struct Options {
    counts: Vec<usize>,
    collect_runs: usize,
    baseline_runs: Option<usize>,
}

/// The figures for one container count.
struct Row {
    n: usize,
    setup: Duration,
    collect: Duration,
    collect_rss_kib: u64,
    baseline: Duration,
    baseline_rss_kib: u64,
}

/// One finished child: its wall time, exit status and peak RSS.
struct Measured {
    wall: Duration,
    status: i32,
    maxrss_kib: u64,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench: {e}");
            eprintln!(
                "usage: cargo bench --bench collect -- [--n 10,100,500] [--collect-runs 3] \
                 [--baseline-runs K]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        counts: DEFAULT_COUNTS.to_vec(),
        collect_runs: 3,
        baseline_runs: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |text: &str| {
            text.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("not a positive number: {text:?}"))
        };
        match arg.as_str() {
            "--n" => {
                let list = value("--n")?;
                let mut counts = list.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
                counts.sort_unstable();
                counts.dedup();
                options.counts = counts;
            }
            "--collect-runs" => options.collect_runs = number(&value("--collect-runs")?)?,
            "--baseline-runs" => options.baseline_runs = Some(number(&value("--baseline-runs")?)?),
            // cargo bench adds `--bench` to every bench target's arguments.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn run(options: &Options) -> Result<(), String> {
    let binary = rctr_diag_binary()?;
    let flags = collect_flags(&binary)?;
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/baseline.sh");
    eprintln!("bench: measuring {}", binary.display());
    eprintln!(
        "bench: collect flags beyond the sockets: {}",
        flags.join(" ")
    );
    let load_before = load_average();

    let mut rows = Vec::new();
    for &n in &options.counts {
        rows.push(measure(n, options, &binary, &flags, &baseline)?);
    }

    let report = report(&rows, options, &binary, &flags, &load_before);
    print!("{report}");
    let dir = target_dir().join("bench");
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = dir.join("collect.md");
    fs::write(&file, &report).map_err(|e| format!("write {}: {e}", file.display()))?;
    eprintln!("bench: table written to {}", file.display());
    Ok(())
}

/// Returns the `rctr-diag` cargo built for this bench, or says how to get one.
fn rctr_diag_binary() -> Result<PathBuf, String> {
    // Set by cargo for bench targets; `cargo bench` (re)builds the binary before running.
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_rctr-diag"));
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: run the bench through `cargo bench --bench collect`, which builds it",
            binary.display()
        ));
    }
    // Run directly rather than through cargo, the binary may predate the sources.
    let built = modified(&binary).unwrap_or(SystemTime::UNIX_EPOCH);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["src", "collectors", "proto"] {
        if let Some(newer) = newer_file(&repo.join(dir), built) {
            return Err(format!(
                "{} is older than {}: run the bench through `cargo bench --bench collect`, \
                 which rebuilds it",
                binary.display(),
                newer.display()
            ));
        }
    }
    Ok(binary)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).ok()?.modified().ok()
}

/// Returns a file under `dir` changed after `than`, if there is one.
fn newer_file(dir: &Path, than: SystemTime) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(newer) = newer_file(&path, than) {
                return Some(newer);
            }
        } else if modified(&path).is_some_and(|m| m > than) {
            return Some(path);
        }
    }
    None
}

/// Returns the flags that turn collect's slow-by-design collectors off, as far as this
/// build has them, plus the ones every run needs.
fn collect_flags(binary: &Path) -> Result<Vec<String>, String> {
    let help = Command::new(binary)
        .args(["collect", "--help"])
        .output()
        .map_err(|e| format!("run {} collect --help: {e}", binary.display()))?;
    let help = String::from_utf8_lossy(&help.stdout);
    let mut flags = vec![
        "-q".to_string(),
        "--json".to_string(),
        "--timeout".to_string(),
        COLLECT_TIMEOUT.to_string(),
        // The host's own specs would make the figures depend on the machine.
        "--system-collectors".to_string(),
        "/nonexistent".to_string(),
    ];
    // The events window and the CPU profile each wait a fixed time by design.
    for flag in ["--events-for", "--cpu-profile"] {
        if help.contains(flag) {
            flags.extend([flag.to_string(), "0".to_string()]);
        }
    }
    Ok(flags)
}

/// Boots a daemon with `n` containers, measures both ways, and tears it all down.
fn measure(
    n: usize,
    options: &Options,
    binary: &Path,
    flags: &[String],
    baseline: &Path,
) -> Result<Row, String> {
    eprintln!("bench: N = {n}: setting up");
    let started = Instant::now();
    let daemon = Daemon::start(Series::V2_1);
    let address = daemon.address.clone();
    start_containers(&daemon, n);
    let setup = started.elapsed();
    let shims = daemon.shim_pids().len();
    eprintln!(
        "bench: N = {n}: daemon up in {:.1} s, {n} containers on {shims} shims in {:.1} s",
        daemon.boot_time.as_secs_f64(),
        (setup - daemon.boot_time).as_secs_f64()
    );

    let scratch = tempfile::Builder::new()
        .prefix("rctr-bench-")
        .tempdir()
        .map_err(|e| format!("create a scratch dir: {e}"))?;
    let result = measure_on(&daemon, n, options, binary, flags, baseline, scratch.path());

    // Tear down before checking for leftovers: the daemon's drop removes every task,
    // container and shim.
    drop(daemon);
    let _ = scratch.close();
    let left = shim_pids_for(&address);
    if !left.is_empty() {
        return Err(format!(
            "shims {left:?} of {} outlived their daemon",
            address.display()
        ));
    }
    let (collect, collect_rss_kib, baseline, baseline_rss_kib) = result?;
    Ok(Row {
        n,
        setup,
        collect,
        collect_rss_kib,
        baseline,
        baseline_rss_kib,
    })
}

/// Starts `n` sleeping containers in [`NAMESPACE`], [`GROUP_SIZE`] to a shim.
///
/// The first container of each group starts before the others of that group: two
/// containers that start a group's shim at once race for its socket, and the loser
/// can remove the winner's socket before the winner has set its mode.
fn start_containers(daemon: &Daemon, n: usize) {
    daemon.import_image(NAMESPACE);
    let prefix = unique_id("bench");
    let (firsts, others): (Vec<usize>, Vec<usize>) = (0..n).partition(|k| k % GROUP_SIZE == 0);
    for wave in [firsts, others] {
        thread::scope(|s| {
            for worker in 0..SETUP_PARALLELISM {
                let (prefix, wave) = (&prefix, &wave);
                s.spawn(move || {
                    for &k in wave.iter().skip(worker).step_by(SETUP_PARALLELISM) {
                        let group = format!("{GROUP_LABEL}g{}", k / GROUP_SIZE);
                        daemon.run_container_with(
                            NAMESPACE,
                            &format!("{prefix}-{k}"),
                            &["--label", &group],
                            &["sleep", "3600"],
                        );
                    }
                });
            }
        });
    }
}

/// Times collect and the baseline against a daemon that is set up; returns the median
/// wall times and the largest peak RSS of each.
fn measure_on(
    daemon: &Daemon,
    n: usize,
    options: &Options,
    binary: &Path,
    flags: &[String],
    baseline: &Path,
    scratch: &Path,
) -> Result<(Duration, u64, Duration, u64), String> {
    let mut collect_runs = Vec::new();
    for run in 0..options.collect_runs {
        let bundle = scratch.join(format!("collect-{run}.tar.gz"));
        let mut cmd = Command::new(binary);
        cmd.arg("collect")
            .arg("-a")
            .arg(&daemon.address)
            .arg("--debug-address")
            .arg(&daemon.debug_address)
            .arg("-o")
            .arg(&bundle)
            .args(flags);
        let measured = spawn_measured(cmd, &scratch.join(format!("collect-{run}.out")))?;
        // 0: every collector ok or skipped; 1: some failed, which the figures must say.
        if measured.status > 1 || !bundle.is_file() {
            return Err(format!(
                "collect run {run} at N = {n} exited with {} and no bundle; its output: {}",
                measured.status,
                read_lossy(&scratch.join(format!("collect-{run}.out")))
            ));
        }
        if measured.status == 1 {
            eprintln!(
                "bench: N = {n}: collect run {run} was partial: {}",
                read_lossy(&scratch.join(format!("collect-{run}.out")))
            );
        }
        eprintln!(
            "bench: N = {n}: collect run {run}: {:.3} s, peak RSS {} KiB",
            measured.wall.as_secs_f64(),
            measured.maxrss_kib
        );
        collect_runs.push(measured);
    }

    // A baseline run at large N takes minutes; one is enough there.
    let baseline_count = options
        .baseline_runs
        .unwrap_or(if n >= 500 { 1 } else { 3 });
    let mut baseline_runs = Vec::new();
    for run in 0..baseline_count {
        let out = scratch.join(format!("baseline-{run}"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg(baseline)
            .arg(daemon.series.bin("ctr"))
            .arg(&daemon.address)
            .arg(&daemon.debug_address)
            .arg(&out)
            .arg(&daemon.state);
        let measured = spawn_measured(cmd, &scratch.join(format!("baseline-{run}.out")))?;
        if measured.status != 0 {
            return Err(format!(
                "baseline run {run} at N = {n} exited with {}: {}",
                measured.status,
                read_lossy(&scratch.join(format!("baseline-{run}.out")))
            ));
        }
        eprintln!(
            "bench: N = {n}: baseline run {run}: {:.3} s, peak RSS {} KiB",
            measured.wall.as_secs_f64(),
            measured.maxrss_kib
        );
        baseline_runs.push(measured);
    }

    Ok((
        median(&collect_runs),
        collect_runs.iter().map(|m| m.maxrss_kib).max().unwrap_or(0),
        median(&baseline_runs),
        baseline_runs
            .iter()
            .map(|m| m.maxrss_kib)
            .max()
            .unwrap_or(0),
    ))
}

/// Runs `cmd` with stdout and stderr into `output`, reaps it with wait4, and returns its
/// wall time, exit status and `ru_maxrss`.
///
/// wait4 reports the reaped child's usage together with that of every descendant it
/// waited for, and for `ru_maxrss` that is the largest peak resident set among them: for
/// collect the rctr-diag process (and anything it ran), for the baseline the biggest of
/// the shell, the `ctr` calls and tar.
fn spawn_measured(mut cmd: Command, output: &Path) -> Result<Measured, String> {
    let shown = format!("{cmd:?}");
    let file = fs::File::create(output).map_err(|e| format!("create {}: {e}", output.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", output.display()))?;
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn {shown}: {e}"))?;
    let pid = child.id() as libc::pid_t;

    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes for the duration of the call; the
        // pid is our unreaped child, so it names no one else.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4 for {shown}: {e}"));
        }
    }
    let wall = started.elapsed();
    // The child is reaped: dropping the handle must not wait again, and does not.
    drop(child);

    let status = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Measured {
        wall,
        status,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

fn median(runs: &[Measured]) -> Duration {
    let mut walls: Vec<Duration> = runs.iter().map(|m| m.wall).collect();
    walls.sort_unstable();
    walls.get(walls.len() / 2).copied().unwrap_or_default()
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default())
        .trim()
        .to_string()
}

/// Returns the 1, 5 and 15 minute load averages, as `/proc/loadavg` writes them.
fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Returns cargo's target folder: `CARGO_TARGET_DIR` if set, else `target/` in the repo.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Renders the table, the conditions it was measured under, and the target checks.
fn report(
    rows: &[Row],
    options: &Options,
    binary: &Path,
    flags: &[String],
    load_before: &str,
) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut out = String::new();
    let _ = writeln!(out, "# rctr-diag collect vs. one ctr call after another\n");
    let _ = writeln!(
        out,
        "containerd 2.1 of the test bed, N `sleep` containers in one namespace, {GROUP_SIZE} \
         per shim. Wall time: median of {} collect runs and of the baseline runs (3, or 1 \
         at N >= 500, unless `--baseline-runs`). Peak RSS: ru_maxrss of the reaped process \
         and the descendants it waited for, largest over the runs: for collect the \
         rctr-diag process, for the baseline the largest single process of the script \
         (sh, a ctr call, tar).\n",
        options.collect_runs
    );
    let _ = writeln!(out, "- binary: `{}`", binary.display());
    let _ = writeln!(out, "- collect flags: `{}`", flags.join(" "));
    let _ = writeln!(out, "- baseline: `tests/bench/baseline.sh`");
    let _ = writeln!(
        out,
        "- CPUs: {}; load average before: {load_before}, after: {}\n",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let _ = writeln!(
        out,
        "| N | collect wall (s) | collect peak RSS (MiB) | baseline wall (s) \
         | baseline peak RSS (MiB) | speed ratio (baseline/collect) | collect ms per container \
         | setup (s) |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.1}x | {:.2} | {:.1} |",
            row.n,
            row.collect.as_secs_f64(),
            mib(row.collect_rss_kib),
            row.baseline.as_secs_f64(),
            mib(row.baseline_rss_kib),
            ratio(row.baseline, row.collect),
            row.collect.as_secs_f64() * 1000.0 / row.n as f64,
            row.setup.as_secs_f64(),
        );
    }
    let _ = writeln!(out, "\n## Targets\n");
    for line in targets(rows) {
        let _ = writeln!(out, "- {line}");
    }
    out
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
}

/// Returns one PASS/FAIL (or not measured) line per target.
fn targets(rows: &[Row]) -> Vec<String> {
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let at = |n: usize| rows.iter().find(|r| r.n == n);
    let mut lines = Vec::new();

    match at(100) {
        Some(row) => {
            let speedup = ratio(row.baseline, row.collect);
            lines.push(format!(
                "{}: at N = 100 collect is {speedup:.1}x faster than the baseline \
                 (target >= {SPEEDUP_AT_100}x)",
                verdict(speedup >= SPEEDUP_AT_100)
            ));
        }
        None => lines.push(format!(
            "not measured: speed ratio at N = 100 (target >= {SPEEDUP_AT_100}x)"
        )),
    }

    // Linear growth: each step up in N may cost at most proportionally more, with slack.
    if rows.len() < 2 {
        lines.push("not measured: growth of collect's time with N (needs two N)".into());
    }
    for pair in rows.windows(2) {
        let (small, large) = (&pair[0], &pair[1]);
        let grown = ratio(large.collect, small.collect);
        let limit = large.n as f64 / small.n as f64 * LINEAR_SLACK;
        lines.push(format!(
            "{}: collect time grows {grown:.2}x from N = {} to N = {} (target <= {limit:.2}x: \
             linear with {LINEAR_SLACK}x slack)",
            verdict(grown <= limit),
            small.n,
            large.n
        ));
    }

    match rows.last() {
        Some(row) if row.n >= 500 => lines.push(format!(
            "{}: collect peak RSS at N = {} is {:.1} MiB (target < {} MiB)",
            verdict(row.collect_rss_kib < RSS_LIMIT_KIB),
            row.n,
            row.collect_rss_kib as f64 / 1024.0,
            RSS_LIMIT_KIB / 1024
        )),
        _ => lines.push(format!(
            "not measured: collect peak RSS at N = 500 (target < {} MiB)",
            RSS_LIMIT_KIB / 1024
        )),
    }
    lines
}
