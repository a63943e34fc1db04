//! Jobs: the state machine, its runner, health checks, the status view and
//! the registry interface the runner calls.

pub mod health;
pub mod machine;
pub mod narrate;
pub mod registry;
pub mod runner;
pub mod status;

use crate::config::model::Config;
use crate::environ::Environ;
use crate::events::Bus;
use crate::process::Reaper;
use status::StatusBoard;
use std::sync::Arc;
use tokio::sync::watch;

/// The parts of a run that the jobs and everything started beside them
/// (discovery, coordination, control, telemetry) share. Built by the
/// supervisor and handed out explicitly at start-up, so no layer reaches
/// up to the supervisor for them. Cheap to clone.
#[derive(Clone)]
pub struct Common {
    pub bus: Bus,
    pub board: StatusBoard,
    pub environ: Environ,
    pub reaper: Reaper,
    /// The running config: published by the supervisor at start and after
    /// each reload, so every reader sees the same one and none is stale.
    pub config: watch::Receiver<Arc<Config>>,
}
