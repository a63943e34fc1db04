//! A job's `health` block.
//!
//! ContainerPilot 3 only had `exec` checks; `http` and `tcp` are ours, so a
//! check needs no curl or nc in the image. `interval` and `ttl` were integer
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

const HEALTH_KEYS: &[&str] = &[
    "exec", "http", "tcp", "interval", "ttl", "timeout", "logging",
];
const HTTP_KEYS: &[&str] = &["url", "status"];
const LOGGING_KEYS: &[&str] = &["raw"];

/// Statuses that count as healthy when `http.status` is not given.
const DEFAULT_OK_STATUS: RangeInclusive<u16> = 200..=299;

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
    f.finish(rep, &no_special);

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
            f.finish(rep, &no_special);
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
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        rep.error(
            url_value.span(),
            &url_path,
            format!("`{url}` is not an http:// or https:// URL"),
            Some("write a full URL, for example `http://localhost:8080/health`".into()),
        );
        return None;
    }
    Some(HealthCheck::Http {
        url,
        ok_status: ok_status?,
    })
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
        Some((lo, hi)) => parse(lo).zip(parse(hi)).filter(|(lo, hi)| lo <= hi),
        None => parse(&text).map(|c| (c, c)),
    };
    match range {
        Some((lo, hi)) => Some(lo..=hi),
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
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        rep.error(
            v.span(),
            path,
            format!("`{address}` is not a `host:port` address"),
            Some("for example `tcp: \"localhost:5432\"`".into()),
        );
        return None;
    }
    Some(HealthCheck::Tcp { address })
}
