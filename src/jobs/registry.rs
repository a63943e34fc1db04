//! What jobs ask of a service registry. The trait lives here, beside its
//! only caller (the runner), so jobs need nothing from discovery: discovery
//! implements it for Consul, and [`NoDiscovery`] stands in without one.

use super::machine::ServiceAction;
use crate::config::model::JobConfig;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Applies a job's registration changes. The returned future completes when
/// the change reached the registry (or was given up on); callers await it
/// only where order matters (deregister before SIGTERM).
pub trait ServiceRegistry: Send + Sync {
    fn apply(&self, job: &str, action: ServiceAction) -> BoxFuture;

    /// Takes the job definitions after a reload (new ports, tags, checks).
    fn configure(&self, _jobs: &[JobConfig]) {}
}

/// Used when there is no `consul` section.
pub struct NoDiscovery;

impl ServiceRegistry for NoDiscovery {
    fn apply(&self, _job: &str, _action: ServiceAction) -> BoxFuture {
        Box::pin(async {})
    }
}
