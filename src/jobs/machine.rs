//! The job state machine: one enum, one transition function.
//!
//! `Machine::on(input, now)` decides; it returns [`Effect`]s that the runner
//! applies (spawn, signal, publish, timers, Consul calls). Nothing else assigns
//! the state, so every rule below is unit-tested without processes.
//!
//! ```text
//!            trigger                 exit, no restarts left
//!  Waiting ───────────▶ Running ─────────────────────────────▶ Waiting (each)
//!     ▲                  │   ▲                                 Stopped (once)
//!     │      exit,       │   │ backoff over
//!     │  restarts left   ▼   │
//!     │               Restarting
//!     │
//!  shutdown (any state) ──▶ Stopping ──hooks done, process gone──▶ Stopped
//! ```

mod vocabulary;

pub use vocabulary::{Effect, Health, Input, ServiceAction, State, Timer};

use crate::config::model::{JobConfig, Repeat, Restarts, When};
use crate::events::{Event, EventCode};
use crate::process::ExitStatus;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The rules one job follows, taken from its config.
#[derive(Debug, Clone)]
pub struct Rules {
    pub name: String,
    pub has_exec: bool,
    pub when: When,
    pub restarts: Restarts,
    pub backoff: crate::config::model::Backoff,
    pub timeout: Option<Duration>,
    pub stop_timeout: Option<Duration>,
    pub health_interval: Option<Duration>,
    pub advertised: bool,
    /// Jobs that start on this job's `stopping`: we wait for their `stopped`.
    pub stop_hooks: BTreeSet<String>,
}

impl Rules {
    /// Builds the rules of `job`, given all jobs (to find its stop hooks).
    pub fn new(job: &JobConfig, all: &[JobConfig]) -> Rules {
        let stop_hooks = all
            .iter()
            .filter(|other| other.name != job.name)
            .filter(|other| match &other.when {
                When::Event { pattern, .. } => {
                    pattern.code == EventCode::Stopping && pattern.source == job.name
                }
                _ => false,
            })
            .map(|other| other.name.clone())
            .collect();
        Rules {
            name: job.name.clone(),
            has_exec: job.exec.is_some(),
            when: job.when.clone(),
            restarts: job.restarts,
            backoff: job.backoff,
            timeout: job.timeout,
            stop_timeout: job.stop_timeout,
            health_interval: job.health.as_ref().map(|h| h.interval),
            advertised: job.service.is_some(),
            stop_hooks,
        }
    }

    /// A stop hook reacts to another job's `stopping`/`stopped`; it keeps
    /// listening through shutdown instead of stopping at once.
    fn is_stop_hook(&self) -> bool {
        matches!(&self.when, When::Event { pattern, .. }
            if matches!(pattern.code, EventCode::Stopping | EventCode::Stopped)
                && pattern.source != self.name)
    }
}

/// One job's state and counters.
#[derive(Debug)]
pub struct Machine {
    rules: Rules,
    state: State,
    health: Health,
    /// Still listening for its start trigger.
    armed: bool,
    /// A trigger arrived while the process was running: run again after it.
    run_pending: bool,
    restarts_left: Option<u32>,
    /// Consecutive runs shorter than `backoff.reset_after`.
    quick_exits: u32,
    started_at: Option<Instant>,
    shutting_down: bool,
    /// Stop hooks we still wait for.
    hooks_pending: BTreeSet<String>,
    /// SIGTERM has been sent (or there was nothing to signal).
    terminated: bool,
    /// A process of ours is running (spawned, no exit seen yet).
    process_running: bool,
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
}

impl Machine {
    pub fn new(rules: Rules) -> Machine {
        let restarts_left = match rules.restarts {
            Restarts::Never => Some(0),
            Restarts::Limit(n) => Some(n),
            Restarts::Unlimited => None,
        };
        Machine {
            rules,
            state: State::Waiting,
            health: Health::Unknown,
            armed: true,
            run_pending: false,
            restarts_left,
            quick_exits: 0,
            started_at: None,
            shutting_down: false,
            hooks_pending: BTreeSet::new(),
            terminated: false,
            process_running: false,
            restarts: 0,
            last_exit: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn name(&self) -> &str {
        &self.rules.name
    }

    /// Applies one input and returns the effects to carry out, in order.
    pub fn on(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state == State::Stopped {
            return fx;
        }
        match input {
            Input::Event(event) => self.on_event(&event, now, &mut fx),
            Input::Exited(status) => self.on_exit(status, now, &mut fx),
            Input::Timer(timer) => self.on_timer(timer, now, &mut fx),
            Input::HealthChecked(ok) => self.on_health(ok, &mut fx),
            Input::Stop => {
                self.shutting_down = true;
                if self.state != State::Stopping {
                    self.begin_stop(now, &mut fx);
                }
            }
            Input::ForceKill => {
                self.shutting_down = true;
                self.armed = false;
                if self.process_running {
                    // The exit that follows finishes the job.
                    self.state = State::Stopping;
                    self.terminated = true;
                    self.hooks_pending.clear();
                    fx.push(Effect::Signal(Signal::SIGKILL));
                } else {
                    self.finish(&mut fx);
                }
            }
        }
        fx
    }

    fn on_event(&mut self, event: &Event, now: Instant, fx: &mut Vec<Effect>) {
        let is_startup =
            event.code == EventCode::Startup && event.source.as_ref() == crate::events::GLOBAL;
        match event.code {
            EventCode::Shutdown if event.source.as_ref() == crate::events::GLOBAL => {
                self.on_shutdown(now, fx);
                return;
            }
            EventCode::EnterMaintenance
                if event.source.as_ref() == crate::events::GLOBAL
                    && (self.rules.advertised || self.rules.health_interval.is_some()) =>
            {
                self.health = Health::Maintenance;
                fx.push(Effect::CancelHealthCheck);
                if self.rules.advertised {
                    fx.push(Effect::Service(ServiceAction::Deregister));
                }
            }
            EventCode::ExitMaintenance
                if event.source.as_ref() == crate::events::GLOBAL
                    && self.health == Health::Maintenance =>
            {
                self.health = Health::Unknown;
                if self.state == State::Running {
                    if self.rules.advertised {
                        fx.push(Effect::Service(ServiceAction::Register));
                    }
                    fx.push(Effect::CheckHealth);
                }
            }
            EventCode::Stopped
                if self.state == State::Stopping
                    && self.hooks_pending.remove(event.source.as_ref())
                    && self.hooks_pending.is_empty() =>
            {
                fx.push(Effect::CancelTimer(Timer::StopGrace));
                self.terminate(fx);
            }
            _ => {}
        }
        if is_startup {
            match &self.rules.when {
                When::Startup => self.trigger(now, fx),
                When::Interval(every) => {
                    fx.push(Effect::SetTimer(Timer::Interval, *every));
                    self.trigger(now, fx);
                }
                When::Event {
                    timeout: Some(t), ..
                } => fx.push(Effect::SetTimer(Timer::WhenTimeout, *t)),
                When::Event { .. } => {}
            }
        }
        if let When::Event { pattern, .. } = &self.rules.when
            && pattern.code == event.code
            && pattern.source == event.source.as_ref()
        {
            self.trigger(now, fx);
        }
    }

    /// The start trigger fired.
    fn trigger(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if !self.armed || self.state == State::Stopping {
            return;
        }
        let repeat = match &self.rules.when {
            When::Event { repeat, .. } => *repeat,
            When::Interval(_) => Repeat::Each,
            When::Startup => Repeat::Once,
        };
        if repeat == Repeat::Once || self.shutting_down {
            self.armed = false;
        }
        fx.push(Effect::CancelTimer(Timer::WhenTimeout));
        match self.state {
            State::Running | State::Restarting => self.run_pending = true,
            _ => self.start(now, fx),
        }
    }

    fn start(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        self.state = State::Running;
        self.started_at = Some(now);
        self.run_pending = false;
        if self.rules.has_exec {
            self.process_running = true;
            fx.push(Effect::Spawn);
            if let Some(t) = self.rules.timeout {
                fx.push(Effect::SetTimer(Timer::ExecTimeout, t));
            }
        }
        if self.rules.advertised && self.health != Health::Maintenance {
            fx.push(Effect::Service(ServiceAction::Register));
        }
        if let Some(every) = self.rules.health_interval {
            fx.push(Effect::SetTimer(Timer::HealthTick, every));
        }
    }

    fn on_exit(&mut self, status: ExitStatus, now: Instant, fx: &mut Vec<Effect>) {
        self.process_running = false;
        self.last_exit = Some(status);
        fx.push(Effect::CancelTimer(Timer::ExecTimeout));
        fx.push(Effect::Publish(if status.success() {
            EventCode::ExitSuccess
        } else {
            EventCode::ExitFailed
        }));
        if self.state == State::Stopping {
            if self.terminated || self.hooks_pending.is_empty() {
                self.finish(fx);
            }
            return;
        }
        if self.state != State::Running {
            return;
        }
        let ran_for = self
            .started_at
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        if matches!(self.rules.when, When::Interval(_)) {
            self.idle(fx);
            if self.run_pending {
                self.start(now, fx);
            } else if !self.armed {
                // The last tick came while this run was still going and found
                // no restarts left: this run was the last one.
                self.finish(fx);
            }
            return;
        }
        if self.take_restart() {
            self.restarts += 1;
            let delay = self.backoff_delay(ran_for);
            if delay.is_zero() {
                self.start(now, fx);
            } else {
                self.idle(fx);
                self.state = State::Restarting;
                fx.push(Effect::SetTimer(Timer::Restart, delay));
            }
        } else if self.run_pending {
            self.start(now, fx);
        } else if self.armed {
            self.idle(fx);
        } else {
            self.idle(fx);
            self.finish(fx);
        }
    }

    /// Leaves `Running` without a process: no health checks, not advertised.
    fn idle(&mut self, fx: &mut Vec<Effect>) {
        self.state = State::Waiting;
        if self.rules.health_interval.is_some() {
            fx.push(Effect::CancelTimer(Timer::HealthTick));
            fx.push(Effect::CancelHealthCheck);
        }
        if self.rules.advertised {
            fx.push(Effect::Service(ServiceAction::Deregister));
        }
        if self.health != Health::Maintenance {
            self.health = Health::Unknown;
        }
    }

    fn take_restart(&mut self) -> bool {
        match self.restarts_left {
            None => true,
            Some(0) => false,
            Some(n) => {
                self.restarts_left = Some(n - 1);
                true
            }
        }
    }

    /// No delay after a long run; otherwise `initial`, doubling up to `max`
    /// for each consecutive quick exit, so a crash loop cannot spin.
    fn backoff_delay(&mut self, ran_for: Duration) -> Duration {
        let b = self.rules.backoff;
        if ran_for >= b.reset_after {
            self.quick_exits = 0;
            return Duration::ZERO;
        }
        self.quick_exits = self.quick_exits.saturating_add(1);
        let factor = 1u32.checked_shl(self.quick_exits - 1).unwrap_or(u32::MAX);
        b.initial.saturating_mul(factor).min(b.max)
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Vec<Effect>) {
        match timer {
            Timer::WhenTimeout => {
                if self.armed && self.state == State::Waiting && !self.shutting_down {
                    self.armed = false;
                    fx.push(Effect::Publish(EventCode::TimerExpired));
                    self.finish(fx);
                }
            }
            Timer::Interval => {
                if self.shutting_down || !self.armed {
                    return;
                }
                if let When::Interval(every) = self.rules.when {
                    fx.push(Effect::SetTimer(Timer::Interval, every));
                }
                if !self.take_restart() {
                    self.armed = false;
                    if self.state == State::Waiting {
                        self.finish(fx);
                    }
                    return;
                }
                self.restarts += 1;
                match self.state {
                    State::Running => self.run_pending = true,
                    _ => self.start(now, fx),
                }
            }
            Timer::Restart => {
                if self.state == State::Restarting {
                    self.start(now, fx);
                }
            }
            Timer::ExecTimeout => {
                if self.state == State::Running {
                    log::warn!(
                        "{}: timeout reached, killing its processes",
                        self.rules.name
                    );
                    fx.push(Effect::Signal(Signal::SIGKILL));
                }
            }
            Timer::HealthTick => {
                if self.state == State::Running && self.health != Health::Maintenance {
                    fx.push(Effect::CheckHealth);
                    if let Some(every) = self.rules.health_interval {
                        fx.push(Effect::SetTimer(Timer::HealthTick, every));
                    }
                }
            }
            Timer::StopGrace => {
                if self.state == State::Stopping && !self.terminated {
                    self.hooks_pending.clear();
                    self.terminate(fx);
                }
            }
            Timer::KillDeadline => {
                if self.state == State::Stopping {
                    log::warn!(
                        "{}: still running {} after SIGTERM (its stopTimeout), killing it",
                        self.rules.name,
                        crate::logging::human_duration(self.rules.stop_timeout.unwrap_or_default())
                    );
                    fx.push(Effect::Signal(Signal::SIGKILL));
                }
            }
        }
    }

    fn on_health(&mut self, ok: bool, fx: &mut Vec<Effect>) {
        if self.state != State::Running || self.health == Health::Maintenance {
            return;
        }
        let new = if ok {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        if self.rules.advertised {
            fx.push(Effect::Service(if ok {
                ServiceAction::Pass
            } else {
                ServiceAction::Fail
            }));
        }
        if new != self.health {
            self.health = new;
            fx.push(Effect::Publish(if ok {
                EventCode::Healthy
            } else {
                EventCode::Unhealthy
            }));
        }
    }

    fn on_shutdown(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        fx.push(Effect::CancelTimer(Timer::WhenTimeout));
        fx.push(Effect::CancelTimer(Timer::Interval));
        fx.push(Effect::CancelTimer(Timer::Restart));
        if self.rules.is_stop_hook() && self.armed {
            // Keep listening for the job we hook into; run at most once more.
            return;
        }
        if self.rules.is_stop_hook() && self.state == State::Running {
            // A stop hook that is running finishes its work.
            self.armed = false;
            return;
        }
        self.begin_stop(now, fx);
    }

    /// Deregisters, publishes `stopping` and waits for stop hooks before
    /// terminating.
    ///
    /// Deregistration comes first, before the stop hooks run: clients stop
    /// being sent here while a `preStop` hook drains, and in a Kubernetes pod
    /// (where the app gets its own SIGTERM from the kubelet, not from us)
    /// the service leaves Consul as soon as autopilot hears SIGTERM. The
    /// runner awaits the deregistration (bounded) before the next effect, so
    /// the hooks start after it.
    fn begin_stop(&mut self, _now: Instant, fx: &mut Vec<Effect>) {
        self.armed = false;
        self.state = State::Stopping;
        fx.push(Effect::CancelTimer(Timer::HealthTick));
        fx.push(Effect::CancelHealthCheck);
        if self.rules.advertised {
            fx.push(Effect::Service(ServiceAction::Deregister));
        }
        fx.push(Effect::Publish(EventCode::Stopping));
        if let Some(t) = self.rules.stop_timeout {
            fx.push(Effect::SetTimer(Timer::StopGrace, t));
        }
        self.hooks_pending = self.rules.stop_hooks.clone();
        self.terminated = false;
        if self.hooks_pending.is_empty() {
            self.terminate(fx);
        }
    }

    /// Asks the process to stop (the service was deregistered when stopping
    /// began); without a process the job is done.
    fn terminate(&mut self, fx: &mut Vec<Effect>) {
        if self.terminated {
            return;
        }
        self.terminated = true;
        if !self.process_running {
            self.finish(fx);
            return;
        }
        fx.push(Effect::Signal(Signal::SIGTERM));
        if let Some(t) = self.rules.stop_timeout {
            fx.push(Effect::CancelTimer(Timer::StopGrace));
            fx.push(Effect::SetTimer(Timer::KillDeadline, t));
        }
    }

    /// The job is done for good: `stopping` (if not yet said) and `stopped`.
    fn finish(&mut self, fx: &mut Vec<Effect>) {
        if self.state == State::Stopped {
            return;
        }
        if self.state != State::Stopping {
            fx.push(Effect::Publish(EventCode::Stopping));
        }
        for t in [
            Timer::WhenTimeout,
            Timer::Interval,
            Timer::Restart,
            Timer::ExecTimeout,
            Timer::HealthTick,
            Timer::StopGrace,
            Timer::KillDeadline,
        ] {
            fx.push(Effect::CancelTimer(t));
        }
        // When stopping, the service left Consul as stopping began.
        if self.rules.advertised && self.state != State::Stopping {
            fx.push(Effect::Service(ServiceAction::Deregister));
        }
        self.state = State::Stopped;
        self.armed = false;
        fx.push(Effect::Publish(EventCode::Stopped));
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
