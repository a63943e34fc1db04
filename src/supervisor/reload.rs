//! Applying a new config to the running jobs (the control socket's reload
//! and ContainerPilot 2's SIGHUP both end here, through
//! [`super::Request::Reload`]), and publishing it as the running config.

use super::Supervisor;
use crate::config::model::{Config, JobConfig, SignalMode};
use crate::jobs::runner::Command;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    pub unchanged: Vec<String>,
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Supervisor {
    /// ContainerPilot 2's SIGHUP: asks for the config to be re-read by the
    /// one reload path (the control socket's), which re-reads it off the
    /// runtime thread and hands it back as a [`super::Request::Reload`], so
    /// unchanged jobs keep running. A config that fails to load changes
    /// nothing.
    pub(super) fn reload_on_signal(&self) {
        match &self.sighup_reloads {
            Some(reloads) if reloads.send(()).is_ok() => {
                log::info!("received SIGHUP: reloading the config")
            }
            _ => log::warn!("received SIGHUP, but this config cannot be re-read; nothing changes"),
        }
    }

    /// Applies a new config: unchanged jobs keep running untouched, changed
    /// jobs are stopped and started again with their new definition, removed
    /// jobs are stopped, new jobs are started.
    pub(super) fn reload(&mut self, mut new: Config) -> ReloadSummary {
        keep_command_line_app(&self.config, &mut new);
        let mut summary = ReloadSummary::default();
        let old: HashMap<String, JobConfig> = self
            .config
            .jobs
            .iter()
            .map(|j| (j.name.clone(), j.clone()))
            .collect();
        let new_names: HashSet<&str> = new.jobs.iter().map(|j| j.name.as_str()).collect();
        for (name, _) in old.iter().filter(|(n, _)| !new_names.contains(n.as_str())) {
            if let Some(tx) = self.commands.get(name) {
                let _ = tx.send(Command::Stop);
                self.removed.insert(name.clone());
            }
            summary.removed.push(name.clone());
        }
        for job in &new.jobs {
            match old.get(&job.name) {
                Some(prev) if same_definition(prev, job) => {
                    summary.unchanged.push(job.name.clone())
                }
                Some(_) => {
                    summary.restarted.push(job.name.clone());
                    match self.commands.get(&job.name) {
                        Some(tx) => {
                            let _ = tx.send(Command::Stop);
                            self.replacements.insert(job.name.clone(), job.clone());
                        }
                        None => self.start_job(job, &new.jobs, true),
                    }
                }
                None => {
                    summary.added.push(job.name.clone());
                    self.start_job(job, &new.jobs, true);
                }
            }
        }
        self.registry.configure(&new.jobs);
        if let Err(e) = crate::logging::configure(&new.logging) {
            log::warn!("reload: cannot apply the new logging settings: {e}");
        }
        if new.consul != self.config.consul {
            log::warn!("reload: changes to `consul` take effect after a restart");
        }
        self.outcome.follow(&new.jobs);
        log::info!(
            "config reloaded: {} unchanged, {} restarted, {} added, {} removed",
            summary.unchanged.len(),
            summary.restarted.len(),
            summary.added.len(),
            summary.removed.len()
        );
        self.config = Arc::new(new);
        // After the jobs: whoever reads it (status, telemetry, watches) sees
        // a config the jobs already run.
        self.published.send_replace(self.config.clone());
        summary
    }
}

/// A ContainerPilot 2 config's app comes from autopilot's command line, not
/// from the file, so a reload that could not know it (`autopilot -reload`
/// re-reads the file alone) yields a config without the main job. Keep the
/// running app then: ContainerPilot 2 never restarted the app on a reload.
fn keep_command_line_app(old: &Config, new: &mut Config) {
    if old.signals != SignalMode::V2 || new.signals != SignalMode::V2 {
        return;
    }
    let Some(app) = old.jobs.iter().find(|j| j.main) else {
        return;
    };
    if new.jobs.iter().any(|j| j.main) {
        return;
    }
    match new.jobs.iter_mut().find(|j| j.name == app.name) {
        Some(slot) => *slot = app.clone(),
        None => new.jobs.insert(0, app.clone()),
    }
}

/// Two job definitions are the same if they differ at most in where they are
/// written in the file.
fn same_definition(a: &JobConfig, b: &JobConfig) -> bool {
    let mut b = b.clone();
    b.line = a.line;
    *a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_without_the_command_line_keeps_the_v2_app() {
        let load = |app: &[&str]| {
            let options = crate::config::LoadOptions {
                app: app.iter().map(|s| s.to_string()).collect(),
                self_exe: None,
            };
            let text = r#"{"services": [{"name": "web", "port": 80, "health": "true", "poll": 1, "ttl": 3}],
                           "preStop": "drain"}"#;
            crate::config::load_str_with(text, "t", &HashMap::new(), &options)
                .unwrap()
                .config
        };
        let running = load(&["/bin/app", "-x"]);
        let mut reread = load(&[]);
        keep_command_line_app(&running, &mut reread);
        assert_eq!(running.jobs, reread.jobs);
    }
}
