//! The one way into the archive.
//!
//! Collectors run concurrently on tokio; the archive is a single synchronous
//! stream. A writer thread owns the [`BundleWriter`] and takes entries from a
//! bounded channel, so compression never blocks the runtime and a slow disk
//! slows producers instead of growing memory. Each collector gets an
//! [`Output`] that can write only under the bundle path its spec declares.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Serialize;
use tokio::sync::mpsc;

use super::manifest::Cut;
use super::{BundleError, BundleWriter};

enum Msg {
    Entry {
        collector: String,
        path: String,
        data: Vec<u8>,
    },
    Close,
}

/// A collector's entry could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("the bundle was already closed when {path} arrived")]
    Closed { path: String },
    #[error("bundle path {path} was already written by {by}")]
    Taken { path: String, by: String },
    #[error("bundle path {path} is outside this collector's output {base}")]
    Outside { path: String, base: String },
    #[error("cannot encode {path} as JSON")]
    Encode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A cloneable handle that sends entries to the writer thread.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Msg>,
    claimed: Arc<Mutex<HashMap<String, String>>>,
}

/// The writer thread; [`WriterThread::close`] ends it and hands back the
/// writer.
pub struct WriterThread {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<(BundleWriter, Option<BundleError>)>,
}

/// Starts the writer thread for `writer`.
pub fn spawn_writer(mut writer: BundleWriter) -> (Sink, WriterThread) {
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let thread = std::thread::spawn(move || {
        let mut failure = None;
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Entry {
                    collector,
                    path,
                    data,
                } if failure.is_none() => {
                    if let Err(err) = writer.stage(&collector, &path, &data) {
                        failure = Some(err);
                    }
                }
                Msg::Entry { .. } => {}
                Msg::Close => {
                    if failure.is_none()
                        && let Err(err) = writer.commit_staged()
                    {
                        failure = Some(err);
                    }
                    break;
                }
            }
        }
        (writer, failure)
    });
    let sink = Sink {
        tx: tx.clone(),
        claimed: Arc::default(),
    };
    (sink, WriterThread { tx, thread })
}

impl WriterThread {
    /// Waits for every entry sent so far to be written, then returns the
    /// writer and the first write error, if any. Entries sent after this are
    /// refused with [`SinkError::Closed`].
    pub async fn close(self) -> (BundleWriter, Option<BundleError>) {
        // The channel is FIFO, so everything queued before Close is written.
        let _ = self.tx.send(Msg::Close).await;
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .expect("joining the writer thread")
            .expect("the writer thread does not panic")
    }
}

impl Sink {
    async fn send(&self, collector: &str, path: String, data: Vec<u8>) -> Result<(), SinkError> {
        {
            let mut claimed = self.claimed.lock().expect("claimed paths lock");
            if let Some(by) = claimed.get(&path) {
                return Err(SinkError::Taken {
                    path,
                    by: by.clone(),
                });
            }
            claimed.insert(path.clone(), collector.to_string());
        }
        let msg = Msg::Entry {
            collector: collector.to_string(),
            path: path.clone(),
            data,
        };
        self.tx
            .send(msg)
            .await
            .map_err(|_| SinkError::Closed { path })
    }

    /// An output for one collector, confined to `base`.
    pub fn output(&self, collector: &str, base: &str) -> Output {
        Output {
            sink: self.clone(),
            collector: collector.to_string(),
            base: base.to_string(),
            written: Arc::default(),
            redactions: Arc::default(),
            cuts: Arc::default(),
        }
    }
}

/// Where one collector writes; cloning shares the record of files written.
#[derive(Clone)]
pub struct Output {
    sink: Sink,
    collector: String,
    base: String,
    written: Arc<Mutex<Vec<String>>>,
    redactions: Arc<AtomicU64>,
    cuts: Arc<Mutex<Vec<Cut>>>,
}

impl Output {
    /// Writes the collector's output file (its spec's `output` path).
    pub async fn put(&self, data: Vec<u8>) -> Result<(), SinkError> {
        if self.base.ends_with('/') {
            return Err(SinkError::Outside {
                path: self.base.clone(),
                base: self.base.clone(),
            });
        }
        self.write(self.base.clone(), data).await
    }

    /// Writes the output file as pretty JSON.
    pub async fn put_json<T: Serialize>(&self, value: &T) -> Result<(), SinkError> {
        let mut data = serde_json::to_vec_pretty(value).map_err(|source| SinkError::Encode {
            path: self.base.clone(),
            source,
        })?;
        data.push(b'\n');
        self.put(data).await
    }

    /// Writes `name` inside the collector's output folder.
    pub async fn put_in(&self, name: &str, data: Vec<u8>) -> Result<(), SinkError> {
        let path = format!("{}{name}", self.base);
        let inside = self.base.ends_with('/') && crate::spec::check_bundle_path(&path).is_ok();
        if !inside {
            return Err(SinkError::Outside {
                path,
                base: self.base.clone(),
            });
        }
        self.write(path, data).await
    }

    /// The bundle path this output writes to (a folder when it ends in `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bundle paths this collector has written so far.
    pub fn written(&self) -> Vec<String> {
        self.written.lock().expect("written files lock").clone()
    }

    /// Records that `count` secret values were redacted from this
    /// collector's output.
    pub fn add_redactions(&self, count: usize) {
        self.redactions.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// How many values this collector has redacted so far.
    pub fn redactions(&self) -> u64 {
        self.redactions.load(Ordering::Relaxed)
    }

    /// Records a file cut to a cap or left out.
    pub fn note_cut(&self, cut: Cut) {
        self.cuts.lock().expect("cuts lock").push(cut);
    }

    /// The files cut or left out so far.
    pub fn cuts(&self) -> Vec<Cut> {
        self.cuts.lock().expect("cuts lock").clone()
    }

    async fn write(&self, path: String, data: Vec<u8>) -> Result<(), SinkError> {
        self.sink.send(&self.collector, path.clone(), data).await?;
        self.written.lock().expect("written files lock").push(path);
        Ok(())
    }
}
