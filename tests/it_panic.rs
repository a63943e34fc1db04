//! A panic in one of autopilot's tasks (issue 14): logged as an error with
//! where it happened, then the same orderly shutdown as SIGTERM (stop hooks
//! run, jobs get SIGTERM), and a non-zero exit, never a silent loss of the
//! task's duty. The debug binary panics a task on SIGUSR2 when
//! `AUTOPILOT_TEST_PANIC=task` (src/main.rs, `panics`).

use crate::common::*;
use serde_json::json;

#[test]
fn a_panicking_task_is_logged_and_ends_in_an_orderly_shutdown() {
    let dir = TestDir::new();
    let log = dir.join("order.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"stopTimeout": "20s", "jobs": [
        {"name": "app", "exec": sh(&format!(
            "trap 'echo app-got-term >> {l}; exit 0' TERM; echo app-running >> {l}; \
             while :; do sleep 1000 & wait $!; done"))},
        {"name": "post-stop", "when": {"source": "app", "once": "stopped"},
         "exec": sh(&format!("echo post-stop >> {l}"))},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[("AUTOPILOT_TEST_PANIC", "task")]);
    ap.wait_for_output("started as pid 1", LONG);
    wait_line(&log, "app-running");
    ap.signal(libc::SIGUSR2);
    let code = ap.wait_exit(LONG);
    let out = ap.output();
    assert_eq!(code, 70, "{out}");
    assert!(
        out.contains("internal error: a task panicked at src/main.rs")
            && out.contains("AUTOPILOT_TEST_PANIC asked for a panic in a task"),
        "{out}"
    );
    assert_eq!(
        file_lines(&log),
        ["app-running", "app-got-term", "post-stop"],
        "{out}"
    );
}
