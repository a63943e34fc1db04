//! A job's restart policy: `restarts` (ContainerPilot) and `backoff` (ours).

use std::time::Duration;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::{Backoff, Repeat, Restarts, When};
use crate::config::source::{Spanned, Value};
use crate::config::suggest;

const RESTARTS_HINT: &str = "write a whole number such as `3`, `\"unlimited\"` or `\"never\"`";
pub(crate) const BACKOFF_KEYS: &[&str] = &["initial", "max", "reset"];

/// `restarts`, defaulting as ContainerPilot: unlimited for `interval` jobs
/// (each tick is a restart), never otherwise.
pub fn decode(
    v: Option<&Spanned<Value>>,
    path: &str,
    when: &When,
    rep: &mut Reporter<'_>,
) -> Restarts {
    let default = match when {
        When::Interval(_) => Restarts::Unlimited,
        _ => Restarts::Never,
    };
    let Some(v) = v else {
        return default;
    };
    let restarts = match &v.value {
        Value::Number(n) => match n.as_i64().map(u32::try_from) {
            Some(Ok(count)) => Some(Restarts::Limit(count)),
            _ => {
                rep.error(
                    v.span(),
                    path,
                    format!("`{}` is not a valid number of restarts", n.raw),
                    Some(RESTARTS_HINT.into()),
                );
                None
            }
        },
        Value::String(s) => match s.as_str() {
            "unlimited" => Some(Restarts::Unlimited),
            "never" => Some(Restarts::Never),
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                match digits.parse::<u32>() {
                    Ok(count) => Some(Restarts::Limit(count)),
                    Err(_) => {
                        rep.error(
                            v.span(),
                            path,
                            format!("{digits} restarts is too many"),
                            Some(RESTARTS_HINT.into()),
                        );
                        None
                    }
                }
            }
            other => {
                let hint = match other {
                    "always" | "forever" | "-1" => {
                        "to restart without limit, write `\"unlimited\"`".to_string()
                    }
                    _ => match suggest::closest(other, ["unlimited", "never"]) {
                        Some(close) => format!("did you mean `\"{close}\"`?"),
                        None => RESTARTS_HINT.to_string(),
                    },
                };
                rep.error(
                    v.span(),
                    path,
                    format!("invalid restarts value {other:?}"),
                    Some(hint),
                );
                None
            }
        },
        other => {
            rep.error(
                v.span(),
                path,
                format!("expected a number of restarts, found {}", other.kind()),
                Some(RESTARTS_HINT.into()),
            );
            None
        }
    };
    let Some(restarts) = restarts else {
        return default;
    };
    if restarts == Restarts::Unlimited
        && let When::Event {
            repeat: Repeat::Each,
            ..
        } = when
    {
        rep.error(
            v.span(),
            path,
            "`restarts: \"unlimited\"` cannot be combined with `when.each`",
            Some(
                "every event would start another copy that restarts forever; use a number \
                 of restarts, or `when.once`"
                    .into(),
            ),
        );
    }
    restarts
}

/// `backoff: {initial, max, reset}`: the delay between restarts of a crashing
/// job, so it cannot hot-loop (ContainerPilot restarted immediately).
pub fn backoff(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Backoff {
    let defaults = Backoff::default();
    let Some(mut f) = Fields::open(v, path, "a backoff policy", BACKOFF_KEYS, rep) else {
        return defaults;
    };
    let mut read = |f: &mut Fields<'_>, key: &str, example: &str, default: Duration| match f
        .get(key, rep)
        .filter(|v| !values::is_blank(v))
    {
        Some(v) => (
            values::duration(v, &f.path_of(key), rep, example).unwrap_or(default),
            Some(v.span()),
        ),
        None => (default, None),
    };
    let (initial, initial_span) = read(&mut f, "initial", "initial: \"100ms\"", defaults.initial);
    let (max, _) = read(&mut f, "max", "max: \"30s\"", defaults.max);
    let (reset_after, _) = read(&mut f, "reset", "reset: \"1m\"", defaults.reset_after);
    if initial > max {
        rep.error(
            initial_span.unwrap_or(f.span()),
            &f.path_of("initial"),
            format!(
                "`initial` ({}) is longer than `max` ({})",
                crate::config::duration::format(initial),
                crate::config::duration::format(max)
            ),
            Some("the delay starts at `initial` and doubles up to `max`".into()),
        );
    }
    f.finish(rep, &no_special);
    Backoff {
        initial,
        max,
        reset_after,
    }
}
