//! The `jobs` section: one process plus the rules around it, per entry.

use super::fields::Fields;
use super::values;
use super::when::MIN_TASK_DURATION;
use super::{health, restarts, service, when};
use crate::config::error::Reporter;
use crate::config::hooks::{self, Created, JobHooks};
use crate::config::model::{Backoff, JobConfig, When};
use crate::config::source::{Span, Spanned, Value, line_col};

const JOB_KEYS: &[&str] = &[
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
];

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
    let line = line_col(rep.text(), v.start).0;

    let name_value = f.get("name", rep);
    let name = match name_value {
        Some(n) => values::non_empty_string(
            n,
            &f.path_of("name"),
            rep,
            "give the job a name, e.g. `name: \"app\"`",
        ),
        None => {
            rep.error(
                f.span(),
                path,
                "missing `name`",
                Some("every job needs a unique name: add `name: \"app\"`".into()),
            );
            None
        }
    };
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
        leader: None,
        logging_raw,
        main,
        exit_on_failure,
        line,
    };
    Some((job, site))
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
}
