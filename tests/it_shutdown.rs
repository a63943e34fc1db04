//! The shutdown sequence (supervisor.rs): stop hooks in order, SIGTERM to each
//! job's process group, SIGKILL only at a deadline (per-job `stopTimeout`, then
//! the global one), and an exit as soon as everything is gone.
//!
//! Timing assertions are one-sided where they can be (a deadline is never
//! early) and generous where they cannot (an exit is "prompt" if it comes well
//! before the next deadline), so a loaded machine does not make them flake.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// A job that ignores SIGTERM, and so do the `sleep`s it starts (an ignored
/// signal stays ignored across fork and exec).
fn stubborn(log: &Path) -> Value {
    sh(&format!(
        "trap '' TERM; echo stubborn-ready >> {}; while :; do sleep 1; done",
        log.display()
    ))
}

/// Sends `sig` and returns (exit code, seconds until autopilot exited, output).
fn stop_with(ap: &mut Autopilot, sig: i32) -> (i32, f64, String) {
    let t0 = Instant::now();
    ap.signal(sig);
    let code = ap.wait_exit(Duration::from_secs(60));
    (code, t0.elapsed().as_secs_f64(), ap.output())
}

#[test]
fn stop_hooks_run_in_order_around_the_app() {
    let dir = TestDir::new();
    let log = dir.join("order.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"stopTimeout": "20s", "jobs": [
        {"name": "app", "exec": sh(&logs_term("app", &log))},
        // preStop: takes a while, and checks the app is still up.
        {"name": "pre-stop", "when": {"source": "app", "once": "stopping"},
         "exec": sh(&format!(
            "sleep 0.5; if kill -0 $CONTAINERPILOT_APP_PID; then echo pre-stop-app-alive >> {l}; \
             else echo pre-stop-app-gone >> {l}; fi"))},
        // postStop: the app is gone, and so is its pid variable.
        {"name": "post-stop", "when": {"source": "app", "once": "stopped"},
         "exec": sh(&format!("echo post-stop app-pid=${{CONTAINERPILOT_APP_PID:-unset}} >> {l}"))},
    ]}));
    let mut ap = start_ready(&cfg);
    wait_line(&log, "app-running");
    let (code, secs, out) = stop_with(&mut ap, libc::SIGTERM);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        file_lines(&log),
        [
            "app-running",
            "pre-stop-app-alive",
            "app-got-term",
            "post-stop app-pid=unset"
        ],
        "{out}"
    );
    assert!(
        secs < 15.0,
        "took {secs:.1}s, the stop timeout is 20s: {out}"
    );
    assert!(!out.contains("stop timeout of"), "{out}");
}

#[test]
fn a_job_ignoring_sigterm_is_killed_at_its_own_stop_timeout() {
    let dir = TestDir::new();
    let log = dir.join("stubborn.log");
    let cfg = dir.json_config(&json!({"stopTimeout": "40s", "jobs": [
        {"name": "stubborn", "stopTimeout": "1s", "exec": stubborn(&log)},
        {"name": "polite", "exec": ["sleep", "1001"]},
    ]}));
    let mut ap = start_ready(&cfg);
    wait_line(&log, "stubborn-ready");
    let (code, secs, out) = stop_with(&mut ap, libc::SIGTERM);
    assert_eq!(code, 0, "failures during shutdown do not count: {out}");
    assert!(
        secs >= 1.0,
        "killed before its 1s stopTimeout ({secs:.2}s): {out}"
    );
    assert!(
        secs < 20.0,
        "exited after {secs:.1}s: the job's 1s deadline was not used (global is 40s): {out}"
    );
    assert!(out.contains("stubborn: still running"), "{out}");
    assert!(
        !out.contains("stop timeout of"),
        "the global deadline was not needed: {out}"
    );
}

#[test]
fn a_job_ignoring_sigterm_is_killed_at_the_global_stop_timeout() {
    let dir = TestDir::new();
    let log = dir.join("stubborn.log");
    let cfg = dir.json_config(&json!({"stopTimeout": "2s", "jobs": [
        {"name": "stubborn", "exec": stubborn(&log)},
        {"name": "polite", "exec": ["sleep", "1001"]},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    wait_line(&log, "stubborn-ready");
    let stubborn_pids = find_descendants(root, "trap");
    assert_eq!(stubborn_pids.len(), 1);
    let (code, secs, out) = stop_with(&mut ap, libc::SIGTERM);
    assert_eq!(code, 0, "{out}");
    assert!(
        secs >= 2.0,
        "killed before the 2s stopTimeout ({secs:.2}s): {out}"
    );
    assert!(
        secs < 15.0,
        "not prompt after the deadline: {secs:.1}s: {out}"
    );
    assert!(out.contains("stop timeout of 2s reached"), "{out}");
    assert!(!pid_alive(stubborn_pids[0]));
}

#[test]
fn well_behaved_jobs_stop_without_waiting_for_any_deadline() {
    let dir = TestDir::new();
    let log = dir.join("hooks.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"stopTimeout": "25s", "jobs": [
        {"name": "a", "exec": ["sleep", "1001"]},
        {"name": "b", "exec": ["sleep", "1002"], "stopTimeout": "20s"},
        {"name": "c", "exec": sh("sleep 1003 & sleep 1004 & wait")},
        {"name": "pre-stop", "exec": sh(&format!("echo pre >> {l}")),
         "when": {"source": "b", "once": "stopping"}},
        {"name": "post-stop", "exec": sh(&format!("echo post >> {l}")),
         "when": {"source": "b", "once": "stopped"}},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    wait_until("all sleeps to run", LONG, || {
        let sleeps = descendants_of(root)
            .into_iter()
            .filter(|&p| proc_cmdline(p).is_some_and(|c| c.starts_with("sleep 100")));
        (sleeps.count() == 4).then_some(())
    });
    let (code, secs, out) = stop_with(&mut ap, libc::SIGTERM);
    assert_eq!(code, 0, "{out}");
    assert_eq!(file_lines(&log), ["pre", "post"]);
    assert!(
        secs < 10.0,
        "took {secs:.1}s to stop jobs that exit on SIGTERM: {out}"
    );
    assert!(!out.contains("stop timeout"), "{out}");
    assert!(out.contains("received SIGTERM: shutting down"), "{out}");
}

#[test]
fn sigint_shuts_down_like_sigterm() {
    let dir = TestDir::new();
    let log = dir.join("app.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "main": true, "exec": sh(&format!(
            "trap 'echo got-term >> {l}; exit 0' TERM; echo up >> {l}; \
             while :; do sleep 1000 & wait $!; done"))},
    ]}));
    let mut ap = start_ready(&cfg);
    wait_line(&log, "up");
    let (code, _, out) = stop_with(&mut ap, libc::SIGINT);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("received SIGINT: shutting down"), "{out}");
    assert_eq!(file_lines(&log), ["up", "got-term"], "jobs get SIGTERM");
}

#[test]
fn a_hung_stop_hook_delays_its_job_only_until_the_jobs_stop_timeout() {
    let dir = TestDir::new();
    let log = dir.join("hung.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"stopTimeout": "4s", "jobs": [
        {"name": "app", "stopTimeout": "1s", "exec": sh(&logs_term("app", &log))},
        {"name": "other", "exec": sh(&logs_term("other", &log))},
        {"name": "pre-stop", "when": {"source": "app", "once": "stopping"},
         "exec": sh(&format!("echo hook-hangs >> {l}; exec sleep 1000"))},
    ]}));
    let mut ap = start_ready(&cfg);
    // Both traps are set before the signal, so neither shell dies of it.
    wait_line(&log, "app-running");
    wait_line(&log, "other-running");
    let t0 = Instant::now();
    ap.signal(libc::SIGTERM);
    wait_line(&log, "other-got-term");
    wait_line(&log, "app-got-term");
    let app_termed = t0.elapsed();
    let code = ap.wait_exit(LONG);
    let secs = t0.elapsed().as_secs_f64();
    let out = ap.output();
    assert_eq!(code, 0, "{out}");
    assert!(
        app_termed >= Duration::from_secs(1),
        "the app got SIGTERM before its stop hook finished or timed out"
    );
    let lines = file_lines(&log);
    let pos = |s: &str| lines.iter().position(|l| l == s).unwrap();
    assert!(pos("hook-hangs") < pos("app-got-term"), "{lines:?}");
    // The hook itself only ends at the global deadline.
    assert!(secs >= 4.0, "{secs:.2}s: {out}");
    assert!(secs < 20.0, "{secs:.2}s: {out}");
    assert!(out.contains("stop timeout of 4s reached"), "{out}");
}
