//! The machine's rules for its session: opening it once the job is fit,
//! renewing it every `ttl/2`, the fail-safe when renewals keep failing, and
//! giving it up.

use super::super::protocol::{Call, CreateFailure, Effect, Role, Timer};
use super::{Machine, Session, failsafe_margin};
use crate::coordination::kv::go_duration;
use log::Level;
use std::time::Instant;

impl Machine {
    pub(super) fn open(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if !self.eligible() || self.session.is_some() || self.creating() {
            return;
        }
        let Some(service_id) = self.agent.service_id.clone() else {
            return;
        };
        self.set_role(Role::Candidate, now);
        self.in_flight.insert(Call::CreateSession);
        fx.push(Effect::CreateSession { service_id });
    }

    pub(super) fn on_created(
        &mut self,
        sent: Instant,
        result: Result<String, CreateFailure>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        match result {
            Ok(id) => {
                if !self.eligible() {
                    // The job turned unfit while we waited for Consul.
                    fx.push(Effect::DestroySession { session: id });
                    self.set_role(Role::Standby, now);
                    return;
                }
                self.recovered(fx);
                self.log(fx, Level::Debug, format!("session {id} created"));
                self.open_backoff.reset();
                self.session = Some(Session {
                    id,
                    confirmed: sent,
                });
                self.timers.insert(Timer::Renew, sent + self.config.ttl / 2);
                self.key_index = 0;
                self.free_since = None;
                self.acquire(fx);
                self.follow_key(fx);
            }
            Err(CreateFailure::CheckNotPassing(why)) => {
                // The agent has the check passing but the catalog may lag a
                // moment; retried on a timer and on the next pass.
                self.log(
                    fx,
                    Level::Debug,
                    format!("cannot create a session yet: {why}"),
                );
                let at = now + self.open_backoff.next_delay();
                self.timers.insert(Timer::Open, at);
            }
            Err(CreateFailure::Failed(e)) => {
                self.trouble(fx, &format!("cannot create a session ({e})"));
                let at = now + self.open_backoff.next_delay();
                self.timers.insert(Timer::Open, at);
            }
        }
    }

    pub(super) fn renew(&mut self, fx: &mut Vec<Effect>) {
        let Some(session) = &self.session else { return };
        if self.in_flight(Call::Renew) {
            return;
        }
        fx.push(Effect::Renew {
            session: session.id.clone(),
        });
        self.in_flight.insert(Call::Renew);
    }

    pub(super) fn on_renewed(
        &mut self,
        id: &str,
        sent: Instant,
        result: Result<bool, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.session.as_ref().is_none_or(|s| s.id != id) {
            return;
        }
        match result {
            Ok(true) => {
                self.recovered(fx);
                self.renew_backoff.reset();
                if let Some(s) = &mut self.session {
                    s.confirmed = sent;
                }
                self.timers.insert(Timer::Renew, sent + self.config.ttl / 2);
                if std::mem::take(&mut self.failsafe_tripped) {
                    // The session survived the outage: the key may still be ours.
                    self.acquire(fx);
                }
            }
            Ok(false) => {
                self.log(
                    fx,
                    Level::Info,
                    "Consul no longer knows our session (expired or invalidated by a check)".into(),
                );
                self.step_down("the session is gone", now, fx);
                self.close_session(now, fx);
                let at = now + self.open_backoff.next_delay();
                self.timers.insert(Timer::Open, at);
            }
            Err(e) => {
                let note = match self.failsafe_at() {
                    Some(at) => format!(
                        "; stepping down in {:.1}s unless one succeeds",
                        at.saturating_duration_since(now).as_secs_f64()
                    ),
                    None => String::new(),
                };
                self.trouble(fx, &format!("cannot renew the session ({e}){note}"));
                let at = now + self.renew_backoff.next_delay();
                self.timers.insert(Timer::Renew, at);
            }
        }
    }

    /// No renewal succeeded for `ttl - margin`: step down before the
    /// session could expire on the server. The session is kept: if a later
    /// renewal succeeds, we try to take the key back.
    pub(super) fn failsafe(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.role != Role::Leader {
            return;
        }
        let ttl = self.config.ttl;
        self.log(
            fx,
            Level::Warn,
            format!(
                "no session renewal succeeded for {}: stepping down before the session could expire",
                go_duration(ttl - failsafe_margin(ttl))
            ),
        );
        self.failsafe_tripped = true;
        self.step_down("the session could not be renewed", now, fx);
    }

    /// Gives the session up: destroyed (its lock released with the
    /// lock-delay), every call about it dropped. A creation in flight goes
    /// on: its reply destroys the session if the job is still unfit then.
    pub(super) fn close_session(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if let Some(session) = self.session.take() {
            fx.push(Effect::DestroySession {
                session: session.id,
            });
        }
        for call in [Call::Renew, Call::Acquire, Call::ReadKey] {
            if self.in_flight.remove(&call) {
                fx.push(Effect::Cancel(call));
            }
        }
        self.timers.clear();
        self.failsafe_tripped = false;
        self.holder_session = None;
        self.free_since = None;
        self.set_role(Role::Standby, now);
    }
}
