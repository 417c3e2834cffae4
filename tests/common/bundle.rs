//! Running `rctr-diag` in tests and reading the bundles it writes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Daemon, output_within};

/// An unpacked bundle: files by their path under the bundle's top folder.
pub struct Bundle {
    pub top: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    pub fn open(path: &Path) -> Bundle {
        let file = std::fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = BTreeMap::new();
        let mut tops = BTreeSet::new();
        for entry in archive.entries().expect("a tar.gz") {
            let mut entry = entry.expect("a readable entry");
            let full = entry.path().unwrap().to_string_lossy().into_owned();
            let (top, rest) = full
                .split_once('/')
                .expect("every file is under the top folder");
            tops.insert(top.to_string());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(rest.to_string(), data);
        }
        assert_eq!(tops.len(), 1, "one top folder: {tops:?}");
        Bundle {
            top: tops.into_iter().next().unwrap(),
            files,
        }
    }

    pub fn json(&self, path: &str) -> Value {
        let data = self
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from bundle"));
        serde_json::from_slice(data).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn text(&self, path: &str) -> String {
        String::from_utf8(self.files[path].clone()).unwrap()
    }

    /// The manifest's record of collector `name`.
    pub fn collector(&self, name: &str) -> Value {
        let manifest = self.json("manifest.json");
        manifest["collectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no collector {name} in the manifest"))
            .clone()
    }
}

/// Waits for a spawned child up to `limit`, killing it past that; returns
/// its output.
pub fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

pub fn rctr_diag() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rctr-diag"))
}

/// `rctr-diag collect` with `args`, leaving out the specs of this machine's
/// `/etc/rctr-diag`.
fn collect_command(args: &[&str]) -> Command {
    let mut cmd = rctr_diag();
    cmd.arg("collect").args(args);
    cmd.arg("--system-collectors").arg("/nonexistent");
    cmd
}

/// Runs `rctr-diag collect` with `args`, giving it at most `limit`.
pub fn collect(args: &[&str], limit: Duration) -> Output {
    output_within(collect_command(args), limit).expect("rctr-diag finishes")
}

/// Starts `rctr-diag collect` against `daemon` into folder `out` in the
/// background, with `extra` arguments and its output captured; finish it
/// with [`wait_output`].
pub fn spawn_collect_from(daemon: &Daemon, out: &Path, extra: &[&str]) -> Child {
    let address = daemon.address.to_str().unwrap();
    let mut args = vec!["-a", address, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    collect_command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rctr-diag collect")
}

/// Collects from `daemon` into a fresh folder; returns the run and the bundle.
pub fn collect_from(daemon: &Daemon, extra: &[&str]) -> (Output, Bundle, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "-a",
        daemon.address.to_str().unwrap(),
        "--debug-address",
        daemon.debug_address.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = collect(&args, Duration::from_secs(60));
    let path = bundle_path(&run);
    assert_only_bundle_in(out.path(), &path);
    (run, Bundle::open(&path), out)
}

pub fn bundle_path(run: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&run.stdout);
    let path = match serde_json::from_str::<Value>(&stdout) {
        Ok(printed) => PathBuf::from(printed["bundle"].as_str().unwrap_or_default()),
        Err(_) => PathBuf::from(stdout.trim()),
    };
    assert!(
        path.is_file(),
        "stdout names no bundle: {stdout:?}; stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    path
}

/// The output folder holds the bundle and nothing else: no temp file.
pub fn assert_only_bundle_in(dir: &Path, bundle: &Path) {
    let names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        names,
        vec![bundle.to_path_buf()],
        "stray files in {}",
        dir.display()
    );
}

/// Every file is in the manifest with its size and sha256, and vice versa.
pub fn assert_manifest_lists_every_file(bundle: &Bundle) {
    let manifest = bundle.json("manifest.json");
    assert_eq!(manifest["format_version"], 1);
    let mut listed = BTreeSet::new();
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let data = bundle
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} listed, absent"));
        assert_eq!(file["size"], data.len(), "{path} size");
        let sha: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(file["sha256"], sha.as_str(), "{path} sha256");
        listed.insert(path.to_string());
    }
    let present: BTreeSet<String> = bundle
        .files
        .keys()
        .filter(|p| *p != "manifest.json")
        .cloned()
        .collect();
    assert_eq!(listed, present);
    for collector in manifest["collectors"].as_array().unwrap() {
        let status = collector["status"].as_str().unwrap();
        assert!(
            ["ok", "skipped", "failed", "timed_out", "interrupted"].contains(&status),
            "{collector}"
        );
        assert!(collector["duration_ms"].is_u64(), "{collector}");
    }
}
