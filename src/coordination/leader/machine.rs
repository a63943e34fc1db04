//! The rules of one job's election: one struct, one transition function.
//!
//! `Machine::on(input, now)` decides; it returns [`Effect`]s (Consul calls,
//! the variable, events, log lines) that the task carries out, and the task
//! feeds back the replies as [`Input`]s. The clock is passed in and nothing
//! here does I/O, so renewal failures, the fail-safe, the lock-delay and a
//! lost session are unit-tested without Consul (`machine_tests.rs`,
//! `machine_fitness_tests.rs`). The rules about the session live in
//! `machine/session.rs`, those about the key in `machine/key.rs`.
//!
//! ```text
//!            passing check                session created, key acquired
//!  Standby ─────────────────▶ Candidate ─────────────────────────────────▶ Leader
//!     ▲    (creates a session)    ▲                                        │
//!     │                           └── key lost, fail-safe, session gone ───┤
//!     └──── job unfit (unhealthy, exit, stop, maintenance), retired ───────┘
//! ```

mod key;
mod session;

use super::protocol::{Agent, Call, Effect, Input, Retire, Role, Timer};
use crate::config::model::LeaderConfig;
use crate::discovery::backoff::Backoff;
use crate::events::{Event, EventCode, GLOBAL};
use log::Level;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long one blocking query on the key may wait (one request a minute
/// while nothing happens).
pub const KEY_WAIT: Duration = Duration::from_secs(60);
/// Retry delays after failed calls (creation, acquisition, key reads).
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);
const OPEN_RETRY_MAX: Duration = Duration::from_secs(5);
/// Renewal retries are quicker at first: the fail-safe clock is running.
const RENEW_RETRY_MAX: Duration = Duration::from_secs(2);
/// The smallest fail-safe margin (see [`failsafe_margin`]).
pub const MIN_MARGIN: Duration = Duration::from_secs(2);

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

/// Our session: its ID and when the last call that (re)started its TTL
/// clock was sent.
#[derive(Debug, Clone)]
struct Session {
    id: String,
    confirmed: Instant,
}

/// One job's election.
#[derive(Debug)]
pub struct Machine {
    job: String,
    config: LeaderConfig,
    agent: Agent,
    /// Retired: nothing more happens, the status entry is not ours to write.
    retired: bool,
    role: Role,
    role_since: Instant,
    session: Option<Session>,
    /// After a step-down caused by the job (unhealthy, exit, stop,
    /// maintenance), compete again only after a passing result newer than
    /// this many passes.
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
    /// The calls started and not answered yet (at most one of each).
    in_flight: BTreeSet<Call>,
    /// Every timer but [`Timer::Failsafe`], which follows from the session.
    timers: BTreeMap<Timer, Instant>,
    open_backoff: Backoff,
    renew_backoff: Backoff,
    acquire_backoff: Backoff,
    query_backoff: Backoff,
    /// A failure was logged; the next success says the trouble is over.
    troubled: bool,
}

impl Machine {
    /// A new election for `job`. Only a passing result newer than `agent`'s
    /// counts; with `restarting`, only one after the job's `stopped`.
    pub fn new(
        job: &str,
        config: LeaderConfig,
        agent: Agent,
        restarting: bool,
        now: Instant,
    ) -> Machine {
        Machine {
            job: job.to_string(),
            config,
            needs_pass_after: Some(agent.passes),
            agent,
            retired: false,
            role: Role::Standby,
            role_since: now,
            session: None,
            restarting,
            key_index: 0,
            holder_session: None,
            holder: None,
            free_since: None,
            elected_at: None,
            failsafe_tripped: false,
            in_flight: BTreeSet::new(),
            timers: BTreeMap::new(),
            open_backoff: Backoff::new(RETRY_INITIAL, OPEN_RETRY_MAX),
            renew_backoff: Backoff::new(RETRY_INITIAL, RENEW_RETRY_MAX),
            acquire_backoff: Backoff::new(RETRY_INITIAL, RETRY_MAX),
            query_backoff: Backoff::new(RETRY_INITIAL, RETRY_MAX),
            troubled: false,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// When the role last changed.
    pub fn role_since(&self) -> Instant {
        self.role_since
    }

    pub fn retired(&self) -> bool {
        self.retired
    }

    /// Who holds the key as last seen (a service ID), when someone does.
    pub fn holder(&self) -> Option<&str> {
        self.holder
            .as_deref()
            .filter(|_| self.holder_session.is_some())
    }

    /// Records what the agent has of the service without reacting: the task
    /// calls it before each input, so every rule sees the latest (as the
    /// agent's check moves on its own), while [`Input::Agent`] reacts.
    pub fn observe(&mut self, agent: Agent) {
        self.agent = agent;
    }

    /// The earliest timer set, and when it fires.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        let failsafe = self.failsafe_at().map(|at| (Timer::Failsafe, at));
        self.timers
            .iter()
            .map(|(t, at)| (*t, *at))
            .chain(failsafe)
            .min_by_key(|(_, at)| *at)
    }

    /// When a timer fires, if it is set.
    #[cfg(test)]
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Failsafe => self.failsafe_at(),
            _ => self.timers.get(&timer).copied(),
        }
    }

    pub fn in_flight(&self, call: Call) -> bool {
        self.in_flight.contains(&call)
    }

    pub fn on(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.retired {
            return fx;
        }
        match input {
            Input::Agent(agent) => {
                self.agent = agent;
                self.on_agent(now, &mut fx);
            }
            Input::Event(event) => self.on_event(&event, now, &mut fx),
            Input::EventsLost(n) => {
                self.log(
                    &mut fx,
                    Level::Error,
                    format!("leader election missed {n} events; stepping down to be safe"),
                );
                self.job_unfit("events were missed", now, &mut fx);
            }
            Input::Created { sent, result } => {
                self.in_flight.remove(&Call::CreateSession);
                self.on_created(sent, result, now, &mut fx);
            }
            Input::Renewed { id, sent, result } => {
                self.in_flight.remove(&Call::Renew);
                self.on_renewed(&id, sent, result, now, &mut fx);
            }
            Input::Acquired { id, result } => {
                self.in_flight.remove(&Call::Acquire);
                self.on_acquired(&id, result, now, &mut fx);
            }
            Input::KeyRead {
                index,
                started,
                result,
            } => {
                self.in_flight.remove(&Call::ReadKey);
                self.on_key(index, started, result, now, &mut fx);
            }
            Input::Timer(timer) => {
                self.timers.remove(&timer);
                match timer {
                    Timer::Open => self.open(now, &mut fx),
                    Timer::Renew => self.renew(&mut fx),
                    Timer::Acquire => self.acquire(&mut fx),
                    Timer::ReadKey => self.follow_key(&mut fx),
                    // Only once due: every renewal moves the deadline.
                    Timer::Failsafe if self.failsafe_at().is_some_and(|at| now >= at) => {
                        self.failsafe(now, &mut fx)
                    }
                    Timer::Failsafe => {}
                }
            }
            Input::Retire(why) => self.retire(why, now, &mut fx),
        }
        fx
    }

    /// The fail-safe deadline while leading.
    fn failsafe_at(&self) -> Option<Instant> {
        match (&self.session, self.role) {
            (Some(s), Role::Leader) => Some(failsafe_deadline(s.confirmed, self.config.ttl)),
            _ => None,
        }
    }

    fn creating(&self) -> bool {
        self.in_flight(Call::CreateSession)
    }

    fn on_event(&mut self, event: &Event, now: Instant, fx: &mut Vec<Effect>) {
        let from_job = event.source.as_ref() == self.job;
        if from_job && event.code == EventCode::Stopped && self.restarting {
            self.restarting = false;
            self.needs_pass_after = Some(self.agent.passes);
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
        self.job_unfit(reason, now, fx);
    }

    /// The job cannot lead now: step down, give the session up, and wait
    /// for a newer passing health result before competing again.
    fn job_unfit(&mut self, reason: &str, now: Instant, fx: &mut Vec<Effect>) {
        self.needs_pass_after = Some(self.agent.passes);
        self.step_down(reason, now, fx);
        self.close_session(now, fx);
    }

    /// Follows what the agent has of the job's service.
    fn on_agent(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.restarting {
            return;
        }
        let fresh = self
            .needs_pass_after
            .is_none_or(|after| self.agent.passes > after);
        if self.agent.passing && fresh {
            self.needs_pass_after = None;
            if self.session.is_none() && !self.creating() {
                // A new pass is also a good moment to retry a refused creation.
                self.timers.remove(&Timer::Open);
                self.open(now, fx);
            }
        } else if !self.agent.passing && (self.session.is_some() || self.creating()) {
            // Consul invalidates the session of a critical or removed check.
            self.needs_pass_after = Some(self.agent.passes);
            self.step_down("the job's check is no longer passing in Consul", now, fx);
            self.close_session(now, fx);
        }
    }

    fn eligible(&self) -> bool {
        self.agent.passing && self.needs_pass_after.is_none() && !self.restarting
    }

    fn elect(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.role == Role::Leader {
            return;
        }
        fx.push(Effect::SetVariable(Some(true)));
        self.set_role(Role::Leader, now);
        self.elected_at = Some(now);
        self.publish_status(fx);
        let line = format!("elected leader (Consul key {})", self.config.key);
        self.log(fx, Level::Info, line);
        fx.push(Effect::Publish(EventCode::Elected));
    }

    /// Leaves leadership (if held) and says why; keeps competing if we have a session.
    fn step_down(&mut self, reason: &str, now: Instant, fx: &mut Vec<Effect>) {
        let next = if self.session.is_some() || self.creating() {
            Role::Candidate
        } else {
            Role::Standby
        };
        if self.role != Role::Leader {
            self.set_role(next, now);
            return;
        }
        fx.push(Effect::SetVariable(Some(false)));
        self.set_role(next, now);
        self.publish_status(fx);
        self.log(fx, Level::Warn, format!("deposed ({reason})"));
        fx.push(Effect::Publish(EventCode::Deposed));
    }

    /// A reload removed the job's `leader` (or the job), or changed it.
    fn retire(&mut self, why: Retire, now: Instant, fx: &mut Vec<Effect>) {
        self.retired = true;
        self.step_down("the job no longer competes for this key", now, fx);
        self.close_session(now, fx);
        if why == Retire::Removed {
            fx.push(Effect::SetVariable(None));
            fx.push(Effect::ClearStatus);
        }
    }

    fn set_role(&mut self, role: Role, now: Instant) {
        if self.role != role {
            self.role = role;
            self.role_since = now;
        }
    }

    fn publish_status(&self, fx: &mut Vec<Effect>) {
        if !self.retired {
            fx.push(Effect::PublishStatus);
        }
    }

    fn log(&self, fx: &mut Vec<Effect>, level: Level, line: String) {
        fx.push(Effect::Log(level, format!("{}: {line}", self.job)));
    }

    /// Logs a failed call once per spell of trouble.
    fn trouble(&mut self, fx: &mut Vec<Effect>, what: &str) {
        if !std::mem::replace(&mut self.troubled, true) {
            self.log(
                fx,
                Level::Warn,
                format!("leader election: {what}; retrying"),
            );
        } else {
            self.log(fx, Level::Debug, format!("leader election: {what}"));
        }
    }

    fn recovered(&mut self, fx: &mut Vec<Effect>) {
        if std::mem::take(&mut self.troubled) {
            self.log(
                fx,
                Level::Info,
                "leader election: Consul answers again".into(),
            );
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "machine_fitness_tests.rs"]
mod fitness_tests;
