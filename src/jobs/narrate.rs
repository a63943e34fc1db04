//! A job's life in words: the log lines that say what happened to a job and
//! what comes next, so an operator reading the log at INFO never has to
//! guess ("exited with code 3 after 1.2s; restarting in 200ms (restart 2 of
//! 3)").
//!
//! The runner decides nothing here: it tells [`exit_line`] what the state
//! machine chose ([`Next`]) and logs the result.

use crate::config::model::Restarts;
use crate::logging::human_duration;
use crate::process::ExitStatus;
use std::time::Duration;

/// What the state machine chose after an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Restart after a backoff delay (zero: at once); `number` counts
    /// restarts so far, this one included.
    Restart { delay: Duration, number: u32 },
    /// Run again now: a trigger came while it was running.
    RunAgain,
    /// An `interval` job: the next run is in this long (if known).
    NextRun(Option<Duration>),
    /// Waits for its `when` event to come again.
    WaitTrigger,
    /// Ended for good (no restart is left or allowed).
    Done,
    /// It was being stopped: this exit was asked for.
    Stopped,
}

/// The log line for a job's exit (without the job's name), and whether it
/// deserves a warning (a failure the job will not recover from by itself,
/// or a crash loop) rather than information.
pub fn exit_line(
    status: ExitStatus,
    ran_for: Duration,
    next: &Next,
    restarts: Restarts,
) -> (log::Level, String) {
    let what = ended(status);
    let ran = human_duration(ran_for);
    let then = match next {
        Next::Restart { delay, number } => {
            let when = if delay.is_zero() {
                "restarting now".to_string()
            } else {
                format!("restarting in {}", human_duration(*delay))
            };
            match restarts {
                Restarts::Limit(limit) => format!("{when} (restart {number} of {limit})"),
                _ => format!("{when} (restart {number})"),
            }
        }
        Next::RunAgain => "running again: it was triggered while it ran".to_string(),
        Next::NextRun(Some(after)) => format!("next run in {}", human_duration(*after)),
        Next::NextRun(None) => "waiting for its next run".to_string(),
        Next::WaitTrigger => "waiting for its next trigger".to_string(),
        Next::Stopped => "stopped".to_string(),
        Next::Done => match restarts {
            Restarts::Never if status.success() => "done".to_string(),
            Restarts::Never => "not restarted: restarts never".to_string(),
            Restarts::Limit(0) => "not restarted: restarts 0".to_string(),
            Restarts::Limit(limit) => format!("restarts used up ({limit} of {limit})"),
            Restarts::Unlimited => "done".to_string(),
        },
    };
    let level = match next {
        _ if status.success() => log::Level::Info,
        Next::Stopped => log::Level::Info,
        _ => log::Level::Warn,
    };
    (level, format!("{what} after {ran}; {then}"))
}

/// How a process ended, as a phrase: `exited with code 3`, `killed by SIGKILL`.
pub fn ended(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exited with code {code}"),
        ExitStatus::Signaled(_) => status.to_string(),
    }
}

/// The log line for a health transition (without the job's name).
pub fn health_line(passed: bool, reason: Option<&str>) -> (log::Level, String) {
    match (passed, reason) {
        (true, _) => (log::Level::Info, "healthy".to_string()),
        (false, Some(reason)) => (log::Level::Warn, format!("unhealthy: {reason}")),
        (false, None) => (log::Level::Warn, "unhealthy".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: ExitStatus, ms: u64, next: Next, restarts: Restarts) -> String {
        exit_line(status, Duration::from_millis(ms), &next, restarts).1
    }

    #[test]
    fn a_restart_says_when_and_which() {
        let next = Next::Restart {
            delay: Duration::from_millis(200),
            number: 2,
        };
        assert_eq!(
            line(ExitStatus::Exited(3), 1_230, next, Restarts::Limit(3)),
            "exited with code 3 after 1.2s; restarting in 200ms (restart 2 of 3)"
        );
        let now = Next::Restart {
            delay: Duration::ZERO,
            number: 7,
        };
        assert_eq!(
            line(ExitStatus::Signaled(9), 65_000, now, Restarts::Unlimited),
            "killed by SIGKILL after 1m5s; restarting now (restart 7)"
        );
    }

    #[test]
    fn the_end_says_why_there_is_no_restart() {
        let e3 = ExitStatus::Exited(3);
        assert_eq!(
            line(e3, 50, Next::Done, Restarts::Limit(3)),
            "exited with code 3 after 50ms; restarts used up (3 of 3)"
        );
        assert_eq!(
            line(e3, 50, Next::Done, Restarts::Never),
            "exited with code 3 after 50ms; not restarted: restarts never"
        );
        assert_eq!(
            line(ExitStatus::Exited(0), 50, Next::Done, Restarts::Never),
            "exited with code 0 after 50ms; done"
        );
    }

    #[test]
    fn failures_warn_and_successes_inform() {
        let d = Duration::from_secs(1);
        let warn = exit_line(ExitStatus::Exited(1), d, &Next::Done, Restarts::Never);
        assert_eq!(warn.0, log::Level::Warn);
        let info = exit_line(ExitStatus::Exited(0), d, &Next::Done, Restarts::Never);
        assert_eq!(info.0, log::Level::Info);
        let stop = exit_line(ExitStatus::Signaled(15), d, &Next::Stopped, Restarts::Never);
        assert_eq!(
            stop,
            (
                log::Level::Info,
                "killed by SIGTERM after 1s; stopped".into()
            )
        );
    }

    #[test]
    fn health_lines_carry_the_reason() {
        assert_eq!(
            health_line(false, Some("check exited with code 1: db not ready")).1,
            "unhealthy: check exited with code 1: db not ready"
        );
        assert_eq!(
            health_line(true, None),
            (log::Level::Info, "healthy".into())
        );
    }
}
