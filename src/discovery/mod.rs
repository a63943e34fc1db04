//! Service discovery: jobs' registrations in Consul, and watches.
//!
//! Jobs talk to a [`ServiceRegistry`]; without a `consul` section it is
//! [`crate::jobs::registry::NoDiscovery`], so autopilot supervises jobs without Consul. With one,
//! [`extension`] starts the Consul pieces:
//! - [`address`]: the `consul` section and `CONSUL_*` variables → an endpoint;
//! - [`client`]: the HTTP client (token, TLS, outage detection);
//! - [`interfaces`]: which IP address a job advertises;
//! - [`registry`]: one task per advertised job keeping its registration and
//!   TTL check in line (the [`ServiceRegistry`] behind the jobs);
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
use crate::jobs::registry::ServiceRegistry;
use crate::supervisor::{Extension, Handle};
use std::sync::Arc;

/// Exit code when the `consul` settings cannot be used: as for any other
/// config error, nothing has been started yet.
const EXIT_CONFIG: i32 = 2;

/// The Consul extension for [`crate::supervisor::run`]. Without a `consul`
/// section it says so once and leaves discovery off. With one it builds the
/// client, sets `CONTAINERPILOT_<JOB>_IP` for advertised jobs, starts the
/// watches and returns the registry the jobs use.
///
/// Unusable settings (a bad address, an unreadable CA file, `interfaces`
/// that match nothing) stop autopilot with exit code 2 before any job
/// starts, as a config error would: running without the registrations the
/// config asks for would hide the problem.
pub fn extension() -> Extension {
    Box::new(
        |config: &Config, handle: &Handle| -> Option<Arc<dyn ServiceRegistry>> {
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
                return None;
            };
            match start(config, consul, handle) {
                Ok(registry) => Some(registry),
                Err(e) => {
                    log::error!("{e}");
                    std::process::exit(EXIT_CONFIG);
                }
            }
        },
    )
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

fn start(
    config: &Config,
    consul: &crate::config::model::ConsulConfig,
    handle: &Handle,
) -> Result<Arc<dyn ServiceRegistry>, String> {
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
        handle.environ.clone(),
        hostname,
        handle.board.clone(),
    );
    registry
        .define_all(&config.jobs)
        .map_err(|e| format!("consul: cannot choose the address to advertise: {e}"))?;
    let watches = Arc::new(watch_set::WatchSet::new(client.clone(), handle.clone()));
    watches.configure(&config.watches)?;
    handle.on_reload(Box::new(move |new: &Config| {
        if let Err(e) = watches.configure(&new.watches) {
            log::error!("reload: cannot start the new watches: {e}");
        }
    }));
    Ok(crate::coordination::start(
        config, &client, registry, handle,
    ))
}
