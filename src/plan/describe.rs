//! The description lines: what starts each job, how it restarts, how it is
//! checked and registered, which jobs react to it; and what each watch follows.

use super::{plural, row};
use crate::config::duration::format as dur;
use crate::config::hooks::{self, HookKind};
use crate::config::model::{
    Config, HealthCheck, JobConfig, Repeat, Restarts, ServiceConfig, SignalMode, WatchConfig,
    WatchTarget, When,
};
use crate::events::{EventCode, GLOBAL};

pub(super) fn overview(config: &Config) -> Vec<String> {
    let mut lines = vec![format!(
        "autopilot will supervise {} and {}.",
        plural(config.jobs.len(), "job", "jobs"),
        plural(config.watches.len(), "watch", "watches")
    )];
    lines.push(match &config.consul {
        Some(c) if c.address.is_empty() => row(
            "consul",
            "default address (CONSUL_HTTP_ADDR or localhost:8500)",
        ),
        Some(c) => row("consul", &c.address),
        None => row("consul", "none: no service registration, no watches"),
    });
    lines.push(row("control", config.control.socket.display()));
    if let Some(t) = &config.telemetry {
        lines.push(row(
            "telemetry",
            format!(
                "Prometheus metrics on port {}, {}",
                t.port,
                plural(t.metrics.len(), "custom metric", "custom metrics")
            ),
        ));
    }
    if let Some(t) = &config.telemetry {
        lines.push(row(
            "probes",
            format!(
                "GET /live and /ready on port {} (for a livenessProbe and a readinessProbe)",
                t.port
            ),
        ));
    }
    lines.push(row(
        "shutdown",
        format!("within {}", dur(config.stop_timeout)),
    ));
    if config.signals == SignalMode::V2 {
        lines.push(row(
            "format",
            "ContainerPilot 2, translated into the jobs and watches below",
        ));
        lines.push(row(
            "signals",
            "ContainerPilot 2's: SIGUSR1 toggles maintenance, SIGHUP reloads the config",
        ));
    }
    lines
}

/// "at startup", "once `setup` emits exitSuccess", "every 5m (timeout 10m)", ...
pub fn describe_start(job: &JobConfig) -> String {
    match &job.when {
        When::Startup => "at startup".to_string(),
        When::Interval(every) => {
            let mut s = format!("every {}", dur(*every));
            if let Some(t) = job.timeout {
                s.push_str(&format!(" (timeout {})", dur(t)));
            }
            if let Restarts::Limit(n) = job.restarts {
                s.push_str(&format!(
                    ", {} in all",
                    plural(n as usize + 1, "run", "runs")
                ));
            }
            s
        }
        When::Event {
            pattern,
            repeat,
            timeout,
        } => {
            let code = pattern.code;
            let source = pattern.source.as_str();
            let mut s = if code.signal_source() == Some(source) {
                match repeat {
                    Repeat::Once => format!("on the first {source}"),
                    Repeat::Each => format!("on {source}"),
                }
            } else if source == GLOBAL && code == EventCode::Startup {
                "at startup".to_string()
            } else if source == GLOBAL && code == EventCode::Shutdown {
                "at shutdown".to_string()
            } else {
                match repeat {
                    Repeat::Once => format!("once `{source}` emits {code}"),
                    Repeat::Each => format!("each time `{source}` emits {code}"),
                }
            };
            if let Some(t) = timeout {
                s.push_str(&format!(", giving up after {}", dur(*t)));
            }
            s
        }
    }
}

fn describe_restarts(job: &JobConfig) -> String {
    let backoff = format!(
        ", backoff {} doubling to {}",
        dur(job.backoff.initial),
        dur(job.backoff.max)
    );
    match (job.restarts, &job.when) {
        (Restarts::Never, _) => "never".to_string(),
        // For an interval job each tick is a restart: no backoff applies.
        (Restarts::Unlimited, When::Interval(_)) => "on every tick".to_string(),
        (Restarts::Limit(n), When::Interval(_)) => plural(n as usize, "more run", "more runs"),
        (Restarts::Unlimited, _) => format!("unlimited{backoff}"),
        (Restarts::Limit(n), _) => {
            format!("up to {}{backoff}", plural(n as usize, "time", "times"))
        }
    }
}

fn describe_health(job: &JobConfig) -> Option<String> {
    let h = job.health.as_ref()?;
    let check = match &h.check {
        HealthCheck::Exec(exec) => format!("runs `{}`", exec.display()),
        HealthCheck::Http { url, ok_status } => {
            format!(
                "GET {url} expecting {}-{}",
                ok_status.start(),
                ok_status.end()
            )
        }
        HealthCheck::Tcp { address } => format!("connects to {address}"),
    };
    Some(format!(
        "{check} every {}, timeout {}, ttl {}",
        dur(h.interval),
        dur(h.timeout),
        dur(h.ttl)
    ))
}

fn describe_service(job: &JobConfig, service: &ServiceConfig) -> String {
    let mut s = format!("registers `{}` on port {}", job.name, service.port);
    if !service.tags.is_empty() {
        s.push_str(&format!(", tags {}", service.tags.join(", ")));
    }
    if !service.interfaces.is_empty() {
        s.push_str(&format!(", address from {}", service.interfaces.join(", ")));
    }
    if let Some(status) = &service.initial_status {
        s.push_str(&format!(", starting {status}"));
    }
    if let Some(after) = &service.deregister_critical_service_after {
        s.push_str(&format!(", deregistered after {after} critical"));
    }
    s
}

/// What a job without `exec` does, once started: it is "running" with no
/// process until shutdown (or until its `when` gives up).
fn describe_without_exec(job: &JobConfig) -> String {
    match (&job.service, &job.health) {
        (Some(_), Some(_)) => format!(
            "advertises `{}` without a process: registered when it starts, passing or \
             critical as its health check says, deregistered at shutdown",
            job.name
        ),
        (Some(_), None) => format!(
            "advertises `{}` without a process or a health check: registered when it starts, \
             deregistered at shutdown",
            job.name
        ),
        (None, Some(_)) => {
            "runs its health check without a process: publishes healthy and unhealthy".to_string()
        }
        (None, None) => "nothing until shutdown, then publishes stopping and stopped".to_string(),
    }
}

/// Jobs started by events from `source`, described from the source's side.
fn hooks(config: &Config, source: &str) -> Vec<String> {
    config
        .jobs
        .iter()
        .filter_map(|j| match &j.when {
            When::Event {
                pattern, repeat, ..
            } if pattern.source == source => Some(match repeat {
                Repeat::Once => format!("`{}` runs once `{source}` emits {}", j.name, pattern.code),
                Repeat::Each => format!(
                    "`{}` runs each time `{source}` emits {}",
                    j.name, pattern.code
                ),
            }),
            _ => None,
        })
        .collect()
}

/// What a hook job is for, from its owner's side of the story.
fn describe_hook(kind: HookKind, owner: &str) -> String {
    match kind {
        HookKind::PreStart => format!(
            "preStart of `{owner}`: `{owner}` starts once it succeeds; \
             if it fails, autopilot exits with its exit code"
        ),
        HookKind::PreStop => {
            format!("preStop of `{owner}`: `{owner}` waits for it before its SIGTERM")
        }
        HookKind::PostStop => format!("postStop of `{owner}`: runs once `{owner}` has stopped"),
        HookKind::OnChange => format!("onChange of watch `{owner}`"),
    }
}

pub(super) fn describe_job(config: &Config, job: &JobConfig, lines: &mut Vec<String>) {
    let place = match job.line {
        // A ContainerPilot 2 app is given on the command line.
        0 if config.signals == SignalMode::V2 => "the app on the command line".to_string(),
        0 => "not in the file".to_string(),
        line => format!("line {line}"),
    };
    lines.push(format!("job {} ({place})", job.name));
    let hook = hooks::recognize(config, job);
    if let Some((kind, owner)) = hook {
        lines.push(row("hook", describe_hook(kind, owner)));
    }
    lines.push(row("starts", describe_start(job)));
    match &job.exec {
        Some(exec) => {
            lines.push(row("exec", exec.display()));
            lines.push(row("restarts", describe_restarts(job)));
        }
        None => {
            lines.push(row("exec", "none: no process of its own"));
            lines.push(row("does", describe_without_exec(job)));
        }
    }
    if let Some(t) = job.timeout
        && job.exec.is_some()
        && !matches!(job.when, When::Interval(_))
    {
        lines.push(row("timeout", format!("killed after running {}", dur(t))));
    }
    if let Some(t) = job.stop_timeout {
        lines.push(row(
            "stop",
            format!("waits {} after `stopping` before it is killed", dur(t)),
        ));
    }
    if let Some(health) = describe_health(job) {
        lines.push(row("health", health));
    }
    if let Some(service) = &job.service {
        lines.push(row("service", describe_service(job, service)));
    }
    if let Some(leader) = &job.leader {
        lines.push(row(
            "leader",
            format!(
                "competes for Consul key `{}` while healthy (session ttl {}, lock-delay {}): \
                 publishes elected and deposed, sets CONTAINERPILOT_{}_LEADER",
                leader.key,
                dur(leader.ttl),
                dur(leader.lock_delay),
                crate::environ::env_name(&job.name)
            ),
        ));
    }
    if job.main {
        lines.push(row("main", "the container exits with this job's exit code"));
    }
    if job.exit_on_failure && !matches!(hook, Some((HookKind::PreStart, _))) {
        lines.push(row(
            "failure",
            "if it fails, autopilot shuts down and exits with its exit code",
        ));
    }
    for (i, hook) in hooks(config, &job.name).into_iter().enumerate() {
        lines.push(row(if i == 0 { "hooks" } else { "" }, hook));
    }
}

pub(super) fn describe_watch(config: &Config, watch: &WatchConfig, lines: &mut Vec<String>) {
    lines.push(format!("watch {} (line {})", watch.name, watch.line));
    let dc = |dc: &Option<String>| {
        dc.as_ref()
            .map_or(String::new(), |d| format!(" in datacenter {d}"))
    };
    let target = match &watch.target {
        WatchTarget::Service {
            service,
            tag,
            dc: d,
        } => {
            let tag = tag
                .as_ref()
                .map_or(String::new(), |t| format!(" tagged `{t}`"));
            format!("healthy instances of `{service}`{tag}{}", dc(d))
        }
        WatchTarget::Key { key, dc: d } => format!("Consul key `{key}`{}", dc(d)),
        WatchTarget::Prefix { prefix, dc: d } => format!("Consul keys under `{prefix}`{}", dc(d)),
    };
    lines.push(row("follows", target));
    lines.push(row(
        "events",
        format!(
            "as `{}`, at most one per {}",
            watch.source(),
            dur(watch.interval)
        ),
    ));
    for (i, hook) in hooks(config, &watch.source()).into_iter().enumerate() {
        lines.push(row(if i == 0 { "hooks" } else { "" }, hook));
    }
}
