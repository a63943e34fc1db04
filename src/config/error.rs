//! Configuration diagnostics: what is wrong, where, and how to fix it.
//!
//! ContainerPilot gave syntax errors a position but lost it for everything
//! else ("unknown config keys: [...]"). Here every problem, syntax or semantic,
//! becomes a [`Diagnostic`] with the key path, `line:col`, the source line and
//! a hint, and loading collects *all* of them before giving up, so one run of
//! `autopilot check` shows every mistake at once.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;

use super::source::{Span, line_col};

/// At most this many characters of the source line are shown on either side
/// of a problem: a config written on one long line (JSON in `CONTAINERPILOT`)
/// must not turn every diagnostic into a copy of the whole file.
pub const EXCERPT_CONTEXT: usize = 60;

/// Diagnostics with the same message at the same place in a list (`jobs[3]`
/// and `jobs[7]` alike) beyond this many are summarized in one line.
pub const MAX_REPEATS: usize = 3;

/// At most this many diagnostics are kept from one load; the rest are counted
/// in a final summary, so output stays bounded whatever the input.
pub const MAX_DIAGNOSTICS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in a configuration file, located in the text it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as the user named it (or a label such as `<inline>`).
    pub file: String,
    /// 1-based; 0 when the problem has no position (an unreadable file).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Key path of the offending value (`jobs[1].health.interval`); empty for
    /// syntax and template errors.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// The source line the position is on, without its line break; only the
    /// part within [`EXCERPT_CONTEXT`] characters of the problem, with `…`
    /// where the line was cut.
    pub excerpt: String,
    /// How many characters of the line the leading `…` stands for (0: none).
    pub excerpt_from: usize,
    /// How many characters of `excerpt` to underline (at least 1 when located).
    pub caret_len: usize,
    /// For the summary of problems left out: how many errors it stands for.
    pub errors_left_out: usize,
}

impl Diagnostic {
    /// A diagnostic for the byte range `span` of `text`.
    pub fn at(
        severity: Severity,
        text: &str,
        file: &str,
        span: Span,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, _) = line_col(text, span.start);
        Self::on_line(severity, text, file, span, line, path, message.into(), hint)
    }

    /// [`Diagnostic::at`] when the line of `span.start` is already known.
    #[allow(clippy::too_many_arguments)]
    fn on_line(
        severity: Severity,
        text: &str,
        file: &str,
        span: Span,
        line: usize,
        path: &str,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_str = line_text(&text[line_start..], 1);
        let start_char = text[line_start..start].chars().count();
        // The underline stops at the end of the line: count no further.
        let end = span.end.clamp(start, line_start + line_str.len());
        let span_chars = text.get(start..end).map_or(1, |s| s.chars().count());
        let caret_len = span_chars.max(1);
        let (excerpt, excerpt_from, caret_len) = window(line_str, start_char, caret_len);
        Diagnostic {
            severity,
            file: file.to_string(),
            line,
            column: start_char + 1,
            path: path.to_string(),
            message,
            hint,
            excerpt,
            excerpt_from,
            caret_len,
            errors_left_out: 0,
        }
    }

    /// An error at a known 1-based `(line, column)` of `text` (used for
    /// template errors, which report positions rather than offsets).
    pub fn at_line_col(
        text: &str,
        file: &str,
        (line, column): (usize, usize),
        caret_len: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let line = line.max(1);
        let column = column.max(1);
        let (excerpt, excerpt_from, caret_len) =
            window(line_text(text, line), column - 1, caret_len.max(1));
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line,
            column,
            path: String::new(),
            message: message.into(),
            hint,
            excerpt,
            excerpt_from,
            caret_len,
            errors_left_out: 0,
        }
    }

    /// A diagnostic with no position: the file could not be read at all.
    pub fn unlocated(file: &str, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: message.into(),
            hint,
            excerpt: String::new(),
            excerpt_from: 0,
            caret_len: 0,
            errors_left_out: 0,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The part of `line` shown for a problem at character `start` underlined
/// for `caret_len` characters: at most [`EXCERPT_CONTEXT`] characters either
/// side, `…` where it was cut. Also gives how many characters the leading `…`
/// replaces and the underline clipped to what is shown (at least 1).
fn window(line: &str, start: usize, caret_len: usize) -> (String, usize, usize) {
    let caret_len = caret_len.clamp(1, EXCERPT_CONTEXT);
    let from = start.saturating_sub(EXCERPT_CONTEXT);
    let take = start - from + caret_len + EXCERPT_CONTEXT;
    let mut chars = line.chars().skip(from);
    let mut excerpt = String::new();
    if from > 0 {
        excerpt.push('\u{2026}');
    }
    excerpt.extend(chars.by_ref().take(take));
    if chars.next().is_some() {
        excerpt.push('\u{2026}');
    }
    let shown_after_start = line.chars().count().saturating_sub(start).min(take);
    (excerpt, from, caret_len.min(shown_after_start).max(1))
}

/// The text of 1-based line `line` (empty past the end).
fn line_text(text: &str, line: usize) -> &str {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or("")
}

impl fmt::Display for Diagnostic {
    /// A compact, rustc-like rendering:
    ///
    /// ```text
    /// error: jobs[1].health.interval: must be greater than 0
    ///   --> /etc/containerpilot.json5:12:17
    ///    |
    /// 12 |       interval: 0,
    ///    |                 ^
    ///    = help: checks run every `interval` seconds; write `interval: 5`
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        if self.line == 0 {
            write!(f, "\n{pad}--> {}", self.file)?;
        } else {
            write!(f, "\n{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
            write!(f, "\n{pad} |")?;
            write!(f, "\n{number} | {}", self.excerpt)?;
            // Keep tabs so the carets line up under the excerpt (whose `…`
            // stands for `excerpt_from` characters).
            let marker = usize::from(self.excerpt_from > 0);
            let lead: String = self
                .excerpt
                .chars()
                .take(self.column.saturating_sub(1 + self.excerpt_from) + marker)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{pad} | {lead}{}", "^".repeat(self.caret_len))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{pad} = help: {hint}")?;
        }
        Ok(())
    }
}

/// Loading failed. Holds every problem found, errors and warnings, in the
/// order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    pub fn single(diagnostic: Diagnostic) -> ConfigError {
        ConfigError {
            diagnostics: vec![diagnostic],
        }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// How many errors were found, those left out of the list included.
    pub fn error_count(&self) -> usize {
        self.errors()
            .map(|d| {
                if d.errors_left_out > 0 {
                    d.errors_left_out
                } else {
                    1
                }
            })
            .sum()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        let errors = self.error_count();
        if errors > 1 {
            write!(f, "\n\nerror: the configuration has {errors} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects diagnostics against one text (the rendered configuration).
///
/// Problems are recorded cheaply (a span and a message) and become
/// [`Diagnostic`]s only at the end, after repeats are summarized and the
/// total is capped: the cost of reporting stays linear in the input, however
/// many problems a generated config has.
pub struct Reporter<'t> {
    text: &'t str,
    file: String,
    problems: Vec<Problem>,
    /// Byte offset where each line starts, built on first use.
    line_starts: OnceCell<Vec<usize>>,
}

/// A problem as reported, before it is located and rendered.
struct Problem {
    severity: Severity,
    span: Span,
    path: String,
    message: String,
    hint: Option<String>,
}

impl<'t> Reporter<'t> {
    pub fn new(text: &'t str, file: &str) -> Reporter<'t> {
        Reporter {
            text,
            file: file.to_string(),
            problems: Vec::new(),
            line_starts: OnceCell::new(),
        }
    }

    pub fn text(&self) -> &'t str {
        self.text
    }

    /// The 1-based line of a byte offset, in logarithmic time.
    pub fn line_of(&self, offset: usize) -> usize {
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        starts.partition_point(|&start| start <= offset).max(1)
    }

    pub fn error(
        &mut self,
        span: Span,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Severity::Error, span, path, message.into(), hint);
    }

    pub fn warning(
        &mut self,
        span: Span,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Severity::Warning, span, path, message.into(), hint);
    }

    fn push(
        &mut self,
        severity: Severity,
        span: Span,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            severity,
            span,
            path: path.to_string(),
            message,
            hint,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// All diagnostics, sorted by position (stable, so equal positions keep
    /// the order they were found in). Beyond [`MAX_REPEATS`] of the same
    /// message at the same place in a list, and beyond [`MAX_DIAGNOSTICS`]
    /// in all, the rest are counted in one summary each.
    pub fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.problems.sort_by_key(|p| p.span.start);
        // Per kind of problem: how many so far, and the last one kept.
        let mut kinds: HashMap<(String, &str), (usize, Option<usize>)> = HashMap::new();
        let mut kept: Vec<&Problem> = Vec::new();
        // Per kept problem: how many more of its kind were left out.
        let mut more_like: HashMap<usize, usize> = HashMap::new();
        let mut dropped = [0usize; 2];
        for problem in &self.problems {
            let kind = (without_indexes(&problem.path), problem.message.as_str());
            let (count, last_kept) = kinds.entry(kind).or_insert((0, None));
            *count += 1;
            match last_kept {
                Some(index) if *count > MAX_REPEATS => {
                    *more_like.entry(*index).or_default() += 1;
                }
                _ if kept.len() >= MAX_DIAGNOSTICS => dropped[problem.severity as usize] += 1,
                _ => {
                    *last_kept = Some(kept.len());
                    kept.push(problem);
                }
            }
        }
        let mut diagnostics: Vec<Diagnostic> = kept
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut d = Diagnostic::on_line(
                    p.severity,
                    self.text,
                    &self.file,
                    p.span,
                    self.line_of(p.span.start),
                    &p.path,
                    p.message.clone(),
                    p.hint.clone(),
                );
                if let Some(more) = more_like.get(&i) {
                    let like = if p.path.is_empty() {
                        "the same message".to_string()
                    } else {
                        format!("the same message at `{}`", without_indexes(&p.path))
                    };
                    d.message
                        .push_str(&format!(" (and {more} more like this: {like})"));
                }
                d
            })
            .collect();
        let [errors, warnings] = dropped;
        if errors + warnings > 0 {
            let mut summary = Diagnostic::unlocated(
                &self.file,
                format!(
                    "{errors} more errors and {warnings} more warnings are not shown \
                     (only the first {MAX_DIAGNOSTICS} problems are)"
                ),
                Some("fix the problems shown and check again".into()),
            );
            summary.errors_left_out = errors;
            if errors == 0 {
                summary.severity = Severity::Warning;
            }
            diagnostics.push(summary);
        }
        diagnostics
    }
}

/// A key path with its list indexes blanked (`jobs[3].name` → `jobs[].name`),
/// so the same problem in every element of a list counts as one kind.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index && c.is_ascii_digit() => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let text = "{\n  jobs: [\n    { interval: \"5s\", }\n  ]\n}\n";
        let start = text.find("\"5s\"").unwrap();
        let d = Diagnostic::at(
            Severity::Error,
            text,
            "/etc/cp.json5",
            Span::new(start, start + 4),
            "jobs[0].interval",
            "expected whole seconds, found \"5s\"",
            Some("write `interval: 5`".into()),
        );
        let shown = d.to_string();
        let expected = "error: jobs[0].interval: expected whole seconds, found \"5s\"\n \
                        --> /etc/cp.json5:3:17\n  |\n3 |     { interval: \"5s\", }\n  \
                        |                 ^^^^\n  = help: write `interval: 5`";
        assert_eq!(shown, expected);
    }

    #[test]
    fn carets_follow_tabs_and_stop_at_line_end() {
        let text = "{\n\tname: \"a\nb\"}";
        let start = text.find("\"a").unwrap();
        let d = Diagnostic::at(
            Severity::Warning,
            text,
            "f",
            Span::new(start, text.len()),
            "name",
            "m",
            None,
        );
        assert_eq!((d.line, d.column, d.caret_len), (2, 8, 2));
        assert!(d.to_string().contains("\n  | \t      ^^"), "{d}");
    }

    #[test]
    fn unlocated_errors_name_the_file() {
        let d = Diagnostic::unlocated("/nope.json5", "cannot read the file", None);
        assert_eq!(
            d.to_string(),
            "error: cannot read the file\n --> /nope.json5"
        );
    }

    #[test]
    fn offsets_past_the_end_do_not_panic() {
        let d = Diagnostic::at(
            Severity::Error,
            "ab",
            "f",
            Span::new(99, 120),
            "",
            "m",
            None,
        );
        assert_eq!(d.line, 1);
        let d = Diagnostic::at(Severity::Error, "", "f", Span::new(0, 0), "", "m", None);
        assert_eq!((d.line, d.column, d.caret_len), (1, 1, 1));
    }
}
