//! A small Consul HTTP API client: the few calls autopilot makes, over one
//! connection pool, with the ACL token and TLS settings applied.
//!
//! It also notices when the agent goes away and comes back (see
//! [`ConsulClient::agent_returns`]): registrations are re-sent then, because
//! an agent that restarted may have lost them. And it notices when the
//! cluster behind the agent regains a leader ([`ConsulClient::agent_changes`]):
//! blocking queries held across such a change may wait on an index the
//! cluster no longer knows, so watches start theirs again.

use super::address::{ConsulError, Endpoint, Scheme, Sourced};
use crate::http::outbound::{
    self, Failure, HttpClient, Method, Settings, TlsOptions, Url, request_failure,
};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long to wait for a TCP (and TLS) connection to the agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Budget for an ordinary (non-blocking) call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time a blocking query gets beyond its `wait`: Consul adds up to
/// wait/16 of jitter, and the answer must still travel back.
const BLOCKING_SLACK: Duration = Duration::from_secs(15);

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No HTTP answer: connection refused or reset, timeout, TLS failure.
    Unreachable(String),
    /// The agent answered with an error status.
    Status { status: u16, body: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) => write!(f, "{why}"),
            CallError::Status { status, body } => {
                let body = body.trim();
                if body.is_empty() {
                    write!(f, "HTTP {status}")
                } else {
                    write!(f, "HTTP {status}: {}", truncate(body, 200))
                }
            }
        }
    }
}

/// An HTTP answer from the agent.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `X-Consul-Index`, for blocking queries.
    pub index: Option<u64>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The reply when its status is 2xx; any other status is a refusal,
    /// [`CallError::Status`] with the body.
    pub fn success(self) -> Result<Reply, CallError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(CallError::Status {
                status: self.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
            })
        }
    }
}

/// How fresh a read is, from the headers Consul sets on reads: whether the
/// answering server knew a leader (`X-Consul-KnownLeader`) and how long
/// since it last heard from it (`X-Consul-LastContact`, 0 on the leader).
/// A stale read (`?stale`) is only as good as these say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    pub known_leader: Option<bool>,
    pub last_contact: Option<Duration>,
}

impl Freshness {
    fn from_headers(headers: &HeaderMap) -> Freshness {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Freshness {
            known_leader: text("X-Consul-KnownLeader").and_then(|v| v.trim().parse().ok()),
            last_contact: text("X-Consul-LastContact")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_millis),
        }
    }
}

/// A blocking query's position: ask for changes after `index`, waiting at
/// most `wait` for one.
#[derive(Debug, Clone, Copy)]
pub struct Blocking {
    pub index: u64,
    pub wait: Duration,
}

/// The index for the next blocking query, per Consul's blocking-query guide:
/// reset to 0 when it goes backwards (the agent or cluster restarted, a
/// snapshot was restored), never block on 0 after the first answer, and
/// without an index (no `X-Consul-Index`) start over. Watches and leader
/// election follow it.
pub fn next_index(sent: u64, got: Option<u64>) -> u64 {
    match got {
        None => 0,
        Some(n) if n < sent => 0,
        Some(0) => 1,
        Some(n) => n,
    }
}

/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct ConsulClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    /// `scheme://host:port` that request paths are appended to.
    base: String,
    /// The agent's address for logs (never with the token).
    display: String,
    reach: Reachability,
}

impl ConsulClient {
    /// Builds the client; reads the TLS files named in `endpoint`.
    pub fn new(endpoint: &Endpoint) -> Result<ConsulClient, ConsulError> {
        let mut headers = Vec::new();
        if let Some(token) = &endpoint.token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                ConsulError::new(
                    "consul.token",
                    "the ACL token contains characters not allowed in an HTTP header",
                    "check the token (or CONSUL_HTTP_TOKEN) for line breaks or control characters",
                )
            })?;
            value.set_sensitive(true);
            headers.push((HeaderName::from_static("x-consul-token"), value));
        }
        let https = endpoint.scheme == Scheme::Https;
        let http = HttpClient::new(Settings {
            headers,
            connect_timeout: Some(CONNECT_TIMEOUT),
            keep_alive: true,
            tls: if https {
                Some(tls_options(endpoint)?)
            } else {
                None
            },
            // With a `servername`, request URLs name it (so TLS checks the
            // certificate against it) while the connection goes to the host.
            connect_host: endpoint.pinned_name().map(|_| endpoint.host.clone()),
        });
        if https {
            http.check_tls().map_err(|e| {
                ConsulError::new(
                    "consul",
                    format!("cannot set up the HTTP client: {e}"),
                    "check the `tls` settings",
                )
            })?;
        }
        Ok(ConsulClient {
            inner: Arc::new(Inner {
                http,
                base: endpoint.request_base(),
                display: endpoint.display_url(),
                reach: Reachability::new(),
            }),
        })
    }

    /// The agent's address, for logs.
    pub fn display_url(&self) -> &str {
        &self.inner.display
    }

    /// A receiver that changes each time the agent answers again after a
    /// period of being unreachable.
    pub fn agent_returns(&self) -> watch::Receiver<u64> {
        self.inner.reach.returns.subscribe()
    }

    /// A receiver that changes each time the agent answers again after
    /// being unreachable, and each time an answer says the cluster has a
    /// leader again after one said it had none (a new leader, perhaps a
    /// restored cluster): any blocking query open then may be waiting on a
    /// stale index.
    pub fn agent_changes(&self) -> watch::Receiver<u64> {
        self.inner.reach.changes.subscribe()
    }

    /// `PUT path` with an optional JSON body; any status but 2xx is an error.
    pub async fn put(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, CallError> {
        let body = body.map(|b| {
            (
                serde_json::to_vec(b).unwrap_or_default(),
                "application/json",
            )
        });
        self.send(Method::PUT, path, &[], body, CALL_TIMEOUT)
            .await?
            .success()
    }

    /// `GET path?query`, as a blocking query when `blocking` is given.
    /// Every HTTP status is returned as a [`Reply`]: for KV reads, 404 is an
    /// answer ("no such key"), not a failure.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        blocking: Option<Blocking>,
    ) -> Result<Reply, CallError> {
        self.read(path, query, blocking)
            .await
            .map(|(reply, _)| reply)
    }

    /// [`ConsulClient::get`], with how fresh the answer is (for stale reads).
    pub async fn read(
        &self,
        path: &str,
        query: &[(&str, String)],
        blocking: Option<Blocking>,
    ) -> Result<(Reply, Freshness), CallError> {
        let mut params: Vec<(&str, String)> = query.to_vec();
        let timeout = match blocking {
            Some(b) => {
                params.push(("index", b.index.to_string()));
                params.push(("wait", format!("{}ms", b.wait.as_millis())));
                b.wait + b.wait / 16 + BLOCKING_SLACK
            }
            None => CALL_TIMEOUT,
        };
        self.send_read(Method::GET, path, &params, None, timeout)
            .await
    }

    /// Any call with raw body bytes (KV values are not JSON), for the
    /// coordination commands and leader election. Every HTTP status is
    /// returned as a [`Reply`]: Consul answers `false` or 404 for a lost CAS
    /// or an unknown session, which callers tell apart from failures.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, CallError> {
        // Raw bytes (KV values are anything): no Content-Type.
        let body = body.map(|b| (b, ""));
        self.send(method, path, query, body, CALL_TIMEOUT).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(Vec<u8>, &'static str)>,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        self.send_read(method, path, query, body, timeout)
            .await
            .map(|(reply, _)| reply)
    }

    /// [`Self::send`], with what the answer says of its freshness.
    async fn send_read(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(Vec<u8>, &'static str)>,
        timeout: Duration,
    ) -> Result<(Reply, Freshness), CallError> {
        let shown = method.to_string();
        let url = format!("{}{}", self.inner.base, outbound::with_query(path, query));
        let outcome = match Url::parse(&url) {
            Ok(url) => self.inner.http.send(method, &url, body, timeout).await,
            Err(e) => Err(Failure::Setup(format!("invalid request URL {url}: {e}"))),
        };
        let outcome = outcome.map(|resp| {
            let reply = Reply {
                status: resp.status,
                index: resp
                    .headers
                    .get("X-Consul-Index")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
                body: resp.body,
            };
            (reply, Freshness::from_headers(&resp.headers))
        });
        let method = shown.as_str();
        match outcome {
            Ok((reply, fresh)) => {
                log::debug!("consul: {method} {path} -> {}", reply.status);
                self.inner.reach.answered(&self.inner.display);
                self.inner
                    .reach
                    .leader(&self.inner.display, fresh.known_leader);
                Ok((reply, fresh))
            }
            Err(e) => {
                let why = describe(e);
                log::debug!("consul: {method} {path} failed: {why}");
                self.inner.reach.unreachable(&self.inner.display, &why);
                Err(CallError::Unreachable(why))
            }
        }
    }
}

/// Tracks whether the agent answers, to log an outage once (not once per
/// retry) and to tell the registry when the agent is back; and whether the
/// cluster behind it knows a leader, to tell watches when it has one again.
struct Reachability {
    down: AtomicBool,
    returns: watch::Sender<u64>,
    /// An answer said the cluster has no leader (only stale reads get one).
    leaderless: AtomicBool,
    changes: watch::Sender<u64>,
}

impl Reachability {
    fn new() -> Reachability {
        Reachability {
            down: AtomicBool::new(false),
            returns: watch::Sender::new(0),
            leaderless: AtomicBool::new(false),
            changes: watch::Sender::new(0),
        }
    }

    /// Notes what an answer's `X-Consul-KnownLeader` said.
    fn leader(&self, display: &str, known: Option<bool>) {
        match known {
            Some(false) if !self.leaderless.swap(true, Ordering::Relaxed) => {
                log::warn!(
                    "consul at {display} answers without a known cluster leader: its data may be stale"
                );
            }
            Some(true) if self.leaderless.swap(false, Ordering::Relaxed) => {
                log::info!("consul at {display} knows a cluster leader again");
                self.changes.send_modify(|n| *n += 1);
            }
            _ => {}
        }
    }

    fn unreachable(&self, display: &str, why: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            log::warn!(
                "consul at {display} is unreachable ({why}): jobs keep running, retrying with backoff"
            );
        }
    }

    fn answered(&self, display: &str) {
        if self.down.swap(false, Ordering::Relaxed) {
            log::info!("consul at {display} answers again");
            self.returns.send_modify(|n| *n += 1);
            self.changes.send_modify(|n| *n += 1);
        }
    }
}

/// The TLS settings of an `https://` agent: its CA files (trusted besides
/// the system's CAs), the client identity, whether to verify at all.
fn tls_options(endpoint: &Endpoint) -> Result<TlsOptions, ConsulError> {
    let tls = &endpoint.tls;
    let mut options = TlsOptions::default();
    if let Some(ca) = &tls.ca_file {
        let pem = read_file(ca, "the CA certificate")?;
        let certs = outbound::pem_certs(&pem).ok_or_else(|| {
            ConsulError::new(
                ca.from,
                format!("{} holds no PEM certificate", ca.value.display()),
                "point it to the CA certificate (PEM) that signed the agent's certificate",
            )
        })?;
        options.extra_roots.extend(certs);
    }
    if let Some(dir) = &tls.ca_path {
        options.extra_roots.extend(certs_in_dir(dir)?);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = read_file(cert, "the client certificate")?;
        pem.push(b'\n');
        pem.extend(read_file(key, "the client key")?);
        let identity = outbound::pem_identity(&pem).map_err(|e| {
            ConsulError::new(
                cert.from,
                format!(
                    "cannot use {} with the key {} as a client identity: {e}",
                    cert.value.display(),
                    key.value.display(),
                ),
                "give a PEM certificate and its PEM private key (PKCS#8, RSA or EC)",
            )
        })?;
        options.identity = Some(identity);
    }
    if !tls.verify {
        log::warn!("consul: TLS certificate verification is turned off");
        options.accept_invalid_certs = true;
    }
    Ok(options)
}

fn read_file(file: &Sourced<PathBuf>, what: &str) -> Result<Vec<u8>, ConsulError> {
    std::fs::read(&file.value).map_err(|e| {
        ConsulError::new(
            file.from,
            format!("cannot read {what} {}: {e}", file.value.display()),
            "check the path, and that autopilot may read the file",
        )
    })
}

/// The certificates of every PEM file in `dir` (as Consul's `capath`).
fn certs_in_dir(dir: &Sourced<PathBuf>) -> Result<Vec<CertificateDer<'static>>, ConsulError> {
    let entries = std::fs::read_dir(&dir.value).map_err(|e| {
        ConsulError::new(
            dir.from,
            format!("cannot read the CA directory {}: {e}", dir.value.display()),
            "point it to a directory of PEM CA certificates",
        )
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths.iter().filter(|p| p.is_file()) {
        match std::fs::read(path)
            .ok()
            .as_deref()
            .and_then(outbound::pem_certs)
        {
            Some(found) => certs.extend(found),
            None => log::debug!(
                "consul: {} holds no PEM certificate; skipped",
                path.display()
            ),
        }
    }
    if certs.is_empty() {
        return Err(ConsulError::new(
            dir.from,
            format!("{} holds no PEM certificate", dir.value.display()),
            "point it to a directory of PEM CA certificates",
        ));
    }
    Ok(certs)
}

/// A failed request in a few words, without the URL: the query string
/// (with its index) adds nothing for the reader.
fn describe(e: Failure) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let text = request_failure(&e);
    match tls_hint(&text) {
        Some(hint) => format!("{text} ({hint})"),
        None => text,
    }
}

/// What to do about a TLS handshake failure, recognised by rustls's words.
fn tls_hint(text: &str) -> Option<&'static str> {
    if text.contains("UnknownIssuer") {
        Some("set consul.tls.cafile or CONSUL_CACERT to the CA that signed the agent's certificate")
    } else if text.contains("not valid for name") {
        Some(
            "set consul.tls.servername or CONSUL_TLS_SERVER_NAME to a name in the agent's certificate",
        )
    } else if text.contains("BadCertificate") || text.contains("CertificateRequired") {
        Some("the agent wants a client certificate: set consul.tls.clientcert and clientkey")
    } else {
        None
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Percent-encodes one path segment (a service name, a check ID).
pub fn segment(s: &str) -> String {
    encode(s, false)
}

/// Percent-encodes a KV key, keeping its `/` separators.
pub fn key_path(s: &str) -> String {
    encode(s.trim_start_matches('/'), true)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
