//! `containerd-process`: the daemon process as the kernel sees it.
//!
//! The process is found by the listening socket it holds, which names the
//! right daemon even when several run on one host and works while the daemon
//! hangs. When no process holds the socket (it may be in another mount
//! namespace), a single process named `containerd` is taken instead; with
//! none or several, the kind is skipped rather than guess.

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::source::host;

#[derive(Serialize)]
struct ProcessInfo {
    pid: u32,
    found_by: &'static str,
    name: String,
    exe: Option<String>,
    cmdline: Vec<String>,
    status: String,
    parent: Option<u32>,
    uid: Option<u32>,
    start_time: String,
    run_time_seconds: u64,
    rss_bytes: u64,
    virtual_bytes: u64,
    threads: Option<usize>,
    open_files: Option<usize>,
    open_files_limit: Option<usize>,
}

pub async fn collect(ctx: &Context, out: &Output) -> Result<Outcome, CollectError> {
    let address = ctx.containerd.address().to_path_buf();
    let owner = tokio::task::spawn_blocking(move || host::socket_owner(&address))
        .await
        .expect("scanning /proc does not panic")
        .map_err(|source| CollectError::Host {
            what: "the kernel's unix socket table".into(),
            source,
        })?;
    let found = match owner {
        Some(pid) => Some((pid, "listening socket")),
        None => tokio::task::spawn_blocking(only_containerd)
            .await
            .expect("listing processes does not panic")
            .map(|pid| (pid, "process name")),
    };
    let Some((pid, found_by)) = found else {
        return Ok(Outcome::Skipped(format!(
            "no process is listening on {} and no single process is named containerd",
            ctx.containerd.address().display()
        )));
    };

    let info = tokio::task::spawn_blocking(move || read(pid, found_by))
        .await
        .expect("reading a process does not panic");
    match info {
        Some(info) => {
            out.put_json(&info).await?;
            Ok(Outcome::Done)
        }
        None => Ok(Outcome::Skipped(format!(
            "process {pid} exited while being read"
        ))),
    }
}

/// The pid of the one process named `containerd`, if there is exactly one.
fn only_containerd() -> Option<u32> {
    let mut system = System::new();
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
    // Threads are listed as processes too; only the process itself counts.
    let mut named = system
        .processes_by_exact_name("containerd".as_ref())
        .filter(|p| p.thread_kind().is_none());
    let first = named.next()?;
    named.next().is_none().then(|| first.pid().as_u32())
}

fn read(pid: u32, found_by: &'static str) -> Option<ProcessInfo> {
    let mut system = System::new();
    let pids = [Pid::from_u32(pid)];
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        true,
        ProcessRefreshKind::everything(),
    );
    let process = system.process(pids[0])?;
    Some(ProcessInfo {
        pid,
        found_by,
        name: process.name().to_string_lossy().into_owned(),
        exe: process.exe().map(|p| p.display().to_string()),
        cmdline: process
            .cmd()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect(),
        status: process.status().to_string(),
        parent: process.parent().map(|p| p.as_u32()),
        uid: host::process_uid(pid),
        start_time: super::epoch_rfc3339(process.start_time()),
        run_time_seconds: process.run_time(),
        rss_bytes: process.memory(),
        virtual_bytes: process.virtual_memory(),
        threads: process.tasks().map(|tasks| tasks.len()),
        open_files: process.open_files().or_else(|| host::open_fds(pid)),
        open_files_limit: process.open_files_limit(),
    })
}
