//! The functions a template can call: Go's builtins and ContainerPilot's
//! additions, with the argument checks Go's reflection-based calls perform.
//!
//! `and` and `or` are listed but evaluated by `eval`, because they must not
//! evaluate arguments after the one that decides the result.

use std::collections::HashMap;

use super::MAX_RENDERED;
use super::printf;
use super::value::Value;

const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf",
    "println",
];

const CONTAINERPILOT: &[&str] = &[
    "default",
    "env",
    "split",
    "join",
    "replaceAll",
    "regexReplaceAll",
    "loop",
];

/// `loop` refuses to build longer lists than this rather than exhaust memory.
const MAX_LOOP: i128 = 1_000_000;

pub(super) fn exists(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || CONTAINERPILOT.contains(&name)
}

/// " (did you mean `default`?)" for a misspelled function name, or "".
pub(super) fn suggestion(name: &str) -> String {
    let known = GO_BUILTINS.iter().chain(CONTAINERPILOT.iter()).copied();
    crate::config::suggest::closest(name, known)
        .map(|f| format!(" (did you mean `{f}`?)"))
        .unwrap_or_default()
}

type Env = HashMap<String, String>;

/// Call `name` (other than `and`/`or`) with evaluated arguments; the piped
/// value, if any, is already the last of them.
pub(super) fn call<'a>(
    name: &str,
    args: Vec<Value<'a>>,
    env: &'a Env,
) -> Result<Value<'a>, String> {
    let args = Args { name, args };
    match name {
        "not" => {
            args.want(1)?;
            Ok(Value::Bool(!args.args[0].truthy()))
        }
        "eq" => eq(&args),
        "ne" => {
            args.want(2)?;
            Ok(Value::Bool(!equal(&args.args[0], &args.args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => compare(&args),
        "len" => len(&args),
        "index" => index(args),
        "print" => Ok(Value::Str(printf::sprint(&args.args))),
        "println" => Ok(Value::Str(printf::sprintln(&args.args))),
        "printf" => {
            args.want_at_least(1)?;
            let format = args.string(0)?;
            printf::sprintf(format, &args.args[1..], MAX_RENDERED)
                .map(Value::Str)
                .ok_or_else(|| too_big("printf"))
        }
        "default" => default(&args),
        "env" => {
            args.want(1)?;
            let key = args.string(0)?;
            Ok(Value::Str(env.get(key).cloned().unwrap_or_default()))
        }
        "split" => split(&args),
        "join" => join(&args),
        "replaceAll" => {
            args.want(3)?;
            let (from, to, s) = (args.string(0)?, args.string(1)?, args.string(2)?);
            // An empty `from` matches between every character.
            let matches = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            let size =
                (s.len() - matches * from.len()).saturating_add(matches.saturating_mul(to.len()));
            if size > MAX_RENDERED {
                return Err(too_big("replaceAll"));
            }
            Ok(Value::Str(s.replace(from, to)))
        }
        "regexReplaceAll" => regex_replace_all(&args),
        "loop" => looped(&args),
        _ => Err(format!("function \"{name}\" not defined")),
    }
}

/// Arguments of one call, with Go-style arity and type errors.
struct Args<'n, 'a> {
    name: &'n str,
    args: Vec<Value<'a>>,
}

impl Args<'_, '_> {
    fn want(&self, n: usize) -> Result<(), String> {
        if self.args.len() == n {
            return Ok(());
        }
        Err(format!(
            "wrong number of args for {}: want {n} got {}",
            self.name,
            self.args.len()
        ))
    }

    fn want_at_least(&self, n: usize) -> Result<(), String> {
        if self.args.len() >= n {
            return Ok(());
        }
        Err(format!(
            "wrong number of args for {}: want at least {n} got {}",
            self.name,
            self.args.len()
        ))
    }

    fn type_error(&self, i: usize, expected: &str) -> String {
        format!(
            "wrong type for argument {} of {}: expected {expected}; got {}",
            i + 1,
            self.name,
            self.args[i].type_name()
        )
    }

    fn string(&self, i: usize) -> Result<&str, String> {
        match &self.args[i] {
            Value::Str(s) => Ok(s),
            _ => Err(self.type_error(i, "string")),
        }
    }
}

/// `default DEFAULT VALUE`: VALUE when it is a non-empty string, otherwise
/// DEFAULT printed as a string (ContainerPilot's `defaultValue`).
fn default<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want(2)?;
    Ok(match &args.args[1] {
        Value::Str(s) if !s.is_empty() => Value::Str(s.clone()),
        _ => Value::Str(args.args[0].to_go_string()),
    })
}

/// `split SEP STRING`: the string is trimmed first and an empty one gives an
/// empty list, as in ContainerPilot.
fn split<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want(2)?;
    let (sep, s) = (args.string(0)?, args.string(1)?.trim());
    Ok(Value::Strings(if s.is_empty() {
        Vec::new()
    } else if sep.is_empty() {
        s.chars().map(String::from).collect()
    } else {
        s.split(sep).map(String::from).collect()
    }))
}

/// `join SEP LIST`, where LIST must be a `[]string`.
fn join<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want(2)?;
    let sep = args.string(0)?;
    match &args.args[1] {
        Value::Strings(items) => {
            let size = items
                .iter()
                .map(String::len)
                .sum::<usize>()
                .saturating_add(sep.len().saturating_mul(items.len().saturating_sub(1)));
            if size > MAX_RENDERED {
                return Err(too_big("join"));
            }
            Ok(Value::Str(items.join(sep)))
        }
        _ => Err(args.type_error(1, "[]string")),
    }
}

fn regex_replace_all<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want(3)?;
    let (pattern, to, s) = (args.string(0)?, args.string(1)?, args.string(2)?);
    let re = regex::Regex::new(&ascii_perl_classes(pattern)).map_err(|e| {
        let detail = e.to_string();
        let detail = detail.lines().last().unwrap_or_default().trim().to_string();
        format!("regexReplaceAll: invalid regular expression {pattern:?}: {detail}")
    })?;
    // Bound the result before making it: each match becomes `to`, whose
    // every `$` may expand to at most the whole input.
    let matches = re.find_iter(s).count();
    let per_match = to
        .len()
        .saturating_add(to.matches('$').count().saturating_mul(s.len()));
    if s.len().saturating_add(matches.saturating_mul(per_match)) > MAX_RENDERED {
        return Err(too_big("regexReplaceAll"));
    }
    Ok(Value::Str(re.replace_all(s, to).into_owned()))
}

/// `pattern` with Go's (RE2's) meaning of `\d \w \s \b` and their negations:
/// ASCII only, as ContainerPilot has them. The regex crate's are Unicode-aware
/// (and need its large Unicode tables, left out of the binary: see Cargo.toml);
/// the classes become explicit ASCII sets, which work inside `[...]` too.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            out.push(c);
            break;
        };
        match next {
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            's' => out.push_str(r"[\t\n\f\r ]"),
            'S' => out.push_str(r"[^\t\n\f\r ]"),
            'b' => out.push_str(r"(?-u:\b)"),
            'B' => out.push_str(r"(?-u:\B)"),
            other => {
                out.push(c);
                out.push(other);
            }
        }
    }
    out
}

/// The error of a function whose result would exceed [`MAX_RENDERED`].
fn too_big(name: &str) -> String {
    format!(
        "{name}: the result would be longer than {} MiB",
        MAX_RENDERED >> 20
    )
}

/// `loop N` is [0, N); `loop START END` counts up or down from START to END
/// (exclusive). Strings holding integers are accepted, as in ContainerPilot.
fn looped<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    let int = |i: usize| -> Result<i64, String> {
        match &args.args[i] {
            Value::Int(n) => Ok(*n),
            Value::Str(s) => s
                .parse()
                .map_err(|_| format!("loop: cannot convert {s:?} to an integer")),
            _ => Err(args.type_error(i, "int")),
        }
    };
    let (start, stop) = match args.args.len() {
        1 => (0, int(0)?),
        2 => (int(0)?, int(1)?),
        n => {
            return Err(format!(
                "loop: wrong number of arguments, expected 1 or 2, but got {n}"
            ));
        }
    };
    if (i128::from(stop) - i128::from(start)).abs() > MAX_LOOP {
        return Err(format!("loop: range {start}..{stop} is too long"));
    }
    Ok(Value::Ints(if stop < start {
        ((stop + 1)..=start).rev().collect()
    } else {
        (start..stop).collect()
    }))
}

fn len<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want(1)?;
    let n = match &args.args[0] {
        // Go's len of a string counts bytes.
        Value::Str(s) => s.len(),
        Value::Strings(v) => v.len(),
        Value::Ints(v) => v.len(),
        Value::Env(m) => m.len(),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(Value::Int(n as i64))
}

/// `index ITEM I...`: list elements by int, map entries by key (a missing
/// key gives ""), string bytes by int.
fn index<'a>(args: Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want_at_least(1)?;
    let mut items = args.args.into_iter();
    let mut item = items.next().unwrap_or(Value::Nil);
    for key in items {
        let position = |len: usize| match key {
            Value::Int(i) if i >= 0 && (i as u64) < len as u64 => Ok(i as usize),
            Value::Int(i) => Err(format!("index out of range: {i}")),
            ref other => Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )),
        };
        item = match &item {
            Value::Strings(v) => Value::Str(v[position(v.len())?].clone()),
            Value::Ints(v) => Value::Int(v[position(v.len())?]),
            Value::Str(s) => Value::Int(i64::from(s.as_bytes()[position(s.len())?])),
            Value::Env(m) => match &key {
                Value::Str(k) => Value::Str(m.get(k).cloned().unwrap_or_default()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn eq<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    args.want_at_least(1)?;
    let (first, rest) = args
        .args
        .split_first()
        .ok_or("missing argument for comparison")?;
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for other in rest {
        if equal(first, other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// Go's `eq` on two values: basic values of the same kind compare, anything
/// else is an error.
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Int(x), Value::Int(y)) => Ok(x == y),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Strings(_) | Value::Ints(_) | Value::Env(_), _) => {
            Err(format!("non-comparable type {}", a.type_name()))
        }
        (_, Value::Strings(_) | Value::Ints(_) | Value::Env(_)) => {
            Err(format!("non-comparable type {}", b.type_name()))
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn compare<'a>(args: &Args<'_, 'a>) -> Result<Value<'a>, String> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    args.want(2)?;
    let (a, b) = (&args.args[0], &args.args[1]);
    let order = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.partial_cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.partial_cmp(y),
        _ if a.type_name() == b.type_name() => {
            return Err(format!("invalid type for comparison: {}", a.type_name()));
        }
        _ => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            ));
        }
    };
    let result = match args.name {
        "lt" => order == Some(Less),
        "le" => matches!(order, Some(Less | Equal)),
        "gt" => order == Some(Greater),
        _ => matches!(order, Some(Greater | Equal)),
    };
    Ok(Value::Bool(result))
}
