//! The `logging` section: level, format and destination of autopilot's log.

use std::path::PathBuf;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::{LogFormat, LogLevel, LogOutput, LoggingConfig};
use crate::config::source::{Spanned, Value};
use crate::config::suggest;

pub(crate) const LOGGING_KEYS: &[&str] = &["level", "format", "output"];

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> LoggingConfig {
    let mut config = LoggingConfig::default();
    let Some(mut f) = Fields::open(v, path, "logging options", LOGGING_KEYS, rep) else {
        return config;
    };
    if let Some((text, v)) = text_key(&mut f, "level", rep) {
        match level(&text) {
            Some(l) => config.level = l,
            None => invalid(
                rep,
                v,
                &f.path_of("level"),
                "log level",
                &text,
                &["ERROR", "WARN", "INFO", "DEBUG"],
            ),
        }
    }
    if let Some((text, v)) = text_key(&mut f, "format", rep) {
        match text.to_ascii_lowercase().as_str() {
            "default" => config.format = LogFormat::Default,
            "text" => config.format = LogFormat::Text,
            "json" => config.format = LogFormat::Json,
            _ => invalid(
                rep,
                v,
                &f.path_of("format"),
                "log format",
                &text,
                &["default", "text", "json"],
            ),
        }
    }
    if let Some((text, _)) = text_key(&mut f, "output", rep) {
        config.output = match text.as_str() {
            "stdout" => LogOutput::Stdout,
            "stderr" => LogOutput::Stderr,
            file => LogOutput::File(PathBuf::from(file)),
        };
    }
    f.finish(rep, &no_special);
    config
}

/// A string key, with blank (an unset template variable) meaning "default".
fn text_key<'a>(
    f: &mut Fields<'a>,
    key: &str,
    rep: &mut Reporter<'_>,
) -> Option<(String, &'a Spanned<Value>)> {
    let v = f.get(key, rep).filter(|v| !values::is_blank(v))?;
    values::string(v, &f.path_of(key), rep).map(|s| (s.trim().to_string(), v))
}

/// Log levels as logrus (ContainerPilot's logger) parsed them, case-insensitively.
fn level(text: &str) -> Option<LogLevel> {
    match text.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => Some(LogLevel::Error),
        "warn" | "warning" => Some(LogLevel::Warn),
        "info" => Some(LogLevel::Info),
        "debug" | "trace" => Some(LogLevel::Debug),
        _ => None,
    }
}

fn invalid(
    rep: &mut Reporter<'_>,
    v: &Spanned<Value>,
    path: &str,
    what: &str,
    text: &str,
    choices: &[&str],
) {
    let hint = match suggest::closest(text, choices.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("write one of: {}", choices.join(", ")),
    };
    rep.error(
        v.span(),
        path,
        format!("unknown {what} {text:?}"),
        Some(hint),
    );
}
