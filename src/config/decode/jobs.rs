//! The `jobs` section: one process plus the rules around it, per entry.

use super::fields::{Fields, required_name};
use super::values;
use super::when::MIN_TASK_DURATION;
use super::{health, restarts, service, when};
use crate::config::duration;
use crate::config::error::Reporter;
use crate::config::hooks::{self, Created, JobHooks};
use crate::config::model::{Backoff, JobConfig, LeaderConfig, When};
use crate::config::source::{Span, Spanned, Value};
use std::time::Duration;

pub(crate) const JOB_KEYS: &[&str] = &[
    "name",
    "exec",
    "logging",
    "when",
    "timeout",
    "stopTimeout",
    "restarts",
    "health",
    "port",
    "tags",
    "interfaces",
    "consul",
    "initial_status",
    "meta",
    "main",
    "backoff",
    "hooks",
    "exitOnFailure",
    "leader",
];
pub(crate) const LEADER_KEYS: &[&str] = &["key", "ttl", "lockDelay"];

/// Leadership defaults: Consul's own session defaults (docs/coordination.md).
pub(crate) const DEFAULT_LEADER_TTL: Duration = Duration::from_secs(15);
pub(crate) const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
/// Consul refuses session TTLs outside 10s..=24h and caps lock-delay at 60s.
const MIN_LEADER_TTL: Duration = Duration::from_secs(10);
const MAX_LEADER_TTL: Duration = Duration::from_secs(86_400);
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);

/// The name ContainerPilot gave its own telemetry job, which is registered
/// without a health check.
const TELEMETRY_JOB: &str = "containerpilot";

/// Where a job's cross-checked keys are, for errors that involve two jobs.
struct Site {
    path: String,
    name_span: Span,
    main_span: Option<Span>,
    /// Expanded into jobs once every job is decoded (`config::hooks`).
    hooks: JobHooks,
}

/// Decodes the `jobs` array, with each job's hooks expanded into jobs of
/// their own (recorded in `created`).
pub fn decode_all(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    created: &mut Vec<Created>,
) -> Vec<JobConfig> {
    let Value::Array(items) = &v.value else {
        rep.error(
            v.span(),
            path,
            format!("expected an array of jobs, found {}", v.value.kind()),
            Some("write `jobs: [{name: \"app\", exec: \"/bin/app\"}]`".into()),
        );
        return Vec::new();
    };
    let mut jobs: Vec<(JobConfig, Site)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some((job, site)) = decode_one(item, &format!("{path}[{i}]"), rep) else {
            continue;
        };
        // ContainerPilot did not check names: published configs (the
        // autopilotpattern nginx blueprint among them) define a job twice,
        // and both then ran and registered under one Consul ID, overwriting
        // each other. Keep the last definition, as with duplicate keys, and
        // say so.
        if let Some(index) = jobs.iter().position(|(j, _)| j.name == job.name) {
            let (earlier, earlier_site) = jobs.remove(index);
            rep.warning(
                earlier_site.name_span,
                &format!("{}.name", earlier_site.path),
                format!(
                    "job `{}` is defined again on line {}; this definition is ignored",
                    job.name, job.line
                ),
                Some(format!(
                    "job names must be unique: rename or remove one of them (line {} and line {})",
                    earlier.line, job.line
                )),
            );
        }
        jobs.push((job, site));
    }
    let mut main: Option<&JobConfig> = None;
    for (job, site) in &jobs {
        let Some(span) = site.main_span else { continue };
        match main {
            Some(first) => rep.error(
                span,
                &format!("{}.main", site.path),
                format!("`{}` is already the main job", first.name),
                Some(
                    "at most one job sets `main: true`: the container's exit code follows it"
                        .into(),
                ),
            ),
            None => main = Some(job),
        }
    }
    jobs.into_iter()
        .flat_map(|(job, site)| hooks::expand(job, &site.hooks, rep, created))
        .collect()
}

fn decode_one(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<(JobConfig, Site)> {
    let mut f = Fields::open(v, path, "a job", JOB_KEYS, rep)?;
    let line = rep.line_of(v.start);

    let (name_value, name) = required_name(
        &mut f,
        rep,
        "give the job a name, e.g. `name: \"app\"`",
        "every job needs a unique name: add `name: \"app\"`",
    );
    let exec = f
        .get("exec", rep)
        .and_then(|e| values::exec(e, &f.path_of("exec"), rep));
    let logging_raw = f
        .get("logging", rep)
        .is_some_and(|l| health::logging_raw(l, &f.path_of("logging"), rep));
    let when = match f.get("when", rep) {
        Some(w) => when::decode(w, &f.path_of("when"), rep),
        None => Some(When::Startup),
    };
    let timeout = match f.get("timeout", rep).filter(|t| !values::is_blank(t)) {
        Some(t) => values::duration_at_least(
            t,
            &f.path_of("timeout"),
            rep,
            "timeout: \"30s\"",
            MIN_TASK_DURATION,
        ),
        None => None,
    };
    // ContainerPilot: a periodic job may run at most one interval.
    let timeout = match (&when, timeout) {
        (Some(When::Interval(every)), None) => Some(*every),
        (_, t) => t,
    };
    let stop_timeout = f
        .get("stopTimeout", rep)
        .filter(|t| !values::is_blank(t))
        .and_then(|t| values::duration(t, &f.path_of("stopTimeout"), rep, "stopTimeout: \"10s\""));
    let restarts = restarts::decode(
        f.get("restarts", rep),
        &f.path_of("restarts"),
        when.as_ref().unwrap_or(&When::Startup),
        rep,
    );
    let health_value = f.get("health", rep);
    let health = health_value.and_then(|h| health::decode(h, &f.path_of("health"), rep));
    let service = service::decode(&mut f, rep);
    let main_value = f.get("main", rep);
    let main =
        main_value.is_some_and(|m| values::bool(m, &f.path_of("main"), rep).unwrap_or(false));
    let backoff = match f.get("backoff", rep) {
        Some(b) => restarts::backoff(b, &f.path_of("backoff"), rep),
        None => Backoff::default(),
    };
    let exit_on_failure = f
        .get("exitOnFailure", rep)
        .is_some_and(|v| values::bool(v, &f.path_of("exitOnFailure"), rep).unwrap_or(false));
    let hooks = match f.get("hooks", rep) {
        Some(h) => hooks::decode_job_hooks(h, &f.path_of("hooks"), rep),
        None => JobHooks::default(),
    };
    let leader_value = f.get("leader", rep);
    let leader = match (leader_value, &name) {
        (Some(l), Some(name)) => decode_leader(l, &f.path_of("leader"), name, rep),
        _ => None,
    };
    if let (Some(l), None) = (leader_value, &service) {
        rep.error(
            f.key_span("leader").unwrap_or(l.span()),
            &f.path_of("leader"),
            "`leader` needs `port`: leadership is tied to the job's Consul health check",
            Some(
                "add `port` and `health` so the job is registered, or remove `leader`; \
                 a failing health check then gives leadership up at once"
                    .into(),
            ),
        );
    }

    if let (Some(service), Some(name), Some(name_value)) = (&service, &name, name_value) {
        if !is_service_name(name) {
            rep.error(
                name_value.span(),
                &f.path_of("name"),
                format!("`{name}` cannot be a Consul service name"),
                Some(format!(
                    "a job with `port` is registered under its name, which must start with a \
                     lower-case letter and contain only letters, digits and `-`: for example `{}`",
                    service_name_like(name)
                )),
            );
        }
        if health_value.is_none() && name != TELEMETRY_JOB {
            let port_span = f.key_span("port").unwrap_or(f.span());
            rep.error(
                port_span,
                &f.path_of("port"),
                format!(
                    "job `{name}` has `port` {} but no `health` check",
                    service.port
                ),
                Some(
                    "a registered job needs a health check to keep its Consul TTL alive: \
                     add `health: {exec: \"...\", interval: 5, ttl: 10}`, or remove `port`"
                        .into(),
                ),
            );
        }
    }
    f.finish(rep, &job_key_hint);

    let site = Site {
        path: path.to_string(),
        name_span: name_value.map_or(v.span(), Spanned::span),
        main_span: main.then(|| main_value.map(Spanned::span)).flatten(),
        hooks,
    };
    let job = JobConfig {
        name: name?,
        exec,
        when: when?,
        restarts,
        backoff,
        timeout,
        stop_timeout,
        health,
        service,
        leader,
        logging_raw,
        main,
        exit_on_failure,
        line,
    };
    Some((job, site))
}

/// A job's `leader`: `{key, ttl, lockDelay}`, or the key alone as a string.
/// The key defaults to `service/<job>/leader` (Consul's leader-election
/// convention); `ttl` and `lockDelay` to Consul's own session defaults.
fn decode_leader(
    v: &Spanned<Value>,
    path: &str,
    job: &str,
    rep: &mut Reporter<'_>,
) -> Option<LeaderConfig> {
    let example =
        format!("leader: {{key: \"service/{job}/leader\", ttl: \"15s\", lockDelay: \"5s\"}}");
    let mut config = LeaderConfig {
        key: format!("service/{job}/leader"),
        ttl: DEFAULT_LEADER_TTL,
        lock_delay: DEFAULT_LOCK_DELAY,
    };
    if let Value::String(_) = v.value {
        config.key = leader_key(v, path, rep, &example)?;
        return Some(config);
    }
    if !matches!(v.value, Value::Object(_)) {
        rep.error(
            v.span(),
            path,
            format!("expected an object, found {}", v.value.kind()),
            Some(format!(
                "write `{example}`, or the key alone: `leader: \"service/{job}/leader\"`"
            )),
        );
        return None;
    }
    let mut f = Fields::open(v, path, "leadership settings", LEADER_KEYS, rep)?;
    let mut ok = true;
    if let Some(k) = f.get("key", rep) {
        match leader_key(k, &f.path_of("key"), rep, &example) {
            Some(key) => config.key = key,
            None => ok = false,
        }
    }
    if let Some(t) = f.get("ttl", rep).filter(|t| !values::is_blank(t)) {
        match values::duration(t, &f.path_of("ttl"), rep, "ttl: \"15s\"") {
            Some(d) if (MIN_LEADER_TTL..=MAX_LEADER_TTL).contains(&d) => config.ttl = d,
            Some(d) => {
                rep.error(
                    t.span(),
                    &f.path_of("ttl"),
                    format!(
                        "a leader's session ttl must be between 10s and 24h, not {}",
                        duration::format(d)
                    ),
                    Some(
                        "Consul refuses other session TTLs; `ttl: \"15s\"` renews every 7.5s \
                         and hands leadership over within about 15s when autopilot dies"
                            .into(),
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(t) = f.get("lockDelay", rep).filter(|t| !values::is_blank(t)) {
        match values::duration(t, &f.path_of("lockDelay"), rep, "lockDelay: \"5s\"") {
            Some(d) if d <= MAX_LOCK_DELAY => config.lock_delay = d,
            Some(d) => {
                rep.error(
                    t.span(),
                    &f.path_of("lockDelay"),
                    format!(
                        "`lockDelay` must be at most 60s, not {}",
                        duration::format(d)
                    ),
                    Some(
                        "Consul caps the lock-delay at 60s; it is the time a deposed leader has \
                         to stop acting before another can be elected"
                            .into(),
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    f.finish(rep, &|key| match key {
        "lock_delay" | "lockdelay" | "delay" => Some("write `lockDelay`".to_string()),
        "session" | "sessionTTL" => Some("the session's TTL is `ttl`".to_string()),
        _ => None,
    });
    ok.then_some(config)
}

/// A leadership key: not empty, no leading `/` (Consul keys have none; we
/// drop it as the Consul CLI does), no trailing `/` (that names a folder).
fn leader_key(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    example: &str,
) -> Option<String> {
    let hint = format!("name a Consul KV key, e.g. `{example}`");
    let raw = values::non_empty_string(v, path, rep, &hint)?;
    let key = raw.trim().trim_start_matches('/');
    if key.is_empty() || key.ends_with('/') || key != raw.trim_start_matches('/') {
        rep.error(
            v.span(),
            path,
            format!("{raw:?} is not a usable KV key"),
            Some(format!(
                "a key has no surrounding spaces and does not end with `/` (a folder): {hint}"
            )),
        );
        return None;
    }
    Some(key.to_string())
}

/// Consul's rule for service names, as ContainerPilot enforced it.
pub(crate) fn is_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A valid service name close to `name`, for the hint.
pub(crate) fn service_name_like(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    match cleaned.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => {
            let mut out = c.to_ascii_lowercase().to_string();
            out.push_str(&cleaned[1..]);
            out
        }
        _ => format!("app-{cleaned}").trim_end_matches('-').to_string(),
    }
}

/// Explains keys that belong elsewhere, mostly ContainerPilot 2 habits.
fn job_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "poll" => "ContainerPilot 2's `poll` is `health.interval` in ContainerPilot 3",
        "ttl" => "`ttl` belongs in `health`: `health: {exec: \"...\", interval: 5, ttl: 10}`",
        "interval" => "`interval` belongs in `when` (`when: {interval: \"10s\"}`) or in `health`",
        "frequency" => {
            "ContainerPilot 2's `frequency` is `when: {interval: \"...\"}` in ContainerPilot 3"
        }
        "onChange" => {
            "`onChange` belongs on the watch (`watches: [{name: \"db\", onChange: \"...\"}]`), \
             or write a job with `when: {source: \"watch.NAME\", each: \"changed\"}`"
        }
        "preStart" | "preStop" | "postStop" => {
            "lifecycle hooks go under `hooks`: `hooks: {preStart: \"...\", preStop: \"...\", postStop: \"...\"}`"
        }
        "command" | "cmd" => "the command of a job is `exec`",
        _ => return None,
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert!(is_service_name("app"));
        assert!(is_service_name("my-App2"));
        assert!(!is_service_name("App"));
        assert!(!is_service_name("my_app"));
        assert!(!is_service_name(""));
        assert_eq!(service_name_like("My_App"), "my-App");
        assert_eq!(service_name_like("_9x"), "app-9x");
    }

    fn leader_of(job: &str) -> Result<Option<LeaderConfig>, String> {
        let text = format!("{{consul: 'c:8500', jobs: [{job}]}}");
        crate::config::parse_str(&text, "t")
            .map(|l| l.config.jobs[0].leader.clone())
            .map_err(|e| e.to_string())
    }

    const ADVERTISED: &str =
        "name: 'db', exec: 'x', port: 3306, health: {exec: 'c', interval: 1, ttl: 5}";

    #[test]
    fn leader_forms_and_defaults() {
        let full = leader_of(&format!(
            "{{{ADVERTISED}, leader: {{key: '/app/primary', ttl: 20, lockDelay: '1500ms'}}}}"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(full.key, "app/primary");
        assert_eq!(full.ttl, Duration::from_secs(20));
        assert_eq!(full.lock_delay, Duration::from_millis(1500));

        let short = leader_of(&format!("{{{ADVERTISED}, leader: 'k'}}"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (short.key.as_str(), short.ttl, short.lock_delay),
            ("k", DEFAULT_LEADER_TTL, DEFAULT_LOCK_DELAY)
        );
        let empty = leader_of(&format!("{{{ADVERTISED}, leader: {{}}}}"))
            .unwrap()
            .unwrap();
        assert_eq!(empty.key, "service/db/leader");
        assert_eq!(
            leader_of(&format!("{{{ADVERTISED}, leader: {{lockDelay: 0}}}}"))
                .unwrap()
                .unwrap()
                .lock_delay,
            Duration::ZERO
        );
        assert_eq!(leader_of(&format!("{{{ADVERTISED}}}")).unwrap(), None);
    }

    #[test]
    fn leader_errors_say_what_to_write() {
        let err =
            |leader: &str| leader_of(&format!("{{{ADVERTISED}, leader: {leader}}}")).unwrap_err();
        let e = err("{ttl: 5}");
        assert!(e.contains("jobs[0].leader.ttl"), "{e}");
        assert!(e.contains("between 10s and 24h, not 5s"), "{e}");
        assert!(err("{lockDelay: '2m'}").contains("at most 60s"));
        assert!(err("{key: ''}").contains("must not be empty"));
        assert!(err("{key: 'a/'}").contains("not a usable KV key"));
        assert!(err("{key: ' a'}").contains("not a usable KV key"));
        assert!(err("true").contains("expected an object"));
        let e = err("{key: 'k', lock_delay: 1}");
        assert!(
            e.contains("unknown key `lock_delay`") && e.contains("lockDelay"),
            "{e}"
        );

        let e = leader_of("{name: 'db', exec: 'x', leader: 'k'}").unwrap_err();
        assert!(e.contains("`leader` needs `port`"), "{e}");
    }
}
