//! Coordination primitives for hooks, on the Consul agent autopilot already
//! talks to: what self-orchestrating databases and storage used to script by
//! hand in every image (and got wrong: lost primaries after a reload,
//! "invalid session" errors, hooks racing their own watches).
//!
//! - [`leader`]: leader election as a job feature (`leader` in a job), with
//!   `elected`/`deposed` events, `CONTAINERPILOT_<JOB>_LEADER` and a
//!   fail-safe step-down when Consul cannot be reached;
//! - [`kv`]: the typed Consul KV and session calls both use.
//!
//! The `kv`, `lock`, `tags` and `meta` subcommands are in `cli::coordination`.
//!
//! Watch payloads (added and removed instances) live with the watches in
//! [`crate::discovery::payload`]. See docs/coordination.md.

pub mod kv;
pub mod leader;

use crate::config::model::{Config, JobConfig};
use crate::discovery::Discovery;
use crate::discovery::registry::ConsulRegistry;
use crate::jobs::Common;
use crate::jobs::machine::ServiceAction;
use crate::jobs::registry::{BoxFuture, NoDiscovery, ServiceRegistry};
use std::sync::Arc;

/// Starts the elections of `config`'s jobs beside discovery's registry, and
/// returns the registry the jobs use: discovery's, plus reload handling for
/// the elections ([`NoDiscovery`] without Consul).
pub fn start(config: &Config, discovery: &Discovery, common: &Common) -> Arc<dyn ServiceRegistry> {
    let Discovery::Consul { client, registry } = discovery else {
        return Arc::new(NoDiscovery);
    };
    let leaders = leader::Leaders::new(leader::Context {
        client: client.clone(),
        registry: registry.clone(),
        bus: common.bus.clone(),
        environ: common.environ.clone(),
        board: common.board.clone(),
    });
    leaders.configure(&config.jobs, true);
    Arc::new(Coordinated {
        registry: registry.clone(),
        leaders,
    })
}

/// The Consul registry with the leader elections that depend on it.
struct Coordinated {
    registry: Arc<ConsulRegistry>,
    leaders: leader::Leaders,
}

impl ServiceRegistry for Coordinated {
    fn apply(&self, job: &str, action: ServiceAction) -> BoxFuture {
        self.registry.apply(job, action)
    }

    /// The registrations first: a new election follows its job's check.
    fn configure(&self, jobs: &[JobConfig]) {
        self.registry.configure(jobs);
        self.leaders.configure(jobs, false);
    }
}
