//! `manifest.json`: the bundle's table of contents and the record of the run.
//!
//! It lists every file with its size and sha256, every collector with its
//! status and duration, and what was collected from where. Readers check
//! `format_version` first; fields are only ever added within a version.

use serde::{Deserialize, Serialize};

/// The manifest format this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// The bundle's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: Tool,
    pub command_line: Vec<String>,
    pub host: HostId,
    pub containerd: DaemonRef,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// False when the run was interrupted; `incomplete_reason` says why.
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    pub collectors: Vec<CollectorRecord>,
    /// Every file in the bundle except the manifest itself.
    pub files: Vec<FileRecord>,
}

/// The tool that made the bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Which machine the bundle comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostId {
    pub hostname: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
}

/// Which daemon was asked, and what it said its version was.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DaemonRef {
    pub address: String,
    pub debug_address: String,
    pub version: Option<String>,
    pub revision: Option<String>,
}

/// How a collector ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
    TimedOut,
    /// Still running when the operator interrupted the run.
    Interrupted,
}

impl Status {
    /// The word used in summaries.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Interrupted => "interrupted",
        }
    }

    /// Whether this status makes the run exit non-zero.
    pub fn is_failure(self) -> bool {
        !matches!(self, Status::Ok | Status::Skipped)
    }
}

/// One collector's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectorRecord {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub duration_ms: u64,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The error chain when it failed or timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub files: Vec<String>,
    /// How many secret values were replaced in this collector's files.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u64,
    /// Its files that were cut to a cap or dropped to fit the size budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts: Vec<Cut>,
}

/// A file that was cut short or left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The bundle path, or the source path for a file left out.
    pub path: String,
    pub original_bytes: u64,
    /// What stayed in the bundle; 0 when the file was dropped.
    pub kept_bytes: u64,
    /// Why, e.g. "kept the newest 1 MiB (max_bytes)".
    pub reason: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One file of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The collector that wrote it, or `report` for the summaries.
    pub collector: String,
}
