//! What an operator sees (issue 15, runtime output): log lines that explain
//! exits, restarts and health at the default level; logging that never
//! stalls the supervisor, even with a stdout nobody reads; the live event
//! stream (`autopilot events`); the status view's order and columns.

use crate::common::*;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[test]
fn exits_restarts_and_health_are_explained_at_info() {
    let dir = TestDir::new();
    let ready = dir.join("ready");
    let cfg = dir.json_config(&json!({
        "jobs": [
            {"name": "crashy", "exec": sh("echo working; echo crashy: ready; exit 3"), "restarts": 2,
             "backoff": {"initial": "100ms", "max": "100ms"}},
            {"name": "once", "exec": sh("exit 4")},
            {"name": "web", "exec": ["sleep", "1000"],
             "health": {"exec": sh(&format!(
                 "test -f {} || {{ echo starting; echo db not ready; exit 1; }}",
                 ready.display()
             )), "interval": "200ms", "ttl": 10}},
        ],
    }));
    let mut ap = start_ready(&cfg);
    let out = ap.wait_for_output("restarts used up", LONG);
    // The default format is `TIME LEVEL source: message`; these are
    // supervisor lines, at INFO or WARN, so shown at the default level.
    for expected in [
        "WARN  autopilot: crashy: exited with code 3 after ",
        "; restarting in 100ms (restart 1 of 2)\n",
        "; restarting in 100ms (restart 2 of 2)\n",
        "; restarts used up (2 of 2)\n",
        "WARN  autopilot: once: exited with code 4 after ",
        "; not restarted: restarts never\n",
        "INFO  crashy: working\n",
        "INFO  crashy: ready\n",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    assert!(!out.contains("crashy: crashy:"), "a doubled prefix:\n{out}");
    // An exec check's failure says why, with its last output line.
    let out = ap.wait_for_output(
        "WARN  autopilot: web: unhealthy: check exited with code 1: db not ready\n",
        LONG,
    );
    assert!(out.contains("INFO  check.web: db not ready\n"), "{out}");
    std::fs::write(&ready, "").unwrap();
    let out = ap.wait_for_output("INFO  autopilot: web: healthy\n", LONG);
    // A transition is logged once, not at every failed check.
    assert_eq!(out.matches("web: unhealthy").count(), 1, "{out}");
    assert!(
        !out.contains("Some("),
        "Rust debug formatting leaked:\n{out}"
    );
    assert!(out.contains("started as pid 1 with 3 jobs"), "{out}");

    ap.signal(libc::SIGTERM);
    ap.wait_exit(LONG);
    let out = ap.output();
    assert!(
        out.contains("autopilot: web: killed by SIGTERM after "),
        "{out}"
    );
    assert!(out.contains("; stopped\n"), "{out}");
}

/// Reads everything written to `fifo` into a buffer, from now on.
/// Starts autopilot as PID 1 with its stdout a FIFO that the test holds open
/// and does not read (yet): once its 64 KiB are full, every write to it
/// blocks. Returns the FIFO's read end, for [`drain`].
fn start_with_unread_stdout(dir: &TestDir, cfg: &Path) -> (Autopilot, std::fs::File) {
    let fifo = dir.join("stdout.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let script = "exec \"$0\" -config \"$1\" > \"$2\"";
    let ap = Autopilot::program_pid1(
        Path::new("/bin/sh"),
        &[
            "-c",
            script,
            autopilot_bin().to_str().unwrap(),
            cfg.to_str().unwrap(),
            fifo.to_str().unwrap(),
        ],
        &[],
    );
    (ap, held)
}

fn drain(mut fifo: std::fs::File) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let into = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 65536];
        while let Ok(n) = fifo.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

#[test]
fn a_stdout_nobody_reads_stalls_neither_restarts_nor_reaping_nor_shutdown() {
    let dir = TestDir::new();
    let runs = dir.join("runs");
    let chatty_done = dir.join("chatty.done");
    let cfg = dir.json_config(&json!({
        "jobs": [
            // Far more output than a pipe (64 KiB) and the log queue hold.
            {"name": "chatty", "exec": sh(&format!(
                "i=0; while [ $i -lt 30000 ]; do echo line $i of a lot of output; i=$((i+1)); done; \
                 touch {}; exec sleep 1000", chatty_done.display()))},
            // Restarts forever; each run leaves an orphan to reap.
            {"name": "crashy", "exec": sh(&format!("echo run >> {}; sleep 1000 & exit 1", runs.display())),
             "restarts": "unlimited", "backoff": {"initial": "50ms", "max": "50ms"}},
        ],
    }));
    let (mut ap, held) = start_with_unread_stdout(&dir, &cfg);
    let host_pid = ap.autopilot_host_pid();
    wait_until("chatty to write all its output", LONG, || {
        chatty_done.exists().then_some(())
    });
    // The output is clogged now; the supervisor must go on all the same.
    let before = file_lines(&runs).len();
    wait_until("crashy to be restarted 5 more times", LONG, || {
        (file_lines(&runs).len() >= before + 5).then_some(())
    });
    wait_until("no zombies under autopilot", LONG, || {
        zombies_under(host_pid).is_empty().then_some(())
    });
    // Once someone reads again, the gap is reported.
    let written = drain(held);
    wait_until("the dropped lines to be reported", LONG, || {
        String::from_utf8_lossy(&written.lock().unwrap())
            .contains(" log lines dropped: the log output was not keeping up")
            .then_some(())
    });
    ap.signal(libc::SIGTERM);
    let code = ap.wait_exit(LONG);
    assert_eq!(code, 0, "no job ended for good with a failure");
}

#[test]
fn a_stdout_nobody_reads_does_not_hold_up_shutdown() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "jobs": [
            {"name": "chatty", "exec": sh(
                "while :; do echo a line of output that nobody will ever read; done")},
        ],
    }));
    let (mut ap, _held) = start_with_unread_stdout(&dir, &cfg);
    let host_pid = ap.autopilot_host_pid();
    wait_until("chatty to run", LONG, || {
        (!find_descendants(host_pid, "sh -c while").is_empty()).then_some(())
    });
    // The control socket answers although every log write would block.
    let socket = ap.control_socket().to_path_buf();
    wait_until("the control socket to answer", LONG, || {
        http_request_unix(&socket, "GET", "/v3/ping", None, DEADLINE)
            .ok()
            .filter(|r| r.status == 200)
    });
    ap.signal(libc::SIGTERM);
    // Chatty dies of SIGTERM; the exit comes within the flush budget.
    ap.wait_exit(LONG);
}

/// Starts a subscriber: `autopilot events -follow -json`, its lines kept.
fn subscribe(ap: &Autopilot) -> (std::process::Child, Arc<Mutex<Vec<u8>>>) {
    let mut child = std::process::Command::new(autopilot_bin())
        .args(["events", "-follow", "-json"])
        .env_remove("CONTAINERPILOT")
        .env(CONTROL_SOCKET_ENV, ap.control_socket())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let into = out.clone();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (child, out)
}

/// A record as `type source.code` or `state job from->to`, with the exit
/// code for exits.
fn short(record: &Value) -> String {
    let s = |k: &str| record[k].as_str().unwrap_or("").to_string();
    match s("type").as_str() {
        "state" => format!("state {} {}->{}", s("job"), s("from"), s("to")),
        _ => {
            let code = match &record["exitCode"] {
                Value::Number(n) => format!(" {n}"),
                _ => String::new(),
            };
            format!("{}.{}{code}", s("source"), s("code"))
        }
    }
}

#[test]
fn a_subscriber_sees_the_exact_sequence_of_a_triggered_hook() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "jobs": [
            {"name": "app", "exec": ["sleep", "1000"]},
            {"name": "setup", "exec": sh("exit 3"),
             "when": {"source": "SIGHUP", "each": "SIGHUP"}},
            {"name": "report", "exec": "true",
             "when": {"source": "setup", "each": "exitFailed"}},
        ],
    }));
    let mut ap = start_ready(&cfg);
    let (mut subscriber, lines) = subscribe(&ap);
    let records = || -> Vec<Value> {
        String::from_utf8_lossy(&lines.lock().unwrap())
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    };
    wait_until("the subscriber to see the app running", LONG, || {
        records()
            .iter()
            .any(|r| short(r) == "state app waiting->running")
            .then_some(())
    });
    ap.signal(libc::SIGHUP);
    let expected = [
        "SIGHUP.SIGHUP",
        "state setup waiting->running",
        "setup.exitFailed 3",
        "state setup running->waiting",
        "state report waiting->running",
        "report.exitSuccess 0",
        "state report running->waiting",
    ];
    let seen = wait_until("the hook's sequence", LONG, || {
        let seen: Vec<String> = records()
            .iter()
            .map(short)
            .skip_while(|r| r != "SIGHUP.SIGHUP")
            .filter(|r| r.contains("SIGHUP") || r.contains("setup") || r.contains("report"))
            .collect();
        (seen.len() >= expected.len()).then_some(seen)
    });
    assert_eq!(seen, expected);
    let all = records();
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gaps: {seqs:?}");
    assert!(
        all.iter()
            .all(|r| r["time"].as_str().is_some_and(|t| t.ends_with('Z'))),
        "{all:?}"
    );

    // Without -follow: the recent records, as text, and done.
    let (code, text, err) = ap.control_command(&["events"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(" event setup.exitFailed exit=exited with code 3 exitCode=3\n"),
        "{text}"
    );
    assert!(text.contains(" state setup waiting -> running\n"), "{text}");
    let (code, _, err) = ap.control_command(&["events", "-folow"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown flag -folow"), "{err}");

    ap.signal(libc::SIGTERM);
    ap.wait_exit(LONG);
    // The follower ends when autopilot does.
    wait_until("the subscriber to end", LONG, || {
        subscriber.try_wait().unwrap()
    });
}

#[test]
fn status_lists_jobs_in_config_order_with_since_and_dashes() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "jobs": [
            {"name": "zeta", "exec": ["sleep", "1000"]},
            {"name": "alpha", "exec": ["sleep", "1000"],
             "health": {"exec": "true", "interval": "200ms", "ttl": 10}},
            {"name": "mid", "exec": sh("exit 2")},
        ],
    }));
    let ap = start_ready(&cfg);
    let status = || -> Value {
        let (code, out, err) = ap.control_command(&["status", "-json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let v = wait_until("alpha healthy and mid stopped", LONG, || {
        let v = status();
        (v["jobs"][1]["health"] == "healthy" && v["jobs"][2]["state"] == "stopped").then_some(v)
    });
    let names: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let mid = &v["jobs"][2];
    assert_eq!(mid["lastExitCode"], 2, "{v}");
    assert_eq!(mid["lastExit"], "exit code 2", "{v}");
    assert_eq!(mid["health"], Value::Null, "{v}");
    assert!(mid.get("last_exit_code").is_none(), "{v}");
    let now = v["timeMs"].as_u64().unwrap();
    let since = mid["sinceMs"].as_u64().unwrap();
    assert!(since > 0 && since <= now, "{v}");

    let (_, table, _) = ap.control_command(&["status"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .skip(1)
        .filter(|r: &Vec<&str>| r.len() > 2)
        .collect();
    assert_eq!(rows[0][..4], ["JOB", "STATE", "SINCE", "HEALTH"], "{table}");
    assert_eq!(
        rows[1][..6],
        ["zeta", "running", rows[1][2], "ago", "-", rows[1][5]]
    );
    assert_eq!(
        rows[2][..5],
        ["alpha", "running", rows[2][2], "ago", "healthy"]
    );
    assert_eq!(rows[3][..5], ["mid", "stopped", rows[3][2], "ago", "-"]);
}

#[test]
fn a_watch_change_is_one_line_with_instances_before_and_after_and_an_event_with_them() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "watches": [{"name": "db", "interval": "100ms"}],
        "jobs": [{"name": "app", "exec": ["sleep", "1000"]}],
    }));
    let mut ap = start_ready(&cfg);
    ap.wait_for_output("watch.db: passing instances 0 -> 0", LONG);
    let register = r#"{"Name": "db", "ID": "db-1", "Address": "127.0.0.1", "Port": 5432}"#;
    assert_eq!(consul.http_put("/v1/agent/service/register", register), 200);
    ap.wait_for_output(
        "INFO  autopilot: watch.db: passing instances 0 -> 1: added 127.0.0.1:5432\n",
        LONG,
    );
    assert_eq!(
        consul.http_put("/v1/agent/service/deregister/db-1", ""),
        200
    );
    ap.wait_for_output(
        "INFO  autopilot: watch.db: passing instances 1 -> 0: removed 127.0.0.1:5432\n",
        LONG,
    );
    let (code, out, err) = ap.control_command(&["events", "-json"]);
    assert_eq!(code, 0, "{err}");
    let changes: Vec<(Value, Value, Value)> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["source"] == "watch.db" && r["code"] == "changed")
        .map(|r| {
            (
                r["instances"].clone(),
                r["added"].clone(),
                r["removed"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes[changes.len() - 2..],
        [
            (json!(1), json!(["127.0.0.1:5432"]), json!([])),
            (json!(0), json!([]), json!(["127.0.0.1:5432"])),
        ],
        "{out}"
    );
}
