//! JSON5 text to a tree of values that remember where they came from.
//!
//! `jsonc-parser` does the tokenizing; we convert its AST into our own small
//! [`Value`] tree with byte spans, so every later check (unknown keys, wrong
//! types, cross references) can point at the exact text. Two things JSON5
//! forbids but the parser lets through are checked here: duplicate keys in one
//! object and raw line breaks inside strings.

use std::collections::HashMap;

use jsonc_parser::ast;
use jsonc_parser::errors::ParseErrorKind;
use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};

use super::error::{ConfigError, Reporter};

/// A byte range in the rendered configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// A value and the byte range of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub start: usize,
    pub end: usize,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned {
            value,
            start: span.start,
            end: span.end,
        }
    }

    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// A JSON5 number: its value, and the text it was written as (`0x1F`, `+5`),
/// so messages can quote the user's own spelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub value: f64,
    pub raw: String,
}

impl Number {
    /// The value as a whole number, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        let v = self.value;
        (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Spanned<Value>>),
    /// Entries in document order (duplicates have been rejected).
    Object(Vec<(Spanned<String>, Spanned<Value>)>),
}

impl Value {
    /// The kind of value, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// Looks up a key of an object (exact spelling).
    pub fn get(&self, key: &str) -> Option<&Spanned<Value>> {
        match self {
            Value::Object(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset. Offsets past the
/// end or inside a character are clamped, never a panic.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses rendered JSON5. `file` labels the diagnostics; warnings (such as
/// duplicate keys) are dropped unless there is also an error.
pub fn parse(text: &str, file: &str) -> Result<Spanned<Value>, ConfigError> {
    let mut reporter = Reporter::new(text, file);
    match parse_into(&mut reporter) {
        Some(value) if !reporter.has_errors() => Ok(value),
        _ => Err(ConfigError {
            diagnostics: reporter.into_diagnostics(),
        }),
    }
}

/// Parses the reporter's text, reporting problems into it. `None` on a
/// syntax error.
pub fn parse_into(reporter: &mut Reporter<'_>) -> Option<Spanned<Value>> {
    let text = reporter.text();
    let options = ParseOptions {
        allow_comments: true,
        allow_loose_object_property_names: true,
        allow_trailing_commas: true,
        // A missing comma is almost always a mistake (often a line removed by
        // a template): ContainerPilot rejected it, and so do we.
        allow_missing_commas: false,
        allow_single_quoted_strings: true,
        allow_hexadecimal_numbers: true,
        allow_unary_plus_numbers: true,
        allow_bare_decimal_point_numbers: true,
        allow_non_finite_numbers: true,
        allow_extended_string_escapes: true,
    };
    let parsed = match parse_to_ast(text, &CollectOptions::default(), &options) {
        Ok(parsed) => parsed,
        Err(err) => {
            let (span, message, hint) = syntax_error(text, &err);
            reporter.error(span, "", message, hint);
            return None;
        }
    };
    let Some(root) = parsed.value else {
        reporter.error(
            Span::new(text.len(), text.len()),
            "",
            "the configuration is empty",
            Some("a configuration is one JSON5 object, at least `{}`".into()),
        );
        return None;
    };
    Some(convert(&root, reporter))
}

fn range_span(range: jsonc_parser::common::Range) -> Span {
    Span::new(range.start, range.end)
}

fn convert(value: &ast::Value<'_>, reporter: &mut Reporter<'_>) -> Spanned<Value> {
    match value {
        ast::Value::NullKeyword(n) => Spanned::new(Value::Null, range_span(n.range)),
        ast::Value::BooleanLit(b) => Spanned::new(Value::Bool(b.value), range_span(b.range)),
        ast::Value::NumberLit(n) => {
            let number = Number {
                value: number_value(n.value),
                raw: n.value.to_string(),
            };
            Spanned::new(Value::Number(number), range_span(n.range))
        }
        ast::Value::StringLit(s) => {
            check_string_literal(range_span(s.range), reporter);
            Spanned::new(Value::String(s.value.to_string()), range_span(s.range))
        }
        ast::Value::Array(a) => {
            let items = a.elements.iter().map(|e| convert(e, reporter)).collect();
            Spanned::new(Value::Array(items), range_span(a.range))
        }
        ast::Value::Object(o) => {
            // In document order; `None` where a later duplicate replaced it.
            let mut entries: Vec<Option<(Spanned<String>, Spanned<Value>)>> = Vec::new();
            let mut index_of: HashMap<String, usize> = HashMap::new();
            for prop in &o.properties {
                let (name, span) = match &prop.name {
                    ast::ObjectPropName::String(s) => {
                        check_string_literal(range_span(s.range), reporter);
                        (s.value.to_string(), range_span(s.range))
                    }
                    ast::ObjectPropName::Word(w) => (w.value.to_string(), range_span(w.range)),
                };
                let value = convert(&prop.value, reporter);
                // JSON5 leaves duplicates undefined; ContainerPilot's parser
                // kept the last one silently. Keep the last one, and say so.
                if let Some(index) = index_of.insert(name.clone(), entries.len())
                    && let Some((earlier_key, earlier)) = entries[index].take()
                {
                    let line = reporter.line_of(earlier_key.start);
                    let same = same_value(&earlier.value, &value.value);
                    reporter.warning(
                        span,
                        "",
                        if same {
                            format!("duplicate key `{name}`, with the same value as on line {line}")
                        } else {
                            format!(
                                "duplicate key `{name}`: this value replaces the one on line {line}"
                            )
                        },
                        Some(format!("keep only one `{name}` in this object")),
                    );
                }
                entries.push(Some((Spanned::new(name, span), value)));
            }
            let entries = entries.into_iter().flatten().collect();
            Spanned::new(Value::Object(entries), range_span(o.range))
        }
    }
}

/// Structural equality, ignoring where the values are written.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(&x.value, &y.value))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((kx, vx), (ky, vy))| {
                    kx.value == ky.value && same_value(&vx.value, &vy.value)
                })
        }
        (Value::Number(x), Value::Number(y)) => x.value == y.value,
        _ => a == b,
    }
}

/// Reports every string (value or key) that contains a NUL character: no
/// process can receive one (arguments, environment variables and paths end
/// at NUL), so a job, name or path carrying it could only fail later, and a
/// job name carrying it would break every process start through
/// `CONTAINERPILOT_<JOB>_PID`. Checked once here, for every field of every
/// version, rather than field by field.
pub fn reject_nul(value: &Spanned<Value>, path: &str, reporter: &mut Reporter<'_>) {
    let report = |reporter: &mut Reporter<'_>, span: Span, path: &str, what: &str| {
        reporter.error(
            span,
            path,
            format!("{what} contains a NUL character (`\\u0000`)"),
            Some(
                "no process can be given a NUL character (arguments, environment variables \
                 and paths end at it): remove it"
                    .into(),
            ),
        );
    };
    match &value.value {
        Value::String(s) if s.contains('\0') => report(reporter, value.span(), path, "the string"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                reject_nul(item, &format!("{path}[{i}]"), reporter);
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                let child = if path.is_empty() {
                    key.value.clone()
                } else {
                    format!("{path}.{}", key.value)
                };
                if key.value.contains('\0') {
                    report(reporter, key.span(), &child, "the key");
                } else {
                    reject_nul(item, &child, reporter);
                }
            }
        }
        _ => {}
    }
}

/// The numeric value of a JSON5 number literal (`0x1F`, `+1`, `.5`, `Infinity`).
fn number_value(raw: &str) -> f64 {
    let (negative, digits) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    let magnitude = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .unwrap_or(f64::NAN)
    } else {
        digits.parse::<f64>().unwrap_or(f64::NAN)
    };
    if negative { -magnitude } else { magnitude }
}

/// JSON5 strings may not contain raw line breaks (a `\` before the break is a
/// line continuation and is fine). The parser accepts them, so check here.
fn check_string_literal(span: Span, reporter: &mut Reporter<'_>) {
    let Some(raw) = reporter.text().get(span.start..span.end) else {
        return;
    };
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => {
                let at = span.start + i;
                reporter.error(
                    Span::new(span.start, at),
                    "",
                    "line break inside a string",
                    Some(
                        "a string must end on the line it starts on: close the quote, \
                         or write the line break as `\\n`"
                            .into(),
                    ),
                );
                return;
            }
            _ => {}
        }
    }
}

/// Turns a parser error into a message that says how to fix it.
fn syntax_error(
    text: &str,
    err: &jsonc_parser::errors::ParseError,
) -> (Span, String, Option<String>) {
    let range = err.range();
    let span = Span::new(range.start, range.end);
    let token = text.get(range.start..range.end).unwrap_or("").trim();
    let token_short: String = token.chars().take(40).collect();
    let (message, hint): (String, Option<&str>) = match err.kind() {
        ParseErrorKind::ExpectedComma => (
            "expected `,` after this value".into(),
            Some("entries of objects and arrays are separated by commas"),
        ),
        ParseErrorKind::UnexpectedComma => (
            "unexpected `,`".into(),
            Some(
                "is a value missing here? If it comes from a template expression such as \
                 `{{ .PORT }}`, the environment variable is probably unset",
            ),
        ),
        ParseErrorKind::ExpectedObjectValue => (
            "expected a value after `:`".into(),
            Some(
                "if the value comes from a template expression such as `{{ .PORT }}`, \
                 the environment variable is probably unset",
            ),
        ),
        ParseErrorKind::ExpectedColonAfterObjectKey => (
            "expected `:` after the key".into(),
            Some("write entries as `key: value`"),
        ),
        ParseErrorKind::UnexpectedWord | ParseErrorKind::UnexpectedToken => (
            format!("unexpected `{token_short}`"),
            Some("text values must be quoted: write \"...\""),
        ),
        ParseErrorKind::UnexpectedTokenInObject | ParseErrorKind::ExpectedStringObjectProperty => (
            format!("unexpected `{token_short}` where a key was expected"),
            Some("objects hold `key: value` entries separated by commas"),
        ),
        ParseErrorKind::UnexpectedCloseBrace => (
            "unexpected `}`".into(),
            Some("there is no object open here: remove it or add the missing `{`"),
        ),
        ParseErrorKind::UnexpectedCloseBracket => (
            "unexpected `]`".into(),
            Some("there is no array open here: remove it or add the missing `[`"),
        ),
        ParseErrorKind::UnexpectedColon => (
            "unexpected `:`".into(),
            Some("only object entries have a `:`"),
        ),
        ParseErrorKind::UnterminatedObject => (
            "this `{` is never closed".into(),
            Some("add the matching `}`"),
        ),
        ParseErrorKind::UnterminatedArray => (
            "this `[` is never closed".into(),
            Some("add the matching `]`"),
        ),
        ParseErrorKind::UnterminatedCommentBlock => (
            "this `/*` comment is never closed".into(),
            Some("add `*/` where the comment ends"),
        ),
        ParseErrorKind::MultipleRootJsonValues => (
            "unexpected text after the end of the configuration".into(),
            Some(
                "the top-level object is already closed here; is there an extra `}` or `]` above?",
            ),
        ),
        ParseErrorKind::NestingDepthExceeded => {
            ("the configuration is nested too deeply".into(), None)
        }
        ParseErrorKind::String(kind) => (
            format!("invalid string: {}", lower_first(&kind.to_string())),
            None,
        ),
        other => (lower_first(&other.to_string()), None),
    };
    (span, message, hint.map(str::to_string))
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::error::{Diagnostic, Severity};

    fn ok(text: &str) -> Value {
        parse(text, "t").unwrap_or_else(|e| panic!("{e}")).value
    }

    fn err(text: &str) -> Diagnostic {
        let e = parse(text, "t").expect_err("should fail");
        e.diagnostics[0].clone()
    }

    #[test]
    fn json5_features_are_accepted() {
        let v = ok(
            "// comment\n{\n  /* block */ unquoted: 'single',\n  \"quoted\": 0x1F,\n  list: [1, 2,],\n  plus: +1, half: .5,\n}\n",
        );
        assert_eq!(
            v.get("unquoted").unwrap().value,
            Value::String("single".into())
        );
        match &v.get("quoted").unwrap().value {
            Value::Number(n) => {
                assert_eq!(n.value, 31.0);
                assert_eq!(n.raw, "0x1F");
            }
            other => panic!("{other:?}"),
        }
        match &v.get("list").unwrap().value {
            Value::Array(items) => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&v.get("half").unwrap().value, Value::Number(n) if n.value == 0.5));
    }

    #[test]
    fn spans_point_at_the_value_text() {
        let text = "{a: 'xy', b: [true]}";
        let root = parse(text, "t").unwrap();
        let a = root.value.get("a").unwrap();
        assert_eq!(&text[a.start..a.end], "'xy'");
        let b = root.value.get("b").unwrap();
        assert_eq!(&text[b.start..b.end], "[true]");
    }

    #[test]
    fn missing_comma_is_located_after_the_previous_value() {
        let d = err("{\n  a: 1\n  b: 2\n}");
        assert_eq!((d.line, d.column), (2, 7));
        assert!(d.message.contains("expected `,`"), "{d}");
    }

    #[test]
    fn empty_template_value_hints_at_unset_variable() {
        let d = err("{\n  port: ,\n}");
        assert_eq!((d.line, d.column), (2, 9));
        assert!(d.hint.unwrap().contains("unset"));
    }

    #[test]
    fn raw_line_break_in_string_is_rejected() {
        let d = err("{\n  a: \"one\ntwo\"\n}");
        assert_eq!(d.line, 2);
        assert!(d.message.contains("line break"), "{d}");
        // A backslash line continuation is fine.
        assert_eq!(
            ok("{a: \"one\\\ntwo\"}").get("a").unwrap().value,
            Value::String("onetwo".into())
        );
    }

    #[test]
    fn duplicate_keys_warn_and_the_last_one_wins() {
        let text = "{\n a: 1,\n b: {c: 1, c: 1},\n a: 3\n}";
        let mut rep = Reporter::new(text, "t");
        let root = parse_into(&mut rep).unwrap();
        assert!(matches!(&root.value.get("a").unwrap().value, Value::Number(n) if n.value == 3.0));
        let d = rep.into_diagnostics();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].severity, d[0].line), (Severity::Warning, 3));
        assert!(d[0].message.contains("same value as on line 3"), "{}", d[0]);
        assert!(
            d[1].message.contains("replaces the one on line 2"),
            "{}",
            d[1]
        );
    }

    #[test]
    fn unclosed_object_points_at_its_opening() {
        let d = err("{\n  jobs: [\n    {name: 'a'\n  ]\n}");
        assert!(d.line >= 1);
        let d = err("{a: {b: 1}");
        assert_eq!((d.line, d.column), (1, 1));
        assert!(d.message.contains("never closed"));
    }

    #[test]
    fn empty_text_is_an_error() {
        assert!(err("  // nothing\n").message.contains("empty"));
    }

    #[test]
    fn unquoted_word_value_suggests_quotes() {
        let d = err("{port: APPLICATION-PORT}");
        assert!(d.message.contains("APPLICATION"), "{d}");
        assert!(d.hint.unwrap().contains("quoted"));
    }

    #[test]
    fn line_col_counts_characters_and_clamps() {
        let text = "ab\nµc\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 5), (2, 2)); // after the two-byte µ
        assert_eq!(line_col(text, 4), (2, 1)); // inside µ: clamped back
        assert_eq!(line_col(text, 999), (3, 1));
    }
}
