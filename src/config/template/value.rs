//! Template values and how Go prints them.
//!
//! Only the Go types a ContainerPilot template can produce exist here: the
//! environment (`map[string]string`), strings, ints, floats and bools from
//! literals and functions, `[]string` from `split` and `[]int` from `loop`.
//! Keeping the two list types apart lets `join` refuse `[]int`, as Go does.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Env(&'a HashMap<String, String>),
}

impl Value<'_> {
    /// Go's truth: false, 0, "", nil and empty collections are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Strings(v) => !v.is_empty(),
            Value::Ints(v) => !v.is_empty(),
            Value::Env(m) => !m.is_empty(),
        }
    }

    /// Roughly the bytes the value holds, for the render's limits (the
    /// environment is borrowed, not copied, and costs nothing).
    pub fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Strings(v) => v.iter().map(|s| s.len() + 8).sum(),
            Value::Ints(v) => v.len() * 8,
            _ => 8,
        }
    }

    /// The Go type name, for error messages and `%!verb(type=value)`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Strings(_) => "[]string",
            Value::Ints(_) => "[]int",
            Value::Env(_) => "map[string]string",
        }
    }

    /// Go's `%v` (what `print` and an action output).
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float_shortest(*f),
            Value::Str(s) => s.clone(),
            Value::Strings(v) => format!("[{}]", v.join(" ")),
            Value::Ints(v) => {
                let items: Vec<String> = v.iter().map(i64::to_string).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Env(m) => {
                let items: Vec<String> = sorted(m).map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", items.join(" "))
            }
        }
    }
}

/// Map entries in key order, the order Go prints and ranges over maps.
pub(super) fn sorted(map: &HashMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort();
    entries.into_iter()
}

/// The shortest digits that round-trip `f` (no sign) and the decimal
/// exponent of the first digit: 1234.5 gives ("12345", 3).
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

fn non_finite(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

/// Go's `%v` for a float64: `%g` with the shortest precision, which uses
/// exponent form below 1e-4 and from 1e6 on (`1e+06`).
pub(super) fn format_float_shortest(f: f64) -> String {
    if let Some(s) = non_finite(f) {
        return s.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let (digits, exp) = shortest_digits(f);
    if !(-4..6).contains(&exp) {
        return format!("{sign}{}", exponent_form(&digits, exp));
    }
    let body = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    };
    format!("{sign}{body}")
}

/// `d.ddde+XX` from digits and exponent, with Go's two-digit minimum exponent.
fn exponent_form(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let dot = if rest.is_empty() { "" } else { "." };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{first}{dot}{rest}e{sign}{:02}", exp.unsigned_abs())
}

/// Go's `%e` with a precision: `1.500000e+00`.
pub(super) fn format_float_exp(f: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = non_finite(f) {
        return s.into();
    }
    let (exact, zeros) = split_precision(prec);
    let sci = format!("{f:.exact$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    let zeros = "0".repeat(zeros);
    format!("{mantissa}{zeros}{e}{sign}{:02}", exp.unsigned_abs())
}

/// Every digit of an f64 written in decimal lies within this many places of
/// the point (the smallest subnormal has 1074 after it), so digits asked for
/// beyond it are zeros.
const EXACT_PLACES: usize = 1100;

/// A precision split into what Rust's formatter computes (which panics above
/// 65535) and the zeros that follow it.
fn split_precision(prec: usize) -> (usize, usize) {
    let exact = prec.min(EXACT_PLACES);
    (exact, prec - exact)
}

/// Go's `%f` with a precision.
pub(super) fn format_float_fixed(f: f64, prec: usize) -> String {
    match non_finite(f) {
        Some(s) => s.into(),
        None => {
            let (exact, zeros) = split_precision(prec);
            format!("{f:.exact$}{}", "0".repeat(zeros))
        }
    }
}

/// Go's `%g` with an explicit precision (significant digits); trailing
/// zeros are dropped, as Go does.
pub(super) fn format_float_general(f: f64, prec: usize) -> String {
    if let Some(s) = non_finite(f) {
        return s.into();
    }
    let prec = prec.max(1);
    // Trailing zeros are dropped below, so the exact digits are enough.
    let sci = format!("{:.*e}", split_precision(prec - 1).0, f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mantissa.replace('.', "");
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if exp < -4 || exp >= prec as i32 {
        return format!("{sign}{}", exponent_form(digits, exp));
    }
    let places = split_precision((prec as i64 - 1 - i64::from(exp)).max(0) as usize).0;
    let text = format!("{:.*}", places, f.abs());
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{sign}{text}")
}
