//! Log lines in the formats ContainerPilot users configure (`logging` block).
//!
//! Supervisor messages come through the `log` facade; job output goes through
//! [`job_output`] so each line carries the job's name. The logger is the one
//! piece of process-wide state, like any logger: everything else is passed
//! explicitly.

use crate::config::model::{LogFormat, LogLevel, LogOutput, LoggingConfig};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::SystemTime;

struct Logger {
    config: RwLock<LoggingConfig>,
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        config: RwLock::new(LoggingConfig::default()),
        file: Mutex::new(None),
    })
}

/// Installs the logger with defaults (INFO, default format, stdout). Safe to
/// call more than once.
pub fn init() {
    let l = logger();
    if log::set_logger(l).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Applies a config's `logging` block. Fails if the log file cannot be opened.
pub fn configure(config: &LoggingConfig) -> io::Result<()> {
    let l = logger();
    let file = match &config.output {
        LogOutput::File(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
        _ => None,
    };
    *l.file.lock().unwrap() = file;
    *l.config.write().unwrap() = config.clone();
    Ok(())
}

/// Logs one line of a job's (or health check's) output.
pub fn job_output(source: &str, line: &str) {
    logger().write(log::Level::Info, source, line);
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        level_allows(self.config.read().unwrap().level, metadata.level())
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            self.write(record.level(), "autopilot", &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn level_allows(configured: LogLevel, level: log::Level) -> bool {
    let wanted = match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug | log::Level::Trace => LogLevel::Debug,
    };
    wanted <= configured
}

impl Logger {
    fn write(&self, level: log::Level, source: &str, msg: &str) {
        let config = self.config.read().unwrap();
        if !level_allows(config.level, level) {
            return;
        }
        let line = format_line(config.format, SystemTime::now(), level, source, msg);
        let _ = match &config.output {
            LogOutput::Stdout => io::stdout().lock().write_all(line.as_bytes()),
            LogOutput::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            LogOutput::File(_) => match self.file.lock().unwrap().as_mut() {
                Some(f) => f.write_all(line.as_bytes()),
                None => Ok(()),
            },
        };
    }
}

/// Renders one log line, newline included.
fn format_line(
    format: LogFormat,
    time: SystemTime,
    level: log::Level,
    source: &str,
    msg: &str,
) -> String {
    let ts = humantime::format_rfc3339_millis(time);
    let lvl = level.as_str().to_ascii_lowercase();
    match format {
        LogFormat::Default => format!("{ts} {:<5} {source}: {msg}\n", level.as_str()),
        LogFormat::Text => format!(
            "time=\"{ts}\" level={lvl} source={} msg={}\n",
            logfmt_value(source),
            logfmt_value(msg)
        ),
        LogFormat::Json => {
            let obj = serde_json::json!({
                "time": ts.to_string(), "level": lvl, "source": source, "msg": msg,
            });
            format!("{obj}\n")
        }
    }
}

/// Quotes a logfmt value when it needs it.
fn logfmt_value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
    {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn t() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    #[test]
    fn default_format_names_level_and_source() {
        let line = format_line(LogFormat::Default, t(), log::Level::Info, "app", "hello");
        assert_eq!(line, "2023-11-14T22:13:20.123Z INFO  app: hello\n");
    }

    #[test]
    fn text_format_is_logfmt() {
        let line = format_line(LogFormat::Text, t(), log::Level::Warn, "app", "a \"b\"");
        assert_eq!(
            line,
            "time=\"2023-11-14T22:13:20.123Z\" level=warn source=app msg=\"a \\\"b\\\"\"\n"
        );
    }

    #[test]
    fn json_format_is_one_object_per_line() {
        let line = format_line(LogFormat::Json, t(), log::Level::Error, "app", "x");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["source"], "app");
        assert_eq!(v["msg"], "x");
    }

    #[test]
    fn levels_filter() {
        assert!(level_allows(LogLevel::Info, log::Level::Warn));
        assert!(!level_allows(LogLevel::Info, log::Level::Debug));
        assert!(level_allows(LogLevel::Debug, log::Level::Debug));
        assert!(!level_allows(LogLevel::Error, log::Level::Warn));
    }
}
