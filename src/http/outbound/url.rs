//! The URLs the client understands: `http://` and `https://` with a host,
//! a port and a path, and the query strings Consul expects.

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
