//! The HTTP plumbing shared by the control socket and the telemetry endpoint:
//! an accept loop, one hyper HTTP/1.1 connection per task, response helpers
//! and a size-limited body reader.
//!
//! Nothing here runs a timer while no connection is open, so an idle server
//! costs no wakeups. Per-connection deadlines exist only while a client is
//! connected, so a client that stalls cannot pin a task forever.
//!
//! [`client`] is the blocking client half of the same conventions (for the
//! subcommands); [`outbound`] is the HTTP(S) client of Consul calls and HTTP
//! health checks.

pub mod client;
pub mod outbound;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

pub type Response = hyper::Response<Full<Bytes>>;

/// Request bodies are small JSON maps; anything bigger is a mistake.
pub const MAX_BODY: usize = 64 * 1024;

/// Connections kept open at once. A new client beyond this closes the
/// connection that has been idle longest (a client that has not sent a
/// complete request, or a keep-alive connection between requests), so idle
/// or slow clients can never lock out a probe: the accept loop itself never
/// waits for a free slot. Each connection costs a task and two small buffers.
const MAX_CONNECTIONS: usize = 256;

/// A client must send its request headers within this time of connecting
/// (or, with keep-alive, of the previous answer).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

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
///
/// Every request body is limited to [`MAX_BODY`] as declared by its
/// `Content-Length` (413 otherwise), whether or not its endpoint reads it;
/// endpoints that read a chunked body enforce the limit with [`read_body`].
pub async fn serve<L: Listener, H: Handler>(
    listener: L,
    handler: Arc<H>,
    name: &'static str,
    keep_alive: bool,
) {
    let body_limit = MAX_BODY;
    let open = Arc::new(Mutex::new(OpenConnections::default()));
    loop {
        let io = match listener.accept().await {
            Ok(io) => io,
            Err(e) => {
                log::warn!("{name}: cannot accept a connection: {e}");
                // Out of descriptors: make room as a new client would.
                open.lock().unwrap().evict_idlest(0);
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let (id, close) = {
            let mut open = open.lock().unwrap();
            if open.evict_idlest(MAX_CONNECTIONS - 1) {
                log::debug!(
                    "{name}: {MAX_CONNECTIONS} connections open: closed the longest idle one"
                );
            }
            open.add()
        };
        let handler = handler.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let tracker = open.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                let busy = Busy::start(&tracker, id);
                async move {
                    let response =
                        if declared_length(&request).is_some_and(|n| n > body_limit as u64) {
                            // Read it (up to the drain limit) so that the client
                            // sees the 413 rather than a reset connection.
                            read_body(request, body_limit)
                                .await
                                .err()
                                .unwrap_or_else(|| too_large(body_limit))
                                .into_response()
                        } else {
                            handler.handle(request).await
                        };
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(io), service);
            tokio::select! {
                ended = tokio::time::timeout(CONNECTION_TIMEOUT, connection) => match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::debug!("{name}: connection ended with an error: {e}"),
                    Err(_) => log::debug!(
                        "{name}: closed a connection open for more than {CONNECTION_TIMEOUT:?}"
                    ),
                },
                _ = close.notified() => {}
            }
            open.lock().unwrap().remove(id);
        });
    }
}

/// The open connections, to find the one idle longest when room is needed.
#[derive(Default)]
struct OpenConnections {
    next_id: u64,
    by_id: HashMap<u64, Connection>,
}

struct Connection {
    /// Since when it has been waiting for a request; `None` while one is
    /// being answered (never evicted then).
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

impl OpenConnections {
    fn add(&mut self) -> (u64, Arc<Notify>) {
        let id = self.next_id;
        self.next_id += 1;
        let close = Arc::new(Notify::new());
        self.by_id.insert(
            id,
            Connection {
                idle_since: Some(Instant::now()),
                close: close.clone(),
            },
        );
        (id, close)
    }

    fn remove(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    fn set_busy(&mut self, id: u64, busy: bool) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.idle_since = if busy { None } else { Some(Instant::now()) };
        }
    }

    /// While more than `keep` connections are open, closes the one idle
    /// longest; returns whether it closed one. Connections busy answering
    /// are never closed (they end by [`CONNECTION_TIMEOUT`] at the latest).
    fn evict_idlest(&mut self, keep: usize) -> bool {
        if self.by_id.len() <= keep {
            return false;
        }
        let idlest = self
            .by_id
            .iter()
            .filter_map(|(id, c)| c.idle_since.map(|since| (since, *id)))
            .min();
        let Some((_, id)) = idlest else {
            return false;
        };
        if let Some(c) = self.by_id.remove(&id) {
            // `notify_one` keeps the wakeup if the task is not waiting yet.
            c.close.notify_one();
        }
        true
    }
}

/// Marks a connection busy while its request is answered.
struct Busy {
    open: Arc<Mutex<OpenConnections>>,
    id: u64,
}

impl Busy {
    fn start(open: &Arc<Mutex<OpenConnections>>, id: u64) -> Busy {
        open.lock().unwrap().set_busy(id, true);
        Busy {
            open: open.clone(),
            id,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.open.lock().unwrap().set_busy(self.id, false);
    }
}

fn declared_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
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
    if declared_length(&request).is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large(limit));
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
        return Err(too_large(limit));
    }
    Ok(Bytes::from(kept))
}

/// 413, saying what the limit is.
fn too_large(limit: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the limit of {limit} bytes ({} KiB); \
             send a smaller body",
            limit / 1024
        ),
    )
}

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_by_closing_the_longest_idle_connection_never_a_busy_one() {
        let mut open = OpenConnections::default();
        let (first, first_close) = open.add();
        let (second, second_close) = open.add();
        let (third, _) = open.add();
        open.set_busy(first, true);
        assert!(!open.evict_idlest(3), "under the cap nothing is closed");
        assert!(open.evict_idlest(2));
        // The oldest is busy answering: the next oldest idle one goes.
        assert!(open.by_id.contains_key(&first) && !open.by_id.contains_key(&second));
        assert!(open.evict_idlest(1));
        assert!(!open.by_id.contains_key(&third));
        // Only busy connections left: none is closed.
        assert!(!open.evict_idlest(0));
        // The closed connections' tasks are told (the wakeup is kept).
        let waker = std::task::Waker::noop().clone();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut notified = std::pin::pin!(second_close.notified());
        assert!(notified.as_mut().poll(&mut cx).is_ready());
        let mut not_closed = std::pin::pin!(first_close.notified());
        assert!(not_closed.as_mut().poll(&mut cx).is_pending());
    }
}
