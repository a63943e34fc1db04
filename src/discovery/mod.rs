//! Service discovery: jobs' registrations in Consul, and watches.
//!
//! Jobs talk to a [`crate::jobs::registry::ServiceRegistry`]; without a `consul` section it is
//! [`crate::jobs::registry::NoDiscovery`], so autopilot supervises jobs without Consul. With one,
//! [`start`] starts the Consul pieces:
//! - [`address`]: the `consul` section and `CONSUL_*` variables → an endpoint;
//! - [`client`]: the HTTP client (token, TLS, outage detection);
//! - [`interfaces`]: which IP address a job advertises;
//! - [`registry`]: one task per advertised job keeping its registration and
//!   TTL check in line (the registry behind the jobs);
//! - [`watch`]: blocking queries turned into `watch.<name>` events;
//! - [`edit`]: live tags and meta of a running service ([`edit::ServiceEditor`]);
//! - [`payload`]: the environment variables and files watches hand to jobs;
//! - [`backoff`]: retry delays.
//!
//! See docs/consul.md for the user-facing description.

pub mod address;
pub mod backoff;
pub mod client;
pub mod edit;
pub mod interfaces;
pub mod payload;
pub mod registry;
pub mod watch;
pub mod watch_set;

use crate::config::model::Config;
use crate::jobs::Common;
use edit::ServiceEditor;
use std::sync::Arc;

/// What discovery started: nothing without a `consul` section, else the
/// Consul client and the registry coordination builds on.
pub enum Discovery {
    Off,
    Consul {
        client: client::ConsulClient,
        registry: Arc<registry::ConsulRegistry>,
    },
}

impl Discovery {
    /// How the control socket changes a running service's tags and meta;
    /// `None` without Consul.
    pub fn editor(&self) -> Option<Arc<dyn ServiceEditor>> {
        match self {
            Discovery::Off => None,
            Discovery::Consul { registry, .. } => Some(registry.clone()),
        }
    }
}

/// Starts discovery for `config`. Without a `consul` section it says so
/// once and leaves discovery off. With one it builds the client, sets
/// `CONTAINERPILOT_<JOB>_IP` for advertised jobs and starts the watches,
/// which follow the running config across reloads.
///
/// Unusable settings (a bad address, an unreadable CA file, `interfaces`
/// that match nothing) are an error, which `main` turns into exit code 2
/// before any job starts, as for a config error: running without the
/// registrations the config asks for would hide the problem.
pub fn start(config: &Config, common: &Common) -> Result<Discovery, String> {
    let Some(consul) = &config.consul else {
        let unused = if config.watches.is_empty() {
            String::new()
        } else {
            format!(" ({} watches will never fire)", config.watches.len())
        };
        log::info!("no consul configured: running without service discovery{unused}");
        for job in config.jobs.iter().filter(|j| j.leader.is_some()) {
            log::warn!(
                "{}: `leader` needs a `consul` section; the job never competes for leadership",
                job.name
            );
        }
        return Ok(Discovery::Off);
    };
    start_consul(config, consul, common)
}

/// Checks the `consul` settings the way `run` would use them (address,
/// environment overrides, TLS files), without contacting the agent; for
/// `autopilot check`. Returns the warnings, or the error that would stop `run`.
pub fn validate(consul: &crate::config::model::ConsulConfig) -> Result<Vec<String>, String> {
    let env = |key: &str| std::env::var(key).ok();
    let endpoint = address::resolve(consul, &env).map_err(|e| e.to_string())?;
    client::ConsulClient::new(&endpoint).map_err(|e| e.to_string())?;
    Ok(endpoint.warnings.iter().map(|w| w.to_string()).collect())
}

fn start_consul(
    config: &Config,
    consul: &crate::config::model::ConsulConfig,
    common: &Common,
) -> Result<Discovery, String> {
    let env = |key: &str| std::env::var(key).ok();
    let endpoint = address::resolve(consul, &env).map_err(|e| e.to_string())?;
    for warning in &endpoint.warnings {
        log::warn!("{warning}");
    }
    let client = client::ConsulClient::new(&endpoint).map_err(|e| e.to_string())?;
    log::info!(
        "consul: using the agent at {}{}",
        client.display_url(),
        if endpoint.token.is_some() {
            " with an ACL token"
        } else {
            ""
        }
    );
    let hostname = registry::hostname(&env);
    let registry = registry::ConsulRegistry::new(
        client.clone(),
        common.environ.clone(),
        hostname,
        common.board.clone(),
    );
    registry
        .define_all(&config.jobs)
        .map_err(|e| format!("consul: cannot choose the address to advertise: {e}"))?;
    let watches = watch_set::WatchSet::new(
        client.clone(),
        common.bus.clone(),
        common.environ.clone(),
        common.board.clone(),
    );
    watches.configure(&config.watches)?;
    tokio::spawn(follow_reloads(watches, common.config.clone()));
    Ok(Discovery::Consul {
        client,
        registry: Arc::new(registry),
    })
}

/// Keeps the running watches in step with the running config.
async fn follow_reloads(
    watches: watch_set::WatchSet,
    mut running: tokio::sync::watch::Receiver<Arc<Config>>,
) {
    while running.changed().await.is_ok() {
        let config = running.borrow_and_update().clone();
        if let Err(e) = watches.configure(&config.watches) {
            log::error!("reload: cannot start the new watches: {e}");
        }
    }
}
