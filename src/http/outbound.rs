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
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use hyper::Method;

/// What every request says it is.
const USER_AGENT: &str = concat!("autopilot/", env!("CARGO_PKG_VERSION"));
/// At most this many idle kept-alive connections are kept for reuse.
const MAX_IDLE: usize = 8;
/// An idle connection older than this is not reused: a server or a NAT in
/// between may have dropped it silently. No timer closes it (no idle
/// wakeups); it is dropped when next looked at.
const MAX_IDLE_AGE: Duration = Duration::from_secs(60);

/// A parsed `http://` or `https://` URL, as much of it as a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets), lowercase.
    pub host: String,
    pub port: u16,
    /// The `Host` header: the host, and the port when it is not the
    /// scheme's default.
    pub authority: String,
    /// What follows the authority, fragment dropped: at least `/`.
    pub path_and_query: String,
    /// Whether the URL holds `user:password@` (never sent).
    pub has_credentials: bool,
}

impl Url {
    /// Parses `text`; the error says what is wrong in a few words (the same
    /// words as the `url` crate for the mistakes people make: "empty host",
    /// "invalid port number").
    pub fn parse(text: &str) -> Result<Url, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| "relative URL without a base".to_string())?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(format!("unsupported scheme {scheme}"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (has_credentials, host_port) = match authority.rsplit_once('@') {
            Some((_, hp)) => (true, hp),
            None => (false, authority),
        };
        let (host, port) = split_host_port(host_port)?;
        let default_port = if https { 443 } else { 80 };
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| "invalid port number".to_string())?,
        };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == default_port {
            shown_host
        } else {
            format!("{shown_host}:{port}")
        };
        let path_and_query = match tail {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{}", percent_encode_target(t)),
            t => percent_encode_target(t),
        };
        Ok(Url {
            https,
            host,
            port,
            authority,
            path_and_query,
            has_credentials,
        })
    }
}

/// The host (lowercase, IPv6 without brackets) and the port text, if any.
fn split_host_port(s: &str) -> Result<(String, Option<&str>), String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or_else(|| "invalid IPv6 address".to_string())?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address".into());
        }
        let port = match after {
            "" => None,
            a => Some(
                a.strip_prefix(':')
                    .ok_or_else(|| "invalid port number".to_string())?,
            ),
        };
        (v6, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':');
    if !host.bytes().all(allowed) {
        return Err("invalid domain character".into());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Percent-encodes what may not appear in a request line (spaces, controls,
/// non-ASCII), as browsers and the `url` crate do; `%` escapes already there
/// are kept.
fn percent_encode_target(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b <= b' ' || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}') {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// `path` with `params` appended as its query string (form encoding, as
/// Go's `url.Values` and Consul expect).
pub fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let mut out = path.to_string();
    out.push(if path.contains('?') { '&' } else { '?' });
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode(k, &mut out);
        out.push('=');
        form_encode(v, &mut out);
    }
    out
}

fn form_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Trust and identity for `https://`.
#[derive(Default)]
pub struct TlsOptions {
    /// Trusted in addition to the system's CA certificates.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// A client certificate chain and its key, for agents that verify
    /// their clients.
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Accept any server certificate (Consul's `tls.verify: false`).
    pub accept_invalid_certs: bool,
}

/// Every certificate in a PEM bundle; `None` when there is none or the
/// PEM is damaged.
pub fn pem_certs(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty())
}

/// The certificates and the private key (PKCS#8, RSA or EC) in `pem`.
pub fn pem_identity(
    pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = pem_certs(pem).ok_or("no PEM certificate found")?;
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key found".to_string(),
        e => format!("the private key cannot be read: {e}"),
    })?;
    Ok((certs, key))
}

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

/// The rustls setup: ring's primitives, TLS 1.2 and 1.3, the system's CAs
/// plus `options`' own.
fn build_tls(options: Option<&TlsOptions>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if options.is_some_and(|o| o.accept_invalid_certs) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            log::debug!("http: system CA certificates: {e}");
        }
        roots.add_parsable_certificates(native.certs);
        for cert in options.map(|o| o.extra_roots.as_slice()).unwrap_or(&[]) {
            roots
                .add(cert.clone())
                .map_err(|e| format!("cannot use the CA certificate: {e}"))?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match options.and_then(|o| o.identity.as_ref()) {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("cannot use the client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Consul's `tls.verify: false`: any certificate is accepted, signatures
/// are still checked against it (as Go's InsecureSkipVerify does).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
