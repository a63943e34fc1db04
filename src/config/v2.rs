//! ContainerPilot 2 configurations, translated into jobs and watches.
//!
//! Version 2 described a container around one app given on the command line
//! (`containerpilot -config F app args...`) plus hooks, services, backends,
//! coprocesses, tasks and sensors. Version 3 replaced all of that with jobs
//! wired by events, which is the only engine autopilot has; so a v2 document
//! is decoded straight into the same [`Config`] a v3 document gives, and runs
//! (and prints its plan) like one. `docs/v2.md` has the user-facing version of
//! this table:
//!
//! | ContainerPilot 2                   | autopilot (ContainerPilot 3 terms)                                    |
//! |------------------------------------|------------------------------------------------------------------------|
//! | app on the command line            | job `app` (`main: true`, raw output, `stopTimeout` = v2 `stopTimeout`) |
//! | `preStart`                         | hook job `app.preStart` (`exitOnFailure`); `app` starts on its `exitSuccess` |
//! | `preStop`                          | hook job `app.preStop`, once `app` emits `stopping`; `app` waits for it |
//! | `postStop`                         | hook job `app.postStop`, once `app` emits `stopped`                    |
//! | `services[]`                       | a job per service, no `exec`: `port`, `health {exec, interval: poll, ttl, timeout}`, started with the app |
//! | `backends[]`                       | a watch per backend (`interval: poll`, `tag`); `onChange` → hook job `NAME.onChange` |
//! | `coprocesses[]`                    | jobs with their `restarts`, started with the app                      |
//! | `tasks[]`                          | jobs with `when: {interval: frequency}` and `timeout`                 |
//! | `telemetry.sensors[]`              | a metric, plus a job `sensor.METRIC` every `poll` that runs the check and hands its output to `-putmetric` |
//! | `consul` / `logging`               | the same sections                                                     |
//! | `etcd`                             | not supported: a warning, and the config runs without discovery       |
//! | `stopTimeout`                      | the app's `stopTimeout`; the whole shutdown may take twice as long    |
//!
//! "Started with the app" means: once `app.preStart` succeeded, or at
//! startup when there is no `preStart`, as ContainerPilot 2 started them
//! after its preStart. Without an app on the command line but with hooks, the
//! job `app` has no `exec` and stands for the app's lifetime, so the hooks
//! still run in the same order.
//!
//! The app job is called `app`, or `main` when a service, coprocess or task
//! already has that name.

use std::collections::BTreeSet;
use std::time::Duration;

use super::decode::fields::Fields;
use super::decode::when::MIN_TASK_DURATION;
use super::decode::{consul, logging, values};
use super::error::Reporter;
use super::hooks::{self, JobHooks};
use super::model::{
    Config, ControlConfig, EventPattern, Exec, JobConfig, LoggingConfig, Repeat, SignalMode, When,
};
use super::source::{Span, Spanned, Value};
use crate::events::EventCode;
use sections::{backend, coprocess, named, service, task};
use sensors::telemetry;

/// ContainerPilot 2's default `stopTimeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `poll` of a service that does not give one (ContainerPilot's examples' value);
/// its `ttl` then defaults to two and a half polls.
const DEFAULT_POLL: Duration = Duration::from_secs(10);

/// Names the app job takes, in order of preference (see the module doc).
const APP_NAMES: [&str; 2] = ["app", "main"];

pub(crate) const TOP_KEYS: &[&str] = &[
    "consul",
    "etcd",
    "logging",
    "stopTimeout",
    "preStart",
    "preStop",
    "postStop",
    "services",
    "backends",
    "coprocesses",
    "tasks",
    "telemetry",
];
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "name",
    "port",
    "health",
    "poll",
    "ttl",
    "timeout",
    "interfaces",
    "tags",
    "consul",
];
pub(crate) const BACKEND_KEYS: &[&str] = &["name", "poll", "onChange", "tag", "timeout"];
pub(crate) const COPROCESS_KEYS: &[&str] = &["name", "command", "restarts"];
pub(crate) const TASK_KEYS: &[&str] = &["name", "command", "frequency", "timeout"];
pub(crate) const TELEMETRY_KEYS: &[&str] = &["port", "interfaces", "tags", "sensors"];
pub(crate) const SENSOR_KEYS: &[&str] = &[
    "namespace",
    "subsystem",
    "name",
    "help",
    "type",
    "poll",
    "check",
    "timeout",
];

/// What the translation needs besides the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The app's command line, already rendered (empty: no app).
    pub app: Vec<String>,
    /// The autopilot binary that sensor jobs call back (`-putmetric`).
    pub self_exe: String,
}

impl Default for Input {
    fn default() -> Input {
        Input {
            app: Vec::new(),
            self_exe: "autopilot".to_string(),
        }
    }
}

/// Translates a ContainerPilot 2 document. Like [`super::decode::decode`],
/// the result is only meaningful when `rep` holds no errors afterwards.
pub fn translate(root: &Spanned<Value>, input: &Input, rep: &mut Reporter<'_>) -> Config {
    let mut config = Config {
        consul: None,
        logging: LoggingConfig::default(),
        control: ControlConfig::default(),
        stop_timeout: DEFAULT_STOP_TIMEOUT * 2,
        jobs: Vec::new(),
        watches: Vec::new(),
        telemetry: None,
        signals: SignalMode::V2,
    };
    let Some(mut f) = Fields::open(root, "", "the configuration", TOP_KEYS, rep) else {
        return config;
    };
    if let Some(v) = f.get("consul", rep) {
        config.consul = consul::decode(v, "consul", rep);
    }
    if let Some(v) = f.get("etcd", rep) {
        let span = f.key_span("etcd").unwrap_or(v.span());
        let (message, hint) = if config.consul.is_some() {
            (
                "`etcd` is not supported and is ignored: Consul is used",
                "remove `etcd`",
            )
        } else {
            (
                "`etcd` is not supported: this config runs without service discovery \
                 (no registration, no backends)",
                "autopilot registers services in Consul only: replace `etcd` with \
                 `\"consul\": \"HOST:8500\"`",
            )
        };
        rep.warning(span, "etcd", message, Some(hint.to_string()));
    }
    if let Some(v) = f.get("logging", rep) {
        config.logging = logging::decode(v, "logging", rep);
    }
    let mut stop = DEFAULT_STOP_TIMEOUT;
    if let Some(v) = f.get("stopTimeout", rep).filter(|v| !values::is_blank(v))
        && let Some(d) = values::duration(v, "stopTimeout", rep, "stopTimeout: 5")
        // ContainerPilot: 0 means "use the default".
        && !d.is_zero()
    {
        stop = d;
    }
    // preStop may take up to `stop`, then the app gets up to `stop` after SIGTERM.
    config.stop_timeout = stop * 2;
    let command = |f: &mut Fields<'_>, key: &str, rep: &mut Reporter<'_>| {
        let v = f.get(key, rep)?;
        let key_span = f.key_span(key).unwrap_or(v.span());
        hooks::decode_command(v, key_span, key, rep)
    };
    let app_hooks = JobHooks {
        pre_start: command(&mut f, "preStart", rep),
        pre_stop: command(&mut f, "preStop", rep),
        post_stop: command(&mut f, "postStop", rep),
    };

    let services = list(&mut f, "services", rep, service);
    let backends = list(&mut f, "backends", rep, backend);
    let coprocesses = list(&mut f, "coprocesses", rep, coprocess);
    let tasks = list(&mut f, "tasks", rep, task);
    let (telemetry, sensors) = match f.get("telemetry", rep) {
        Some(v) => telemetry(v, "telemetry", &input.self_exe, rep),
        None => (None, Vec::new()),
    };
    config.telemetry = telemetry;
    f.finish_lenient(rep, &top_key_hint);

    // Names: services are registered under theirs, so they keep them; the
    // others give way.
    let services = last_of_each_name(services, rep);
    let mut taken: BTreeSet<String> = services.iter().map(|(j, _)| j.name.clone()).collect();
    taken.extend(sensors.iter().map(|j| j.name.clone()));
    let coprocesses = named(coprocesses, "coprocess", &mut taken);
    let tasks = named(tasks, "task", &mut taken);
    let app_name = APP_NAMES
        .iter()
        .map(|n| n.to_string())
        .chain((2..).map(|i| format!("app-{i}")))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| "app".to_string());

    let mut created = Vec::new();
    let app_exec = app_exec(&input.app);
    if app_exec.is_some() || !app_hooks.is_empty() {
        let app = JobConfig {
            name: app_name.clone(),
            main: app_exec.is_some(),
            exec: app_exec,
            when: When::Startup,
            stop_timeout: Some(stop),
            // ContainerPilot 2 passed the app's output through untouched.
            logging_raw: true,
            ..plain_job(0)
        };
        config
            .jobs
            .extend(hooks::expand(app, &app_hooks, rep, &mut created));
    }
    // ContainerPilot 2 started everything else once preStart had succeeded.
    let with_app = match &app_hooks.pre_start {
        Some(_) => When::Event {
            pattern: EventPattern {
                code: EventCode::ExitSuccess,
                source: hooks::HookKind::PreStart.job_name(&app_name),
            },
            repeat: Repeat::Once,
            timeout: None,
        },
        None => When::Startup,
    };
    for job in services.into_iter().map(|(job, _)| job).chain(coprocesses) {
        config.jobs.push(JobConfig {
            when: with_app.clone(),
            ..job
        });
    }
    config.jobs.extend(tasks);
    config.jobs.extend(sensors);
    // An `onChange` with a `timeout` is more than the hook sugar can say, so
    // `migrate` writes it as a job of its own, listed before the jobs that
    // watches' `onChange` make; keep that order here, so a migrated config
    // loads into exactly this one.
    let (timed, plain): (Vec<_>, Vec<_>) = backends
        .iter()
        .filter_map(|(watch, on_change, _)| on_change.as_ref().map(|c| (watch, c)))
        .partition(|(_, (_, timeout))| timeout.is_some());
    for (watch, (hook, timeout)) in timed.into_iter().chain(plain) {
        let mut job = hooks::on_change(watch, hook, &mut created);
        job.timeout = *timeout;
        config.jobs.push(job);
    }
    for (watch, _, name_span) in backends {
        if config.watches.iter().any(|w| w.name == watch.name) {
            rep.error(
                name_span,
                "backends",
                format!("there is already a backend named `{}`", watch.name),
                Some("each backend is watched once: remove the repeated one".into()),
            );
        }
        config.watches.push(watch);
    }
    hooks::report_clashes(&config.jobs, &created, rep);
    config
}

/// ContainerPilot 2 registered a service named twice twice under one ID, the
/// second overwriting the first; keep the last definition, as for a job
/// defined twice, and say so.
fn last_of_each_name(
    services: Vec<(JobConfig, Span)>,
    rep: &mut Reporter<'_>,
) -> Vec<(JobConfig, Span)> {
    let mut kept: Vec<(JobConfig, Span)> = Vec::new();
    for (job, span) in services {
        if let Some(index) = kept.iter().position(|(j, _)| j.name == job.name) {
            let (earlier, earlier_span) = kept.remove(index);
            rep.warning(
                earlier_span,
                "services",
                format!(
                    "service `{}` is defined again on line {}; this definition is ignored",
                    job.name, job.line
                ),
                Some(format!(
                    "each name is one Consul registration: rename or remove one of them \
                     (line {} and line {})",
                    earlier.line, job.line
                )),
            );
        }
        kept.push((job, span));
    }
    kept
}

/// The app job's command, from the rendered command line.
fn app_exec(words: &[String]) -> Option<Exec> {
    let (program, args) = words.split_first()?;
    Some(Exec {
        program: program.clone(),
        args: args.to_vec(),
    })
}

/// A job with every setting at its default, at `line`.
fn plain_job(line: usize) -> JobConfig {
    JobConfig {
        line,
        ..JobConfig::named("")
    }
}

/// Decodes the array under `key` with `one`, skipping entries in error.
fn list<'a, T>(
    f: &mut Fields<'a>,
    key: &str,
    rep: &mut Reporter<'_>,
    one: fn(&'a Spanned<Value>, &str, &mut Reporter<'_>) -> Option<T>,
) -> Vec<T> {
    let Some(v) = f.get(key, rep) else {
        return Vec::new();
    };
    let Value::Array(items) = &v.value else {
        rep.error(
            v.span(),
            key,
            format!("expected an array, found {}", v.value.kind()),
            Some(format!("write `\"{key}\": [ ... ]`")),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| one(item, &format!("{key}[{i}]"), rep))
        .collect()
}

fn line_of(rep: &Reporter<'_>, v: &Spanned<Value>) -> usize {
    rep.line_of(v.start)
}

/// A required key: reports it missing with `hint`.
fn required<'a>(
    f: &mut Fields<'a>,
    key: &str,
    rep: &mut Reporter<'_>,
    hint: &str,
) -> Option<&'a Spanned<Value>> {
    let v = f.get(key, rep).filter(|v| !values::is_blank(v));
    if v.is_none() {
        rep.error(
            f.span(),
            f.path(),
            format!("missing `{key}`"),
            Some(hint.to_string()),
        );
    }
    v
}

/// The period of a task or a sensor (`frequency`, `poll`), a required key
/// (reported missing with `hint`): at least [`MIN_TASK_DURATION`]; `example`
/// is the key and value an invalid one's hint shows.
fn required_period(
    f: &mut Fields<'_>,
    key: &str,
    rep: &mut Reporter<'_>,
    hint: &str,
    example: &str,
) -> Option<Duration> {
    required(f, key, rep, hint).and_then(|v| {
        values::duration_at_least(v, &f.path_of(key), rep, example, MIN_TASK_DURATION)
    })
}

/// The `timeout` of a backend's `onChange`, a task or a sensor: at least
/// [`MIN_TASK_DURATION`]; `None` when it is not given, blank, or invalid
/// (reported). `example` is the key and value an invalid one's hint shows.
fn optional_timeout(f: &mut Fields<'_>, rep: &mut Reporter<'_>, example: &str) -> Option<Duration> {
    f.get("timeout", rep)
        .filter(|v| !values::is_blank(v))
        .and_then(|t| {
            values::duration_at_least(t, &f.path_of("timeout"), rep, example, MIN_TASK_DURATION)
        })
}

/// ContainerPilot 3 keys in a ContainerPilot 2 document.
fn top_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "jobs" | "watches" | "control" => {
            "this is ContainerPilot 3 syntax, but the file is ContainerPilot 2 (it has \
             `services`, `backends` or hooks): write the whole file in one version"
        }
        "onChange" => {
            "`onChange` belongs in a backend: `\"backends\": [{\"name\": ..., \"onChange\": ...}]`"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

mod sections;
mod sensors;
#[cfg(test)]
mod tests;
