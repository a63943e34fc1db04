//! Jobs' registrations in Consul.
//!
//! Each advertised job gets one small task (a [`ServiceAgent`]) that owns its
//! registration. Jobs tell it what they want (registered and passing or
//! critical, or gone); the task brings the agent in line, one call at a time
//! and in order, so a TTL update can never overtake the registration it
//! needs. When a call fails it retries with backoff and keeps only the
//! latest wish, so an outage causes neither a queue nor a storm. It registers
//! again when:
//! - a TTL update is refused because the agent does not know the check
//!   (the agent restarted and lost its state, or an operator removed it);
//! - the agent answers again after an outage ([`ConsulClient::agent_returns`]);
//! - a reload changed the job's registration.

use super::backoff::Backoff;
use super::client::{CallError, ConsulClient, segment};
use super::interfaces::{self, Choice, IfaceAddr};
use super::{BoxFuture, ServiceRegistry};
use crate::config::model::JobConfig;
use crate::coordination::service::{EditError, EditFuture, LiveService, Overrides, ServiceEdit};
use crate::environ::{Environ, env_name};
use crate::jobs::machine::ServiceAction;
use crate::jobs::status::StatusBoard;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// First retry after a failed call; doubles up to [`RETRY_MAX`]. Small enough
/// that a service is back within a few seconds of the agent's return.
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// What one job registers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// `<name>-<hostname>`.
    pub id: String,
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// The TTL check's TTL; `None` for a job without a health check (it is
    /// registered without a check, so Consul counts it as passing).
    pub ttl: Option<Duration>,
    pub initial_status: Option<String>,
    pub enable_tag_override: bool,
    pub deregister_critical_after: Option<String>,
}

impl ServiceDef {
    /// The definition for `job`, advertised at `address`; `None` when the
    /// job has no `port`.
    pub fn for_job(job: &JobConfig, hostname: &str, address: IpAddr) -> Option<ServiceDef> {
        let service = job.service.as_ref()?;
        Some(ServiceDef {
            id: format!("{}-{}", job.name, hostname),
            name: job.name.clone(),
            address,
            port: service.port,
            tags: service.tags.clone(),
            meta: service.meta.clone(),
            ttl: job.health.as_ref().map(|h| h.ttl),
            initial_status: service.initial_status.clone(),
            enable_tag_override: service.enable_tag_override,
            deregister_critical_after: service.deregister_critical_service_after.clone(),
        })
    }

    /// The ID of the service's TTL check (a leader's session is tied to it).
    pub fn check_id(&self) -> String {
        format!("service:{}", self.id)
    }

    /// This definition with live tag/meta changes laid over the config's.
    fn with(&self, overrides: &Overrides) -> ServiceDef {
        let mut def = self.clone();
        def.tags = overrides.tags(&self.tags).to_vec();
        def.meta = overrides.meta(&self.meta).clone();
        def
    }

    /// The body of `PUT /v1/agent/service/register`, with the TTL check in
    /// `status` (or the initial status, or Consul's default: critical).
    fn registration(&self, status: Option<Status>) -> serde_json::Value {
        let mut body = json!({
            "ID": self.id,
            "Name": self.name,
            "Tags": self.tags,
            "Address": self.address.to_string(),
            "Port": self.port,
            "EnableTagOverride": self.enable_tag_override,
        });
        if !self.meta.is_empty() {
            body["Meta"] = json!(self.meta);
        }
        if let Some(ttl) = self.ttl {
            let mut check = json!({
                "TTL": go_duration(ttl),
                "Notes": format!("TTL for {} set by autopilot", self.name),
            });
            match (status, &self.initial_status) {
                (Some(s), _) => check["Status"] = json!(s.as_str()),
                (None, Some(initial)) => check["Status"] = json!(initial),
                (None, None) => {}
            }
            if let Some(after) = &self.deregister_critical_after {
                check["DeregisterCriticalServiceAfter"] = json!(after);
            }
            body["Check"] = check;
        }
        body
    }
}

/// A duration as Consul reads it (`"10s"`, `"1500ms"`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The hostname in service IDs: `$HOSTNAME` if set (Docker sets it to the
/// container's hostname; tests set it to keep two instances apart), else
/// the kernel's hostname, as ContainerPilot's `os.Hostname()`.
pub fn hostname(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("HOSTNAME")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// A TTL check status we set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Passing,
    Critical,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Critical => "critical",
        }
    }
}

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

enum Msg {
    Action(ServiceAction, oneshot::Sender<()>),
    Define(ServiceDef),
    /// A live tag/meta change; answered once the agent has it (`Ok(true)`),
    /// once it is known not to be registered (`Ok(false)`), or with why the
    /// call failed (it is retried).
    Edit(ServiceDef, oneshot::Sender<Result<bool, String>>),
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

fn ready(result: Result<LiveService, EditError>) -> EditFuture {
    Box::pin(async move { result })
}

/// What the job wants in Consul.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Absent,
    /// Registered; with the last health result, if any yet.
    Present(Option<Status>),
}

/// What we believe the agent has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Have {
    Absent,
    /// A call failed or the agent came back: register again to be sure.
    Unknown,
    /// Registered, with the check status we set last (`None`: the initial one).
    Registered(Option<Status>),
}

/// Keeps one job's registration in line with what the job wants.
struct ServiceAgent {
    def: ServiceDef,
    client: ConsulClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    returns: watch::Receiver<u64>,
    want: Want,
    have: Have,
    /// A passing result arrived: its TTL must be refreshed even though the
    /// status did not change.
    refresh_due: bool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// Registered at least once (for "registered again" in the log).
    registered_once: bool,
    /// Passing health results taken from the job, and how many of them the
    /// agent has (for [`CheckView::passes`]).
    passes_taken: u64,
    passes_applied: u64,
    view: watch::Sender<CheckView>,
    board: StatusBoard,
}

/// Why a step did not complete.
enum StepError {
    /// Try again after a delay.
    Retry(String),
}

impl ServiceAgent {
    fn new(
        def: ServiceDef,
        client: ConsulClient,
        rx: mpsc::UnboundedReceiver<Msg>,
        view: watch::Sender<CheckView>,
        board: StatusBoard,
    ) -> ServiceAgent {
        let mut returns = client.agent_returns();
        returns.mark_unchanged();
        board.set_registration(&def.name, "not registered");
        ServiceAgent {
            def,
            client,
            rx,
            returns,
            want: Want::Absent,
            have: Have::Absent,
            refresh_due: false,
            backoff: Backoff::new(RETRY_INITIAL, RETRY_MAX),
            retry_at: None,
            registered_once: false,
            passes_taken: 0,
            passes_applied: 0,
            view,
            board,
        }
    }

    async fn run(mut self) {
        let mut returns_open = true;
        loop {
            tokio::select! {
                msg = self.rx.recv() => {
                    let Some(msg) = msg else { break };
                    match msg {
                        Msg::Action(action, ack) => {
                            let urgent = self.take(action);
                            if urgent || self.retry_at.is_none() {
                                let already_failing = self.backoff.is_backing_off();
                                let result = self.sync_now().await;
                                // During an outage retries are logged once; a
                                // deregistration that fails (often the last call,
                                // at shutdown) is always said.
                                if let Err(why) = result
                                    && action == ServiceAction::Deregister
                                    && already_failing
                                {
                                    log::warn!(
                                        "{}: cannot deregister {} from Consul ({why}); retrying while autopilot runs",
                                        self.def.name,
                                        self.def.id
                                    );
                                }
                            }
                            let _ = ack.send(());
                        }
                        Msg::Define(def) => {
                            self.def = def;
                            if matches!(self.have, Have::Registered(_)) {
                                self.have = Have::Unknown;
                            }
                            let _ = self.sync_now().await;
                        }
                        Msg::Edit(def, reply) => {
                            self.def = def;
                            if matches!(self.have, Have::Registered(_)) {
                                self.have = Have::Unknown;
                            }
                            let result = self.sync_now().await;
                            let _ = reply.send(result.map(|()| matches!(self.have, Have::Registered(_))));
                        }
                    }
                }
                _ = sleep_until(self.retry_at) => {
                    let _ = self.sync_now().await;
                }
                changed = self.returns.changed(), if returns_open => {
                    if changed.is_err() {
                        returns_open = false;
                        continue;
                    }
                    if matches!(self.have, Have::Registered(_)) {
                        self.have = Have::Unknown;
                    }
                    let _ = self.sync_now().await;
                }
            }
        }
    }

    /// Records a job's action; returns whether it must reach Consul now even
    /// during a backoff (deregistration before SIGTERM, a new registration).
    fn take(&mut self, action: ServiceAction) -> bool {
        match action {
            ServiceAction::Register => {
                if self.want == Want::Absent {
                    self.want = Want::Present(None);
                }
                true
            }
            ServiceAction::Pass => {
                self.want = Want::Present(Some(Status::Passing));
                self.refresh_due = true;
                self.passes_taken += 1;
                false
            }
            ServiceAction::Fail => {
                self.want = Want::Present(Some(Status::Critical));
                false
            }
            ServiceAction::Deregister => {
                self.want = Want::Absent;
                self.refresh_due = false;
                true
            }
        }
    }

    /// Syncs now; on failure schedules a retry and returns why.
    async fn sync_now(&mut self) -> Result<(), String> {
        let result = self.sync().await;
        self.publish_view();
        match result {
            Ok(()) => {
                self.backoff.reset();
                self.retry_at = None;
                Ok(())
            }
            Err(StepError::Retry(why)) => {
                if !self.backoff.is_backing_off() {
                    log::warn!(
                        "{}: Consul call failed ({why}); retrying with backoff, the job keeps running",
                        self.def.name
                    );
                } else {
                    log::debug!("{}: Consul call failed again ({why})", self.def.name);
                }
                self.retry_at = Some(Instant::now() + self.backoff.next_delay());
                Err(why)
            }
        }
    }

    /// Tells followers of [`CheckView`] what the agent has now. A failed
    /// call leaves the view as it was: a blip is no reason for a leader to
    /// step down (its session's TTL decides that).
    fn publish_view(&self) {
        let have = match self.have {
            Have::Registered(Some(Status::Passing)) => "passing",
            Have::Registered(Some(Status::Critical)) => "critical",
            Have::Registered(None) => "registered",
            _ if !self.registered_once => "not registered",
            Have::Absent => "deregistered",
            Have::Unknown => "unknown",
        };
        self.board.set_registration(&self.def.name, have);
        let (registered, passing) = match self.have {
            Have::Registered(status) => (true, status == Some(Status::Passing)),
            Have::Absent => (false, false),
            Have::Unknown => return,
        };
        let passes = self.passes_applied;
        self.view.send_if_modified(|v| {
            let new = CheckView {
                registered,
                passing,
                passes: if passing {
                    passes.max(v.passes)
                } else {
                    v.passes
                },
            };
            let changed = *v != new;
            *v = new;
            changed
        });
    }

    /// Brings the agent in line with `want`; at most a few calls.
    async fn sync(&mut self) -> Result<(), StepError> {
        // Register, update, and once more if the update found the check gone.
        for _ in 0..4 {
            match (self.want, self.have) {
                (Want::Absent, Have::Absent) => return Ok(()),
                (Want::Absent, _) => self.deregister().await?,
                (Want::Present(status), Have::Absent | Have::Unknown) => {
                    self.register(status).await?
                }
                (Want::Present(want), Have::Registered(have)) => {
                    let Some(want) = want.filter(|_| self.def.ttl.is_some()) else {
                        return Ok(());
                    };
                    if Some(want) == have && !self.refresh_due {
                        return Ok(());
                    }
                    self.update(want).await?;
                }
            }
        }
        Ok(())
    }

    async fn register(&mut self, status: Option<Status>) -> Result<(), StepError> {
        let body = self.def.registration(status);
        match self
            .client
            .put("/v1/agent/service/register", Some(&body))
            .await
        {
            Ok(_) => {
                self.have = Have::Registered(status);
                self.refresh_due = false;
                if status == Some(Status::Passing) {
                    self.passes_applied = self.passes_taken;
                }
                let again = if self.registered_once { " again" } else { "" };
                self.registered_once = true;
                // This call may be the one that found the agent back: the
                // agent has our registration, so that return needs no other.
                self.returns.mark_unchanged();
                log::info!(
                    "{}: registered{again} in Consul as {} at {}:{}{}",
                    self.def.name,
                    self.def.id,
                    self.def.address,
                    self.def.port,
                    status
                        .map(|s| format!(" ({})", s.as_str()))
                        .unwrap_or_default()
                );
                Ok(())
            }
            Err(e) => {
                self.have = Have::Unknown;
                Err(StepError::Retry(format!(
                    "registering {}: {e}",
                    self.def.id
                )))
            }
        }
    }

    async fn update(&mut self, status: Status) -> Result<(), StepError> {
        let path = format!("/v1/agent/check/update/{}", segment(&self.def.check_id()));
        let output = match status {
            Status::Passing => "ok",
            Status::Critical => "health check failed",
        };
        let body = json!({"Status": status.as_str(), "Output": output});
        match self.client.put(&path, Some(&body)).await {
            Ok(_) => {
                self.have = Have::Registered(Some(status));
                self.refresh_due = false;
                if status == Status::Passing {
                    self.passes_applied = self.passes_taken;
                }
                log::debug!("{}: TTL check set to {}", self.def.name, status.as_str());
                Ok(())
            }
            Err(e) if is_unknown_check(&e) => {
                log::info!(
                    "{}: the Consul agent does not know {} (restarted or removed): registering again",
                    self.def.name,
                    self.def.check_id()
                );
                self.have = Have::Unknown;
                Ok(())
            }
            Err(e) => {
                self.have = Have::Unknown;
                Err(StepError::Retry(format!(
                    "updating {}: {e}",
                    self.def.check_id()
                )))
            }
        }
    }

    async fn deregister(&mut self) -> Result<(), StepError> {
        let path = format!("/v1/agent/service/deregister/{}", segment(&self.def.id));
        match self.client.put(&path, None).await {
            Ok(_) => {
                log::info!(
                    "{}: deregistered {} from Consul",
                    self.def.name,
                    self.def.id
                );
                self.have = Have::Absent;
                Ok(())
            }
            Err(e) if is_unknown_service(&e) => {
                self.have = Have::Absent;
                Ok(())
            }
            Err(e) => Err(StepError::Retry(format!(
                "deregistering {}: {e}",
                self.def.id
            ))),
        }
    }
}

/// The agent's answer to a TTL update for a check it does not have.
fn is_unknown_check(e: &CallError) -> bool {
    match e {
        CallError::Status { status: 404, .. } => true,
        CallError::Status { body, .. } => {
            let b = body.to_ascii_lowercase();
            b.contains("unknown check")
                || b.contains("does not have associated ttl")
                || b.contains("not found")
        }
        CallError::Unreachable(_) => false,
    }
}

/// The agent's answer to deregistering a service it does not have.
fn is_unknown_service(e: &CallError) -> bool {
    match e {
        CallError::Status { status: 404, .. } => true,
        CallError::Status { body, .. } => body.to_ascii_lowercase().contains("unknown service"),
        CallError::Unreachable(_) => false,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ServiceDef {
        ServiceDef {
            id: "web-host1".into(),
            name: "web".into(),
            address: "10.0.0.5".parse().unwrap(),
            port: 8080,
            tags: vec!["a".into(), "b".into()],
            meta: BTreeMap::from([("version".to_string(), "1.2".to_string())]),
            ttl: Some(Duration::from_secs(10)),
            initial_status: Some("warning".into()),
            enable_tag_override: true,
            deregister_critical_after: Some("10m".into()),
        }
    }

    #[test]
    fn the_registration_carries_every_field() {
        let body = def().registration(None);
        assert_eq!(body["ID"], "web-host1");
        assert_eq!(body["Name"], "web");
        assert_eq!(body["Address"], "10.0.0.5");
        assert_eq!(body["Port"], 8080);
        assert_eq!(body["Tags"], json!(["a", "b"]));
        assert_eq!(body["Meta"]["version"], "1.2");
        assert_eq!(body["EnableTagOverride"], true);
        assert_eq!(body["Check"]["TTL"], "10s");
        assert_eq!(body["Check"]["Status"], "warning");
        assert_eq!(body["Check"]["DeregisterCriticalServiceAfter"], "10m");
        // A known health result wins over the initial status.
        assert_eq!(
            def().registration(Some(Status::Passing))["Check"]["Status"],
            "passing"
        );
    }

    #[test]
    fn without_initial_status_consul_decides_and_without_health_there_is_no_check() {
        let mut d = def();
        d.initial_status = None;
        assert!(d.registration(None)["Check"].get("Status").is_none());
        d.ttl = None;
        d.meta.clear();
        let body = d.registration(None);
        assert!(body.get("Check").is_none());
        assert!(body.get("Meta").is_none());
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn hostname_prefers_the_environment() {
        assert_eq!(hostname(&|_| Some("box-1".into())), "box-1");
        assert!(!hostname(&|_| None).is_empty());
        assert!(!hostname(&|_| Some("  ".into())).is_empty());
    }

    #[test]
    fn unknown_check_answers_are_recognised() {
        let status = |status, body: &str| CallError::Status {
            status,
            body: body.into(),
        };
        assert!(is_unknown_check(&status(404, "")));
        assert!(is_unknown_check(&status(
            500,
            "Unknown check \"service:web-1\""
        )));
        assert!(is_unknown_check(&status(
            500,
            "CheckID \"x\" does not have associated TTL"
        )));
        assert!(!is_unknown_check(&status(500, "No cluster leader")));
        assert!(!is_unknown_check(&CallError::Unreachable("refused".into())));
        assert!(is_unknown_service(&status(
            500,
            "Unknown service \"web-1\""
        )));
    }
}
