//! The control socket's routes.
//!
//! ContainerPilot's, at the paths its clients use:
//! `POST /v3/environ` (alias `/v3/env`), `POST /v3/metric`, `POST /v3/reload`,
//! `POST /v3/maintenance/enable|disable`, `GET /v3/ping`; and new ones:
//! `GET /v3/status`, `GET /v3/events` (in `events.rs`), `POST /v3/jobs/<name>/signal`, and
//! `GET|POST /v3/jobs/<name>/service` (live tags and meta, in `service.rs`).
//!
//! Every refusal is a 4xx with `{"error": "..."}` saying what to fix.

use super::{State, events, reload, service, status};
use crate::http;
use crate::supervisor::Request as SupervisorRequest;
use http::{Handler, Response};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use nix::sys::signal::Signal;
use serde_json::{Map, Value};
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::oneshot;

pub use http::MAX_BODY;

/// A recognized path.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Environ,
    Metric,
    Reload,
    Maintenance(bool),
    Ping,
    Status,
    /// The journal, as a blocking query.
    Events,
    Signal(String),
    /// A running job's Consul tags and meta.
    Service(String),
    Unknown,
}

impl Route {
    fn parse(path: &str) -> Route {
        match path {
            "/v3/environ" | "/v3/env" => Route::Environ,
            "/v3/metric" => Route::Metric,
            "/v3/reload" => Route::Reload,
            "/v3/maintenance/enable" => Route::Maintenance(true),
            "/v3/maintenance/disable" => Route::Maintenance(false),
            "/v3/ping" => Route::Ping,
            "/v3/status" => Route::Status,
            "/v3/events" => Route::Events,
            _ => {
                let job = |suffix: &str| {
                    path.strip_prefix("/v3/jobs/")
                        .and_then(|rest| rest.strip_suffix(suffix))
                        .filter(|name| !name.is_empty())
                        .and_then(percent_decode)
                };
                job("/signal")
                    .map(Route::Signal)
                    .or_else(|| job("/service").map(Route::Service))
                    .unwrap_or(Route::Unknown)
            }
        }
    }

    /// The path as a metric label: fixed per route, so label values stay few.
    fn label(&self) -> &'static str {
        match self {
            Route::Environ => "/v3/environ",
            Route::Metric => "/v3/metric",
            Route::Reload => "/v3/reload",
            Route::Maintenance(true) => "/v3/maintenance/enable",
            Route::Maintenance(false) => "/v3/maintenance/disable",
            Route::Ping => "/v3/ping",
            Route::Status => "/v3/status",
            Route::Events => "/v3/events",
            Route::Signal(_) => "/v3/jobs/signal",
            Route::Service(_) => "/v3/jobs/service",
            Route::Unknown => "other",
        }
    }

    /// The methods the route accepts (ping accepts any, as ContainerPilot's did).
    fn allows(&self, method: &Method) -> Result<(), &'static str> {
        match self {
            Route::Ping | Route::Unknown => Ok(()),
            Route::Status if matches!(*method, Method::GET | Method::HEAD) => Ok(()),
            Route::Status => Err("GET"),
            Route::Events if matches!(*method, Method::GET | Method::HEAD) => Ok(()),
            Route::Events => Err("GET"),
            Route::Service(_) if matches!(*method, Method::GET | Method::POST) => Ok(()),
            Route::Service(_) => Err("GET, POST"),
            _ if *method == Method::POST => Ok(()),
            _ => Err("POST"),
        }
    }
}

impl Handler for State {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response {
        let route = Route::parse(request.uri().path());
        let response = match route.allows(request.method()) {
            Err(allowed) => http::method_not_allowed(allowed, request.uri().path()),
            Ok(()) => self.route(&route, request).await,
        };
        log::debug!(
            "control: {} {} -> {}",
            route.label(),
            response.status().as_u16(),
            response.status().canonical_reason().unwrap_or("")
        );
        self.telemetry
            .control_request(route.label(), response.status().as_u16());
        response
    }
}

impl State {
    async fn route(self: &Arc<Self>, route: &Route, request: Request<Incoming>) -> Response {
        match route {
            Route::Ping => http::text(StatusCode::OK, "ok\n"),
            Route::Status => {
                let config = self.common.config.borrow().clone();
                http::json(
                    StatusCode::OK,
                    &status::collect(&self.common.board, &config),
                )
            }
            Route::Events => events::handle(self.common.bus.journal(), request.uri().query()).await,
            // These take no body, but a chunked one over the limit is still
            // refused (the server refuses one with a declared length).
            Route::Maintenance(on) => match body(request).await {
                Ok(_) => self.maintenance(*on).await,
                Err(r) => r.into_response(),
            },
            Route::Reload => match body(request).await {
                Ok(_) => match reload::reload(self).await {
                    Ok(summary) => http::json(StatusCode::OK, &summary),
                    Err(e) => http::error(e.status(), e.to_string()),
                },
                Err(r) => r.into_response(),
            },
            Route::Environ => match body(request).await {
                Ok(b) => self.put_environ(&b),
                Err(r) => r.into_response(),
            },
            Route::Metric => match body(request).await {
                Ok(b) => self.put_metric(&b),
                Err(r) => r.into_response(),
            },
            Route::Signal(job) => match body(request).await {
                Ok(b) => self.signal_job(job, &b).await,
                Err(r) => r.into_response(),
            },
            Route::Service(job) => service::handle(self, job, request).await,
            Route::Unknown => http::error(
                StatusCode::NOT_FOUND,
                format!(
                    "no such endpoint {}: see docs/control.md (e.g. GET /v3/ping, GET /v3/status, POST /v3/reload)",
                    request.uri().path()
                ),
            ),
        }
    }

    async fn maintenance(&self, on: bool) -> Response {
        let updated = self.common.board.in_maintenance() != on;
        match self.requests.send(SupervisorRequest::Maintenance(on)).await {
            Ok(()) => http::json(StatusCode::OK, &serde_json::json!({ "updated": updated })),
            Err(e) => http::error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }

    /// Sets or unsets environment values for the processes started from now
    /// on. A null or empty value unsets, as ContainerPilot documented.
    fn put_environ(&self, body: &[u8]) -> Response {
        let example = r#"{"NAME": "value", "OTHER": null}"#;
        let map = match json_object(body, example) {
            Ok(m) => m,
            Err(r) => return r.into_response(),
        };
        let mut changes = Vec::with_capacity(map.len());
        for (name, value) in map {
            if let Some(problem) = bad_env_name(&name) {
                return http::error(
                    StatusCode::BAD_REQUEST,
                    format!("environment name {name:?} {problem}"),
                );
            }
            let value = match value {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    return http::error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "the value of {name} must be a string or null (null unsets it), not {other}"
                        ),
                    );
                }
            };
            if value.as_ref().is_some_and(|v| v.contains('\0')) {
                return http::error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the value of {name} contains a NUL character, which no environment can hold"
                    ),
                );
            }
            changes.push((name, value));
        }
        let (mut set, mut unset) = (Vec::new(), Vec::new());
        for (name, value) in changes {
            match value {
                Some(_) => set.push(name.clone()),
                None => unset.push(name.clone()),
            }
            self.common.environ.set_user(&name, value);
        }
        let list = |names: &[String]| match names.is_empty() {
            true => "none".to_string(),
            false => names.join(", "),
        };
        log::info!(
            "control: environment updated (set: {}; unset: {})",
            list(&set),
            list(&unset)
        );
        http::json(
            StatusCode::OK,
            &serde_json::json!({ "set": set, "unset": unset }),
        )
    }

    /// Updates declared metrics; every update is checked before any applies.
    fn put_metric(&self, body: &[u8]) -> Response {
        let map = match json_object(body, r#"{"requests_total": 1, "temperature": 21.5}"#) {
            Ok(m) => m,
            Err(r) => return r.into_response(),
        };
        let mut updates = Vec::with_capacity(map.len());
        for (name, value) in map {
            // ContainerPilot's client sends values as strings.
            let number = match &value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match number {
                Some(n) => updates.push((name, n)),
                None => {
                    return http::error(
                        StatusCode::BAD_REQUEST,
                        format!("the value of metric {name} must be a number, not {value}"),
                    );
                }
            }
        }
        match self.telemetry.record(&updates) {
            Ok(()) => {
                let names: Vec<&String> = updates.iter().map(|(n, _)| n).collect();
                http::json(StatusCode::OK, &serde_json::json!({ "updated": names }))
            }
            Err(e) => http::error(StatusCode::BAD_REQUEST, e),
        }
    }

    /// 404 for a job the board does not know, naming the ones it does.
    pub(super) fn unknown_job(&self, job: &str) -> Response {
        let names: Vec<String> = self
            .common
            .board
            .all()
            .into_iter()
            .map(|j| j.name)
            .collect();
        http::error(
            StatusCode::NOT_FOUND,
            format!("no job named {job:?}; jobs are: {}", names.join(", ")),
        )
    }

    /// Sends a signal to one job's process group.
    async fn signal_job(&self, job: &str, body: &[u8]) -> Response {
        let signal = match parse_signal(body) {
            Ok(s) => s,
            Err(e) => return http::error(StatusCode::BAD_REQUEST, e),
        };
        let Some(status) = self.common.board.get(job) else {
            return self.unknown_job(job);
        };
        let Some(pid) = status.pid else {
            return http::error(
                StatusCode::CONFLICT,
                format!(
                    "job {job} has no running process (it is {})",
                    status.state.as_str()
                ),
            );
        };
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self
            .requests
            .send(SupervisorRequest::SignalJob(job.to_string(), signal, tx))
            .await
        {
            return http::error(StatusCode::SERVICE_UNAVAILABLE, e);
        }
        match rx.await {
            Ok(Ok(())) => {
                log::info!("control: sent {signal} to job {job} (process group {pid})");
                http::json(
                    StatusCode::OK,
                    &serde_json::json!({ "job": job, "signal": signal.as_str(), "pid": pid }),
                )
            }
            Ok(Err(e)) => http::error(StatusCode::CONFLICT, e),
            Err(_) => http::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "autopilot is shutting down",
            ),
        }
    }
}

async fn body(request: Request<Incoming>) -> Result<Bytes, http::Refusal> {
    http::read_body(request, MAX_BODY).await
}

/// Parses a JSON object body, explaining what was expected otherwise.
fn json_object(body: &[u8], example: &str) -> Result<Map<String, Value>, http::Refusal> {
    let bad = |what: String| {
        http::Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("{what}; send a JSON object such as {example}"),
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the request body is empty".into()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(bad(format!("the body is JSON but not an object ({other})"))),
        Err(e) => Err(bad(format!("the body is not valid JSON ({e})"))),
    }
}

/// Why `name` cannot be an environment variable name, if it cannot.
fn bad_env_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains('=') {
        Some("cannot contain '='")
    } else if name.contains('\0') {
        Some("cannot contain a NUL character")
    } else {
        None
    }
}

/// The signal in a body: `{"signal": "SIGHUP"}`, `"HUP"`, `HUP` or `1`;
/// names with or without `SIG`, any case.
fn parse_signal(body: &[u8]) -> Result<Signal, String> {
    let help = r#"send {"signal": "SIGHUP"} (or "HUP", or a number)"#;
    let text = String::from_utf8_lossy(body);
    let value = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut map)) => map
            .remove("signal")
            .ok_or_else(|| format!("the body has no \"signal\" field; {help}"))?,
        Ok(v) => v,
        Err(_) if text.trim().is_empty() => return Err(format!("no signal given; {help}")),
        Err(_) => Value::String(text.trim().to_string()),
    };
    let signal = match &value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(|n| Signal::try_from(n).ok()),
        Value::String(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&name).ok().or_else(|| {
                s.trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok())
            })
        }
        _ => None,
    };
    signal.ok_or_else(|| format!("{value} is not a signal; {help}"))
}

/// Decodes `%XX` escapes in a path segment (job names are plain words, but
/// a client may escape them); `None` if the escapes are broken.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_aliases() {
        assert_eq!(Route::parse("/v3/env"), Route::Environ);
        assert_eq!(Route::parse("/v3/environ"), Route::Environ);
        assert_eq!(
            Route::parse("/v3/maintenance/enable"),
            Route::Maintenance(true)
        );
        assert_eq!(
            Route::parse("/v3/jobs/my-app/signal"),
            Route::Signal("my-app".into())
        );
        assert_eq!(
            Route::parse("/v3/jobs/my%2Dapp/signal"),
            Route::Signal("my-app".into())
        );
        assert_eq!(Route::parse("/v3/jobs//signal"), Route::Unknown);
        assert_eq!(
            Route::parse("/v3/jobs/db/service"),
            Route::Service("db".into())
        );
        assert_eq!(
            Route::Service("db".into()).allows(&Method::PUT),
            Err("GET, POST")
        );
        assert_eq!(Route::parse("/v2/reload"), Route::Unknown);
        assert_eq!(Route::Status.allows(&Method::POST), Err("GET"));
        assert_eq!(Route::Reload.allows(&Method::GET), Err("POST"));
        assert_eq!(Route::Ping.allows(&Method::POST), Ok(()));
    }

    #[test]
    fn signals_in_every_accepted_form() {
        for body in [
            r#"{"signal":"SIGHUP"}"#,
            r#"{"signal":"hup"}"#,
            r#""HUP""#,
            "HUP",
            "sighup\n",
            "1",
            r#"{"signal": 1}"#,
        ] {
            assert_eq!(parse_signal(body.as_bytes()), Ok(Signal::SIGHUP), "{body}");
        }
        assert!(parse_signal(b"").unwrap_err().contains("no signal given"));
        assert!(
            parse_signal(b"{\"sig\": 1}")
                .unwrap_err()
                .contains("no \"signal\" field")
        );
        assert!(
            parse_signal(b"SIGNOPE")
                .unwrap_err()
                .contains("is not a signal")
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(bad_env_name("A_B"), None);
        assert_eq!(bad_env_name(""), Some("is empty"));
        assert_eq!(bad_env_name("A=B"), Some("cannot contain '='"));
    }
}
