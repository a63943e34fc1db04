//! Jobs' registrations in Consul.
//!
//! Each advertised job gets one small task that owns its registration. Jobs
//! tell it what they want (registered and passing or critical, or gone); the
//! task brings the agent in line, one call at a time and in order, so a TTL
//! update can never overtake the registration it needs. When a call fails it
//! retries with backoff and keeps only the latest wish, so an outage causes
//! neither a queue nor a storm. It registers again when:
//! - a TTL update is refused because the agent does not know the check
//!   (the agent restarted and lost its state, or an operator removed it);
//! - the agent answers again after an outage ([`ConsulClient::agent_returns`]);
//! - a reload or a live tag/meta edit changed the job's registration.
//!
//! Why the split: the rules above (what to call next, when to retry, what
//! to log once) are decisions, and decisions are easiest to trust when they
//! can be tested one input at a time without a Consul agent. So, as for jobs
//! (`jobs::machine` and `jobs::runner`):
//! - [`machine`]: what the agent has and what the job wants, and the pure
//!   transition function `on(input, now) -> effects`;
//! - [`task`]: the thin async loop performing those effects with the client;
//! - [`definition`]: what a job registers, and its JSON;
//! - this file: the registry the jobs and the control socket call, one task
//!   per advertised job.

mod definition;
mod machine;
mod task;

pub use definition::{ServiceDef, hostname};

use super::client::ConsulClient;
use super::interfaces::{self, Choice, IfaceAddr};
use crate::config::model::JobConfig;
use crate::discovery::edit::{
    EditError, EditFuture, LiveService, Overrides, ServiceEdit, ServiceEditor,
};
use crate::environ::{Environ, env_name};
use crate::jobs::machine::ServiceAction;
use crate::jobs::registry::{BoxFuture, ServiceRegistry};
use crate::jobs::status::StatusBoard;
use std::collections::HashMap;
use std::sync::Mutex;
use task::{Msg, ServiceAgent};
use tokio::sync::{mpsc, oneshot, watch};

/// What the agent has of one job's service, as far as autopilot knows (from
/// its own successful calls). Leader election follows it: a leader's session
/// can only be created while the check passes, and a new pass after a step
/// down shows the job is healthy again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckView {
    /// The agent has the service.
    pub registered: bool,
    /// ...and its check is passing, as set from a passing health check.
    pub passing: bool,
    /// How many passing health results of the job reached the agent: a
    /// higher number is a newer result.
    pub passes: u64,
}

/// The [`ServiceRegistry`] backed by a Consul agent.
pub struct ConsulRegistry {
    client: ConsulClient,
    environ: Environ,
    /// Where the status view reads what the agent has of each service.
    board: StatusBoard,
    hostname: String,
    /// Advertised jobs by name.
    services: Mutex<HashMap<String, AgentHandle>>,
}

struct AgentHandle {
    /// What is registered: `base` with the live `overrides`.
    def: ServiceDef,
    /// What the config asks for.
    base: ServiceDef,
    /// Tags and meta changed at run time (`autopilot tags`, `autopilot meta`).
    overrides: Overrides,
    tx: mpsc::UnboundedSender<Msg>,
    view: watch::Receiver<CheckView>,
}

impl ConsulRegistry {
    pub fn new(
        client: ConsulClient,
        environ: Environ,
        hostname: String,
        board: StatusBoard,
    ) -> ConsulRegistry {
        ConsulRegistry {
            client,
            environ,
            board,
            hostname,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// Sets up the registration of every advertised job in `jobs` and its
    /// `CONTAINERPILOT_<JOB>_IP`; fails on `interfaces` that match nothing.
    pub fn define_all(&self, jobs: &[JobConfig]) -> Result<(), String> {
        let advertised: Vec<&JobConfig> = jobs.iter().filter(|j| j.service.is_some()).collect();
        if advertised.is_empty() {
            return Ok(());
        }
        let addrs = interfaces::local_addresses()?;
        let mut errors = Vec::new();
        for job in advertised {
            if let Err(e) = self.define(job, &addrs) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    fn define(&self, job: &JobConfig, addrs: &[IfaceAddr]) -> Result<(), String> {
        let Some(service) = &job.service else {
            return Ok(());
        };
        let choice = interfaces::choose(&service.interfaces, addrs)
            .map_err(|e| format!("job `{}`: {e}", job.name))?;
        let Some(base) = ServiceDef::for_job(job, &self.hostname, choice.ip()) else {
            return Ok(());
        };
        self.environ.set_runtime(
            &format!("CONTAINERPILOT_{}_IP", env_name(&job.name)),
            Some(base.address.to_string()),
        );
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = services.get_mut(&job.name)
            && handle.base != base
        {
            if handle.overrides != Overrides::default() {
                log::info!(
                    "{}: its definition changed; live tag and meta changes give way to the config's",
                    job.name
                );
            }
            handle.overrides = Overrides::default();
            handle.base = base.clone();
        }
        let def = match services.get(&job.name) {
            Some(handle) => base.with(&handle.overrides),
            None => base.clone(),
        };
        match services.get_mut(&job.name) {
            Some(handle) if handle.def == def => {}
            Some(handle) => {
                log::info!(
                    "{}: Consul registration changed; it is sent again",
                    job.name
                );
                handle.def = def.clone();
                let _ = handle.tx.send(Msg::Define(def));
            }
            None => {
                match &choice {
                    Choice::Matched { ip, spec } => {
                        log::info!(
                            "{}: advertising {ip}:{} (interface spec `{spec}`)",
                            job.name,
                            def.port
                        )
                    }
                    Choice::Loopback { ip } => log::warn!(
                        "{}: no eth0 or other non-loopback IPv4 address; advertising the loopback \
                         address {ip}:{} (set `interfaces` to choose)",
                        job.name,
                        def.port
                    ),
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let (view_tx, view) = watch::channel(CheckView::default());
                let agent = ServiceAgent::new(
                    def.clone(),
                    self.client.clone(),
                    rx,
                    view_tx,
                    self.board.clone(),
                );
                tokio::spawn(agent.run());
                services.insert(
                    job.name.clone(),
                    AgentHandle {
                        def,
                        base,
                        overrides: Overrides::default(),
                        tx,
                        view,
                    },
                );
            }
        }
        Ok(())
    }
}

impl ConsulRegistry {
    /// What `job` registers now (with live changes); `None` when it is not
    /// advertised.
    pub fn service(&self, job: &str) -> Option<ServiceDef> {
        let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        services.get(job).map(|h| h.def.clone())
    }

    /// Follows what the agent has of `job`'s service (see [`CheckView`]).
    pub fn check_view(&self, job: &str) -> Option<watch::Receiver<CheckView>> {
        let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        services.get(job).map(|h| h.view.clone())
    }

    fn live(job: &str, handle: &AgentHandle, registered: bool) -> LiveService {
        LiveService {
            job: job.to_string(),
            id: handle.def.id.clone(),
            tags: handle.def.tags.clone(),
            meta: handle.def.meta.clone(),
            registered,
        }
    }
}

impl ServiceRegistry for ConsulRegistry {
    fn apply(&self, job: &str, action: ServiceAction) -> BoxFuture {
        let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let Some(handle) = services.get(job) else {
            return Box::pin(async {});
        };
        let (ack, done) = oneshot::channel();
        // Sent now, not when the future is polled: the order of calls is the
        // order of the job's actions even if the futures run out of order.
        if handle.tx.send(Msg::Action(action, ack)).is_err() {
            return Box::pin(async {});
        }
        Box::pin(async move {
            let _ = done.await;
        })
    }

    fn configure(&self, jobs: &[JobConfig]) {
        if let Err(e) = self.define_all(jobs) {
            log::error!("reload: {e}; those jobs keep their previous Consul registration");
        }
    }
}

impl ServiceEditor for ConsulRegistry {
    /// Applies a live tag/meta change: the service is registered again at
    /// once (same ID, same check status), the job's process is not touched.
    fn edit_service(&self, job: &str, edit: ServiceEdit) -> EditFuture {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let Some(handle) = services.get_mut(job) else {
            return ready(Err(EditError::NotAdvertised(job.to_string())));
        };
        let overrides = match handle
            .overrides
            .edited(&handle.base.tags, &handle.base.meta, &edit)
        {
            Ok(o) => o,
            Err(why) => return ready(Err(EditError::Invalid(why))),
        };
        let def = handle.base.with(&overrides);
        handle.overrides = overrides;
        if def == handle.def {
            let registered = handle.view.borrow().registered;
            return ready(Ok(Self::live(job, handle, registered)));
        }
        log::info!(
            "{}: tags now [{}], meta {{{}}}: registering {} again",
            job,
            def.tags.join(", "),
            def.meta
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            def.id
        );
        handle.def = def.clone();
        let (tx, rx) = oneshot::channel();
        let sent = handle.tx.send(Msg::Edit(def, tx)).is_ok();
        let view = Self::live(job, handle, false);
        Box::pin(async move {
            if !sent {
                return Err(EditError::Pending(
                    "the registration task has stopped".into(),
                ));
            }
            match rx.await {
                Ok(Ok(registered)) => Ok(LiveService { registered, ..view }),
                Ok(Err(why)) => Err(EditError::Pending(why)),
                Err(_) => Err(EditError::Pending(
                    "the registration task has stopped".into(),
                )),
            }
        })
    }
}

impl ServiceDef {
    /// This definition with live tag/meta changes laid over the config's.
    fn with(&self, overrides: &Overrides) -> ServiceDef {
        let mut def = self.clone();
        def.tags = overrides.tags(&self.tags).to_vec();
        def.meta = overrides.meta(&self.meta).clone();
        def
    }
}

fn ready(result: Result<LiveService, EditError>) -> EditFuture {
    Box::pin(async move { result })
}
