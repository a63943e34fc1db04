//! One service's registration as a pure state machine.
//!
//! [`Machine::on`] takes what happened (a job's action, a reload, a live
//! edit, the answer to a Consul call, the retry time, the agent's return) and
//! the time, and returns [`Effect`]s: the next Consul call, what to log, what
//! the status view and [`CheckView`] followers see, when to retry. It asks
//! for one call at a time and decides the next only from its answer (fed back
//! as [`Input::Answered`]), so a TTL update can never overtake the
//! registration it needs. Nothing here does I/O or reads the clock, so the
//! rules are unit-tested without Consul (machine_tests.rs); task.rs performs
//! the effects.
//!
//! ```text
//!   want Present ──▶ Register ──ok──▶ Registered ──status differs──▶ Update
//!                       ▲                                             │
//!                       └──── "unknown check" (agent lost it) ◀───────┘
//!   want Absent ───▶ Deregister ──ok or "unknown service"──▶ Absent
//!   a call fails ──▶ Unknown, retry after a backoff delay
//! ```

use super::CheckView;
use super::definition::{ServiceDef, Status};
use crate::discovery::backoff::Backoff;
use crate::discovery::client::CallError;
use crate::jobs::machine::ServiceAction;
use crate::jobs::status::Registration;
use log::Level;
use std::time::{Duration, Instant};

/// First retry after a failed call; doubles up to [`RETRY_MAX`]. Small enough
/// that a service is back within a few seconds of the agent's return.
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// Calls one sync may make: register, update, and once more if the update
/// found the check gone.
const MAX_CALLS_PER_SYNC: u8 = 4;

/// What the machine reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A job's wish. Maintenance arrives as `Deregister`, its end as
    /// `Register`.
    Action(ServiceAction),
    /// A reload changed the registration.
    Define(ServiceDef),
    /// A live tag/meta change; the sync's [`Effect::Settled`] answers it.
    Edit(ServiceDef),
    /// The answer to the last [`Effect::Call`]. The task feeds it before
    /// any other input.
    Answered(Result<(), CallError>),
    /// The time given by the last [`Effect::RetryAt`] came.
    RetryDue,
    /// The agent answers again after an outage: it may have lost our
    /// registration, so it is sent again.
    AgentReturned,
}

/// A call to the Consul agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Register the service, its TTL check in this status (`None`: the
    /// initial one).
    Register(ServiceDef, Option<Status>),
    /// Set the TTL check's status (and refresh its TTL).
    Update {
        check_id: String,
        status: Status,
    },
    Deregister {
        id: String,
    },
}

/// What the task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Make this call and feed its answer back as [`Input::Answered`].
    Call(Call),
    Log(Level, String),
    /// What the status view shows of the registration.
    Board(Registration),
    /// Followers of [`CheckView`] see this (sent only when it changed).
    View(CheckView),
    /// When to feed [`Input::RetryDue`]; `None`: no retry pending.
    RetryAt(Option<Instant>),
    /// The registration just made covers the agent's return: forget any
    /// return signalled meanwhile (it would only register again).
    ReturnSeen,
    /// The sync started by the input is over: whether the service is
    /// registered, or why a call failed (it is retried).
    Settled(Result<bool, String>),
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

/// One sync in progress: calls until the agent has what the job wants, or
/// one fails.
#[derive(Debug)]
struct Sync {
    calls: u8,
    /// The call whose answer is awaited.
    pending: Option<Call>,
    /// A deregistration asked for while calls were failing: its failure is
    /// said again, as it is often the last call (at shutdown).
    say_failed_deregistration: bool,
}

/// Keeps one job's registration in line with what the job wants.
#[derive(Debug)]
pub struct Machine {
    def: ServiceDef,
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
    /// What followers of [`CheckView`] were told last.
    published: CheckView,
    sync: Option<Sync>,
}

impl Machine {
    pub fn new(def: ServiceDef) -> Machine {
        Machine {
            def,
            want: Want::Absent,
            have: Have::Absent,
            refresh_due: false,
            backoff: Backoff::new(RETRY_INITIAL, RETRY_MAX),
            retry_at: None,
            registered_once: false,
            passes_taken: 0,
            passes_applied: 0,
            published: CheckView::default(),
            sync: None,
        }
    }

    /// What the status view shows of the registration.
    pub fn board(&self) -> Registration {
        match self.have {
            Have::Registered(Some(Status::Passing)) => Registration::Passing,
            Have::Registered(Some(Status::Critical)) => Registration::Critical,
            Have::Registered(None) => Registration::Registered,
            _ if !self.registered_once => Registration::NotRegistered,
            Have::Absent => Registration::Deregistered,
            Have::Unknown => Registration::Unknown,
        }
    }

    /// The one transition function.
    pub fn on(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Action(action) => {
                let urgent = self.take(action);
                if urgent || self.retry_at.is_none() {
                    let say = action == ServiceAction::Deregister && self.backoff.is_backing_off();
                    self.start(say, now, &mut fx);
                }
            }
            Input::Define(def) | Input::Edit(def) => {
                self.def = def;
                self.doubt_registration();
                self.start(false, now, &mut fx);
            }
            Input::RetryDue => {
                if self.retry_at.is_some() {
                    self.start(false, now, &mut fx);
                }
            }
            Input::AgentReturned => {
                self.doubt_registration();
                self.start(false, now, &mut fx);
            }
            Input::Answered(answer) => self.answered(answer, now, &mut fx),
        }
        fx
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

    /// The agent may not have what we registered (new definition, agent
    /// back): register again.
    fn doubt_registration(&mut self) {
        if matches!(self.have, Have::Registered(_)) {
            self.have = Have::Unknown;
        }
    }

    /// Starts a sync. One already running (the task never lets that
    /// happen) goes on towards the latest wish instead.
    fn start(&mut self, say_failed_deregistration: bool, now: Instant, fx: &mut Vec<Effect>) {
        if self.sync.is_some() {
            return;
        }
        self.sync = Some(Sync {
            calls: 0,
            pending: None,
            say_failed_deregistration,
        });
        self.step(now, fx);
    }

    /// Asks for the next call of the sync, or ends it when the agent has
    /// what the job wants.
    fn step(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(sync) = &self.sync else { return };
        let next = if sync.calls < MAX_CALLS_PER_SYNC {
            self.next_call()
        } else {
            None
        };
        match (next, &mut self.sync) {
            (Some(call), Some(sync)) => {
                sync.calls += 1;
                sync.pending = Some(call.clone());
                fx.push(Effect::Call(call));
            }
            _ => self.finish(Ok(()), now, fx),
        }
    }

    fn next_call(&self) -> Option<Call> {
        match (self.want, self.have) {
            (Want::Absent, Have::Absent) => None,
            (Want::Absent, _) => Some(Call::Deregister {
                id: self.def.id.clone(),
            }),
            (Want::Present(status), Have::Absent | Have::Unknown) => {
                Some(Call::Register(self.def.clone(), status))
            }
            (Want::Present(want), Have::Registered(have)) => {
                let want = want.filter(|_| self.def.ttl.is_some())?;
                if Some(want) == have && !self.refresh_due {
                    return None;
                }
                Some(Call::Update {
                    check_id: self.def.check_id(),
                    status: want,
                })
            }
        }
    }

    /// Takes the answer to the pending call: the sync goes on, or ends with
    /// why the call failed.
    fn answered(&mut self, answer: Result<(), CallError>, now: Instant, fx: &mut Vec<Effect>) {
        let Some(call) = self.sync.as_mut().and_then(|s| s.pending.take()) else {
            return;
        };
        let outcome = match call {
            Call::Register(def, status) => self.registered(&def, status, answer, fx),
            Call::Update { check_id, status } => self.updated(&check_id, status, answer, fx),
            Call::Deregister { id } => self.deregistered(&id, answer, fx),
        };
        match outcome {
            Ok(()) => self.step(now, fx),
            Err(why) => self.finish(Err(why), now, fx),
        }
    }

    fn registered(
        &mut self,
        def: &ServiceDef,
        status: Option<Status>,
        answer: Result<(), CallError>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), String> {
        if let Err(e) = answer {
            self.have = Have::Unknown;
            return Err(format!("registering {}: {e}", def.id));
        }
        self.have = Have::Registered(status);
        self.refresh_due = false;
        if status == Some(Status::Passing) {
            self.passes_applied = self.passes_taken;
        }
        let again = if self.registered_once { " again" } else { "" };
        self.registered_once = true;
        // This call may be the one that found the agent back: the agent has
        // our registration, so that return needs no other.
        fx.push(Effect::ReturnSeen);
        fx.push(Effect::Log(
            Level::Info,
            format!(
                "{}: registered{again} in Consul as {} at {}:{}{}",
                def.name,
                def.id,
                def.address,
                def.port,
                status
                    .map(|s| format!(" ({})", s.as_str()))
                    .unwrap_or_default()
            ),
        ));
        Ok(())
    }

    fn updated(
        &mut self,
        check_id: &str,
        status: Status,
        answer: Result<(), CallError>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), String> {
        match answer {
            Ok(()) => {
                self.have = Have::Registered(Some(status));
                self.refresh_due = false;
                if status == Status::Passing {
                    self.passes_applied = self.passes_taken;
                }
                fx.push(Effect::Log(
                    Level::Debug,
                    format!("{}: TTL check set to {}", self.def.name, status.as_str()),
                ));
                Ok(())
            }
            Err(e) if is_unknown_check(&e) => {
                fx.push(Effect::Log(
                    Level::Info,
                    format!(
                        "{}: the Consul agent does not know {check_id} (restarted or removed): \
                         registering again",
                        self.def.name
                    ),
                ));
                self.have = Have::Unknown;
                Ok(())
            }
            Err(e) => {
                self.have = Have::Unknown;
                Err(format!("updating {check_id}: {e}"))
            }
        }
    }

    fn deregistered(
        &mut self,
        id: &str,
        answer: Result<(), CallError>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), String> {
        match answer {
            Ok(()) => {
                fx.push(Effect::Log(
                    Level::Info,
                    format!("{}: deregistered {id} from Consul", self.def.name),
                ));
                self.have = Have::Absent;
                Ok(())
            }
            Err(e) if is_unknown_service(&e) => {
                self.have = Have::Absent;
                Ok(())
            }
            Err(e) => Err(format!("deregistering {id}: {e}")),
        }
    }

    /// Ends the sync: tells what the agent has, and on failure schedules a
    /// retry.
    fn finish(&mut self, result: Result<(), String>, now: Instant, fx: &mut Vec<Effect>) {
        let sync = self.sync.take();
        self.publish(fx);
        match &result {
            Ok(()) => {
                self.backoff.reset();
                self.retry_at = None;
            }
            Err(why) => {
                // During an outage, retries are said once.
                let (level, line) = if self.backoff.is_backing_off() {
                    (Level::Debug, "Consul call failed again ({why})".to_string())
                } else {
                    (
                        Level::Warn,
                        format!(
                            "Consul call failed ({why}); retrying with backoff, the job keeps running"
                        ),
                    )
                };
                fx.push(Effect::Log(level, format!("{}: {line}", self.def.name)));
                self.retry_at = Some(now + self.backoff.next_delay());
            }
        }
        fx.push(Effect::RetryAt(self.retry_at));
        if let Err(why) = &result
            && sync.is_some_and(|s| s.say_failed_deregistration)
        {
            fx.push(Effect::Log(
                Level::Warn,
                format!(
                    "{}: cannot deregister {} from Consul ({why}); retrying while autopilot runs",
                    self.def.name, self.def.id
                ),
            ));
        }
        let registered = matches!(self.have, Have::Registered(_));
        fx.push(Effect::Settled(result.map(|()| registered)));
    }

    /// Tells the status view and followers of [`CheckView`] what the agent
    /// has now. A failed call leaves the view as it was: a blip is no reason
    /// for a leader to step down (its session's TTL decides that).
    fn publish(&mut self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Board(self.board()));
        let (registered, passing) = match self.have {
            Have::Registered(status) => (true, status == Some(Status::Passing)),
            Have::Absent => (false, false),
            Have::Unknown => return,
        };
        let last = self.published;
        let view = CheckView {
            registered,
            passing,
            passes: if passing {
                self.passes_applied.max(last.passes)
            } else {
                last.passes
            },
        };
        if view != last {
            self.published = view;
            fx.push(Effect::View(view));
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

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
