//! The machine's rules for the key: taking it (and waiting out the
//! lock-delay when Consul refuses a free key), and following it with a
//! blocking query to notice losing it or its becoming free.

use super::super::protocol::{Call, Effect, KeyState, Role, Timer};
use super::{KEY_WAIT, Machine, RETRY_INITIAL, failsafe_deadline};
use crate::discovery::client::next_index;
use std::time::Instant;

impl Machine {
    /// Tries to take the key, unless a try is running or we lead already.
    pub(super) fn acquire(&mut self, fx: &mut Vec<Effect>) {
        let Some(session) = &self.session else { return };
        if self.in_flight(Call::Acquire) || self.role == Role::Leader {
            return;
        }
        fx.push(Effect::Acquire {
            session: session.id.clone(),
        });
        self.timers.remove(&Timer::Acquire);
        self.in_flight.insert(Call::Acquire);
    }

    pub(super) fn on_acquired(
        &mut self,
        id: &str,
        result: Result<bool, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(session) = &self.session else { return };
        if session.id != id {
            return;
        }
        match result {
            Ok(true) => {
                self.acquire_backoff.reset();
                if now >= failsafe_deadline(session.confirmed, self.config.ttl) {
                    // Not renewed for too long: wait for a renewal first.
                    self.failsafe_tripped = true;
                    return;
                }
                self.holder_session = Some(id.to_string());
                self.holder = self.agent.service_id.clone();
                self.free_since = None;
                self.elect(now, fx);
            }
            Ok(false) => {
                self.acquire_backoff.reset();
                if self.holder_session.is_none() {
                    // Free but refused: the lock-delay after an invalidation.
                    // Try again when it must be over.
                    let free_since = *self.free_since.get_or_insert(now);
                    let at = (free_since + self.config.lock_delay).max(now + RETRY_INITIAL);
                    self.timers.insert(Timer::Acquire, at);
                }
            }
            Err(e) => {
                let what = format!("cannot acquire {} ({e})", self.config.key);
                self.trouble(fx, &what);
                let at = now + self.acquire_backoff.next_delay();
                self.timers.insert(Timer::Acquire, at);
            }
        }
    }

    /// Starts the blocking query on the key, unless one runs.
    pub(super) fn follow_key(&mut self, fx: &mut Vec<Effect>) {
        if self.session.is_none() || self.in_flight(Call::ReadKey) {
            return;
        }
        self.timers.remove(&Timer::ReadKey);
        self.in_flight.insert(Call::ReadKey);
        fx.push(Effect::ReadKey {
            index: self.key_index,
        });
    }

    pub(super) fn on_key(
        &mut self,
        sent: u64,
        started: Instant,
        result: Result<KeyState, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.session.is_none() {
            return;
        }
        let read = match result {
            Ok(read) => read,
            Err(e) => {
                // The agent may come back restarted, with a lower index: a
                // query with the old one would be held for the whole wait.
                self.key_index = 0;
                let what = format!("cannot read {} ({e})", self.config.key);
                self.trouble(fx, &what);
                let at = now + self.query_backoff.next_delay();
                self.timers.insert(Timer::ReadKey, at);
                return;
            }
        };
        self.recovered(fx);
        self.key_index = next_index(sent, read.index);
        // An answer without a change long before the wait ran out is not
        // how blocking queries behave: slow down rather than spin.
        let early = now.saturating_duration_since(started) < KEY_WAIT / 2;
        if read.index.is_none() || (sent != 0 && read.index == Some(sent) && early) {
            let at = now + self.query_backoff.next_delay();
            self.timers.insert(Timer::ReadKey, at);
        } else {
            self.query_backoff.reset();
            self.follow_key(fx);
        }
        let holder_session = read.session;
        self.holder = holder_session.as_ref().and(read.holder);
        let ours = self.session.as_ref().map(|s| s.id.as_str());
        let held_by_us = holder_session.is_some() && holder_session.as_deref() == ours;
        let free = holder_session.is_none();
        self.holder_session = holder_session;
        if free {
            self.free_since.get_or_insert(now);
        } else {
            self.free_since = None;
        }
        let stale = self.elected_at.is_some_and(|at| started < at);
        if self.role == Role::Leader && !held_by_us && !stale {
            let reason = if free {
                "the key was released or deleted"
            } else {
                "another session holds the key"
            };
            self.step_down(reason, now, fx);
        }
        // Ours but not leading (after the fail-safe): confirm by acquiring.
        // Free: take it, unless a retry after the lock-delay is scheduled.
        let retry_set = self.timers.contains_key(&Timer::Acquire);
        if self.role != Role::Leader && (held_by_us || (free && !retry_set)) {
            self.acquire(fx);
        }
    }
}
