//! The JSON5 value tree the sections of a migration are built as, and how it
//! is written: objects spread over lines when they hold objects, comments
//! before their field, strings quoted so they survive the template step.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::duration::format as dur;
use crate::config::model::Exec;

/// Lines longer than this are broken over several lines.
const WIDTH: usize = 88;

/// A command: a string when splitting it on whitespace gives the same words
/// back, an array otherwise.
pub(super) fn exec_value(exec: &Exec) -> J {
    let words: Vec<&str> = std::iter::once(exec.program.as_str())
        .chain(exec.args.iter().map(String::as_str))
        .collect();
    let plain = words
        .iter()
        .all(|w| !w.is_empty() && !w.chars().any(char::is_whitespace));
    if plain {
        text(words.join(" "))
    } else {
        J::Arr(words.into_iter().map(text).collect())
    }
}

/// Whole seconds as a number (ContainerPilot's `interval: 5`), else a duration.
pub(super) fn seconds(d: Duration) -> J {
    if d.subsec_nanos() == 0 {
        J::Raw(d.as_secs().to_string())
    } else {
        duration(d)
    }
}

pub(super) fn duration(d: Duration) -> J {
    text(dur(d))
}

pub(super) fn strings(items: &[String]) -> J {
    J::Arr(items.iter().map(text).collect())
}

pub(super) fn text(s: impl AsRef<str>) -> J {
    J::Str(s.as_ref().to_string())
}

pub(super) fn field(key: &str, value: J) -> Entry {
    Entry::Field(key.to_string(), value)
}

pub(super) fn obj(entries: Vec<Entry>) -> J {
    J::Obj(entries)
}

/// A JSON5 value to print.
pub(super) enum J {
    Str(String),
    /// A number or keyword, printed as is.
    Raw(String),
    Bool(bool),
    Arr(Vec<J>),
    Obj(Vec<Entry>),
}

pub(super) enum Entry {
    Field(String, J),
    /// A `//` comment line, written before the next field.
    Comment(String),
}

/// A string literal that survives the trip back through autopilot: JSON
/// escapes, plus `{{` written as `\u007b\u007b` because the file is rendered
/// as a template before it is parsed.
pub(super) fn quote(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    json.replace("{{", "\\u007b\\u007b")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

pub(super) fn key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident { k.to_string() } else { quote(k) }
}

/// The value on one line, if it has no comments.
pub(super) fn inline(v: &J) -> Option<String> {
    Some(match v {
        J::Str(s) => quote(s),
        J::Raw(r) => r.clone(),
        J::Bool(b) => b.to_string(),
        J::Arr(items) => {
            let parts: Option<Vec<String>> = items.iter().map(inline).collect();
            format!("[{}]", parts?.join(", "))
        }
        J::Obj(entries) if entries.is_empty() => "{}".to_string(),
        J::Obj(entries) => {
            let parts: Option<Vec<String>> = entries
                .iter()
                .map(|e| match e {
                    Entry::Field(k, v) => Some(format!("{}: {}", key(k), inline(v)?)),
                    Entry::Comment(_) => None,
                })
                .collect();
            format!("{{{}}}", parts?.join(", "))
        }
    })
}

/// Writes `v` at `indent` (the column the value starts at is already there).
pub(super) fn write_value(out: &mut String, v: &J, indent: usize) {
    let nested = |v: &J| matches!(v, J::Obj(e) if !e.is_empty());
    // Objects holding objects (jobs, health) read better spread out.
    let spread = match v {
        J::Arr(items) => items.iter().any(nested),
        J::Obj(entries) => entries.iter().any(|e| match e {
            Entry::Field(_, v) => nested(v),
            Entry::Comment(_) => true,
        }),
        _ => false,
    };
    if let Some(line) = inline(v).filter(|l| !spread && indent + l.len() <= WIDTH) {
        out.push_str(&line);
        return;
    }
    let pad = " ".repeat(indent + 2);
    match v {
        J::Arr(items) => {
            out.push_str("[\n");
            for item in items {
                out.push_str(&pad);
                write_value(out, item, indent + 2);
                out.push_str(",\n");
            }
            out.push_str(&" ".repeat(indent));
            out.push(']');
        }
        J::Obj(entries) => {
            out.push_str("{\n");
            for entry in entries {
                match entry {
                    Entry::Field(k, v) => {
                        let k = key(k);
                        let _ = write!(out, "{pad}{k}: ");
                        write_value(out, v, indent + 2);
                        out.push_str(",\n");
                    }
                    Entry::Comment(c) => {
                        let _ = writeln!(out, "{pad}// {}", c.replace("{{", "{ {"));
                    }
                }
            }
            out.push_str(&" ".repeat(indent));
            out.push('}');
        }
        // Scalars always fit "inline"; a long string stays on its line.
        other => out.push_str(&inline(other).unwrap_or_default()),
    }
}
