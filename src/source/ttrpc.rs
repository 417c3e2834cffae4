//! A minimal ttrpc client, enough to ask a shim about its task.
//!
//! ttrpc is containerd's lightweight RPC for talking to shims over a unix
//! socket: frames of a 10-byte header (data length and stream id as
//! big-endian u32, then a message type byte and a flags byte) followed by a
//! protobuf envelope, `Request{service, method, payload, timeout_nano,
//! metadata}` answered by `Response{status, payload}`. The Rust crates that
//! speak it bring the rust-protobuf runtime alongside prost; the unary
//! subset needed here is small, so it is written by hand over tokio.
//!
//! Calls on one [`Client`] run one at a time. Every call has a deadline;
//! after a call times out the connection is in an unknown state (a late
//! answer may still arrive), so the client refuses further calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::proto::ttrpc::{KeyValue, Request, Response};

/// The header in front of every frame.
const HEADER_LEN: usize = 10;
/// The largest frame data the protocol allows.
const MAX_DATA: usize = 4 << 20;
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;
/// gRPC's code for a service or method the server does not have.
pub const CODE_UNIMPLEMENTED: i32 = 12;

/// Why a ttrpc connection or call failed.
#[derive(Debug, thiserror::Error)]
pub enum TtrpcError {
    #[error("shim address {address:?} is not a unix socket path")]
    Address { address: String },
    #[error("cannot connect to {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no connection to {} within {}", path.display(), humantime::format_duration(*timeout))]
    ConnectTimeout { path: PathBuf, timeout: Duration },
    #[error("{method} got no answer within {}", humantime::format_duration(*timeout))]
    Timeout { method: String, timeout: Duration },
    #[error("{method} failed on the connection")]
    Io {
        method: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{method} answered with error code {code}: {message}")]
    Status {
        method: String,
        code: i32,
        message: String,
    },
    #[error("cannot decode the answer to {method}")]
    Decode {
        method: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{method} got a frame of {length} bytes, more than ttrpc allows")]
    TooLarge { method: String, length: usize },
    #[error("{method} was not sent: an earlier call on this connection timed out")]
    Poisoned { method: String },
}

impl TtrpcError {
    /// Tells whether the server said it has no such service or method.
    pub fn is_unimplemented(&self) -> bool {
        matches!(self, TtrpcError::Status { code, .. } if *code == CODE_UNIMPLEMENTED)
    }
}

/// Turns a shim address (`unix:///run/containerd/s/<hash>` or a bare path)
/// into the socket's path.
pub fn socket_path(address: &str) -> Result<PathBuf, TtrpcError> {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    // Abstract sockets (`@name`) and other schemes have no path to connect to.
    if !path.starts_with('/') {
        return Err(TtrpcError::Address {
            address: address.to_string(),
        });
    }
    Ok(PathBuf::from(path))
}

/// One connection to a ttrpc server.
pub struct Client {
    stream: UnixStream,
    metadata: Vec<KeyValue>,
    next_stream: u32,
    poisoned: bool,
}

impl Client {
    /// Connects to the socket at `path`, giving up after `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Client, TtrpcError> {
        let stream = match tokio::time::timeout(timeout, UnixStream::connect(path)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(TtrpcError::Connect {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Err(_) => {
                return Err(TtrpcError::ConnectTimeout {
                    path: path.to_path_buf(),
                    timeout,
                });
            }
        };
        Ok(Client {
            stream,
            metadata: Vec::new(),
            next_stream: 1,
            poisoned: false,
        })
    }

    /// Adds a metadata entry sent with every later call.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Client {
        self.metadata.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// Calls `service/method` with `request` and decodes the answer, giving
    /// up after `timeout` (which is also sent to the server).
    pub async fn call<Req: Message, Resp: Message + Default>(
        &mut self,
        service: &str,
        method: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TtrpcError> {
        let name = format!("{service}/{method}");
        if self.poisoned {
            return Err(TtrpcError::Poisoned { method: name });
        }
        let envelope = Request {
            service: service.to_string(),
            method: method.to_string(),
            payload: request.encode_to_vec(),
            timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            metadata: self.metadata.clone(),
        };
        // Client streams are odd and never reused on a connection.
        let stream_id = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(2);

        let exchange = self.exchange(&name, stream_id, envelope.encode_to_vec());
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                self.poisoned = true;
                return Err(TtrpcError::Timeout {
                    method: name,
                    timeout,
                });
            }
        };
        if let Some(status) = response.status.filter(|status| status.code != 0) {
            return Err(TtrpcError::Status {
                method: name,
                code: status.code,
                message: status.message,
            });
        }
        Resp::decode(response.payload.as_slice()).map_err(|source| TtrpcError::Decode {
            method: name,
            source,
        })
    }

    /// Sends one request frame and reads frames until the response on the
    /// same stream arrives.
    async fn exchange(
        &mut self,
        name: &str,
        stream_id: u32,
        data: Vec<u8>,
    ) -> Result<Response, TtrpcError> {
        let io = |source| TtrpcError::Io {
            method: name.to_string(),
            source,
        };
        if data.len() > MAX_DATA {
            return Err(TtrpcError::TooLarge {
                method: name.to_string(),
                length: data.len(),
            });
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + data.len());
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(&stream_id.to_be_bytes());
        frame.push(TYPE_REQUEST);
        frame.push(0);
        frame.extend_from_slice(&data);
        self.stream.write_all(&frame).await.map_err(io)?;

        loop {
            let mut header = [0u8; HEADER_LEN];
            self.stream.read_exact(&mut header).await.map_err(io)?;
            let length = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
            let id = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
            let kind = header[8];
            if length > MAX_DATA {
                return Err(TtrpcError::TooLarge {
                    method: name.to_string(),
                    length,
                });
            }
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).await.map_err(io)?;
            // Frames of other streams (none are expected) are skipped.
            if id != stream_id || kind != TYPE_RESPONSE {
                continue;
            }
            return Response::decode(body.as_slice()).map_err(|source| TtrpcError::Decode {
                method: name.to_string(),
                source,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::google::rpc::Status;
    use crate::proto::shim::task::{ConnectRequest, ConnectResponse};
    use tokio::net::UnixListener;

    /// Serves one connection: answers each request with `answer(request)`.
    async fn serve_one(listener: UnixListener, answer: fn(&Request) -> Response) {
        let (mut conn, _) = listener.accept().await.unwrap();
        loop {
            let mut header = [0u8; HEADER_LEN];
            if conn.read_exact(&mut header).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
            assert_eq!(header[8], TYPE_REQUEST);
            let mut body = vec![0u8; length];
            conn.read_exact(&mut body).await.unwrap();
            let request = Request::decode(body.as_slice()).unwrap();
            let data = answer(&request).encode_to_vec();
            let mut frame = (data.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&header[4..8]);
            frame.extend_from_slice(&[TYPE_RESPONSE, 0]);
            frame.extend_from_slice(&data);
            conn.write_all(&frame).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_call_round_trips_with_metadata_and_errors_carry_their_code() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(serve_one(listener, |request| {
            let ns = request.metadata.iter().find(|kv| kv.key == "ns");
            if request.service != "x.v1.Task" || ns.is_none_or(|kv| kv.value != "default") {
                return Response {
                    status: Some(Status {
                        code: CODE_UNIMPLEMENTED,
                        message: format!("service {}: unimplemented", request.service),
                        details: Vec::new(),
                    }),
                    payload: Vec::new(),
                };
            }
            let asked = ConnectRequest::decode(request.payload.as_slice()).unwrap();
            let answer = ConnectResponse {
                shim_pid: 7,
                task_pid: asked.id.len() as u32,
                version: request.method.clone(),
            };
            Response {
                status: None,
                payload: answer.encode_to_vec(),
            }
        }));

        let second = Duration::from_secs(1);
        let mut client = Client::connect(&path, second)
            .await
            .unwrap()
            .with_metadata("ns", "default");
        let request = ConnectRequest { id: "abc".into() };
        let answer: ConnectResponse = client
            .call("x.v1.Task", "Connect", &request, second)
            .await
            .unwrap();
        assert_eq!((answer.shim_pid, answer.task_pid), (7, 3));
        assert_eq!(answer.version, "Connect");

        let err = client
            .call::<_, ConnectResponse>("x.v2.Task", "Connect", &request, second)
            .await
            .unwrap_err();
        assert!(err.is_unimplemented(), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_costs_the_deadline_and_poisons_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let short = Duration::from_millis(50);
        let mut client = Client::connect(&path, short).await.unwrap();
        let request = ConnectRequest { id: "a".into() };
        let err = client
            .call::<_, ConnectResponse>("s", "Connect", &request, short)
            .await
            .unwrap_err();
        assert!(matches!(err, TtrpcError::Timeout { .. }), "{err}");
        let err = client
            .call::<_, ConnectResponse>("s", "Connect", &request, short)
            .await
            .unwrap_err();
        assert!(matches!(err, TtrpcError::Poisoned { .. }), "{err}");
        drop(listener);
    }

    #[test]
    fn addresses_become_paths() {
        assert_eq!(
            socket_path("unix:///run/containerd/s/abc").unwrap(),
            Path::new("/run/containerd/s/abc")
        );
        assert_eq!(socket_path("/tmp/x").unwrap(), Path::new("/tmp/x"));
        assert!(socket_path("unix://@abstract").is_err());
    }
}
