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
        {"name": "app", "exec": sh(&logs_term("app", &log))},
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

/// Issue 14, defects 1, 2, 3 and 7 through `/v3/reload`: each config that
/// used to kill PID 1 (or pass `check` and crash it later) is refused with
/// a 422 naming the problem, and the running config stays.
#[test]
fn hostile_configs_on_reload_are_refused_and_pid1_keeps_running() {
    let dir = TestDir::new();
    let log = dir.join("app.log");
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": sh(&format!("echo up >> {}; exec sleep 1000", log.display()))},
    ]}));
    let mut ap = start_ready(&cfg);
    wait_line(&log, "up");
    let hostile = [
        (
            r#"{jobs: [{name: "app", exec: "true", when: {interval: "{{ printf "%.65536f" 1.0 }}"}}]}"#,
            "missing unit",
        ),
        (
            r#"{jobs: [{name: "app", exec: "true", when: {interval: 1e19}}]}"#,
            "is too long",
        ),
        (r#"{stopTimeout: 9.3e18, jobs: []}"#, "is too long"),
        (r#"{jobs: [{name: "a\u0000b", exec: "true"}]}"#, "NUL"),
        (r#"{jobs: [{name: "a=b", exec: "true"}]}"#, "contains `=`"),
        (
            r#"{jobs: [{{ range loop 1000 }}{{ range loop 1000 }}{name: "x"},{{ end }}{{ end }}]}"#,
            "`range` iterations",
        ),
    ];
    for (text, part) in hostile {
        dir.write("config.json5", text);
        let r = ap.control_request("POST", "/v3/reload", None);
        assert_eq!(r.status, 422, "{text}: {}", r.body);
        assert!(r.body.contains(part), "{text}: {}", r.body);
        let ping = ap.control_request("GET", "/v3/ping", None);
        assert_eq!(ping.status, 200, "after {text}: {}", ap.output());
    }
    assert!(ap.try_status().is_none(), "{}", ap.output());
}
