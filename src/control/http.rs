//! The HTTP plumbing shared by the control socket and the telemetry endpoint:
//! an accept loop, one hyper HTTP/1.1 connection per task, response helpers
//! and a size-limited body reader.
//!
//! Nothing here runs a timer while no connection is open, so an idle server
//! costs no wakeups. Per-connection deadlines exist only while a client is
//! connected, so a client that stalls cannot pin a task forever.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

pub type Response = hyper::Response<Full<Bytes>>;

/// At most this many connections are served at once; further clients wait
/// in the kernel's accept queue. Keeps memory bounded under a flood.
const MAX_CONNECTIONS: usize = 32;

/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A whole connection (request, handling, response) may last this long. A
/// reload re-reads the config and restarts jobs, which takes well under this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// After a failed `accept` (typically out of file descriptors), wait this long
/// before the next try instead of spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Something that hands out connections (a unix or a TCP listener).
pub trait Listener: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Io> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Answers one request. Implemented by the control endpoints and telemetry.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, request: Request<Incoming>)
    -> impl Future<Output = Response> + Send;
}

/// Serves `listener` until the returned future is dropped. `keep_alive`
/// lets a client send several requests on one connection (Prometheus does);
/// the control socket closes after each answer, as ContainerPilot's did.
pub async fn serve<L: Listener, H: Handler>(
    listener: L,
    handler: Arc<H>,
    name: &'static str,
    keep_alive: bool,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let io = match listener.accept().await {
            Ok(io) => io,
            Err(e) => {
                log::warn!("{name}: cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(handler.handle(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(io), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::debug!("{name}: connection ended with an error: {e}"),
                Err(_) => log::debug!(
                    "{name}: closed a connection open for more than {CONNECTION_TIMEOUT:?}"
                ),
            }
            drop(slot);
        });
    }
}

/// A plain-text answer.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    with_type(
        status,
        "text/plain; charset=utf-8",
        body.into().into_bytes(),
    )
}

/// A JSON answer, newline-terminated for people using curl.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    with_type(status, "application/json", body)
}

/// An error answer: `{"error": "..."}`, the message saying what to fix.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, &serde_json::json!({ "error": message.into() }))
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A refused request: the HTTP status and what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// The `{"error": ...}` answer.
    pub fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// 405 with the `Allow` header listing what the path accepts.
pub fn method_not_allowed(allowed: &'static str, path: &str) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} accepts {allowed} only"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
///
/// An oversized body is still read (and thrown away) up to [`DRAIN_LIMIT`]:
/// answering before the client has finished sending makes its socket reset,
/// and the client would see a broken connection instead of the 413.
pub async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: usize = 1024 * 1024;
