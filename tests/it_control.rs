//! The control socket: every endpoint through the real socket and through
//! the subcommands, reload, maintenance (also against a real Consul), the
//! status view, and the socket file's permissions and ownership rules.

use crate::common::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;

/// A job that prints `FOO=<value>` every 200 ms, to see the environment
/// new processes get.
fn printer() -> Value {
    json!({
        "name": "printer",
        "exec": ["sh", "-c", "echo \"FOO=${FOO-unset}\""],
        "when": {"interval": "200ms"},
    })
}

fn sleeper(name: &str, seconds: u32) -> Value {
    json!({"name": name, "exec": ["sleep", seconds.to_string()]})
}

/// Waits until the control socket answers a ping.
fn wait_ready(ap: &Autopilot) {
    wait_until("the control socket to answer /v3/ping", DEADLINE, || {
        http_request_unix(ap.control_socket(), "GET", "/v3/ping", None, DEADLINE)
            .ok()
            .filter(|r| r.status == 200)
    });
}

fn status(ap: &Autopilot) -> Value {
    let r = ap.control_request("GET", "/v3/status", None);
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", r.body))
}

fn job<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["name"] == name)
}

/// The pid of `name` once it runs.
fn wait_pid(ap: &Autopilot, name: &str) -> i64 {
    wait_until(&format!("job {name} to run"), DEADLINE, || {
        job(&status(ap), name).and_then(|j| j["pid"].as_i64())
    })
}

fn error_of(r: &HttpResponse) -> String {
    let v: Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", r.body));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {}", r.body))
        .to_string()
}

#[test]
fn ping_status_and_environ_through_the_socket_and_the_subcommands() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [sleeper("app", 1000), printer()]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);

    let r = ap.control_request("GET", "/v3/ping", None);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(
        ap.control_command(&["-ping"]),
        (0, "ok\n".into(), String::new())
    );
    assert_eq!(ap.control_command(&["ping"]).0, 0);

    let pid = wait_pid(&ap, "app");
    let s = status(&ap);
    let app = job(&s, "app").unwrap();
    assert_eq!(app["state"], "running");
    assert_eq!(app["restarts"], 0);
    assert_eq!(s["pid"], 1, "autopilot is PID 1: {s}");
    assert_eq!(s["maintenance"], false);

    // -putenv keeps everything after the first '=' (ContainerPilot cut it).
    let (code, out, err) = ap.control_command(&["-putenv", "FOO=a=b", "-putenv", "BAR=1"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    ap.wait_for_output("FOO=a=b", DEADLINE);
    // The alias, and null unsets.
    let unset_lines = ap.count_output("FOO=unset");
    let r = ap.control_request("POST", "/v3/env", Some(r#"{"FOO": null}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"set": [], "unset": ["FOO"]})
    );
    ap.wait_for_output_count("FOO=unset", unset_lines + 1, DEADLINE);
    // The modern form; an empty value unsets too.
    assert_eq!(ap.control_command(&["putenv", "FOO=x y"]).0, 0);
    ap.wait_for_output("FOO=x y", DEADLINE);
    let r = ap.control_request("POST", "/v3/environ", Some(r#"{"FOO": ""}"#));
    assert_eq!(r.status, 200);
    let unset_lines = ap.count_output("FOO=unset");
    ap.wait_for_output_count("FOO=unset", unset_lines + 1, DEADLINE);

    // Bad requests get a 4xx that says what to fix.
    let r = ap.control_request("POST", "/v3/environ", Some("FOO=1"));
    assert_eq!(r.status, 400);
    assert!(error_of(&r).contains("not valid JSON"), "{}", r.body);
    let r = ap.control_request("POST", "/v3/environ", Some(""));
    assert!(
        r.status == 400 && error_of(&r).contains("empty"),
        "{}",
        r.body
    );
    let r = ap.control_request("POST", "/v3/environ", Some(r#"["FOO"]"#));
    assert!(
        r.status == 400 && error_of(&r).contains("not an object"),
        "{}",
        r.body
    );
    let r = ap.control_request("POST", "/v3/environ", Some(r#"{"A=B": "x"}"#));
    assert!(
        r.status == 400 && error_of(&r).contains("cannot contain '='"),
        "{}",
        r.body
    );
    let r = ap.control_request("POST", "/v3/environ", Some(r#"{"A": {"x": 1}}"#));
    assert!(
        r.status == 400 && error_of(&r).contains("string or null"),
        "{}",
        r.body
    );
    let r = ap.control_request("GET", "/v3/environ", None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("POST")),
        "{}",
        r.body
    );
    let r = ap.control_request("GET", "/v3/nothing", None);
    assert!(
        r.status == 404 && error_of(&r).contains("no such endpoint"),
        "{}",
        r.body
    );
    let big = format!("{{\"FOO\": \"{}\"}}", "x".repeat(100 * 1024));
    let r = ap.control_request("POST", "/v3/environ", Some(&big));
    assert_eq!(r.status, 413, "{}", r.body);
    let (code, _, err) = ap.control_command(&["-putenv", "=x"]);
    assert!(
        code == 2 && err.contains("name before '=' is empty"),
        "{err}"
    );

    // Nothing above disturbed the job.
    assert_eq!(job(&status(&ap), "app").unwrap()["pid"], pid);
}

#[test]
fn status_prints_a_table_of_jobs_and_watches() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "jobs": [
            sleeper("web", 1000),
            {"name": "setup", "exec": ["sh", "-c", "exit 3"]},
            {"name": "flaky", "exec": ["sh", "-c", "exit 1"], "restarts": 2},
        ],
        "watches": [{"name": "db", "interval": 5}],
    }));
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);
    let pid = wait_pid(&ap, "web");
    wait_until(
        "flaky to use its restarts and setup to end",
        DEADLINE,
        || {
            let s = status(&ap);
            (job(&s, "flaky")?["restarts"] == 2
                && job(&s, "flaky")?["state"] == "stopped"
                && job(&s, "setup")?["state"] == "stopped")
                .then_some(())
        },
    );
    let (code, out, err) = ap.control_command(&["status"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("autopilot ") && lines[0].contains("(pid 1)"),
        "{out}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
    };
    // A job's row without its SINCE cell (`12s ago`: two words).
    let job_row = |name: &str| {
        let mut cells = row(name);
        assert_eq!(cells[3], "ago", "{out}");
        cells.drain(2..4);
        cells
    };
    assert_eq!(
        row("JOB"),
        [
            "JOB", "STATE", "SINCE", "HEALTH", "PID", "RESTARTS", "LAST", "EXIT", "SERVICE"
        ]
    );
    assert_eq!(
        job_row("web"),
        ["web", "running", "-", &pid.to_string(), "0", "-", "-"]
    );
    assert_eq!(
        job_row("setup"),
        ["setup", "stopped", "-", "-", "0", "exit", "code", "3", "-"]
    );
    assert_eq!(
        job_row("flaky"),
        ["flaky", "stopped", "-", "-", "2", "exit", "code", "1", "-"]
    );
    let order: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["web", "setup", "flaky"].contains(w))
        .collect();
    assert_eq!(
        order,
        ["web", "setup", "flaky"],
        "jobs in config order:\n{out}"
    );
    assert_eq!(row("db"), ["db", "service", "db", "unknown"], "{out}");

    let (code, json_out, _) = ap.control_command(&["status", "-json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(job(&v, "setup").unwrap()["lastExitCode"], 3);
    assert_eq!(v["watches"][0]["name"], "db");
    assert_eq!(v["watches"][0]["instances"], Value::Null);
}

#[test]
fn maintenance_publishes_events_and_is_idempotent() {
    let dir = TestDir::new();
    let echo = |name: &str, on: &str, text: &str| json!({"name": name, "exec": ["echo", text], "when": {"source": "global", "each": on}});
    let cfg = dir.json_config(&json!({"jobs": [
        sleeper("app", 1000),
        echo("on-enter", "enterMaintenance", "hook-entered"),
        echo("on-exit", "exitMaintenance", "hook-left"),
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);

    let (code, out, _) = ap.control_command(&["-maintenance", "enable"]);
    assert_eq!((code, out.as_str()), (0, "maintenance mode is now on\n"));
    ap.wait_for_output("hook-entered", DEADLINE);
    assert_eq!(status(&ap)["maintenance"], true);
    let r = ap.control_request("POST", "/v3/maintenance/enable", None);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"updated": false})
    );
    assert_eq!(
        ap.control_command(&["maintenance", "enable"]).1,
        "maintenance mode was already on\n"
    );

    let r = ap.control_request("POST", "/v3/maintenance/disable", None);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"updated": true})
    );
    ap.wait_for_output("hook-left", DEADLINE);
    assert_eq!(status(&ap)["maintenance"], false);
    assert_eq!(
        ap.count_output("hook-entered"),
        1,
        "enable twice enters once"
    );
    let (code, _, err) = ap.control_command(&["-maintenance", "on"]);
    assert!(code == 2 && err.contains("`enable` or `disable`"), "{err}");
}

#[test]
fn maintenance_deregisters_and_reregisters_in_consul() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "jobs": [{
            "name": "web",
            "exec": ["sleep", "1000"],
            "port": 8080,
            "interfaces": ["lo"],
            "health": {"exec": "true", "interval": 1, "ttl": 10},
        }],
    }));
    let ap = Autopilot::start_pid1(&cfg, &[], &[("HOSTNAME", "maint-test")]);
    wait_ready(&ap);
    let passing = || consul.passing_instances("web").len();
    wait_until("web to be registered and passing", DEADLINE, || {
        (passing() == 1).then_some(())
    });

    assert_eq!(ap.control_command(&["-maintenance", "enable"]).0, 0);
    wait_until("web to be deregistered", DEADLINE, || {
        let services = consul.get_json("/v1/agent/services");
        services.get("web-maint-test").is_none().then_some(())
    });
    // The job's status entry is written once its deregistration returns.
    wait_until("the status to show web in maintenance", DEADLINE, || {
        let s = status(&ap);
        let web = job(&s, "web")?;
        (web["health"] == "maintenance" && web["service"] == "deregistered").then_some(())
    });

    assert_eq!(ap.control_command(&["-maintenance", "disable"]).0, 0);
    wait_until("web to be registered and passing again", DEADLINE, || {
        (passing() == 1).then_some(())
    });
}

#[test]
fn reload_keeps_unchanged_jobs_and_replaces_changed_ones() {
    let dir = TestDir::new();
    let cfg = dir.json_config(
        &json!({"jobs": [sleeper("keep", 1001), sleeper("change", 1002), sleeper("drop", 1003)]}),
    );
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);
    let keep = wait_pid(&ap, "keep");
    let change = wait_pid(&ap, "change");
    wait_pid(&ap, "drop");

    dir.json_config(
        &json!({"jobs": [sleeper("keep", 1001), sleeper("change", 2002), sleeper("add", 1004)]}),
    );
    let r = ap.control_request("POST", "/v3/reload", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let summary: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        summary,
        json!({"unchanged": ["keep"], "restarted": ["change"], "added": ["add"], "removed": ["drop"]})
    );
    let changed = wait_until(
        "the changed job to run its new definition",
        DEADLINE,
        || {
            job(&status(&ap), "change")?["pid"]
                .as_i64()
                .filter(|p| *p != change)
        },
    );
    wait_pid(&ap, "add");
    wait_until("the removed job to go away", DEADLINE, || {
        job(&status(&ap), "drop").is_none().then_some(())
    });
    assert_eq!(
        job(&status(&ap), "keep").unwrap()["pid"],
        keep,
        "an unchanged job keeps its process"
    );

    // Through the subcommand; values set with -putenv count when rendering.
    dir.write(
        "config.json5",
        r#"{jobs: [{name: "keep", exec: ["sleep", "1001"]}, {name: "change", exec: ["sleep", "{{ .NEW_SECONDS }}"]}]}"#,
    );
    assert_eq!(ap.control_command(&["-putenv", "NEW_SECONDS=3003"]).0, 0);
    let (code, out, err) = ap.control_command(&["reload"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "config reloaded: 1 unchanged (keep), 1 restarted (change), 0 added, 1 removed (add)\n"
    );
    wait_until(
        "the job rendered from the new environment",
        DEADLINE,
        || {
            job(&status(&ap), "change")?["pid"]
                .as_i64()
                .filter(|p| *p != changed)
        },
    );
    assert_eq!(job(&status(&ap), "keep").unwrap()["pid"], keep);
}

#[test]
fn a_broken_config_on_reload_leaves_the_old_one_running() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [sleeper("app", 1000)]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);
    let pid = wait_pid(&ap, "app");

    dir.write(
        "config.json5",
        "{jobs: [{name: \"app\", exec: [\"sleep\", \"1\"]}\n",
    );
    let r = ap.control_request("POST", "/v3/reload", None);
    assert_eq!(r.status, 422, "{}", r.body);
    let e = error_of(&r);
    assert!(
        e.contains("the running config stays") && e.contains("config.json5"),
        "{e}"
    );
    ap.wait_for_output("reload: the new config has errors", DEADLINE);

    dir.write("config.json5", "{jbos: []}");
    let (code, out, err) = ap.control_command(&["-reload"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("-reload failed (422)") && err.contains("jbos"),
        "{err}"
    );
    assert!(
        err.contains("did you mean"),
        "a typo gets a suggestion: {err}"
    );

    let s = status(&ap);
    assert_eq!(job(&s, "app").unwrap()["pid"], pid);
    assert_eq!(job(&s, "app").unwrap()["state"], "running");
    assert_eq!(s["jobs"].as_array().unwrap().len(), 1);
}

#[test]
fn signal_reaches_one_jobs_process_group() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "exec": ["sh", "-c", "trap 'echo got-hup' HUP; trap 'echo got-usr1' USR1; echo app-ready; while :; do sleep 0.05; done"]},
        {"name": "other", "exec": ["sh", "-c", "trap 'echo other-got-hup' HUP; while :; do sleep 0.05; done"]},
        {"name": "done", "exec": "true"},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_ready(&ap);
    ap.wait_for_output("app-ready", DEADLINE);
    let pid = wait_pid(&ap, "app");

    let r = ap.control_request(
        "POST",
        "/v3/jobs/app/signal",
        Some(r#"{"signal": "SIGHUP"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"job": "app", "signal": "SIGHUP", "pid": pid})
    );
    ap.wait_for_output("got-hup", DEADLINE);
    let r = ap.control_request("POST", "/v3/jobs/app/signal", Some("USR1"));
    assert_eq!(r.status, 200, "{}", r.body);
    ap.wait_for_output("got-usr1", DEADLINE);
    assert!(
        !ap.output().contains("other-got-hup"),
        "only the named job is signalled"
    );

    let r = ap.control_request("POST", "/v3/jobs/nope/signal", Some("HUP"));
    assert!(
        r.status == 404 && error_of(&r).contains("no job named \"nope\""),
        "{}",
        r.body
    );
    wait_until("job done to finish", DEADLINE, || {
        (job(&status(&ap), "done")?["state"] == "stopped").then_some(())
    });
    let r = ap.control_request("POST", "/v3/jobs/done/signal", Some("HUP"));
    assert!(
        r.status == 409 && error_of(&r).contains("no running process"),
        "{}",
        r.body
    );
    let r = ap.control_request(
        "POST",
        "/v3/jobs/app/signal",
        Some(r#"{"signal": "SIGNOPE"}"#),
    );
    assert!(
        r.status == 400 && error_of(&r).contains("is not a signal"),
        "{}",
        r.body
    );
    assert_eq!(
        job(&status(&ap), "app").unwrap()["pid"],
        pid,
        "the job survived its signals"
    );
}

#[test]
fn the_socket_is_owner_only_stale_ones_are_replaced_live_ones_refused() {
    let dir = TestDir::new();
    let socket = dir.join("control.sock");
    let cfg = dir.json_config(&json!({
        "control": {"socket": socket.to_str().unwrap()},
        "jobs": [sleeper("app", 1000)],
    }));
    // "" lets the config's control.socket decide, as in a real container.
    let no_override = [(CONTROL_SOCKET_ENV, "")];
    let cfg_arg = cfg.to_str().unwrap();

    // A stale socket (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut first = Autopilot::start_pid1(&cfg, &[], &no_override);
    wait_until("the first autopilot to answer", DEADLINE, || {
        let (code, out, _) = run_autopilot(&["-ping", "-config", cfg_arg], &[]);
        (code == 0 && out == "ok\n").then_some(())
    });
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket must be owner-only");

    // A live one is not: the second autopilot refuses to start.
    let mut second = Autopilot::start_plain(&cfg, &[], &no_override);
    assert_eq!(second.wait_exit(DEADLINE), 1);
    let out = second.output();
    assert!(
        out.contains("is in use: another autopilot") && out.contains(socket.to_str().unwrap()),
        "{out}"
    );
    assert!(find_descendants(second.spawned_pid(), "sleep").is_empty());
    let (code, _, _) = run_autopilot(&["-ping", "-config", cfg_arg], &[]);
    assert_eq!(code, 0, "the first one still answers");

    // Killed without a chance to clean up: the file stays, and is stale.
    first.signal(libc::SIGKILL);
    first.wait_exit(DEADLINE);
    assert!(socket.exists());
    let (code, _, err) = run_autopilot(&["-ping", "-socket", socket.to_str().unwrap()], &[]);
    assert!(code == 1 && err.contains("stale socket"), "{err}");
    let third = Autopilot::start_pid1(&cfg, &[], &no_override);
    wait_until(
        "the third autopilot to take over the stale socket",
        DEADLINE,
        || {
            let (code, _, _) = run_autopilot(&["ping", "-config", cfg_arg], &[]);
            (code == 0).then_some(())
        },
    );
    drop(third);

    // A clean exit removes the socket file.
    let mut fourth = Autopilot::start_plain(&cfg, &[], &no_override);
    wait_until("the fourth autopilot to answer", DEADLINE, || {
        let (code, _, _) = run_autopilot(&["ping", "-config", cfg_arg], &[]);
        (code == 0).then_some(())
    });
    fourth.signal(libc::SIGTERM);
    assert_eq!(fourth.wait_exit(DEADLINE), 0);
    assert!(!socket.exists(), "the socket file is removed on exit");
}

#[test]
fn subcommands_explain_an_unreachable_socket() {
    let dir = TestDir::new();
    let socket = dir.join("none.sock");
    let (code, _, err) = run_autopilot(&["status", "-socket", socket.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no control socket at") && err.contains("is autopilot running?"),
        "{err}"
    );
    // A config that does not load: the default path is tried, and the note says why.
    let bad = dir.write("bad.json5", "{jobs: [");
    let (code, _, err) = run_autopilot(
        &["-reload", "-config", bad.to_str().unwrap()],
        &[(CONTROL_SOCKET_ENV, "")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("did not load") && err.contains("-socket PATH"),
        "{err}"
    );
}
