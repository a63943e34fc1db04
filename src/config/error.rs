//! Configuration diagnostics: what is wrong, where, and how to fix it.
//!
//! ContainerPilot gave syntax errors a position but lost it for everything
//! else ("unknown config keys: [...]"). Here every problem, syntax or semantic,
//! becomes a [`Diagnostic`] with the key path, `line:col`, the source line and
//! a hint, and loading collects *all* of them before giving up, so one run of
//! `autopilot check` shows every mistake at once.

use std::fmt;

use super::source::{Span, line_col};

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
    /// The source line the position is on, without its line break.
    pub excerpt: String,
    /// How many characters of `excerpt` to underline (at least 1 when located).
    pub caret_len: usize,
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
        let (line, column) = line_col(text, span.start);
        let excerpt = line_text(text, line).to_string();
        let start_char = column - 1;
        let line_chars = excerpt.chars().count();
        let start = span.start.min(text.len());
        let span_chars = text
            .get(start..span.end.clamp(start, text.len()))
            .map(|s| s.chars().count())
            .unwrap_or(1);
        let caret_len = span_chars.min(line_chars.saturating_sub(start_char)).max(1);
        Diagnostic {
            severity,
            file: file.to_string(),
            line,
            column,
            path: path.to_string(),
            message: message.into(),
            hint,
            excerpt,
            caret_len,
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
        let excerpt = line_text(text, line).to_string();
        let column = column.max(1);
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line,
            column,
            path: String::new(),
            message: message.into(),
            hint,
            excerpt,
            caret_len: caret_len.max(1),
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
            caret_len: 0,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
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
            // Keep tabs so the carets line up under the excerpt.
            let lead: String = self
                .excerpt
                .chars()
                .take(self.column - 1)
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

    pub fn error_count(&self) -> usize {
        self.errors().count()
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
pub struct Reporter<'t> {
    text: &'t str,
    file: String,
    diagnostics: Vec<Diagnostic>,
}

impl<'t> Reporter<'t> {
    pub fn new(text: &'t str, file: &str) -> Reporter<'t> {
        Reporter {
            text,
            file: file.to_string(),
            diagnostics: Vec::new(),
        }
    }

    pub fn text(&self) -> &'t str {
        self.text
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
        self.diagnostics.push(Diagnostic::at(
            severity, self.text, &self.file, span, path, message, hint,
        ));
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics, sorted by position (stable, so equal positions keep
    /// the order they were found in).
    pub fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        self.diagnostics
    }
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
