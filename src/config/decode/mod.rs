//! Spanned JSON5 tree → validated [`Config`].
//!
//! Each section has its own file and owns its keys (ContainerPilot's
//! `jobs/config.go`, `watches/config.go`, ...). Every decoder reports problems
//! into one [`Reporter`] and carries on, so a single run finds every mistake;
//! the caller turns a reporter with errors into a `ConfigError`.

// `pub(crate)` where the ContainerPilot 2 translation (`config::v2`) and the
// hooks (`config::hooks`) reuse a section's decoding.
pub(crate) mod consul;
pub(crate) mod control;
pub(crate) mod fields;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod logging;
pub(crate) mod restarts;
pub(crate) mod service;
pub(crate) mod telemetry;
pub(crate) mod values;
pub(crate) mod watches;
pub(crate) mod when;

pub use telemetry::DEFAULT_TELEMETRY_PORT;
pub use watches::DEFAULT_WATCH_INTERVAL;
pub use when::MIN_TASK_DURATION;

use super::error::Reporter;
use super::hooks;
use super::model::{Config, ControlConfig, DEFAULT_STOP_TIMEOUT, LoggingConfig, SignalMode};
use super::source::{Spanned, Value};
use fields::Fields;

pub(crate) const TOP_KEYS: &[&str] = &[
    "consul",
    "logging",
    "control",
    "stopTimeout",
    "jobs",
    "watches",
    "telemetry",
];

/// Decodes a ContainerPilot 3 document. The result is only meaningful when
/// `rep` holds no errors afterwards.
pub fn decode(root: &Spanned<Value>, rep: &mut Reporter<'_>) -> Config {
    let mut config = Config {
        consul: None,
        logging: LoggingConfig::default(),
        control: ControlConfig::default(),
        stop_timeout: DEFAULT_STOP_TIMEOUT,
        jobs: Vec::new(),
        watches: Vec::new(),
        telemetry: None,
        signals: SignalMode::V3,
    };
    let Some(mut f) = Fields::open(root, "", "the configuration", TOP_KEYS, rep) else {
        return config;
    };
    if let Some(v) = f.get("consul", rep) {
        config.consul = consul::decode(v, "consul", rep);
    }
    if let Some(v) = f.get("logging", rep) {
        config.logging = logging::decode(v, "logging", rep);
    }
    if let Some(v) = f.get("control", rep) {
        config.control = control::decode(v, "control", rep);
    }
    if let Some(v) = f.get("stopTimeout", rep).filter(|v| !values::is_blank(v))
        && let Some(d) = values::duration(v, "stopTimeout", rep, "stopTimeout: 5")
        // ContainerPilot: 0 means "use the default".
        && !d.is_zero()
    {
        config.stop_timeout = d;
    }
    // Jobs made by hooks (`hooks`, a watch's `onChange`), to check their names.
    let mut created = Vec::new();
    if let Some(v) = f.get("jobs", rep) {
        config.jobs = jobs::decode_all(v, "jobs", rep, &mut created);
    }
    if let Some(v) = f.get("watches", rep) {
        let (watches, on_change) = watches::decode_all(v, "watches", rep, &mut created);
        config.watches = watches;
        config.jobs.extend(on_change);
    }
    hooks::report_clashes(&config.jobs, &created, rep);
    if let Some(v) = f.get("telemetry", rep) {
        config.telemetry = telemetry::decode(v, "telemetry", rep);
    }
    f.finish(rep, &top_key_hint);
    config
}

/// ContainerPilot 2 keys in a ContainerPilot 3 document: say what replaced them.
fn top_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "services" => {
            "`services` is ContainerPilot 2 syntax: in ContainerPilot 3 a service is a job with a `port`"
        }
        "backends" => {
            "`backends` is ContainerPilot 2 syntax: in ContainerPilot 3 they are `watches`"
        }
        "preStart" | "preStop" | "postStop" => {
            "a top-level hook is ContainerPilot 2 syntax: write it on the job it belongs to, \
             `hooks: {preStart: \"...\", preStop: \"...\", postStop: \"...\"}`, or as a job \
             with a `when` (e.g. `when: {source: \"app\", once: \"stopping\"}`)"
        }
        "coprocesses" => {
            "`coprocesses` is ContainerPilot 2 syntax: in ContainerPilot 3 they are jobs with `restarts`"
        }
        "tasks" => {
            "`tasks` is ContainerPilot 2 syntax: in ContainerPilot 3 they are jobs with `when: {interval: ...}`"
        }
        "etcd" => "autopilot only supports Consul for service discovery",
        _ => return None,
    };
    Some(hint.to_string())
}
