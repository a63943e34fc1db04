use std::collections::HashMap;

use super::*;
use crate::config::error::Severity;
use crate::config::load_str;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn warnings_of(text: &str, vars: &[(&str, &str)]) -> Vec<Diagnostic> {
    let loaded = load_str(text, "/etc/cp.json5", &env(vars))
        .unwrap_or_else(|e| panic!("does not load:\n{e}\n{text}"));
    loaded.warnings
}

// --- environment values containing `=` ---

#[test]
fn containerpilot_kept_a_value_up_to_its_first_equals_sign() {
    assert_eq!(containerpilot_value("c2VjcmV0=="), "c2VjcmV0");
    assert_eq!(containerpilot_value("a=b=c"), "a");
    assert_eq!(containerpilot_value("=x"), "");
    assert_eq!(containerpilot_value("plain"), "plain");
    let cut = containerpilot_env(&env(&[("K", "ab=="), ("P", "x")]));
    assert_eq!(cut["K"], "ab");
    assert_eq!(cut["P"], "x");
}

/// The corpus case (kieranajp/colossal): `==` appended to make up for the cut.
const ENCRYPT: &str = "{\n  jobs: [{\n    name: \"consul\",\n    exec: [\"consul\", \"agent\", \"-encrypt={{ .CONSUL_ENCRYPT }}==\"],\n  }],\n}\n";

#[test]
fn a_value_with_equals_signs_read_by_the_template_is_reported_with_both_renderings() {
    let vars = env(&[("CONSUL_ENCRYPT", "c2VjcmV0a2V5==")]);
    let warnings = env_value_warnings(ENCRYPT, "/etc/cp.json5", &vars);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!((w.line, w.column), (4, 44), "{w}");
    assert_eq!(w.caret_len, ".CONSUL_ENCRYPT".len());
    assert!(w.message.contains("`.CONSUL_ENCRYPT`"), "{w}");
    let hint = w.hint.as_deref().unwrap();
    assert!(
        hint.contains(
            r#"autopilot renders `exec: ["consul", "agent", "-encrypt=c2VjcmV0a2V5===="],`"#
        ),
        "{hint}"
    );
    assert!(
        hint.contains(
            r#"ContainerPilot rendered `exec: ["consul", "agent", "-encrypt=c2VjcmV0a2V5=="],`"#
        ),
        "{hint}"
    );
    let shown = w.to_string();
    assert!(
        shown.starts_with("warning: `.CONSUL_ENCRYPT` renders differently"),
        "{shown}"
    );
    assert!(shown.contains("--> /etc/cp.json5:4:44"), "{shown}");
}

#[test]
fn loading_a_config_carries_the_equals_sign_warning() {
    let warnings = warnings_of(ENCRYPT, &[("CONSUL_ENCRYPT", "a2V5==")]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, 4);
    assert_eq!(warnings[0].file, "/etc/cp.json5");
}

#[test]
fn no_equals_sign_warning_where_containerpilot_rendered_the_same() {
    let quiet = |text: &str, vars: &[(&str, &str)]| {
        let w = env_value_warnings(text, "f", &env(vars));
        assert!(w.is_empty(), "{text}: {w:?}");
    };
    // No `=` in the value.
    quiet(ENCRYPT, &[("CONSUL_ENCRYPT", "c2VjcmV0")]);
    // `env "NAME"` read the real environment in ContainerPilot too.
    quiet(
        "{a: \"{{ env \"CONSUL_ENCRYPT\" }}\"}",
        &[("CONSUL_ENCRYPT", "k==")],
    );
    // Not read by the template at all.
    quiet("{a: \"{{ .OTHER }}\"}", &[("LS_COLORS", "di=01;34")]);
    // Read, but the cut value renders the same (`if` sees a non-empty string).
    quiet("{a: \"{{ if .X }}on{{ end }}\"}", &[("X", "a=b")]);
    // A longer name that starts with the variable's name is another variable.
    quiet("{a: \"{{ .KEY_B }}\"}", &[("KEY", "x=y"), ("KEY_B", "z")]);
    // Outside an action, `.NAME` is just text.
    quiet("{a: \"see .KEY\"}", &[("KEY", "x=y")]);
}

#[test]
fn each_variable_gets_its_own_warning_in_file_order() {
    let text = "{\n  a: \"{{ .B }}\",\n  b: \"{{ .A }}\",\n}\n";
    let warnings = env_value_warnings(text, "f", &env(&[("A", "1=2"), ("B", "3=4")]));
    let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [2, 3]);
    assert!(warnings[0].message.contains("`.B`"));
}

// --- commands written as one string ---

fn advice(text: &str) -> (String, String) {
    exec_string_advice(text).unwrap_or_else(|| panic!("no warning for {text:?}"))
}

#[test]
fn plain_command_strings_get_no_warning() {
    for text in [
        "/bin/app",
        "/usr/local/bin/app --port=8080 -v",
        "consul agent -config-dir=/etc/consul",
        "curl -fs http://localhost:8080/health?x=1",
        "/bin/app --separator=\\t --pattern=a\\d",
        "curl -fs http://localhost/health?a=1&b=2",
        "/bin/app --list=a;b --price=$5 --pid=$$",
    ] {
        assert_eq!(exec_string_advice(text), None, "{text}");
    }
}

#[test]
fn quoted_words_are_shown_as_the_array_that_was_meant() {
    let (message, hint) = advice("/bin/app --name \"my app\" -x");
    assert!(
        message.contains("the program gets the quotes as literal characters"),
        "{message}"
    );
    assert!(
        message.contains(r#"it runs ["/bin/app", "--name", "\"my", "app\"", "-x"]"#),
        "{message}"
    );
    assert_eq!(
        hint,
        r#"write it as an array, one element per word: `["/bin/app", "--name", "my app", "-x"]`"#
    );
}

#[test]
fn sh_dash_c_with_a_quoted_script_becomes_its_three_words() {
    let (_, hint) = advice("/bin/sh -c 'curl -fs localhost:80 | grep -q ok'");
    assert!(
        hint.ends_with(r#"`["/bin/sh", "-c", "curl -fs localhost:80 | grep -q ok"]`"#),
        "{hint}"
    );
    let (_, hint) = advice("bash -c \"echo $HOME && exit 0\"");
    assert!(
        hint.ends_with(r#"`["bash", "-c", "echo $HOME && exit 0"]`"#),
        "{hint}"
    );
}

#[test]
fn sh_dash_c_followed_by_more_shell_syntax_is_given_to_a_shell_whole() {
    let (_, hint) = advice("sh -c 'cat /tmp/x' | grep y");
    assert!(
        hint.ends_with(r#"`["sh", "-c", "sh -c 'cat /tmp/x' | grep y"]`"#),
        "{hint}"
    );
    // A shell as the program, but no `-c`: just words.
    let (_, hint) = advice("sh /bin/script 'an arg'");
    assert_eq!(
        hint,
        r#"write it as an array, one element per word: `["sh", "/bin/script", "an arg"]`"#
    );
}

#[test]
fn shell_syntax_is_given_to_a_shell() {
    for (text, what) in [
        ("pgrep nginx | wc -l", "`|`"),
        ("/bin/setup && /bin/app", "`&&`"),
        ("/bin/a || /bin/b", "`||`"),
        ("/bin/a; /bin/b", "`;`"),
        ("/bin/app > /var/log/app.log 2>&1", "the redirection"),
        ("/bin/app < /etc/input", "the redirection"),
        ("/bin/app --home $HOME", "`$` or a backquote"),
        ("/bin/app --home \"${HOME}/x\"", "`$` or a backquote"),
        ("/bin/app `hostname`", "`$` or a backquote"),
        ("/bin/app &", "`&`"),
        ("/bin/a& /bin/b", "`&`"),
        ("/bin/a;/bin/b; /bin/c", "`;`"),
        ("/bin/app $(hostname)", "`$` or a backquote"),
    ] {
        let (message, hint) = advice(text);
        assert!(message.contains(what), "{text}: {message}");
        let expected = format!(
            "to have a shell read it, run it through one: `{}`",
            serde_json::json!(["sh", "-c", text])
                .to_string()
                .replace("\",\"", "\", \"")
        );
        assert_eq!(hint, expected, "{text}");
    }
}

#[test]
fn unbalanced_quotes_are_given_to_a_shell_whole() {
    let (message, hint) = advice("/bin/app 'oops");
    assert!(message.contains("the quotes"), "{message}");
    assert!(hint.contains(r#"["sh", "-c", "/bin/app 'oops"]"#), "{hint}");
}

#[test]
fn every_kind_of_string_command_is_checked_where_it_is_written() {
    let text = r#"{
  jobs: [
    {
      name: "app",
      exec: "/bin/app | tee /tmp/log",
      health: {exec: "sh -c 'test -f /tmp/ok'", interval: 5, ttl: 10},
      hooks: {preStop: "/bin/drain && true"},
    },
    {name: "fine", exec: "/bin/fine --ok"},
  ],
  watches: [{name: "db", interval: 5, onChange: "/bin/reload $DB"}],
}"#;
    let warnings = warnings_of(text, &[]);
    let found: Vec<(String, usize, usize)> = warnings
        .iter()
        .map(|w| (w.path.clone(), w.line, w.column))
        .collect();
    assert_eq!(
        found,
        [
            ("jobs[0].exec".to_string(), 5, 13),
            ("jobs[0].health.exec".to_string(), 6, 22),
            ("jobs[0].hooks.preStop".to_string(), 7, 24),
            ("watches[0].onChange".to_string(), 11, 49),
        ],
        "{warnings:#?}"
    );
    assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
}

#[test]
fn containerpilot_2_commands_are_checked_too() {
    let text = r#"{
  consul: "localhost:8500",
  preStart: "/bin/setup > /tmp/setup.log",
  services: [{name: "web", port: 80, health: "curl -fs localhost | grep ok", poll: 5, ttl: 10}],
  coprocesses: [{command: "/bin/helper 'a b'"}],
}"#;
    let warnings = warnings_of(text, &[]);
    let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [3, 4, 5], "{warnings:#?}");
}

// --- `each: "healthy"` / `each: "unhealthy"` ---

#[test]
fn each_healthy_from_a_watch_or_a_job_is_reported() {
    let text = r#"{
  consul: "localhost:8500",
  jobs: [
    {name: "db", exec: "/bin/db", port: 5432, health: {exec: "/bin/check", interval: 5, ttl: 10}},
    {name: "on-db", exec: "/bin/x", when: {source: "watch.db-primary", each: "healthy"}},
    {name: "fix", exec: "/bin/fix", when: {source: "db", each: "unhealthy"}},
    {name: "once", exec: "/bin/once", when: {source: "db", once: "healthy"}},
    {name: "changed", exec: "/bin/y", when: {source: "watch.db-primary", each: "changed"}},
  ],
  watches: [{name: "db-primary", interval: 5}],
}"#;
    let warnings = warnings_of(text, &[]);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    let (watch, job) = (&warnings[0], &warnings[1]);
    assert_eq!((watch.path.as_str(), watch.line), ("jobs[1].when.each", 5));
    assert!(watch.message.contains("with every change"), "{watch}");
    assert!(
        watch
            .hint
            .as_deref()
            .unwrap()
            .contains("CONTAINERPILOT_WATCH_DB_PRIMARY_COUNT"),
        "{watch}"
    );
    assert_eq!((job.path.as_str(), job.line), ("jobs[2].when.each", 6));
    assert!(
        job.message.contains("after every failing health check"),
        "{job}"
    );
    assert!(job.to_string().contains("--> /etc/cp.json5:6:"), "{job}");
}

// --- no input panics (these run inside PID 1) ---

#[test]
fn odd_inputs_never_panic() {
    let pieces = [
        "",
        "{{",
        "}}",
        "{{ .K",
        ".K }}",
        "{{.K}}{{",
        "{{}}",
        "{{{ .K }}}",
        "'",
        "\"",
        "\\",
        "\\\"",
        "a\\",
        "|",
        "&&&",
        ">>",
        ">&",
        "$",
        "`",
        "µ",
        "\u{2028}",
        "\t",
        "  ",
        "sh -c",
        "{{ if .K }}",
        "{{ end }}",
        "=",
    ];
    let vars = env(&[("K", "a=b"), ("µ", "=")]);
    for a in pieces {
        for b in pieces {
            for c in pieces {
                let text = format!("{a}{b}{c}");
                let _ = env_value_warnings(&text, "f", &vars);
                let _ = exec_string_advice(&text);
            }
        }
    }
}

#[test]
fn event_warnings_read_the_parsed_tree() {
    let text = "{jobs: [{name: \"a\", when: {source: \"watch.x\", each: \"unhealthy\"}}]}";
    let root = crate::config::source::parse(text, "f").unwrap();
    let mut rep = Reporter::new(text, "f");
    event_warnings(&root, &mut rep);
    let found = rep.into_diagnostics();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "jobs[0].when.each");
    assert_eq!(found[0].column, text.find("\"unhealthy\"").unwrap() + 1);
    assert!(found[0].message.contains("turns unhealthy"), "{}", found[0]);
    // Not a job list, or no `each`: nothing, and no panic.
    for quiet in [
        "{jobs: 3}",
        "{jobs: [1, {when: 2}]}",
        "[]",
        "{jobs: [{when: {each: 5}}]}",
    ] {
        let root = crate::config::source::parse(quiet, "f").unwrap();
        let mut rep = Reporter::new(quiet, "f");
        event_warnings(&root, &mut rep);
        assert!(rep.into_diagnostics().is_empty(), "{quiet}");
    }
}
