//! The ContainerPilot 2 sections that become jobs and watches: `services`,
//! `backends`, `coprocesses` and `tasks` (the rows of the table in
//! [`super`]), each decoded on its own; [`super::translate`] wires them to
//! the app.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{
    BACKEND_KEYS, COPROCESS_KEYS, DEFAULT_POLL, SERVICE_KEYS, TASK_KEYS, line_of, optional_timeout,
    plain_job, required, required_period,
};
use crate::config::decode::DEFAULT_WATCH_INTERVAL;
use crate::config::decode::fields::Fields;
use crate::config::decode::jobs::{is_service_name, service_name_like};
use crate::config::decode::when::MIN_TASK_DURATION;
use crate::config::decode::{restarts, service, values};
use crate::config::error::Reporter;
use crate::config::hooks::{self, Hook};
use crate::config::model::{
    Exec, HealthCheck, HealthConfig, JobConfig, Restarts, WatchConfig, WatchTarget, When,
};
use crate::config::source::{Span, Spanned, Value};

/// A service: a job without `exec` that is health-checked and registered.
pub(super) fn service(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<(JobConfig, Span)> {
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
pub(super) type Backend = (WatchConfig, Option<(Hook, Option<Duration>)>, Span);

pub(super) fn backend(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Backend> {
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
pub(super) type Unnamed = (Option<String>, JobConfig);

/// A coprocess: a job that runs beside the app, with its restart policy.
pub(super) fn coprocess(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Unnamed> {
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
pub(super) fn task(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Unnamed> {
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
pub(super) fn named(
    items: Vec<Unnamed>,
    kind: &str,
    taken: &mut BTreeSet<String>,
) -> Vec<JobConfig> {
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
