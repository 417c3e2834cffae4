//! The containerd gRPC API as a source of data.
//!
//! One [`Containerd`] is shared by every collector of a run. It checks the
//! socket path before connecting, so a missing socket or a plain file is
//! named as such rather than surfacing as a transport error. It connects once
//! and lazily, bounds how many calls reach the daemon at once (the daemon may
//! already be struggling), raises tonic's 4 MiB message limit to containerd's
//! 16 MiB, and caches the daemon's version, which several collectors need.
//!
//! A hung daemon (stopped, deadlocked in its gRPC server) accepts
//! connections and never answers, so every call would wait out its
//! collector's timeout, up to most of a minute. [`Containerd::probe`] asks
//! `Version`, the cheapest call there is, under a short deadline; when that
//! gets no answer the daemon counts as silent, and every call waiting or yet
//! to come ends at once with an error that says so.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    Info as SnapshotInfo, ListSnapshotsRequest, UsageRequest,
};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    Container, GetRequest, Image, ListContainersRequest, ListImagesRequest, ListNamespacesRequest,
    ListPidsRequest, ListTasksRequest, MetricsRequest, Namespace, Plugin, PluginsRequest,
    ServerResponse, SubscribeRequest,
};
use containerd_client::types::v1::Process;
use containerd_client::types::{Envelope, Metric};
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};
use tonic::transport::{Channel, Endpoint};

use super::Silence;

/// containerd's own limit on a gRPC message.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// What the Version RPC returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DaemonVersion {
    pub version: String,
    pub revision: String,
}

impl DaemonVersion {
    /// The release as numbers, read from strings such as `1.6.20~ds1`,
    /// `v1.7.24` or `2.1.9+unknown`.
    pub fn release(&self) -> Option<(u32, u32, u32)> {
        let text = self.version.trim_start_matches('v');
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let mut parts = text[..end].split('.').map(|part| part.parse::<u32>().ok());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Some(major)), Some(Some(minor)), Some(Some(patch))) => {
                Some((major, minor, patch))
            }
            _ => None,
        }
    }
}

/// A containerd call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("containerd socket {0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is a {what}, not a unix socket; is it containerd's address?")]
    NotSocket { path: PathBuf, what: &'static str },
    #[error("cannot inspect containerd socket {path}")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to containerd at {path}")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: tonic::Status,
    },
    #[error("{path} does not answer as containerd ({rpc} failed)")]
    NotContainerd {
        path: PathBuf,
        rpc: &'static str,
        #[source]
        source: tonic::Status,
    },
    #[error(
        "{rpc} got no answer from containerd at {path} within {}",
        humantime::format_duration(*limit)
    )]
    Deadline {
        path: PathBuf,
        rpc: &'static str,
        limit: Duration,
    },
    #[error(
        "{rpc} not waited for: containerd at {path} did not answer a Version call within {}, \
         it looks hung",
        humantime::format_duration(*probe)
    )]
    Silent {
        path: PathBuf,
        rpc: &'static str,
        probe: Duration,
    },
    #[error("{rpc} failed on containerd at {path}")]
    Rpc {
        path: PathBuf,
        rpc: &'static str,
        #[source]
        source: tonic::Status,
    },
}

/// A handle on one containerd daemon, shared by the collectors of a run.
pub struct Containerd {
    address: PathBuf,
    channel: OnceCell<Channel>,
    calls: Semaphore,
    version: OnceCell<DaemonVersion>,
    /// Marked when the probe got no answer.
    silent: Silence,
}

impl Containerd {
    /// Creates a handle; nothing is connected until the first call.
    pub fn new(address: PathBuf, max_concurrent_calls: usize) -> Self {
        Self {
            address,
            channel: OnceCell::new(),
            calls: Semaphore::new(max_concurrent_calls.max(1)),
            version: OnceCell::new(),
            silent: Silence::default(),
        }
    }

    /// Asks `Version` once, outside the bound on calls in flight (the probe
    /// measures the daemon, not the queue). No answer within `limit` marks
    /// the daemon silent: calls in flight and later calls end at once. Any
    /// other outcome leaves the calls alone: a missing socket or a refused
    /// connection fails each call quickly by itself.
    pub async fn probe(&self, limit: Duration) {
        let Ok(channel) = self.channel().await else {
            return;
        };
        let mut client = VersionClient::new(channel);
        if tokio::time::timeout(limit, client.version(()))
            .await
            .is_err()
        {
            tracing::warn!(
                address = %self.address.display(),
                limit = %humantime::format_duration(limit),
                "containerd did not answer a Version call: not waiting for it any longer"
            );
            self.silent.mark(limit);
        }
    }

    /// The socket path this handle talks to.
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// Returns the daemon's version, asking it once per run.
    pub async fn version(&self) -> Result<&DaemonVersion, ContainerdError> {
        self.version
            .get_or_try_init(|| async {
                let mut client = VersionClient::new(self.channel().await?)
                    .max_decoding_message_size(MAX_MESSAGE);
                let response = self.call("Version.Version", client.version(())).await?;
                let response = response.into_inner();
                Ok(DaemonVersion {
                    version: response.version,
                    revision: response.revision,
                })
            })
            .await
    }

    /// The version if an earlier call already learned it.
    pub fn known_version(&self) -> Option<&DaemonVersion> {
        self.version.get()
    }

    /// Calls `Introspection.Server`.
    pub async fn server(&self) -> Result<ServerResponse, ContainerdError> {
        let mut client = self.introspection().await?;
        let response = self.call("Introspection.Server", client.server(())).await?;
        Ok(response.into_inner())
    }

    /// Calls `Introspection.Plugins` with the given filters.
    pub async fn plugins(&self, filters: Vec<String>) -> Result<Vec<Plugin>, ContainerdError> {
        let mut client = self.introspection().await?;
        let request = PluginsRequest { filters };
        let response = self
            .call("Introspection.Plugins", client.plugins(request))
            .await?;
        Ok(response.into_inner().plugins)
    }

    /// Calls `Namespaces.List`.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, ContainerdError> {
        let mut client =
            NamespacesClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = ListNamespacesRequest::default();
        let response = self.call("Namespaces.List", client.list(request)).await?;
        Ok(response.into_inner().namespaces)
    }

    /// Calls `Containers.List` in `namespace`.
    pub async fn containers(&self, namespace: &str) -> Result<Vec<Container>, ContainerdError> {
        let mut client =
            ContainersClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = namespaced(ListContainersRequest::default(), namespace);
        let response = self.call("Containers.List", client.list(request)).await?;
        Ok(response.into_inner().containers)
    }

    /// Calls `Tasks.List` in `namespace`, waiting at most `limit`.
    ///
    /// containerd asks every task's shim for its state, one after another,
    /// giving each two seconds: a few silent shims make the list slow.
    pub async fn tasks(
        &self,
        namespace: &str,
        limit: Duration,
    ) -> Result<Vec<Process>, ContainerdError> {
        let mut client = self.tasks_client().await?;
        let request = namespaced(ListTasksRequest::default(), namespace);
        let response = self
            .call_within("Tasks.List", limit, client.list(request))
            .await?;
        Ok(response.into_inner().tasks)
    }

    /// Calls `Tasks.Get` for the task of container `id`, waiting at most
    /// `limit`; `None` when the container has no task.
    pub async fn task(
        &self,
        namespace: &str,
        id: &str,
        limit: Duration,
    ) -> Result<Option<Process>, ContainerdError> {
        let mut client = self.tasks_client().await?;
        let request = GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        };
        let request = namespaced(request, namespace);
        match self
            .call_within("Tasks.Get", limit, client.get(request))
            .await
        {
            Ok(response) => Ok(response.into_inner().process),
            Err(ContainerdError::Rpc { source, .. }) if source.code() == tonic::Code::NotFound => {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Calls `Images.List` in `namespace`.
    pub async fn images(&self, namespace: &str) -> Result<Vec<Image>, ContainerdError> {
        let mut client =
            ImagesClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = namespaced(ListImagesRequest::default(), namespace);
        let response = self.call("Images.List", client.list(request)).await?;
        Ok(response.into_inner().images)
    }

    /// The namespaces to look into: `wanted` when given, else every one the
    /// daemon has.
    pub async fn namespace_names(&self, wanted: &[String]) -> Result<Vec<String>, ContainerdError> {
        if !wanted.is_empty() {
            return Ok(wanted.to_vec());
        }
        let mut names: Vec<String> = self
            .namespaces()
            .await?
            .into_iter()
            .map(|ns| ns.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Calls `Tasks.ListPids` for one task, waiting at most `limit`.
    pub async fn task_pids(
        &self,
        namespace: &str,
        id: &str,
        limit: Duration,
    ) -> Result<Vec<u32>, ContainerdError> {
        let mut client = self.tasks_client().await?;
        let request = ListPidsRequest {
            container_id: id.to_string(),
        };
        let request = namespaced(request, namespace);
        let response = self
            .call_within("Tasks.ListPids", limit, client.list_pids(request))
            .await?;
        Ok(response
            .into_inner()
            .processes
            .into_iter()
            .map(|p| p.pid)
            .collect())
    }

    /// Calls `Tasks.Metrics` for the tasks of `namespace` that match
    /// `filters` (all when empty), waiting at most `limit`.
    ///
    /// containerd asks the shims one after another and waits on each as
    /// long as the call lasts: one silent shim holds up the whole answer.
    pub async fn task_metrics(
        &self,
        namespace: &str,
        filters: Vec<String>,
        limit: Duration,
    ) -> Result<Vec<Metric>, ContainerdError> {
        let mut client = self.tasks_client().await?;
        let request = namespaced(MetricsRequest { filters }, namespace);
        let response = self
            .call_within("Tasks.Metrics", limit, client.metrics(request))
            .await?;
        Ok(response.into_inner().metrics)
    }

    /// Calls `Snapshots.List` for one snapshotter and reads the whole stream.
    pub async fn snapshots(
        &self,
        namespace: &str,
        snapshotter: &str,
    ) -> Result<Vec<SnapshotInfo>, ContainerdError> {
        let mut client =
            SnapshotsClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = ListSnapshotsRequest {
            snapshotter: snapshotter.to_string(),
            filters: Vec::new(),
        };
        let request = namespaced(request, namespace);
        let mut stream = self
            .call("Snapshots.List", client.list(request))
            .await?
            .into_inner();
        let mut infos = Vec::new();
        while let Some(page) = stream
            .message()
            .await
            .map_err(|status| self.classify("Snapshots.List", status))?
        {
            infos.extend(page.info);
        }
        Ok(infos)
    }

    /// Calls `Snapshots.Usage` for one snapshot: `(size in bytes, inodes)`.
    pub async fn snapshot_usage(
        &self,
        namespace: &str,
        snapshotter: &str,
        key: &str,
    ) -> Result<(i64, i64), ContainerdError> {
        let mut client =
            SnapshotsClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = UsageRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        };
        let request = namespaced(request, namespace);
        let usage = self
            .call("Snapshots.Usage", client.usage(request))
            .await?
            .into_inner();
        Ok((usage.size, usage.inodes))
    }

    /// Calls `Events.Subscribe` for every namespace; the stream has no
    /// history, only what happens from now on.
    pub async fn subscribe(&self) -> Result<tonic::Streaming<Envelope>, ContainerdError> {
        let mut client =
            EventsClient::new(self.channel().await?).max_decoding_message_size(MAX_MESSAGE);
        let request = SubscribeRequest::default();
        let response = self
            .call("Events.Subscribe", client.subscribe(request))
            .await?;
        Ok(response.into_inner())
    }

    async fn introspection(&self) -> Result<IntrospectionClient<Channel>, ContainerdError> {
        let channel = self.channel().await?;
        Ok(IntrospectionClient::new(channel).max_decoding_message_size(MAX_MESSAGE))
    }

    async fn tasks_client(&self) -> Result<TasksClient<Channel>, ContainerdError> {
        let channel = self.channel().await?;
        Ok(TasksClient::new(channel).max_decoding_message_size(MAX_MESSAGE))
    }

    /// Runs one RPC while holding a slot of the concurrency bound, and
    /// classifies its failure. Kinds with RPCs of their own use this with
    /// [`Containerd::channel`] so the bound and the error names hold.
    pub async fn call<T>(
        &self,
        rpc: &'static str,
        request: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, ContainerdError> {
        self.unless_silent(rpc, async {
            let _slot = self.slot().await;
            request.await.map_err(|status| self.classify(rpc, status))
        })
        .await
    }

    /// [`Containerd::call`] that gives up once the daemon has not answered
    /// within `limit`; the wait for a slot does not count.
    pub async fn call_within<T>(
        &self,
        rpc: &'static str,
        limit: Duration,
        request: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, ContainerdError> {
        self.unless_silent(rpc, async {
            let _slot = self.slot().await;
            match tokio::time::timeout(limit, request).await {
                Ok(answer) => answer.map_err(|status| self.classify(rpc, status)),
                Err(_) => Err(ContainerdError::Deadline {
                    path: self.address.clone(),
                    rpc,
                    limit,
                }),
            }
        })
        .await
    }

    /// Runs `call` until it ends or the daemon is found silent, whichever
    /// comes first; a daemon already found silent is not asked.
    async fn unless_silent<T>(
        &self,
        rpc: &'static str,
        call: impl Future<Output = Result<T, ContainerdError>>,
    ) -> Result<T, ContainerdError> {
        tokio::select! {
            biased;
            probe = self.silent.marked() => Err(ContainerdError::Silent {
                path: self.address.clone(),
                rpc,
                probe,
            }),
            answer = call => answer,
        }
    }

    /// Waits for a slot of the bound on calls in flight.
    async fn slot(&self) -> SemaphorePermit<'_> {
        self.calls
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Names a failed call the way every other call is named.
    pub fn classify(&self, rpc: &'static str, status: tonic::Status) -> ContainerdError {
        let path = self.address.clone();
        if is_connect_failure(&status) {
            ContainerdError::Unreachable {
                path,
                source: status,
            }
        } else if speaks_other_protocol(&status) {
            ContainerdError::NotContainerd {
                path,
                rpc,
                source: status,
            }
        } else {
            ContainerdError::Rpc {
                path,
                rpc,
                source: status,
            }
        }
    }

    /// The shared channel, after checking the socket path.
    pub async fn channel(&self) -> Result<Channel, ContainerdError> {
        check_socket(&self.address)?;
        let channel = self
            .channel
            .get_or_init(|| async { lazy_channel(self.address.clone()) })
            .await;
        Ok(channel.clone())
    }
}

/// Wraps `message` in a request carrying containerd's namespace header.
pub fn namespaced<T>(message: T, namespace: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = namespace.parse() {
        request.metadata_mut().insert("containerd-namespace", value);
    }
    request
}

/// Tells a missing path or a non-socket from a socket before connecting.
fn check_socket(path: &Path) -> Result<(), ContainerdError> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ContainerdError::Missing(path.to_path_buf()),
        _ => ContainerdError::Stat {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let kind = meta.file_type();
    let what = if kind.is_socket() {
        return Ok(());
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_file() {
        "regular file"
    } else if kind.is_fifo() {
        "fifo"
    } else {
        "device or other special file"
    };
    Err(ContainerdError::NotSocket {
        path: path.to_path_buf(),
        what,
    })
}

/// A channel over the unix socket that connects on first use, so creating
/// it never blocks and a hung daemon costs only the calls' deadlines.
fn lazy_channel(path: PathBuf) -> Channel {
    // The URI is required by tonic but unused: the connector below dials the
    // unix socket.
    Endpoint::from_static("http://[::]:50051")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector_lazy(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
}

fn is_connect_failure(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::TimedOut
            );
        }
        source = err.source();
    }
    false
}

/// A status that means the peer answered, but not as a gRPC server with
/// containerd's services: an unknown service, or a broken HTTP/2 exchange.
fn speaks_other_protocol(status: &tonic::Status) -> bool {
    use tonic::Code;
    match status.code() {
        Code::Unimplemented => true,
        Code::Internal | Code::Unknown | Code::Unavailable | Code::Cancelled => {
            let text = error_chain(status).to_lowercase();
            [
                "h2 protocol",
                "http2",
                "frame",
                "preface",
                "connection closed",
                "transport",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        }
        _ => false,
    }
}

/// Renders an error and its sources as one line: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = describe(err);
    let mut source = err.source();
    while let Some(cause) = source {
        let part = describe(cause);
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// One error's own message; a gRPC status shows its message and code
/// rather than its debug dump, since its source follows in the chain.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    match err.downcast_ref::<tonic::Status>() {
        Some(status) => format!("{} (gRPC {:?})", status.message(), status.code()),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_numbers_from_distribution_versions() {
        let release = |v: &str| {
            DaemonVersion {
                version: v.into(),
                revision: String::new(),
            }
            .release()
        };
        assert_eq!(release("1.6.20~ds1"), Some((1, 6, 20)));
        assert_eq!(release("v1.7.24"), Some((1, 7, 24)));
        assert_eq!(release("2.1.9+unknown"), Some((2, 1, 9)));
        assert_eq!(release("devel"), None);
    }

    #[test]
    fn missing_path_is_named() {
        let err = check_socket(Path::new("/nonexistent/containerd.sock")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "containerd socket /nonexistent/containerd.sock does not exist"
        );
    }

    #[test]
    fn plain_file_is_not_a_socket() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = check_socket(file.path()).unwrap_err().to_string();
        assert!(
            err.contains("is a regular file, not a unix socket"),
            "{err}"
        );
    }

    #[test]
    fn error_chain_joins_sources_once() {
        let inner = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let err = ContainerdError::Stat {
            path: "/x".into(),
            source: inner,
        };
        assert_eq!(
            error_chain(&err),
            "cannot inspect containerd socket /x: refused"
        );
    }
}
