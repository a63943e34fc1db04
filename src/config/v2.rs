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

use super::decode::DEFAULT_WATCH_INTERVAL;
use super::decode::fields::Fields;
use super::decode::jobs::{is_service_name, service_name_like};
use super::decode::when::MIN_TASK_DURATION;
use super::decode::{consul, logging, restarts, service, telemetry, values};
use super::error::Reporter;
use super::hooks::{self, Hook, JobHooks};
use super::metric_name::{full_name, is_valid_name};
use super::model::{
    Config, ControlConfig, EventPattern, Exec, HealthCheck, HealthConfig, JobConfig, LoggingConfig,
    MetricConfig, MetricType, Repeat, Restarts, SignalMode, TelemetryConfig, WatchConfig,
    WatchTarget, When,
};
use super::source::{Span, Spanned, Value};
use crate::events::EventCode;

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

/// A service: a job without `exec` that is health-checked and registered.
fn service(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<(JobConfig, Span)> {
    let mut f = Fields::open(v, path, "a service", SERVICE_KEYS, rep)?;
    let line = line_of(rep, v);
    let name_value = required(&mut f, "name", rep, "add `\"name\": \"app\"`");
    let name = name_value
        .and_then(|n| values::env_safe_name(n, &f.path_of("name"), rep, "name the service"));
    if let (Some(name), Some(n)) = (&name, name_value)
        && !is_service_name(name)
    {
        // Consul takes such a name, but not its DNS interface; published
        // ContainerPilot 2 configs use them, so this is only a warning.
        rep.warning(
            n.span(),
            &f.path_of("name"),
            format!("`{name}` is not a valid DNS name: Consul's DNS interface cannot find it"),
            Some(format!(
                "a service name should start with a lower-case letter and contain only \
                 letters, digits and `-`: for example `{}`",
                service_name_like(name)
            )),
        );
    }
    let port_given = f.key_span("port").is_some();
    let service = service::decode(&mut f, rep);
    if !port_given {
        rep.warning(
            f.span(),
            path,
            "this service has no `port`, so it is not registered in Consul",
            Some("add `\"port\": 8080`".into()),
        );
    }
    let check = match f.get("health", rep) {
        Some(h) => values::exec(h, &f.path_of("health"), rep).map(HealthCheck::Exec),
        None => {
            // ContainerPilot 2 sent the heartbeat on every poll when there
            // was no check; `true` does the same as a check.
            rep.warning(
                f.span(),
                path,
                "this service has no `health` check: it is reported healthy on every poll",
                Some("add `\"health\": \"/path/to/check\"` so Consul learns when it fails".into()),
            );
            Some(HealthCheck::Exec(Exec {
                program: "true".into(),
                args: Vec::new(),
            }))
        }
    };
    // Published configs leave `poll` and `ttl` out; default them, and say so.
    let span = f.span();
    let mut seconds = |f: &mut Fields<'_>, key: &str, default: Option<Duration>| {
        let Some(v) = f.get(key, rep).filter(|v| !values::is_blank(v)) else {
            let default = default?;
            rep.warning(
                span,
                path,
                format!(
                    "missing `{key}`: {} is used",
                    crate::config::duration::format(default)
                ),
                Some(format!(
                    "add `\"{key}\": {}` ({})",
                    // Whole seconds as ContainerPilot wrote them, else a duration.
                    if default.subsec_nanos() == 0 {
                        default.as_secs().to_string()
                    } else {
                        format!("\"{}\"", crate::config::duration::format(default))
                    },
                    if key == "poll" {
                        "the seconds between two health checks"
                    } else {
                        "the seconds a passing check stays valid in Consul"
                    }
                )),
            );
            return Some(default);
        };
        values::duration_at_least(
            v,
            &f.path_of(key),
            rep,
            &format!("\"{key}\": 10"),
            Duration::from_nanos(1),
        )
    };
    let poll = seconds(&mut f, "poll", Some(DEFAULT_POLL));
    let ttl = seconds(&mut f, "ttl", poll.map(|p| p * 5 / 2));
    let timeout = match f.get("timeout", rep).filter(|v| !values::is_blank(v)) {
        Some(t) => values::duration_at_least(
            t,
            &f.path_of("timeout"),
            rep,
            "\"timeout\": \"5s\"",
            MIN_TASK_DURATION,
        ),
        None => poll,
    };
    f.finish_lenient(rep, &service_key_hint);
    let poll = poll?;
    let job = JobConfig {
        name: name?,
        health: Some(HealthConfig {
            check: check?,
            interval: poll,
            ttl: ttl?,
            timeout: timeout?,
            logging_raw: false,
        }),
        service,
        ..plain_job(line)
    };
    Some((job, name_value.map_or(v.span(), Spanned::span)))
}

/// A backend: a watch, its `onChange` hook with that hook's timeout, and
/// where its name is written.
type Backend = (WatchConfig, Option<(Hook, Option<Duration>)>, Span);

fn backend(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Backend> {
    let mut f = Fields::open(v, path, "a backend", BACKEND_KEYS, rep)?;
    let line = line_of(rep, v);
    let name_value = required(&mut f, "name", rep, "name the Consul service to watch");
    let name = name_value.and_then(|n| {
        values::env_safe_name(n, &f.path_of("name"), rep, "name the service to watch")
    });
    let interval = match f.get("poll", rep).filter(|v| !values::is_blank(v)) {
        Some(v) => values::duration_at_least(
            v,
            &f.path_of("poll"),
            rep,
            "\"poll\": 10",
            Duration::from_nanos(1),
        ),
        None => Some(DEFAULT_WATCH_INTERVAL),
    };
    let tag = f
        .get("tag", rep)
        .filter(|v| !values::is_blank(v))
        .and_then(|v| values::string(v, &f.path_of("tag"), rep));
    let on_change = f.get("onChange", rep).and_then(|v| {
        let key_span = f.key_span("onChange").unwrap_or(v.span());
        hooks::decode_command(v, key_span, &f.path_of("onChange"), rep)
    });
    let timeout = optional_timeout(&mut f, rep, "\"timeout\": \"30s\"");
    f.finish_lenient(rep, &backend_key_hint);
    let name = name?;
    let watch = WatchConfig {
        target: WatchTarget::Service {
            service: name.clone(),
            tag,
            dc: None,
        },
        name,
        interval: interval?,
        line,
    };
    let name_span = name_value.map_or(v.span(), Spanned::span);
    Some((watch, on_change.map(|h| (h, timeout)), name_span))
}

/// A coprocess or a task before it is named: its name, if it has one.
type Unnamed = (Option<String>, JobConfig);

/// A coprocess: a job that runs beside the app, with its restart policy.
fn coprocess(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Unnamed> {
    let mut f = Fields::open(v, path, "a coprocess", COPROCESS_KEYS, rep)?;
    let line = line_of(rep, v);
    let name = optional_name(&mut f, rep);
    let exec = required(
        &mut f,
        "command",
        rep,
        "add `\"command\": [\"/bin/app\", \"--flag\"]`",
    )
    .and_then(|c| values::exec(c, &f.path_of("command"), rep));
    let restarts = restarts::decode(
        f.get("restarts", rep),
        &f.path_of("restarts"),
        &When::Startup,
        rep,
    );
    f.finish_lenient(rep, &|key| command_hint(key));
    Some((
        name,
        JobConfig {
            exec: Some(exec?),
            restarts,
            ..plain_job(line)
        },
    ))
}

/// A task: a job run every `frequency`, killed after `timeout`.
fn task(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Unnamed> {
    let mut f = Fields::open(v, path, "a task", TASK_KEYS, rep)?;
    let line = line_of(rep, v);
    let name = optional_name(&mut f, rep);
    let exec = required(&mut f, "command", rep, "add `\"command\": [\"/bin/task\"]`")
        .and_then(|c| values::exec(c, &f.path_of("command"), rep));
    let frequency = required_period(
        &mut f,
        "frequency",
        rep,
        "add `\"frequency\": \"10s\"`",
        "\"frequency\": \"10s\"",
    );
    let timeout = optional_timeout(&mut f, rep, "\"timeout\": \"30s\"");
    f.finish_lenient(rep, &|key| command_hint(key));
    let frequency = frequency?;
    Some((
        name,
        JobConfig {
            exec: Some(exec?),
            when: When::Interval(frequency),
            restarts: Restarts::Unlimited,
            // As for any periodic job: one run may last at most one period.
            timeout: Some(timeout.unwrap_or(frequency)),
            ..plain_job(line)
        },
    ))
}

fn optional_name(f: &mut Fields<'_>, rep: &mut Reporter<'_>) -> Option<String> {
    let v = f.get("name", rep).filter(|v| !values::is_blank(v))?;
    values::string(v, &f.path_of("name"), rep)
}

/// Names coprocesses and tasks: their own name when free, else
/// `KIND.NAME`; without a name, after their program (`KIND.consul`).
fn named(items: Vec<Unnamed>, kind: &str, taken: &mut BTreeSet<String>) -> Vec<JobConfig> {
    items
        .into_iter()
        .map(|(name, job)| {
            let base = name.unwrap_or_else(|| {
                let program = job.exec.as_ref().map_or("", |e| e.program.as_str());
                let base = program.rsplit('/').next().unwrap_or(program);
                format!("{kind}.{base}")
            });
            let name = [base.clone(), format!("{kind}.{base}")]
                .into_iter()
                .chain((2..).map(|i| format!("{kind}.{base}-{i}")))
                .find(|n| !taken.contains(n))
                .unwrap_or(base);
            taken.insert(name.clone());
            JobConfig { name, ..job }
        })
        .collect()
}

/// `telemetry`: the endpoint, and each sensor as a metric plus a job.
fn telemetry(
    v: &Spanned<Value>,
    path: &str,
    self_exe: &str,
    rep: &mut Reporter<'_>,
) -> (Option<TelemetryConfig>, Vec<JobConfig>) {
    let Some(mut f) = Fields::open(v, path, "telemetry options", TELEMETRY_KEYS, rep) else {
        return (None, Vec::new());
    };
    let mut telemetry = telemetry::endpoint(&mut f, rep);
    let mut metrics = Vec::new();
    let mut jobs: Vec<JobConfig> = Vec::new();
    let sensors_path = f.path_of("sensors");
    if let Some(list) = f.get("sensors", rep) {
        match &list.value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Some((metric, job, span)) =
                        sensor(item, &format!("{sensors_path}[{i}]"), self_exe, rep)
                    else {
                        continue;
                    };
                    if jobs.iter().any(|j| j.name == job.name) {
                        rep.error(
                            span,
                            &format!("{sensors_path}[{i}].name"),
                            format!(
                                "there is already a sensor for the metric `{}`",
                                full_name(&metric)
                            ),
                            Some("metric names (namespace_subsystem_name) must be unique".into()),
                        );
                    }
                    metrics.push(metric);
                    jobs.push(job);
                }
            }
            other => rep.error(
                list.span(),
                &sensors_path,
                format!("expected an array of sensors, found {}", other.kind()),
                Some("write `\"sensors\": [{\"name\": ..., \"check\": ...}]`".into()),
            ),
        }
    }
    f.finish_lenient(rep, &|key| {
        (key == "metrics").then(|| {
            "`metrics` is ContainerPilot 3 syntax; in a ContainerPilot 2 config write `sensors`"
                .to_string()
        })
    });
    telemetry.metrics = metrics;
    (Some(telemetry), jobs)
}

/// A sensor: its metric, and the job that feeds the metric.
fn sensor(
    v: &Spanned<Value>,
    path: &str,
    self_exe: &str,
    rep: &mut Reporter<'_>,
) -> Option<(MetricConfig, JobConfig, Span)> {
    let mut f = Fields::open(v, path, "a sensor", SENSOR_KEYS, rep)?;
    let line = line_of(rep, v);
    let text = |f: &mut Fields<'_>, key: &str, rep: &mut Reporter<'_>| {
        f.get(key, rep)
            .and_then(|v| values::string(v, &f.path_of(key), rep))
            .unwrap_or_default()
    };
    let namespace = text(&mut f, "namespace", rep);
    let subsystem = text(&mut f, "subsystem", rep);
    let help = text(&mut f, "help", rep);
    let name_value = required(&mut f, "name", rep, "add `\"name\": \"requests\"`");
    let name = name_value.and_then(|n| values::string(n, &f.path_of("name"), rep));
    let kind = required(
        &mut f,
        "type",
        rep,
        "add `\"type\":` with one of: counter, gauge, histogram, summary",
    )
    .and_then(|t| metric_type(t, &f.path_of("type"), rep));
    let check = required(
        &mut f,
        "check",
        rep,
        "add `\"check\": [\"/bin/sensor.sh\"]`",
    )
    .and_then(|c| values::exec(c, &f.path_of("check"), rep));
    let poll = required_period(
        &mut f,
        "poll",
        rep,
        "add `\"poll\": 10`: seconds between two checks",
        "\"poll\": 10",
    );
    let timeout = optional_timeout(&mut f, rep, "\"timeout\": \"5s\"");
    f.finish_lenient(rep, &|key| {
        (key == "exec" || key == "command").then(|| "a sensor's command is `check`".to_string())
    });
    let metric = MetricConfig {
        namespace,
        subsystem,
        name: name?,
        help,
        kind: kind?,
    };
    let span = name_value.map_or(v.span(), Spanned::span);
    let metric_name = full_name(&metric);
    if !is_valid_name(&metric_name) {
        rep.error(
            span,
            &format!("{path}.name"),
            format!("`{metric_name}` is not a valid Prometheus metric name"),
            Some(
                "use letters, digits, `_` and `:`, not starting with a digit \
                 (the name is namespace_subsystem_name)"
                    .into(),
            ),
        );
        return None;
    }
    let poll = poll?;
    let job = JobConfig {
        name: format!("sensor.{metric_name}"),
        exec: Some(sensor_exec(&check?, self_exe, &metric_name)),
        when: When::Interval(poll),
        restarts: Restarts::Unlimited,
        timeout: Some(timeout.unwrap_or(poll)),
        ..plain_job(line)
    };
    Some((metric, job, span))
}

/// The command of a sensor job: run the check, then hand its output to the
/// metric through the control socket, as ContainerPilot 2 recorded the
/// check's output. The output is split on whitespace (no globbing), so a
/// trailing newline or padding does not matter; a failing check records
/// nothing and fails the run.
fn sensor_exec(check: &Exec, self_exe: &str, metric: &str) -> Exec {
    let check = std::iter::once(check.program.as_str())
        .chain(check.args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "v=$({check}) || exit; set -f; set -- $v; exec {} -putmetric \"{metric}=$1\"",
        shell_quote(self_exe)
    );
    Exec {
        program: "sh".into(),
        args: vec!["-c".into(), script],
    }
}

/// Quotes a word for `sh` when it needs it.
fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn metric_type(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<MetricType> {
    let text = values::string(v, path, rep)?;
    telemetry::metric_type(&text, v, path, rep)
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

fn service_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "interval" => "ContainerPilot 2 calls the check interval `poll`",
        "check" | "command" => "a service's check command is `health`",
        "exec" => {
            "a ContainerPilot 2 service has no process of its own: give the app on the \
             command line, or run the program as a coprocess"
        }
        "restarts" => "`restarts` applies to coprocesses",
        "preStart" | "preStop" | "postStop" => {
            "ContainerPilot 2 hooks are top-level keys and apply to the app"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

fn backend_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "interval" => "ContainerPilot 2 calls the watch interval `poll`",
        "exec" | "command" => "the command run on a change is `onChange`",
        _ => return None,
    };
    Some(hint.to_string())
}

fn command_hint(key: &str) -> Option<String> {
    matches!(key, "exec" | "cmd").then(|| "the command is `command` here".to_string())
}

#[cfg(test)]
mod tests;
