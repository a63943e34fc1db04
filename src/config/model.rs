//! The validated, typed configuration that the rest of autopilot runs on.
//!
//! Everything here has already been checked: durations parsed, defaults applied,
//! cross references resolved. Parsing and error reporting live in `decode`.

use crate::events::EventCode;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default for the top-level `stopTimeout`: how long the whole shutdown may take
/// before every remaining process is killed. Fits Docker's 10 s stop window.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default control socket path, as ContainerPilot.
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/containerpilot.socket";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `None`: run without service discovery.
    pub consul: Option<ConsulConfig>,
    pub logging: LoggingConfig,
    pub control: ControlConfig,
    /// Budget for the whole shutdown sequence (top-level `stopTimeout`).
    pub stop_timeout: Duration,
    pub jobs: Vec<JobConfig>,
    pub watches: Vec<WatchConfig>,
    pub telemetry: Option<TelemetryConfig>,
    /// Which ContainerPilot generation's signal meanings apply: a translated
    /// ContainerPilot 2 config keeps version 2's (docs/v2.md, "Signals").
    pub signals: SignalMode,
}

/// What SIGUSR1 and SIGHUP mean. ContainerPilot 2 and 3 disagree, and an
/// image written for one relies on its meaning, so the config's generation
/// decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalMode {
    /// ContainerPilot 3: SIGHUP (and SIGUSR2) are events jobs can react to;
    /// SIGUSR1 is forwarded to the main job.
    #[default]
    V3,
    /// ContainerPilot 2: SIGUSR1 toggles maintenance mode, SIGHUP reloads
    /// the configuration file.
    V2,
    /// `autopilot -- CMD` (like tini): every signal but SIGTERM goes to the
    /// main job's process group as it is; SIGTERM stops it as usual.
    Forward,
}

/// Where and how to reach Consul. The address is kept as written; the
/// discovery module resolves scheme, environment overrides and TLS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsulConfig {
    /// `host:port` or a URL.
    pub address: String,
    pub scheme: Option<String>,
    pub token: Option<String>,
    pub tls: Option<ConsulTls>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsulTls {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub server_name: Option<String>,
    /// TLS verification is on unless turned off explicitly.
    pub verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2006-01-02T15:04:05Z LEVEL source: message`
    Default,
    /// logfmt: `time=... level=... msg="..." job=...`
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub level: LogLevel,
    pub format: LogFormat,
    pub output: LogOutput,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: LogLevel::Info,
            format: LogFormat::Default,
            output: LogOutput::Stdout,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
        }
    }
}

/// A command line: the program and its arguments. A string in the config is
/// split on whitespace, as ContainerPilot did; an array is taken as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub program: String,
    pub args: Vec<String>,
}

impl Exec {
    /// The whole command line, for logs and the plan; words with spaces or
    /// quotes are single-quoted so the line reads like a shell command.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(self.args.iter())
            .map(|w| {
                if !w.is_empty() && !w.contains([' ', '\t', '\'', '"', '\n']) {
                    w.clone()
                } else {
                    format!("'{}'", w.replace('\'', "'\\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How many times a job's process is started again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarts {
    Never,
    Limit(u32),
    Unlimited,
}

/// Which events start a job: one code from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    pub code: EventCode,
    /// The publisher's name (`setup`, `watch.db`, `global`, `SIGHUP`).
    pub source: String,
}

/// `once` starts the job the first time the event arrives; `each`, every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Once,
    Each,
}

/// When a job starts (the `when` block).
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// No `when`: start on the global `startup` event.
    Startup,
    /// `source` + `once`/`each`, with an optional `timeout` to give up waiting.
    Event {
        pattern: EventPattern,
        repeat: Repeat,
        timeout: Option<Duration>,
    },
    /// `interval`: run periodically from startup.
    Interval(Duration),
}

/// How a job's health is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// Run a command; exit 0 is healthy.
    Exec(Exec),
    /// GET a URL; a status in `ok_status` is healthy.
    Http {
        url: String,
        ok_status: std::ops::RangeInclusive<u16>,
    },
    /// Connect to `host:port`.
    Tcp { address: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub check: HealthCheck,
    /// Time between checks (`health.interval`, seconds).
    pub interval: Duration,
    /// TTL of a passing check in Consul (`health.ttl`, seconds).
    pub ttl: Duration,
    /// How long one check may run before it is killed (default: interval).
    pub timeout: Duration,
    /// Pass the check's output through untouched instead of logging it.
    pub logging_raw: bool,
}

/// Consul registration of a job (present when the job has a `port`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceConfig {
    pub port: u16,
    pub tags: Vec<String>,
    /// Interface specs, ContainerPilot style (`eth0`, `inet6`, `static:IP`, CIDR...).
    pub interfaces: Vec<String>,
    pub enable_tag_override: bool,
    /// Go duration string, passed to Consul as is.
    pub deregister_critical_service_after: Option<String>,
    /// `passing`, `warning` or `critical`; `None` lets Consul decide (critical).
    pub initial_status: Option<String>,
    pub meta: BTreeMap<String, String>,
}

/// Delay between restarts of a crashing job: starts at `initial`, doubles up to
/// `max`, and is reset once the job has run for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            reset_after: Duration::from_secs(10),
        }
    }
}

/// Leadership of a Consul KV key (coordination feature).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderConfig {
    pub key: String,
    pub ttl: Duration,
    pub lock_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub name: String,
    /// `None` for a job that only advertises a service or reacts to events
    /// without a process of its own.
    pub exec: Option<Exec>,
    pub when: When,
    pub restarts: Restarts,
    pub backoff: Backoff,
    /// Kill the process if it runs longer than this.
    pub timeout: Option<Duration>,
    /// Time between `stopping` and killing the process on shutdown.
    pub stop_timeout: Option<Duration>,
    pub health: Option<HealthConfig>,
    pub service: Option<ServiceConfig>,
    pub leader: Option<LeaderConfig>,
    /// Pass the job's output through untouched instead of logging it.
    pub logging_raw: bool,
    /// The container's exit code follows this job (see README "Exit codes").
    pub main: bool,
    /// `exitOnFailure`: when this job ends for good with a failure (before
    /// shutdown), autopilot shuts down and exits with the job's exit code. A
    /// failing `preStart` hook stops the container this way, as in
    /// ContainerPilot 2.
    pub exit_on_failure: bool,
    /// 1-based line of the job's definition in the rendered config, for the plan.
    pub line: usize,
}

impl JobConfig {
    /// A job named `name` with every setting at its default: no process,
    /// started at startup, never restarted, not advertised.
    pub fn named(name: impl Into<String>) -> JobConfig {
        JobConfig {
            name: name.into(),
            exec: None,
            when: When::Startup,
            restarts: Restarts::Never,
            backoff: Backoff::default(),
            timeout: None,
            stop_timeout: None,
            health: None,
            service: None,
            leader: None,
            logging_raw: false,
            main: false,
            exit_on_failure: false,
            line: 0,
        }
    }
}

/// What a watch follows in Consul.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchTarget {
    /// Healthy instances of a service, optionally filtered by tag and datacenter.
    Service {
        service: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    /// One KV key.
    Key { key: String, dc: Option<String> },
    /// Every key under a prefix.
    Prefix { prefix: String, dc: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// The name as written; events come from `watch.<name>`.
    pub name: String,
    pub target: WatchTarget,
    /// Minimum spacing between two events from this watch.
    pub interval: Duration,
    pub line: usize,
}

impl WatchConfig {
    /// The event source name of this watch.
    pub fn source(&self) -> String {
        format!("watch.{}", self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    pub namespace: String,
    pub subsystem: String,
    pub name: String,
    pub help: String,
    pub kind: MetricType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    pub port: u16,
    pub interfaces: Vec<String>,
    pub tags: Vec<String>,
    pub metrics: Vec<MetricConfig>,
}
