//! What a configuration will do, in words: the plan `autopilot check` prints.
//!
//! ContainerPilot configs are a web of events (`preStop` runs when `app` emits
//! `stopping`, `onChange` each time `watch.db` emits `changed`), and a typo in a
//! `source` leaves a job waiting forever without a word. Like Terraform's
//! plan, this spells out for each job what starts it, how it restarts, how it
//! is checked and registered, and which jobs react to it, then warns about
//! waits that can never end. The text is meant for humans and kept stable, one
//! fact per line, so tests can assert on it.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::duration::format as dur;
use crate::config::error::{Diagnostic, Severity};
use crate::config::hooks::{self, HookKind};
use crate::config::model::{
    Config, HealthCheck, JobConfig, Repeat, Restarts, ServiceConfig, SignalMode, WatchConfig,
    WatchTarget, When,
};
use crate::config::suggest;
use crate::events::publishers::{Needs, Publisher, signal_sources};
use crate::events::{EventCode, GLOBAL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something will not work as written.
    Warning,
    /// Worth knowing, probably harmless.
    Info,
}

/// A finding about the configuration as a whole, at the line of the job or
/// watch it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanWarning {
    pub level: Level,
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Info => "info",
        };
        write!(f, "{level}: line {}: {}", self.line, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

impl PlanWarning {
    /// The finding in the located, excerpted form of config errors
    /// (`file:line:col`, the source line, a caret), for `text` (the rendered
    /// config) read from `file`.
    pub fn diagnostic(&self, text: &str, file: &str) -> Diagnostic {
        let excerpt = text
            .split('\n')
            .nth(self.line.saturating_sub(1))
            .unwrap_or("");
        let indent = excerpt.len() - excerpt.trim_start().len();
        let column = excerpt[..indent].chars().count() + 1;
        let width = excerpt.trim().chars().count();
        let mut d = Diagnostic::at_line_col(
            text,
            file,
            (self.line, column),
            width,
            self.message.clone(),
            self.hint.clone(),
        );
        d.severity = match self.level {
            Level::Warning => Severity::Warning,
            // Diagnostics have no "info" level; callers print infos as plan lines.
            Level::Info => Severity::Warning,
        };
        d
    }
}

/// The plan: description lines, then findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lines: Vec<String>,
    pub warnings: Vec<PlanWarning>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(f)?;
            for w in &self.warnings {
                writeln!(f, "{w}")?;
            }
        }
        Ok(())
    }
}

pub fn plan(config: &Config) -> Plan {
    let mut lines = overview(config);
    for job in &config.jobs {
        lines.push(String::new());
        describe_job(config, job, &mut lines);
    }
    for watch in &config.watches {
        lines.push(String::new());
        describe_watch(config, watch, &mut lines);
    }
    let mut warnings = check(config);
    warnings.sort_by_key(|w| (w.line, w.level));
    Plan { lines, warnings }
}

/// Label column width, so values line up.
fn row(label: &str, value: impl fmt::Display) -> String {
    format!("  {label:<9} {value}")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn overview(config: &Config) -> Vec<String> {
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

fn describe_job(config: &Config, job: &JobConfig, lines: &mut Vec<String>) {
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

fn describe_watch(config: &Config, watch: &WatchConfig, lines: &mut Vec<String>) {
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

/// What a job's `source` names.
enum Source<'a> {
    Job(&'a JobConfig),
    Watch,
    Global,
    Signal(&'a str),
}

/// "a, b and c".
fn and_list(codes: impl Iterator<Item = EventCode>) -> String {
    let names: Vec<&str> = codes.map(EventCode::as_str).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Why `code` can never come from `source`, if it cannot (who emits what is
/// [`crate::events::publishers`]'s table).
fn never_emits(source: &Source<'_>, code: EventCode) -> Option<(String, String)> {
    match source {
        Source::Job(job) => {
            let why = match Publisher::Job.emits(code) {
                Some(Needs::Exec) if job.exec.is_none() => (
                    format!("`{}` has no `exec`", job.name),
                    "wait for an event it does emit, such as `healthy`".to_string(),
                ),
                Some(Needs::Health) if job.health.is_none() => (
                    format!("`{}` has no health check", job.name),
                    format!("add `health` to `{}`, or wait for `exitSuccess`", job.name),
                ),
                Some(Needs::Leader) if job.leader.is_none() => (
                    format!("`{}` does not run for leadership", job.name),
                    "wait for another event".to_string(),
                ),
                Some(_) => return None,
                None if Publisher::Watch.emits(code).is_some() => (
                    format!("only watches emit `{code}`"),
                    "write `source: \"watch.NAME\"` for the watch to follow".to_string(),
                ),
                None if Publisher::Global.emits(code).is_some() => (
                    format!("`{code}` comes from autopilot itself, not from a job"),
                    format!("write `source: \"{GLOBAL}\"`"),
                ),
                None if Publisher::Signal.emits(code).is_some() => (
                    format!("`{code}` comes from the signal, not from a job"),
                    format!("write `source: \"{code}\"` or leave `source` out"),
                ),
                None => return None,
            };
            Some(why)
        }
        Source::Watch => Publisher::Watch.emits(code).is_none().then(|| {
            (
                format!(
                    "watches only emit {}, not `{code}`",
                    and_list(Publisher::Watch.codes())
                ),
                "wait for `changed`".to_string(),
            )
        }),
        Source::Global => Publisher::Global.emits(code).is_none().then(|| {
            (
                format!(
                    "`{GLOBAL}` only emits {}, not `{code}`",
                    and_list(Publisher::Global.codes())
                ),
                "name the job or watch that emits it as `source`".to_string(),
            )
        }),
        Source::Signal(name) => (code.signal_source() != Some(name)).then(|| {
            (
                format!("`{name}` only emits {name}, not `{code}`"),
                format!("write `each: \"{name}\"`"),
            )
        }),
    }
}

/// Settings that mean nothing without a process, and a job that does nothing.
fn without_exec(job: &JobConfig, out: &mut Vec<PlanWarning>) {
    let mut warn = |level: Level, message: String, hint: &str| {
        out.push(PlanWarning {
            level,
            line: job.line,
            message,
            hint: Some(hint.to_string()),
        })
    };
    let name = &job.name;
    if job.service.is_none() && job.health.is_none() {
        warn(
            Level::Info,
            format!(
                "job `{name}` has no `exec`, `port` or `health`, so it does nothing of its own"
            ),
            "add `exec` to run a process, or `port` and `health` to advertise a service without one",
        );
    }
    if let When::Interval(every) = job.when {
        warn(
            Level::Warning,
            format!(
                "job `{name}` has `when: {{interval: \"{}\"}}` but no `exec`: nothing runs on the ticks",
                dur(every)
            ),
            "add the `exec` to run periodically, or remove `when`",
        );
    } else {
        if job.restarts != Restarts::Never {
            warn(
                Level::Warning,
                format!(
                    "job `{name}` has `restarts` but no `exec`: there is no process to restart"
                ),
                "remove `restarts`, or add `exec`",
            );
        }
        if job.timeout.is_some() {
            warn(
                Level::Warning,
                format!(
                    "job `{name}` has `timeout` but no `exec`: there is no process to time out"
                ),
                "remove `timeout`, or add `exec`",
            );
        }
    }
    if job.main {
        warn(
            Level::Info,
            format!(
                "main job `{name}` has no `exec`: it never exits, so autopilot runs until it is \
                 stopped and then exits 0"
            ),
            "that suits a sidecar; to follow a process's exit code, mark a job with `exec` as `main`",
        );
    }
}

fn check(config: &Config) -> Vec<PlanWarning> {
    let mut out = Vec::new();
    let mut sources: BTreeSet<String> = config.jobs.iter().map(|j| j.name.clone()).collect();
    sources.extend(config.watches.iter().map(WatchConfig::source));
    sources.insert(GLOBAL.to_string());
    sources.extend(signal_sources().map(str::to_string));

    for job in &config.jobs {
        if job.exec.is_none() {
            without_exec(job, &mut out);
        }
        if let (Some(service), None) = (&job.service, &config.consul) {
            out.push(PlanWarning {
                level: Level::Warning,
                line: job.line,
                message: format!(
                    "job `{}` has `port` {} but there is no `consul` section, so it is not registered",
                    job.name, service.port
                ),
                hint: Some("add `consul: \"localhost:8500\"`, or remove `port`".into()),
            });
        }
        if let (Some(leader), None) = (&job.leader, &config.consul) {
            out.push(PlanWarning {
                level: Level::Warning,
                line: job.line,
                message: format!(
                    "job `{}` has `leader` but there is no `consul` section, so it never competes \
                     for `{}` and is never elected",
                    job.name, leader.key
                ),
                hint: Some("add `consul: \"localhost:8500\"`, or remove `leader`".into()),
            });
        }
        let When::Event { pattern, .. } = &job.when else {
            continue;
        };
        let source = pattern.source.as_str();
        let code = pattern.code;
        if source == job.name {
            out.push(PlanWarning {
                level: Level::Warning,
                line: job.line,
                message: format!(
                    "job `{}` waits for its own `{code}`, so it never starts",
                    job.name
                ),
                hint: Some("name another job or watch as `source`".into()),
            });
            continue;
        }
        let named = if let Some(j) = config.jobs.iter().find(|j| j.name == source) {
            Source::Job(j)
        } else if config.watches.iter().any(|w| w.source() == source) {
            Source::Watch
        } else if source == GLOBAL {
            Source::Global
        } else if let Some(sig) = signal_sources().find(|s| *s == source) {
            Source::Signal(sig)
        } else {
            let hint = if config.watches.iter().any(|w| w.name == source) {
                Some(format!(
                    "watches publish as `watch.{source}`: write `source: \"watch.{source}\"`"
                ))
            } else {
                suggest::closest(source, sources.iter().map(String::as_str))
                    .map(|close| format!("did you mean `{close}`?"))
                    .or_else(|| {
                        Some("name a job, `watch.NAME`, `global`, `SIGHUP` or `SIGUSR2`".into())
                    })
            };
            out.push(PlanWarning {
                level: Level::Warning,
                line: job.line,
                message: format!(
                    "job `{}` waits for `{code}` from `{source}`, which is not a job, a watch, \
                     `global` or a signal, so it never starts",
                    job.name
                ),
                hint,
            });
            continue;
        };
        if let Some((why, hint)) = never_emits(&named, code) {
            out.push(PlanWarning {
                level: Level::Warning,
                line: job.line,
                message: format!(
                    "job `{}` waits for `{code}` from `{source}`, but {why}, so it never starts",
                    job.name
                ),
                hint: Some(hint),
            });
        }
    }

    cycles(config, &mut out);

    for watch in &config.watches {
        let source = watch.source();
        let heard = config
            .jobs
            .iter()
            .any(|j| matches!(&j.when, When::Event { pattern, .. } if pattern.source == source));
        if !heard {
            out.push(PlanWarning {
                level: Level::Info,
                line: watch.line,
                message: format!("no job reacts to watch `{}`", watch.name),
                hint: Some(format!(
                    "add a job with `when: {{source: \"{source}\", each: \"changed\"}}`, or remove the watch"
                )),
            });
        }
    }
    out
}

/// The job whose event `job` waits for, if it waits for another job's.
fn awaited<'a>(config: &'a Config, job: &JobConfig) -> Option<(&'a JobConfig, EventCode)> {
    let When::Event { pattern, .. } = &job.when else {
        return None;
    };
    config
        .jobs
        .iter()
        .find(|j| j.name == pattern.source && j.name != job.name)
        .map(|j| (j, pattern.code))
}

/// Jobs that wait for each other's events (`a` on `b`'s exitSuccess, `b` on
/// `a`'s): none of them can ever start, and nothing else says so. A job
/// waits for at most one source, so following "waits for" from each job
/// either ends or comes back round; each cycle is reported once, at its job
/// that comes first in the file.
fn cycles(config: &Config, out: &mut Vec<PlanWarning>) {
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for start in &config.jobs {
        if reported.contains(start.name.as_str()) {
            continue;
        }
        let mut chain: Vec<(&JobConfig, EventCode)> = Vec::new();
        let mut current = start;
        while let Some((next, code)) = awaited(config, current) {
            chain.push((current, code));
            if next.name == start.name {
                break;
            }
            if chain.iter().any(|(j, _)| j.name == next.name) || chain.len() > config.jobs.len() {
                // A cycle that does not pass through `start`: found from one of its own jobs.
                chain.clear();
                break;
            }
            current = next;
        }
        let closes = awaited(config, current).is_some_and(|(next, _)| next.name == start.name);
        if chain.len() < 2 || !closes {
            continue;
        }
        let first_line = chain
            .iter()
            .map(|(j, _)| j.line)
            .min()
            .unwrap_or(start.line);
        if first_line != start.line {
            continue;
        }
        reported.extend(chain.iter().map(|(j, _)| j.name.as_str()));
        let names: Vec<String> = chain.iter().map(|(j, _)| format!("`{}`", j.name)).collect();
        let steps: Vec<String> = chain
            .iter()
            .enumerate()
            .map(|(i, (job, code))| {
                let next = &chain[(i + 1) % chain.len()].0;
                format!("`{}` waits for `{}`'s `{code}`", job.name, next.name)
            })
            .collect();
        let who = match names.len() {
            2 => format!("jobs {} and {} wait for each other", names[0], names[1]),
            _ => format!(
                "jobs {} and {} wait for each other in a cycle",
                names[..names.len() - 1].join(", "),
                names[names.len() - 1]
            ),
        };
        out.push(PlanWarning {
            level: Level::Warning,
            line: start.line,
            message: format!("{who}, so none of them ever starts: {}", steps.join(", ")),
            hint: Some(
                "start one of them another way: no `when` (at startup), or an event from a job \
                 or watch outside the cycle"
                    .into(),
            ),
        });
    }
}

/// The plan without what a migration changes: line numbers, and the two
/// rows that say a config is ContainerPilot 2. Tests compare a config's plan
/// with its migration's through this.
#[cfg(test)]
pub(crate) fn comparable_plan(c: &Config) -> String {
    let plan = plan(c).to_string();
    let line = regex::Regex::new(r"\((line \d+|the app on the command line|not in the file)\)")
        .expect("regex");
    let warning = regex::Regex::new(r"^(warning|info): line \d+:").expect("regex");
    plan.lines()
        .filter(|l| !l.starts_with("  format ") && !l.starts_with("  signals "))
        .map(|l| warning.replace(&line.replace(l, "(…)"), "$1:").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn plan_of(text: &str) -> Plan {
        let loaded = parse_str(text, "t.json5").unwrap_or_else(|e| panic!("{e}"));
        plan(&loaded.config)
    }

    fn has_line(p: &Plan, expected: &str) {
        assert!(
            p.lines.iter().any(|l| l == expected),
            "missing line {expected:?} in:\n{p}"
        );
    }

    const SAMPLE: &str = r#"{
  consul: "localhost:8500",
  jobs: [
    { name: "setup", exec: "/bin/setup" },
    {
      name: "app",
      exec: ["/bin/app", "--serve"],
      port: 8080,
      tags: ["web"],
      restarts: "unlimited",
      stopTimeout: "5s",
      when: { source: "setup", once: "exitSuccess" },
      health: { exec: "/bin/check", interval: 5, ttl: 10 },
      main: true,
    },
    { name: "preStop", exec: "/bin/drain", when: { source: "app", once: "stopping" } },
    { name: "onChange", exec: "/bin/reload", when: { source: "watch.db", each: "changed" } },
    { name: "backup", exec: "/bin/backup", when: { interval: "5m" }, timeout: "10m" },
    { name: "reload", exec: "/bin/hup", when: { each: "SIGHUP" } },
  ],
  watches: [ { name: "db", interval: 3 } ],
}"#;

    #[test]
    fn describes_what_starts_each_job() {
        let p = plan_of(SAMPLE);
        has_line(&p, "autopilot will supervise 6 jobs and 1 watch.");
        has_line(&p, "job setup (line 4)");
        has_line(&p, "  starts    at startup");
        has_line(&p, "  starts    once `setup` emits exitSuccess");
        has_line(&p, "  starts    each time `watch.db` emits changed");
        has_line(&p, "  starts    every 5m (timeout 10m)");
        has_line(&p, "  starts    on SIGHUP");
    }

    #[test]
    fn describes_restarts_health_service_and_hooks() {
        let p = plan_of(SAMPLE);
        has_line(&p, "job app (line 5)");
        has_line(&p, "  exec      /bin/app --serve");
        has_line(&p, "  restarts  unlimited, backoff 100ms doubling to 10s");
        has_line(
            &p,
            "  stop      waits 5s after `stopping` before it is killed",
        );
        has_line(
            &p,
            "  health    runs `/bin/check` every 5s, timeout 5s, ttl 10s",
        );
        has_line(&p, "  service   registers `app` on port 8080, tags web");
        has_line(
            &p,
            "  main      the container exits with this job's exit code",
        );
        has_line(&p, "  hooks     `preStop` runs once `app` emits stopping");
        has_line(&p, "  hooks     `app` runs once `setup` emits exitSuccess");
        has_line(&p, "  restarts  on every tick");
        has_line(&p, "watch db (line 21)");
        has_line(&p, "  follows   healthy instances of `db`");
        has_line(&p, "  events    as `watch.db`, at most one per 3s");
        has_line(
            &p,
            "  hooks     `onChange` runs each time `watch.db` emits changed",
        );
        assert!(p.warnings.is_empty(), "{p}");
    }

    #[test]
    fn warns_about_an_unknown_source_with_a_suggestion() {
        let p = plan_of(
            r#"{jobs: [
              {name: "setup", exec: "a"},
              {name: "app", exec: "b", when: {source: "stup", once: "exitSuccess"}},
            ]}"#,
        );
        assert_eq!(p.warnings.len(), 1, "{p}");
        let w = &p.warnings[0];
        assert_eq!((w.level, w.line), (Level::Warning, 3));
        assert!(w.message.contains("`stup`, which is not a job"), "{w}");
        assert_eq!(w.hint.as_deref(), Some("did you mean `setup`?"));
    }

    #[test]
    fn a_watch_named_without_its_prefix_is_explained() {
        let p = plan_of(
            r#"{jobs: [{name: "r", exec: "a", when: {source: "db", each: "changed"}}],
                watches: [{name: "db"}]}"#,
        );
        let w = p
            .warnings
            .iter()
            .find(|w| w.level == Level::Warning)
            .unwrap();
        assert!(w.hint.as_ref().unwrap().contains("`watch.db`"), "{w}");
    }

    #[test]
    fn warns_about_events_a_source_never_emits() {
        let p = plan_of(
            r#"{jobs: [
              {name: "setup", exec: "a"},
              {name: "a", exec: "x", when: {source: "setup", once: "healthy"}},
              {name: "b", exec: "x", when: {source: "setup", each: "changed"}},
              {name: "c", exec: "x", when: {source: "setup", once: "startup"}},
              {name: "d", exec: "x", when: {source: "watch.w", once: "exitSuccess"}},
              {name: "e", exec: "x", when: {source: "e", once: "exitSuccess"}},
              {name: "f", exec: "x", when: {source: "watch.w", each: "changed"}},
            ], watches: [{name: "w"}]}"#,
        );
        let lines: Vec<(usize, &str)> = p
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 5, "{p}");
        assert!(lines[0].1.contains("`setup` has no health check"), "{p}");
        assert!(lines[1].1.contains("only watches emit `changed`"), "{p}");
        assert!(lines[2].1.contains("comes from autopilot itself"), "{p}");
        assert!(lines[3].1.contains("watches only emit changed"), "{p}");
        assert!(lines[4].1.contains("waits for its own"), "{p}");
        assert_eq!(
            lines.iter().map(|l| l.0).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn what_a_source_does_emit_is_listed_in_full() {
        let p = plan_of(
            r#"{consul: "localhost:8500", jobs: [
              {name: "a", exec: "x", when: {source: "watch.w", once: "stopped"}},
              {name: "b", exec: "x", when: {source: "global", once: "healthy"}},
              {name: "c", exec: "x", when: {source: "SIGHUP", once: "SIGUSR2"}},
              {name: "d", exec: "x", when: {source: "a", once: "SIGHUP"}},
              {name: "e", exec: "x", when: {source: "watch.w", each: "changed"}},
            ], watches: [{name: "w"}]}"#,
        );
        for line in [
            "warning: line 2: job `a` waits for `stopped` from `watch.w`, but watches only emit \
             changed, healthy and unhealthy, not `stopped`, so it never starts",
            "warning: line 3: job `b` waits for `healthy` from `global`, but `global` only emits \
             startup, shutdown, enterMaintenance and exitMaintenance, not `healthy`, so it never starts",
            "warning: line 4: job `c` waits for `SIGUSR2` from `SIGHUP`, but `SIGHUP` only emits \
             SIGHUP, not `SIGUSR2`, so it never starts",
            "warning: line 5: job `d` waits for `SIGHUP` from `a`, but `SIGHUP` comes from the \
             signal, not from a job, so it never starts",
        ] {
            assert!(
                p.to_string().lines().any(|l| l == line),
                "missing {line:?}:\n{p}"
            );
        }
        assert_eq!(p.warnings.len(), 4, "{p}");
    }

    #[test]
    fn jobs_waiting_for_each_other_are_a_cycle() {
        let p = plan_of(
            r#"{jobs: [
  {name: "a", exec: "true", when: {source: "b", once: "exitSuccess"}},
  {name: "b", exec: "true", when: {source: "a", once: "exitSuccess"}},
  {name: "x", exec: "true", when: {source: "z", once: "healthy"}},
  {name: "y", exec: "true", when: {source: "x", once: "exitSuccess"}},
  {name: "z", exec: "true", when: {source: "y", each: "exitFailed"}},
  {name: "free", exec: "true"},
  {name: "after", exec: "true", when: {source: "a", once: "exitSuccess"}},
]}"#,
        );
        let cycles: Vec<&PlanWarning> = p
            .warnings
            .iter()
            .filter(|w| w.message.contains("wait for each other"))
            .collect();
        assert_eq!(cycles.len(), 2, "{p}");
        assert_eq!(cycles[0].line, 2);
        assert_eq!(
            cycles[0].message,
            "jobs `a` and `b` wait for each other, so none of them ever starts: \
             `a` waits for `b`'s `exitSuccess`, `b` waits for `a`'s `exitSuccess`"
        );
        assert_eq!(cycles[1].line, 4);
        assert!(
            cycles[1]
                .message
                .starts_with("jobs `x`, `z` and `y` wait for each other in a cycle"),
            "{}",
            cycles[1].message
        );
        assert!(
            cycles[1]
                .message
                .contains("`z` waits for `y`'s `exitFailed`"),
            "{}",
            cycles[1].message
        );
    }

    #[test]
    fn a_warning_renders_like_a_config_error() {
        let text = "{jobs: [\n  {name: \"a\", exec: \"true\", when: {source: \"a\", once: \"exitSuccess\"}},\n]}";
        let p = plan_of(text);
        let d = p.warnings[0].diagnostic(text, "c.json5").to_string();
        assert!(d.starts_with("warning:"), "{d}");
        assert!(d.contains("c.json5:2:3"), "{d}");
        assert!(d.contains("{name: \"a\""), "{d}");
    }

    #[test]
    fn a_watch_nobody_listens_to_is_info() {
        let p = plan_of(r#"{jobs: [{name: "a", exec: "x"}], watches: [{name: "lonely"}]}"#);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].level, Level::Info);
        assert_eq!(
            p.warnings[0].to_string().lines().next().unwrap(),
            "info: line 1: no job reacts to watch `lonely`"
        );
    }

    #[test]
    fn a_registered_job_without_consul_is_flagged() {
        let p = plan_of(
            r#"{jobs: [{name: "web", exec: "x", port: 80, health: {exec: "c", interval: 1, ttl: 3}}]}"#,
        );
        assert!(p.warnings[0].message.contains("no `consul` section"), "{p}");
        has_line(&p, "  consul    none: no service registration, no watches");
    }

    #[test]
    fn the_plan_labels_hook_jobs_and_exit_on_failure() {
        let p = plan_of(
            r#"{jobs: [
                {name: "app", exec: "/bin/app", hooks: {preStart: "/bin/prep", preStop: "/bin/drain"}},
                {name: "setup", exec: "/bin/setup", exitOnFailure: true},
              ]}"#,
        );
        let plan = p.to_string();
        for line in [
            "job app.preStart (line 2)",
            "  hook      preStart of `app`: `app` starts once it succeeds; \
             if it fails, autopilot exits with its exit code",
            "  hook      preStop of `app`: `app` waits for it before its SIGTERM",
            "  hooks     `app.preStop` runs once `app` emits stopping",
            "  failure   if it fails, autopilot shuts down and exits with its exit code",
        ] {
            assert!(plan.lines().any(|l| l == line), "missing {line:?}:\n{plan}");
        }
        // The preStart's own failure rule is in its `hook` line, not repeated.
        assert_eq!(plan.matches("  failure ").count(), 1, "{plan}");
    }

    #[test]
    fn a_job_without_exec_says_what_it_does() {
        let p = plan_of(
            r#"{consul: "localhost:8500", telemetry: {port: 9090}, jobs: [
              {name: "web", port: 8080, health: {http: "http://127.0.0.1:8080/health", interval: 5, ttl: 15}},
              {name: "db", port: 5432, health: {tcp: "127.0.0.1:5432", interval: 5, ttl: 15}},
              {name: "probe", health: {tcp: "127.0.0.1:6379", interval: 5, ttl: 15}},
            ]}"#,
        );
        has_line(
            &p,
            "  probes    GET /live and /ready on port 9090 (for a livenessProbe and a readinessProbe)",
        );
        has_line(&p, "  exec      none: no process of its own");
        has_line(
            &p,
            "  does      advertises `web` without a process: registered when it starts, passing \
             or critical as its health check says, deregistered at shutdown",
        );
        has_line(
            &p,
            "  health    GET http://127.0.0.1:8080/health expecting 200-299 every 5s, timeout 5s, ttl 15s",
        );
        has_line(
            &p,
            "  health    connects to 127.0.0.1:5432 every 5s, timeout 5s, ttl 15s",
        );
        has_line(
            &p,
            "  does      runs its health check without a process: publishes healthy and unhealthy",
        );
        assert!(
            !p.lines.iter().any(|l| l.starts_with("  restarts")),
            "no restarts without a process:\n{p}"
        );
        assert!(p.warnings.is_empty(), "{p}");
    }

    #[test]
    fn settings_without_effect_on_a_job_without_exec_are_flagged() {
        let p = plan_of(
            r#"{jobs: [
              {name: "idle"},
              {name: "ticker", when: {interval: "5s"}},
              {name: "web", restarts: 3, timeout: "10s", main: true},
            ]}"#,
        );
        let found: Vec<(usize, Level, &str)> = p
            .warnings
            .iter()
            .map(|w| (w.line, w.level, w.message.as_str()))
            .collect();
        let on = |line: usize, part: &str| {
            found
                .iter()
                .find(|f| f.0 == line && f.2.contains(part))
                .map(|f| f.1)
                .unwrap_or_else(|| panic!("no finding {part:?} on line {line}:\n{p}"))
        };
        for line in [2, 3, 4] {
            assert_eq!(on(line, "has no `exec`, `port` or `health`"), Level::Info);
        }
        assert_eq!(on(3, "nothing runs on the ticks"), Level::Warning);
        assert_eq!(on(4, "no process to restart"), Level::Warning);
        assert_eq!(on(4, "no process to time out"), Level::Warning);
        assert_eq!(on(4, "it never exits"), Level::Info);
        assert_eq!(found.len(), 7, "{p}");
    }

    #[test]
    fn leadership_is_shown_and_needs_consul() {
        let job = r#"{name: "db", exec: "x", port: 3306, health: {exec: "c", interval: 1, ttl: 3},
                      leader: {key: "service/db/primary", ttl: 20, lockDelay: 2}}"#;
        let p = plan_of(&format!("{{consul: 'c:8500', jobs: [{job}]}}"));
        has_line(
            &p,
            "  leader    competes for Consul key `service/db/primary` while healthy (session ttl \
             20s, lock-delay 2s): publishes elected and deposed, sets CONTAINERPILOT_DB_LEADER",
        );
        assert!(p.warnings.is_empty(), "{p}");
        let p = plan_of(&format!("{{jobs: [{job}]}}"));
        assert!(
            p.warnings.iter().any(|w| w
                .message
                .contains("has `leader` but there is no `consul` section")),
            "{p}"
        );
    }

    #[test]
    fn signals_and_globals_read_naturally() {
        let p = plan_of(
            r#"{jobs: [
              {name: "a", exec: "x", when: {once: "SIGUSR2"}},
              {name: "b", exec: "x", when: {source: "global", once: "shutdown", timeout: "30s"}},
            ]}"#,
        );
        has_line(&p, "  starts    on the first SIGUSR2");
        has_line(&p, "  starts    at shutdown, giving up after 30s");
        assert!(p.warnings.is_empty(), "{p}");
    }
}
