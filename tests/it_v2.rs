//! ContainerPilot 2 configs, run unchanged: the app from the command line,
//! the lifecycle hooks in their documented order (docs/v2.md) against a real
//! Consul, a failing preStart's exit code, v2 signal meanings, a sensor
//! feeding its metric, `check` on a v2 file, and `migrate` output that runs
//! and gives the same plan.
//!
//! Hooks and the app append one word per event to `DIR/log` through small
//! scripts, so the order is read back from one file.

use crate::common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Steps that wait for a preStop, a health check and Consul together.
const SLOW: Duration = Duration::from_secs(20);

/// `DIR/hook NAME` appends NAME to `DIR/log`; the preStop takes a while and
/// says when it is done, so "the app got SIGTERM after preStop finished" can
/// be seen in the log.
fn hook_script(dir: &TestDir) -> PathBuf {
    let log = dir.join("log");
    dir.write_executable(
        "hook",
        format!(
            "#!/bin/sh\necho \"$1\" >> {log}\n\
             if [ \"$1\" = preStop ]; then sleep 0.5; echo preStop-done >> {log}; fi\n",
            log = log.display()
        ),
    )
}

/// The app: says it started, and says it got SIGTERM before exiting 0.
fn app_script(dir: &TestDir) -> PathBuf {
    let log = dir.join("log");
    dir.write_executable(
        "app",
        format!(
            "#!/bin/sh\ntrap 'echo app-term >> {log}; exit 0' TERM\n\
             echo app-start >> {log}\nsleep 1000 &\nwait $!\n",
            log = log.display()
        ),
    )
}

/// The lines of `DIR/log` so far.
fn log(dir: &TestDir) -> Vec<String> {
    dir.read("log")
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// The log without the lines of `onChange`, which may come at any time.
fn lifecycle(dir: &TestDir) -> Vec<String> {
    log(dir).into_iter().filter(|l| l != "onChange").collect()
}

fn count(dir: &TestDir, word: &str) -> usize {
    log(dir).iter().filter(|l| *l == word).count()
}

fn wait_log(dir: &TestDir, word: &str, n: usize, deadline: Duration) {
    wait_until(
        &format!("{n} x {word:?} in the log {:?}", log(dir)),
        deadline,
        || (count(dir, word) >= n).then_some(()),
    );
}

/// `GET /v1/agent/service/<id>` when the agent has it.
fn agent_service(consul: &Consul, id: &str) -> Option<Value> {
    let (status, body) = consul.http_get(&format!("/v1/agent/service/{id}"));
    (status == 200).then(|| serde_json::from_str(&body).expect("agent service JSON"))
}

fn wait_registered(consul: &Consul, id: &str, registered: bool) {
    wait_until(
        &format!("{id} {}registered", if registered { "" } else { "de" }),
        SLOW,
        || (agent_service(consul, id).is_some() == registered).then_some(()),
    );
}

/// A ContainerPilot 2 config with every lifecycle piece: preStart, preStop,
/// postStop, a health-checked service and a backend with onChange.
fn lifecycle_config(dir: &TestDir, consul: &Consul, port: u16) -> Value {
    let hook = hook_script(dir);
    let hook = hook.to_str().unwrap();
    json!({
        "consul": consul.addr(),
        "logging": {"level": "DEBUG"},
        "preStart": format!("{hook} preStart"),
        "preStop": format!("{hook} preStop"),
        "postStop": [hook, "postStop"],
        "stopTimeout": 4,
        "services": [{
            "name": "v2web", "port": port, "interfaces": ["lo"],
            "health": "true", "poll": 1, "ttl": 5,
        }],
        "backends": [{"name": "upstream", "poll": 1, "onChange": format!("{hook} onChange")}],
    })
}

/// Runs `config` (with `app` after the flags, for a v2 config) through the
/// whole lifecycle and checks the order of what happened.
fn run_lifecycle(consul: &Consul, dir: &TestDir, config: &Path, app: &[&str], host: &str) {
    let mut ap = Autopilot::start_pid1(config, app, &[("HOSTNAME", host)]);

    // Start: preStart, then the app; the service registers once preStart is done.
    wait_log(dir, "app-start", 1, SLOW);
    assert_eq!(lifecycle(dir), ["preStart", "app-start"]);
    wait_registered(consul, &format!("v2web-{host}"), true);

    // A backend change: the upstream service appears.
    let before = count(dir, "onChange");
    let body = json!({"ID": format!("upstream-{host}"), "Name": "upstream", "Port": 5432});
    assert_eq!(
        consul.http_put("/v1/agent/service/register", &body.to_string()),
        200
    );
    wait_log(dir, "onChange", before + 1, SLOW);

    // SIGTERM: preStop runs and is waited for, then the app gets SIGTERM,
    // then postStop; the container exits with the app's code.
    ap.signal(libc::SIGTERM);
    let code = ap.wait_exit(SLOW);
    assert_eq!(
        lifecycle(dir),
        [
            "preStart",
            "app-start",
            "preStop",
            "preStop-done",
            "app-term",
            "postStop"
        ],
        "output:\n{}",
        ap.output()
    );
    assert_eq!(code, 0, "the app exited 0 on SIGTERM:\n{}", ap.output());
    wait_registered(consul, &format!("v2web-{host}"), false);
}

#[test]
fn a_v2_config_runs_its_hooks_in_order_against_consul() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let config = lifecycle_config(&dir, &consul, free_port());
    let path = dir.write("containerpilot.json", config.to_string());
    let app = app_script(&dir);
    run_lifecycle(&consul, &dir, &path, &[app.to_str().unwrap()], "v2-run");
}

#[test]
fn migrate_output_runs_the_same_lifecycle_and_has_the_same_plan() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let config = lifecycle_config(&dir, &consul, free_port());
    let old = dir.write("containerpilot.json", config.to_string());
    let new = dir.join("containerpilot.json5");
    let app = app_script(&dir);
    let app = app.to_str().unwrap();

    let (code, _, stderr) = run_autopilot(
        &[
            "migrate",
            "-config",
            old.to_str().unwrap(),
            "-out",
            new.to_str().unwrap(),
            app,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&new).expect("the migrated file");
    assert!(text.contains("hooks: {"), "{text}");

    // The same plan, but for line numbers and the two ContainerPilot 2 rows.
    let plan = |args: &[&str]| {
        let (code, stdout, stderr) = run_autopilot(args, &[]);
        assert_eq!(code, 0, "{stderr}");
        normalized_plan(&stdout)
    };
    let before = plan(&["check", "-config", old.to_str().unwrap(), app]);
    let after = plan(&["check", "-config", new.to_str().unwrap()]);
    assert_eq!(before, after);

    // And it runs: the same hooks in the same order, without v2's app argument.
    run_lifecycle(&consul, &dir, &new, &[], "v2-migrated");
}

/// A plan without what a migration changes.
fn normalized_plan(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| !l.starts_with("  format ") && !l.starts_with("  signals "))
        .map(
            |l| match l.find(" (line ").or_else(|| l.find(" (the app")) {
                Some(at) if l.starts_with("job ") || l.starts_with("watch ") => l[..at].to_string(),
                _ => l.to_string(),
            },
        )
        .collect()
}

#[test]
fn a_failing_pre_start_stops_autopilot_with_its_exit_code() {
    let dir = TestDir::new();
    let hook = hook_script(&dir);
    let app = app_script(&dir);
    let config = dir.write(
        "containerpilot.json",
        json!({
            "preStart": ["sh", "-c", format!("{} preStart; exit 7", hook.display())],
            "coprocesses": [{"command": ["sleep", "1000"]}],
        })
        .to_string(),
    );
    let mut ap = Autopilot::start_pid1(&config, &[app.to_str().unwrap()], &[]);
    let code = ap.wait_exit(SLOW);
    assert_eq!(code, 7, "output:\n{}", ap.output());
    // The app never started, and the coprocess did not hold autopilot up.
    assert_eq!(log(&dir), ["preStart"]);
    assert!(ap.output().contains("exitOnFailure"), "{}", ap.output());
}

#[test]
fn v2_signals_toggle_maintenance_and_reload_the_config() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let app = app_script(&dir);
    let ports = free_ports(2);
    let service = |name: &str, port: u16| {
        json!({"name": name, "port": port, "interfaces": ["lo"],
               "health": "true", "poll": 1, "ttl": 5})
    };
    let one = json!({"consul": consul.addr(), "services": [service("v2one", ports[0])]});
    let path = dir.write("containerpilot.json", one.to_string());
    let mut ap = Autopilot::start_pid1(&path, &[app.to_str().unwrap()], &[("HOSTNAME", "sig")]);
    wait_registered(&consul, "v2one-sig", true);

    // SIGUSR1: maintenance on (deregistered), and off again.
    ap.signal(libc::SIGUSR1);
    wait_registered(&consul, "v2one-sig", false);
    ap.signal(libc::SIGUSR1);
    wait_registered(&consul, "v2one-sig", true);

    // SIGHUP: the file is read again; the app keeps running untouched.
    let two = json!({"consul": consul.addr(),
                     "services": [service("v2one", ports[0]), service("v2two", ports[1])]});
    dir.write("containerpilot.json", two.to_string());
    ap.signal(libc::SIGHUP);
    wait_registered(&consul, "v2two-sig", true);
    assert_eq!(count(&dir, "app-start"), 1, "the app was restarted");
    assert!(agent_service(&consul, "v2one-sig").is_some());

    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(SLOW), 0, "{}", ap.output());
    assert_eq!(log(&dir), ["app-start", "app-term"]);
}

#[test]
fn check_prints_the_plan_of_a_v2_corpus_file_and_inline_configs_work() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/compat-corpus/v2/autopilotpattern__mysql__etc_containerpilot.json");
    let (code, stdout, stderr) = run_autopilot(
        &[
            "check",
            "-config",
            corpus.to_str().unwrap(),
            "/usr/local/bin/mysqld",
        ],
        &[("CONSUL", "consul")],
    );
    assert_eq!(code, 0, "{stderr}");
    for line in [
        "  format    ContainerPilot 2, translated into the jobs and watches below",
        "job app.preStart (line 3)",
        "job app (the app on the command line)",
        "  exec      /usr/local/bin/mysqld",
        "  starts    once `app.preStart` emits exitSuccess",
        "job mysql (line 5)",
        "job snapshot_check (line 21)",
        "job mysql-primary.onChange (line 17)",
        "watch mysql-primary (line 14)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?}:\n{stdout}"
        );
    }

    // ContainerPilot 2 also took the JSON itself as -config.
    let (code, stdout, stderr) = run_autopilot(
        &[
            "check",
            "-config",
            r#"{"preStop": "/bin/drain"}"#,
            "/bin/app",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("job app.preStop (line 1)"), "{stdout}");
}

#[test]
fn a_sensor_feeds_its_metric_through_the_control_socket() {
    let dir = TestDir::new();
    let port = free_port();
    let config = dir.write(
        "containerpilot.json",
        json!({
            "telemetry": {"port": port, "sensors": [{
                "namespace": "demo", "name": "load", "help": "Load", "type": "gauge",
                "poll": 1, "check": ["printf", "  4.25\\n"],
            }]},
        })
        .to_string(),
    );
    let _ap = Autopilot::start_pid1(&config, &["sleep", "1000"], &[]);
    wait_until("demo_load 4.25 on /metrics", SLOW, || {
        let r = http_request(
            &format!("127.0.0.1:{port}"),
            "GET",
            "/metrics",
            None,
            Duration::from_secs(2),
        )
        .ok()?;
        r.body.lines().any(|l| l == "demo_load 4.25").then_some(())
    });
}
