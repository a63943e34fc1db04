//! Unit tests of the ContainerPilot 2 translation: one per row of the
//! translation table, plus the leniencies published configs need.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::hooks::{HookKind, recognize};
use crate::config::model::*;
use crate::config::{LoadOptions, Loaded, Source, load_str_with};
use crate::events::EventCode;

fn load(text: &str, app: &[&str], env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let options = LoadOptions {
        app: app.iter().map(|s| s.to_string()).collect(),
        self_exe: Some("/bin/autopilot".into()),
    };
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_str_with(text, "cp2.json", &env, &options)
}

fn ok(text: &str, app: &[&str]) -> Loaded {
    load(text, app, &[]).unwrap_or_else(|e| panic!("expected the config to load:\n{e}"))
}

fn fail(text: &str) -> ConfigError {
    match load(text, &["/bin/app"], &[]) {
        Ok(_) => panic!("expected the config to fail:\n{text}"),
        Err(e) => e,
    }
}

fn job<'a>(loaded: &'a Loaded, name: &str) -> &'a JobConfig {
    let names: Vec<&str> = loaded.config.jobs.iter().map(|j| j.name.as_str()).collect();
    loaded
        .config
        .jobs
        .iter()
        .find(|j| j.name == name)
        .unwrap_or_else(|| panic!("no job {name} in {names:?}"))
}

fn names(loaded: &Loaded) -> Vec<&str> {
    loaded.config.jobs.iter().map(|j| j.name.as_str()).collect()
}

fn once(code: EventCode, source: &str) -> When {
    When::Event {
        pattern: EventPattern {
            code,
            source: source.into(),
        },
        repeat: Repeat::Once,
        timeout: None,
    }
}

fn exec(loaded: &Loaded, name: &str) -> String {
    job(loaded, name)
        .exec
        .as_ref()
        .map(Exec::display)
        .unwrap_or_default()
}

const LIFECYCLE: &str = r#"{
  "consul": "consul:8500",
  "preStart": "/bin/prep first",
  "preStop": ["/bin/drain", "--now"],
  "postStop": "/bin/bye",
  "stopTimeout": 3,
  "services": [
    {"name": "web", "port": 8080, "health": "/bin/check web", "poll": 2, "ttl": 6}
  ],
  "backends": [
    {"name": "db", "poll": 4, "onChange": "/bin/reload db", "tag": "primary"}
  ]
}"#;

#[test]
fn the_app_and_its_hooks_become_jobs_in_running_order() {
    let l = ok(LIFECYCLE, &["/bin/app", "--port", "8080"]);
    assert_eq!(l.config.signals, SignalMode::V2);
    assert_eq!(
        names(&l),
        [
            "app.preStart",
            "app",
            "app.preStop",
            "app.postStop",
            "web",
            "db.onChange"
        ]
    );
    let app = job(&l, "app");
    assert!(app.main && app.logging_raw && !app.exit_on_failure);
    assert_eq!(exec(&l, "app"), "/bin/app --port 8080");
    assert_eq!(app.when, once(EventCode::ExitSuccess, "app.preStart"));
    assert_eq!(app.stop_timeout, Some(Duration::from_secs(3)));
    assert_eq!(l.config.stop_timeout, Duration::from_secs(6));

    let pre = job(&l, "app.preStart");
    assert!(pre.exit_on_failure);
    assert_eq!(pre.when, When::Startup);
    assert_eq!(pre.line, 3);
    assert_eq!(
        job(&l, "app.preStop").when,
        once(EventCode::Stopping, "app")
    );
    assert_eq!(exec(&l, "app.preStop"), "/bin/drain --now");
    assert_eq!(
        job(&l, "app.postStop").when,
        once(EventCode::Stopped, "app")
    );
    for (name, kind) in [
        ("app.preStart", HookKind::PreStart),
        ("app.preStop", HookKind::PreStop),
        ("app.postStop", HookKind::PostStop),
        ("db.onChange", HookKind::OnChange),
    ] {
        let owner = if kind == HookKind::OnChange {
            "db"
        } else {
            "app"
        };
        assert_eq!(recognize(&l.config, job(&l, name)), Some((kind, owner)));
    }
}

#[test]
fn a_service_is_a_registered_job_started_with_the_app() {
    let l = ok(LIFECYCLE, &["/bin/app"]);
    let web = job(&l, "web");
    assert!(web.exec.is_none());
    assert_eq!(web.when, once(EventCode::ExitSuccess, "app.preStart"));
    let health = web.health.as_ref().unwrap();
    assert_eq!(
        (health.interval, health.ttl, health.timeout),
        (
            Duration::from_secs(2),
            Duration::from_secs(6),
            Duration::from_secs(2)
        )
    );
    assert_eq!(
        health.check,
        HealthCheck::Exec(Exec {
            program: "/bin/check".into(),
            args: vec!["web".into()]
        })
    );
    assert_eq!(web.service.as_ref().unwrap().port, 8080);
}

#[test]
fn a_backend_is_a_watch_with_an_on_change_job() {
    let l = ok(LIFECYCLE, &["/bin/app"]);
    let db = &l.config.watches[0];
    assert_eq!(db.name, "db");
    assert_eq!(db.interval, Duration::from_secs(4));
    assert_eq!(
        db.target,
        WatchTarget::Service {
            service: "db".into(),
            tag: Some("primary".into()),
            dc: None
        }
    );
    let on_change = job(&l, "db.onChange");
    assert_eq!(
        on_change.when,
        When::Event {
            pattern: EventPattern {
                code: EventCode::Changed,
                source: "watch.db".into()
            },
            repeat: Repeat::Each,
            timeout: None,
        }
    );
}

#[test]
fn app_arguments_are_rendered_as_templates() {
    let l = load(
        r#"{"services": []}"#,
        &[
            "/bin/app",
            "--name={{ .NAME }}",
            "{{ .MISSING | default \"x\" }}",
        ],
        &[("NAME", "web-1")],
    )
    .unwrap();
    assert_eq!(exec(&l, "app"), "/bin/app --name=web-1 x");
    let e = load(r#"{"services": []}"#, &["{{ .APP }}"], &[]).unwrap_err();
    assert!(e.to_string().contains("renders to nothing"), "{e}");
    let e = load(r#"{"services": []}"#, &["/bin/app", "{{ .X"], &[]).unwrap_err();
    assert!(
        e.to_string().contains("word 2 of the app's command line"),
        "{e}"
    );
}

#[test]
fn without_an_app_the_hooks_keep_their_order_around_a_placeholder() {
    let l = ok(r#"{"preStart": "/bin/prep", "postStop": "/bin/bye"}"#, &[]);
    assert_eq!(names(&l), ["app.preStart", "app", "app.postStop"]);
    let app = job(&l, "app");
    assert!(app.exec.is_none() && !app.main);
    // Without app and hooks there is no app job at all.
    let l = ok(r#"{"services": []}"#, &[]);
    assert!(l.config.jobs.is_empty());
}

#[test]
fn the_app_gives_way_to_a_service_called_app() {
    let l = ok(
        r#"{"preStop": "/bin/drain",
            "services": [{"name": "app", "port": 80, "health": "c", "poll": 1, "ttl": 3}]}"#,
        &["/bin/app"],
    );
    assert_eq!(names(&l), ["main", "main.preStop", "app"]);
    assert!(job(&l, "main").main);
}

#[test]
fn coprocesses_and_tasks_are_named_and_timed() {
    let l = ok(
        r#"{
          "services": [{"name": "consul", "port": 8500, "health": "c", "poll": 1, "ttl": 3}],
          "coprocesses": [
            {"command": ["/usr/local/bin/consul", "agent"], "restarts": "unlimited"},
            {"name": "side", "command": "/bin/side", "restarts": 2},
            {"command": "/bin/plain"}
          ],
          "tasks": [
            {"name": "backup", "command": "/bin/backup", "frequency": "5m", "timeout": "1m"},
            {"command": "/bin/tick", "frequency": "1500ms"}
          ]
        }"#,
        &[],
    );
    assert_eq!(
        names(&l),
        [
            "consul",
            "coprocess.consul",
            "side",
            "coprocess.plain",
            "backup",
            "task.tick"
        ]
    );
    assert_eq!(job(&l, "coprocess.consul").restarts, Restarts::Unlimited);
    assert_eq!(job(&l, "side").restarts, Restarts::Limit(2));
    assert_eq!(job(&l, "coprocess.plain").restarts, Restarts::Never);
    assert_eq!(job(&l, "side").when, When::Startup);
    let backup = job(&l, "backup");
    assert_eq!(backup.when, When::Interval(Duration::from_secs(300)));
    assert_eq!(backup.timeout, Some(Duration::from_secs(60)));
    assert_eq!(backup.restarts, Restarts::Unlimited);
    let tick = job(&l, "task.tick");
    assert_eq!(tick.timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn a_sensor_is_a_metric_fed_by_a_periodic_job() {
    let l = ok(
        r#"{"telemetry": {"port": 9191, "tags": ["m"], "sensors": [
             {"namespace": "web", "subsystem": "http", "name": "load", "help": "Load",
              "type": "gauge", "poll": 5, "check": ["/bin/sensor", "it's load"], "timeout": "2s"}
           ]}}"#,
        &[],
    );
    let telemetry = l.config.telemetry.as_ref().unwrap();
    assert_eq!(
        (telemetry.port, telemetry.tags.clone()),
        (9191, vec!["m".into()])
    );
    assert_eq!(
        telemetry.metrics,
        [MetricConfig {
            namespace: "web".into(),
            subsystem: "http".into(),
            name: "load".into(),
            help: "Load".into(),
            kind: MetricType::Gauge,
        }]
    );
    let sensor = job(&l, "sensor.web_http_load");
    assert_eq!(sensor.when, When::Interval(Duration::from_secs(5)));
    assert_eq!(sensor.timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        sensor.exec.as_ref().unwrap().args,
        [
            "-c",
            "v=$(/bin/sensor 'it'\\''s load') || exit; set -f; set -- $v; \
             exec /bin/autopilot -putmetric \"web_http_load=$1\""
        ]
    );
}

#[test]
fn a_sensor_script_records_the_checks_output() {
    // The generated shell, run for real with `echo` standing in for autopilot.
    let exec = super::sensors::sensor_exec(
        &Exec {
            program: "printf".into(),
            args: vec!["  4.5\\n".into()],
        },
        "echo",
        "load",
    );
    let out = std::process::Command::new(&exec.program)
        .args(&exec.args)
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-putmetric load=4.5\n"
    );
    let failing = super::sensors::sensor_exec(
        &Exec {
            program: "false".into(),
            args: vec![],
        },
        "echo",
        "load",
    );
    let status = std::process::Command::new(&failing.program)
        .args(&failing.args)
        .output()
        .expect("sh");
    assert!(!status.status.success());
    assert!(status.stdout.is_empty());
}

#[test]
fn etcd_turns_discovery_off_with_a_warning() {
    let l = ok(
        r#"{"etcd": {"endpoints": ["http://127.0.0.1:4001"]},
            "services": [{"name": "etcd", "port": 4001, "health": "true", "poll": 10, "ttl": 25}]}"#,
        &[],
    );
    assert!(l.config.consul.is_none());
    let w = &l.warnings[0];
    assert_eq!((w.path.as_str(), w.line), ("etcd", 1));
    assert!(w.message.contains("`etcd` is not supported"), "{w}");
}

#[test]
fn published_v2_leniencies_are_warnings() {
    let l = ok(
        r#"{
  "consul": "c:8500",
  "services": [
    {"name": "node_exporter", "port": 9100, "exec": "/bin/x", "restarts": 1},
    {"name": "bare", "port": 1}
  ],
  "extra": true
}"#,
        &[],
    );
    let messages: Vec<(usize, &str)> = l
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            (
                4,
                "this service has no `health` check: it is reported healthy on every poll"
            ),
            (4, "missing `poll`: 10s is used"),
            (4, "missing `ttl`: 25s is used"),
            (
                4,
                "`node_exporter` is not a valid DNS name: Consul's DNS interface cannot find it"
            ),
            (4, "unknown key `exec` in `services[0]` is ignored"),
            (4, "unknown key `restarts` in `services[0]` is ignored"),
            (
                5,
                "this service has no `health` check: it is reported healthy on every poll"
            ),
            (5, "missing `poll`: 10s is used"),
            (5, "missing `ttl`: 25s is used"),
            (7, "unknown key `extra` at the top level is ignored"),
        ]
    );
    let bare = job(&l, "bare").health.as_ref().unwrap();
    assert_eq!(
        bare.check,
        HealthCheck::Exec(Exec {
            program: "true".into(),
            args: vec![]
        })
    );
}

#[test]
fn a_service_defined_twice_keeps_the_last_definition() {
    let l = ok(
        r#"{"services": [
             {"name": "web", "port": 80, "health": "a", "poll": 1, "ttl": 3},
             {"name": "web", "port": 443, "health": "b", "poll": 1, "ttl": 3}
           ]}"#,
        &[],
    );
    assert_eq!(names(&l), ["web"]);
    assert_eq!(job(&l, "web").service.as_ref().unwrap().port, 443);
    assert!(l.warnings[0].message.contains("defined again on line 3"));
}

#[test]
fn mistakes_are_located_errors_with_hints() {
    let e = fail(
        r#"{
  "tasks": [{"command": "/bin/t"}],
  "backends": [{"poll": 3}],
  "telemetry": {"sensors": [{"name": "x", "type": "gauge2", "poll": 1, "check": "c"}]},
  "coprocesses": [{"name": "c"}]
}"#,
    );
    let errors: Vec<(String, usize, String)> = e
        .errors()
        .map(|d| (d.path.clone(), d.line, d.message.clone()))
        .collect();
    assert_eq!(
        errors,
        [
            ("tasks[0]".into(), 2, "missing `frequency`".into()),
            ("backends[0]".into(), 3, "missing `name`".into()),
            (
                "telemetry.sensors[0].type".into(),
                4,
                "unknown metric type \"gauge2\"".into()
            ),
            ("coprocesses[0]".into(), 5, "missing `command`".into()),
        ]
    );
    assert!(e.errors().all(|d| d.hint.is_some()), "{e}");
    let hint = e.errors().nth(2).unwrap().hint.clone().unwrap();
    assert_eq!(hint, "did you mean `gauge`?");
}

#[test]
fn a_v3_config_ignores_an_app_on_the_command_line_with_a_warning() {
    let l = ok(r#"{jobs: [{name: "a", exec: "x"}]}"#, &["/bin/app"]);
    assert_eq!(l.config.signals, SignalMode::V3);
    assert_eq!(l.config.jobs.len(), 1);
    assert!(
        l.warnings[0]
            .message
            .contains("`/bin/app` after the flags is ignored")
    );
}

#[test]
fn the_config_may_be_given_inline() {
    assert_eq!(
        Source::from_flag(r#" {"services": []}"#),
        Source::Inline(r#" {"services": []}"#.into())
    );
    assert_eq!(
        Source::from_flag("file:///etc/cp.json"),
        Source::File("/etc/cp.json".into())
    );
    assert_eq!(
        Source::from_flag("/etc/cp.json"),
        Source::File("/etc/cp.json".into())
    );
    let options = LoadOptions::default();
    let l = crate::config::load_source(
        &Source::from_flag(r#"{"consul": "c:8500", "preStop": "/bin/x"}"#),
        &HashMap::new(),
        &options,
    )
    .unwrap();
    assert_eq!(names(&l), ["app", "app.preStop"]);
    assert_eq!(l.path.to_str(), Some("-config (inline JSON)"));
}

#[test]
fn the_plan_shows_the_translation() {
    let l = ok(LIFECYCLE, &["/bin/app"]);
    let plan = crate::plan::plan(&l.config).to_string();
    for line in [
        "  format    ContainerPilot 2, translated into the jobs and watches below",
        "job app (the app on the command line)",
        "  hook      preStop of `app`: `app` waits for it before its SIGTERM",
        "  hook      onChange of watch `db`",
        "  hooks     `app.preStop` runs once `app` emits stopping",
        "            `app.postStop` runs once `app` emits stopped",
    ] {
        assert!(
            plan.lines().any(|l| l == line),
            "missing {line:?} in:\n{plan}"
        );
    }
}
