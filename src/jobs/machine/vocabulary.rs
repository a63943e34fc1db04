//! The words the job machine speaks: where a job is ([`State`], [`Health`]),
//! what it reacts to ([`Input`], [`Timer`]) and what it asks the runner to
//! do ([`Effect`], [`ServiceAction`]). Data only; the rules are in
//! [`super::Machine::on`].

use crate::events::{Event, EventCode};
use crate::process::ExitStatus;
use nix::sys::signal::Signal;
use std::time::Duration;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for its start trigger (the first one or the next one).
    Waiting,
    /// Its process is running (or, for a job without `exec`, it is active).
    Running,
    /// Its process exited and will be started again after a backoff delay.
    Restarting,
    /// Asked to stop: waiting for its stop hooks, then for its processes to exit.
    Stopping,
    /// Will never run again.
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        }
    }
}

/// Written as its name (`running`), as the status view shows it.
impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Health as last reported by the job's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
    Maintenance,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Maintenance => "maintenance",
        }
    }
}

/// Written as its name (`healthy`), as the status view shows it.
impl serde::Serialize for Health {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The job's timers; each is either set (with a deadline) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// `when.timeout`: give up waiting for the first trigger.
    WhenTimeout,
    /// `when.interval`: the next periodic run.
    Interval,
    /// The backoff delay before a restart is over.
    Restart,
    /// `timeout`: the process ran too long.
    ExecTimeout,
    /// Time for the next health check.
    HealthTick,
    /// `stopTimeout`: stop waiting for stop hooks.
    StopGrace,
    /// `stopTimeout` after SIGTERM: kill what is left.
    KillDeadline,
}

/// What the machine reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Event(Event),
    /// The job's process (its group leader) exited, and its group is empty.
    Exited(ExitStatus),
    Timer(Timer),
    /// A health check finished: passing or not.
    HealthChecked(bool),
    /// The supervisor's shutdown deadline passed: kill everything now.
    ForceKill,
    /// Stop this job alone (it was removed or changed by a reload).
    Stop,
}

/// Consul-side actions; a no-op when there is no discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Register,
    Pass,
    Fail,
    Deregister,
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start the process (the runner feeds back `Exited` when it ends, or at
    /// once with 126/127 if it cannot be started).
    Spawn,
    /// Signal the process group, if a process is running.
    Signal(Signal),
    /// Publish an event with this job as source.
    Publish(EventCode),
    SetTimer(Timer, Duration),
    CancelTimer(Timer),
    /// Start a health check unless one is already running.
    CheckHealth,
    /// Kill a running health check (stopping, maintenance).
    CancelHealthCheck,
    Service(ServiceAction),
}
