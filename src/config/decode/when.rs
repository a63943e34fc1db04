//! A job's `when` block: what starts it.
//!
//! ContainerPilot's rules: `interval` stands alone; otherwise exactly one of
//! `once` / `each` names the event, and `source` names its publisher. We add
//! one convenience: the signal events (`SIGHUP`, `SIGUSR2`) are published under
//! their own name, so their `source` may be left out.

use std::time::Duration;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::{EventPattern, Repeat, When};
use crate::config::source::{Spanned, Value};
use crate::config::suggest;
use crate::events::{EventCode, GLOBAL};

pub(crate) const WHEN_KEYS: &[&str] = &["source", "once", "each", "interval", "timeout"];

/// The shortest interval or timeout ContainerPilot allowed.
pub const MIN_TASK_DURATION: Duration = Duration::from_millis(1);

/// A string key of the `when` block, treating blank (an unset template
/// variable) as absent, as ContainerPilot did.
fn text_key<'a>(
    f: &mut Fields<'a>,
    key: &str,
    rep: &mut Reporter<'_>,
) -> Option<(String, &'a Spanned<Value>)> {
    let v = f.get(key, rep)?;
    if values::is_blank(v) {
        return None;
    }
    let s = values::string(v, &f.path_of(key), rep)?;
    Some((s, v))
}

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<When> {
    let mut f = Fields::open(v, path, "`when`", WHEN_KEYS, rep)?;
    let source = text_key(&mut f, "source", rep);
    let once = text_key(&mut f, "once", rep);
    let each = text_key(&mut f, "each", rep);
    let interval = f.get("interval", rep).filter(|v| !values::is_blank(v));
    let timeout = f.get("timeout", rep).filter(|v| !values::is_blank(v));
    let when = decode_fields(&f, source, once, each, interval, timeout, rep);
    f.finish(rep, &no_special);
    when
}

fn decode_fields(
    f: &Fields<'_>,
    source: Option<(String, &Spanned<Value>)>,
    once: Option<(String, &Spanned<Value>)>,
    each: Option<(String, &Spanned<Value>)>,
    interval: Option<&Spanned<Value>>,
    timeout: Option<&Spanned<Value>>,
    rep: &mut Reporter<'_>,
) -> Option<When> {
    if let Some(interval) = interval {
        let mut ok = true;
        for (key, present) in [("source", &source), ("once", &once), ("each", &each)] {
            if let Some((_, value)) = present {
                rep.error(
                    value.span(),
                    &f.path_of(key),
                    format!("`{key}` cannot be combined with `interval`"),
                    Some(
                        "`interval` runs the job on a timer from startup; remove `interval`, \
                         or remove `source`, `once` and `each`"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
        if let Some(t) = timeout {
            rep.warning(
                t.span(),
                &f.path_of("timeout"),
                "`when.timeout` is ignored for `interval` jobs",
                Some("to limit each run, set the job's own `timeout`".into()),
            );
        }
        let every = values::duration_at_least(
            interval,
            &f.path_of("interval"),
            rep,
            "interval: \"10s\"",
            MIN_TASK_DURATION,
        )?;
        return ok.then_some(When::Interval(every));
    }

    let (repeat, (code_text, code_value)) = match (once, each) {
        (Some(_), Some((_, each_value))) => {
            rep.error(
                each_value.span(),
                &f.path_of("each"),
                "`once` and `each` cannot both be set",
                Some(
                    "`once` starts the job the first time the event arrives, `each` starts \
                     it every time: keep one"
                        .into(),
                ),
            );
            return None;
        }
        (Some(once), None) => (Repeat::Once, once),
        (None, Some(each)) => (Repeat::Each, each),
        (None, None) => {
            match &source {
                Some((_, source_value)) => rep.error(
                    source_value.span(),
                    &f.path_of("source"),
                    "`source` needs `once` or `each` to name the event to wait for",
                    Some("for example `once: \"exitSuccess\"` or `each: \"changed\"`".into()),
                ),
                None => rep.error(
                    f.span(),
                    f.path(),
                    "`when` needs `once`, `each` or `interval`",
                    Some("remove `when` to start the job at startup".into()),
                ),
            }
            return None;
        }
    };
    let key = match repeat {
        Repeat::Once => "once",
        Repeat::Each => "each",
    };
    let code = event_code(&code_text, code_value, &f.path_of(key), rep)?;

    let source = match source {
        Some((name, _)) => name,
        None if code.signal_source().is_some() => code.as_str().to_string(),
        None if code.is_global() => {
            // Published configs write `once: "startup"` alone and mean the
            // global event; ContainerPilot matched the empty source against
            // nothing, so such a job silently never ran. Run it, and say so.
            rep.warning(
                code_value.span(),
                &f.path_of(key),
                format!("no `source`: waiting for `{code}` from `{GLOBAL}`"),
                Some(format!(
                    "write `source: \"{GLOBAL}\"` to make this explicit (ContainerPilot never \
                     started a job whose `{code}` had no source)"
                )),
            );
            GLOBAL.to_string()
        }
        None => {
            rep.error(
                code_value.span(),
                &f.path_of(key),
                format!("`{key}: \"{code}\"` needs a `source`"),
                Some(format!(
                    "add `source:` with the name of the job (or `watch.NAME` for a watch) \
                     whose `{code}` event starts this job"
                )),
            );
            return None;
        }
    };

    let timeout = match timeout {
        Some(t) => {
            let d = values::duration(t, &f.path_of("timeout"), rep, "timeout: \"60s\"")?;
            // ContainerPilot: a zero timeout means "wait forever".
            (!d.is_zero()).then_some(d)
        }
        None => None,
    };
    Some(When::Event {
        pattern: EventPattern { code, source },
        repeat,
        timeout,
    })
}

/// Parses an event code as written in `once` / `each`, suggesting the closest
/// known code on a typo.
fn event_code(
    text: &str,
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<EventCode> {
    if let Some(code) = EventCode::parse(text) {
        return Some(code);
    }
    let names = EventCode::ALL.map(EventCode::as_str);
    let hint = match suggest::closest(text, names) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("known events: {}", names.join(", ")),
    };
    rep.error(
        v.span(),
        path,
        format!("unknown event `{text}`"),
        Some(hint),
    );
    None
}
