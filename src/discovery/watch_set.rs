//! The running watches, kept in step with the config across reloads.
//!
//! Each watch is its own task. A reload stops the watches that were removed
//! or changed (clearing the environment values and status they published)
//! and starts the new definitions; unchanged watches keep their state, so a
//! reload causes no spurious `changed` event.

use super::client::ConsulClient;
use super::payload::{self, RuntimeDir};
use super::watch::Watch;
use crate::config::model::WatchConfig;
use crate::environ::Environ;
use crate::events::Bus;
use crate::jobs::status::StatusBoard;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct WatchSet {
    client: ConsulClient,
    bus: Bus,
    environ: Environ,
    board: StatusBoard,
    /// Created with the first watch: a config without watches writes nothing.
    dir: Mutex<Option<Arc<RuntimeDir>>>,
    running: Mutex<HashMap<String, (WatchConfig, JoinHandle<()>)>>,
}

impl WatchSet {
    pub fn new(client: ConsulClient, bus: Bus, environ: Environ, board: StatusBoard) -> WatchSet {
        WatchSet {
            client,
            bus,
            environ,
            board,
            dir: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the running watches match `watches`.
    pub fn configure(&self, watches: &[WatchConfig]) -> Result<(), String> {
        let mut running = self.running.lock().unwrap();
        let wanted: HashMap<&str, &WatchConfig> =
            watches.iter().map(|w| (w.name.as_str(), w)).collect();
        running.retain(|name, (config, task)| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|w| same_definition(config, w));
            if !keep {
                task.abort();
                self.environ
                    .replace_runtime_prefix(&payload::env_prefix(name), BTreeMap::new());
                self.board.remove_watch(name);
                log::info!("watch.{name}: stopped by the reload");
            }
            keep
        });
        for w in watches {
            if running.contains_key(&w.name) {
                continue;
            }
            let task = Watch::new(
                w.clone(),
                self.client.clone(),
                self.bus.clone(),
                self.environ.clone(),
                self.board.clone(),
                self.dir()?,
            );
            running.insert(w.name.clone(), (w.clone(), tokio::spawn(task.run())));
        }
        Ok(())
    }

    fn dir(&self) -> Result<Arc<RuntimeDir>, String> {
        let mut dir = self.dir.lock().unwrap();
        if let Some(d) = dir.as_ref() {
            return Ok(d.clone());
        }
        let created = Arc::new(RuntimeDir::create()?);
        log::debug!("consul: watch data goes to {}", created.path().display());
        *dir = Some(created.clone());
        Ok(created)
    }
}

/// Two watch definitions are the same if they differ at most in where they
/// are written in the file.
fn same_definition(a: &WatchConfig, b: &WatchConfig) -> bool {
    a.name == b.name && a.target == b.target && a.interval == b.interval
}
