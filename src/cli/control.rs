//! The requests to a running autopilot: `-putenv`, `-putmetric`, `-reload`,
//! `-maintenance`, `-ping` (ContainerPilot's flags, also as `autopilot putenv
//! ...` etc.), `autopilot status` and `autopilot signal`: how they are
//! validated, sent to the control socket and reported.
//!
//! They only need the socket path, not a valid config: `-socket`, else
//! `$AUTOPILOT_CONTROL_SOCKET`, else the `control.socket` of the config
//! (`-config` or `$CONTAINERPILOT`) when it loads, else the default path.
//!
//! Exit codes: 0 done, 1 autopilot refused or could not be reached.

use super::UsageError;
use super::client::{self, Reply};
use crate::control::status::{self, Status};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// A request to a running autopilot: ContainerPilot's flags (`-putenv k=v`,
/// `-reload`, ...) and the subcommand forms (`autopilot putenv k=v`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum ControlCommand {
    /// Set (`Some`) or unset (`None` or empty) environment values for the
    /// processes autopilot starts from now on.
    PutEnv(Vec<(String, Option<String>)>),
    /// Update metrics: `(name, value as written)`.
    PutMetric(Vec<(String, String)>),
    Reload,
    /// Enter (`true`) or leave maintenance mode.
    Maintenance(bool),
    Ping,
    /// Print the jobs and watches, as a table or (`-json`) as JSON.
    Status {
        json: bool,
    },
    /// Send a signal (a name or number, as written) to a job's process group.
    Signal {
        job: String,
        signal: String,
    },
}

/// Control requests as written, before validation.
#[derive(Default)]
pub(super) struct ControlWords {
    pub(super) putenv: Vec<String>,
    pub(super) putmetric: Vec<String>,
    pub(super) maintenance: Vec<String>,
    /// `signal JOB SIGNAL`.
    pub(super) signal: Vec<String>,
    pub(super) reload: bool,
    pub(super) ping: bool,
    pub(super) status: bool,
    pub(super) json: bool,
}

/// Validates the control requests; at most one kind per invocation.
impl ControlWords {
    pub(super) fn command(self) -> Result<Option<ControlCommand>, UsageError> {
        let words = self;
        let mut asked: Vec<&str> = Vec::new();
        for (given, name) in [
            (!words.putenv.is_empty(), "-putenv"),
            (!words.putmetric.is_empty(), "-putmetric"),
            (!words.maintenance.is_empty(), "-maintenance"),
            (words.reload, "-reload"),
            (words.ping, "-ping"),
            (words.status, "status"),
            (!words.signal.is_empty(), "signal"),
        ] {
            if given {
                asked.push(name);
            }
        }
        if asked.len() > 1 {
            return Err(UsageError(format!(
                "{} cannot be combined: run autopilot once per request",
                asked.join(" and ")
            )));
        }
        if words.json && !words.status {
            return Err(UsageError(
                "-json only applies to `autopilot status`".into(),
            ));
        }
        let command = match asked.first().copied() {
            None => return Ok(None),
            Some("-putenv") => ControlCommand::PutEnv(
                words
                    .putenv
                    .iter()
                    .map(|w| env_pair(w))
                    .collect::<Result<_, _>>()?,
            ),
            Some("-putmetric") => ControlCommand::PutMetric(
                words
                    .putmetric
                    .iter()
                    .map(|w| metric_pair(w))
                    .collect::<Result<_, _>>()?,
            ),
            Some("-maintenance") => {
                let mut modes = words.maintenance.iter().map(|w| match w.as_str() {
                    "enable" => Ok(true),
                    "disable" => Ok(false),
                    other => Err(UsageError(format!(
                        "-maintenance takes `enable` or `disable`, not {other:?}"
                    ))),
                });
                let first = modes.next().expect("maintenance was given")?;
                if modes.next().is_some() {
                    return Err(UsageError(
                        "give -maintenance once: `enable` or `disable`".into(),
                    ));
                }
                ControlCommand::Maintenance(first)
            }
            Some("signal") => match words.signal.as_slice() {
                [job, signal] => ControlCommand::Signal {
                    job: job.clone(),
                    signal: signal.clone(),
                },
                _ => {
                    return Err(UsageError(format!(
                        "`autopilot signal` takes a job and a signal, e.g. `autopilot signal app HUP`; got {}",
                        words.signal.join(" ")
                    )));
                }
            },
            Some("-reload") => ControlCommand::Reload,
            Some("-ping") => ControlCommand::Ping,
            _ => ControlCommand::Status { json: words.json },
        };
        Ok(Some(command))
    }
}

/// `NAME=VALUE` (the value keeps every later `=`), or `NAME` alone to unset.
fn env_pair(word: &str) -> Result<(String, Option<String>), UsageError> {
    let (name, value) = match word.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (word, None),
    };
    if name.is_empty() {
        return Err(UsageError(format!(
            "-putenv {word:?}: the name before '=' is empty; write NAME=VALUE"
        )));
    }
    Ok((name.to_string(), value))
}

/// `NAME=VALUE`; the server checks that the metric exists and the value is a number.
fn metric_pair(word: &str) -> Result<(String, String), UsageError> {
    match word.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(UsageError(format!(
            "-putmetric {word:?}: expected NAME=VALUE, e.g. -putmetric requests_total=1"
        ))),
    }
}

/// Long enough for a reload (re-render the config, restart changed jobs).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `command`; returns the process exit code.
pub fn run(command: &ControlCommand, socket_flag: Option<&str>, config_flag: Option<&str>) -> u8 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let (socket, config_note) = resolve_socket(socket_flag, config_flag, &env);
    let (method, path, body) = request_for(command);
    let reply = match client::request(&socket, method, &path, body.as_deref(), TIMEOUT) {
        Ok(reply) => reply,
        Err(e) => return report_unreachable(&e, config_note.as_deref()),
    };
    if !reply.is_success() {
        eprintln!(
            "autopilot: {} failed ({}): {}",
            flag_name(command),
            reply.status,
            reply.message()
        );
        return 1;
    }
    match report(command, &reply) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("autopilot: {e}");
            1
        }
    }
}

/// The socket path, and why the config could not help if it was tried and
/// failed (shown only if the socket cannot be reached).
/// Says that autopilot could not be reached (with the note on where the
/// socket path came from, if any) and gives the exit code for it.
pub(crate) fn report_unreachable(error: &dyn std::fmt::Display, config_note: Option<&str>) -> u8 {
    eprintln!("autopilot: {error}");
    if let Some(note) = config_note {
        eprintln!("autopilot: note: {note}");
    }
    1
}

pub(crate) fn resolve_socket(
    flag: Option<&str>,
    config_flag: Option<&str>,
    env: &HashMap<String, String>,
) -> (PathBuf, Option<String>) {
    if flag.is_some_and(|f| !f.is_empty())
        || env
            .get(crate::control::SOCKET_ENV)
            .is_some_and(|v| !v.is_empty())
    {
        return (crate::control::client_socket_path(flag, None, env), None);
    }
    let Some(path) = crate::config::resolve_path(config_flag, env) else {
        return (crate::control::client_socket_path(None, None, env), None);
    };
    match crate::config::load(&path, env) {
        Ok(loaded) => (
            crate::control::client_socket_path(None, Some(&loaded.config.control), env),
            None,
        ),
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            let socket = crate::control::client_socket_path(None, None, env);
            let note = format!(
                "the config {} did not load ({first}), so the default socket {} was used; pass -socket PATH",
                path.display(),
                socket.display()
            );
            (socket, Some(note))
        }
    }
}

fn request_for(command: &ControlCommand) -> (&'static str, String, Option<Vec<u8>>) {
    let json = |map: Map<String, Value>| Some(Value::Object(map).to_string().into_bytes());
    match command {
        ControlCommand::PutEnv(pairs) => {
            let map = pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.clone().map(Value::String).unwrap_or(Value::Null),
                    )
                })
                .collect();
            ("POST", "/v3/environ".into(), json(map))
        }
        ControlCommand::PutMetric(pairs) => {
            // Numbers go as numbers; anything else as written, for the
            // server to reject with its reason.
            let map = pairs
                .iter()
                .map(|(k, v)| {
                    let value = v
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or_else(|| Value::String(v.clone()));
                    (k.clone(), value)
                })
                .collect();
            ("POST", "/v3/metric".into(), json(map))
        }
        ControlCommand::Reload => ("POST", "/v3/reload".into(), None),
        ControlCommand::Maintenance(true) => ("POST", "/v3/maintenance/enable".into(), None),
        ControlCommand::Maintenance(false) => ("POST", "/v3/maintenance/disable".into(), None),
        ControlCommand::Ping => ("GET", "/v3/ping".into(), None),
        ControlCommand::Status { .. } => ("GET", "/v3/status".into(), None),
        ControlCommand::Signal { job, signal } => {
            // A number goes as a number; the server parses names.
            let signal = signal
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(signal.clone()));
            let body = serde_json::json!({ "signal": signal }).to_string();
            (
                "POST",
                format!("/v3/jobs/{}/signal", percent_encode(job)),
                Some(body.into_bytes()),
            )
        }
    }
}

/// A job name as one URL path segment: everything but unreserved
/// characters percent-encoded.
fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn flag_name(command: &ControlCommand) -> &'static str {
    match command {
        ControlCommand::PutEnv(_) => "-putenv",
        ControlCommand::PutMetric(_) => "-putmetric",
        ControlCommand::Reload => "-reload",
        ControlCommand::Maintenance(_) => "-maintenance",
        ControlCommand::Ping => "-ping",
        ControlCommand::Status { .. } => "status",
        ControlCommand::Signal { .. } => "signal",
    }
}

/// What to print on success. `-putenv` and `-putmetric` print nothing, as
/// ContainerPilot's did: they run from sensor jobs, often.
fn report(command: &ControlCommand, reply: &Reply) -> Result<String, String> {
    Ok(match command {
        ControlCommand::PutEnv(_) | ControlCommand::PutMetric(_) => String::new(),
        ControlCommand::Ping => "ok\n".to_string(),
        ControlCommand::Signal { job, signal } => {
            let sent: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            let name = sent.get("signal").and_then(Value::as_str).unwrap_or(signal);
            match sent.get("pid").and_then(Value::as_i64) {
                Some(pid) => format!("sent {name} to job {job} (process group {pid})\n"),
                None => format!("sent {name} to job {job}\n"),
            }
        }
        ControlCommand::Maintenance(on) => {
            let updated = serde_json::from_str::<Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("updated").and_then(Value::as_bool))
                .unwrap_or(true);
            let mode = if *on { "on" } else { "off" };
            if updated {
                format!("maintenance mode is now {mode}\n")
            } else {
                format!("maintenance mode was already {mode}\n")
            }
        }
        ControlCommand::Reload => {
            let summary: ReloadView = serde_json::from_str(&reply.body)
                .map_err(|e| format!("unexpected answer to -reload ({e}): {}", reply.body))?;
            summary.line()
        }
        ControlCommand::Status { json: true } => reply.body.clone(),
        ControlCommand::Status { json: false } => {
            let status: Status = serde_json::from_str(&reply.body)
                .map_err(|e| format!("unexpected answer to status ({e}): {}", reply.body))?;
            status::table(&status)
        }
    })
}

/// The reload answer ([`crate::supervisor::ReloadSummary`]) read back.
#[derive(serde::Deserialize)]
struct ReloadView {
    unchanged: Vec<String>,
    restarted: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

impl ReloadView {
    fn line(&self) -> String {
        let part = |n: &[String], what: &str| match n.len() {
            0 => format!("0 {what}"),
            k => format!("{k} {what} ({})", n.join(", ")),
        };
        format!(
            "config reloaded: {}, {}, {}, {}\n",
            part(&self.unchanged, "unchanged"),
            part(&self.restarted, "restarted"),
            part(&self.added, "added"),
            part(&self.removed, "removed")
        )
    }
}
