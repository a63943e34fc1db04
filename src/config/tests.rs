//! The load pipeline and every schema rule, each error checked for its path,
//! its line and its hint.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Diagnostic, Severity};
use super::model::*;
use super::{Loaded, load, load_str, parse_str, render_only, resolve_path};
use crate::events::EventCode;

fn ok(text: &str) -> Loaded {
    parse_str(text, "t.json5").unwrap_or_else(|e| panic!("expected the config to load:\n{e}"))
}

fn fail(text: &str) -> ConfigError {
    match parse_str(text, "t.json5") {
        Ok(_) => panic!("expected the config to fail:\n{text}"),
        Err(e) => e,
    }
}

/// The error at `path`, checked to be on `line` with a hint containing `hint`.
fn error_at(err: &ConfigError, path: &str, line: usize, hint: &str) -> Diagnostic {
    let d = err
        .errors()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no error at {path:?} in:\n{err}"))
        .clone();
    assert_eq!(d.line, line, "wrong line for {path}:\n{d}");
    let shown = d.hint.clone().unwrap_or_default();
    assert!(shown.contains(hint), "hint {shown:?} lacks {hint:?}:\n{d}");
    d
}

fn warning_at(loaded: &Loaded, path: &str, line: usize) -> Diagnostic {
    let d = loaded
        .warnings
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no warning at {path:?}: {:?}", loaded.warnings))
        .clone();
    assert_eq!((d.severity, d.line), (Severity::Warning, line), "{d}");
    d
}

fn job(loaded: &Loaded, name: &str) -> JobConfig {
    loaded
        .config
        .jobs
        .iter()
        .find(|j| j.name == name)
        .cloned()
        .unwrap()
}

/// A job list wrapped in a document, one job per line from line 2.
fn jobs(lines: &[&str]) -> String {
    format!("{{jobs: [\n{}\n]}}", lines.join(",\n"))
}

// ---- the pipeline ------------------------------------------------------

#[test]
fn an_empty_object_is_a_valid_config_with_defaults() {
    let c = ok("{}").config;
    assert_eq!(c.stop_timeout, DEFAULT_STOP_TIMEOUT);
    assert_eq!(c.logging, LoggingConfig::default());
    assert_eq!(c.control.socket, Path::new(DEFAULT_CONTROL_SOCKET));
    assert!(c.consul.is_none() && c.telemetry.is_none() && c.jobs.is_empty());
}

#[test]
fn json5_syntax_is_accepted() {
    let text =
        "// comment\n{\n  /* block */\n  jobs: [{name: 'a', \"exec\": 'x', restarts: 0x3,},],\n}\n";
    assert_eq!(job(&ok(text), "a").restarts, Restarts::Limit(3));
}

#[test]
fn syntax_errors_are_located() {
    let err = fail("{\n  jobs: [\n    {name: 'a' exec: 'x'}\n  ]\n}");
    let d = err.errors().next().unwrap();
    assert_eq!((d.line, d.path.as_str()), (3, ""));
    assert!(d.message.contains("`,`"), "{d}");
}

#[test]
fn every_error_is_collected_not_just_the_first() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', restarts: 'sometimes'}",
        "{name: 'b', exec: 'x', timeout: 'soon'}",
        "{name: 'c', exec: 'x', bogus: 1}",
    ]));
    assert_eq!(err.error_count(), 3, "{err}");
    assert!(
        err.to_string()
            .ends_with("error: the configuration has 3 errors")
    );
}

#[test]
fn templates_are_rendered_with_the_environment() {
    let env = HashMap::from([("PORT".to_string(), "8080".to_string())]);
    let raw = "{jobs: [{name: 'web', exec: 'x', port: {{ .PORT }}, health: {exec: 'c', interval: 1, ttl: 3}}]}";
    let loaded = load_str(raw, "t.json5", &env).unwrap();
    assert_eq!(job(&loaded, "web").service.unwrap().port, 8080);
    assert!(loaded.rendered.contains("port: 8080"));
}

#[test]
fn template_errors_point_into_the_file_as_written() {
    let raw = "{\n  jobs: [{name: '{{ .NAME | nosuchfunc }}'}]\n}";
    let err = load_str(raw, "t.json5", &HashMap::new()).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.line, 2, "{d}");
    assert!(d.message.starts_with("template:"), "{d}");
    assert_eq!(d.excerpt, "  jobs: [{name: '{{ .NAME | nosuchfunc }}'}]");
    assert!(d.hint.is_some());
}

#[test]
fn an_unset_variable_that_breaks_the_syntax_says_so() {
    let raw = "{jobs: [{name: 'web', exec: 'x',\n  port: {{ .PORT }},\n}]}";
    let err = load_str(raw, "t.json5", &HashMap::new()).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.line, 2);
    assert!(
        d.hint
            .as_ref()
            .unwrap()
            .contains("environment variable is probably unset"),
        "{d}"
    );
}

#[test]
fn positions_after_rendering_are_marked_when_lines_moved() {
    let raw = "{{ if .X }}\n\n{{ end }}{\n  stopTimeout: 'x'\n}";
    let err = load_str(raw, "t.json5", &HashMap::new()).unwrap_err();
    assert_eq!(err.diagnostics[0].file, "t.json5 (as rendered)");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = load(
        Path::new("/nonexistent/containerpilot.json5"),
        &HashMap::new(),
    )
    .unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.message, "configuration file not found");
    assert_eq!(d.line, 0);
    assert!(d.hint.as_ref().unwrap().contains("-config"));
    assert!(render_only(Path::new("/nonexistent/x"), &HashMap::new()).is_err());
}

#[test]
fn files_load_with_or_without_a_file_url_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.json5");
    std::fs::write(&path, "{jobs: [{name: 'a', exec: '{{ .CMD }}'}]}").unwrap();
    let env = HashMap::from([("CMD".to_string(), "/bin/true".to_string())]);
    let loaded = load(&path, &env).unwrap();
    assert_eq!(loaded.path, path);
    assert_eq!(job(&loaded, "a").exec.unwrap().program, "/bin/true");
    let url = format!("file://{}", path.display());
    assert!(load(Path::new(&url), &env).is_ok());
    assert_eq!(
        render_only(&path, &env).unwrap(),
        "{jobs: [{name: 'a', exec: '/bin/true'}]}"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.json5");
    std::fs::write(&path, b"{\n  jobs: ['\xff']\n}").unwrap();
    let err = load(&path, &HashMap::new()).unwrap_err();
    assert_eq!(err.diagnostics[0].line, 2);
    assert!(err.diagnostics[0].message.contains("UTF-8"));
}

#[test]
fn the_path_comes_from_the_flag_then_the_environment() {
    let env = HashMap::from([(
        "CONTAINERPILOT".to_string(),
        "file:///etc/cp.json5".to_string(),
    )]);
    assert_eq!(
        resolve_path(Some("/a.json5"), &env).unwrap(),
        Path::new("/a.json5")
    );
    assert_eq!(
        resolve_path(None, &env).unwrap(),
        Path::new("/etc/cp.json5")
    );
    assert_eq!(resolve_path(None, &HashMap::new()), None);
}

#[test]
fn containerpilot_2_documents_are_detected() {
    // Translated into jobs (config/v2.rs has the details), with version 2's signals.
    let loaded = ok("{\n  consul: 'consul:8500',\n  services: []\n}");
    assert_eq!(loaded.config.signals, SignalMode::V2);
    assert!(loaded.config.jobs.is_empty());
    assert_eq!(ok("{jobs: []}").config.signals, SignalMode::V3);
}

// ---- unknown keys and types --------------------------------------------

#[test]
fn unknown_keys_are_errors_with_suggestions() {
    let err = fail("{\n  job: []\n}");
    error_at(&err, "job", 2, "did you mean `jobs`?");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', restart: 'unlimited'}"]));
    let d = error_at(&err, "jobs[0].restart", 2, "did you mean `restarts`?");
    assert_eq!(d.message, "unknown key `restart` in `jobs[0]`");
    let err = fail(&jobs(&[
        "{name: 'a', port: 80, health: {exec: 'c', interval: 5, tll: 10}}",
    ]));
    error_at(&err, "jobs[0].health.tll", 2, "did you mean `ttl`?");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', frobnicate: 1}"]));
    error_at(&err, "jobs[0].frobnicate", 2, "known keys here: name, exec");
}

#[test]
fn containerpilot_2_keys_in_a_v3_document_are_explained() {
    let err = fail("{\n  jobs: [],\n  backends: []\n}");
    error_at(&err, "backends", 3, "they are `watches`");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', poll: 5}"]));
    error_at(&err, "jobs[0].poll", 2, "`health.interval`");
}

#[test]
fn keys_in_the_wrong_case_work_with_a_warning() {
    let loaded = ok(&jobs(&["{Name: 'a', exec: 'x'}"]));
    assert_eq!(loaded.config.jobs[0].name, "a");
    let d = warning_at(&loaded, "jobs[0].Name", 2);
    assert_eq!(d.hint.as_deref(), Some("write `name`"));
}

#[test]
fn wrong_types_say_what_was_expected() {
    let err = fail(&jobs(&[
        "{name: 'a', port: 1, tags: {x: 1}, health: {exec: 'c', interval: 1, ttl: 2}}",
    ]));
    let d = err.errors().find(|d| d.path == "jobs[0].tags").unwrap();
    assert_eq!(
        d.message,
        "expected a string or an array of strings, found an object"
    );
    let err = fail("{\n  jobs: {name: 'a'}\n}");
    error_at(&err, "jobs", 2, "jobs: [{name");
    let err = fail(&jobs(&["'app'"]));
    error_at(&err, "jobs[0]", 2, "keys: name, exec");
}

#[test]
fn weakly_typed_values_are_accepted_as_containerpilot_did() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', port: '8080', restarts: '3', health: {exec: 'c', interval: '5', ttl: '10'}}",
    ]));
    let a = job(&loaded, "a");
    assert_eq!(a.service.unwrap().port, 8080);
    assert_eq!(a.restarts, Restarts::Limit(3));
    assert_eq!(a.health.unwrap().interval, Duration::from_secs(5));
    // `null` reads as "not set".
    assert_eq!(
        job(&ok(&jobs(&["{name: 'a', exec: 'x', when: null}"])), "a").when,
        When::Startup
    );
}

// ---- jobs ----------------------------------------------------------------

#[test]
fn a_job_needs_a_name() {
    let err = fail(&jobs(&["{exec: 'x'}"]));
    error_at(&err, "jobs[0]", 2, "name: \"app\"");
    let err = fail(&jobs(&["{name: '', exec: 'x'}"]));
    error_at(&err, "jobs[0].name", 2, "give the job a name");
}

#[test]
fn a_repeated_job_name_warns_and_the_last_definition_wins() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'first'}",
        "{name: 'b', exec: 'x'}",
        "{name: 'a', exec: 'second'}",
    ]));
    assert_eq!(loaded.config.jobs.len(), 2);
    assert_eq!(job(&loaded, "a").exec.unwrap().program, "second");
    let d = warning_at(&loaded, "jobs[0].name", 2);
    assert!(d.message.contains("defined again on line 4"), "{d}");
}

#[test]
fn exec_is_a_string_split_on_whitespace_or_an_array() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: ' /bin/app  -v  --x=1 '}",
        "{name: 'b', exec: ['sh', '-c', 'a b']}",
        "{name: 'c'}",
    ]));
    let a = job(&loaded, "a").exec.unwrap();
    assert_eq!(
        (a.program.as_str(), a.args.clone()),
        ("/bin/app", vec!["-v".to_string(), "--x=1".to_string()])
    );
    assert_eq!(job(&loaded, "b").exec.unwrap().args, ["-c", "a b"]);
    assert_eq!(job(&loaded, "c").exec, None);
    let err = fail(&jobs(&["{name: 'a', exec: ''}"]));
    error_at(
        &err,
        "jobs[0].exec",
        2,
        "environment variable is probably unset",
    );
    let err = fail(&jobs(&[
        "{name: 'a', exec: 5.5}",
        "{name: 'b', exec: [1, {}]}",
    ]));
    error_at(&err, "jobs[1].exec[1]", 3, "");
}

#[test]
fn the_job_line_is_recorded() {
    let loaded = ok("{\n  jobs: [\n    {name: 'a'},\n\n    {\n      name: 'b'\n    }\n  ]\n}");
    assert_eq!((job(&loaded, "a").line, job(&loaded, "b").line), (3, 5));
}

#[test]
fn advertised_names_follow_consuls_rules() {
    let err = fail(&jobs(&[
        "{name: 'My_App', port: 80, health: {exec: 'c', interval: 1, ttl: 2}}",
    ]));
    let d = error_at(&err, "jobs[0].name", 2, "for example `my-App`");
    assert!(d.message.contains("cannot be a Consul service name"));
    // Without a port any name goes, as in ContainerPilot.
    ok(&jobs(&["{name: 'My_App', exec: 'x'}"]));
}

#[test]
fn port_is_checked_and_needs_health() {
    let err = fail(&jobs(&[
        "{name: 'a', port: 70000, health: {exec: 'c', interval: 1, ttl: 2}}",
    ]));
    error_at(&err, "jobs[0].port", 2, "from 1 to 65535");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', port: 80}"]));
    error_at(&err, "jobs[0].port", 2, "add `health:");
    // ContainerPilot's telemetry job is registered without a check.
    assert!(
        job(
            &ok(&jobs(&["{name: 'containerpilot', port: 9090}"])),
            "containerpilot"
        )
        .service
        .is_some()
    );
}

#[test]
fn an_empty_port_from_a_template_means_not_registered() {
    let loaded = ok(&jobs(&["{name: 'a', exec: 'x', port: ''}"]));
    assert!(job(&loaded, "a").service.is_none());
    warning_at(&loaded, "jobs[0].port", 2);
}

#[test]
fn registration_keys_without_port_warn() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', tags: ['t'], interfaces: 'eth0', consul: {enableTagOverride: true}, initial_status: 'passing', meta: {k: 'v'}}",
    ]));
    for key in ["tags", "interfaces", "consul", "initial_status", "meta"] {
        let d = warning_at(&loaded, &format!("jobs[0].{key}"), 2);
        assert_eq!(d.message, format!("`{key}` has no effect without `port`"));
    }
}

#[test]
fn registration_details_are_decoded() {
    let loaded = ok(&jobs(&[
        "{name: 'web', port: 80, health: {exec: 'c', interval: 1, ttl: 2}, tags: 'blue', interfaces: ['eth0', 'inet'], \
         consul: {enableTagOverride: true, deregisterCriticalServiceAfter: '10m'}, initial_status: 'warning', meta: {v: 2, b: true}}",
    ]));
    let s = job(&loaded, "web").service.unwrap();
    assert_eq!(s.tags, ["blue"]);
    assert_eq!(s.interfaces, ["eth0", "inet"]);
    assert!(s.enable_tag_override);
    assert_eq!(s.deregister_critical_service_after.as_deref(), Some("10m"));
    assert_eq!(s.initial_status.as_deref(), Some("warning"));
    assert_eq!(s.meta.get("v").map(String::as_str), Some("2"));
    assert_eq!(s.meta.get("b").map(String::as_str), Some("true"));
}

#[test]
fn registration_details_are_validated() {
    let base = "name: 'web', port: 80, health: {exec: 'c', interval: 1, ttl: 2}";
    let err = fail(&jobs(&[&format!(
        "{{{base}, consul: {{deregisterCriticalServiceAfter: 10}}}}"
    )]));
    error_at(
        &err,
        "jobs[0].consul.deregisterCriticalServiceAfter",
        2,
        "`\"10s\"`",
    );
    let err = fail(&jobs(&[&format!(
        "{{{base}, consul: {{deregisterCriticalServiceAfter: '10 minutes'}}}}"
    )]));
    error_at(
        &err,
        "jobs[0].consul.deregisterCriticalServiceAfter",
        2,
        "units",
    );
    let err = fail(&jobs(&[&format!("{{{base}, initial_status: 'pasing'}}")]));
    error_at(
        &err,
        "jobs[0].initial_status",
        2,
        "did you mean `\"passing\"`?",
    );
}

// ---- when ----------------------------------------------------------------

#[test]
fn when_event_forms() {
    let loaded = ok(&jobs(&[
        "{name: 'setup', exec: 'x'}",
        "{name: 'a', exec: 'x', when: {source: 'setup', once: 'exitSuccess', timeout: '60s'}}",
        "{name: 'b', exec: 'x', when: {source: 'watch.db', each: 'changed'}}",
        "{name: 'c', exec: 'x', when: {interval: '1500ms'}}",
        "{name: 'd', exec: 'x', when: {each: 'SIGHUP'}}",
        "{name: 'e', exec: 'x', when: {source: 'SIGUSR2', once: 'SIGUSR2'}}",
    ]));
    assert_eq!(
        job(&loaded, "a").when,
        When::Event {
            pattern: EventPattern {
                code: EventCode::ExitSuccess,
                source: "setup".into()
            },
            repeat: Repeat::Once,
            timeout: Some(Duration::from_secs(60)),
        }
    );
    assert!(matches!(
        job(&loaded, "b").when,
        When::Event {
            repeat: Repeat::Each,
            ..
        }
    ));
    assert_eq!(
        job(&loaded, "c").when,
        When::Interval(Duration::from_millis(1500))
    );
    let When::Event { pattern, .. } = job(&loaded, "d").when else {
        panic!()
    };
    assert_eq!(
        (pattern.code, pattern.source.as_str()),
        (EventCode::SigHup, "SIGHUP")
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn interval_stands_alone() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', when: {interval: '5s', source: 'b', once: 'exitSuccess'}}",
    ]));
    error_at(&err, "jobs[0].when.source", 2, "remove `interval`");
    error_at(&err, "jobs[0].when.once", 2, "remove `interval`");
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', when: {interval: '5s', timeout: '1s'}}",
    ]));
    warning_at(&loaded, "jobs[0].when.timeout", 2);
}

#[test]
fn once_and_each_exclude_each_other() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', when: {source: 'b', once: 'healthy', each: 'healthy'}}",
    ]));
    let d = error_at(&err, "jobs[0].when.each", 2, "keep one");
    assert_eq!(d.message, "`once` and `each` cannot both be set");
}

#[test]
fn source_needs_once_or_each_and_when_needs_something() {
    let err = fail(&jobs(&["{name: 'a', exec: 'x', when: {source: 'b'}}"]));
    error_at(&err, "jobs[0].when.source", 2, "once: \"exitSuccess\"");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', when: {}}"]));
    error_at(&err, "jobs[0].when", 2, "remove `when`");
}

#[test]
fn unknown_events_suggest_the_closest() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', when: {source: 'b', once: 'exitsuccess'}}",
    ]));
    let d = error_at(&err, "jobs[0].when.once", 2, "did you mean `exitSuccess`?");
    assert_eq!(d.message, "unknown event `exitsuccess`");
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', when: {source: 'b', each: 'whenever'}}",
    ]));
    error_at(&err, "jobs[0].when.each", 2, "known events: startup");
}

#[test]
fn a_source_is_required_except_for_signals_and_global_events() {
    let err = fail(&jobs(&["{name: 'a', exec: 'x', when: {once: 'healthy'}}"]));
    let d = error_at(&err, "jobs[0].when.once", 2, "add `source:`");
    assert_eq!(d.message, "`once: \"healthy\"` needs a `source`");
    // Published configs write `once: "startup"` alone and mean `global`.
    let loaded = ok(&jobs(&["{name: 'a', exec: 'x', when: {once: 'startup'}}"]));
    let When::Event { pattern, .. } = job(&loaded, "a").when else {
        panic!()
    };
    assert_eq!(pattern.source, "global");
    let d = warning_at(&loaded, "jobs[0].when.once", 2);
    assert!(d.hint.unwrap().contains("source: \"global\""));
}

#[test]
fn intervals_and_timeouts_have_a_floor() {
    let err = fail(&jobs(&["{name: 'a', exec: 'x', when: {interval: '10us'}}"]));
    error_at(&err, "jobs[0].when.interval", 2, "interval: \"10s\"");
    let err = fail(&jobs(&["{name: 'a', exec: 'x', timeout: '0'}"]));
    let d = error_at(&err, "jobs[0].timeout", 2, "timeout: \"30s\"");
    assert_eq!(d.message, "must be at least 1ms");
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', when: {source: 'b', once: 'healthy', timeout: 'later'}}",
    ]));
    error_at(&err, "jobs[0].when.timeout", 2, "units");
}

#[test]
fn durations_take_seconds_or_go_syntax() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', timeout: 90, stopTimeout: '10'}",
        "{name: 'b', exec: 'x', timeout: '1m30s', stopTimeout: '250ms'}",
        "{name: 'c', exec: 'x', when: {interval: '5m'}}",
        "{name: 'd', exec: 'x', when: {interval: 2}, timeout: '1s'}",
    ]));
    assert_eq!(job(&loaded, "a").timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        job(&loaded, "a").stop_timeout,
        Some(Duration::from_secs(10))
    );
    assert_eq!(job(&loaded, "b").timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        job(&loaded, "b").stop_timeout,
        Some(Duration::from_millis(250))
    );
    // An interval job's timeout defaults to its interval.
    assert_eq!(job(&loaded, "c").timeout, Some(Duration::from_secs(300)));
    assert_eq!(job(&loaded, "d").timeout, Some(Duration::from_secs(1)));
    let err = fail(&jobs(&["{name: 'a', exec: 'x', stopTimeout: '5 s'}"]));
    error_at(&err, "jobs[0].stopTimeout", 2, "stopTimeout: \"10s\"");
}

// ---- restarts and backoff ----------------------------------------------

#[test]
fn restarts_forms_and_defaults() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', restarts: 2}",
        "{name: 'b', exec: 'x', restarts: 'unlimited'}",
        "{name: 'c', exec: 'x', restarts: 'never'}",
        "{name: 'd', exec: 'x'}",
        "{name: 'e', exec: 'x', when: {interval: '1s'}}",
        "{name: 'f', exec: 'x', when: {interval: '1s'}, restarts: '4'}",
    ]));
    let r = |n| job(&loaded, n).restarts;
    assert_eq!(
        [r("a"), r("b"), r("c"), r("d"), r("e"), r("f")],
        [
            Restarts::Limit(2),
            Restarts::Unlimited,
            Restarts::Never,
            Restarts::Never,
            Restarts::Unlimited,
            Restarts::Limit(4)
        ]
    );
}

#[test]
fn invalid_restarts_say_what_works() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', restarts: 'always'}",
        "{name: 'b', exec: 'x', restarts: -1}",
        "{name: 'c', exec: 'x', restarts: 'unlimted'}",
        "{name: 'd', exec: 'x', restarts: [1]}",
    ]));
    error_at(&err, "jobs[0].restarts", 2, "write `\"unlimited\"`");
    error_at(&err, "jobs[1].restarts", 3, "whole number");
    error_at(&err, "jobs[2].restarts", 4, "did you mean `\"unlimited\"`?");
    error_at(&err, "jobs[3].restarts", 5, "whole number");
}

#[test]
fn unlimited_restarts_with_each_is_an_error() {
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', restarts: 'unlimited', when: {source: 'watch.db', each: 'changed'}}",
    ]));
    let d = error_at(&err, "jobs[0].restarts", 2, "`when.once`");
    assert!(d.message.contains("cannot be combined with `when.each`"));
}

#[test]
fn backoff_is_decoded_and_ordered() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', backoff: {initial: '1s', max: '1m', reset: 300}}",
        "{name: 'b', exec: 'x'}",
    ]));
    let a = job(&loaded, "a").backoff;
    assert_eq!(
        (a.initial, a.max, a.reset_after),
        (
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(300)
        )
    );
    assert_eq!(job(&loaded, "b").backoff, Backoff::default());
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', backoff: {initial: '1m', max: '1s'}}",
    ]));
    error_at(&err, "jobs[0].backoff.initial", 2, "doubles up to `max`");
}

#[test]
fn at_most_one_main_job() {
    let loaded = ok(&jobs(&[
        "{name: 'a', exec: 'x', main: true}",
        "{name: 'b', exec: 'x', main: false}",
    ]));
    assert!(job(&loaded, "a").main && !job(&loaded, "b").main);
    let err = fail(&jobs(&[
        "{name: 'a', exec: 'x', main: true}",
        "{name: 'b', exec: 'x', main: true}",
    ]));
    let d = error_at(&err, "jobs[1].main", 3, "at most one job");
    assert_eq!(d.message, "`a` is already the main job");
}

#[test]
fn job_logging_raw() {
    let loaded = ok(&jobs(&["{name: 'a', exec: 'x', logging: {raw: true}}"]));
    assert!(job(&loaded, "a").logging_raw);
    let err = fail(&jobs(&["{name: 'a', exec: 'x', logging: {raw: 'yes'}}"]));
    assert!(err.errors().any(|d| d.path == "jobs[0].logging.raw"));
}

// ---- health --------------------------------------------------------------

const HEALTHY: &str = "name: 'web', port: 80";

#[test]
fn health_exec_with_defaults() {
    let loaded = ok(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: '/bin/check -q', interval: 5, ttl: 10, logging: {{raw: true}}}}}}"
    )]));
    let h = job(&loaded, "web").health.unwrap();
    assert_eq!(
        h.check,
        HealthCheck::Exec(Exec {
            program: "/bin/check".into(),
            args: vec!["-q".into()]
        })
    );
    assert_eq!(
        (h.interval, h.ttl, h.timeout),
        (
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(5)
        )
    );
    assert!(h.logging_raw);
}

#[test]
fn health_accepts_duration_strings_for_seconds() {
    let loaded = ok(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', interval: '5s', ttl: '25s', timeout: '2s'}}}}"
    )]));
    let h = job(&loaded, "web").health.unwrap();
    assert_eq!(
        (h.interval, h.ttl, h.timeout),
        (
            Duration::from_secs(5),
            Duration::from_secs(25),
            Duration::from_secs(2)
        )
    );
}

#[test]
fn health_http_and_tcp_checks() {
    let loaded = ok(&jobs(&[
        "{name: 'a', port: 1, health: {http: 'http://localhost:8080/health', interval: 1, ttl: 3}}",
        "{name: 'b', port: 1, health: {http: {url: 'https://x/h', status: '200-399'}, interval: 1, ttl: 3}}",
        "{name: 'c', port: 1, health: {tcp: 'localhost:5432', interval: 1, ttl: 3}}",
    ]));
    assert_eq!(
        job(&loaded, "a").health.unwrap().check,
        HealthCheck::Http {
            url: "http://localhost:8080/health".into(),
            ok_status: 200..=299
        }
    );
    assert_eq!(
        job(&loaded, "b").health.unwrap().check,
        HealthCheck::Http {
            url: "https://x/h".into(),
            ok_status: 200..=399
        }
    );
    assert_eq!(
        job(&loaded, "c").health.unwrap().check,
        HealthCheck::Tcp {
            address: "localhost:5432".into()
        }
    );
    let err = fail(&jobs(&[
        "{name: 'a', port: 1, health: {http: 'localhost/health', interval: 1, ttl: 3}}",
        "{name: 'b', port: 1, health: {http: {url: 'http://x', status: '600'}, interval: 1, ttl: 3}}",
        "{name: 'c', port: 1, health: {tcp: 'localhost', interval: 1, ttl: 3}}",
    ]));
    error_at(&err, "jobs[0].health.http", 2, "full URL");
    error_at(&err, "jobs[1].health.http.status", 3, "between 100 and 599");
    error_at(&err, "jobs[2].health.tcp", 4, "localhost:5432");
}

#[test]
fn health_needs_exactly_one_check() {
    let err = fail(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{interval: 5, ttl: 10}}}}"
    )]));
    error_at(&err, "jobs[0].health", 2, "exec:");
    let err = fail(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', tcp: 'h:1', interval: 5, ttl: 10}}}}"
    )]));
    let d = error_at(&err, "jobs[0].health.tcp", 2, "keep one");
    assert_eq!(d.message, "`tcp` cannot be combined with `exec`");
}

#[test]
fn health_interval_and_ttl_are_required_and_positive() {
    let err = fail(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', ttl: 10}}}}"
    )]));
    let d = error_at(&err, "jobs[0].health", 2, "add `interval: 5`");
    assert!(d.message.starts_with("missing `interval`"));
    let err = fail(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', interval: 5, ttl: 0}}}}"
    )]));
    let d = error_at(&err, "jobs[0].health.ttl", 2, "ttl: 10");
    assert_eq!(d.message, "must be greater than 0");
    let err = fail(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', interval: -5, ttl: 10}}}}"
    )]));
    error_at(&err, "jobs[0].health.interval", 2, "interval: 5");
}

#[test]
fn a_ttl_shorter_than_the_interval_warns() {
    let loaded = ok(&jobs(&[&format!(
        "{{{HEALTHY}, health: {{exec: 'c', interval: 10, ttl: 5}}}}"
    )]));
    warning_at(&loaded, "jobs[0].health.ttl", 2);
}

#[test]
fn a_bare_command_as_health_is_explained() {
    let err = fail(&jobs(&[&format!("{{{HEALTHY}, health: '/bin/check'}}")]));
    error_at(&err, "jobs[0].health", 2, "ContainerPilot 2 syntax");
}

// ---- watches -------------------------------------------------------------

#[test]
fn watches_forms_and_defaults() {
    let loaded = ok(
        "{watches: [\n{name: 'db'},\n{name: 'api', interval: 3, tag: 'v2', dc: 'east'},\n{name: 'cfg', key: 'app/config'},\n{name: 'all', prefix: 'app/'}\n]}",
    );
    let w = &loaded.config.watches;
    assert_eq!(
        w[0].target,
        WatchTarget::Service {
            service: "db".into(),
            tag: None,
            dc: None
        }
    );
    assert_eq!(w[0].interval, Duration::from_secs(10));
    assert_eq!((w[0].line, w[0].source()), (2, "watch.db".to_string()));
    assert_eq!(
        w[1].target,
        WatchTarget::Service {
            service: "api".into(),
            tag: Some("v2".into()),
            dc: Some("east".into())
        }
    );
    assert_eq!(w[1].interval, Duration::from_secs(3));
    assert_eq!(
        w[2].target,
        WatchTarget::Key {
            key: "app/config".into(),
            dc: None
        }
    );
    assert_eq!(
        w[3].target,
        WatchTarget::Prefix {
            prefix: "app/".into(),
            dc: None
        }
    );
}

#[test]
fn watch_rules() {
    let err = fail(
        "{watches: [\n{interval: 5},\n{name: 'x', interval: 0},\n{name: 'k', key: 'a', prefix: 'b'},\n{name: 't', key: 'a', tag: 'x'},\n{name: 'db'},\n{name: 'db'},\n{name: 'u', poll: 5}\n]}",
    );
    error_at(&err, "watches[0]", 2, "name: \"db\"");
    error_at(&err, "watches[1].interval", 3, "interval: 10");
    error_at(&err, "watches[2].prefix", 4, "every key under a path");
    error_at(&err, "watches[3].tag", 5, "remove `tag`");
    let d = error_at(&err, "watches[5].name", 7, "first one is on line 6");
    assert_eq!(d.message, "there is already a watch named `db`");
    error_at(&err, "watches[6].poll", 8, "`interval` in ContainerPilot 3");
}

// ---- consul, logging, control, telemetry, stopTimeout ------------------

#[test]
fn consul_as_a_string_or_an_object() {
    let c = ok("{consul: 'consul:8500'}").config.consul.unwrap();
    assert_eq!(c.address, "consul:8500");
    let c = ok("{consul: {address: 'https://c:8501', scheme: 'https', token: 't', tls: {cafile: '/ca.pem', servername: 'c'}}}")
        .config
        .consul
        .unwrap();
    assert_eq!(c.scheme.as_deref(), Some("https"));
    assert_eq!(c.token.as_deref(), Some("t"));
    let tls = c.tls.unwrap();
    assert!(tls.verify, "verification is on unless turned off");
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("/ca.pem")));
    let c = ok("{consul: {address: 'c:8500', tls: {verify: 'false'}}}")
        .config
        .consul
        .unwrap();
    assert!(!c.tls.unwrap().verify);
    let err = fail("{\n  consul: {address: 'c', scheme: 'ftp'}\n}");
    error_at(&err, "consul.scheme", 2, "`\"https\"`");
    let err = fail("{\n  consul: 8500\n}");
    error_at(&err, "consul", 2, "localhost:8500");
    let loaded = ok("{\n  consul: ''\n}");
    assert_eq!(loaded.config.consul.as_ref().unwrap().address, "");
    warning_at(&loaded, "consul", 2);
}

#[test]
fn logging_options() {
    let l = ok("{logging: {level: 'warning', format: 'JSON', output: '/var/log/cp.log'}}")
        .config
        .logging;
    assert_eq!(l.level, LogLevel::Warn);
    assert_eq!(l.format, LogFormat::Json);
    assert_eq!(l.output, LogOutput::File("/var/log/cp.log".into()));
    assert_eq!(
        ok("{logging: {level: 'debug', output: 'stderr'}}")
            .config
            .logging
            .level,
        LogLevel::Debug
    );
    let err = fail("{\n  logging: {level: 'INFOO'}\n}");
    error_at(&err, "logging.level", 2, "did you mean `INFO`?");
    let err = fail("{\n  logging: {format: 'xml'}\n}");
    error_at(&err, "logging.format", 2, "default, text, json");
}

#[test]
fn control_socket() {
    assert_eq!(
        ok("{control: {socket: '/tmp/cp.sock'}}")
            .config
            .control
            .socket,
        Path::new("/tmp/cp.sock")
    );
}

#[test]
fn stop_timeout_defaults_and_forms() {
    assert_eq!(
        ok("{stopTimeout: 10}").config.stop_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(
        ok("{stopTimeout: '8s'}").config.stop_timeout,
        Duration::from_secs(8)
    );
    assert_eq!(
        ok("{stopTimeout: 0}").config.stop_timeout,
        DEFAULT_STOP_TIMEOUT
    );
    let err = fail("{\n  stopTimeout: 'soon'\n}");
    error_at(&err, "stopTimeout", 2, "stopTimeout: 5");
}

#[test]
fn telemetry_section() {
    let t = ok("{telemetry: {interfaces: 'eth0', tags: ['a'], metrics: [{namespace: 'ns', subsystem: 's', name: 'hits', help: 'h', type: 'counter'}]}}")
        .config
        .telemetry
        .unwrap();
    assert_eq!(t.port, 9090);
    assert_eq!(t.interfaces, ["eth0"]);
    assert_eq!(t.metrics[0].kind, MetricType::Counter);
    let err = fail("{telemetry: {metrics: [\n{name: 'a', type: 'countr'},\n{type: 'gauge'}\n]}}");
    error_at(
        &err,
        "telemetry.metrics[0].type",
        2,
        "did you mean `counter`?",
    );
    error_at(&err, "telemetry.metrics[1]", 3, "add `name:");
    let err = fail("{jobs: [], telemetry: {\n  sensors: []\n}}");
    error_at(&err, "telemetry.sensors", 2, "ContainerPilot 2 syntax");
}
