//! The environment handed to every child process.
//!
//! Built once from the supervisor's own environment, then extended with what
//! autopilot learns at run time: `CONTAINERPILOT_<JOB>_PID` while a job runs,
//! `CONTAINERPILOT_<JOB>_IP` for advertised jobs, values set through the
//! control socket, and watch data. We never call `std::env::set_var`: each
//! child's environment is this explicit value.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Environ {
    inner: Arc<Mutex<Layers>>,
}

#[derive(Default)]
struct Layers {
    /// The supervisor's environment at start, plus `CONTAINERPILOT_PID`.
    base: BTreeMap<String, String>,
    /// Values set by autopilot itself (pids, IPs, watch data).
    runtime: BTreeMap<String, String>,
    /// Values set through the control socket; they win over everything.
    user: BTreeMap<String, String>,
}

/// The name part of `CONTAINERPILOT_<JOB>_...`: upper case, `-` and `.` as `_`.
pub fn env_name(job: &str) -> String {
    job.chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

impl Environ {
    /// Starts from `base` (normally the supervisor's own environment).
    pub fn new(mut base: BTreeMap<String, String>) -> Environ {
        base.insert("CONTAINERPILOT_PID".into(), std::process::id().to_string());
        Environ {
            inner: Arc::new(Mutex::new(Layers {
                base,
                ..Layers::default()
            })),
        }
    }

    /// The environment for a child started now.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        let l = self.inner.lock().unwrap();
        let mut env = l.base.clone();
        env.extend(l.runtime.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(l.user.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Sets or clears a runtime value.
    pub fn set_runtime(&self, key: &str, value: Option<String>) {
        let mut l = self.inner.lock().unwrap();
        match value {
            Some(v) => l.runtime.insert(key.to_string(), v),
            None => l.runtime.remove(key),
        };
    }

    /// Sets or clears a value given through the control socket.
    pub fn set_user(&self, key: &str, value: Option<String>) {
        let mut l = self.inner.lock().unwrap();
        match value {
            Some(v) => l.user.insert(key.to_string(), v),
            None => l.user.remove(key),
        };
    }

    /// Replaces every runtime value whose key starts with `prefix`.
    pub fn replace_runtime_prefix(&self, prefix: &str, values: BTreeMap<String, String>) {
        let mut l = self.inner.lock().unwrap();
        l.runtime.retain(|k, _| !k.starts_with(prefix));
        l.runtime.extend(values);
    }

    /// Records a job's pid (or its absence) as `CONTAINERPILOT_<JOB>_PID`.
    pub fn set_job_pid(&self, job: &str, pid: Option<i32>) {
        self.set_runtime(
            &format!("CONTAINERPILOT_{}_PID", env_name(job)),
            pid.map(|p| p.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_become_env_names() {
        assert_eq!(env_name("my-app"), "MY_APP");
        assert_eq!(env_name("consul-agent"), "CONSUL_AGENT");
    }

    #[test]
    fn user_values_win_and_can_be_cleared() {
        let env = Environ::new(BTreeMap::from([("A".to_string(), "base".to_string())]));
        env.set_user("A", Some("x=y=z".into()));
        assert_eq!(env.snapshot()["A"], "x=y=z");
        env.set_user("A", None);
        assert_eq!(env.snapshot()["A"], "base");
        assert!(env.snapshot().contains_key("CONTAINERPILOT_PID"));
    }

    #[test]
    fn job_pid_is_set_and_removed() {
        let env = Environ::new(BTreeMap::new());
        env.set_job_pid("app", Some(42));
        assert_eq!(env.snapshot()["CONTAINERPILOT_APP_PID"], "42");
        env.set_job_pid("app", None);
        assert!(!env.snapshot().contains_key("CONTAINERPILOT_APP_PID"));
    }
}
