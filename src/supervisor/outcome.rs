//! The container's exit code, decided from how jobs ended.

use crate::config::model::JobConfig;
use crate::jobs::runner::Report;
use crate::process::ExitStatus;
use std::collections::HashSet;

/// The exit-code rule (README "Exit codes"):
/// - when a job with `exitOnFailure: true` ended for good with a failure
///   before shutdown began (a ContainerPilot 2 `preStart`): its exit code;
/// - else, with a job marked `main: true`: that job's last exit code
///   (128+signal for a signal death; 0 if it never ran);
/// - otherwise: the code of the last job that ended for good with a failure
///   before shutdown began, or 0.
pub(super) struct Outcome {
    pub(super) main_job: Option<String>,
    main_exit: Option<ExitStatus>,
    last_failure: Option<ExitStatus>,
    /// Jobs with `exitOnFailure`.
    exit_on_failure: HashSet<String>,
    /// The first failure of one of them, which ended the run.
    pub(super) failed: Option<ExitStatus>,
}

impl Outcome {
    pub(super) fn new(main_job: Option<String>) -> Outcome {
        Outcome {
            main_job,
            main_exit: None,
            last_failure: None,
            exit_on_failure: HashSet::new(),
            failed: None,
        }
    }

    /// Takes the main job and the `exitOnFailure` jobs from a (new) config.
    pub(super) fn follow(&mut self, jobs: &[JobConfig]) {
        self.main_job = jobs.iter().find(|j| j.main).map(|j| j.name.clone());
        self.exit_on_failure = jobs
            .iter()
            .filter(|j| j.exit_on_failure)
            .map(|j| j.name.clone())
            .collect();
    }

    /// Records a job's end; returns whether it ends the run: the main job
    /// ended, or an `exitOnFailure` job failed before shutdown.
    pub(super) fn job_ended(&mut self, report: &Report, shutting_down: bool) -> bool {
        if self.main_job.as_deref() == Some(report.name.as_str()) {
            self.main_exit = report.last_exit;
            return true;
        }
        if !shutting_down && let Some(exit) = report.last_exit.filter(|e| !e.success()) {
            self.last_failure = Some(exit);
            if self.exit_on_failure.contains(&report.name) && self.failed.is_none() {
                self.failed = Some(exit);
                return true;
            }
        }
        false
    }

    pub(super) fn exit_code(&self) -> i32 {
        if let Some(failed) = self.failed {
            return failed.code();
        }
        match &self.main_job {
            Some(_) => self.main_exit.map(ExitStatus::code).unwrap_or(0),
            None => self.last_failure.map(ExitStatus::code).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, exit: Option<ExitStatus>) -> Report {
        Report {
            name: name.into(),
            last_exit: exit,
        }
    }

    #[test]
    fn the_main_job_decides_the_exit_code() {
        let mut o = Outcome::new(Some("app".into()));
        o.job_ended(&report("setup", Some(ExitStatus::Exited(3))), false);
        assert!(o.job_ended(&report("app", Some(ExitStatus::Signaled(15))), true));
        assert_eq!(o.exit_code(), 143);
    }

    #[test]
    fn without_a_main_job_the_last_failure_counts_but_not_during_shutdown() {
        let mut o = Outcome::new(None);
        assert_eq!(o.exit_code(), 0);
        o.job_ended(&report("a", Some(ExitStatus::Exited(0))), false);
        assert_eq!(o.exit_code(), 0);
        o.job_ended(&report("b", Some(ExitStatus::Exited(4))), false);
        o.job_ended(&report("c", Some(ExitStatus::Signaled(15))), true);
        assert_eq!(o.exit_code(), 4);
    }

    fn job(name: &str, main: bool, exit_on_failure: bool) -> JobConfig {
        let text = format!(
            "{{jobs: [{{name: '{name}', exec: 'x', main: {main}, exitOnFailure: {exit_on_failure}}}]}}"
        );
        crate::config::parse_str(&text, "t").unwrap().config.jobs[0].clone()
    }

    #[test]
    fn a_failed_exit_on_failure_job_ends_the_run_with_its_code() {
        let mut o = Outcome::new(None);
        o.follow(&[job("app", true, false), job("app.preStart", false, true)]);
        assert!(o.job_ended(&report("app.preStart", Some(ExitStatus::Exited(3))), false));
        // The main job never ran; the failure decides.
        assert!(o.job_ended(&report("app", None), true));
        assert_eq!(o.exit_code(), 3);
    }

    #[test]
    fn a_successful_exit_on_failure_job_changes_nothing() {
        let mut o = Outcome::new(None);
        o.follow(&[job("app", true, false), job("app.preStart", false, true)]);
        assert!(!o.job_ended(&report("app.preStart", Some(ExitStatus::Exited(0))), false));
        assert!(o.job_ended(&report("app", Some(ExitStatus::Exited(7))), false));
        assert_eq!(o.exit_code(), 7);
    }
}
