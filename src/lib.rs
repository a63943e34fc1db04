//! autopilot: an in-container supervisor for the Autopilot Pattern.
//!
//! Components, from the outside in:
//! - [`cli`]: command-line parsing (ContainerPilot-style flags) and the
//!   subcommands that talk to a running autopilot or to Consul;
//! - [`config`]: template rendering, JSON5 parsing, validation into typed config;
//! - [`plan`]: the human-readable plan `autopilot check` prints;
//! - [`supervisor`]: PID-1 duties, signals, shutdown sequence, exit code;
//! - [`jobs`]: each job's state machine, runner and health checks;
//! - [`events`]: the ordered, non-blocking event bus;
//! - [`journal`]: the recent events and job state changes, for `autopilot events`;
//! - [`process`]: spawning in process groups and the single reaper;
//! - [`environ`]: the environment handed to children;
//! - [`discovery`]: service registration (Consul);
//! - [`coordination`]: leader election, Consul KV and sessions;
//! - [`control`]: the control socket (HTTP over a unix socket);
//! - [`telemetry`]: Prometheus metrics and the telemetry endpoint;
//! - [`http`]: the HTTP/1.1 plumbing shared by control, telemetry and the
//!   subcommands, and the outbound client of Consul calls and health checks;
//! - [`logging`]: log formats, written off the runtime thread from a bounded queue.
//!
//! Imports run one way, down these layers (`layering_tests` checks it):
//! `events journal process environ config logging http` <- `plan jobs` <-
//! `discovery` <- `coordination` <- `supervisor` <- `control telemetry` <-
//! `cli` and main.rs.

pub mod cli;
pub mod config;
pub mod control;
pub mod coordination;
pub mod discovery;
pub mod environ;
pub mod events;
pub mod http;
pub mod jobs;
pub mod journal;
pub mod logging;
pub mod plan;
pub mod process;
pub mod supervisor;
pub mod telemetry;

#[cfg(test)]
mod layering_tests;
