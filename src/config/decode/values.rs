//! Scalar conversions shared by every section.
//!
//! ContainerPilot decoded with mapstructure's "weakly typed input": a numeric
//! string works where a number is expected (`port: "8080"`, which templates
//! produce), and a number works where a string is expected. Configs in the
//! wild rely on this, so we accept the same conversions, and nothing looser.
//! Each function reports its own error and returns `None` on failure.

use std::time::Duration;

use crate::config::duration;
use crate::config::error::Reporter;
use crate::config::model::Exec;
use crate::config::source::{Number, Spanned, Value};

/// A number written back as text (`5`, `2.5`), for string fields.
fn number_text(n: &Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => n.value.to_string(),
    }
}

/// Whether a value means "not set": `null` or an empty string, which is what
/// a template renders for an unset variable.
pub fn is_blank(v: &Spanned<Value>) -> bool {
    match &v.value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

pub fn string(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<String> {
    match &v.value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        other => {
            rep.error(
                v.span(),
                path,
                format!("expected a string, found {}", other.kind()),
                Some("write the value in quotes: \"...\"".into()),
            );
            None
        }
    }
}

/// A string that must not be empty (names, addresses).
pub fn non_empty_string(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    hint: &str,
) -> Option<String> {
    let s = string(v, path, rep)?;
    if s.trim().is_empty() {
        rep.error(v.span(), path, "must not be empty", Some(hint.to_string()));
        return None;
    }
    Some(s)
}

/// A job or watch name: not empty, and usable in the environment variable
/// names autopilot derives from it (`CONTAINERPILOT_<NAME>_PID` is set in
/// every process's environment, so a name with `=` would break them all).
pub fn env_safe_name(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    hint: &str,
) -> Option<String> {
    let name = non_empty_string(v, path, rep, hint)?;
    // NUL is reported for every string, by `source::reject_nul`.
    let unfit = |c: char| c == '=' || (c.is_control() && c != '\0');
    let Some(bad) = name.chars().find(|&c| unfit(c)) else {
        return Some(name);
    };
    let shown = if bad == '=' {
        "`=`".to_string()
    } else {
        format!("the control character {:?}", bad)
    };
    let cleaned: String = name
        .chars()
        .map(|c| if unfit(c) { '-' } else { c })
        .collect();
    rep.error(
        v.span(),
        path,
        format!("the name {name:?} contains {shown}"),
        Some(format!(
            "autopilot passes the name to processes in environment variable names \
             (`CONTAINERPILOT_<NAME>_PID`), which cannot contain it: write {cleaned:?}"
        )),
    );
    None
}

pub fn bool(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<bool> {
    let parsed = match &v.value {
        Value::Bool(b) => Some(*b),
        // Go's strconv.ParseBool spellings, plus "" (an unset template variable).
        Value::String(s) => match s.trim() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            _ => None,
        },
        Value::Number(n) if n.value == 0.0 => Some(false),
        Value::Number(n) if n.value == 1.0 => Some(true),
        _ => None,
    };
    if parsed.is_none() {
        let found = match &v.value {
            Value::String(s) => format!("{s:?}"),
            other => other.kind().to_string(),
        };
        rep.error(
            v.span(),
            path,
            format!("expected `true` or `false`, found {found}"),
            None,
        );
    }
    parsed
}

/// A whole number, from a number or a numeric string.
pub fn integer(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<i64> {
    let parsed = match &v.value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        let found = match &v.value {
            Value::String(s) => format!("{s:?}"),
            Value::Number(n) => n.raw.clone(),
            other => other.kind().to_string(),
        };
        rep.error(
            v.span(),
            path,
            format!("expected a whole number, found {found}"),
            None,
        );
    }
    parsed
}

/// A TCP port, 1 to 65535.
pub fn port(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<u16> {
    let n = integer(v, path, rep)?;
    match u16::try_from(n) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            rep.error(
                v.span(),
                path,
                format!("port {n} is out of range"),
                Some("a port is a number from 1 to 65535".into()),
            );
            None
        }
    }
}

/// A string or an array of strings (`tags`, `interfaces`).
pub fn string_list(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Vec<String>> {
    match &v.value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match &item.value {
                    Value::String(s) => out.push(s.clone()),
                    Value::Number(n) => out.push(number_text(n)),
                    other => {
                        rep.error(
                            item.span(),
                            &format!("{path}[{i}]"),
                            format!("expected a string, found {}", other.kind()),
                            None,
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        other => {
            rep.error(
                v.span(),
                path,
                format!(
                    "expected a string or an array of strings, found {}",
                    other.kind()
                ),
                Some("write `\"one\"` or `[\"one\", \"two\"]`".into()),
            );
            None
        }
    }
}

/// A command: a string split on whitespace, or an array taken as is.
pub fn exec(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<Exec> {
    let words = match &v.value {
        Value::String(s) => {
            crate::config::quirks::exec_string(s, v.span(), path, rep);
            s.split_whitespace().map(str::to_string).collect::<Vec<_>>()
        }
        Value::Array(_) => string_list(v, path, rep)?,
        other => {
            rep.error(
                v.span(),
                path,
                format!(
                    "expected a command (a string or an array of strings), found {}",
                    other.kind()
                ),
                Some("write `\"/bin/app --flag\"` or `[\"/bin/app\", \"--flag\"]`".into()),
            );
            return None;
        }
    };
    let mut words = words.into_iter();
    match words.next() {
        Some(program) if !program.trim().is_empty() => Some(Exec {
            program,
            args: words.collect(),
        }),
        _ => {
            rep.error(
                v.span(),
                path,
                "the command is empty",
                Some(
                    "name the program to run; if it comes from a template, \
                     the environment variable is probably unset"
                        .into(),
                ),
            );
            None
        }
    }
}

/// A duration: a number of seconds (`5`, `0.5`), a numeric string (`"10"`,
/// seconds, as ContainerPilot's `GetTimeout`) or a Go duration (`"1m30s"`).
/// `example` is a correct spelling for the hint, such as `timeout: "30s"`.
pub fn duration(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    example: &str,
) -> Option<Duration> {
    let result = match &v.value {
        Value::Number(n) => duration::from_seconds(n.value),
        Value::String(s) => duration::parse_timeout(s),
        other => {
            rep.error(
                v.span(),
                path,
                format!("expected a duration, found {}", other.kind()),
                Some(format!("write `{example}`")),
            );
            return None;
        }
    };
    match result {
        Ok(d) => Some(d),
        Err(e) => {
            let hint = e.hint.map_or_else(
                || format!("write `{example}`"),
                |h| format!("{h}; for example `{example}`"),
            );
            rep.error(v.span(), path, e.message, Some(hint));
            None
        }
    }
}

/// A duration that must be at least `min`.
pub fn duration_at_least(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    example: &str,
    min: Duration,
) -> Option<Duration> {
    let d = duration(v, path, rep, example)?;
    if d < min {
        let message = if min == Duration::from_nanos(1) {
            "must be greater than 0".to_string()
        } else {
            format!("must be at least {}", duration::format(min))
        };
        rep.error(v.span(), path, message, Some(format!("write `{example}`")));
        return None;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::parse;

    fn with_value<T>(
        text: &str,
        f: impl FnOnce(&Spanned<Value>, &mut Reporter<'_>) -> T,
    ) -> (T, Vec<String>) {
        let root = parse(text, "t").unwrap();
        let v = root.value.get("v").unwrap().clone();
        let mut rep = Reporter::new(text, "t");
        let out = f(&v, &mut rep);
        let messages = rep
            .into_diagnostics()
            .into_iter()
            .map(|d| d.message)
            .collect();
        (out, messages)
    }

    #[test]
    fn weak_typing_as_containerpilot() {
        assert_eq!(
            with_value("{v: '8080'}", |v, r| port(v, "p", r)).0,
            Some(8080)
        );
        assert_eq!(
            with_value("{v: 8080}", |v, r| port(v, "p", r)).0,
            Some(8080)
        );
        assert_eq!(
            with_value("{v: 5}", |v, r| string(v, "p", r)).0,
            Some("5".into())
        );
        assert_eq!(
            with_value("{v: 'true'}", |v, r| bool(v, "p", r)).0,
            Some(true)
        );
        assert_eq!(with_value("{v: ''}", |v, r| bool(v, "p", r)).0, Some(false));
        assert_eq!(
            with_value("{v: 'eth0'}", |v, r| string_list(v, "p", r)).0,
            Some(vec!["eth0".into()])
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let (out, msgs) = with_value("{v: {a: 1}}", |v, r| string_list(v, "p", r));
        assert_eq!(out, None);
        assert_eq!(
            msgs,
            ["expected a string or an array of strings, found an object"]
        );
        let (_, msgs) = with_value("{v: 70000}", |v, r| port(v, "p", r));
        assert_eq!(msgs, ["port 70000 is out of range"]);
        let (_, msgs) = with_value("{v: 'yes'}", |v, r| bool(v, "p", r));
        assert_eq!(msgs, ["expected `true` or `false`, found \"yes\""]);
    }

    #[test]
    fn exec_splits_strings_and_rejects_empty_commands() {
        let (e, _) = with_value("{v: ' /bin/app  -x  y '}", |v, r| exec(v, "p", r));
        let e = e.unwrap();
        assert_eq!((e.program.as_str(), e.args.len()), ("/bin/app", 2));
        let (e, _) = with_value("{v: ['/bin/sh', '-c', 'a  b']}", |v, r| exec(v, "p", r));
        assert_eq!(e.unwrap().args, ["-c", "a  b"]);
        let (e, msgs) = with_value("{v: ''}", |v, r| exec(v, "p", r));
        assert!(e.is_none());
        assert_eq!(msgs, ["the command is empty"]);
    }

    #[test]
    fn durations_accept_seconds_and_go_syntax() {
        let d = |text: &str| with_value(text, |v, r| duration(v, "p", r, "timeout: \"5s\"")).0;
        assert_eq!(d("{v: 5}"), Some(Duration::from_secs(5)));
        assert_eq!(d("{v: '5'}"), Some(Duration::from_secs(5)));
        assert_eq!(d("{v: '1m'}"), Some(Duration::from_secs(60)));
        assert_eq!(d("{v: true}"), None);
    }
}
