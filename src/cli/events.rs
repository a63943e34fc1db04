//! `autopilot events`: the client of the live event stream
//! ([`crate::control::events`] serves `GET /v3/events`).
//!
//! `autopilot events` prints the recent records and exits; `autopilot events
//! -follow` asks again and again from where it got to, so it streams until
//! interrupted, waking only when something happens. Records a slow follower
//! missed are reported on stderr, never silently.
//!
//! Long-polling rather than one endless response: every answer is an
//! ordinary complete HTTP response, so the connection limits and timeouts
//! of the control socket apply unchanged, and a follower resumes exactly
//! where it stopped.

use super::client;
use super::control::{report_unreachable, resolve_socket};
use super::{Action, Cli, UsageError, spec};
use crate::journal::Record;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

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

/// Parses the words after `autopilot events`.
pub(super) fn parse(words: &[String]) -> Result<Cli, UsageError> {
    let mut options = Options {
        follow: false,
        json: false,
    };
    let (mut config, mut socket) = (None, None);
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let flag = word.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| words.next().cloned())
                .ok_or_else(|| UsageError(format!("flag -{name} needs a value")))
        };
        match name {
            _ if !word.starts_with('-') => {
                return Err(UsageError(format!(
                    "`autopilot events` takes no argument, got {word:?} (see `autopilot events -h`)"
                )));
            }
            "follow" | "f" => options.follow = true,
            "json" => options.json = true,
            "socket" => socket = Some(value()?),
            "config" => config = Some(value()?),
            // The same help as `autopilot help events`, from the one CLI table.
            "help" | "h" => {
                return Ok(Cli {
                    action: Action::Help(spec::command("events")),
                    config: None,
                    socket: None,
                    rest: Vec::new(),
                });
            }
            _ => {
                return Err(UsageError(format!(
                    "unknown flag {word} for `autopilot events` (it takes -follow, -json, -socket, -config)"
                )));
            }
        }
    }
    Ok(Cli {
        action: Action::Events(options),
        config,
        socket,
        rest: Vec::new(),
    })
}

/// Runs `autopilot events`; returns the exit code.
pub fn run(options: &Options, socket_flag: Option<&str>, config_flag: Option<&str>) -> u8 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let (socket, config_note) = resolve_socket(socket_flag, config_flag, &env);
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
            Err(e) => return report_unreachable(&e, config_note.as_deref()),
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
