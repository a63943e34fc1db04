//! Go `text/template` rendering of ContainerPilot configs.
//!
//! ContainerPilot runs its config file through Go's `text/template`, with the
//! environment as the data, before parsing it as JSON5; configs therefore say
//! things like `{{ .CONSUL | default "consul" }}`. This module implements the
//! part of that language configs use, plus ContainerPilot's extra functions
//! (`default`, `env`, `split`, `join`, `replaceAll`, `regexReplaceAll`, `loop`).
//!
//! It is hand-written rather than built on the `gtmpl` crate because gtmpl 0.7
//! gets the things that matter here wrong: an unset variable renders as
//! `<no value>` instead of the empty string ContainerPilot gives (Go's
//! `missingkey=zero` on a `map[string]string`), lists print as Rust debug output
//! (`[String("a")]` instead of `[a]`), parse errors carry a wrong line number
//! and no column, and execution errors carry no position at all.
//!
//! The pipeline runs in three steps: `lex` cuts the source into text and
//! action tokens, `parse` builds a tree (resolving function and variable
//! names, as Go does at parse time), and `eval` walks it against the
//! environment. `funcs` holds the functions, `printf` Go's `fmt` verbs and
//! `value` the values and how Go prints them.

mod eval;
mod funcs;
mod lex;
mod parse;
mod printf;
#[cfg(test)]
mod tests;
mod value;

use std::collections::HashMap;
use std::fmt;

/// The longest rendered config, and the longest value (a string, or a list
/// counted in bytes) any function may make: far beyond real configs, and
/// small enough that a runaway template fails fast with a clear error
/// instead of filling the memory of PID 1.
pub const MAX_RENDERED: usize = 4 << 20;

/// Every `range` iteration of one render, nested ones included.
pub const MAX_ITERATIONS: usize = 100_000;

/// Bytes of values one render may produce in all (each function result,
/// variable read and printed text counts), bounding its time.
pub const MAX_WORK: usize = 64 << 20;

/// Error with the 1-based line and column in the template source where it occurred.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

/// Render `source` with `env` as the data (dot = the env map).
pub fn render(source: &str, env: &HashMap<String, String>) -> Result<String, TemplateError> {
    let tree = parse::parse(source).map_err(|e| e.locate(source))?;
    eval::execute(&tree, env).map_err(|e| e.locate(source))
}

/// Renders `source` as ContainerPilot did: `.NAME` reads `data` (its parsed
/// environment), while the `env` function reads the real environment `env`.
pub fn render_split(
    source: &str,
    data: &HashMap<String, String>,
    env: &HashMap<String, String>,
) -> Result<String, TemplateError> {
    let tree = parse::parse(source).map_err(|e| e.locate(source))?;
    eval::execute_with(&tree, data, env).map_err(|e| e.locate(source))
}

/// An error at a byte offset of the source; turned into line and column only
/// when it leaves the module, so the inner stages just carry offsets around.
#[derive(Debug)]
struct PosError {
    pos: usize,
    message: String,
}

impl PosError {
    fn new(pos: usize, message: impl Into<String>) -> Self {
        PosError {
            pos,
            message: message.into(),
        }
    }

    /// Line and column (both 1-based, the column counted in characters).
    fn locate(self, source: &str) -> TemplateError {
        let mut pos = self.pos.min(source.len());
        while !source.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &source[..pos];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        TemplateError {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: self.message,
        }
    }
}
