//! Issue 14's input defects, one regression test each: a config that passes
//! `check` cannot crash autopilot, and no config makes diagnostics explode.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::{ConfigError, MAX_DIAGNOSTICS, Severity};
use super::{LoadOptions, Loaded, load_str, load_str_with, parse_str};

fn fail(text: &str) -> ConfigError {
    match parse_str(text, "t.json5") {
        Ok(_) => panic!("expected the config to fail:\n{text}"),
        Err(e) => e,
    }
}

fn ok(text: &str) -> Loaded {
    parse_str(text, "t.json5").unwrap_or_else(|e| panic!("expected the config to load:\n{e}"))
}

/// The one error of `text`, checked to be at `path` and to say `part`.
fn one_error(text: &str, path: &str, part: &str) {
    let e = fail(text);
    let errors: Vec<_> = e.errors().collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert_eq!(errors[0].path, path, "{e}");
    assert!(errors[0].message.contains(part), "{e}");
    assert!(errors[0].line >= 1, "not located: {e}");
}

// ---- defect 2: durations the runtime cannot add to a clock ----

#[test]
fn durations_beyond_ten_years_fail_check_in_every_field() {
    let job = |extra: &str| format!("{{jobs: [{{name: 'a', exec: 'x', {extra}}}]}}");
    let cases = [
        (
            job("when: {interval: 1e19}"),
            "jobs[0].when.interval",
        ),
        (
            job("when: {interval: '1s'}, timeout: '2562047h'"),
            "jobs[0].timeout",
        ),
        (
            job("health: {exec: 'true', interval: 9.3e18, ttl: 10}, port: 80"),
            "jobs[0].health.interval",
        ),
        (
            job("health: {exec: 'true', interval: 5, ttl: 5, timeout: '87601h'}, port: 80"),
            "jobs[0].health.timeout",
        ),
        (
            job("stopTimeout: 18446744073709551615"),
            "jobs[0].stopTimeout",
        ),
        (
            job("backoff: {initial: '1s', max: 1e19}"),
            "jobs[0].backoff.max",
        ),
        (
            "{stopTimeout: 9.3e18, jobs: [{name: 'a', exec: 'x'}]}".to_string(),
            "stopTimeout",
        ),
        (
            "{consul: 'c:8500', services: [{name: 'a', port: 80, health: 'true', poll: 5e18, ttl: 10}]}"
                .to_string(),
            "services[0].poll",
        ),
        (
            "{consul: 'c:8500', backends: [{name: 'b', poll: 5e18, onChange: 'x'}]}".to_string(),
            "backends[0].poll",
        ),
    ];
    for (text, path) in cases {
        one_error(&text, path, "is too long");
    }
}

#[test]
fn ten_years_is_accepted() {
    let loaded =
        ok("{stopTimeout: '87600h', jobs: [{name: 'a', exec: 'x', when: {interval: 315360000}}]}");
    assert_eq!(loaded.config.stop_timeout, super::duration::MAX);
}

// ---- defect 3: names and words that no process can receive ----

#[test]
fn nul_characters_are_rejected_wherever_they_are() {
    one_error(
        "{jobs: [{name: 'a\\u0000b', exec: 'x'}]}",
        "jobs[0].name",
        "NUL",
    );
    one_error(
        "{jobs: [{name: 'a', exec: ['x', 'y\\u0000']}]}",
        "jobs[0].exec[1]",
        "NUL",
    );
    one_error(
        "{watches: [{name: 'w\\u0000', interval: 5}], consul: 'c:8500'}",
        "watches[0].name",
        "NUL",
    );
    one_error(
        "{consul: 'c:8500', services: [{name: 'a', port: 80, health: 'ok\\u0000', poll: 5, ttl: 10}]}",
        "services[0].health",
        "NUL",
    );
    one_error(
        "{logging: {output: '/tmp/x\\u0000'}}",
        "logging.output",
        "NUL",
    );
}

#[test]
fn names_that_break_environment_variables_are_rejected() {
    one_error(
        "{jobs: [{name: 'a=b', exec: 'x'}]}",
        "jobs[0].name",
        "contains `=`",
    );
    one_error(
        "{jobs: [{name: 'a\\nb', exec: 'x'}]}",
        "jobs[0].name",
        "control character",
    );
    one_error(
        "{consul: 'c:8500', backends: [{name: 'b=c', poll: 5, onChange: 'x'}]}",
        "backends[0].name",
        "contains `=`",
    );
    let e = fail("{jobs: [{name: 'a=b', exec: 'x'}]}");
    let hint = e.errors().next().unwrap().hint.clone().unwrap();
    assert!(hint.contains("write \"a-b\""), "{hint}");
}

#[test]
fn an_app_word_that_renders_a_nul_is_rejected() {
    let options = LoadOptions {
        app: vec!["/bin/app".into(), "{{ printf \"%c\" 0 }}".into()],
        self_exe: Some("/bin/autopilot".into()),
    };
    let v2 = "{consul: 'c:8500'}";
    let e = load_str_with(v2, "t.json5", &HashMap::new(), &options).unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

// ---- defect 8: a byte order mark ----

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let loaded = load_str(
        "\u{feff}{jobs: [{name: 'a', exec: 'x'}]}",
        "t.json5",
        &HashMap::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.config.jobs.len(), 1);
    assert_eq!(ok("\u{feff}{}").config.jobs.len(), 0);
    let source = super::Source::from_flag("\u{feff}{\"jobs\": []}");
    assert!(matches!(source, super::Source::Inline(_)));
}

// ---- defect 7: diagnostics that grow with the square of the input ----

/// 10 000 duplicate keys on one line took 10 s and 1.2 GB.
#[test]
fn ten_thousand_duplicate_keys_on_one_line_give_short_diagnostics() {
    let text = format!("{{{}}}", vec!["a: 1"; 10_000].join(", "));
    let started = Instant::now();
    let e = fail(&text);
    let shown = e.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(shown.len() < 10_000, "{} bytes of diagnostics", shown.len());
    assert!(shown.contains("and 9996 more like this"), "{shown}");
    // Excerpts are a window around the problem, marked where cut.
    let first = &e.diagnostics[0];
    assert!(first.excerpt.starts_with("{a: 1, a: 1") && first.excerpt.ends_with('\u{2026}'));
    let last = e.diagnostics.last().unwrap();
    assert!(last.column > 50_000 && last.excerpt.starts_with('\u{2026}'));
    for d in &e.diagnostics {
        assert!(d.excerpt.chars().count() < 200, "{}", d.excerpt);
    }
}

/// A one-line ContainerPilot 2 config with 5 000 services wrote 3.2 GB.
#[test]
fn thousands_of_repeated_warnings_are_summarized() {
    let services: Vec<String> = (0..5000)
        .map(|i| format!("{{name: 's{i}', port: 80, health: 'true'}}"))
        .collect();
    let text = format!("{{consul: 'c:8500', services: [{}]}}", services.join(", "));
    let loaded = ok(&text);
    let shown: String = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(shown.len() < 20_000, "{} bytes of warnings", shown.len());
    assert!(
        shown.contains("(and 4997 more like this: the same message at `services[]`)"),
        "{shown}"
    );
}

#[test]
fn at_most_a_hundred_diagnostics_then_a_count() {
    let jobs: Vec<String> = (0..500)
        .map(|i| format!("{{name: 'j{i}', exec: 'x', bogus{i}: 1}}"))
        .collect();
    let e = fail(&format!("{{jobs: [\n{}\n]}}", jobs.join(",\n")));
    assert_eq!(e.diagnostics.len(), MAX_DIAGNOSTICS + 1);
    let last = e.diagnostics.last().unwrap();
    assert_eq!(last.severity, Severity::Error);
    assert!(
        last.message
            .starts_with("400 more errors and 0 more warnings are not shown"),
        "{last}"
    );
}

#[test]
fn a_carets_line_up_under_a_cut_excerpt() {
    let text = format!("{{consul: '{}', bogus: 1}}", "x".repeat(200));
    let e = fail(&text);
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    let excerpt = lines.iter().find(|l| l.starts_with("1 | ")).unwrap();
    let carets = lines.iter().find(|l| l.contains('^')).unwrap();
    let at = carets.find('^').unwrap();
    let under: String = excerpt.chars().skip(at).take(5).collect();
    assert_eq!(under, "bogus", "{shown}");
}
