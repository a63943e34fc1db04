//! autopilot: an in-container supervisor for the Autopilot Pattern.
//!
//! Components, from the outside in:
//! - [`cli`]: command-line parsing (ContainerPilot-style flags);
//! - [`config`]: template rendering, JSON5 parsing, validation into typed config;
//! - [`plan`]: the human-readable plan `autopilot check` prints;
//! - [`supervisor`]: PID-1 duties, signals, shutdown sequence, exit code;
//! - [`jobs`]: each job's state machine, runner and health checks;
//! - [`events`]: the ordered, non-blocking event bus;
//! - [`http_client`]: the small HTTP client of Consul calls and HTTP health checks;
//! - [`journal`]: the recent events and job state changes, for `autopilot events`;
//! - [`process`]: spawning in process groups and the single reaper;
//! - [`environ`]: the environment handed to children;
//! - [`discovery`]: service registration (Consul);
//! - [`coordination`]: leader election, KV and lock commands, live service tags;
//! - [`control`]: the control socket (HTTP over a unix socket) and its subcommands;
//! - [`telemetry`]: Prometheus metrics and the telemetry endpoint;
//! - [`logging`]: log formats, written off the runtime thread from a bounded queue.

pub mod cli;
pub mod config;
pub mod control;
pub mod coordination;
pub mod discovery;
pub mod environ;
pub mod events;
pub mod http_client;
pub mod jobs;
pub mod journal;
pub mod logging;
pub mod plan;
pub mod process;
pub mod supervisor;
pub mod telemetry;
