//! The shutdown sequence's deadlines: at the top-level `stopTimeout`
//! everything left is killed, except post-stop hooks that can still run
//! (they get [`POST_STOP_GRACE`]); after the SIGKILL the kernel gets
//! [`AFTER_KILL_GRACE`] to deliver the last exits.

use super::Supervisor;
use crate::config::duration;
use crate::config::model::When;
use crate::events::{Event, EventCode};
use crate::jobs::machine::State;
use crate::jobs::runner::Command;
use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// After the shutdown deadline's SIGKILL, how long to wait for the kernel to
/// deliver the last exits before giving up on them.
pub(super) const AFTER_KILL_GRACE: Duration = Duration::from_secs(1);

/// How long post-stop hooks may run past the top-level `stopTimeout`. With
/// the default `stopTimeout` of 5 s, 5 + 3 + [`AFTER_KILL_GRACE`] still fits
/// Docker's 10 s stop window.
pub const POST_STOP_GRACE: Duration = Duration::from_secs(3);

/// How far shutdown is past the top-level `stopTimeout`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Overtime {
    /// Still within it.
    No,
    /// Everything but post-stop hooks was killed; they may run until then.
    HooksGrace(Instant),
    /// Everything was killed at that time.
    Killed(Instant),
}

/// Why autopilot started shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShutdownCause {
    Signal,
    MainJobEnded,
    /// A job with `exitOnFailure` failed (a ContainerPilot 2 `preStart`).
    JobFailed,
    AllJobsDone,
    Requested,
}

impl ShutdownCause {
    pub(super) fn describe(self) -> &'static str {
        match self {
            ShutdownCause::Signal => "stopped by signal",
            ShutdownCause::MainJobEnded => "main job ended",
            ShutdownCause::JobFailed => "a job with exitOnFailure failed",
            ShutdownCause::AllJobsDone => "all jobs done",
            ShutdownCause::Requested => "shutdown requested",
        }
    }
}

impl Supervisor {
    /// When the shutdown sequence next acts: `None` before shutdown began
    /// (at `began`).
    pub(super) fn deadline(&self, began: Option<Instant>, overtime: Overtime) -> Option<Instant> {
        match (began, overtime) {
            (_, Overtime::Killed(at)) => Some(at + AFTER_KILL_GRACE),
            (_, Overtime::HooksGrace(until)) => Some(until),
            (Some(at), Overtime::No) => Some(duration::later(at, self.config.stop_timeout)),
            (None, Overtime::No) => None,
        }
    }

    /// Acts on a passed [`Supervisor::deadline`]; returns the next stage,
    /// or `None` when there is nothing left to wait for.
    pub(super) fn past_deadline(&self, overtime: Overtime) -> Option<Overtime> {
        match overtime {
            Overtime::Killed(_) => {
                log::warn!(
                    "{} did not report their exit after SIGKILL; exiting anyway",
                    crate::logging::plural(self.tasks.len() as u64, "job", "jobs")
                );
                None
            }
            Overtime::No => {
                log::warn!(
                    "stop timeout of {} reached: killing what is left",
                    crate::logging::human_duration(self.config.stop_timeout)
                );
                let hooks = self.post_stop_hooks_that_can_run();
                if hooks.is_empty() {
                    self.kill_everything();
                    Some(Overtime::Killed(Instant::now()))
                } else {
                    log::info!(
                        "post-stop hooks {} may still run for {}",
                        hooks
                            .iter()
                            .map(|h| format!("`{h}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        crate::logging::human_duration(POST_STOP_GRACE)
                    );
                    self.kill_all_but(&hooks);
                    Some(Overtime::HooksGrace(Instant::now() + POST_STOP_GRACE))
                }
            }
            Overtime::HooksGrace(_) => {
                log::warn!(
                    "post-stop hooks still running {} after the stop timeout: killing them",
                    crate::logging::human_duration(POST_STOP_GRACE)
                );
                self.kill_everything();
                Some(Overtime::Killed(Instant::now()))
            }
        }
    }

    /// The post-stop hooks (jobs started by another job's `stopped`) that
    /// may still run: their job has not stopped yet (killing it publishes
    /// `stopped`), or they are running now.
    fn post_stop_hooks_that_can_run(&self) -> HashSet<String> {
        self.config
            .jobs
            .iter()
            .filter(|job| self.commands.contains_key(&job.name))
            .filter(|job| match &job.when {
                When::Event { pattern, .. } => {
                    pattern.code == EventCode::Stopped
                        && pattern.source != job.name
                        && (self.commands.contains_key(&pattern.source)
                            || self
                                .common
                                .board
                                .get(&job.name)
                                .is_some_and(|s| s.state == State::Running))
                }
                _ => false,
            })
            .map(|job| job.name.clone())
            .collect()
    }

    /// SIGKILL for every job but `spared`. As PID 1, every other process of
    /// the namespace too (orphans included), unless a spared hook is running:
    /// it would die with them.
    fn kill_all_but(&self, spared: &HashSet<String>) {
        for (name, tx) in &self.commands {
            if !spared.contains(name) {
                let _ = tx.send(Command::ForceKill);
            }
        }
        let hook_running = spared.iter().any(|name| {
            self.common
                .board
                .get(name)
                .is_some_and(|s| s.state == State::Running)
        });
        if self.is_pid1 && !hook_running {
            // As PID 1 we own the namespace: nothing may outlive us.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
        }
    }

    fn kill_everything(&self) {
        self.kill_all_but(&HashSet::new());
    }

    pub(super) fn begin_shutdown(&self, cause: ShutdownCause) -> (ShutdownCause, Instant) {
        // The flag first: a runner that lagged on the bus checks it.
        self.shutting_down.send_replace(true);
        self.common.bus.publish(Event::global(EventCode::Shutdown));
        (cause, Instant::now())
    }
}
