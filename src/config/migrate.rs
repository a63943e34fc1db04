//! `autopilot migrate`: a loaded configuration written out as ContainerPilot 3
//! JSON5, so users of a ContainerPilot 2 config can move on.
//!
//! The text is generated from the typed [`Config`], not from the old file:
//! whatever autopilot would run is what gets written, defaults left out, and
//! loading the output gives the same jobs and watches (the round-trip tests
//! compare the plans). Jobs that are exactly what a hook expands to are
//! written back as hooks (`hooks: {preStart, ...}` on their job, `onChange`
//! on their watch), which is how new configs are meant to read.
//!
//! Two things cannot be carried over and are said in the header instead:
//! template references (the file was rendered with the environment of the
//! `migrate` run) and ContainerPilot 2's signal meanings. And one thing
//! needs a person: a ContainerPilot 2 service name that version 3 rejects
//! (`node_exporter`) is written as is, with a comment, and reported.

mod values;

use std::fmt::Write as _;

use super::decode::jobs::{is_service_name, service_name_like};
use super::decode::{DEFAULT_TELEMETRY_PORT, DEFAULT_WATCH_INTERVAL};
use super::hooks::{self, HookKind};
use super::model::{
    Backoff, Config, ConsulConfig, ControlConfig, DEFAULT_STOP_TIMEOUT, HealthCheck, HealthConfig,
    JobConfig, LogFormat, LogLevel, LogOutput, LoggingConfig, MetricType, Repeat, Restarts,
    SignalMode, TelemetryConfig, WatchConfig, WatchTarget, When,
};
use values::{Entry, J, duration, exec_value, field, obj, seconds, strings, text, write_value};

/// The result of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The ContainerPilot 3 JSON5 text.
    pub text: String,
    /// Edits the text needs before it loads, for the user to make.
    pub todo: Vec<String>,
}

/// Migrates `config`; see [`to_json5`].
pub fn migrate(config: &Config, source: &str) -> Migration {
    let todo = config
        .jobs
        .iter()
        .filter(|j| j.service.is_some() && !is_service_name(&j.name))
        .map(|j| {
            format!(
                "job `{}`: ContainerPilot 3 configs only register service names made of \
                 lower-case-first letters, digits and `-`; rename it (for example `{}`), \
                 and update whatever looks it up",
                j.name,
                service_name_like(&j.name)
            )
        })
        .collect();
    Migration {
        text: to_json5(config, source),
        todo,
    }
}

/// The configuration as ContainerPilot 3 JSON5 text, with a header comment
/// saying where it came from (`source`) and what to check before using it.
pub fn to_json5(config: &Config, source: &str) -> String {
    let mut out = header(config, source);
    let mut top = Vec::new();
    if let Some(consul) = &config.consul {
        top.push(field("consul", consul_value(consul)));
    }
    if config.logging != LoggingConfig::default() {
        top.push(field("logging", logging_value(&config.logging)));
    }
    if config.control != ControlConfig::default() {
        top.push(field(
            "control",
            obj(vec![field(
                "socket",
                text(config.control.socket.display().to_string()),
            )]),
        ));
    }
    if config.stop_timeout != DEFAULT_STOP_TIMEOUT {
        top.push(field("stopTimeout", duration(config.stop_timeout)));
    }
    let jobs: Vec<J> = config
        .jobs
        .iter()
        .filter(|job| hooks::recognize(config, job).is_none())
        .map(|job| job_value(config, job))
        .collect();
    if !jobs.is_empty() {
        top.push(field("jobs", J::Arr(jobs)));
    }
    if !config.watches.is_empty() {
        let watches = config
            .watches
            .iter()
            .map(|w| watch_value(config, w))
            .collect();
        top.push(field("watches", J::Arr(watches)));
    }
    if let Some(telemetry) = &config.telemetry {
        top.push(field("telemetry", telemetry_value(telemetry)));
    }
    write_value(&mut out, &obj(top), 0);
    out.push('\n');
    out
}

fn header(config: &Config, source: &str) -> String {
    let mut lines = vec![format!("Written by `autopilot migrate` from {source},")];
    if config.signals == SignalMode::V2 {
        lines
            .push("a ContainerPilot 2 config, as the same setup in ContainerPilot 3 terms.".into());
        lines.push(String::new());
        lines.push("Before using it:".into());
        lines.push(
            "- Template values were filled in from the environment of the `migrate` run:".into(),
        );
        lines.push(
            "  put the template references back where a value should come from the container."
                .into(),
        );
        match config.jobs.iter().find(|j| j.main) {
            Some(app) => lines.push(format!(
                "- The app is the job `{}`: start autopilot with `-config` only, no app after it.",
                app.name
            )),
            None => lines.push(
                "- No app was given after `-config`: add it as a job with `exec` and `main: true`."
                    .into(),
            ),
        }
        lines.push(
            "- Signals now mean what they do in ContainerPilot 3: SIGUSR1 no longer toggles".into(),
        );
        lines.push(
            "  maintenance (run `autopilot -maintenance enable|disable`) and SIGHUP no longer"
                .into(),
        );
        lines.push(
            "  reloads (run `autopilot -reload`); SIGHUP is an event jobs can react to.".into(),
        );
    } else {
        lines.push(
            "a ContainerPilot 3 config, rewritten with defaults left out. Template values were"
                .into(),
        );
        lines.push(
            "filled in from the environment of the `migrate` run: put the template references back."
                .into(),
        );
    }
    let mut out = String::new();
    for line in lines {
        // A template action in a comment would still be rendered: keep none.
        let line = line.replace("{{", "{ {");
        if line.is_empty() {
            out.push_str("//\n");
        } else {
            let _ = writeln!(out, "// {line}");
        }
    }
    out
}

// ------------------------------------------------------------ the sections

fn consul_value(c: &ConsulConfig) -> J {
    if c.scheme.is_none() && c.token.is_none() && c.tls.is_none() {
        return text(&c.address);
    }
    let mut fields = vec![field("address", text(&c.address))];
    if let Some(scheme) = &c.scheme {
        fields.push(field("scheme", text(scheme)));
    }
    if let Some(token) = &c.token {
        fields.push(field("token", text(token)));
    }
    if let Some(tls) = &c.tls {
        let mut t = Vec::new();
        let path = |p: &std::path::PathBuf| text(p.display().to_string());
        if let Some(p) = &tls.ca_file {
            t.push(field("cafile", path(p)));
        }
        if let Some(p) = &tls.ca_path {
            t.push(field("capath", path(p)));
        }
        if let Some(p) = &tls.client_cert {
            t.push(field("clientcert", path(p)));
        }
        if let Some(p) = &tls.client_key {
            t.push(field("clientkey", path(p)));
        }
        if let Some(name) = &tls.server_name {
            t.push(field("servername", text(name)));
        }
        if !tls.verify {
            t.push(field("verify", J::Bool(false)));
        }
        fields.push(field("tls", obj(t)));
    }
    obj(fields)
}

fn logging_value(l: &LoggingConfig) -> J {
    let defaults = LoggingConfig::default();
    let mut fields = Vec::new();
    if l.level != defaults.level {
        let level = match l.level {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        };
        fields.push(field("level", text(level)));
    }
    if l.format != defaults.format {
        let format = match l.format {
            LogFormat::Default => "default",
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        fields.push(field("format", text(format)));
    }
    if l.output != defaults.output {
        let output = match &l.output {
            LogOutput::Stdout => "stdout".to_string(),
            LogOutput::Stderr => "stderr".to_string(),
            LogOutput::File(path) => path.display().to_string(),
        };
        fields.push(field("output", text(output)));
    }
    obj(fields)
}

fn job_value(config: &Config, job: &JobConfig) -> J {
    let mut fields = Vec::new();
    if config.signals == SignalMode::V2 && job.line == 0 {
        fields.push(Entry::Comment(if job.exec.is_some() {
            "The app ContainerPilot 2 took from the command line.".into()
        } else {
            "Stands for ContainerPilot 2's app, which was not given on the command line: \
             add `exec` and `main: true`."
                .into()
        }));
    }
    if job.service.is_some() && !is_service_name(&job.name) {
        fields.push(Entry::Comment(format!(
            "TODO: ContainerPilot 3 does not register `{}`: rename it, e.g. `{}`",
            job.name,
            service_name_like(&job.name)
        )));
    }
    fields.push(field("name", text(&job.name)));
    if let Some(exec) = &job.exec {
        fields.push(field("exec", exec_value(exec)));
    }
    // A job with a preStart hook starts when the hook would have.
    let job_hooks: Vec<(HookKind, &JobConfig)> = config
        .jobs
        .iter()
        .filter_map(|other| match hooks::recognize(config, other) {
            Some((kind, owner)) if owner == job.name && kind != HookKind::OnChange => {
                Some((kind, other))
            }
            _ => None,
        })
        .collect();
    let when = job_hooks
        .iter()
        .find(|(kind, _)| *kind == HookKind::PreStart)
        .map_or(&job.when, |(_, pre)| &pre.when);
    if let Some(w) = when_value(when) {
        fields.push(field("when", w));
    }
    let default_restarts = match when {
        When::Interval(_) => Restarts::Unlimited,
        _ => Restarts::Never,
    };
    if job.restarts != default_restarts {
        fields.push(field("restarts", restarts_value(job.restarts)));
    }
    if job.backoff != Backoff::default() {
        fields.push(field(
            "backoff",
            obj(vec![
                field("initial", duration(job.backoff.initial)),
                field("max", duration(job.backoff.max)),
                field("reset", duration(job.backoff.reset_after)),
            ]),
        ));
    }
    let default_timeout = match when {
        When::Interval(every) => Some(*every),
        _ => None,
    };
    if let Some(t) = job.timeout.filter(|t| Some(*t) != default_timeout) {
        fields.push(field("timeout", duration(t)));
    }
    if let Some(t) = job.stop_timeout {
        fields.push(field("stopTimeout", duration(t)));
    }
    if let Some(health) = &job.health {
        fields.push(field("health", health_value(health)));
    }
    if let Some(s) = &job.service {
        fields.push(field("port", J::Raw(s.port.to_string())));
        if !s.tags.is_empty() {
            fields.push(field("tags", strings(&s.tags)));
        }
        if !s.interfaces.is_empty() {
            fields.push(field("interfaces", strings(&s.interfaces)));
        }
        let mut consul = Vec::new();
        if s.enable_tag_override {
            consul.push(field("enableTagOverride", J::Bool(true)));
        }
        if let Some(after) = &s.deregister_critical_service_after {
            consul.push(field("deregisterCriticalServiceAfter", text(after)));
        }
        if !consul.is_empty() {
            fields.push(field("consul", obj(consul)));
        }
        if let Some(status) = &s.initial_status {
            fields.push(field("initial_status", text(status)));
        }
        if !s.meta.is_empty() {
            let meta = s
                .meta
                .iter()
                .map(|(k, v)| Entry::Field(k.clone(), text(v)))
                .collect();
            fields.push(field("meta", obj(meta)));
        }
    }
    if job.logging_raw {
        fields.push(field("logging", obj(vec![field("raw", J::Bool(true))])));
    }
    if job.main {
        fields.push(field("main", J::Bool(true)));
    }
    if job.exit_on_failure {
        fields.push(field("exitOnFailure", J::Bool(true)));
    }
    if let Some(leader) = &job.leader {
        fields.push(field(
            "leader",
            obj(vec![
                field("key", text(&leader.key)),
                field("ttl", duration(leader.ttl)),
                field("lockDelay", duration(leader.lock_delay)),
            ]),
        ));
    }
    if !job_hooks.is_empty() {
        let hooks = job_hooks
            .iter()
            .filter_map(|(kind, hook)| {
                let exec = hook.exec.as_ref()?;
                Some(field(kind.key(), exec_value(exec)))
            })
            .collect();
        fields.push(field("hooks", obj(hooks)));
    }
    obj(fields)
}

fn when_value(when: &When) -> Option<J> {
    match when {
        When::Startup => None,
        When::Interval(every) => Some(obj(vec![field("interval", duration(*every))])),
        When::Event {
            pattern,
            repeat,
            timeout,
        } => {
            let key = match repeat {
                Repeat::Once => "once",
                Repeat::Each => "each",
            };
            let mut fields = vec![
                field("source", text(&pattern.source)),
                field(key, text(pattern.code.as_str())),
            ];
            if let Some(t) = timeout {
                fields.push(field("timeout", duration(*t)));
            }
            Some(obj(fields))
        }
    }
}

fn restarts_value(r: Restarts) -> J {
    match r {
        Restarts::Never => text("never"),
        Restarts::Unlimited => text("unlimited"),
        Restarts::Limit(n) => J::Raw(n.to_string()),
    }
}

fn health_value(h: &HealthConfig) -> J {
    let mut fields = vec![match &h.check {
        HealthCheck::Exec(exec) => field("exec", exec_value(exec)),
        HealthCheck::Http { url, ok_status } if *ok_status == (200..=299) => {
            field("http", text(url))
        }
        HealthCheck::Http { url, ok_status } => field(
            "http",
            obj(vec![
                field("url", text(url)),
                field(
                    "status",
                    text(format!("{}-{}", ok_status.start(), ok_status.end())),
                ),
            ]),
        ),
        HealthCheck::Tcp { address } => field("tcp", text(address)),
    }];
    fields.push(field("interval", seconds(h.interval)));
    fields.push(field("ttl", seconds(h.ttl)));
    if h.timeout != h.interval {
        fields.push(field("timeout", duration(h.timeout)));
    }
    if h.logging_raw {
        fields.push(field("logging", obj(vec![field("raw", J::Bool(true))])));
    }
    obj(fields)
}

fn watch_value(config: &Config, w: &WatchConfig) -> J {
    let mut fields = vec![field("name", text(&w.name))];
    let dc = match &w.target {
        WatchTarget::Service { service, tag, dc } => {
            // A service watch follows the service its name says.
            if *service != w.name {
                fields.push(Entry::Comment(format!(
                    "follows the service `{service}`, which a watch cannot name apart from \
                     its own name"
                )));
            }
            if let Some(tag) = tag {
                fields.push(field("tag", text(tag)));
            }
            dc
        }
        WatchTarget::Key { key, dc } => {
            fields.push(field("key", text(key)));
            dc
        }
        WatchTarget::Prefix { prefix, dc } => {
            fields.push(field("prefix", text(prefix)));
            dc
        }
    };
    if let Some(dc) = dc {
        fields.push(field("dc", text(dc)));
    }
    if w.interval != DEFAULT_WATCH_INTERVAL {
        fields.push(field("interval", seconds(w.interval)));
    }
    let on_change = config
        .jobs
        .iter()
        .find(|j| hooks::recognize(config, j) == Some((HookKind::OnChange, w.name.as_str())));
    if let Some(exec) = on_change.and_then(|j| j.exec.as_ref()) {
        fields.push(field("onChange", exec_value(exec)));
    }
    obj(fields)
}

fn telemetry_value(t: &TelemetryConfig) -> J {
    let mut fields = Vec::new();
    if t.port != DEFAULT_TELEMETRY_PORT {
        fields.push(field("port", J::Raw(t.port.to_string())));
    }
    if !t.interfaces.is_empty() {
        fields.push(field("interfaces", strings(&t.interfaces)));
    }
    if !t.tags.is_empty() {
        fields.push(field("tags", strings(&t.tags)));
    }
    if !t.metrics.is_empty() {
        let metrics = t
            .metrics
            .iter()
            .map(|m| {
                let mut f = Vec::new();
                if !m.namespace.is_empty() {
                    f.push(field("namespace", text(&m.namespace)));
                }
                if !m.subsystem.is_empty() {
                    f.push(field("subsystem", text(&m.subsystem)));
                }
                f.push(field("name", text(&m.name)));
                f.push(field("help", text(&m.help)));
                let kind = match m.kind {
                    MetricType::Counter => "counter",
                    MetricType::Gauge => "gauge",
                    MetricType::Histogram => "histogram",
                    MetricType::Summary => "summary",
                };
                f.push(field("type", text(kind)));
                obj(f)
            })
            .collect();
        fields.push(field("metrics", J::Arr(metrics)));
    }
    obj(fields)
}

#[cfg(test)]
mod tests;
