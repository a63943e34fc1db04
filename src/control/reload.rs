//! Reloading the config file (`POST /v3/reload`, `autopilot -reload`, and
//! a ContainerPilot 2 config's SIGHUP): one path for all, so the jobs, the
//! status view, telemetry and the watches always agree on the config.
//!
//! Everything that can fail is done before anything changes: the file is
//! re-read and re-rendered (with the environment children would get, so
//! values set with `-putenv` count, as in ContainerPilot), validated, the
//! telemetry job added, a new telemetry port bound. Only then is the config
//! handed to the supervisor, which keeps unchanged jobs running untouched.
//! A config that fails leaves the running one in place, and the reason goes
//! to the log and back to the caller.

use super::State;
use crate::config::model::Config;
use crate::supervisor::{ReloadSummary, Request};
use hyper::StatusCode;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How to read the config again, given the environment children would get
/// (so `-putenv` values count): from where it came, with the same command
/// line, through [`crate::telemetry::prepare`]. `main` builds it, as only
/// it knows where the config came from.
#[derive(Clone)]
pub struct Loader {
    /// Where the config comes from, for the log.
    pub label: String,
    pub load: LoadFn,
}

/// Reads the config given the environment; the error is the full diagnostic.
pub type LoadFn = Arc<dyn Fn(HashMap<String, String>) -> Result<Config, String> + Send + Sync>;

/// Why a reload changed nothing.
#[derive(Debug)]
pub enum ReloadError {
    /// The new config does not load; the text is the full diagnostic.
    Config(String),
    /// The new config loads but cannot be applied (telemetry port taken).
    Apply(String),
    /// autopilot is shutting down.
    ShuttingDown,
}

impl ReloadError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReloadError::Config(_) | ReloadError::Apply(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ReloadError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Config(e) => write!(
                f,
                "the new config has errors; the running config stays:\n{e}"
            ),
            ReloadError::Apply(e) => write!(
                f,
                "the new config cannot be applied; the running config stays: {e}"
            ),
            ReloadError::ShuttingDown => f.write_str("autopilot is shutting down"),
        }
    }
}

/// Re-reads the config and applies it; the one way any reload is done.
pub async fn reload(state: &State) -> Result<ReloadSummary, ReloadError> {
    let _one_at_a_time = state.reloading.lock().await;
    let result = match &state.loader {
        Some(loader) => {
            log::info!("reload: re-reading {}", loader.label);
            apply(state, loader).await
        }
        None => Err(ReloadError::Config(
            "autopilot runs the command on its command line, not a config file: \
             there is nothing to re-read"
                .into(),
        )),
    };
    if let Err(e) = &result {
        log::error!("reload: {e}");
    }
    result
}

/// Reloads on each SIGHUP the supervisor passes on (ContainerPilot 2).
pub async fn on_sighup(state: Arc<State>, mut sighups: mpsc::UnboundedReceiver<()>) {
    while sighups.recv().await.is_some() {
        // The outcome is logged by the reload itself.
        let _ = reload(&state).await;
    }
}

async fn apply(state: &State, loader: &Loader) -> Result<ReloadSummary, ReloadError> {
    let new = load(state, loader).await?;
    let change = state
        .telemetry
        .listener_change(&new)
        .await
        .map_err(ReloadError::Apply)?;
    let old = state.common.config.borrow().clone();
    let (tx, rx) = oneshot::channel();
    state
        .requests
        .send(Request::Reload(Box::new(new.clone()), tx))
        .await
        .map_err(|_| ReloadError::ShuttingDown)?;
    // The supervisor drops the reply when it is already shutting down.
    let summary = rx.await.map_err(|_| ReloadError::ShuttingDown)?;
    state.telemetry.apply(&new, change);
    if new.control != old.control {
        log::warn!(
            "reload: `control.socket` changed; autopilot keeps listening on {} until it restarts",
            state.socket.display()
        );
    }
    Ok(summary)
}

/// Reads, renders and validates the file off the runtime thread (it is disk
/// I/O and template work), with the telemetry job added.
async fn load(state: &State, loader: &Loader) -> Result<Config, ReloadError> {
    let env: HashMap<String, String> = state.common.environ.snapshot().into_iter().collect();
    let load = loader.load.clone();
    tokio::task::spawn_blocking(move || load(env))
        .await
        .map_err(|e| ReloadError::Config(format!("loading the config failed: {e}")))?
        .map_err(ReloadError::Config)
}
