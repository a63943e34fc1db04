//! Reloading the config file (`POST /v3/reload`, `autopilot -reload`).
//!
//! Everything that can fail is done before anything changes: the file is
//! re-read and re-rendered (with the environment children would get, so
//! values set with `-putenv` count, as in ContainerPilot), validated, the
//! telemetry job added, a new telemetry port bound. Only then is the config
//! handed to the supervisor, which keeps unchanged jobs running untouched.
//! A config that fails leaves the running one in place, and the reason goes
//! to the log and back to the caller.

use super::State;
use crate::config::{self, model::Config};
use crate::supervisor::{ReloadSummary, Request};
use hyper::StatusCode;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tokio::sync::oneshot;

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

pub async fn reload(state: &Arc<State>) -> Result<ReloadSummary, ReloadError> {
    let _one_at_a_time = state.reloading.lock().await;
    log::info!("reload: re-reading {}", state.config_path.display());
    let result = apply(state).await;
    if let Err(e) = &result {
        log::error!("reload: {e}");
    }
    result
}

async fn apply(state: &Arc<State>) -> Result<ReloadSummary, ReloadError> {
    let new = load(state).await?;
    let change = state
        .telemetry
        .listener_change(&new)
        .await
        .map_err(ReloadError::Apply)?;
    let old = state.config.lock().unwrap().clone();
    let (tx, rx) = oneshot::channel();
    state
        .handle
        .request(Request::Reload(Box::new(new.clone()), tx))
        .await
        .map_err(|_| ReloadError::ShuttingDown)?;
    // The supervisor drops the reply when it is already shutting down.
    let summary = rx.await.map_err(|_| ReloadError::ShuttingDown)?;
    let new = Arc::new(new);
    state.telemetry.apply(new.clone(), change);
    if new.control != old.control {
        log::warn!(
            "reload: `control.socket` changed; autopilot keeps listening on {} until it restarts",
            state.socket.display()
        );
    }
    *state.config.lock().unwrap() = new;
    Ok(summary)
}

/// Reads, renders and validates the file off the runtime thread (it is disk
/// I/O and template work), then adds the telemetry job.
async fn load(state: &Arc<State>) -> Result<Config, ReloadError> {
    let path = state.config_path.clone();
    let env: HashMap<String, String> = state.handle.environ.snapshot().into_iter().collect();
    let loaded = tokio::task::spawn_blocking(move || config::load(&path, &env))
        .await
        .map_err(|e| ReloadError::Config(format!("loading the config failed: {e}")))?
        .map_err(|e| ReloadError::Config(e.to_string()))?;
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    crate::telemetry::prepare(loaded.config).map_err(ReloadError::Config)
}
