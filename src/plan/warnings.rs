//! The findings: waits that can never end (an unknown source, an event its
//! source never emits, jobs waiting for each other), settings without effect,
//! and watches nobody listens to.

use std::collections::BTreeSet;

use super::{Level, PlanWarning};
use crate::config::duration::format as dur;
use crate::config::model::{Config, JobConfig, Restarts, WatchConfig, When};
use crate::config::suggest;
use crate::events::publishers::{Needs, Publisher, signal_sources};
use crate::events::{EventCode, GLOBAL};

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

pub(super) fn check(config: &Config) -> Vec<PlanWarning> {
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
