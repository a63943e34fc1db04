//! Coordination primitives for hooks, on the Consul agent autopilot already
//! talks to: what self-orchestrating databases and storage used to script by
//! hand in every image (and got wrong: lost primaries after a reload,
//! "invalid session" errors, hooks racing their own watches).
//!
//! - [`leader`]: leader election as a job feature (`leader` in a job), with
//!   `elected`/`deposed` events, `CONTAINERPILOT_<JOB>_LEADER` and a
//!   fail-safe step-down when Consul cannot be reached;
//! - [`service`]: live tags and meta of a running service (control socket
//!   and `autopilot tags` / `autopilot meta`), without a reload;
//! - [`kv`]: the typed Consul KV and session calls both use.
//!
//! The `kv`, `lock`, `tags` and `meta` subcommands are in `cli::coordination`.
//!
//! Watch payloads (added and removed instances) live with the watches in
//! [`crate::discovery::payload`]. See docs/coordination.md.

pub mod kv;
pub mod leader;
pub mod service;

use crate::config::model::{Config, JobConfig};
use crate::discovery::client::ConsulClient;
use crate::discovery::registry::ConsulRegistry;
use crate::discovery::{BoxFuture, ServiceRegistry};
use crate::jobs::machine::ServiceAction;
use crate::supervisor::Handle;
use std::sync::Arc;

/// Starts the elections of `config`'s jobs beside `registry`, and returns
/// the registry the jobs use: `registry` itself, plus reload handling for
/// the elections. The control socket finds it on the status board.
pub fn start(
    config: &Config,
    client: &ConsulClient,
    registry: ConsulRegistry,
    handle: &Handle,
) -> Arc<dyn ServiceRegistry> {
    let registry = Arc::new(registry);
    let leaders = leader::Leaders::new(leader::Context {
        client: client.clone(),
        registry: registry.clone(),
        bus: handle.bus.clone(),
        environ: handle.environ.clone(),
        board: handle.board.clone(),
    });
    leaders.configure(&config.jobs, true);
    let coordinated: Arc<dyn ServiceRegistry> = Arc::new(Coordinated { registry, leaders });
    handle.board.set_registry(coordinated.clone());
    coordinated
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

    fn edit_service(&self, job: &str, edit: service::ServiceEdit) -> service::EditFuture {
        self.registry.edit_service(job, edit)
    }
}
