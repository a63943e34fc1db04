//! The live event stream: `GET /v3/events` (its client is `autopilot events`,
//! in `cli::events`).
//!
//! The endpoint answers like a Consul blocking query: `?after=N` returns the
//! journal's records after sequence number N, one JSON object per line;
//! with `&wait=SECONDS` it holds the request until there is at least one
//! (or the wait runs out). A follower that falls behind the journal's ring
//! is told how many records it missed (a `{"type": "missed", "count": N}`
//! line), never silently.
//!
//! Long-polling rather than one endless response: every answer is an
//! ordinary complete HTTP response, so the connection limits and timeouts
//! of the control socket apply unchanged, and a follower resumes exactly
//! where it stopped.

use crate::http::{self, Response};
use crate::journal::Journal;
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The longest a request is held: well under the control socket's
/// per-connection limit (60s).
const MAX_WAIT: Duration = Duration::from_secs(50);

/// Answers `GET /v3/events?after=N&wait=SECONDS`.
pub(super) async fn handle(journal: &Arc<Journal>, query: Option<&str>) -> Response {
    let mut after = 0u64;
    let mut wait = Duration::ZERO;
    for (key, value) in query
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
    {
        match key {
            "after" => match value.parse() {
                Ok(n) => after = n,
                Err(_) => return bad_query(format!("after={value} is not a sequence number")),
            },
            "wait" => match parse_wait(value) {
                Some(w) => wait = w.min(MAX_WAIT),
                None => {
                    return bad_query(format!(
                        "wait={value} is not a duration (write seconds, e.g. wait=30, or wait=500ms)"
                    ));
                }
            },
            _ => {}
        }
    }
    // A sequence number from before a restart of autopilot: start over.
    if after > journal.latest() {
        after = 0;
    }
    let page = journal.wait_after(after, wait).await;
    let mut body = Vec::new();
    if page.missed > 0 {
        let missed = json!({"type": "missed", "count": page.missed});
        body.extend_from_slice(format!("{missed}\n").as_bytes());
    }
    for record in &page.records {
        if let Ok(line) = serde_json::to_string(&**record) {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
    }
    http::with_type(StatusCode::OK, "application/x-ndjson", body)
}

fn bad_query(message: String) -> Response {
    http::error(StatusCode::BAD_REQUEST, message)
}

/// `30` (seconds) or a duration with a unit (`500ms`, `30s`).
fn parse_wait(value: &str) -> Option<Duration> {
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits() {
        assert_eq!(parse_wait("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_wait("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_wait("soon"), None);
    }
}
