//! The test bed: real containerd daemons of three series, each in a temp dir of its own.
//!
//! `tests/bed/install` puts containerd 1.6 (bookworm), 1.7 (trixie) and 2.1 (sid) side by
//! side under the test bed directory, with a one-layer busybox OCI archive. A [`Daemon`]
//! boots one of them with its own root, state, sockets and temp dir, so several run at once
//! in parallel test threads, and tears everything down when dropped, also when the test
//! panics: tasks, containers, shims, the daemon itself and any mount left under its dir.
//!
//! Every child process runs under a deadline, so a test against a frozen or broken daemon
//! fails instead of hanging.
#![allow(dead_code)]

#[cfg(test)]
pub mod bundle;

use std::collections::{BTreeSet, HashSet};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The image built by `tests/bed/install`, as `ctr images import` names it.
pub const IMAGE: &str = "docker.io/library/busybox:rctr-test";

/// How long a daemon may take to answer `ctr version` after it was spawned.
const BOOT_DEADLINE: Duration = Duration::from_secs(20);
/// How long any `ctr` call of a test may take.
const CTR_DEADLINE: Duration = Duration::from_secs(30);
/// How long one `ctr` call of the teardown may take.
const CLEANUP_CTR_DEADLINE: Duration = Duration::from_secs(10);
/// How long a daemon gets to exit after SIGTERM before it gets SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// How many `ctr tasks rm` run at once in a teardown.
const CLEANUP_PARALLELISM: usize = 4;

/// Returns the test bed directory, and panics when `tests/bed/install` has not filled it.
pub fn testbed_dir() -> PathBuf {
    let dir = std::env::var_os("RCTR_TESTBED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testbed"));
    if !dir.join(".installed").is_file() {
        panic!(
            "no containerd test bed at {}: run tests/bed/install (as root) first, \
             or set RCTR_TESTBED to an installed one",
            dir.display()
        );
    }
    dir
}

/// Returns an id no other test of any concurrent test process uses (container ids end up
/// in cgroup paths and runc state, which all daemons share).
pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// One containerd release series of the test bed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Series {
    V1_6,
    V1_7,
    V2_1,
}

impl Series {
    pub const ALL: [Series; 3] = [Series::V1_6, Series::V1_7, Series::V2_1];

    /// Names the series' folder under the test bed directory.
    pub fn dir_name(&self) -> &'static str {
        match self {
            Series::V1_6 => "containerd-1.6",
            Series::V1_7 => "containerd-1.7",
            Series::V2_1 => "containerd-2.1",
        }
    }

    /// Returns what the daemon's version string starts with, e.g. `"1.6."`.
    pub fn version_prefix(&self) -> &'static str {
        match self {
            Series::V1_6 => "1.6.",
            Series::V1_7 => "1.7.",
            Series::V2_1 => "2.1.",
        }
    }

    /// Returns the path of one of the series' binaries (`containerd`, `ctr`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir().join(name)
    }

    fn bin_dir(&self) -> PathBuf {
        testbed_dir().join(self.dir_name()).join("usr/bin")
    }
}

/// What a [`Daemon`] is configured with beyond its private paths.
#[derive(Default, Clone, Debug)]
pub struct DaemonOptions {
    /// Serves pprof and expvar on `Daemon::debug_address`; on in [`DaemonOptions::new`].
    pub debug_socket: bool,
    /// Loads the CRI plugin (its stream server on a random loopback port).
    pub cri: bool,
    /// TOML appended verbatim to the generated config; start it with a table header.
    pub extra_config: String,
    /// Puts the daemon's root (content store, snapshots) on a tmpfs of this many bytes,
    /// so a test can fill the filesystem that holds it.
    pub root_tmpfs_bytes: Option<u64>,
}

impl DaemonOptions {
    /// Returns the usual options: debug socket on, CRI off.
    pub fn new() -> Self {
        DaemonOptions {
            debug_socket: true,
            cri: false,
            extra_config: String::new(),
            root_tmpfs_bytes: None,
        }
    }

    /// Returns options whose CRI registry settings raise deprecation warnings: on 1.7.24
    /// and 2.1.9 `cri-registry-mirrors` and `cri-registry-configs` (1.6.20 only logs them).
    pub fn deprecated_registry() -> Self {
        DaemonOptions {
            cri: true,
            extra_config: r#"
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["https://mirror.rctr-test.invalid"]

[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.rctr-test.invalid".auth]
  username = "rctr"
  password = "rctr-test-secret"
"#
            .to_string(),
            ..DaemonOptions::new()
        }
    }
}

/// A running containerd with everything of its own under `dir`; dropping it tears it down.
pub struct Daemon {
    pub series: Series,
    pub options: DaemonOptions,
    /// The temp dir that holds everything below.
    pub dir: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// The debug socket; it exists only with `options.debug_socket`.
    pub debug_address: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    /// The daemon's TMPDIR: SIGUSR1 stack dumps land here.
    pub tmp: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub pid: u32,
    /// How long the daemon took from spawn to its first answer to `ctr version`.
    pub boot_time: Duration,
    child: Mutex<Child>,
    tempdir: Option<tempfile::TempDir>,
    ready: bool,
    frozen: AtomicBool,
    imported: Mutex<HashSet<String>>,
    /// Namespace and id of every shim the daemon was asked to start, for
    /// removing the sockets they leave behind.
    shim_ids: Mutex<HashSet<(String, String)>>,
}

impl Daemon {
    /// Starts a daemon of `series` with [`DaemonOptions::new`].
    pub fn start(series: Series) -> Daemon {
        Daemon::start_with(series, &DaemonOptions::new())
    }

    /// Starts a daemon of `series` and waits until it answers; panics with its log if not.
    pub fn start_with(series: Series, options: &DaemonOptions) -> Daemon {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            panic!("the containerd test bed needs root (mounts, cgroups, runc)");
        }
        let bin_dir = series.bin_dir();
        let tempdir = tempfile::Builder::new()
            .prefix("rctr-bed-")
            .tempdir()
            .expect("create the daemon's temp dir");
        let dir = tempdir.path().to_path_buf();
        let address = dir.join("containerd.sock");
        // sockaddr_un holds 108 bytes; the ttrpc socket adds ".ttrpc".
        assert!(
            address.as_os_str().len() < 100,
            "socket path {} is too long: set TMPDIR to a shorter dir",
            address.display()
        );

        let tmp = dir.join("tmp");
        fs::create_dir(&tmp).expect("create the daemon's tmp dir");
        let config_path = dir.join("config.toml");
        let log_path = dir.join("containerd.log");
        fs::write(&config_path, config_toml(&dir, options)).expect("write containerd config");
        let log = fs::File::create(&log_path).expect("create containerd.log");
        if let Some(bytes) = options.root_tmpfs_bytes {
            mount_tmpfs(&dir.join("root"), bytes);
        }

        let started = Instant::now();
        let spawned = Command::new(bin_dir.join("containerd"))
            .arg("--config")
            .arg(&config_path)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir.display()),
            )
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup containerd.log"))
            .stderr(log)
            .spawn();
        let child = spawned.unwrap_or_else(|e| {
            unmount_under(&dir);
            panic!("spawn {}: {e}", bin_dir.join("containerd").display())
        });

        let mut daemon = Daemon {
            series,
            options: options.clone(),
            address,
            debug_address: dir.join("debug.sock"),
            root: dir.join("root"),
            state: dir.join("state"),
            tmp,
            config_path,
            log_path,
            pid: child.id(),
            boot_time: Duration::ZERO,
            child: Mutex::new(child),
            tempdir: Some(tempdir),
            ready: false,
            frozen: AtomicBool::new(false),
            imported: Mutex::new(HashSet::new()),
            shim_ids: Mutex::new(HashSet::new()),
            dir,
        };

        // A panic below drops `daemon`, which stops the process and removes its dir.
        while !daemon.answers() {
            if let Some(status) = daemon.child.lock().unwrap().try_wait().unwrap() {
                panic!(
                    "containerd {:?} exited during boot ({status}); end of its log:\n{}",
                    series,
                    daemon.log_tail(40)
                );
            }
            if started.elapsed() > BOOT_DEADLINE {
                panic!(
                    "containerd {:?} did not answer `ctr version` within {:?}; end of its log:\n{}",
                    series,
                    BOOT_DEADLINE,
                    daemon.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        daemon.boot_time = started.elapsed();
        daemon.ready = true;
        daemon
    }

    /// Tells whether the daemon answers `ctr version` (server part included).
    fn answers(&self) -> bool {
        // ctr waits up to its connect timeout for a socket that is not there yet.
        if !self.address.exists() {
            return false;
        }
        let answer = self.ctr_timeout(&["version"], Duration::from_secs(5));
        answer.is_ok_and(|o| o.status.success())
    }

    /// Returns the last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read(&self.log_path).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Returns a `ctr` command of this series aimed at this daemon, without arguments yet.
    pub fn ctr_command(&self) -> Command {
        let mut cmd = Command::new(self.series.bin("ctr"));
        cmd.env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_ADDRESS")
            .arg("-a")
            .arg(&self.address);
        cmd
    }

    /// Runs `ctr -a <address> ARGS` under `timeout`; Err says it timed out or did not start.
    pub fn ctr_timeout(&self, args: &[&str], timeout: Duration) -> Result<Output, String> {
        let mut cmd = self.ctr_command();
        cmd.args(args);
        output_within(cmd, timeout)
    }

    /// Runs `ctr -a <address> ARGS`; panics when it takes longer than 30 s.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_timeout(args, CTR_DEADLINE)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `ctr -a <address> ARGS` and returns its stdout; panics unless it succeeds.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        checked(args, self.ctr(args))
    }

    /// Runs `ctr -a <address> -n NAMESPACE ARGS`.
    pub fn ctr_ns(&self, namespace: &str, args: &[&str]) -> Output {
        self.ctr(&with_namespace(namespace, args))
    }

    /// Runs `ctr -a <address> -n NAMESPACE ARGS` and returns its stdout; panics on failure.
    pub fn ctr_ns_ok(&self, namespace: &str, args: &[&str]) -> String {
        self.ctr_ok(&with_namespace(namespace, args))
    }

    /// Imports the test bed's busybox image as [`IMAGE`] into `namespace` (unpacked).
    pub fn import_image(&self, namespace: &str) {
        let archive = testbed_dir().join("images/busybox.tar");
        let archive = archive.to_str().expect("test bed path is UTF-8");
        self.ctr_ns_ok(namespace, &["images", "import", archive]);
        self.imported.lock().unwrap().insert(namespace.to_string());
    }

    /// Starts a detached container of [`IMAGE`] running `args`, importing the image first
    /// when this daemon has not yet; its output goes to [`Daemon::container_log`].
    pub fn run_container(&self, namespace: &str, id: &str, args: &[&str]) {
        self.run_container_with(namespace, id, &[], args);
    }

    /// Like [`Daemon::run_container`], with extra `ctr run` flags (e.g. `--label K=V`).
    pub fn run_container_with(&self, namespace: &str, id: &str, flags: &[&str], args: &[&str]) {
        if !self.imported.lock().unwrap().contains(namespace) {
            self.import_image(namespace);
        }
        let log = self.container_log(namespace, id);
        fs::create_dir_all(log.parent().unwrap()).expect("create container log dir");
        let log_uri = format!("file://{}", log.display());
        let mut run = vec!["run", "-d", "--log-uri", &log_uri];
        run.extend_from_slice(flags);
        run.extend_from_slice(&[IMAGE, id]);
        run.extend_from_slice(args);
        let shim = flags
            .iter()
            .find_map(|flag| flag.strip_prefix(GROUP_LABEL))
            .unwrap_or(id);
        self.shim_ids
            .lock()
            .unwrap()
            .insert((namespace.to_string(), shim.to_string()));
        self.ctr_ns_ok(namespace, &run);
    }

    /// Returns the file a container started by [`Daemon::run_container`] writes its output to.
    pub fn container_log(&self, namespace: &str, id: &str) -> PathBuf {
        self.dir
            .join("logs")
            .join(namespace)
            .join(format!("{id}.log"))
    }

    /// Stops the daemon with SIGSTOP, as a hung containerd would look; shims keep running.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Resumes a daemon stopped by [`Daemon::freeze`].
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// Kills the daemon with SIGKILL and reaps it, as a crashed containerd; its shims and
    /// containers keep running until the drop.
    pub fn crash(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Tells whether the daemon process still runs (frozen counts as running).
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    fn signal(&self, signal: libc::c_int) {
        // The pid is only ours while the child is unreaped; after that it may be anyone's.
        if !self.is_running() {
            return;
        }
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
    }

    /// Returns the pids of the live shims serving this daemon.
    pub fn shim_pids(&self) -> Vec<u32> {
        shim_pids_for(&self.address)
    }

    /// The pids `ctr tasks ps` lists for task `id` in `namespace`.
    pub fn ctr_tasks_ps(&self, namespace: &str, id: &str) -> BTreeSet<u64> {
        self.ctr_ns_ok(namespace, &["tasks", "ps", id])
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    }

    /// Returns the pid of the shim started for task `id` (a shim serving a group is
    /// started for the group's first task); panics if there is none.
    pub fn shim_pid_of(&self, id: &str) -> u32 {
        self.shim_pids()
            .into_iter()
            .find(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                cmdline.split(|&b| b == 0).any(|arg| arg == id.as_bytes())
            })
            .unwrap_or_else(|| panic!("no shim for {id}"))
    }

    /// Kills every task and deletes every container, in every namespace. Err says which
    /// `ctr` call failed or hung; what follows it is skipped.
    fn remove_workloads(&self) -> Result<(), String> {
        let ctr = |args: &[&str]| -> Result<String, String> {
            let out = self.ctr_timeout(args, CLEANUP_CTR_DEADLINE)?;
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(format!(
                    "ctr {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };

        for ns in ctr(&["namespaces", "ls", "-q"])?.lines().map(str::trim) {
            if ns.is_empty() {
                continue;
            }
            // `tasks ls` prints ID, PID, STATUS; a paused task must resume to die.
            let listing = ctr(&["-n", ns, "tasks", "ls"])?;
            let tasks: Vec<(&str, &str)> = listing
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 3).then(|| (f[0], f[2]))
                })
                .collect();
            let failures = Mutex::new(Vec::new());
            thread::scope(|s| {
                for worker in 0..CLEANUP_PARALLELISM {
                    let (tasks, failures, ctr) = (&tasks, &failures, &ctr);
                    s.spawn(move || {
                        for (id, status) in tasks.iter().skip(worker).step_by(CLEANUP_PARALLELISM) {
                            if *status == "PAUSED" {
                                let _ = ctr(&["-n", ns, "tasks", "resume", id]);
                            }
                            if let Err(e) = ctr(&["-n", ns, "tasks", "rm", "-f", id]) {
                                failures.lock().unwrap().push(e);
                            }
                        }
                    });
                }
            });
            if let Some(e) = failures.into_inner().unwrap().into_iter().next() {
                return Err(e);
            }

            let containers = ctr(&["-n", ns, "containers", "ls", "-q"])?;
            let ids: Vec<&str> = containers.split_whitespace().collect();
            for chunk in ids.chunks(64) {
                let mut args = vec!["-n", ns, "containers", "rm"];
                args.extend_from_slice(chunk);
                ctr(&args)?;
            }
        }
        Ok(())
    }

    /// Stops the daemon: SIGTERM, then SIGKILL after [`STOP_DEADLINE`]; reaps it.
    fn stop(&self) {
        self.signal(libc::SIGTERM);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "test bed: containerd {} ignored SIGTERM for {STOP_DEADLINE:?}",
            self.pid
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.frozen.load(Ordering::SeqCst) {
            self.thaw();
        }
        // A dead daemon cannot remove anything; its shims are killed below.
        // Shims that die without removing their sockets (killed, or a
        // group's shim whose first container went first) leave them in the
        // shared /run/containerd/s; gather whose they are while that can
        // still be seen.
        let mut shim_ids = std::mem::take(&mut *self.shim_ids.lock().unwrap());
        shim_ids.extend(live_shim_ids(&self.address));
        shim_ids.extend(task_dir_ids(&self.state));
        if self.ready
            && self.is_running()
            && let Err(e) = self.remove_workloads()
        {
            eprintln!(
                "test bed: cleanup of containerd {} incomplete: {e}",
                self.pid
            );
        }
        kill_shims(&self.address);
        delete_runc_leftovers(&self.state);
        self.stop();
        remove_shim_sockets(&self.address, &shim_ids);
        unmount_under(&self.dir);
        if let Some(tempdir) = self.tempdir.take()
            && let Err(e) = tempdir.close()
        {
            eprintln!("test bed: remove {}: {e}", self.dir.display());
        }
    }
}

/// Returns the containerd config for a daemon living in `dir`. Version 2 is read by 1.6,
/// 1.7 and (migrated in memory) 2.x alike.
fn config_toml(dir: &Path, options: &DaemonOptions) -> String {
    let path = |name: &str| toml_string(&dir.join(name).to_string_lossy());
    // NRI (2.x: on by default) would listen on the shared /var/run/nri/nri.sock.
    let mut disabled = vec!["io.containerd.nri.v1.nri"];
    if !options.cri {
        disabled.push("io.containerd.grpc.v1.cri");
    }
    let disabled: Vec<String> = disabled.iter().map(|p| toml_string(p)).collect();

    let mut config = format!(
        "version = 2\n\
         root = {root}\n\
         state = {state}\n\
         temp = {tmp}\n\
         disabled_plugins = [{disabled}]\n\
         \n\
         [grpc]\n  address = {grpc}\n\
         \n\
         [debug]\n  level = \"debug\"\n",
        root = path("root"),
        state = path("state"),
        tmp = path("tmp"),
        disabled = disabled.join(", "),
        grpc = path("containerd.sock"),
    );
    if options.debug_socket {
        config += &format!("  address = {}\n", path("debug.sock"));
    }
    // The opt plugin would otherwise create /opt/containerd.
    config += &format!(
        "\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = {}\n",
        path("opt")
    );
    if options.cri {
        // The stream server listens on 127.0.0.1:10010 unless told otherwise.
        config += "\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  \
                   stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n";
    }
    config += "\n";
    config += &options.extra_config;
    config
}

/// Quotes `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn with_namespace<'a>(namespace: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["-n", namespace];
    all.extend_from_slice(args);
    all
}

/// Returns stdout of a `ctr` run, or panics with its stderr when it failed.
fn checked(args: &[&str], out: Output) -> String {
    if !out.status.success() {
        panic!(
            "ctr {args:?} failed ({}):\nstderr: {}\nstdout: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to completion, collecting its output, or kills it after `timeout`.
pub fn output_within(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {shown}: {e}"))?;

    // Readers drain the pipes so a chatty child never blocks on a full one.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(25));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = (stdout.join(), stderr.join());
                return Err(format!("{shown} timed out after {timeout:?}"));
            }
            Err(e) => return Err(format!("wait for {shown}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// A process the test stopped with SIGSTOP, as a hung shim looks; it resumes when this
/// is dropped, also when the test fails.
pub struct Stopped(u32);

impl Stopped {
    /// Stops `pid`, a process the test started (a shim of its own daemon).
    pub fn stop(pid: u32) -> Stopped {
        // SAFETY: kill has no memory preconditions; the pid is the test's own process.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as in `Stopped::stop`.
        unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGCONT) };
    }
}

/// The label that puts several containers in one shim; its value names the shim.
pub const GROUP_LABEL: &str = "io.containerd.runc.v2.group=";

/// The sockets a shim creates in `/run/containerd/s`: the ttrpc socket and, at debug
/// log level, its debug socket, named by the sha256 of `<address>/<namespace>/<id>` and
/// of the same with `/debug`. The daemon's address is in the name, so no other daemon's
/// shim has these.
fn shim_socket_paths(address: &Path, namespace: &str, id: &str) -> [PathBuf; 2] {
    use sha2::Digest;
    let base = address.join(namespace).join(id);
    [base.clone(), base.join("debug")].map(|path| {
        let digest = sha2::Sha256::digest(path.as_os_str().as_bytes());
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Path::new("/run/containerd/s").join(name)
    })
}

/// Namespace and id of the live shims of the daemon at `address`, from their
/// `-namespace` and `-id` arguments.
fn live_shim_ids(address: &Path) -> Vec<(String, String)> {
    shim_pids_for(address)
        .into_iter()
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let value = |flag: &str| {
                let at = args.iter().position(|a| a == flag)?;
                args.get(at + 1).cloned()
            };
            Some((value("-namespace")?, value("-id")?))
        })
        .collect()
}

/// Namespace and id of every task dir under `state`, and the group each names in its
/// spec's annotations: a killed shim leaves its task dirs behind.
fn task_dir_ids(state: &Path) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    let Ok(namespaces) = fs::read_dir(state.join("io.containerd.runtime.v2.task")) else {
        return ids;
    };
    for ns in namespaces.flatten() {
        let namespace = ns.file_name().to_string_lossy().into_owned();
        for task in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            ids.push((
                namespace.clone(),
                task.file_name().to_string_lossy().into_owned(),
            ));
            let spec = fs::read(task.path().join("config.json")).unwrap_or_default();
            let group = serde_json::from_slice::<serde_json::Value>(&spec)
                .ok()
                .and_then(|spec| {
                    let key = GROUP_LABEL.trim_end_matches('=');
                    spec["annotations"][key].as_str().map(String::from)
                });
            if let Some(group) = group {
                ids.push((namespace.clone(), group));
            }
        }
    }
    ids
}

/// Removes the sockets that the shims `ids` of the daemon at `address` left behind.
fn remove_shim_sockets(address: &Path, ids: &HashSet<(String, String)>) {
    for (namespace, id) in ids {
        for socket in shim_socket_paths(address, namespace, id) {
            match fs::remove_file(&socket) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("test bed: remove {}: {e}", socket.display()),
            }
        }
    }
}

/// Returns the pids of live processes whose command line names `address` as an argument:
/// the shims a daemon at `address` started.
pub fn shim_pids_for(address: &Path) -> Vec<u32> {
    let want = address.as_os_str().as_bytes();
    live_pids()
        .into_iter()
        .filter(|&pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|&b| b == 0);
            args.next()
                .is_some_and(|bin| bin.ends_with(b"containerd-shim-runc-v2"))
                && args.any(|a| a == want)
        })
        .collect()
}

/// Returns the pids of every process that is neither gone nor a zombie.
fn live_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_alive(pid))
        .collect()
}

fn is_alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Returns a process's state letter and parent pid from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Kills (SIGKILL) the shims of the daemon at `address` and everything below them, and
/// waits up to 2 s for them to die.
fn kill_shims(address: &Path) {
    let shims = shim_pids_for(address);
    if shims.is_empty() {
        return;
    }
    eprintln!(
        "test bed: killing leftover shims {shims:?} of {}",
        address.display()
    );

    // Shims are subreapers: the container processes are their descendants.
    let mut doomed: Vec<u32> = shims.clone();
    let parents: Vec<(u32, u32)> = live_pids()
        .into_iter()
        .filter_map(|p| Some((p, proc_stat(p)?.1)))
        .collect();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i];
        doomed.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    // A killed shim cannot remove its sockets in /run/containerd/s: note them first.
    let sockets: Vec<PathBuf> = shims
        .iter()
        .flat_map(|&pid| unix_socket_paths(pid))
        .filter(|path| path.starts_with("/run/containerd/"))
        .collect();

    // Children first, so nothing is reparented away before it is killed.
    for &pid in doomed.iter().rev() {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while doomed.iter().any(|&p| is_alive(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    for socket in sockets {
        let _ = fs::remove_file(socket);
    }
}

/// Returns the paths of the bound unix sockets process `pid` holds open.
fn unix_socket_paths(pid: u32) -> Vec<PathBuf> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<String> = fds
        .flatten()
        .filter_map(|fd| {
            let target = fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    // Columns: Num RefCount Protocol Flags Type St Inode Path.
    let table = fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.get(7)?;
            (inodes.contains(*fields.get(6)?) && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}

/// Has runc forget the containers whose shims were killed: their runc state under
/// `/run/containerd/runc/<ns>` and their cgroups outlive the shim otherwise.
fn delete_runc_leftovers(state: &Path) {
    let tasks = state.join("io.containerd.runtime.v2.task");
    let Ok(namespaces) = fs::read_dir(&tasks) else {
        return;
    };
    for ns in namespaces.flatten() {
        let Ok(bundles) = fs::read_dir(ns.path()) else {
            continue;
        };
        for bundle in bundles.flatten() {
            let mut runc = Command::new("/usr/sbin/runc");
            runc.arg("--root")
                .arg(Path::new("/run/containerd/runc").join(ns.file_name()))
                .args(["delete", "--force"])
                .arg(bundle.file_name());
            match output_within(runc, CLEANUP_CTR_DEADLINE) {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "test bed: runc delete {:?}: {}",
                    bundle.file_name(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => eprintln!("test bed: {e}"),
            }
        }
    }
}

/// Mounts a tmpfs of `bytes` at `dir`, creating the folder; [`unmount_under`] removes it.
fn mount_tmpfs(dir: &Path, bytes: u64) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let target = CString::new(dir.as_os_str().as_bytes()).expect("a path without NUL");
    let options = CString::new(format!("size={bytes},mode=0711")).unwrap();
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let mounted = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if mounted != 0 {
        panic!(
            "mount a tmpfs at {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
}

/// Lazily unmounts every mount at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    // Mounts can be stacked; a few rounds take them all.
    for _ in 0..4 {
        let mut mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for mount in mounts {
            let Ok(c_path) = CString::new(mount.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
            if unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) } != 0 {
                let e = std::io::Error::last_os_error();
                eprintln!("test bed: umount {}: {e}", mount.display());
            }
        }
    }
}

/// Returns the mount points at or below `dir` listed in `/proc/self/mountinfo`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect()
}

/// Decodes the octal escapes (`\040` for a space) mountinfo uses in paths.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a plain HTTP/1.0 GET over a unix socket and returns the whole response, for
/// checking what the debug socket serves without an HTTP client.
pub fn http_get_unix(socket: &Path, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: containerd\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}
