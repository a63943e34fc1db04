//! The live event stream: `GET /v3/events` and `autopilot events`.
//!
//! The endpoint answers like a Consul blocking query: `?after=N` returns the
//! journal's records after sequence number N, one JSON object per line;
//! with `&wait=SECONDS` it holds the request until there is at least one
//! (or the wait runs out). `autopilot events` prints the recent records and
//! exits; `autopilot events -follow` asks again and again from where it got
//! to, so it streams until interrupted, waking only when something happens.
//! A follower that falls behind the journal's ring is told how many records
//! it missed (a `{"type": "missed", "count": N}` line), never silently.
//!
//! Long-polling rather than one endless response: every answer is an
//! ordinary complete HTTP response, so the connection limits and timeouts
//! of the control socket apply unchanged, and a follower resumes exactly
//! where it stopped.

use super::client;
use crate::http::{self, Response};
use crate::journal::{Journal, Record};
use hyper::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The longest a request is held: well under the control socket's
/// per-connection limit (60s).
const MAX_WAIT: Duration = Duration::from_secs(50);

/// How long `-follow` asks the server to hold each request.
const FOLLOW_WAIT: Duration = Duration::from_secs(30);

/// `autopilot events` as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Keep printing new records until interrupted.
    pub follow: bool,
    /// One JSON object per line instead of text.
    pub json: bool,
}

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

/// Runs `autopilot events`; returns the exit code.
pub fn run(options: &Options, socket_flag: Option<&str>, config_flag: Option<&str>) -> u8 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let (socket, config_note) = super::commands::resolve_socket(socket_flag, config_flag, &env);
    let mut after = 0u64;
    let mut first = true;
    loop {
        let wait = if options.follow && !first {
            FOLLOW_WAIT
        } else {
            Duration::ZERO
        };
        let path = format!("/v3/events?after={after}&wait={}ms", wait.as_millis());
        let reply = match client::request(&socket, "GET", &path, None, wait + FOLLOW_WAIT) {
            Ok(reply) => reply,
            Err(e) if !first => {
                // The supervisor went away while we followed it: the stream ends.
                eprintln!("autopilot: the event stream ended: {e}");
                return 0;
            }
            Err(e) => return super::commands::report_unreachable(&e, config_note.as_deref()),
        };
        if !reply.is_success() {
            eprintln!(
                "autopilot: events failed ({}): {}",
                reply.status,
                reply.message()
            );
            return 1;
        }
        first = false;
        let mut out = std::io::stdout().lock();
        for line in reply.body.lines().filter(|l| !l.trim().is_empty()) {
            let printed = match serde_json::from_str::<Record>(line) {
                Ok(record) => {
                    after = after.max(record.seq);
                    if options.json {
                        writeln!(out, "{line}")
                    } else {
                        writeln!(out, "{}", record.text())
                    }
                }
                Err(_) => {
                    report_missed(line);
                    Ok(())
                }
            };
            // A reader that went away (`| head`) ends the command quietly.
            if printed.and_then(|()| out.flush()).is_err() {
                return 0;
            }
        }
        if !options.follow {
            return 0;
        }
    }
}

/// Says on stderr how many records a slow follower missed.
fn report_missed(line: &str) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    if value["type"] == "missed" {
        let n = value["count"].as_u64().unwrap_or(0);
        eprintln!(
            "autopilot: {} missed: they were overwritten before this follower read them",
            crate::logging::plural(n, "event", "events")
        );
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
