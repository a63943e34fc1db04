//! A job's `health` block.
//!
//! ContainerPilot 3 only had `exec` checks; `http` and `tcp` are ours, so a
//! check needs no curl or nc in the image (a sidecar checking the app over
//! the pod's shared network has neither). Their values are checked here as
//! far as can be without the network: a URL autopilot can GET, a status
//! range, a `host:port` it can connect to. `interval` and `ttl` were integer
//! seconds in ContainerPilot; we also accept duration strings (`"5s"`), which
//! configs in the wild use and ContainerPilot rejected for no good reason.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::fields::{Fields, no_special};
use super::values;
use super::when::MIN_TASK_DURATION;
use crate::config::error::Reporter;
use crate::config::model::{HealthCheck, HealthConfig};
use crate::config::source::{Span, Spanned, Value};

pub(crate) const HEALTH_KEYS: &[&str] = &[
    "exec", "http", "tcp", "interval", "ttl", "timeout", "logging",
];
pub(crate) const HTTP_KEYS: &[&str] = &["url", "status"];
pub(crate) const LOGGING_KEYS: &[&str] = &["raw"];

/// Statuses that count as healthy when `http.status` is not given: 2xx, as
/// Consul's own HTTP checks count them. Redirects are not followed, so an
/// app that answers its health URL with a redirect needs `status: "200-399"`
/// (the kubelet's httpGet range).
pub const DEFAULT_OK_STATUS: RangeInclusive<u16> = 200..=299;

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<HealthConfig> {
    if let Value::String(_) | Value::Array(_) = v.value {
        rep.error(
            v.span(),
            path,
            format!("expected an object, found {}", v.value.kind()),
            Some(
                "a health check is an object: `health: {exec: \"/bin/check\", interval: 5, ttl: 10}` \
                 (a bare command is ContainerPilot 2 syntax)"
                    .into(),
            ),
        );
        return None;
    }
    let mut f = Fields::open(v, path, "a health check", HEALTH_KEYS, rep)?;

    let exec = f.get("exec", rep);
    let http = f.get("http", rep);
    let tcp = f.get("tcp", rep);
    let given: Vec<(&str, &Spanned<Value>)> = [("exec", exec), ("http", http), ("tcp", tcp)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let check = match given.as_slice() {
        [] => {
            rep.error(
                f.span(),
                path,
                "a health check needs one of `exec`, `http` or `tcp`",
                Some("for example `exec: \"/usr/bin/curl -fs http://localhost/health\"`".into()),
            );
            None
        }
        [(kind, value)] => decode_check(kind, value, &f.path_of(kind), rep),
        [(first, _), rest @ ..] => {
            for (kind, value) in rest {
                rep.error(
                    value.span(),
                    &f.path_of(kind),
                    format!("`{kind}` cannot be combined with `{first}`"),
                    Some("a job has one health check: keep one of `exec`, `http` and `tcp`".into()),
                );
            }
            None
        }
    };

    let interval = required_seconds(
        &mut f,
        "interval",
        "seconds between two checks",
        "interval: 5",
        rep,
    );
    let ttl = required_seconds(
        &mut f,
        "ttl",
        "seconds a passing check stays valid in Consul",
        "ttl: 10",
        rep,
    );
    if let (Some((interval, _)), Some((ttl, ttl_span))) = (interval, ttl)
        && ttl < interval
    {
        rep.warning(
            ttl_span,
            &f.path_of("ttl"),
            "`ttl` is shorter than `interval`: Consul will mark the service critical between checks",
            Some("make `ttl` longer than `interval`, for example twice as long".into()),
        );
    }
    let timeout = match f.get("timeout", rep).filter(|t| !values::is_blank(t)) {
        Some(t) => values::duration_at_least(
            t,
            &f.path_of("timeout"),
            rep,
            "timeout: \"5s\"",
            MIN_TASK_DURATION,
        ),
        None => interval.map(|(d, _)| d),
    };
    let logging_raw = match f.get("logging", rep) {
        Some(v) => logging_raw(v, &f.path_of("logging"), rep),
        None => false,
    };
    f.finish(rep, &health_key_hint);

    Some(HealthConfig {
        check: check?,
        interval: interval?.0,
        ttl: ttl?.0,
        timeout: timeout?,
        logging_raw,
    })
}

/// `logging: {raw: true}` of a job or a health check.
pub fn logging_raw(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> bool {
    let Some(mut f) = Fields::open(v, path, "logging options", LOGGING_KEYS, rep) else {
        return false;
    };
    let raw = match f.get("raw", rep) {
        Some(r) => values::bool(r, &f.path_of("raw"), rep).unwrap_or(false),
        None => false,
    };
    f.finish(rep, &no_special);
    raw
}

/// A required positive number of seconds (`interval`, `ttl`).
fn required_seconds(
    f: &mut Fields<'_>,
    key: &str,
    meaning: &str,
    example: &str,
    rep: &mut Reporter<'_>,
) -> Option<(Duration, Span)> {
    match f.get(key, rep) {
        Some(v) if !values::is_blank(v) => {
            values::duration_at_least(v, &f.path_of(key), rep, example, Duration::from_nanos(1))
                .map(|d| (d, v.span()))
        }
        _ => {
            rep.error(
                f.span(),
                f.path(),
                format!("missing `{key}`: the {meaning}"),
                Some(format!("add `{example}`")),
            );
            None
        }
    }
}

fn decode_check(
    kind: &str,
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<HealthCheck> {
    match kind {
        "exec" => values::exec(v, path, rep).map(HealthCheck::Exec),
        "http" => decode_http(v, path, rep),
        _ => decode_tcp(v, path, rep),
    }
}

fn decode_http(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<HealthCheck> {
    let (url_value, url_path, ok_status) = match &v.value {
        Value::String(_) => (v, path.to_string(), Some(DEFAULT_OK_STATUS)),
        _ => {
            let mut f = Fields::open(
                v,
                path,
                "an HTTP check (a URL or `{url, status}`)",
                HTTP_KEYS,
                rep,
            )?;
            let status = match f.get("status", rep) {
                Some(s) => status_range(s, &f.path_of("status"), rep),
                None => Some(DEFAULT_OK_STATUS),
            };
            let url = f.get("url", rep);
            let url_path = f.path_of("url");
            let span = f.span();
            f.finish(rep, &http_key_hint);
            let Some(url) = url else {
                rep.error(
                    span,
                    path,
                    "missing `url`",
                    Some("add `url: \"http://localhost:8080/health\"`".into()),
                );
                return None;
            };
            (url, url_path, status)
        }
    };
    let url = values::non_empty_string(url_value, &url_path, rep, "write the URL to GET")?;
    if let Err((message, hint)) = check_url(&url) {
        rep.error(url_value.span(), &url_path, message, Some(hint));
        return None;
    }
    Some(HealthCheck::Http {
        url,
        ok_status: ok_status?,
    })
}

/// Whether an HTTP check can GET `url`; else what is wrong and how to fix it.
fn check_url(url: &str) -> Result<(), (String, String)> {
    const EXAMPLE: &str = "write a full URL, for example `http://localhost:8080/health`";
    let Some((scheme, _)) = url.split_once("://") else {
        return Err((
            format!("`{url}` is not an http:// or https:// URL"),
            EXAMPLE.to_string(),
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err((
            format!("`{url}`: an HTTP check GETs http:// or https:// URLs, not {scheme}://"),
            format!(
                "{EXAMPLE}; to check that a port accepts connections write `tcp: \"host:port\"`"
            ),
        ));
    }
    let parsed = crate::http::outbound::Url::parse(url).map_err(|e| {
        (
            format!("`{url}` is not a valid URL: {e}"),
            EXAMPLE.to_string(),
        )
    })?;
    if parsed.has_credentials {
        return Err((
            format!("`{url}` holds credentials, which an HTTP check does not send"),
            "remove `user:password@` (the URL is logged when the check fails); for an endpoint \
             that needs them, use an `exec` check"
                .to_string(),
        ));
    }
    Ok(())
}

/// `"200-299"`, `"200"` or `200`.
fn status_range(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<RangeInclusive<u16>> {
    let text = values::string(v, path, rep)?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    let range = match text.split_once('-') {
        Some((lo, hi)) => parse(lo).zip(parse(hi)),
        None => parse(&text).map(|c| (c, c)),
    };
    match range {
        Some((lo, hi)) if lo <= hi => Some(lo..=hi),
        Some((lo, hi)) => {
            rep.error(
                v.span(),
                path,
                format!("the status range `{text}` ends before it starts"),
                Some(format!("write the lower status first: `\"{hi}-{lo}\"`")),
            );
            None
        }
        None => {
            rep.error(
                v.span(),
                path,
                format!("invalid status `{text}`"),
                Some(
                    "write one HTTP status (`200`) or a range (`\"200-399\"`) between 100 and 599"
                        .into(),
                ),
            );
            None
        }
    }
}

fn decode_tcp(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<HealthCheck> {
    let address = values::non_empty_string(v, path, rep, "write `host:port`")?;
    match check_host_port(address.trim()) {
        Ok(()) => Some(HealthCheck::Tcp {
            address: address.trim().to_string(),
        }),
        Err((message, hint)) => {
            rep.error(v.span(), path, message, Some(hint));
            None
        }
    }
}

/// Whether a TCP check can connect to `address`; else what is wrong and how
/// to fix it. IPv6 addresses go in brackets, as in a URL.
fn check_host_port(address: &str) -> Result<(), (String, String)> {
    if let Some((scheme, rest)) = address.split_once("://") {
        return Err((
            format!("`{address}` has a scheme: a TCP check takes `host:port`"),
            format!(
                "write `{rest}`{}",
                if scheme.starts_with("http") {
                    ", or use `http:` for an HTTP check"
                } else {
                    ""
                }
            ),
        ));
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once(']') else {
            return Err((
                format!("`{address}` has no closing `]`"),
                "write an IPv6 address as `[::1]:5432`".to_string(),
            ));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err((
                format!("`{ip}` in `{address}` is not an IPv6 address"),
                "brackets are for IPv6 addresses only: `[::1]:5432`, `localhost:5432`".to_string(),
            ));
        }
        let Some(port) = port.strip_prefix(':') else {
            return Err((
                format!("`{address}` has no port"),
                format!("add the port: `[{ip}]:5432`"),
            ));
        };
        (ip, port)
    } else {
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err((
                format!("`{address}` is not a `host:port` address: the port is missing"),
                format!("add the port to connect to, for example `{address}:5432`"),
            ));
        };
        if host.contains(':') {
            return Err((
                format!("`{address}` is ambiguous: an IPv6 address needs brackets"),
                format!("write `[{host}]:{port}`"),
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err((
            format!("`{address}` has no host"),
            format!("name the host to connect to, for example `localhost:{port}`"),
        ));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err((
            format!("`{host}` in `{address}` is not a host name or IP address"),
            "write `host:port`, for example `localhost:5432` or `10.0.0.2:5432`".to_string(),
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err((
            format!("`{port}` in `{address}` is not a port number"),
            format!("write a port between 1 and 65535, for example `{host}:5432`"),
        )),
    }
}

/// Explains keys of `health` that belong elsewhere.
fn health_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "url" | "status" => {
            "write the URL inside `http`: `http: {url: \"http://localhost:8080/health\", status: \"200-399\"}`"
        }
        "port" | "host" | "address" => "write the address inside `tcp`: `tcp: \"localhost:5432\"`",
        "poll" => "ContainerPilot 2's `poll` is `interval` in ContainerPilot 3",
        _ => return None,
    };
    Some(hint.to_string())
}

/// Explains keys of `http` that an HTTP check does not have.
fn http_key_hint(key: &str) -> Option<String> {
    let hint = match key.to_ascii_lowercase().as_str() {
        "method" => "an HTTP check always sends GET; for another method use an `exec` check",
        "headers" | "header" | "host" => {
            "an HTTP check sends no custom headers (Host comes from the URL); use an `exec` \
             check with `curl -H` for that"
        }
        "tlsskipverify" | "tls_skip_verify" | "insecure" | "verify" | "tls" => {
            "https checks always verify the certificate against the system's CAs; for a \
             self-signed certificate use an `exec` check with `curl -k`"
        }
        "timeout" | "interval" | "ttl" => "this belongs in `health`, beside `http`",
        "follow" | "redirects" | "followredirects" => {
            "redirects are never followed: count them healthy with `status: \"200-399\"`"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::error::ConfigError;

    fn health_of(health: &str) -> Result<HealthCheck, ConfigError> {
        let text = format!(
            "{{jobs: [{{name: 'web', port: 80,\n health: {{{health}, interval: 5, ttl: 10}}}}]}}"
        );
        crate::config::parse_str(&text, "t.json5")
            .map(|l| l.config.jobs[0].health.clone().unwrap().check)
    }

    /// The one error of `health`: (path, message, hint).
    fn error_of(health: &str) -> (String, String, String) {
        let err = health_of(health).expect_err("should be refused");
        let errors: Vec<_> = err.errors().collect();
        assert_eq!(errors.len(), 1, "{err}");
        let d = errors[0];
        assert_eq!(d.line, 2, "{d}");
        (
            d.path.clone(),
            d.message.clone(),
            d.hint.clone().unwrap_or_default(),
        )
    }

    #[test]
    fn http_checks_accept_urls_and_ranges() {
        assert_eq!(
            health_of("http: 'http://127.0.0.1:8080/health?x=1'").unwrap(),
            HealthCheck::Http {
                url: "http://127.0.0.1:8080/health?x=1".into(),
                ok_status: 200..=299,
            }
        );
        for (status, range) in [
            ("'200-399'", 200..=399),
            ("' 204 - 204 '", 204..=204),
            ("200", 200..=200),
            ("'301'", 301..=301),
        ] {
            assert_eq!(
                health_of(&format!(
                    "http: {{url: 'https://[::1]:8443/ready', status: {status}}}"
                ))
                .unwrap(),
                HealthCheck::Http {
                    url: "https://[::1]:8443/ready".into(),
                    ok_status: range,
                }
            );
        }
    }

    #[test]
    fn bad_http_values_say_what_and_how_to_fix() {
        let (path, message, hint) = error_of("http: 'localhost:8080/health'");
        assert_eq!(path, "jobs[0].health.http");
        assert!(
            message.contains("not an http:// or https:// URL"),
            "{message}"
        );
        assert!(hint.contains("http://localhost:8080/health"), "{hint}");

        let (_, message, hint) = error_of("http: 'tcp://db:5432'");
        assert!(message.contains("not tcp://"), "{message}");
        assert!(hint.contains("tcp: \"host:port\""), "{hint}");

        let (_, message, _) = error_of("http: 'http://'");
        assert!(message.contains("not a valid URL: empty host"), "{message}");

        let (_, message, _) = error_of("http: 'http://web:99999/'");
        assert!(
            message.contains("not a valid URL: invalid port"),
            "{message}"
        );

        let (_, message, hint) = error_of("http: 'http://u:secret@web/'");
        assert!(message.contains("credentials"), "{message}");
        assert!(hint.contains("exec"), "{hint}");

        let (path, message, hint) = error_of("http: {url: 'http://x/', status: '299-200'}");
        assert_eq!(path, "jobs[0].health.http.status");
        assert!(message.contains("ends before it starts"), "{message}");
        assert!(hint.contains("\"200-299\""), "{hint}");

        for status in ["'600'", "'2xx'", "'abc'", "99", "'200-'"] {
            let (path, message, hint) =
                error_of(&format!("http: {{url: 'http://x/', status: {status}}}"));
            assert_eq!(path, "jobs[0].health.http.status", "{status}");
            assert!(message.starts_with("invalid status"), "{message}");
            assert!(hint.contains("between 100 and 599"), "{hint}");
        }

        let (path, message, _) = error_of("http: {status: '200'}");
        assert_eq!(path, "jobs[0].health.http");
        assert_eq!(message, "missing `url`");

        let (path, message, hint) = error_of("http: {url: 'http://x/', headers: {Host: 'a'}}");
        assert_eq!(path, "jobs[0].health.http.headers");
        assert!(message.contains("unknown key `headers`"), "{message}");
        assert!(hint.contains("curl -H"), "{hint}");

        let (_, _, hint) = error_of("http: {url: 'https://x/', tlsSkipVerify: true}");
        assert!(hint.contains("curl -k"), "{hint}");
    }

    #[test]
    fn tcp_checks_accept_host_port() {
        for address in [
            "localhost:5432",
            "10.0.0.2:1",
            "[::1]:65535",
            "db.internal:80",
        ] {
            assert_eq!(
                health_of(&format!("tcp: '{address}'")).unwrap(),
                HealthCheck::Tcp {
                    address: address.into()
                }
            );
        }
    }

    #[test]
    fn bad_tcp_values_say_what_and_how_to_fix() {
        let cases = [
            ("localhost", "the port is missing", "`localhost:5432`"),
            (":5432", "has no host", "`localhost:5432`"),
            ("db:0", "not a port number", "between 1 and 65535"),
            ("db:65536", "not a port number", "`db:5432`"),
            ("db:pg", "not a port number", "between 1 and 65535"),
            ("::1:5432", "needs brackets", "`[::1]:5432`"),
            ("[::1]", "has no port", "`[::1]:5432`"),
            ("[db]:5432", "not an IPv6 address", "IPv6 addresses only"),
            ("[::1:5432", "no closing `]`", "`[::1]:5432`"),
            ("tcp://db:5432", "has a scheme", "write `db:5432`"),
            ("http://web:80", "has a scheme", "use `http:`"),
            ("my host:80", "not a host name", "localhost:5432"),
        ];
        for (address, message_part, hint_part) in cases {
            let (path, message, hint) = error_of(&format!("tcp: '{address}'"));
            assert_eq!(path, "jobs[0].health.tcp", "{address}");
            assert!(message.contains(message_part), "{address}: {message}");
            assert!(hint.contains(hint_part), "{address}: {hint}");
        }
        let (_, message, _) = error_of("tcp: ''");
        assert!(message.contains("must not be empty"), "{message}");
        let (_, message, _) = error_of("tcp: {host: 'db', port: 5432}");
        assert!(message.contains("expected a string"), "{message}");
    }

    #[test]
    fn misplaced_health_keys_are_explained() {
        let (path, _, hint) = error_of("http: 'http://x/', url: 'http://y/'");
        assert_eq!(path, "jobs[0].health.url");
        assert!(hint.contains("inside `http`"), "{hint}");
    }
}
