//! `signal-dump`: goroutine stacks by SIGUSR1, for when the debug socket is
//! off (or whenever the operator asks with `--signal-dump`).
//!
//! Signalling a production daemon is the one intrusive thing this tool
//! does, so it runs only on request. containerd answers SIGUSR1 by writing
//! `containerd.<pid>.stacks.log` into its own temp dir (its `TMPDIR`, read
//! from `/proc/<pid>/environ`, else `/tmp`). That file may already exist from
//! an earlier dump, so only a file that is new or changed after the signal,
//! and has stopped growing, counts. The file is read through
//! `/proc/<pid>/root`, which is the daemon's view of the filesystem even
//! when it runs in another mount namespace; a daemon in another pid
//! namespace names the file by a pid this tool does not know, and is not
//! supported. With `--signal-dump=2` two dumps are taken a few seconds apart
//! and compared: goroutines whose state and stack did not change are stuck
//! or idle.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{CollectError, Context, Outcome};
use crate::analyze::goroutine_dump::{self, Group, Summary};
use crate::bundle::Output;
use crate::source::host;

/// How long the daemon gets to write its stack file.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// The pause between two dumps.
const BETWEEN_DUMPS: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// What `summary.json` of the signal dumps holds.
#[derive(Serialize)]
struct Dumps {
    pid: u32,
    stack_file: String,
    dumps: Vec<Summary>,
    /// With two dumps: goroutines in the same state with the same stack in
    /// both, grouped.
    unmoved: Option<Vec<Group>>,
    unmoved_total: Option<usize>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    if ctx.signal_dumps == 0 {
        return Ok(Outcome::Skipped(
            "not asked for: --signal-dump sends SIGUSR1 to containerd for a stack dump".into(),
        ));
    }
    let address = ctx.containerd.address().to_path_buf();
    let owner = tokio::task::spawn_blocking(move || host::socket_owner(&address))
        .await
        .expect("scanning /proc does not panic")
        .map_err(|source| CollectError::Host {
            what: "the kernel's unix socket table".into(),
            source,
        })?;
    let Some(pid) = owner else {
        return Ok(Outcome::Skipped(format!(
            "no process is listening on {}, so there is no daemon to signal",
            ctx.containerd.address().display()
        )));
    };
    let file = stack_file(pid);

    let mut texts = Vec::new();
    for n in 1..=ctx.signal_dumps {
        if n > 1 {
            tokio::time::sleep(BETWEEN_DUMPS).await;
        }
        let data = dump_once(pid, &file).await?;
        out.put_in(&format!("stacks-{n}.log"), data.clone()).await?;
        texts.push(String::from_utf8_lossy(&data).into_owned());
    }

    let parsed: Vec<_> = texts.iter().map(|t| goroutine_dump::parse(t)).collect();
    let unmoved = match parsed.as_slice() {
        [first, .., last] => Some(goroutine_dump::unmoved(first, last)),
        _ => None,
    };
    let summary = Dumps {
        pid,
        stack_file: file.display().to_string(),
        dumps: parsed.iter().map(goroutine_dump::summarize).collect(),
        unmoved_total: unmoved
            .as_ref()
            .map(|groups| groups.iter().map(|g| g.count).sum()),
        unmoved,
    };
    out.put_in("summary.json", super::json_bytes("summary.json", &summary)?)
        .await?;
    Ok(Outcome::Done)
}

/// The stack file daemon `pid` writes, as seen from here.
fn stack_file(pid: u32) -> PathBuf {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let tmp = environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"TMPDIR="))
        .map(|dir| String::from_utf8_lossy(dir).into_owned())
        .filter(|dir| dir.starts_with('/'))
        .unwrap_or_else(|| "/tmp".into());
    let inside = Path::new(&tmp).join(format!("containerd.{pid}.stacks.log"));
    Path::new(&format!("/proc/{pid}/root")).join(inside.strip_prefix("/").unwrap_or(&inside))
}

/// What identifies one version of the stack file.
fn stamp(file: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Signals the daemon once and returns the stack file it writes.
async fn dump_once(pid: u32, file: &Path) -> Result<Vec<u8>, CollectError> {
    let before = stamp(file);
    // SAFETY: kill has no memory preconditions; the pid was just found
    // holding containerd's socket.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) } != 0 {
        return Err(CollectError::Signal {
            pid,
            source: std::io::Error::last_os_error(),
        });
    }
    let started = Instant::now();
    let mut last = None;
    loop {
        tokio::time::sleep(POLL).await;
        let now = stamp(file);
        let fresh = now.is_some() && now != before;
        // Written and no longer growing between two polls.
        if fresh && now == last && now.is_some_and(|(_, len)| len > 0) {
            break;
        }
        last = now;
        if started.elapsed() > WRITE_DEADLINE {
            return Err(CollectError::StackFile {
                path: file.to_path_buf(),
                limit: WRITE_DEADLINE,
            });
        }
    }
    tokio::fs::read(file)
        .await
        .map_err(|source| CollectError::Host {
            what: file.display().to_string(),
            source,
        })
}
