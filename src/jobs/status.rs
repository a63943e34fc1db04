//! A shared, read-mostly view of every job, for the status endpoint and the
//! container exit code. Runners write their own entry after each transition.
//!
//! Watches report here too ([`WatchStatus`]), and telemetry hears about every
//! finished health check through [`StatusBoard::observe_checks`], so neither
//! the control socket nor telemetry needs a hook inside jobs or watches.

use super::machine::{Health, State};
use crate::process::ExitStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub name: String,
    pub state: State,
    /// When `state` began, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    pub health: Health,
    pub pid: Option<i32>,
    pub restarts: u32,
    /// `exit code N` / `killed by SIGX`, for people.
    pub last_exit: Option<String>,
    /// The shell-style code of the last exit (128+signal for a signal death).
    pub last_exit_code: Option<i32>,
    pub advertised: bool,
    /// What autopilot last asked of the service registry for this job, or
    /// (once its registration task has run) what the agent has; `None`
    /// before the first request or when the job is not advertised.
    pub service: Option<Registration>,
    /// The job's part in its leader election (jobs with `leader` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderStatus>,
}

/// A job's service as the status view shows it: what the job asked of the
/// registry, overridden by what the Consul agent has once the registration
/// task has heard from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Registered, its check still in its initial status.
    Registered,
    Passing,
    Critical,
    Deregistered,
    /// Never registered yet (Consul unreachable since start).
    #[serde(rename = "not registered")]
    NotRegistered,
    /// The last call to the agent failed.
    Unknown,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Registered => "registered",
            Registration::Passing => "passing",
            Registration::Critical => "critical",
            Registration::Deregistered => "deregistered",
            Registration::NotRegistered => "not registered",
            Registration::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job stands in its leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaderRole {
    /// Not competing: the job is not healthy in Consul (or not yet).
    Standby,
    /// Competing: opening a session, or waiting for the key.
    Candidate,
    /// Holding the key.
    Leader,
}

impl LeaderRole {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaderRole::Standby => "standby",
            LeaderRole::Candidate => "candidate",
            LeaderRole::Leader => "leader",
        }
    }
}

impl std::fmt::Display for LeaderRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's part in a leader election, kept by its election task
/// (in coordination), apart from what the runner writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderStatus {
    pub role: LeaderRole,
    /// The Consul KV key competed for.
    pub key: String,
    /// The service ID holding the key, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// When `role` last changed, in milliseconds since the Unix epoch (so
    /// transitions can be ordered across instances on one host).
    pub since_ms: u64,
}

impl JobStatus {
    pub fn new(name: &str, advertised: bool) -> JobStatus {
        JobStatus {
            name: name.to_string(),
            state: State::Waiting,
            since_ms: now_ms(),
            health: Health::Unknown,
            pid: None,
            restarts: 0,
            last_exit: None,
            last_exit_code: None,
            advertised,
            service: None,
            leader: None,
        }
    }

    pub fn set_exit(&mut self, exit: Option<ExitStatus>) {
        self.last_exit = exit.map(|e| e.to_string());
        self.last_exit_code = exit.map(ExitStatus::code);
    }
}

/// Now, in milliseconds since the Unix epoch (the status view's clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One healthy instance of a watched service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchInstance {
    pub id: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
}

/// What a watch last saw. Written by the watch task after each answer from
/// Consul; read by the status endpoint and telemetry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchStatus {
    /// The watch's name as configured (events come from `watch.<name>`).
    pub name: String,
    /// Healthy instances at the last answer; `None` before the first one.
    pub instances: Option<Vec<WatchInstance>>,
}

/// Told about every finished health check: job, passed, how long it took.
pub type CheckObserver = Arc<dyn Fn(&str, bool, Duration) + Send + Sync>;

#[derive(Clone, Default)]
pub struct StatusBoard {
    jobs: Arc<Mutex<BTreeMap<String, JobStatus>>>,
    watches: Arc<Mutex<BTreeMap<String, WatchStatus>>>,
    check_observer: Arc<Mutex<Option<CheckObserver>>>,
    /// Leader election state by job; merged into [`JobStatus::leader`].
    leaders: Arc<Mutex<BTreeMap<String, LeaderStatus>>>,
    /// What the Consul agent has of each advertised job's service, as its
    /// registration task last saw it; overrides [`JobStatus::service`],
    /// which is only what the job asked for (while Consul is unreachable a
    /// job asks for `passing` but nothing is registered).
    registrations: Arc<Mutex<BTreeMap<String, Registration>>>,
    /// Whether the container is in maintenance mode (set by the supervisor).
    maintenance: Arc<AtomicBool>,
}

impl StatusBoard {
    pub fn update(&self, status: JobStatus) {
        self.jobs
            .lock()
            .unwrap()
            .insert(status.name.clone(), status);
    }

    pub fn remove(&self, name: &str) {
        self.jobs.lock().unwrap().remove(name);
    }

    pub fn get(&self, name: &str) -> Option<JobStatus> {
        let mut status = self.jobs.lock().unwrap().get(name).cloned()?;
        status.leader = self.leaders.lock().unwrap().get(name).cloned();
        if let Some(have) = self.registrations.lock().unwrap().get(name) {
            status.service = Some(*have);
        }
        Some(status)
    }

    pub fn all(&self) -> Vec<JobStatus> {
        let leaders = self.leaders.lock().unwrap().clone();
        let registrations = self.registrations.lock().unwrap().clone();
        let mut all: Vec<JobStatus> = self.jobs.lock().unwrap().values().cloned().collect();
        for status in &mut all {
            status.leader = leaders.get(&status.name).cloned();
            if let Some(have) = registrations.get(&status.name) {
                status.service = Some(*have);
            }
        }
        all
    }

    /// Records what the agent has of `job`'s service.
    pub fn set_registration(&self, job: &str, have: Registration) {
        self.registrations
            .lock()
            .unwrap()
            .insert(job.to_string(), have);
    }

    /// Records a job's part in its leader election (`None`: it no longer
    /// competes).
    pub fn set_leader(&self, job: &str, status: Option<LeaderStatus>) {
        let mut leaders = self.leaders.lock().unwrap();
        match status {
            Some(s) => leaders.insert(job.to_string(), s),
            None => leaders.remove(job),
        };
    }

    /// Enters (`true`) or leaves maintenance mode; returns whether that
    /// changed anything.
    pub fn set_maintenance(&self, on: bool) -> bool {
        self.maintenance.swap(on, Ordering::Relaxed) != on
    }

    pub fn in_maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// Records what a watch saw (called by the watch task).
    pub fn update_watch(&self, status: WatchStatus) {
        self.watches
            .lock()
            .unwrap()
            .insert(status.name.clone(), status);
    }

    /// Forgets a watch (removed by a reload).
    pub fn remove_watch(&self, name: &str) {
        self.watches.lock().unwrap().remove(name);
    }

    pub fn watches(&self) -> Vec<WatchStatus> {
        self.watches.lock().unwrap().values().cloned().collect()
    }

    /// Sets who hears about finished health checks (telemetry).
    pub fn observe_checks(&self, observer: CheckObserver) {
        *self.check_observer.lock().unwrap() = Some(observer);
    }

    /// A job's health check finished (called by the job's runner).
    pub fn health_checked(&self, job: &str, passed: bool, took: Duration) {
        let observer = self.check_observer.lock().unwrap().clone();
        if let Some(observer) = observer {
            observer(job, passed, took);
        }
    }
}
