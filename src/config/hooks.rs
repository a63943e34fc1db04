//! Lifecycle hooks: ContainerPilot 2's vocabulary (`preStart`, `preStop`,
//! `postStop`, `onChange`) as sugar over jobs.
//!
//! A hook is nothing but a job wired to an event, so autopilot keeps one
//! engine and the hooks expand into ordinary jobs while the config is decoded:
//!
//! | written                 | becomes the job     | which starts                                    |
//! |-------------------------|---------------------|-------------------------------------------------|
//! | `hooks.preStart` on `J` | `J.preStart`        | when `J` would have; `J` now waits for its `exitSuccess`, and a failure stops autopilot with its exit code (`exitOnFailure`) |
//! | `hooks.preStop` on `J`  | `J.preStop`         | once `J` emits `stopping`; `J` waits for it to end before its SIGTERM |
//! | `hooks.postStop` on `J` | `J.postStop`        | once `J` emits `stopped`                        |
//! | `onChange` on watch `W` | `W.onChange`        | each time `watch.W` emits `changed`             |
//!
//! The same functions expand a ContainerPilot 2 config's hooks (see `v2.rs`),
//! and [`recognize`] finds such jobs again, so the plan can label them and
//! `autopilot migrate` can write them back as hooks.

use super::decode::fields::Fields;
use super::decode::values;
use super::error::Reporter;
use super::model::{
    Backoff, Config, EventPattern, Exec, JobConfig, Repeat, Restarts, WatchConfig, When,
};
use super::source::{Span, Spanned, Value};
use crate::events::EventCode;

pub(crate) const JOB_HOOK_KEYS: &[&str] = &["preStart", "preStop", "postStop"];

/// The four hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PreStart,
    PreStop,
    PostStop,
    OnChange,
}

impl HookKind {
    /// The key the hook is written with, also the suffix of its job's name.
    pub fn key(self) -> &'static str {
        match self {
            HookKind::PreStart => "preStart",
            HookKind::PreStop => "preStop",
            HookKind::PostStop => "postStop",
            HookKind::OnChange => "onChange",
        }
    }

    /// The name of the job this hook of `owner` (a job or a watch) becomes.
    pub fn job_name(self, owner: &str) -> String {
        format!("{owner}.{}", self.key())
    }
}

/// One hook as written: its command and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub exec: Exec,
    /// 1-based line of the hook's key, which becomes the job's line.
    pub line: usize,
    pub span: Span,
    pub path: String,
}

/// The `hooks` of one job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobHooks {
    pub pre_start: Option<Hook>,
    pub pre_stop: Option<Hook>,
    pub post_stop: Option<Hook>,
}

impl JobHooks {
    pub fn is_empty(&self) -> bool {
        self.pre_start.is_none() && self.pre_stop.is_none() && self.post_stop.is_none()
    }
}

/// A job created by a hook, remembered so a clash with another job's name
/// can point at the hook that made it.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub span: Span,
    pub path: String,
}

/// Reads a hook's command (`"cmd args"` or `["cmd", "args"]`). `key_span` is
/// the span of the key, so the job's line is the line the hook is written on.
pub fn decode_command(
    v: &Spanned<Value>,
    key_span: Span,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<Hook> {
    let exec = values::exec(v, path, rep)?;
    Some(Hook {
        exec,
        line: rep.line_of(key_span.start),
        span: key_span,
        path: path.to_string(),
    })
}

/// Decodes a job's `hooks: {preStart, preStop, postStop}`.
pub fn decode_job_hooks(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> JobHooks {
    let mut hooks = JobHooks::default();
    let Some(mut f) = Fields::open(v, path, "the job's hooks", JOB_HOOK_KEYS, rep) else {
        return hooks;
    };
    for key in JOB_HOOK_KEYS {
        let Some(value) = f.get(key, rep) else {
            continue;
        };
        let key_span = f.key_span(key).unwrap_or(value.span());
        let hook = decode_command(value, key_span, &f.path_of(key), rep);
        match *key {
            "preStart" => hooks.pre_start = hook,
            "preStop" => hooks.pre_stop = hook,
            _ => hooks.post_stop = hook,
        }
    }
    f.finish(rep, &|key| {
        (key == "onChange").then(|| {
            "`onChange` belongs on a watch: `watches: [{name: \"db\", onChange: \"...\"}]`"
                .to_string()
        })
    });
    hooks
}

/// Expands `job`'s hooks into jobs, in the order they run:
/// `[J.preStart, J, J.preStop, J.postStop]` (absent hooks left out). Every
/// job made is recorded in `created`.
pub fn expand(
    mut job: JobConfig,
    hooks: &JobHooks,
    rep: &mut Reporter<'_>,
    created: &mut Vec<Created>,
) -> Vec<JobConfig> {
    let mut out = Vec::with_capacity(4);
    if let Some(hook) = &hooks.pre_start
        && let Some(pre) = pre_start(&mut job, hook, rep)
    {
        record(created, &pre, hook);
        out.push(pre);
    }
    let owner = job.name.clone();
    out.push(job);
    for (kind, hook, code) in [
        (HookKind::PreStop, &hooks.pre_stop, EventCode::Stopping),
        (HookKind::PostStop, &hooks.post_stop, EventCode::Stopped),
    ] {
        let Some(hook) = hook else { continue };
        let when = on_event(code, &owner, Repeat::Once);
        let hook_job = hook_job(kind.job_name(&owner), hook, when, false);
        record(created, &hook_job, hook);
        out.push(hook_job);
    }
    out
}

/// Moves `job`'s start trigger to its preStart hook, and starts `job` on the
/// hook's success instead. Only a job that starts once can have one: before
/// a job that runs repeatedly, "prepare first" has no single meaning.
fn pre_start(job: &mut JobConfig, hook: &Hook, rep: &mut Reporter<'_>) -> Option<JobConfig> {
    let repeats = match &job.when {
        When::Startup
        | When::Event {
            repeat: Repeat::Once,
            ..
        } => None,
        When::Interval(_) => Some("on a timer (`when.interval`)"),
        When::Event { .. } => Some("each time its event arrives (`when.each`)"),
    };
    if let Some(how) = repeats {
        rep.error(
            hook.span,
            &hook.path,
            format!(
                "a `preStart` hook needs a job that starts once, and `{}` starts {how}",
                job.name
            ),
            Some(
                "run the preparation at the start of the job's own `exec`, or make it a job \
                 of its own that this job waits for"
                    .into(),
            ),
        );
        return None;
    }
    let name = HookKind::PreStart.job_name(&job.name);
    let pre = hook_job(name.clone(), hook, job.when.clone(), true);
    job.when = on_event(EventCode::ExitSuccess, &name, Repeat::Once);
    Some(pre)
}

/// The job of a watch's `onChange` hook.
pub fn on_change(watch: &WatchConfig, hook: &Hook, created: &mut Vec<Created>) -> JobConfig {
    let when = on_event(EventCode::Changed, &watch.source(), Repeat::Each);
    let job = hook_job(HookKind::OnChange.job_name(&watch.name), hook, when, false);
    record(created, &job, hook);
    job
}

fn record(created: &mut Vec<Created>, job: &JobConfig, hook: &Hook) {
    created.push(Created {
        name: job.name.clone(),
        span: hook.span,
        path: hook.path.clone(),
    });
}

fn on_event(code: EventCode, source: &str, repeat: Repeat) -> When {
    When::Event {
        pattern: EventPattern {
            code,
            source: source.to_string(),
        },
        repeat,
        timeout: None,
    }
}

/// A hook's job: the command, run when `when` says, with every other
/// setting at its default. [`recognize`] relies on exactly this shape.
fn hook_job(name: String, hook: &Hook, when: When, exit_on_failure: bool) -> JobConfig {
    JobConfig {
        exec: Some(hook.exec.clone()),
        when,
        exit_on_failure,
        line: hook.line,
        ..JobConfig::named(name)
    }
}

/// Reports a job made by a hook whose name another job already has: events
/// would come from both under one name.
pub fn report_clashes(jobs: &[JobConfig], created: &[Created], rep: &mut Reporter<'_>) {
    for c in created {
        if jobs.iter().filter(|j| j.name == c.name).count() > 1 {
            rep.error(
                c.span,
                &c.path,
                format!(
                    "this hook becomes the job `{}`, but another job already has that name",
                    c.name
                ),
                Some("hook jobs are named `<job or watch>.<hook>`: rename the other job".into()),
            );
        }
    }
}

/// Whether `job` is exactly what a hook expands to, and if so which hook of
/// which job or watch. A job written out by hand in that shape is the same
/// thing, so it counts too.
pub fn recognize<'a>(config: &Config, job: &'a JobConfig) -> Option<(HookKind, &'a str)> {
    let (owner, key) = job.name.rsplit_once('.')?;
    let kind = [
        HookKind::PreStart,
        HookKind::PreStop,
        HookKind::PostStop,
        HookKind::OnChange,
    ]
    .into_iter()
    .find(|k| k.key() == key)?;
    let plain = job.exec.is_some()
        && job.restarts == Restarts::Never
        && job.backoff == Backoff::default()
        && job.timeout.is_none()
        && job.stop_timeout.is_none()
        && job.health.is_none()
        && job.service.is_none()
        && job.leader.is_none()
        && !job.logging_raw
        && !job.main
        && job.exit_on_failure == (kind == HookKind::PreStart);
    if !plain {
        return None;
    }
    let owner_job = || config.jobs.iter().find(|j| j.name == owner);
    let matches = match kind {
        HookKind::PreStart => {
            let starts_once = matches!(
                job.when,
                When::Startup
                    | When::Event {
                        repeat: Repeat::Once,
                        ..
                    }
            );
            starts_once
                && owner_job().is_some_and(|o| {
                    o.when == on_event(EventCode::ExitSuccess, &job.name, Repeat::Once)
                })
        }
        HookKind::PreStop => {
            owner_job().is_some() && job.when == on_event(EventCode::Stopping, owner, Repeat::Once)
        }
        HookKind::PostStop => {
            owner_job().is_some() && job.when == on_event(EventCode::Stopped, owner, Repeat::Once)
        }
        HookKind::OnChange => config.watches.iter().any(|w| {
            w.name == owner && job.when == on_event(EventCode::Changed, &w.source(), Repeat::Each)
        }),
    };
    matches.then_some((kind, owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn names(config: &Config) -> Vec<&str> {
        config.jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn job_hooks_expand_into_jobs_in_running_order() {
        let loaded = parse_str(
            r#"{jobs: [{
                name: "app", exec: "/bin/app",
                when: {source: "setup", once: "exitSuccess", timeout: "30s"},
                hooks: {preStart: "/bin/prep", preStop: ["/bin/drain", "-q"], postStop: "/bin/bye"},
              }, {name: "setup", exec: "/bin/setup"}]}"#,
            "t.json5",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = &loaded.config;
        assert_eq!(
            names(c),
            [
                "app.preStart",
                "app",
                "app.preStop",
                "app.postStop",
                "setup"
            ]
        );
        let pre = &c.jobs[0];
        assert!(pre.exit_on_failure);
        assert_eq!(
            pre.when,
            When::Event {
                pattern: EventPattern {
                    code: EventCode::ExitSuccess,
                    source: "setup".into()
                },
                repeat: Repeat::Once,
                timeout: Some(std::time::Duration::from_secs(30)),
            }
        );
        assert_eq!(
            c.jobs[1].when,
            on_event(EventCode::ExitSuccess, "app.preStart", Repeat::Once)
        );
        assert_eq!(
            c.jobs[2].when,
            on_event(EventCode::Stopping, "app", Repeat::Once)
        );
        assert_eq!(c.jobs[2].exec.as_ref().unwrap().args, ["-q"]);
        assert_eq!(
            c.jobs[3].when,
            on_event(EventCode::Stopped, "app", Repeat::Once)
        );
        assert_eq!(c.jobs[3].line, 4);
        let kinds: Vec<_> = c.jobs.iter().map(|j| recognize(c, j)).collect();
        assert_eq!(
            kinds,
            [
                Some((HookKind::PreStart, "app")),
                None,
                Some((HookKind::PreStop, "app")),
                Some((HookKind::PostStop, "app")),
                None
            ]
        );
    }

    #[test]
    fn on_change_on_a_watch_is_a_job() {
        let loaded = parse_str(
            r#"{jobs: [{name: "app", exec: "/bin/app"}],
                watches: [{name: "db", interval: 3, onChange: "/bin/reload db"}]}"#,
            "t.json5",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = &loaded.config;
        assert_eq!(names(c), ["app", "db.onChange"]);
        assert_eq!(
            c.jobs[1].when,
            on_event(EventCode::Changed, "watch.db", Repeat::Each)
        );
        assert_eq!(recognize(c, &c.jobs[1]), Some((HookKind::OnChange, "db")));
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_str(text, "t.json5") {
            Ok(_) => panic!("loaded: {text}"),
            Err(e) => e
                .errors()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect(),
        }
    }

    #[test]
    fn a_pre_start_on_a_repeating_job_is_an_error() {
        let e = errors(
            r#"{jobs: [{name: "t", exec: "x", when: {interval: "5s"}, hooks: {preStart: "p"}}]}"#,
        );
        assert_eq!(
            e,
            [
                "jobs[0].hooks.preStart: a `preStart` hook needs a job that starts once, \
              and `t` starts on a timer (`when.interval`)"
            ]
        );
    }

    #[test]
    fn hook_jobs_cannot_take_an_existing_name() {
        let e = errors(
            r#"{jobs: [{name: "a", exec: "x", hooks: {preStop: "p"}},
                       {name: "a.preStop", exec: "y"}]}"#,
        );
        assert_eq!(
            e,
            [
                "jobs[0].hooks.preStop: this hook becomes the job `a.preStop`, \
              but another job already has that name"
            ]
        );
    }

    #[test]
    fn unknown_hooks_get_a_suggestion() {
        let e = errors(r#"{jobs: [{name: "a", exec: "x", hooks: {preStrat: "p"}}]}"#);
        assert_eq!(
            e,
            ["jobs[0].hooks.preStrat: unknown key `preStrat` in `jobs[0].hooks`"]
        );
        let e = errors(r#"{jobs: [{name: "a", exec: "x", hooks: {preStart: ""}}]}"#);
        assert_eq!(e, ["jobs[0].hooks.preStart: the command is empty"]);
    }
}
