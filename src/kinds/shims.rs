//! `shims`: each task's shim as the shim itself reports it.
//!
//! containerd keeps one bundle directory per task under its state dir; it
//! names the shim's socket (`bootstrap.json` on 2.x, `address` on 1.x), the
//! pids and the OCI spec. This kind reads those files and then asks each
//! shim directly over ttrpc (Connect, State, Pids), never containerd, so it
//! answers when the daemon hangs or is down: that is when shims matter most.
//!
//! A runc shim answers `Pids` by running `runc ps`, one process per task,
//! which reads the container's cgroup. By default (`pids = "cgroup"`) the
//! kind reads that cgroup itself, from the `cgroupsPath` of the task's spec,
//! and asks the shim only when the cgroup cannot be read; a node with
//! hundreds of tasks is spared hundreds of runc runs, and the pids are there
//! even when the shim is gone. `pids = "shim"` asks every shim.
//! The shim processes are read from the kernel, and shim processes of this
//! daemon without a task dir, and shim sockets nobody serves, are listed so
//! the analyzer can point at leftovers.
//!
//! The namespace travels as `containerd-namespace-ttrpc` metadata, as
//! containerd sends it; the runc shims of 1.6 to 2.1 answer these three
//! calls without it too, but other shims may not. `--namespace` limits the
//! task dirs and orphans looked at.
//!
//! One record per task dir goes to `shims.json` first (analyzers find it
//! there), then each task's OCI spec, environment values redacted, to
//! `<ns>/<id>/config.json`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{CollectError, Context, Outcome, rfc3339};
use crate::bundle::Output;
use crate::bundle::redact::redact_oci_spec;
use crate::proto::shim::task::{
    ConnectRequest, ConnectResponse, PidsRequest, PidsResponse, StateRequest, StateResponse,
    TaskStatus,
};
use crate::source::state::{self, DirEntry, StateDir, TaskDir};
use crate::source::ttrpc::{self, Client};
use crate::source::{cgroup, error_chain, host};

/// The task API of containerd 2.x shims.
pub const TASK_V3: &str = "containerd.task.v3.Task";
/// The task API of containerd 1.x shims.
pub const TASK_V2: &str = "containerd.task.v2.Task";
/// The metadata key that carries the namespace over ttrpc.
const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";
/// Where shims put their sockets.
const SOCKET_DIR: &str = "/run/containerd/s";
/// How many shims are asked at once.
const PARALLEL_SHIMS: usize = 8;
/// The share of the spec's timeout spent asking shims; the rest is for
/// reading processes and writing the files.
const BUDGET_SHARE: f32 = 0.6;

/// The kind's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Deadline for each ttrpc call to a shim, e.g. "2s".
    #[serde(
        default = "default_call_timeout",
        deserialize_with = "super::duration_param"
    )]
    pub call_timeout: Duration,
    /// Where each task's pids come from.
    #[serde(default)]
    pub pids: PidsFrom,
}

/// Where the shims kind takes a task's pids from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PidsFrom {
    /// The task's cgroup; the shim's `Pids` when the cgroup cannot be read.
    #[default]
    Cgroup,
    /// Always the shim's `Pids` (the shim runs `runc ps` for each).
    Shim,
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(2)
}

/// What `shims.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimsReport {
    pub state_dir: String,
    /// How the state dir was found: `--state-dir`, the daemon's flags or
    /// config, or the default.
    pub state_dir_found_by: String,
    /// containerd's address, as shims of this daemon carry it in `-address`.
    pub daemon_address: String,
    /// Whether environment values in specs were redacted.
    pub redacted: bool,
    pub tasks: Vec<ShimTask>,
    /// Shim processes of this daemon whose task has no task dir.
    pub orphans: Vec<ShimProcess>,
    /// Shim sockets that no process serves and no task dir names.
    pub stale_sockets: Vec<String>,
}

/// One task dir and what its shim says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimTask {
    pub namespace: String,
    pub id: String,
    /// The task dir on the host.
    pub dir: String,
    pub entries: Vec<DirEntry>,
    /// `bootstrap.json` as written (2.x).
    pub bootstrap: Option<serde_json::Value>,
    /// The shim's address, from `bootstrap.json` or `address`.
    pub address: Option<String>,
    /// The file the address was read from.
    pub address_file: Option<String>,
    pub init_pid: Option<u32>,
    /// The shim's own pid file, when the shim writes one.
    pub shim_pid_file: Option<u32>,
    pub shim_binary_path: Option<String>,
    /// The bundle path of the task's OCI spec.
    pub config: Option<String>,
    /// How many environment values of the spec were redacted.
    pub env_redacted: usize,
    /// Files of the task dir that could not be read, with the reason.
    pub file_errors: Vec<String>,
    pub socket: Option<SocketState>,
    /// The task service that answered (v3 or v2).
    pub api: Option<String>,
    pub connect: Call<ConnectInfo>,
    pub state: Call<StateInfo>,
    pub pids: Call<Vec<PidInfo>>,
    /// `cgroup` (read from `cgroup.procs`) or `shim` (its `Pids` answer).
    pub pids_from: Option<String>,
    /// The cgroup the task's spec asks for, when it is a cgroupfs path.
    pub cgroups_path: Option<String>,
    /// The shim process, when one was found.
    pub process: Option<ShimProcess>,
    /// How the shim process was found: `Connect` or `command line`.
    pub process_found_by: Option<String>,
}

/// The shim's socket file as seen on disk and in the kernel's socket table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketState {
    pub path: String,
    pub exists: bool,
    /// Whether a process listens on it.
    pub listening: bool,
}

/// The outcome of one call to a shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call<T> {
    Ok(T),
    /// The call failed; the error chain.
    Error(String),
    /// The call was not made; why.
    Skipped(String),
}

impl<T> Call<T> {
    /// The answer, if the call succeeded.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Call::Ok(value) => Some(value),
            _ => None,
        }
    }
}

/// `Connect`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectInfo {
    pub shim_pid: u32,
    pub task_pid: u32,
    pub version: String,
}

/// `State`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateInfo {
    pub id: String,
    pub bundle: String,
    pub pid: u32,
    /// RUNNING, STOPPED, ... as containerd names them.
    pub status: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub exit_status: u32,
    pub exited_at: Option<String>,
    pub exec_id: String,
}

/// One process of `Pids`' answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PidInfo {
    pub pid: u32,
    /// The type of the runtime-specific info attached, if any.
    pub info_type: Option<String>,
}

/// A shim process as the kernel sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimProcess {
    pub pid: u32,
    pub cmdline: Vec<String>,
    /// Its `-namespace`, `-id` and `-address` arguments.
    pub namespace: Option<String>,
    pub id: Option<String>,
    pub address: Option<String>,
    pub parent: Option<u32>,
    pub status: String,
    pub start_time: String,
    pub run_time_seconds: u64,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: Option<usize>,
    pub open_files: Option<usize>,
}

/// Checks the `params` table of a `shims` spec.
pub fn check_params(params: &toml::Table) -> Result<(), String> {
    super::decode_params::<Params>(params).map(|_| ())
}

/// Reads every task dir, asks each shim, and writes the records and specs.
pub async fn collect(
    ctx: &Context,
    params: &toml::Table,
    spec_timeout: Duration,
    out: &Output,
) -> Result<Outcome, CollectError> {
    let params: Params = super::decode_params(params).unwrap_or(Params {
        call_timeout: default_call_timeout(),
        pids: PidsFrom::default(),
    });
    let pids_from = params.pids;
    // Asking ends with time left to read the shim processes and write.
    let budget = super::asking_ends(ctx, spec_timeout, BUDGET_SHARE);
    let address = ctx.containerd.address().to_path_buf();
    let flag = ctx.state_dir.clone();
    let redact = ctx.redact;
    let namespaces = ctx.namespaces.clone();
    let wanted = move |ns: &str| namespaces.is_empty() || namespaces.iter().any(|n| n == ns);
    let keep = wanted.clone();

    // Files and processes first: all of it is blocking reads.
    let (located, read) = tokio::task::spawn_blocking(move || {
        let located = state::locate(flag.as_deref(), &address);
        let read = state::task_dirs(&located.path).map(|dirs| {
            dirs.into_iter()
                .filter(|dir| keep(&dir.namespace))
                .map(|dir| read_task(dir, redact, pids_from))
                .collect::<Vec<_>>()
        });
        (located, read)
    })
    .await
    .expect("reading task dirs does not panic");
    let read = read.map_err(|source| CollectError::Host {
        what: format!("task dirs under {}", located.path.display()),
        source,
    })?;

    // Then every shim, a few at a time, each call under its own deadline.
    let limit = Arc::new(Semaphore::new(PARALLEL_SHIMS));
    let mut probes = JoinSet::new();
    for (index, (task, _)) in read.iter().enumerate() {
        let (ns, id) = (task.namespace.clone(), task.id.clone());
        let address = task.address.clone();
        let api = api_hint(task.bootstrap.as_ref());
        let ask_pids = task.pids_from.is_none();
        let limit = limit.clone();
        let timeout = params.call_timeout;
        probes.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (
                index,
                probe(&ns, &id, address.as_deref(), api, ask_pids, timeout).await,
            )
        });
    }
    let mut tasks: Vec<ShimTask> = Vec::with_capacity(read.len());
    let mut configs = Vec::with_capacity(read.len());
    for (task, config) in read {
        tasks.push(task);
        configs.push(config);
    }
    // Shims not asked by the end of the budget are recorded as such, so
    // what was learnt is written before the engine's deadline.
    let mut answered = vec![false; tasks.len()];
    while let Ok(Some(joined)) = tokio::time::timeout_at(budget, probes.join_next()).await {
        let (index, probe) = joined.expect("a shim probe does not panic");
        let task = &mut tasks[index];
        task.api = probe.api;
        task.connect = probe.connect;
        task.state = probe.state;
        if task.pids_from.is_none() {
            task.pids_from = probe.pids.ok().map(|_| "shim".to_string());
            task.pids = probe.pids;
        }
        answered[index] = true;
    }
    probes.abort_all();
    let unasked = answered.iter().filter(|done| !**done).count();
    for (task, _) in tasks.iter_mut().zip(&answered).filter(|(_, done)| !**done) {
        let reason = || "not asked: the collector's time ran out".to_string();
        if task.address.is_some() {
            task.connect = Call::Skipped(reason());
            task.state = Call::Skipped(reason());
            if task.pids_from.is_none() {
                task.pids = Call::Skipped(reason());
            }
        }
    }

    let daemon_address = ctx.containerd.address().display().to_string();
    let report = tokio::task::spawn_blocking(move || {
        finish(located, daemon_address, redact, tasks, &wanted)
    })
    .await
    .expect("reading shim processes does not panic");

    out.put_in("shims.json", json_bytes(&report)).await?;
    for (task, config) in report.tasks.iter().zip(configs) {
        if let Some(data) = config {
            out.put_in(&format!("{}/{}/config.json", task.namespace, task.id), data)
                .await?;
        }
    }
    if unasked > 0 {
        return Ok(Outcome::Skipped(format!(
            "{unasked} of {} shims were not asked before the collector's time ran out; \
             raise its timeout or lower params.call_timeout",
            report.tasks.len()
        )));
    }
    Ok(Outcome::Done)
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut data = serde_json::to_vec_pretty(value).expect("shim records encode as JSON");
    data.push(b'\n');
    data
}

/// The task API version named by `bootstrap.json`, if any.
fn api_hint(bootstrap: Option<&serde_json::Value>) -> Option<u64> {
    bootstrap?.get("version")?.as_u64()
}

/// Reads a task dir's files, and the task's cgroup when pids come from
/// there; returns the record (calls not made yet) and the spec to write,
/// redacted unless asked not to.
fn read_task(dir: TaskDir, redact: bool, pids_from: PidsFrom) -> (ShimTask, Option<Vec<u8>>) {
    let mut errors = Vec::new();
    let mut file = |name: &str| -> Option<Vec<u8>> {
        match state::read_small_file(&dir.path.join(name)) {
            Ok(data) => data,
            Err(err) => {
                errors.push(format!("{name}: {err}"));
                None
            }
        }
    };
    let text = |data: Vec<u8>| String::from_utf8_lossy(&data).trim().to_string();

    let bootstrap_raw = file("bootstrap.json");
    let address_raw = file("address");
    let init_pid = file("init.pid").and_then(|d| text(d).parse().ok());
    let shim_pid_file = file("shim.pid").and_then(|d| text(d).parse().ok());
    let shim_binary_path = file("shim-binary-path").map(text);
    let config_raw = file("config.json");

    let bootstrap: Option<serde_json::Value> =
        bootstrap_raw.and_then(|data| match serde_json::from_slice(&data) {
            Ok(value) => Some(value),
            Err(err) => {
                errors.push(format!("bootstrap.json: {err}"));
                None
            }
        });
    let (address, address_file) = match (&bootstrap, address_raw) {
        (Some(boot), _) if boot.get("address").is_some() => (
            boot["address"].as_str().map(str::to_string),
            Some("bootstrap.json".to_string()),
        ),
        (_, Some(data)) => (Some(text(data)), Some("address".to_string())),
        _ => (None, None),
    };

    let spec = config_raw
        .as_deref()
        .map(serde_json::from_slice::<serde_json::Value>);
    let cgroups_path = match &spec {
        Some(Ok(spec)) => cgroup::spec_path(spec),
        _ => None,
    };
    let mut env_redacted = 0;
    let config = match (config_raw, spec) {
        (Some(data), _) if !redact => Some(data),
        (_, Some(Ok(mut spec))) => {
            env_redacted = redact_oci_spec(&mut spec);
            Some(json_bytes(&spec))
        }
        (_, Some(Err(err))) => {
            // Unparsed, the environment cannot be told apart: keep none of it.
            errors.push(format!("config.json: not written, cannot redact it: {err}"));
            None
        }
        (_, None) => None,
    };
    let cgroup_pids = cgroups_path
        .as_deref()
        .filter(|_| pids_from == PidsFrom::Cgroup)
        .and_then(cgroup::procs);
    let entries = state::list_entries(&dir.path).unwrap_or_else(|err| {
        errors.push(format!("listing: {err}"));
        Vec::new()
    });

    let task = ShimTask {
        config: config
            .as_ref()
            .map(|_| format!("{}/{}/config.json", dir.namespace, dir.id)),
        namespace: dir.namespace,
        id: dir.id,
        dir: dir.path.display().to_string(),
        entries,
        bootstrap,
        address,
        address_file,
        init_pid,
        shim_pid_file,
        shim_binary_path,
        env_redacted,
        file_errors: errors,
        socket: None,
        api: None,
        connect: no_address(),
        state: no_address(),
        pids_from: cgroup_pids.as_ref().map(|_| "cgroup".to_string()),
        pids: match cgroup_pids {
            Some(pids) => Call::Ok(
                pids.into_iter()
                    .map(|pid| PidInfo {
                        pid,
                        info_type: None,
                    })
                    .collect(),
            ),
            None => no_address(),
        },
        cgroups_path,
        process: None,
        process_found_by: None,
    };
    (task, config)
}

fn no_address<T>() -> Call<T> {
    Call::Skipped("no address in the task dir".to_string())
}

/// What one shim answered.
struct Probe {
    api: Option<String>,
    connect: Call<ConnectInfo>,
    state: Call<StateInfo>,
    pids: Call<Vec<PidInfo>>,
}

/// Asks the shim at `address` about task `id`: Connect (which also picks
/// the task API), then State, then Pids when `ask_pids`.
async fn probe(
    ns: &str,
    id: &str,
    address: Option<&str>,
    api: Option<u64>,
    ask_pids: bool,
    timeout: Duration,
) -> Probe {
    let failed = |reason: String| Probe {
        api: None,
        connect: Call::Error(reason.clone()),
        state: Call::Skipped(format!("no connection: {reason}")),
        pids: Call::Skipped(format!("no connection: {reason}")),
    };
    let Some(address) = address else {
        return Probe {
            api: None,
            connect: no_address(),
            state: no_address(),
            pids: no_address(),
        };
    };
    let path = match ttrpc::socket_path(address) {
        Ok(path) => path,
        Err(err) => return failed(error_chain(&err)),
    };
    let mut client = match Client::connect(&path, timeout).await {
        Ok(client) => client.with_metadata(NAMESPACE_KEY, ns),
        Err(err) => return failed(error_chain(&err)),
    };

    let services: &[&str] = match api {
        Some(3) => &[TASK_V3],
        Some(2) => &[TASK_V2],
        _ => &[TASK_V3, TASK_V2],
    };
    let request = ConnectRequest { id: id.to_string() };
    let mut service = services[0];
    let mut connect = None;
    for candidate in services {
        service = candidate;
        let answer = client
            .call::<_, ConnectResponse>(candidate, "Connect", &request, timeout)
            .await;
        match answer {
            Err(err) if err.is_unimplemented() => connect = Some(Err(err)),
            other => {
                connect = Some(other);
                break;
            }
        }
    }
    let connect = match connect.expect("at least one service is tried") {
        Ok(answer) => Call::Ok(ConnectInfo {
            shim_pid: answer.shim_pid,
            task_pid: answer.task_pid,
            version: answer.version,
        }),
        Err(err) if err.is_unimplemented() => {
            let reason = format!("no task API the shim knows: {}", error_chain(&err));
            return Probe {
                state: Call::Skipped(reason.clone()),
                pids: Call::Skipped(reason.clone()),
                ..failed(reason)
            };
        }
        Err(err) => Call::Error(error_chain(&err)),
    };

    let request = StateRequest {
        id: id.to_string(),
        exec_id: String::new(),
    };
    let state = match client
        .call::<_, StateResponse>(service, "State", &request, timeout)
        .await
    {
        Ok(answer) => Call::Ok(state_info(answer)),
        Err(err) => Call::Error(error_chain(&err)),
    };
    let request = PidsRequest { id: id.to_string() };
    let pids = if !ask_pids {
        Call::Skipped("read from the task's cgroup".to_string())
    } else {
        match client
            .call::<_, PidsResponse>(service, "Pids", &request, timeout)
            .await
        {
            Ok(answer) => Call::Ok(
                answer
                    .processes
                    .into_iter()
                    .map(|p| PidInfo {
                        pid: p.pid,
                        info_type: p.info.map(|any| any.type_url),
                    })
                    .collect(),
            ),
            Err(err) => Call::Error(error_chain(&err)),
        }
    };
    let answered = connect.ok().is_some() || state.ok().is_some();
    Probe {
        api: answered.then(|| service.to_string()),
        connect,
        state,
        pids,
    }
}

fn state_info(answer: StateResponse) -> StateInfo {
    let status = TaskStatus::try_from(answer.status)
        .map(|status| status.as_str_name().to_string())
        .unwrap_or_else(|_| format!("status {}", answer.status));
    StateInfo {
        id: answer.id,
        bundle: answer.bundle,
        pid: answer.pid,
        status,
        stdin: answer.stdin,
        stdout: answer.stdout,
        stderr: answer.stderr,
        terminal: answer.terminal,
        exit_status: answer.exit_status,
        exited_at: answer.exited_at.as_ref().map(rfc3339),
        exec_id: answer.exec_id,
    }
}

/// Adds sockets and processes to the task records, and finds orphan shims
/// and stale sockets.
fn finish(
    located: StateDir,
    daemon_address: String,
    redacted: bool,
    mut tasks: Vec<ShimTask>,
    wanted: &dyn Fn(&str) -> bool,
) -> ShimsReport {
    let listening = host::listening_unix_paths().unwrap_or_default();
    let shims = shim_processes();
    let by_pid: HashMap<u32, &ShimProcess> = shims.iter().map(|p| (p.pid, p)).collect();
    let by_task: HashMap<(&str, &str), &ShimProcess> = shims
        .iter()
        .filter(|p| p.address.as_deref() == Some(daemon_address.as_str()))
        .filter_map(|p| Some(((p.namespace.as_deref()?, p.id.as_deref()?), p)))
        .collect();

    let mut claimed = HashSet::new();
    let mut socket_dirs: BTreeSet<PathBuf> = BTreeSet::from([PathBuf::from(SOCKET_DIR)]);
    let mut task_sockets = HashSet::new();
    for task in &mut tasks {
        if let Some(path) = task
            .address
            .as_deref()
            .and_then(|a| ttrpc::socket_path(a).ok())
        {
            let text = path.display().to_string();
            task.socket = Some(SocketState {
                exists: path.exists(),
                listening: listening.contains(&text),
                path: text.clone(),
            });
            if let Some(parent) = path.parent() {
                socket_dirs.insert(parent.to_path_buf());
            }
            task_sockets.insert(text);
        }
        let from_connect = task
            .connect
            .ok()
            .and_then(|c| by_pid.get(&c.shim_pid))
            .map(|p| (*p, "Connect"));
        let from_args = by_task
            .get(&(task.namespace.as_str(), task.id.as_str()))
            .map(|p| (*p, "command line"));
        if let Some((process, how)) = from_connect.or(from_args) {
            claimed.insert(process.pid);
            task.process = Some(process.clone());
            task.process_found_by = Some(how.to_string());
        }
    }

    let orphans = shims
        .iter()
        .filter(|p| p.address.as_deref() == Some(daemon_address.as_str()))
        .filter(|p| p.namespace.as_deref().is_none_or(wanted))
        .filter(|p| !claimed.contains(&p.pid))
        .cloned()
        .collect();
    let stale_sockets = socket_dirs
        .iter()
        .flat_map(|dir| stale_sockets_in(dir, &listening))
        .filter(|path| !task_sockets.contains(path))
        .collect();
    ShimsReport {
        state_dir: located.path.display().to_string(),
        state_dir_found_by: located.found_by,
        daemon_address,
        redacted,
        tasks,
        orphans,
        stale_sockets,
    }
}

/// Sockets in `dir` no process listens on.
fn stale_sockets_in(dir: &Path, listening: &HashSet<String>) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_socket()))
        .map(|entry| entry.path().display().to_string())
        .filter(|path| !listening.contains(path))
        .collect();
    stale.sort();
    stale
}

/// Every shim process on the host (any daemon's), with its arguments.
fn shim_processes() -> Vec<ShimProcess> {
    let mut system = System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always),
    );
    let pids: Vec<Pid> = system
        .processes()
        .values()
        .filter(|p| p.thread_kind().is_none())
        .filter(|p| {
            p.cmd().first().is_some_and(|bin| {
                Path::new(bin)
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("containerd-shim"))
            })
        })
        .map(|p| p.pid())
        .collect();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        true,
        ProcessRefreshKind::everything(),
    );
    let mut shims: Vec<ShimProcess> = pids
        .iter()
        .filter_map(|pid| system.process(*pid))
        .map(|p| {
            let cmdline: Vec<String> = p
                .cmd()
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect();
            let arg = |name: &str| {
                cmdline
                    .iter()
                    .position(|a| a == name || a == &format!("-{name}"))
                    .and_then(|i| cmdline.get(i + 1).cloned())
            };
            let pid = p.pid().as_u32();
            ShimProcess {
                pid,
                namespace: arg("-namespace"),
                id: arg("-id"),
                address: arg("-address"),
                cmdline,
                parent: p.parent().map(|p| p.as_u32()),
                status: p.status().to_string(),
                start_time: super::epoch_rfc3339(p.start_time()),
                run_time_seconds: p.run_time(),
                rss_bytes: p.memory(),
                virtual_bytes: p.virtual_memory(),
                threads: p.tasks().map(|tasks| tasks.len()),
                open_files: p.open_files().or_else(|| host::open_fds(pid)),
            }
        })
        .collect();
    shims.sort_by_key(|p| p.pid);
    shims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> Result<Params, String> {
        super::super::decode_params(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn pids_source_defaults_to_the_cgroup_and_names_a_wrong_value() {
        assert_eq!(params("").unwrap().pids, PidsFrom::Cgroup);
        assert_eq!(params("pids = \"shim\"").unwrap().pids, PidsFrom::Shim);
        let err = params("pids = \"runc\"").unwrap_err();
        assert!(err.contains("runc") && err.contains("cgroup"), "{err}");
        assert!(check_params(&"pid = \"shim\"".parse().unwrap()).is_err());
    }
}
