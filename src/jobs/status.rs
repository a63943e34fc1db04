//! A shared, read-mostly view of every job, for the status endpoint and the
//! container exit code. Runners write their own entry after each transition.

use super::machine::{Health, State};
use crate::process::ExitStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub state: &'static str,
    pub health: &'static str,
    pub pid: Option<i32>,
    pub restarts: u32,
    /// `exit code N` / `killed by SIGX`, for people.
    pub last_exit: Option<String>,
    /// The shell-style code of the last exit (128+signal for a signal death).
    pub last_exit_code: Option<i32>,
    pub advertised: bool,
}

impl JobStatus {
    pub fn new(name: &str, advertised: bool) -> JobStatus {
        JobStatus {
            name: name.to_string(),
            state: State::Waiting.as_str(),
            health: Health::Unknown.as_str(),
            pid: None,
            restarts: 0,
            last_exit: None,
            last_exit_code: None,
            advertised,
        }
    }

    pub fn set_exit(&mut self, exit: Option<ExitStatus>) {
        self.last_exit = exit.map(|e| e.to_string());
        self.last_exit_code = exit.map(ExitStatus::code);
    }
}

#[derive(Clone, Default)]
pub struct StatusBoard {
    jobs: Arc<Mutex<BTreeMap<String, JobStatus>>>,
}

impl StatusBoard {
    pub fn update(&self, status: JobStatus) {
        self.jobs.lock().unwrap().insert(status.name.clone(), status);
    }

    pub fn remove(&self, name: &str) {
        self.jobs.lock().unwrap().remove(name);
    }

    pub fn get(&self, name: &str) -> Option<JobStatus> {
        self.jobs.lock().unwrap().get(name).cloned()
    }

    pub fn all(&self) -> Vec<JobStatus> {
        self.jobs.lock().unwrap().values().cloned().collect()
    }
}
