//! Jobs as PID 1 sees them: process groups, signal state and environment of
//! children, output, signal hooks, `when` rules, interval jobs, health events
//! and restart backoff. Each test runs the real binary as PID 1 of a fresh PID
//! namespace and checks /proc and autopilot's own output.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// The single descendant of `root` whose whole command line is `cmdline`.
fn process(root: i32, cmdline: &str) -> i32 {
    wait_until(&format!("a process `{cmdline}`"), LONG, || {
        let found: Vec<i32> = descendants_of(root)
            .into_iter()
            .filter(|&p| pid_alive(p) && proc_cmdline(p).as_deref() == Some(cmdline))
            .collect();
        (found.len() == 1).then(|| found[0])
    })
}

/// Waits until the file has exactly `n` lines equal to `line`.
fn wait_lines(path: &Path, line: &str, n: usize) -> Vec<String> {
    wait_until(
        &format!("{n} x {line:?} in {}", path.display()),
        LONG,
        || {
            let lines = file_lines(path);
            (lines.iter().filter(|l| *l == line).count() == n).then_some(lines)
        },
    )
}

fn stop(mut ap: Autopilot) -> (i32, String) {
    ap.signal(libc::SIGTERM);
    let code = ap.wait_exit(LONG);
    (code, ap.output())
}

#[test]
fn each_job_runs_in_its_own_process_group() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "one", "exec": ["sleep", "1001"]},
        {"name": "two", "exec": sh("sleep 1002 & exec sleep 1003")},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    let one = process(root, "sleep 1001");
    let two_child = process(root, "sleep 1002");
    let two = process(root, "sleep 1003");
    let own = pgid_of(root).unwrap();
    assert_eq!(pgid_of(one), Some(one), "a job leads its own group");
    assert_eq!(pgid_of(two), Some(two), "a job leads its own group");
    assert_eq!(
        pgid_of(two_child),
        Some(two),
        "what a job starts stays in the job's group"
    );
    assert_ne!(own, one);
    assert_ne!(own, two);
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn children_start_with_default_signal_dispositions_and_an_empty_mask() {
    // autopilot itself handles (and, via the Rust runtime, ignores SIGPIPE)
    // plenty of signals; none of that may leak into the app.
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        {"name": "hook", "exec": ["sleep", "1002"], "when": {"each": "SIGHUP"}},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    assert_ne!(
        proc_status_field(root, "SigCgt").as_deref(),
        Some("0000000000000000"),
        "autopilot itself should catch signals (else this test proves nothing)"
    );
    let app = process(root, "sleep 1001");
    ap.signal(libc::SIGHUP);
    let hook = process(root, "sleep 1002");
    for (name, pid) in [("app", app), ("hook", hook)] {
        for field in ["SigBlk", "SigIgn", "SigCgt"] {
            assert_eq!(
                proc_status_field(pid, field).as_deref(),
                Some("0000000000000000"),
                "{name}'s {field}"
            );
        }
    }
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn children_see_containerpilot_pid_and_the_pids_of_running_jobs() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "my-app", "exec": ["sleep", "1001"]},
        // Started later (on SIGUSR2), so my-app is running by then.
        {"name": "probe", "exec": ["sleep", "1002"], "when": {"each": "SIGUSR2"}},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    let app = process(root, "sleep 1001");
    ap.signal(libc::SIGUSR2);
    let probe = process(root, "sleep 1002");
    let env = proc_environ(probe).expect("probe's environment");
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("CONTAINERPILOT_PID").as_deref(),
        Some("1"),
        "autopilot is PID 1"
    );
    let app_ns_pid = *ns_pids(app).last().unwrap();
    assert_eq!(
        get("CONTAINERPILOT_MY_APP_PID"),
        Some(app_ns_pid.to_string()),
        "{env:?}"
    );
    // The supervisor's own environment is passed on too.
    assert!(get("PATH").is_some(), "{env:?}");
    let app_env = proc_environ(app).unwrap();
    assert!(
        app_env
            .iter()
            .any(|(k, v)| k == "CONTAINERPILOT_PID" && v == "1")
    );
    stop(ap);
}

#[test]
fn job_output_is_tagged_with_the_job_name_and_raw_output_is_untouched() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "greeter", "exec": sh("echo hello from greeter; echo oops on stderr >&2")},
        {"name": "rawjob", "exec": sh("echo RAW-LINE-1; echo RAW-LINE-2 >&2"), "logging": {"raw": true}},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    assert_eq!(ap.wait_exit(LONG), 0);
    let out = ap.output();
    let lines: Vec<&str> = out.lines().collect();
    for msg in ["hello from greeter", "oops on stderr"] {
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!(" greeter: {msg}")) && l.contains("INFO")),
            "no tagged line for {msg:?}:\n{out}"
        );
    }
    for raw in ["RAW-LINE-1", "RAW-LINE-2"] {
        assert!(
            lines.contains(&raw),
            "{raw} not passed through as is:\n{out}"
        );
        assert_eq!(out.matches(raw).count(), 1, "{out}");
    }
}

#[test]
fn json_log_format_gives_one_object_per_line() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "logging": {"format": "json"},
        "jobs": [{"name": "greeter", "exec": sh("echo 'hello \"json\"'")}],
    }));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    assert_eq!(ap.wait_exit(LONG), 0);
    let out = ap.output();
    let objects: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        objects.iter().any(|o| o["source"] == "greeter"
            && o["msg"] == "hello \"json\""
            && o["level"] == "info"),
        "{out}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o["source"] == "autopilot" && o["time"].is_string()),
        "{out}"
    );
}

#[test]
fn text_log_format_is_logfmt() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "logging": {"format": "text", "level": "info"},
        "jobs": [{"name": "greeter", "exec": sh("echo hello-text; echo two words")}],
    }));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    assert_eq!(ap.wait_exit(LONG), 0);
    let out = ap.output();
    assert!(out.lines().all(|l| l.starts_with("time=\"")), "{out}");
    assert!(
        out.contains("level=info source=greeter msg=hello-text\n"),
        "{out}"
    );
    assert!(out.contains("source=greeter msg=\"two words\"\n"), "{out}");
}

#[test]
fn sighup_and_sigusr2_start_their_hooks_each_time() {
    let dir = TestDir::new();
    let log = dir.join("signals.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        {"name": "on-hup", "exec": sh(&format!("echo hup >> {l}")),
         "when": {"source": "SIGHUP", "each": "SIGHUP"}},
        // The short form: signal events are published under their own name.
        {"name": "on-usr2", "exec": sh(&format!("echo usr2 >> {l}")),
         "when": {"each": "SIGUSR2"}},
    ]}));
    let mut ap = start_ready(&cfg);
    ap.signal(libc::SIGHUP);
    wait_lines(&log, "hup", 1);
    ap.signal(libc::SIGUSR2);
    wait_lines(&log, "usr2", 1);
    ap.signal(libc::SIGHUP);
    let lines = wait_lines(&log, "hup", 2);
    assert_eq!(lines, ["hup", "usr2", "hup"]);
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
    // Signals never stopped autopilot or the app.
    assert_eq!(out.matches("received SIG").count(), 1, "{out}");
}

#[test]
fn other_signals_are_forwarded_to_the_main_job() {
    let dir = TestDir::new();
    let log = dir.join("app.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "main": true, "exec": sh(&format!(
            "trap 'echo usr1 >> {l}' USR1; trap 'echo term >> {l}; exit 0' TERM; \
             echo ready >> {l}; while :; do sleep 1000 & wait $!; done"))},
        {"name": "bystander", "exec": sh(&format!(
            "trap 'echo bystander-usr1 >> {l}' USR1; echo bystander-ready >> {l}; \
             while :; do sleep 1000 & wait $!; done"))},
    ]}));
    let mut ap = start_ready(&cfg);
    wait_lines(&log, "ready", 1);
    wait_lines(&log, "bystander-ready", 1);
    ap.signal(libc::SIGUSR1);
    wait_lines(&log, "usr1", 1);
    ap.signal(libc::SIGUSR1);
    wait_lines(&log, "usr1", 2);
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "the main job exited 0 on SIGTERM: {out}");
    let lines: Vec<String> = file_lines(&log)
        .into_iter()
        .filter(|l| l != "bystander-ready")
        .collect();
    assert_eq!(lines, ["ready", "usr1", "usr1", "term"], "{out}");
}

#[test]
fn once_starts_a_hook_on_the_first_event_and_each_on_every_event() {
    let dir = TestDir::new();
    let log = dir.join("hooks.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        // Three successful runs: at startup, then two more ticks.
        {"name": "ticker", "exec": sh(&format!("echo tick >> {l}")),
         "when": {"interval": "400ms"}, "restarts": 2},
        {"name": "once-hook", "exec": sh(&format!("echo once >> {l}")),
         "when": {"source": "ticker", "once": "exitSuccess"}},
        {"name": "each-hook", "exec": sh(&format!("echo each >> {l}")),
         "when": {"source": "ticker", "each": "exitSuccess"}},
        {"name": "done", "exec": sh(&format!("echo ticker-stopped >> {l}")),
         "when": {"source": "ticker", "once": "stopped"}},
    ]}));
    let ap = start_ready(&cfg);
    wait_lines(&log, "ticker-stopped", 1);
    let lines = wait_lines(&log, "each", 3);
    let count = |what: &str| lines.iter().filter(|l| *l == what).count();
    assert_eq!(count("tick"), 3, "{lines:?}");
    assert_eq!(count("once"), 1, "{lines:?}");
    let first_tick = lines.iter().position(|l| l == "tick").unwrap();
    let once = lines.iter().position(|l| l == "once").unwrap();
    assert!(first_tick < once, "{lines:?}");
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
    assert_eq!(count("each"), 3, "{lines:?}");
}

#[test]
fn interval_jobs_are_killed_at_their_timeout_and_stop_after_their_restarts() {
    let dir = TestDir::new();
    let log = dir.join("task.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        // Each run would take 100 s; the timeout kills it after 200 ms.
        {"name": "task", "exec": sh(&format!("echo run >> {l}; exec sleep 100")),
         "when": {"interval": "600ms"}, "timeout": "200ms", "restarts": 2},
        {"name": "on-fail", "exec": sh(&format!("echo killed >> {l}")),
         "when": {"source": "task", "each": "exitFailed"}},
        {"name": "on-stop", "exec": sh(&format!("echo task-stopped >> {l}")),
         "when": {"source": "task", "once": "stopped"}},
    ]}));
    let mut ap = start_ready(&cfg);
    let root = ap.autopilot_host_pid();
    wait_lines(&log, "task-stopped", 1);
    let lines = wait_lines(&log, "killed", 3);
    assert_eq!(
        lines.iter().filter(|l| *l == "run").count(),
        3,
        "one run at startup and 2 restarts: {lines:?}"
    );
    assert!(
        !descendants_of(root)
            .into_iter()
            .any(|p| proc_cmdline(p).as_deref() == Some("sleep 100")),
        "every timed-out run was killed"
    );
    let (code, out) = stop(ap);
    // No main job: `task` ended for good before shutdown, its last run
    // killed by the timeout, so that is the container's exit code.
    assert_eq!(code, 128 + libc::SIGKILL, "{out}");
    assert_eq!(out.matches("task: timeout reached").count(), 3, "{out}");
}

#[test]
fn an_interval_job_still_running_at_its_last_tick_stops_after_that_run() {
    // Regression: with the default timeout (= the interval), the run is still
    // going when the last tick finds no restarts left; the job used to go back
    // to waiting for good instead of stopping, so `stopped` never came.
    let dir = TestDir::new();
    let log = dir.join("task.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        {"name": "task", "exec": sh(&format!("echo run >> {l}; exec sleep 100")),
         "when": {"interval": "300ms"}, "restarts": 2},
        {"name": "on-stop", "exec": sh(&format!("echo task-stopped >> {l}")),
         "when": {"source": "task", "once": "stopped"}},
    ]}));
    let ap = start_ready(&cfg);
    let lines = wait_lines(&log, "task-stopped", 1);
    assert_eq!(lines.iter().filter(|l| *l == "run").count(), 3, "{lines:?}");
    let (code, out) = stop(ap);
    assert_eq!(code, 128 + libc::SIGKILL, "the last run was killed: {out}");
}

#[test]
fn when_timeout_ends_a_waiting_job_and_publishes_timer_expired() {
    let dir = TestDir::new();
    let log = dir.join("when.log");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"]},
        // app never exits, so this job gives up after 500 ms.
        {"name": "waiter", "exec": sh(&format!("echo waiter-ran >> {l}")),
         "when": {"source": "app", "once": "exitSuccess", "timeout": "500ms"}},
        {"name": "on-expired", "exec": sh(&format!("echo expired >> {l}")),
         "when": {"source": "waiter", "once": "timerExpired"}},
        {"name": "on-stopped", "exec": sh(&format!("echo waiter-stopped >> {l}")),
         "when": {"source": "waiter", "once": "stopped"}},
    ]}));
    let start_time = Instant::now();
    let ap = start_ready(&cfg);
    wait_lines(&log, "expired", 1);
    let lines = wait_lines(&log, "waiter-stopped", 1);
    assert!(
        start_time.elapsed() >= Duration::from_millis(500),
        "gave up before its timeout"
    );
    assert!(!lines.contains(&"waiter-ran".to_string()), "{lines:?}");
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
    assert!(!file_lines(&log).contains(&"waiter-ran".to_string()));
}

#[test]
fn health_checks_publish_healthy_and_unhealthy_on_transitions() {
    let dir = TestDir::new();
    let log = dir.join("health.log");
    let flag = dir.join("healthy");
    let l = log.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sleep", "1001"],
         "health": {"exec": format!("test -f {}", flag.display()), "interval": "200ms", "ttl": 10}},
        {"name": "on-healthy", "exec": sh(&format!("echo healthy >> {l}")),
         "when": {"source": "app", "each": "healthy"}},
        {"name": "on-unhealthy", "exec": sh(&format!("echo unhealthy >> {l}")),
         "when": {"source": "app", "each": "unhealthy"}},
    ]}));
    let ap = start_ready(&cfg);
    wait_lines(&log, "unhealthy", 1);
    std::fs::write(&flag, "").unwrap();
    wait_lines(&log, "healthy", 1);
    std::fs::remove_file(&flag).unwrap();
    let lines = wait_lines(&log, "unhealthy", 2);
    // Events come on transitions only, not on every check.
    assert_eq!(lines, ["unhealthy", "healthy", "unhealthy"]);
    std::fs::write(&flag, "").unwrap();
    let lines = wait_lines(&log, "healthy", 2);
    assert_eq!(lines, ["unhealthy", "healthy", "unhealthy", "healthy"]);
    let (code, out) = stop(ap);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_crashing_job_is_restarted_with_backoff_not_hot_looped() {
    let dir = TestDir::new();
    let log = dir.join("runs.log");
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "crasher", "exec": sh(&format!("date +%s.%N >> {}; exit 3", log.display())),
         "restarts": 5, "backoff": {"initial": "200ms", "max": "800ms"}},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    // No main job: the last job that failed for good sets the exit code.
    assert_eq!(ap.wait_exit(LONG), 3, "{}", ap.output());
    let runs: Vec<f64> = file_lines(&log)
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(runs.len(), 6, "one run and 5 restarts: {runs:?}");
    // Delays double from `initial` up to `max`; each gap is at least its delay
    // (a little slack for the wall clock that `date` reads).
    let delays = [0.2, 0.4, 0.8, 0.8, 0.8];
    for (i, want) in delays.iter().enumerate() {
        let gap = runs[i + 1] - runs[i];
        assert!(
            gap >= want - 0.01,
            "restart {} came after {gap:.3}s, backoff is {want}s",
            i + 1
        );
    }
    let total = runs[5] - runs[0];
    assert!(total >= 3.0 - 0.01, "6 runs in {total:.3}s: hot loop");
}
