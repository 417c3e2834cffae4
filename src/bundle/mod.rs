//! The bundle: the archive writer, the sink collectors write through, the
//! in-memory view analyzers read, the manifest format, and redaction.

pub mod budget;
pub mod manifest;
pub mod reader;
pub mod redact;
mod sink;
mod writer;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

pub use sink::{Output, Sink, SinkError, spawn_writer};
pub use writer::{BundleError, BundleWriter, Target, resolve_target, sha256_hex};

/// Bundle files by their path inside the bundle, as analyzers see them.
#[derive(Debug, Default, Clone)]
pub struct Entries {
    files: BTreeMap<String, Vec<u8>>,
}

impl Entries {
    /// Adds or replaces a file.
    pub fn insert(&mut self, path: &str, data: Vec<u8>) {
        self.files.insert(path.to_string(), data);
    }

    /// The bytes of a file, if the bundle has it.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// A JSON file decoded as `T`; `None` when absent, an error when the file
    /// is there but does not decode.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Option<Result<T, serde_json::Error>> {
        self.get(path).map(serde_json::from_slice)
    }
}
