//! Where and how to reach Consul: the `consul` config section merged with the
//! `CONSUL_*` environment variables, checked into an [`Endpoint`].
//!
//! Precedence, field by field (ContainerPilot's, which is the Consul Go
//! client's): a value written in the config wins; the environment fills what
//! the config leaves out; then the defaults. The one exception is the ACL
//! token: `CONSUL_HTTP_TOKEN` wins over `consul.token`, as in ContainerPilot,
//! so a secret injected at run time replaces one baked into an image.
//! TLS verification is on unless `tls.verify: false` or
//! `CONSUL_HTTP_SSL_VERIFY=false` turns it off.
//!
//! Nothing here touches the network or the filesystem, so every rule is unit
//! tested; [`super::client`] loads the certificate files.

use crate::config::model::ConsulConfig;
use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// Used when neither the config nor `CONSUL_HTTP_ADDR` names an agent.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";
/// Port when an address names only a host: Consul's HTTP port...
const DEFAULT_HTTP_PORT: u16 = 8500;
/// ...and the port Consul's docs use for HTTPS.
const DEFAULT_HTTPS_PORT: u16 = 8501;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

/// A value and the place it came from (`consul.tls.cafile`, `CONSUL_CACERT`),
/// so a problem found later (an unreadable file) can say where to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub from: &'static str,
}

/// TLS settings after merging config and environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub ca_file: Option<Sourced<PathBuf>>,
    pub ca_path: Option<Sourced<PathBuf>>,
    pub client_cert: Option<Sourced<PathBuf>>,
    pub client_key: Option<Sourced<PathBuf>>,
    /// The name the agent's certificate must carry, when it differs from
    /// the host we connect to.
    pub server_name: Option<String>,
    pub verify: bool,
}

impl TlsSettings {
    fn is_configured(&self) -> bool {
        self.ca_file.is_some()
            || self.ca_path.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
            || self.server_name.is_some()
            || !self.verify
    }
}

/// Everything needed to talk to the agent. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    pub tls: TlsSettings,
    /// Things worth a warning that do not stop autopilot.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.display_url())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl Endpoint {
    /// `host` as it goes into a URL (IPv6 in brackets).
    fn url_host(host: &str) -> String {
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    }

    /// The agent's URL for logs: `https://consul:8501`.
    pub fn display_url(&self) -> String {
        format!(
            "{}://{}:{}",
            self.scheme.as_str(),
            Self::url_host(&self.host),
            self.port
        )
    }

    /// The base of every request URL. With HTTPS and a `servername`, the URL
    /// names the server name (so TLS checks the certificate against it) and
    /// the client connects to `host` instead (see `client::ConsulClient::new`).
    pub fn request_base(&self) -> String {
        match self.pinned_name() {
            Some(name) => format!("https://{}:{}", Self::url_host(name), self.port),
            None => self.display_url(),
        }
    }

    /// The TLS server name to use instead of `host`, if any.
    pub fn pinned_name(&self) -> Option<&str> {
        match (&self.tls.server_name, self.scheme) {
            (Some(name), Scheme::Https) if !name.eq_ignore_ascii_case(&self.host) => Some(name),
            _ => None,
        }
    }
}

/// A `consul` setting autopilot cannot use: what is wrong, where, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulError {
    /// The config path or environment variable at fault.
    pub at: String,
    pub what: String,
    pub fix: String,
}

impl ConsulError {
    pub fn new(
        at: impl Into<String>,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConsulError {
        ConsulError {
            at: at.into(),
            what: what.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for ConsulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consul: {}: {}; {}", self.at, self.what, self.fix)
    }
}

impl std::error::Error for ConsulError {}

/// Merges `config` with the environment (looked up through `env`) into an
/// [`Endpoint`], or says what is wrong.
pub fn resolve(
    config: &ConsulConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, ConsulError> {
    let env = |key: &str| {
        env(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut warnings = Vec::new();

    let (text, at) = if !config.address.trim().is_empty() {
        (config.address.trim().to_string(), "consul.address")
    } else if let Some(addr) = env("CONSUL_HTTP_ADDR") {
        (addr, "CONSUL_HTTP_ADDR")
    } else {
        (DEFAULT_ADDRESS.to_string(), "the default address")
    };
    let parsed = parse_address(&text, at)?;

    let field_scheme = match config
        .scheme
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(Scheme::parse(s).ok_or_else(|| {
            ConsulError::new(
                "consul.scheme",
                format!("unknown scheme {s:?}"),
                "write \"http\" or \"https\"",
            )
        })?),
        None => None,
    };
    let scheme = match (parsed.scheme, field_scheme) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConsulError::new(
                "consul.scheme",
                format!(
                    "`scheme: \"{}\"` contradicts the address {text:?}",
                    b.as_str()
                ),
                "remove `scheme`, or the scheme at the start of the address",
            ));
        }
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => match env("CONSUL_HTTP_SSL") {
            Some(v) => match parse_bool(&v) {
                Some(true) => Scheme::Https,
                Some(false) => Scheme::Http,
                None => return Err(bad_bool("CONSUL_HTTP_SSL", &v)),
            },
            None => Scheme::Http,
        },
    };
    let port = parsed.port.unwrap_or(match scheme {
        Scheme::Http => DEFAULT_HTTP_PORT,
        Scheme::Https => DEFAULT_HTTPS_PORT,
    });

    let token = env("CONSUL_HTTP_TOKEN").or_else(|| {
        config
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
    });

    let tls = resolve_tls(config, &env)?;
    if scheme == Scheme::Http && config.tls.is_some() && tls.is_configured() {
        warnings.push(format!(
            "consul: the `tls` settings are ignored because {} uses http; write `scheme: \"https\"` \
             or an https:// address to use them",
            at
        ));
    }
    Ok(Endpoint {
        scheme,
        host: parsed.host,
        port,
        token,
        tls,
        warnings,
    })
}

fn resolve_tls(
    config: &ConsulConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsSettings, ConsulError> {
    let written = config.tls.clone().unwrap_or_default();
    let pick =
        |value: Option<PathBuf>, at: &'static str, var: &'static str| -> Option<Sourced<PathBuf>> {
            match value.filter(|p| !p.as_os_str().is_empty()) {
                Some(p) => Some(Sourced { value: p, from: at }),
                None => env(var).map(|v| Sourced {
                    value: PathBuf::from(v),
                    from: var,
                }),
            }
        };
    let env_verify = match env("CONSUL_HTTP_SSL_VERIFY") {
        Some(v) => parse_bool(&v).ok_or_else(|| bad_bool("CONSUL_HTTP_SSL_VERIFY", &v))?,
        None => true,
    };
    // `verify` defaults to true in the model, so false can only be written on purpose.
    let verify = config.tls.as_ref().is_none_or(|t| t.verify) && env_verify;
    let server_name = match written
        .server_name
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        Some(name) => Some(Sourced {
            value: name,
            from: "consul.tls.servername",
        }),
        None => env("CONSUL_TLS_SERVER_NAME").map(|name| Sourced {
            value: name,
            from: "CONSUL_TLS_SERVER_NAME",
        }),
    };
    if let Some(name) = &server_name
        && !is_host_name(&name.value)
    {
        return Err(ConsulError::new(
            name.from,
            format!("{:?} is not a host name", name.value),
            "write the name in the agent's certificate, e.g. \"server.dc1.consul\"",
        ));
    }
    let tls = TlsSettings {
        ca_file: pick(written.ca_file, "consul.tls.cafile", "CONSUL_CACERT"),
        ca_path: pick(written.ca_path, "consul.tls.capath", "CONSUL_CAPATH"),
        client_cert: pick(
            written.client_cert,
            "consul.tls.clientcert",
            "CONSUL_CLIENT_CERT",
        ),
        client_key: pick(
            written.client_key,
            "consul.tls.clientkey",
            "CONSUL_CLIENT_KEY",
        ),
        server_name: server_name.as_ref().map(|s| s.value.clone()),
        verify,
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), None) => Err(ConsulError::new(
            cert.from,
            "a client certificate needs its private key",
            "set `tls.clientkey` (or CONSUL_CLIENT_KEY) too",
        )),
        (None, Some(key)) => Err(ConsulError::new(
            key.from,
            "a client key needs its certificate",
            "set `tls.clientcert` (or CONSUL_CLIENT_CERT) too",
        )),
        _ => Ok(()),
    }?;
    Ok(tls)
}

/// An address as written, split into its parts.
#[derive(Debug, PartialEq, Eq)]
struct ParsedAddress {
    scheme: Option<Scheme>,
    host: String,
    port: Option<u16>,
}

/// Parses `host`, `host:port`, `[v6]:port`, or a URL with `http`/`https`.
fn parse_address(text: &str, at: &str) -> Result<ParsedAddress, ConsulError> {
    let example = "write \"consul:8500\", \"10.0.0.2:8500\" or \"https://consul:8501\"";
    let err = |what: String| ConsulError::new(at, what, example);
    let (scheme, rest) = match text.split_once("://") {
        Some((s, rest)) => match Scheme::parse(s) {
            Some(scheme) => (Some(scheme), rest),
            None if s.eq_ignore_ascii_case("unix") => {
                return Err(ConsulError::new(
                    at,
                    format!("{text:?}: unix sockets are not supported"),
                    "give the agent's HTTP address, e.g. \"127.0.0.1:8500\"",
                ));
            }
            None => {
                return Err(err(format!(
                    "{text:?}: unknown scheme {s:?} (only http and https)"
                )));
            }
        },
        None => (None, text),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !path.is_empty() && path != "/" {
        return Err(err(format!(
            "{text:?}: a path ({path:?}) is not supported: the agent's API is always at /v1"
        )));
    }
    if authority.contains('@') {
        return Err(ConsulError::new(
            at,
            format!("{text:?}: user names or passwords in the address are not supported"),
            "remove them and give an ACL token with `consul.token` or CONSUL_HTTP_TOKEN",
        ));
    }
    if authority.chars().any(char::is_whitespace) {
        return Err(err(format!("{text:?} contains spaces")));
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or_else(|| err(format!("{text:?}: missing `]` after the IPv6 address")))?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(err(format!("{text:?}: {v6:?} is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| err(format!("{text:?}: expected `:port` after `]`")))?,
            ),
        };
        (v6.to_string(), port)
    } else if authority.matches(':').count() > 1 {
        if authority.parse::<Ipv6Addr>().is_err() {
            return Err(err(format!("{text:?} is not a host:port address")));
        }
        (authority.to_string(), None)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(err(format!("{text:?} has no host")));
    }
    if !host.contains(':') && !is_host_name(&host) {
        return Err(err(format!("{text:?}: {host:?} is not a valid host name")));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(err(format!(
                    "{text:?}: the port {p:?} is not a number from 1 to 65535"
                )));
            }
            Ok(n) => Some(n),
        },
    };
    Ok(ParsedAddress { scheme, host, port })
}

/// Host names and IPv4 addresses: letters, digits, `-`, `_` and dots.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Go's `strconv.ParseBool`, which the Consul tools use for these variables.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bad_bool(var: &str, value: &str) -> ConsulError {
    ConsulError::new(
        var,
        format!("{value:?} is not true or false"),
        format!("set {var} to true or false"),
    )
}

#[cfg(test)]
mod tests;
