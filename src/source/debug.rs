//! containerd's debug socket as a source: pprof profiles and expvar over
//! HTTP/1.1 on a unix socket, and where that socket is.
//!
//! The client is hyper's HTTP/1 connection over a tokio `UnixStream`, one
//! connection per request: requests are few and long (a CPU profile takes
//! seconds), so pooling buys nothing, and hyper already handles chunked
//! bodies, which Go's server uses for every profile. Each request runs under
//! its own deadline, and the body is capped, because the daemon on the other
//! end may be hung or misbehaving.
//!
//! The socket's path is the operator's `--debug-address` when given, else
//! what the daemon's own config file says (`[debug] address`, or the
//! config version 4 table of the debug plugin), else containerd's usual
//! `/run/containerd/debug.sock`. The config file is the one on the daemon's
//! command line, found through `/proc`, so a daemon started with `-c` is
//! read right.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::source::{Silence, host};

/// The socket containerd's `ctr pprof` assumes.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/debug.sock";
/// The largest body accepted from the debug socket.
const MAX_BODY: usize = 512 * 1024 * 1024;

/// A debug socket request that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    #[error("debug socket {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot connect to the debug socket {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("GET {url} on the debug socket {path} failed")]
    Http {
        path: PathBuf,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("GET {url} on the debug socket {path} answered {status}: {body}")]
    Status {
        path: PathBuf,
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url} on the debug socket {path} gave no answer within {}", humantime::format_duration(*.limit))]
    Deadline {
        path: PathBuf,
        url: String,
        limit: Duration,
    },
    #[error(
        "GET {url} not waited for: the debug socket {path} did not answer GET {PROBE_URL} \
         within {}, the daemon looks hung",
        humantime::format_duration(*.probe)
    )]
    Silent {
        path: PathBuf,
        url: String,
        probe: Duration,
    },
}

/// The request that probes the debug socket: expvar's small JSON page.
pub const PROBE_URL: &str = "/debug/vars";

/// GETs [`PROBE_URL`] under `limit`; no answer within it marks the socket
/// silent. A missing or refusing socket is left unmarked: each request
/// fails quickly by itself.
pub async fn probe(socket: &Path, limit: Duration, silence: &Silence) {
    if let Err(DebugError::Deadline { .. }) = get(socket, PROBE_URL, limit).await {
        tracing::warn!(
            socket = %socket.display(),
            limit = %humantime::format_duration(limit),
            "the debug socket did not answer: not waiting for it any longer"
        );
        silence.mark(limit);
    }
}

/// [`get`] that ends at once, with [`DebugError::Silent`], when `silence`
/// is or gets marked.
pub async fn get_unless_silent(
    socket: &Path,
    url: &str,
    limit: Duration,
    silence: &Silence,
) -> Result<Vec<u8>, DebugError> {
    tokio::select! {
        biased;
        probe = silence.marked() => Err(DebugError::Silent {
            path: socket.to_path_buf(),
            url: url.to_string(),
            probe,
        }),
        answer = get(socket, url, limit) => answer,
    }
}

/// GETs `url` (path and query) from the debug socket at `socket`, giving
/// up after `limit`; returns the body of a 200 answer.
pub async fn get(socket: &Path, url: &str, limit: Duration) -> Result<Vec<u8>, DebugError> {
    match tokio::time::timeout(limit, get_unbounded(socket, url)).await {
        Ok(result) => result,
        Err(_) => Err(DebugError::Deadline {
            path: socket.to_path_buf(),
            url: url.to_string(),
            limit,
        }),
    }
}

async fn get_unbounded(socket: &Path, url: &str) -> Result<Vec<u8>, DebugError> {
    let http = |source: Box<dyn std::error::Error + Send + Sync>| DebugError::Http {
        path: socket.to_path_buf(),
        url: url.to_string(),
        source,
    };
    if !socket.exists() {
        return Err(DebugError::Missing(socket.to_path_buf()));
    }
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| DebugError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| http(err.into()))?;
    // The connection is driven beside the request; dropping the guard (on
    // the deadline, too) stops it.
    let driver = AbortOnDrop(tokio::spawn(connection));

    let request = hyper::Request::get(url)
        .header(hyper::header::HOST, "containerd")
        .body(Empty::<Bytes>::new())
        .map_err(|err| http(err.into()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| http(err.into()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(http)?
        .to_bytes()
        .to_vec();
    drop(driver);
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(DebugError::Status {
            path: socket.to_path_buf(),
            url: url.to_string(),
            status: status.as_u16(),
            body: text.trim().chars().take(200).collect(),
        });
    }
    Ok(body)
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The debug socket's path and how it was found.
#[derive(Debug, Clone)]
pub struct DebugAddress {
    pub path: PathBuf,
    /// Where the path came from, in words: the flag, a config file, or the
    /// default.
    pub origin: String,
    /// The config file consulted, if any was readable.
    pub config: Option<PathBuf>,
}

/// Finds the debug socket: `explicit` when given, else the daemon's config
/// file (that of process `pid` when known), else the default path.
pub fn resolve(explicit: Option<&Path>, pid: Option<u32>) -> DebugAddress {
    if let Some(path) = explicit {
        return DebugAddress {
            path: path.to_path_buf(),
            origin: "--debug-address".into(),
            config: None,
        };
    }
    let config = pid
        .and_then(host::daemon_config)
        .unwrap_or_else(|| PathBuf::from(host::DEFAULT_CONFIG));
    let text = std::fs::read_to_string(&config).ok();
    let configured = text.as_deref().and_then(address_in_config);
    let readable = text.is_some().then(|| config.clone());
    match configured {
        Some(path) => DebugAddress {
            path,
            origin: format!("containerd's config {}", config.display()),
            config: readable,
        },
        None => DebugAddress {
            path: PathBuf::from(DEFAULT_ADDRESS),
            origin: match &readable {
                Some(config) => format!("default; {} sets no debug address", config.display()),
                None => format!("default; no readable config at {}", config.display()),
            },
            config: readable,
        },
    }
}

/// The debug address a config file sets: `[debug] address`, or from config
/// version 4 on, the debug plugin's `address`.
pub fn address_in_config(text: &str) -> Option<PathBuf> {
    let config: toml::Table = text.parse().ok()?;
    let string = |value: Option<&toml::Value>| {
        value
            .and_then(toml::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let debug = config.get("debug").and_then(|d| d.get("address"));
    let plugin = config
        .get("plugins")
        .and_then(|p| p.get("io.containerd.server.v1.debug"))
        .and_then(|d| d.get("address"));
    string(plugin).or_else(|| string(debug))
}

/// The config lines that turn the debug socket on at `path`, for both
/// config layouts.
pub fn enabling_lines(path: &Path) -> String {
    format!(
        "[debug]\n  address = \"{path}\"\n\
         (config version 4, containerd 2.3 and newer: \
         [plugins.\"io.containerd.server.v1.debug\"]\n  address = \"{path}\")",
        path = path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_both_config_layouts() {
        let v2 = "version = 2\n[debug]\n  address = \"/run/d.sock\"\n  level = \"info\"\n";
        assert_eq!(address_in_config(v2), Some(PathBuf::from("/run/d.sock")));
        let v4 =
            "version = 4\n[plugins.\"io.containerd.server.v1.debug\"]\n  address = \"/x.sock\"\n";
        assert_eq!(address_in_config(v4), Some(PathBuf::from("/x.sock")));
        assert_eq!(address_in_config("[debug]\n  level = \"debug\"\n"), None);
        assert_eq!(address_in_config("[debug]\n  address = \"\"\n"), None);
        assert_eq!(address_in_config("not toml ["), None);
    }

    #[test]
    fn an_explicit_address_wins() {
        let found = resolve(Some(Path::new("/tmp/x.sock")), None);
        assert_eq!(found.path, PathBuf::from("/tmp/x.sock"));
        assert_eq!(found.origin, "--debug-address");
    }

    #[tokio::test]
    async fn a_missing_socket_is_named() {
        let err = get(
            Path::new("/nonexistent/debug.sock"),
            "/debug/vars",
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DebugError::Missing(_)), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_hits_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let err = get(&path, "/debug/vars", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, DebugError::Deadline { .. }), "{err}");
    }
}
