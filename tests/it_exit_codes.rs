//! The container's exit code (supervisor.rs `Outcome`, docs/behaviour.md):
//! - with a `main: true` job: that job's last exit, 128+signal for a signal
//!   death, and its end shuts the container down;
//! - without one: the last job that ended for good with a failure before
//!   shutdown began, else 0;
//! - 2 for a bad command line or config (nothing started), 127/126 for a main
//!   job that cannot be executed.

use crate::common::*;
use serde_json::json;
use std::path::Path;

/// Runs `config` as PID 1 to the end; returns (exit code, output).
fn run_to_end(config: &Path) -> (i32, String) {
    let mut ap = Autopilot::start_pid1(config, &[], &[]);
    let code = ap.wait_exit(LONG);
    (code, ap.output())
}

fn main_job_exiting(dir: &TestDir, file: &str, script: &str) -> std::path::PathBuf {
    dir.write(
        file,
        json!({"jobs": [{"name": "app", "main": true, "exec": sh(script)}]}).to_string(),
    )
}

#[test]
fn every_exit_code_of_the_main_job_is_the_containers() {
    let dir = TestDir::new();
    for code in 0..=255 {
        let cfg = main_job_exiting(&dir, &format!("c{code}.json5"), &format!("exit {code}"));
        let (got, out) = run_to_end(&cfg);
        assert_eq!(got, code, "main job exited {code}: {out}");
    }
}

#[test]
fn a_main_job_killed_by_a_signal_gives_128_plus_the_signal() {
    let dir = TestDir::new();
    for (sig, name) in [
        (libc::SIGHUP, "HUP"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGTERM, "TERM"),
    ] {
        let cfg = main_job_exiting(&dir, &format!("s{sig}.json5"), &format!("kill -{name} $$"));
        let (got, out) = run_to_end(&cfg);
        assert_eq!(got, 128 + sig, "main job killed by SIG{name}: {out}");
        assert!(out.contains(&format!("killed by SIG{name}")), "{out}");
    }
}

#[test]
fn the_main_job_ending_stops_the_others_and_sets_the_code() {
    let dir = TestDir::new();
    let log = dir.join("other.log");
    let ready = dir.join("ready");
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "other", "exec": sh(&format!(
            "trap 'echo other-got-term >> {}; exit 9' TERM; touch {}; \
             while :; do sleep 1000 & wait $!; done",
            log.display(), ready.display()))},
        {"name": "app", "main": true, "exec": sh(&format!(
            "while [ ! -e {} ]; do sleep 0.05; done; exit 42", ready.display()))},
    ]}));
    let (code, out) = run_to_end(&cfg);
    assert_eq!(code, 42, "{out}");
    assert!(
        out.contains("main job `app` ended (exit code 42): shutting down"),
        "{out}"
    );
    assert_eq!(file_lines(&log), ["other-got-term"], "{out}");
}

#[test]
fn on_sigterm_the_main_jobs_own_exit_counts() {
    let dir = TestDir::new();
    for (script, want) in [
        // Dies of the SIGTERM it gets at shutdown: 128+15, as tini reports it.
        ("exec sleep 1000", 143),
        // Handles it and exits cleanly.
        (
            "trap 'exit 0' TERM; while :; do sleep 1000 & wait $!; done",
            0,
        ),
        (
            "trap 'exit 7' TERM; while :; do sleep 1000 & wait $!; done",
            7,
        ),
    ] {
        let cfg = dir.json_config(&json!({"jobs": [
            {"name": "app", "main": true, "exec": sh(script)},
            {"name": "helper", "exec": sh("exit 5")},
        ]}));
        let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
        let root = ap.autopilot_host_pid();
        ap.wait_for_output("started as pid 1", LONG);
        // `sleep 1000` runs once the app's trap is set. The helper's failure
        // does not count: there is a main job.
        wait_until("the app to run", LONG, || {
            descendants_of(root)
                .into_iter()
                .any(|p| proc_cmdline(p).as_deref() == Some("sleep 1000"))
                .then_some(())
        });
        ap.signal(libc::SIGTERM);
        let code = ap.wait_exit(LONG);
        assert_eq!(code, want, "{script}: {}", ap.output());
    }
}

#[test]
fn without_a_main_job_the_last_job_that_failed_for_good_sets_the_code() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "first", "exec": sh("exit 3")},
        {"name": "second", "exec": sh("sleep 0.2; exit 5"),
         "when": {"source": "first", "once": "exitFailed"}},
        {"name": "third", "exec": sh("exit 0"),
         "when": {"source": "second", "once": "exitFailed"}},
    ]}));
    let (code, out) = run_to_end(&cfg);
    assert_eq!(
        code, 5,
        "second failed last; third's success does not reset it: {out}"
    );
    assert!(
        out.contains("every job is done") || out.contains("all jobs done"),
        "{out}"
    );
}

#[test]
fn without_a_main_job_all_successes_exit_0() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "a", "exec": sh("exit 0")},
        {"name": "b", "exec": sh("exit 0"), "when": {"source": "a", "once": "exitSuccess"}},
    ]}));
    assert_eq!(run_to_end(&cfg).0, 0);
}

#[test]
fn a_job_that_recovers_on_restart_has_not_failed_for_good() {
    let dir = TestDir::new();
    let marker = dir.join("tried");
    let m = marker.display();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "flaky", "restarts": 2, "backoff": {"initial": "10ms", "max": "10ms"},
         "exec": sh(&format!("if [ -e {m} ]; then exit 0; fi; touch {m}; exit 4"))},
    ]}));
    let (code, out) = run_to_end(&cfg);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn without_a_main_job_failures_during_shutdown_do_not_count() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "a", "exec": ["sleep", "1001"]},
        {"name": "b", "exec": sh("trap 'exit 6' TERM; while :; do sleep 1000 & wait $!; done")},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    let root = ap.autopilot_host_pid();
    wait_until("both jobs to run", LONG, || {
        let sleeps = descendants_of(root)
            .into_iter()
            .filter(|&p| proc_cmdline(p).is_some_and(|c| c.starts_with("sleep 100")));
        (sleeps.count() == 2).then_some(())
    });
    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(LONG), 0, "{}", ap.output());
}

#[test]
fn a_missing_executable_gives_127_and_a_non_executable_file_126() {
    let dir = TestDir::new();
    let not_exec = dir.write("not-executable.sh", "#!/bin/sh\nexit 0\n");
    for (program, want) in [
        ("/nonexistent/app".to_string(), 127),
        ("no-such-program-on-path".to_string(), 127),
        (not_exec.display().to_string(), 126),
    ] {
        let cfg = dir.json_config(&json!({"jobs": [
            {"name": "app", "main": true, "exec": [program, "--flag"]},
        ]}));
        let (code, out) = run_to_end(&cfg);
        assert_eq!(code, want, "{program}: {out}");
        assert!(out.contains("app: cannot start"), "{out}");
    }
}

#[test]
fn a_config_error_exits_2_with_the_error_on_stderr() {
    let dir = TestDir::new();
    let marker = dir.join("ran");
    let cfg = dir.write(
        "bad.json5",
        format!(
            "{{\n  jobs: [\n    {{name: \"app\", exec: \"touch {}\", restart: 3}},\n  ]\n}}\n",
            marker.display()
        ),
    );
    let (code, stdout, stderr) = run_autopilot(&["-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("unknown key `restart`"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", cfg.display())),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `restarts`?"), "{stderr}");
    assert!(!stdout.contains("restart"), "errors go to stderr: {stdout}");
    assert!(!marker.exists(), "nothing may start with a bad config");
}

#[test]
fn a_config_error_as_pid1_exits_2_too() {
    let dir = TestDir::new();
    let cfg = dir.write("bad.json5", "{jobs: [{name: \"app\" exec: \"true\"}]}");
    let (code, out) = run_to_end(&cfg);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad.json5:1:"), "{out}");
}

#[test]
fn a_missing_config_or_bad_flag_exits_2() {
    let (code, _, stderr) = run_autopilot(&["-config", "/nonexistent/config.json5"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("configuration file not found"), "{stderr}");
    let (code, _, stderr) = run_autopilot(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("CONTAINERPILOT"), "{stderr}");
    let (code, _, stderr) = run_autopilot(&["-confg", "x"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("did you mean -config?"), "{stderr}");
}
