//! `exec`: running a command an operator names, without a shell.
//!
//! The command runs in its own process group so that, at its deadline (or
//! when the engine gives up on the collector), the whole group is killed —
//! children it started included — and nothing outlives the run. Its stdout
//! and stderr are read concurrently, each keeping only its newest
//! `max_bytes`, so a chatty command cannot grow memory. A program that is not
//! installed is a skip, not a failure: not every node has every tool.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::limit::{self, DEFAULT_MAX_BYTES};
use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::source::host;
use crate::spec::Spec;

/// `exec` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// The program and its arguments; the program is looked up in PATH.
    pub argv: Vec<String>,
    /// The command's own deadline (e.g. "5s"); default: 90% of the spec's
    /// timeout, so its partial output is still written.
    pub deadline: Option<String>,
    /// Cap of each of stdout and stderr.
    pub max_bytes: Option<u64>,
    /// Runs the executable of the containerd process serving `--address`
    /// (`/proc/<pid>/exe`) instead of `argv[0]` when that process is found.
    #[serde(default)]
    pub program_from_daemon: bool,
    #[serde(default = "yes")]
    pub redact: bool,
}

fn yes() -> bool {
    true
}

/// Checks `exec` parameters.
pub fn check(params: &ExecParams) -> Result<(), String> {
    if params.argv.first().is_none_or(|p| p.is_empty()) {
        return Err("argv must name a program".into());
    }
    if let Some(text) = &params.deadline {
        humantime::parse_duration(text).map_err(|err| format!("deadline {text:?}: {err}"))?;
    }
    Ok(())
}

/// How a command ended, as written to the bundle.
#[derive(Debug, Serialize)]
pub struct ExecResult {
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    #[serde(skip)]
    pub stdout: Vec<u8>,
    #[serde(skip)]
    pub stderr: Vec<u8>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

/// A command could not be started.
pub enum Start {
    NotFound(String),
    Failed(std::io::Error),
}

/// Runs a `exec` spec.
pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: ExecParams = super::decode_params(&spec.params).expect("checked when loaded");
    let mut argv = params.argv.clone();
    if params.program_from_daemon
        && let Some(exe) = daemon_exe(ctx).await
    {
        argv[0] = exe.display().to_string();
    }
    let deadline = params
        .deadline
        .as_deref()
        .and_then(|text| humantime::parse_duration(text).ok())
        .unwrap_or(spec.timeout.mul_f64(0.9));
    let max = params.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);

    let result = match run(&argv, deadline, max).await {
        Ok(result) => result,
        Err(Start::NotFound(program)) => {
            return Ok(Outcome::Skipped(format!("{program} is not installed")));
        }
        Err(Start::Failed(source)) => {
            return Err(CollectError::Host {
                what: format!("the output of {}", argv.join(" ")),
                source,
            });
        }
    };

    write(out, &result, max, params.redact && ctx.redact).await?;
    if result.timed_out {
        return Ok(Outcome::TimedOut(format!(
            "{} was killed at its deadline of {}",
            argv.join(" "),
            humantime::format_duration(deadline)
        )));
    }
    Ok(Outcome::Done)
}

/// Writes a command's result: into a folder as `stdout.txt`, `stderr.txt`
/// and `result.json`, or into one JSON file holding the streams as text.
async fn write(
    out: &Output,
    result: &ExecResult,
    max: u64,
    redacting: bool,
) -> Result<(), CollectError> {
    if out.base().ends_with('/') {
        for (name, data, size) in [
            ("stdout.txt", &result.stdout, result.stdout_bytes),
            ("stderr.txt", &result.stderr, result.stderr_bytes),
        ] {
            limit::put_capped(out, Some(name), data.clone(), size, max, redacting).await?;
        }
        let json = serde_json::to_vec_pretty(result).expect("a result encodes");
        out.put_in("result.json", json).await?;
        return Ok(());
    }

    #[derive(Serialize)]
    struct Whole<'a> {
        #[serde(flatten)]
        result: &'a ExecResult,
        stdout: String,
        stderr: String,
    }
    let text = |data: &[u8]| String::from_utf8_lossy(data).into_owned();
    let whole = Whole {
        result,
        stdout: text(&result.stdout),
        stderr: text(&result.stderr),
    };
    let mut json = serde_json::to_vec_pretty(&whole).expect("a result encodes");
    json.push(b'\n');
    // Each stream is already capped; the JSON as a whole is redacted here.
    let size = json.len() as u64;
    limit::put_capped(out, None, json, size, u64::MAX, redacting).await
}

/// The executable of the daemon serving the context's address.
async fn daemon_exe(ctx: &Context) -> Option<PathBuf> {
    let address = ctx.containerd.address().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let pid = host::socket_owner(&address).ok()??;
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        std::fs::metadata(&exe).ok().map(|_| exe)
    })
    .await
    .ok()?
}

/// Kills a process group when dropped: at the deadline, and also when the
/// engine abandons the collector's future.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; a negative pid names the
        // group the child leads, created for it by `process_group(0)`.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// Runs `argv` (no shell) until it ends or `deadline` passes; keeps the
/// newest `max` bytes of each stream.
pub async fn run(argv: &[String], deadline: Duration, max: u64) -> Result<ExecResult, Start> {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Start::NotFound(argv[0].clone()),
        _ => Start::Failed(err),
    })?;
    let guard = child.id().map(|pid| GroupGuard(pid as i32));

    let stdout = tokio::spawn(read_newest(child.stdout.take(), max));
    let stderr = tokio::spawn(read_newest(child.stderr.take(), max));
    let status = tokio::time::timeout(deadline, child.wait()).await;
    let timed_out = status.is_err();
    // Kills what the command left running in its group, or the command
    // itself at the deadline; the pipes then close.
    drop(guard);
    let status = match status {
        Ok(status) => status.ok(),
        Err(_) => child.wait().await.ok(),
    };

    // A process that left the group may still hold a pipe; do not wait on it.
    let grace = Duration::from_secs(1);
    let collect = |handle: tokio::task::JoinHandle<(Vec<u8>, u64)>| async {
        let abort = handle.abort_handle();
        match tokio::time::timeout(grace, handle).await {
            Ok(Ok(read)) => read,
            _ => {
                abort.abort();
                (Vec::new(), 0)
            }
        }
    };
    let (stdout, stdout_bytes) = collect(stdout).await;
    let (stderr, stderr_bytes) = collect(stderr).await;

    use std::os::unix::process::ExitStatusExt;
    Ok(ExecResult {
        argv: argv.to_vec(),
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        duration_ms: started.elapsed().as_millis() as u64,
        stdout,
        stderr,
        stdout_bytes,
        stderr_bytes,
    })
}

/// Reads a stream to its end, keeping its newest `max` bytes (plus a line);
/// returns them and the total read.
async fn read_newest(stream: Option<impl AsyncRead + Unpin>, max: u64) -> (Vec<u8>, u64) {
    let Some(mut stream) = stream else {
        return (Vec::new(), 0);
    };
    let keep = (max as usize).saturating_add(1);
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > keep.saturating_mul(2) {
                    kept.drain(..kept.len() - keep);
                }
            }
        }
    }
    if kept.len() > keep {
        kept.drain(..kept.len() - keep);
    }
    (kept, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn keeps_output_and_exit_status() {
        let r = run(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
            100,
        )
        .await
        .ok()
        .unwrap();
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, b"err\n");
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.timed_out);
    }

    #[tokio::test]
    async fn missing_program_is_not_found() {
        let r = run(
            &argv(&["/nonexistent/rctr-prog"]),
            Duration::from_secs(1),
            10,
        )
        .await;
        assert!(matches!(r, Err(Start::NotFound(_))));
    }
}
