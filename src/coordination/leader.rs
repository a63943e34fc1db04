//! Leader election as a job feature: a job with `leader` competes for a
//! Consul KV key, and hooks react to its `elected` and `deposed` events.
//!
//! One task per such job (an [`Election`]). It competes only while the job
//! is healthy in Consul: once a passing health result has reached the agent
//! it creates a session tied to the node (`serfHealth`) and to the job's own
//! check (`service:<id>`), so a failing check invalidates the session at
//! once, then:
//! - acquires the key (`?acquire=`) with `{name, id, address, port}`;
//! - follows the key with a blocking query, to notice losing it and to try
//!   again as soon as it is free (after the lock-delay, which Consul imposes
//!   after an invalidation);
//! - renews the session every `ttl/2`.
//!
//! It is deposed (locally, at once, whatever Consul says) when the key's
//! session is no longer ours, when the session is gone (renew answers 404),
//! when the job turns unhealthy, exits, stops or enters maintenance, or when
//! renewals have failed for too long (the fail-safe, [`failsafe_margin`]).
//! `CONTAINERPILOT_<JOB>_LEADER` is set before `elected`/`deposed` is
//! published, so the hooks those events start see it.
//!
//! Voluntary step-downs destroy the session rather than release the key, so
//! Consul's lock-delay applies to every hand-over: it is the time a deposed
//! leader's `deposed` hook has before anyone else can be elected.
//!
//! "Healthy" is what the registry reports the agent has (its [`CheckView`]),
//! not the job's `healthy` event: a session can only be created once the
//! check passes *in Consul*, and a job restarted at once after a long run
//! publishes no new `healthy`, yet its new process must pass a check before
//! it may lead again (each step-down caused by the job waits for a newer pass).
//!
//! Idle cost: a renewal every `ttl/2` and one blocking query a minute while
//! competing; nothing while the job is not healthy.

use super::kv::{self, CreateError, SessionSpec};
use crate::config::model::{JobConfig, LeaderConfig};
use crate::discovery::backoff::Backoff;
use crate::discovery::client::{Blocking, CallError, ConsulClient, next_index};
use crate::discovery::registry::{CheckView, ConsulRegistry};
use crate::environ::{Environ, env_name};
use crate::events::{Bus, Event, EventCode, GLOBAL};
use crate::jobs::machine::State;
use crate::jobs::status::{LeaderStatus, StatusBoard};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// How long one blocking query on the key may wait (one request a minute
/// while nothing happens).
const KEY_WAIT: Duration = Duration::from_secs(60);
/// Retry delays after failed calls (creation, acquisition, key reads).
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);
/// Renewal retries are quicker at first: the fail-safe clock is running.
const RENEW_RETRY_MAX: Duration = Duration::from_secs(2);
/// The smallest fail-safe margin (see [`failsafe_margin`]).
const MIN_MARGIN: Duration = Duration::from_secs(2);

/// How long before the session could expire on the server a leader that
/// cannot renew it steps down: `max(2s, ttl/5)`.
///
/// The math: let `s` be when we *sent* the last create or renew call that
/// succeeded. The server restarted the session's TTL clock when it handled
/// that call, so no earlier than `s`, and Consul never invalidates a session
/// before its TTL has run out (it waits up to twice as long). So the session
/// lives at least until `s + ttl`, and no other instance can be elected
/// before `s + ttl + lockDelay`. We step down at `s + ttl - margin`: the
/// margin covers our own timer firing late on a loaded machine and the time
/// to tell the job, and `lockDelay` adds to it for the `deposed` hook.
/// Renewals start at `s + ttl/2`, which leaves `ttl/2 - margin` (at least
/// 3s with the minimum ttl of 10s) of retries before the step-down.
pub fn failsafe_margin(ttl: Duration) -> Duration {
    (ttl / 5).max(MIN_MARGIN)
}

/// When a leader whose last successful renewal was sent at `confirmed`
/// must step down if no renewal succeeds meanwhile.
pub fn failsafe_deadline(confirmed: Instant, ttl: Duration) -> Instant {
    confirmed + ttl.saturating_sub(failsafe_margin(ttl))
}

/// What every election task shares.
#[derive(Clone)]
pub struct Context {
    pub client: ConsulClient,
    pub registry: Arc<ConsulRegistry>,
    pub bus: Bus,
    pub environ: Environ,
    pub board: StatusBoard,
}

/// The running election tasks, one per job with `leader`.
pub struct Leaders {
    ctx: Context,
    /// By job: the settings the task runs with, and how to retire it.
    tasks: Mutex<HashMap<String, (LeaderConfig, mpsc::Sender<Retire>)>>,
}

/// Why an election ends (its sender dropped without a word: `Removed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retire {
    /// The job no longer has `leader` (or is gone): its variable and status
    /// entry go too.
    Removed,
    /// A new election for the same job takes over (its `leader` changed):
    /// the variable and status entry are the new one's.
    Replaced,
}

impl Leaders {
    pub fn new(ctx: Context) -> Leaders {
        Leaders {
            ctx,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an election for each job with `leader`; after a reload
    /// (`at_startup` false), retires the ones whose job is gone or whose
    /// `leader` changed.
    ///
    /// A job whose `leader` changed in a reload is restarted by the
    /// supervisor (its definition changed): its new election waits for the
    /// old process to be `stopped`, so the old one's health results cannot
    /// elect it.
    pub fn configure(&self, jobs: &[JobConfig], at_startup: bool) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashMap<&str, &LeaderConfig> = jobs
            .iter()
            .filter_map(|j| j.leader.as_ref().map(|l| (j.name.as_str(), l)))
            .collect();
        tasks.retain(|job, (config, retire)| {
            let keep = wanted.get(job.as_str()) == Some(&&*config);
            if !keep {
                let why = if wanted.contains_key(job.as_str()) {
                    Retire::Replaced
                } else {
                    Retire::Removed
                };
                // The channel holds one message and nobody else sends.
                let _ = retire.try_send(why);
            }
            keep
        });
        for (job, config) in wanted {
            if tasks.contains_key(job) {
                continue;
            }
            let Some(view) = self.ctx.registry.check_view(job) else {
                log::error!(
                    "{job}: cannot compete for leadership of {}: the job is not registered in Consul",
                    config.key
                );
                continue;
            };
            let restarting = !at_startup
                && self
                    .ctx
                    .board
                    .get(job)
                    .is_some_and(|s| s.state != State::Stopped);
            let (tx, rx) = mpsc::channel(1);
            let election =
                Election::new(job, config.clone(), self.ctx.clone(), view, rx, restarting);
            // Set now, not when the task first runs: the job's own process
            // may be started before that, and must see `false` too.
            election
                .ctx
                .environ
                .set_runtime(&election.env_key, Some("false".into()));
            election.publish_status();
            tokio::spawn(election.run());
            tasks.insert(job.to_string(), (config.clone(), tx));
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not competing: the job is not healthy in Consul (or not yet).
    Standby,
    /// Competing: opening a session, or waiting for the key.
    Candidate,
    /// Holding the key.
    Leader,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// Our session: its ID and when the last call that (re)started its TTL
/// clock was sent.
#[derive(Debug, Clone)]
struct Session {
    id: String,
    confirmed: Instant,
}

type Pending<T> = Option<Pin<Box<dyn Future<Output = T> + Send>>>;

/// One job's election.
struct Election {
    job: String,
    config: LeaderConfig,
    ctx: Context,
    env_key: String,
    events: broadcast::Receiver<Event>,
    view: watch::Receiver<CheckView>,
    retire: mpsc::Receiver<Retire>,
    /// Retired: the status entry is no longer ours to write.
    retired: bool,

    role: Role,
    since_ms: u64,
    session: Option<Session>,
    /// After a step-down caused by the job (unhealthy, exit, stop,
    /// maintenance), compete again only after a passing result newer than
    /// this many passes (see [`CheckView::passes`]).
    needs_pass_after: Option<u64>,
    /// Started by a reload that restarts the job: nothing counts until the
    /// old process is `stopped`.
    restarting: bool,
    /// The key's index for the next blocking query.
    key_index: u64,
    /// Who holds the key as last seen: session and service ID.
    holder_session: Option<String>,
    holder: Option<String>,
    /// When the key was first seen free (for the lock-delay wait).
    free_since: Option<Instant>,
    /// When we last became leader: a key read started before then may not
    /// show our acquisition yet, so it cannot depose us.
    elected_at: Option<Instant>,
    /// The fail-safe stepped down while the session may still be ours:
    /// a successful renewal tries to take the key back.
    failsafe_tripped: bool,

    opening: Pending<Result<(String, Instant), CreateError>>,
    renewing: Pending<(String, Instant, Result<bool, CallError>)>,
    acquiring: Pending<(String, Result<bool, CallError>)>,
    query: Pending<(u64, Instant, Result<kv::Read, CallError>)>,
    open_at: Option<Instant>,
    renew_at: Option<Instant>,
    acquire_at: Option<Instant>,
    query_at: Option<Instant>,
    open_backoff: Backoff,
    renew_backoff: Backoff,
    acquire_backoff: Backoff,
    query_backoff: Backoff,
    /// A failure was logged; the next success says the trouble is over.
    troubled: bool,
}

impl Election {
    fn new(
        job: &str,
        config: LeaderConfig,
        ctx: Context,
        view: watch::Receiver<CheckView>,
        retire: mpsc::Receiver<Retire>,
        restarting: bool,
    ) -> Election {
        let backoff = || Backoff::new(RETRY_INITIAL, RETRY_MAX);
        // Only a passing result that comes after this task started counts.
        let passes = view.borrow().passes;
        Election {
            env_key: format!("CONTAINERPILOT_{}_LEADER", env_name(job)),
            job: job.to_string(),
            events: ctx.bus.subscribe(),
            config,
            ctx,
            view,
            retire,
            retired: false,
            role: Role::Standby,
            since_ms: now_ms(),
            session: None,
            needs_pass_after: Some(passes),
            restarting,
            key_index: 0,
            holder_session: None,
            holder: None,
            free_since: None,
            elected_at: None,
            failsafe_tripped: false,
            opening: None,
            renewing: None,
            acquiring: None,
            query: None,
            open_at: None,
            renew_at: None,
            acquire_at: None,
            query_at: None,
            open_backoff: Backoff::new(RETRY_INITIAL, Duration::from_secs(5)),
            renew_backoff: Backoff::new(RETRY_INITIAL, RENEW_RETRY_MAX),
            acquire_backoff: backoff(),
            query_backoff: backoff(),
            troubled: false,
        }
    }

    fn service_id(&self) -> Option<String> {
        self.ctx.registry.service(&self.job).map(|d| d.id)
    }

    async fn run(mut self) {
        log::info!(
            "{}: competes for leadership of Consul key {} once healthy (session ttl {}, lock-delay {})",
            self.job,
            self.config.key,
            kv::go_duration(self.config.ttl),
            kv::go_duration(self.config.lock_delay)
        );
        let mut view_open = true;
        self.on_view();
        loop {
            let deadline = self.deadline();
            tokio::select! {
                why = self.retire.recv() => {
                    self.retire_now(why.unwrap_or(Retire::Removed));
                    return;
                }
                event = self.events.recv() => match event {
                    Ok(event) => self.on_event(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.ctx.bus.record_lost(n);
                        log::error!("{}: leader election missed {n} events; stepping down to be safe", self.job);
                        self.job_unfit("events were missed");
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.retire_now(Retire::Removed);
                        return;
                    }
                },
                changed = self.view.changed(), if view_open => match changed {
                    Ok(()) => self.on_view(),
                    Err(_) => view_open = false,
                },
                result = wait(&mut self.opening) => {
                    self.opening = None;
                    self.on_opened(result);
                }
                (id, sent, result) = wait(&mut self.renewing) => {
                    self.renewing = None;
                    self.on_renewed(&id, sent, result);
                }
                (id, result) = wait(&mut self.acquiring) => {
                    self.acquiring = None;
                    self.on_acquired(&id, result);
                }
                (sent, started, result) = wait(&mut self.query) => {
                    self.query = None;
                    self.on_key(sent, started, result);
                }
                _ = sleep(self.open_at) => {
                    self.open_at = None;
                    self.open();
                }
                _ = sleep(self.renew_at) => {
                    self.renew_at = None;
                    self.renew();
                }
                _ = sleep(self.acquire_at) => {
                    self.acquire_at = None;
                    self.acquire();
                }
                _ = sleep(self.query_at) => {
                    self.query_at = None;
                    self.follow_key();
                }
                _ = sleep(deadline) => self.failsafe(),
            }
            self.publish_status();
        }
    }

    /// The fail-safe deadline while leading.
    fn deadline(&self) -> Option<Instant> {
        match (&self.session, self.role) {
            (Some(s), Role::Leader) => Some(failsafe_deadline(s.confirmed, self.config.ttl)),
            _ => None,
        }
    }

    fn on_event(&mut self, event: &Event) {
        let from_job = event.source.as_ref() == self.job;
        if from_job && event.code == EventCode::Stopped && self.restarting {
            self.restarting = false;
            self.needs_pass_after = Some(self.view.borrow().passes);
            return;
        }
        let reason = match event.code {
            EventCode::Unhealthy if from_job => "the job is unhealthy",
            EventCode::ExitSuccess | EventCode::ExitFailed if from_job => {
                "the job's process exited"
            }
            EventCode::Stopping | EventCode::Stopped if from_job => "the job is stopping",
            EventCode::EnterMaintenance if event.source.as_ref() == GLOBAL => "maintenance mode",
            _ => return,
        };
        self.job_unfit(reason);
    }

    /// The job cannot lead now: step down, give the session up, and wait
    /// for a newer passing health result before competing again.
    fn job_unfit(&mut self, reason: &str) {
        self.needs_pass_after = Some(self.view.borrow().passes);
        self.step_down(reason);
        self.close_session();
    }

    /// Follows what the agent has of the job's service.
    fn on_view(&mut self) {
        let view = *self.view.borrow_and_update();
        if self.restarting {
            return;
        }
        let fresh = self
            .needs_pass_after
            .is_none_or(|after| view.passes > after);
        if view.passing && fresh {
            self.needs_pass_after = None;
            if self.session.is_none() && self.opening.is_none() {
                // A new pass is also a good moment to retry a refused creation.
                self.open_at = None;
                self.open();
            }
        } else if !view.passing && (self.session.is_some() || self.opening.is_some()) {
            // Consul invalidates the session of a critical or removed check.
            self.needs_pass_after = Some(view.passes);
            self.step_down("the job's check is no longer passing in Consul");
            self.close_session();
        }
    }

    fn eligible(&self) -> bool {
        let view = *self.view.borrow();
        view.passing && self.needs_pass_after.is_none() && !self.restarting
    }

    fn open(&mut self) {
        if !self.eligible() || self.session.is_some() || self.opening.is_some() {
            return;
        }
        let Some(id) = self.service_id() else { return };
        self.set_role(Role::Candidate);
        let spec = SessionSpec {
            name: kv::session_name_for(&id),
            checks: vec!["serfHealth".into(), format!("service:{id}")],
            ttl: Some(self.config.ttl),
            lock_delay: self.config.lock_delay,
        };
        let client = self.ctx.client.clone();
        self.opening = Some(Box::pin(async move {
            let sent = Instant::now();
            kv::create_session(&client, &spec)
                .await
                .map(|id| (id, sent))
        }));
    }

    fn on_opened(&mut self, result: Result<(String, Instant), CreateError>) {
        match result {
            Ok((id, sent)) => {
                if !self.eligible() {
                    // The job turned unfit while we waited for Consul.
                    destroy_later(&self.ctx.client, id);
                    self.set_role(Role::Standby);
                    return;
                }
                self.recovered();
                log::debug!("{}: session {id} created", self.job);
                self.open_backoff.reset();
                self.session = Some(Session {
                    id,
                    confirmed: sent,
                });
                self.renew_at = Some(sent + self.config.ttl / 2);
                self.key_index = 0;
                self.free_since = None;
                self.acquire();
                self.follow_key();
            }
            Err(CreateError::CheckNotPassing(why)) => {
                // The agent has the check passing but the catalog may lag a
                // moment; retried on a timer and on the next pass.
                log::debug!("{}: cannot create a session yet: {why}", self.job);
                self.open_at = Some(Instant::now() + self.open_backoff.next_delay());
            }
            Err(CreateError::Failed(e)) => {
                self.trouble(&format!("cannot create a session ({e})"));
                self.open_at = Some(Instant::now() + self.open_backoff.next_delay());
            }
        }
    }

    fn renew(&mut self) {
        let Some(session) = &self.session else { return };
        if self.renewing.is_some() {
            return;
        }
        let client = self.ctx.client.clone();
        let id = session.id.clone();
        self.renewing = Some(Box::pin(async move {
            let sent = Instant::now();
            let result = kv::renew_session(&client, &id).await;
            (id, sent, result)
        }));
    }

    fn on_renewed(&mut self, id: &str, sent: Instant, result: Result<bool, CallError>) {
        if self.session.as_ref().is_none_or(|s| s.id != id) {
            return;
        }
        match result {
            Ok(true) => {
                self.recovered();
                self.renew_backoff.reset();
                if let Some(s) = &mut self.session {
                    s.confirmed = sent;
                }
                self.renew_at = Some(sent + self.config.ttl / 2);
                if std::mem::take(&mut self.failsafe_tripped) {
                    // The session survived the outage: the key may still be ours.
                    self.acquire();
                }
            }
            Ok(false) => {
                log::info!(
                    "{}: Consul no longer knows our session (expired or invalidated by a check)",
                    self.job
                );
                self.step_down("the session is gone");
                self.close_session();
                self.open_at = Some(Instant::now() + self.open_backoff.next_delay());
            }
            Err(e) => {
                let left = self
                    .deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()));
                let note = match left {
                    Some(left) => format!(
                        "; stepping down in {:.1}s unless one succeeds",
                        left.as_secs_f64()
                    ),
                    None => String::new(),
                };
                self.trouble(&format!("cannot renew the session ({e}){note}"));
                self.renew_at = Some(Instant::now() + self.renew_backoff.next_delay());
            }
        }
    }

    /// Tries to take the key, unless a try is running or we lead already.
    fn acquire(&mut self) {
        let Some(session) = &self.session else { return };
        if self.acquiring.is_some() || self.role == Role::Leader {
            return;
        }
        self.acquire_at = None;
        let client = self.ctx.client.clone();
        let key = self.config.key.clone();
        let id = session.id.clone();
        let value = self.value();
        self.acquiring = Some(Box::pin(async move {
            let result = kv::acquire(&client, &key, &id, value).await;
            (id, result)
        }));
    }

    /// What the leader writes into the key.
    fn value(&self) -> Vec<u8> {
        let def = self.ctx.registry.service(&self.job);
        let value = serde_json::json!({
            "name": self.job,
            "id": def.as_ref().map(|d| d.id.clone()),
            "address": def.as_ref().map(|d| d.address.to_string()),
            "port": def.as_ref().map(|d| d.port),
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }

    fn on_acquired(&mut self, id: &str, result: Result<bool, CallError>) {
        let Some(session) = &self.session else { return };
        if session.id != id {
            return;
        }
        match result {
            Ok(true) => {
                self.acquire_backoff.reset();
                if Instant::now() >= failsafe_deadline(session.confirmed, self.config.ttl) {
                    // Not renewed for too long: wait for a renewal first.
                    self.failsafe_tripped = true;
                    return;
                }
                self.holder_session = Some(id.to_string());
                self.holder = self.service_id();
                self.free_since = None;
                self.elect();
            }
            Ok(false) => {
                self.acquire_backoff.reset();
                if self.holder_session.is_none() {
                    // Free but refused: the lock-delay after an invalidation.
                    // Try again when it must be over.
                    let now = Instant::now();
                    let free_since = *self.free_since.get_or_insert(now);
                    let at = (free_since + self.config.lock_delay).max(now + RETRY_INITIAL);
                    self.acquire_at = Some(at);
                }
            }
            Err(e) => {
                self.trouble(&format!("cannot acquire {} ({e})", self.config.key));
                self.acquire_at = Some(Instant::now() + self.acquire_backoff.next_delay());
            }
        }
    }

    /// Starts the blocking query on the key, unless one runs.
    fn follow_key(&mut self) {
        if self.session.is_none() || self.query.is_some() {
            return;
        }
        self.query_at = None;
        let client = self.ctx.client.clone();
        let key = self.config.key.clone();
        let index = self.key_index;
        self.query = Some(Box::pin(async move {
            let started = Instant::now();
            let blocking = Blocking {
                index,
                wait: KEY_WAIT,
            };
            (
                index,
                started,
                kv::read(&client, &key, Some(blocking)).await,
            )
        }));
    }

    fn on_key(&mut self, sent: u64, started: Instant, result: Result<kv::Read, CallError>) {
        if self.session.is_none() {
            return;
        }
        let read = match result {
            Ok(read) => read,
            Err(e) => {
                // The agent may come back restarted, with a lower index: a
                // query with the old one would be held for the whole wait.
                self.key_index = 0;
                self.trouble(&format!("cannot read {} ({e})", self.config.key));
                self.query_at = Some(Instant::now() + self.query_backoff.next_delay());
                return;
            }
        };
        self.recovered();
        self.key_index = next_index(sent, read.index);
        // An answer without a change long before the wait ran out is not
        // how blocking queries behave: slow down rather than spin.
        if read.index.is_none()
            || (sent != 0 && read.index == Some(sent) && started.elapsed() < KEY_WAIT / 2)
        {
            self.query_at = Some(Instant::now() + self.query_backoff.next_delay());
        } else {
            self.query_backoff.reset();
            self.follow_key();
        }
        let holder_session = read.entry.as_ref().and_then(|e| e.session.clone());
        self.holder = holder_session.as_ref().and_then(|_| {
            read.entry
                .as_ref()
                .and_then(|e| e.value.as_deref())
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
        });
        let ours = self.session.as_ref().map(|s| s.id.as_str());
        let held_by_us = holder_session.is_some() && holder_session.as_deref() == ours;
        let free = holder_session.is_none();
        self.holder_session = holder_session;
        if free {
            self.free_since.get_or_insert_with(Instant::now);
        } else {
            self.free_since = None;
        }
        let stale = self.elected_at.is_some_and(|at| started < at);
        if self.role == Role::Leader && !held_by_us && !stale {
            self.step_down(if free {
                "the key was released or deleted"
            } else {
                "another session holds the key"
            });
        }
        // Ours but not leading (after the fail-safe): confirm by acquiring.
        // Free: take it, unless a retry after the lock-delay is scheduled.
        if self.role != Role::Leader && (held_by_us || (free && self.acquire_at.is_none())) {
            self.acquire();
        }
    }

    /// No renewal succeeded for `ttl - margin`: step down before the
    /// session could expire on the server. The session is kept: if a later
    /// renewal succeeds, we try to take the key back.
    fn failsafe(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        log::warn!(
            "{}: no session renewal succeeded for {}: stepping down before the session could expire",
            self.job,
            kv::go_duration(self.config.ttl - failsafe_margin(self.config.ttl))
        );
        self.failsafe_tripped = true;
        self.step_down("the session could not be renewed");
    }

    fn elect(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        self.ctx
            .environ
            .set_runtime(&self.env_key, Some("true".into()));
        self.set_role(Role::Leader);
        self.elected_at = Some(Instant::now());
        self.publish_status();
        log::info!(
            "{}: elected leader (Consul key {})",
            self.job,
            self.config.key
        );
        self.ctx
            .bus
            .publish(Event::new(EventCode::Elected, &self.job));
    }

    /// Leaves leadership (if held) and says why; keeps competing if we have a session.
    fn step_down(&mut self, reason: &str) {
        let next = if self.session.is_some() || self.opening.is_some() {
            Role::Candidate
        } else {
            Role::Standby
        };
        if self.role != Role::Leader {
            self.set_role(next);
            return;
        }
        self.ctx
            .environ
            .set_runtime(&self.env_key, Some("false".into()));
        self.set_role(next);
        self.publish_status();
        log::warn!("{}: deposed ({reason})", self.job);
        self.ctx
            .bus
            .publish(Event::new(EventCode::Deposed, &self.job));
    }

    /// Gives the session up: destroyed (its lock released with the
    /// lock-delay), every call about it dropped.
    fn close_session(&mut self) {
        if let Some(session) = self.session.take() {
            destroy_later(&self.ctx.client, session.id);
        }
        // A creation in flight goes on: `on_opened` destroys its session
        // if the job is still unfit then.
        self.renewing = None;
        self.acquiring = None;
        self.query = None;
        self.open_at = None;
        self.renew_at = None;
        self.acquire_at = None;
        self.query_at = None;
        self.failsafe_tripped = false;
        self.holder_session = None;
        self.free_since = None;
        self.set_role(Role::Standby);
    }

    /// A reload removed the job's `leader` (or the job), or changed it.
    fn retire_now(&mut self, why: Retire) {
        self.retired = true;
        self.step_down("the job no longer competes for this key");
        self.close_session();
        if why == Retire::Removed {
            self.ctx.environ.set_runtime(&self.env_key, None);
            self.ctx.board.set_leader(&self.job, None);
        }
    }

    fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.since_ms = now_ms();
        }
    }

    fn publish_status(&self) {
        if self.retired {
            return;
        }
        let holder = match self.role {
            Role::Leader => self.service_id(),
            _ => self
                .holder
                .clone()
                .filter(|_| self.holder_session.is_some()),
        };
        self.ctx.board.set_leader(
            &self.job,
            Some(LeaderStatus {
                role: self.role.as_str().to_string(),
                key: self.config.key.clone(),
                holder,
                since_ms: self.since_ms,
            }),
        );
    }

    /// Logs a failed call once per spell of trouble.
    fn trouble(&mut self, what: &str) {
        if !std::mem::replace(&mut self.troubled, true) {
            log::warn!("{}: leader election: {what}; retrying", self.job);
        } else {
            log::debug!("{}: leader election: {what}", self.job);
        }
    }

    fn recovered(&mut self) {
        if std::mem::take(&mut self.troubled) {
            log::info!("{}: leader election: Consul answers again", self.job);
        }
    }
}

/// Destroys a session in the background: it is invalid or unwanted either
/// way, and if the call fails the session expires by its TTL.
fn destroy_later(client: &ConsulClient, id: String) {
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = kv::destroy_session(&client, &id).await {
            log::debug!(
                "leader election: cannot destroy session {id} ({e}); it expires by its TTL"
            );
        }
    });
}

async fn wait<T>(pending: &mut Pending<T>) -> T {
    match pending {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failsafe_steps_down_before_the_session_can_expire() {
        for secs in [10, 15, 30, 60, 600, 86_400] {
            let ttl = Duration::from_secs(secs);
            let margin = failsafe_margin(ttl);
            assert!(margin >= MIN_MARGIN, "{secs}s");
            // Deposed strictly before the earliest server-side expiry...
            let start = Instant::now();
            assert!(failsafe_deadline(start, ttl) + margin <= start + ttl);
            // ...and renewals get at least 3s of retries first.
            assert!(ttl / 2 >= margin + Duration::from_secs(3), "{secs}s");
        }
        assert_eq!(
            failsafe_margin(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        assert_eq!(
            failsafe_margin(Duration::from_secs(60)),
            Duration::from_secs(12)
        );
    }

    #[test]
    fn key_indexes_follow_consuls_rules() {
        assert_eq!(next_index(0, Some(9)), 9);
        assert_eq!(next_index(9, Some(3)), 0);
        assert_eq!(next_index(0, Some(0)), 1);
        assert_eq!(next_index(5, None), 0);
    }
}
