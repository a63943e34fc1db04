//! What a configuration will do, in words: the plan `autopilot check` prints.
//!
//! ContainerPilot configs are a web of events (`preStop` runs when `app` emits
//! `stopping`, `onChange` each time `watch.db` emits `changed`), and a typo in a
//! `source` leaves a job waiting forever without a word. Like Terraform's
//! plan, this spells out for each job what starts it, how it restarts, how it
//! is checked and registered, and which jobs react to it, then warns about
//! waits that can never end. The text is meant for humans and kept stable, one
//! fact per line, so tests can assert on it.
//!
//! `describe` writes the lines, `warnings` finds what will not work; who
//! emits which event comes from [`crate::events::publishers`].

mod describe;
#[cfg(test)]
mod tests;
mod warnings;

use std::fmt;

use crate::config::error::{Diagnostic, Severity};
use crate::config::model::Config;
pub use describe::describe_start;
use describe::{describe_job, describe_watch, overview};
use warnings::check;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something will not work as written.
    Warning,
    /// Worth knowing, probably harmless.
    Info,
}

/// A finding about the configuration as a whole, at the line of the job or
/// watch it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanWarning {
    pub level: Level,
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Info => "info",
        };
        write!(f, "{level}: line {}: {}", self.line, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

impl PlanWarning {
    /// The finding in the located, excerpted form of config errors
    /// (`file:line:col`, the source line, a caret), for `text` (the rendered
    /// config) read from `file`.
    pub fn diagnostic(&self, text: &str, file: &str) -> Diagnostic {
        let excerpt = text
            .split('\n')
            .nth(self.line.saturating_sub(1))
            .unwrap_or("");
        let indent = excerpt.len() - excerpt.trim_start().len();
        let column = excerpt[..indent].chars().count() + 1;
        let width = excerpt.trim().chars().count();
        let mut d = Diagnostic::at_line_col(
            text,
            file,
            (self.line, column),
            width,
            self.message.clone(),
            self.hint.clone(),
        );
        d.severity = match self.level {
            Level::Warning => Severity::Warning,
            // Diagnostics have no "info" level; callers print infos as plan lines.
            Level::Info => Severity::Warning,
        };
        d
    }
}

/// The plan: description lines, then findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lines: Vec<String>,
    pub warnings: Vec<PlanWarning>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(f)?;
            for w in &self.warnings {
                writeln!(f, "{w}")?;
            }
        }
        Ok(())
    }
}

pub fn plan(config: &Config) -> Plan {
    let mut lines = overview(config);
    for job in &config.jobs {
        lines.push(String::new());
        describe_job(config, job, &mut lines);
    }
    for watch in &config.watches {
        lines.push(String::new());
        describe_watch(config, watch, &mut lines);
    }
    let mut warnings = check(config);
    warnings.sort_by_key(|w| (w.line, w.level));
    Plan { lines, warnings }
}

/// Label column width, so values line up.
fn row(label: &str, value: impl fmt::Display) -> String {
    format!("  {label:<9} {value}")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The plan without what a migration changes: line numbers, and the two
/// rows that say a config is ContainerPilot 2. Tests compare a config's plan
/// with its migration's through this.
#[cfg(test)]
pub(crate) fn comparable_plan(c: &Config) -> String {
    let plan = plan(c).to_string();
    let line = regex::Regex::new(r"\((line \d+|the app on the command line|not in the file)\)")
        .expect("regex");
    let warning = regex::Regex::new(r"^(warning|info): line \d+:").expect("regex");
    plan.lines()
        .filter(|l| !l.starts_with("  format ") && !l.starts_with("  signals "))
        .map(|l| warning.replace(&line.replace(l, "(…)"), "$1:").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
