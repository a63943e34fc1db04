//! Go's `fmt.Sprintf`, `fmt.Sprint` and `fmt.Sprintln` over template values,
//! behind the `printf`, `print` and `println` template functions.
//!
//! Mistakes in a format do not fail, they show up in the output the way Go
//! shows them (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`), because
//! that is what a config rendered by ContainerPilot would contain.

use std::iter::Peekable;
use std::str::Chars;

use super::value::{self, Value};

/// Go's fmt refuses widths and precisions above this (`%!(BADWIDTH)`).
const MAX_WIDTH: usize = 1_000_000;

#[derive(Default, Clone)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: usize,
    prec: Option<usize>,
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&arg.to_go_string());
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a final newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let items: Vec<String> = args.iter().map(Value::to_go_string).collect();
    format!("{}\n", items.join(" "))
}

/// `fmt.Sprintf`, or `None` once the output grows beyond `limit` bytes
/// (widths of a million, repeated, would otherwise fill the memory).
pub(super) fn sprintf(format: &str, args: &[Value], limit: usize) -> Option<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() > limit {
            return None;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        match count(&mut chars, &mut args) {
            Ok(Some(w)) if w < 0 => (spec.minus, spec.width) = (true, w.unsigned_abs() as usize),
            Ok(Some(w)) => spec.width = w as usize,
            Ok(None) => {}
            Err(()) => out.push_str("%!(BADWIDTH)"),
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            match count(&mut chars, &mut args) {
                Ok(Some(p)) if p < 0 => {}
                Ok(p) => spec.prec = Some(p.unwrap_or(0) as usize),
                Err(()) => out.push_str("%!(BADPREC)"),
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.next() {
            Some(arg) => format_value(&mut out, &spec, verb, arg),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", a.type_name(), a.to_go_string()))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    (out.len() <= limit).then_some(out)
}

/// Output beyond which list formatting stops early: `sprintf` then fails.
const LIST_LIMIT: usize = super::MAX_RENDERED;

/// A width or precision: digits, or `*` taking an int argument.
fn count(
    chars: &mut Peekable<Chars>,
    args: &mut std::slice::Iter<Value>,
) -> Result<Option<i64>, ()> {
    if chars.peek() == Some(&'*') {
        chars.next();
        return match args.next() {
            Some(Value::Int(n)) if n.unsigned_abs() <= MAX_WIDTH as u64 => Ok(Some(*n)),
            _ => Err(()),
        };
    }
    let mut n: Option<i64> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        let v = n
            .unwrap_or(0)
            .saturating_mul(10)
            .saturating_add(i64::from(d));
        n = Some(v);
    }
    match n {
        Some(v) if v > MAX_WIDTH as i64 => Err(()),
        _ => Ok(n),
    }
}

fn format_value(out: &mut String, spec: &Spec, verb: char, v: &Value) {
    match v {
        Value::Strings(items) => {
            let items: Vec<Value> = items.iter().map(|s| Value::Str(s.clone())).collect();
            format_list(out, spec, verb, &items);
        }
        Value::Ints(items) => {
            let items: Vec<Value> = items.iter().map(|i| Value::Int(*i)).collect();
            format_list(out, spec, verb, &items);
        }
        Value::Env(map) => {
            out.push_str("map[");
            for (i, (k, v)) in value::sorted(map).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_value(out, spec, verb, &Value::Str(k.clone()));
                out.push(':');
                format_value(out, spec, verb, &Value::Str(v.clone()));
            }
            out.push(']');
        }
        Value::Nil if verb == 'v' => pad(out, spec, "<nil>"),
        Value::Nil => out.push_str(&format!("%!{verb}(<nil>)")),
        Value::Bool(b) if matches!(verb, 't' | 'v') => pad(out, spec, &b.to_string()),
        Value::Int(i) => format_int(out, spec, verb, *i),
        Value::Float(f) => format_float(out, spec, verb, *f),
        Value::Str(s) => format_str(out, spec, verb, s),
        Value::Bool(_) => bad_verb(out, verb, v),
    }
}

/// Go applies the verb to each element: `[a b]`, `["a" "b"]`.
fn format_list(out: &mut String, spec: &Spec, verb: char, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if out.len() > LIST_LIMIT {
            return;
        }
        if i > 0 {
            out.push(' ');
        }
        format_value(out, spec, verb, item);
    }
    out.push(']');
}

fn bad_verb(out: &mut String, verb: char, v: &Value) {
    out.push_str(&format!("%!{verb}({}={})", v.type_name(), v.to_go_string()));
}

/// Pad to the width with spaces (or zeros with the `0` flag, as Go does even
/// for strings), on the right with the `-` flag.
fn pad(out: &mut String, spec: &Spec, s: &str) {
    let fill = spec.width.saturating_sub(s.chars().count());
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        let c = if spec.zero { '0' } else { ' ' };
        out.extend(std::iter::repeat_n(c, fill));
        out.push_str(s);
    }
}

/// Pad a number: with the `0` flag the zeros go between sign and digits.
fn pad_number(out: &mut String, spec: &Spec, head: &str, digits: &str, zero_ok: bool) {
    if spec.zero && zero_ok && !spec.minus {
        let fill = spec
            .width
            .saturating_sub(head.chars().count() + digits.chars().count());
        out.push_str(head);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        let plain = Spec {
            zero: false,
            ..spec.clone()
        };
        pad(out, &plain, &format!("{head}{digits}"));
    }
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn format_int(out: &mut String, spec: &Spec, verb: char, i: i64) {
    let n = i.unsigned_abs();
    let (mut digits, prefix) = match verb {
        'v' | 'd' => (n.to_string(), ""),
        'x' => (format!("{n:x}"), "0x"),
        'X' => (format!("{n:X}"), "0X"),
        'o' => (format!("{n:o}"), "0"),
        'b' => (format!("{n:b}"), "0b"),
        'c' => return pad(out, spec, &to_char(i).to_string()),
        'q' => return pad(out, spec, &quote_char(to_char(i))),
        'U' => return pad(out, spec, &format!("U+{n:04X}")),
        _ => return bad_verb(out, verb, &Value::Int(i)),
    };
    if let Some(p) = spec.prec {
        if p == 0 && n == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    }
    let prefix = if spec.sharp && !(prefix == "0" && digits.starts_with('0')) {
        prefix
    } else {
        ""
    };
    let head = format!("{}{prefix}", sign(spec, i < 0));
    pad_number(out, spec, &head, &digits, spec.prec.is_none());
}

fn to_char(i: i64) -> char {
    u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

fn format_float(out: &mut String, spec: &Spec, verb: char, f: f64) {
    let text = match (verb, spec.prec) {
        ('v' | 'g' | 'G', None) => value::format_float_shortest(f),
        ('v' | 'g' | 'G', Some(p)) => value::format_float_general(f, p),
        ('e' | 'E', p) => value::format_float_exp(f, p.unwrap_or(6), verb == 'E'),
        ('f' | 'F', p) => value::format_float_fixed(f, p.unwrap_or(6)),
        _ => return bad_verb(out, verb, &Value::Float(f)),
    };
    let text = if verb == 'G' {
        text.to_uppercase()
    } else {
        text
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let head = if f.is_infinite() && !negative {
        "+"
    } else {
        sign(spec, negative)
    };
    pad_number(out, spec, head, digits, f.is_finite());
}

fn format_str(out: &mut String, spec: &Spec, verb: char, s: &str) {
    match verb {
        'v' | 's' => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad(out, spec, &s);
        }
        'q' => {
            let raw_ok =
                spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control());
            let quoted = if raw_ok { format!("`{s}`") } else { quote(s) };
            pad(out, spec, &quoted);
        }
        'x' | 'X' => {
            let bytes = &s.as_bytes()[..spec.prec.unwrap_or(usize::MAX).min(s.len())];
            let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                hex = hex.to_uppercase();
            }
            let prefix = match (spec.sharp, verb) {
                (true, 'x') => "0x",
                (true, _) => "0X",
                _ => "",
            };
            pad(out, spec, &format!("{prefix}{hex}"));
        }
        _ => bad_verb(out, verb, &Value::Str(s.to_string())),
    }
}

/// Go's `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        escape_char(&mut q, c, '"');
    }
    q.push('"');
    q
}

/// Go's `strconv.QuoteRune`.
fn quote_char(c: char) -> String {
    let mut q = String::from("'");
    escape_char(&mut q, c, '\'');
    q.push('\'');
    q
}

fn escape_char(q: &mut String, c: char, quote: char) {
    match c {
        '\x07' => q.push_str("\\a"),
        '\x08' => q.push_str("\\b"),
        '\x0c' => q.push_str("\\f"),
        '\n' => q.push_str("\\n"),
        '\r' => q.push_str("\\r"),
        '\t' => q.push_str("\\t"),
        '\x0b' => q.push_str("\\v"),
        '\\' => q.push_str("\\\\"),
        _ if c == quote => {
            q.push('\\');
            q.push(c);
        }
        _ if (c as u32) < 0x20 || c == '\x7f' => q.push_str(&format!("\\x{:02x}", c as u32)),
        _ if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
        _ => q.push(c),
    }
}
