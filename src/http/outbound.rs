//! The one small outbound HTTP/1.1 client of autopilot: Consul calls
//! (`discovery::client`) and HTTP health checks (`jobs::health`).
//!
//! It is hyper's connection-level client over a tokio TCP stream, wrapped in
//! rustls for `https://`, instead of reqwest: those two callers need a GET or
//! PUT to one known origin, a timeout and the TLS settings, and none of
//! reqwest's redirects, proxies, cookies, IDNA host names or connection-pool
//! machinery (the static binary was 1 MB larger with it; see Cargo.toml).
//!
//! Part of the `http` leaf: it imports nothing from the rest of autopilot, so
//! the jobs and discovery layers can share it without importing each other.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

mod tls;
mod url;

pub use hyper::Method;
pub use tls::{TlsOptions, pem_certs, pem_identity};
pub use url::{Url, with_query};

use tls::build_tls;

/// What every request says it is.
const USER_AGENT: &str = concat!("autopilot/", env!("CARGO_PKG_VERSION"));
/// At most this many idle kept-alive connections are kept for reuse.
const MAX_IDLE: usize = 8;
/// An idle connection older than this is not reused: a server or a NAT in
/// between may have dropped it silently. No timer closes it (no idle
/// wakeups); it is dropped when next looked at.
const MAX_IDLE_AGE: Duration = Duration::from_secs(60);

/// How a client behaves.
pub struct Settings {
    /// Sent with every request (an ACL token, say).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Bounds name resolution, the TCP connect and the TLS handshake
    /// (`None`: only the request's own timeout does).
    pub connect_timeout: Option<Duration>,
    /// Keep connections open for the next request; when false every request
    /// has its own connection and says `Connection: close`.
    pub keep_alive: bool,
    /// For `https://`; `None` trusts the system's CAs only.
    pub tls: Option<TlsOptions>,
    /// Connect to this host instead of the URL's, while TLS still checks the
    /// certificate against the URL's (Consul's `tls_server_name`).
    pub connect_host: Option<String>,
}

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum Failure {
    /// Name resolution or the TCP connect failed.
    Connect(std::io::Error),
    /// The TLS handshake failed (an untrusted certificate, say).
    Tls(std::io::Error),
    /// The connection broke during the exchange, or the answer was not HTTP.
    Http(hyper::Error),
    /// The TLS settings cannot be used (a bad client key, say).
    Setup(String),
    /// The connect timeout or the request's own timeout passed.
    TimedOut,
}

impl Failure {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::TimedOut)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&request_failure(self))
    }
}

/// A failed request's cause, without its URL: for a connection failure the
/// root cause ("cannot connect: Connection refused"), else the whole chain
/// ("connection closed before message completed"). Consul requests and HTTP
/// health checks share it.
pub fn request_failure(e: &Failure) -> String {
    match e {
        Failure::Connect(e) | Failure::Tls(e) => {
            let mut root: &dyn std::error::Error = e;
            while let Some(next) = root.source() {
                root = next;
            }
            format!("cannot connect: {root}")
        }
        Failure::Http(e) => error_chain(e),
        Failure::Setup(why) => why.clone(),
        Failure::TimedOut => "timed out".to_string(),
    }
}

/// The error and its causes in one line: a wrapper's own message alone
/// ("error sending request") hides the useful part ("connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// An HTTP answer, its body read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

/// Cheap to clone; clones share the idle connections and the TLS setup.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// Built on the first `https://` request: reading the system's CA
    /// certificates costs milliseconds, which a plain-HTTP setup (or one
    /// whose HTTPS calls come later) should not pay at start-up.
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    idle: Mutex<Vec<IdleConnection>>,
}

struct IdleConnection {
    /// Which origin it is connected to (`https://host:port`).
    origin: String,
    since: Instant,
    sender: SendRequest<Full<Bytes>>,
}

/// Any stream a request can go over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl HttpClient {
    pub fn new(settings: Settings) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                settings,
                tls: std::sync::OnceLock::new(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Checks the TLS settings now (the client certificate and key), so a
    /// mistake is reported at start-up rather than at the first request.
    pub fn check_tls(&self) -> Result<(), String> {
        self.tls_config().map(|_| ())
    }

    /// Sends one request and reads the whole answer, within `timeout`.
    /// `body` is the bytes and their Content-Type ("" sends none).
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Vec<u8>, &'static str)>,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        tokio::time::timeout(timeout, self.exchange(method, url, body, true))
            .await
            .unwrap_or(Err(Failure::TimedOut))
    }

    /// Like [`HttpClient::send`] without a body, but the answer's body is
    /// not read (`body` is empty): a health check judges the status only,
    /// and an app's endless or huge answer must not be waited for.
    pub async fn status_of(
        &self,
        method: Method,
        url: &Url,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        tokio::time::timeout(timeout, self.exchange(method, url, None, false))
            .await
            .unwrap_or(Err(Failure::TimedOut))
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Vec<u8>, &'static str)>,
        read_body: bool,
    ) -> Result<Response, Failure> {
        let origin = format!(
            "{}://{}:{}",
            if url.https { "https" } else { "http" },
            url.host,
            url.port
        );
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&url.path_and_query)
            .header(hyper::header::HOST, &url.authority)
            .header(hyper::header::USER_AGENT, USER_AGENT);
        for (name, value) in &self.inner.settings.headers {
            request = request.header(name, value);
        }
        if !self.inner.settings.keep_alive {
            request = request.header(hyper::header::CONNECTION, "close");
        }
        let bytes = match body {
            Some((bytes, content_type)) => {
                if !content_type.is_empty() {
                    request = request.header(hyper::header::CONTENT_TYPE, content_type);
                }
                bytes
            }
            None => Vec::new(),
        };
        let request = request
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| Failure::Setup(format!("cannot make the request: {e}")))?;
        // A kept-alive connection the server closed as we took it fails
        // before the request is written: then the request goes again, once,
        // on a new connection (never a request that may have been sent).
        let (sender, response) = match self.reuse(&origin).await {
            Some(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => (sender, response),
                Err(mut e) => match e.take_message() {
                    Some(request) => {
                        log::debug!("http: a kept-alive connection was closed: sending anew");
                        let mut sender = self.connect(url).await?;
                        let response = sender.send_request(request).await;
                        (sender, response.map_err(Failure::Http)?)
                    }
                    None => return Err(Failure::Http(e.into_error())),
                },
            },
            None => {
                let mut sender = self.connect(url).await?;
                let response = sender.send_request(request).await;
                (sender, response.map_err(Failure::Http)?)
            }
        };
        let (parts, incoming) = response.into_parts();
        if !read_body {
            return Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: Vec::new(),
            });
        }
        let body = incoming
            .collect()
            .await
            .map_err(Failure::Http)?
            .to_bytes()
            .to_vec();
        let closing = parts
            .headers
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if self.inner.settings.keep_alive && !closing {
            self.keep(origin, sender);
        }
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// An idle connection to `origin` that is still open, if any.
    async fn reuse(&self, origin: &str) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let found = {
                let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < MAX_IDLE_AGE);
                let at = idle.iter().rposition(|c| c.origin == origin)?;
                idle.swap_remove(at).sender
            };
            let mut sender = found;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn keep(&self, origin: String, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(IdleConnection {
                origin,
                since: Instant::now(),
                sender,
            });
        }
    }

    /// A new connection to `url`'s origin, its hyper half running on its own
    /// task (it ends when the connection closes).
    async fn connect(&self, url: &Url) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let settings = &self.inner.settings;
        let stream = match settings.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, self.open(url))
                .await
                .unwrap_or(Err(Failure::TimedOut))?,
            None => self.open(url).await?,
        };
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(Failure::Http)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("http: connection ended: {e}");
            }
        });
        Ok(sender)
    }

    async fn open(&self, url: &Url) -> Result<Box<dyn Stream>, Failure> {
        let host = self.inner.settings.connect_host.as_deref();
        let host = host.unwrap_or(&url.host);
        let tcp = TcpStream::connect((host, url.port))
            .await
            .map_err(Failure::Connect)?;
        let _ = tcp.set_nodelay(true);
        if !url.https {
            return Ok(Box::new(tcp));
        }
        let config = self.tls_config().map_err(Failure::Setup)?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| Failure::Setup(format!("{}: {e}", url.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(Failure::Tls)?;
        Ok(Box::new(tls))
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        self.inner
            .tls
            .get_or_init(|| build_tls(self.inner.settings.tls.as_ref()).map(Arc::new))
            .clone()
    }
}

#[cfg(test)]
mod tests;
