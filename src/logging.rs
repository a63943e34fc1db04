//! Log lines in the formats ContainerPilot users configure (`logging` block).
//!
//! Supervisor messages come through the `log` facade; job output goes through
//! [`job_output`] so each line carries the job's name. The logger is the one
//! piece of process-wide state, like any logger: everything else is passed
//! explicitly.
//!
//! Logging never stalls the supervisor. A line is formatted where it is
//! logged, then handed to a bounded queue that one dedicated thread writes
//! out; when the output is slow or blocked (a full pipe nobody reads, a
//! stopped terminal) the queue fills and further lines are dropped and
//! counted, never waited for. Once the output moves again the writer says
//! how many were lost ("N log lines dropped"), so the gap is never silent.
//! Reaping, signals and deadlines run on the runtime thread and so never wait
//! on stdout. [`flush`] drains the queue at exit, within a time budget.

use crate::config::model::{LogFormat, LogLevel, LogOutput, LoggingConfig};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

/// Lines waiting for the writer, at most. At a few hundred bytes a line,
/// seconds of a busy app's output; beyond that a blocked output loses lines.
const QUEUE_LINES: usize = 4096;

/// Bytes waiting for the writer, at most (job output lines may be up to
/// 64 KiB each, so the line count alone would not bound memory).
const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// How long [`flush`] waits for the queue to drain at exit: a blocked output
/// must not keep a stopped container from exiting.
const FLUSH_BUDGET: Duration = Duration::from_secs(2);

/// Where a queued line goes; it travels with the line, so a reload that
/// changes the output never sends an old line to the new place.
#[derive(Clone)]
enum Sink {
    Stdout,
    Stderr,
    File(Arc<File>),
}

/// One formatted line on its way to its sink.
struct Queued {
    sink: Sink,
    line: String,
}

struct Logger {
    config: RwLock<LoggingConfig>,
    /// The sink lines are sent to now (follows `config.output`).
    sink: RwLock<Sink>,
    queue: Arc<LineQueue>,
    /// Whether the writer thread started; without it lines are written in
    /// place.
    writer_running: AtomicBool,
    /// Bytes in the queue now, for the [`QUEUE_BYTES`] bound.
    queued_bytes: Arc<AtomicUsize>,
    /// Lines dropped since the writer last reported them.
    dropped: Arc<AtomicU64>,
    /// Lines dropped since start, for anyone who counts them.
    dropped_total: AtomicU64,
    /// Lines accepted (queued or dropped) since start, for [`flush`].
    accepted: AtomicU64,
    /// Lines done with (written or dropped) since start, for [`flush`].
    progress: Arc<Progress>,
}

/// How far the writer got, and a way to wait for it.
#[derive(Default)]
struct Progress {
    done: Mutex<u64>,
    moved: Condvar,
}

impl Progress {
    fn advance(&self, n: u64) {
        *self.done.lock().unwrap() += n;
        self.moved.notify_all();
    }
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| {
        let queue = Arc::new(LineQueue::default());
        let logger = Logger {
            config: RwLock::new(LoggingConfig::default()),
            sink: RwLock::new(Sink::Stdout),
            queue: queue.clone(),
            writer_running: AtomicBool::new(false),
            queued_bytes: Arc::default(),
            dropped: Arc::default(),
            dropped_total: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            progress: Arc::default(),
        };
        let writer = Writer {
            lines: queue,
            queued_bytes: logger.queued_bytes.clone(),
            dropped: logger.dropped.clone(),
            progress: logger.progress.clone(),
        };
        // Without the thread nothing would be written: fall back to writing
        // in place (the old, blocking behaviour) rather than losing the log.
        match std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run())
        {
            Ok(_) => logger.writer_running.store(true, Ordering::SeqCst),
            Err(e) => {
                let _ = writeln!(io::stderr(), "autopilot: cannot start the log writer: {e}");
            }
        }
        logger
    })
}

/// Installs the logger with defaults (INFO, default format, stdout). Safe to
/// call more than once.
///
/// Also arranges for queued lines to be written when the process exits (by
/// returning from `main` or through `std::process::exit`), so the last words
/// before an exit ("cannot reach Consul: ...") are never lost.
pub fn init() {
    let l = logger();
    if log::set_logger(l).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
        extern "C" fn flush_at_exit() {
            flush();
        }
        // SAFETY: registers a plain function with no arguments; it only
        // waits (bounded) for the writer thread, which exit leaves running.
        unsafe {
            libc::atexit(flush_at_exit);
        }
    }
}

/// Applies a config's `logging` block. Fails if the log file cannot be opened.
pub fn configure(config: &LoggingConfig) -> io::Result<()> {
    let l = logger();
    let sink = match &config.output {
        LogOutput::File(path) => Sink::File(Arc::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )),
        LogOutput::Stdout => Sink::Stdout,
        LogOutput::Stderr => Sink::Stderr,
    };
    *l.sink.write().unwrap() = sink;
    *l.config.write().unwrap() = config.clone();
    Ok(())
}

/// Logs one line of a job's (or health check's) output.
pub fn job_output(source: &str, line: &str) {
    logger().write(log::Level::Info, source, line);
}

/// Waits until every line logged so far is written, at most [`FLUSH_BUDGET`]
/// (a blocked output must not hold up the exit). Runs at exit by itself.
pub fn flush() {
    let Some(l) = LOGGER.get() else { return };
    let target = l.accepted.load(Ordering::SeqCst);
    let done = l.progress.done.lock().unwrap();
    let _ = l
        .progress
        .moved
        .wait_timeout_while(done, FLUSH_BUDGET, |done| *done < target);
}

/// Log lines dropped since start because the output was not keeping up.
pub fn dropped_lines() -> u64 {
    LOGGER
        .get()
        .map_or(0, |l| l.dropped_total.load(Ordering::Relaxed))
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

    fn flush(&self) {
        flush();
    }
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
    /// Formats the line and queues it; never blocks on the output.
    fn write(&self, level: log::Level, source: &str, msg: &str) {
        let line = {
            let config = self.config.read().unwrap();
            if !level_allows(config.level, level) {
                return;
            }
            format_line(config.format, SystemTime::now(), level, source, msg)
        };
        let sink = self.sink.read().unwrap().clone();
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let size = line.len();
        if self.queued_bytes.fetch_add(size, Ordering::SeqCst) + size > QUEUE_BYTES {
            self.drop_line(size);
            return;
        }
        if !self.writer_running.load(Ordering::SeqCst) {
            // No writer thread: write in place rather than lose the log.
            self.queued_bytes.fetch_sub(size, Ordering::SeqCst);
            let _ = write_to(&sink, line.as_bytes());
            self.progress.advance(1);
        } else if !self.queue.try_push(Queued { sink, line }) {
            self.drop_line(size);
        }
    }

    fn drop_line(&self, size: usize) {
        self.queued_bytes.fetch_sub(size, Ordering::SeqCst);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        self.progress.advance(1);
    }
}

/// The lines waiting for the writer, at most [`QUEUE_LINES`].
///
/// A deque that grows with use rather than std's `sync_channel`, which
/// writes every one of its slots when made: about 190 KiB, 48 pages touched
/// before the first job starts and kept resident, for a queue that is empty
/// nearly always.
#[derive(Default)]
struct LineQueue {
    state: Mutex<QueueState>,
    filled: Condvar,
}

#[derive(Default)]
struct QueueState {
    lines: VecDeque<Queued>,
    /// The writer sleeps on `filled`: only then is a wake-up (a syscall)
    /// needed.
    writer_waiting: bool,
}

impl LineQueue {
    /// Queues `line`; false when the queue is full.
    fn try_push(&self, line: Queued) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.lines.len() >= QUEUE_LINES {
            return false;
        }
        state.lines.push_back(line);
        let wake = state.writer_waiting;
        drop(state);
        if wake {
            self.filled.notify_one();
        }
        true
    }

    /// The oldest line, waiting for one.
    fn pop(&self) -> Queued {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(line) = state.lines.pop_front() {
                state.writer_waiting = false;
                return line;
            }
            state.writer_waiting = true;
            state = self.filled.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The thread that writes queued lines out, and reports drops.
struct Writer {
    lines: Arc<LineQueue>,
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    progress: Arc<Progress>,
}

impl Writer {
    fn run(self) {
        loop {
            let Queued { sink, line } = self.lines.pop();
            let _ = write_to(&sink, line.as_bytes());
            self.queued_bytes.fetch_sub(line.len(), Ordering::SeqCst);
            // Reported once the output moves again, where the gap is.
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let _ = write_to(&sink, dropped_notice(dropped).as_bytes());
            }
            self.progress.advance(1);
        }
    }
}

/// The line that reports a gap, in the configured format.
fn dropped_notice(n: u64) -> String {
    let format = LOGGER
        .get()
        .map_or(LogFormat::Default, |l| l.config.read().unwrap().format);
    format_line(
        format,
        SystemTime::now(),
        log::Level::Warn,
        "autopilot",
        &format!(
            "{} dropped: the log output was not keeping up",
            plural(n, "log line", "log lines")
        ),
    )
}

fn write_to(sink: &Sink, bytes: &[u8]) -> io::Result<()> {
    match sink {
        Sink::Stdout => io::stdout().lock().write_all(bytes),
        Sink::Stderr => io::stderr().lock().write_all(bytes),
        Sink::File(file) => (&**file).write_all(bytes),
    }
}

/// A duration as people write it in messages: `200ms`, `1.2s`, `2m5s`, `1h3m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let secs = d.as_secs();
    match secs {
        _ if ms < 1000 => format!("{ms}ms"),
        0..10 => {
            let tenths = (ms + 50) / 100;
            if tenths.is_multiple_of(10) {
                format!("{}s", tenths / 10)
            } else {
                format!("{}.{}s", tenths / 10, tenths % 10)
            }
        }
        10..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        _ => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
    }
}

/// "1 line", "3 lines": a count with its noun in the right number.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
        LogFormat::Default => {
            // A program that names itself (`nginx: [warn] ...`) under a job
            // of the same name reads `nginx: [warn]`, not `nginx: nginx: ...`.
            let msg = msg
                .strip_prefix(source)
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(msg);
            format!("{ts} {:<5} {source}: {msg}\n", level.as_str())
        }
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
    fn a_line_that_names_its_source_is_not_prefixed_twice() {
        let line = format_line(
            LogFormat::Default,
            t(),
            log::Level::Info,
            "app",
            "app: working",
        );
        assert_eq!(line, "2023-11-14T22:13:20.123Z INFO  app: working\n");
        let line = format_line(
            LogFormat::Default,
            t(),
            log::Level::Info,
            "app",
            "application: x",
        );
        assert_eq!(line, "2023-11-14T22:13:20.123Z INFO  app: application: x\n");
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
    fn durations_read_as_people_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(human_duration(ms(200)), "200ms");
        assert_eq!(human_duration(ms(1_234)), "1.2s");
        assert_eq!(human_duration(ms(2_000)), "2s");
        assert_eq!(human_duration(ms(9_960)), "10s");
        assert_eq!(human_duration(ms(42_300)), "42s");
        assert_eq!(human_duration(ms(125_000)), "2m5s");
        assert_eq!(human_duration(ms(3_780_000)), "1h3m");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "job", "jobs"), "1 job");
        assert_eq!(plural(0, "job", "jobs"), "0 jobs");
    }

    #[test]
    fn levels_filter() {
        assert!(level_allows(LogLevel::Info, log::Level::Warn));
        assert!(!level_allows(LogLevel::Info, log::Level::Debug));
        assert!(level_allows(LogLevel::Debug, log::Level::Debug));
        assert!(!level_allows(LogLevel::Error, log::Level::Warn));
    }
}
