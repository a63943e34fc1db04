//! The command line: `-version`, `check` (the plan, and errors with
//! file:line:col), `-template [-out]`, and the config path from `-config` or
//! the `CONTAINERPILOT` environment variable.

use crate::common::*;
use serde_json::json;

fn version_line() -> String {
    format!("autopilot {}\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn version_in_every_spelling() {
    for args in [&["-version"][..], &["--version"], &["version"]] {
        let (code, stdout, stderr) = run_autopilot(args, &[]);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stdout, version_line(), "{args:?}");
        assert_eq!(stderr, "");
    }
}

#[test]
fn help_prints_usage() {
    let (code, stdout, _) = run_autopilot(&["-help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage:"), "{stdout}");
    assert!(stdout.contains("CONTAINERPILOT"), "{stdout}");
}

#[test]
fn check_prints_the_plan_and_runs_nothing() {
    let dir = TestDir::new();
    let marker = dir.join("ran");
    let cfg = dir.write(
        "config.json5",
        format!(
            r#"{{
  stopTimeout: "7s",
  jobs: [
    {{name: "app", exec: "touch {m}", main: true, restarts: 3}},
    {{name: "pre-stop", exec: "touch {m}", when: {{source: "app", once: "stopping"}}}},
    {{name: "hup", exec: "touch {m}", when: {{each: "SIGHUP"}}}},
  ]
}}
"#,
            m = marker.display()
        ),
    );
    let (code, stdout, stderr) = run_autopilot(&["check", "-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "will supervise 3 jobs",
        "job app (line 4)",
        "job pre-stop (line 5)",
        "job hup (line 6)",
        "once `app` emits stopping",
        "on SIGHUP",
        "within 7s",
    ] {
        assert!(
            stdout.contains(expected),
            "no {expected:?} in the plan:\n{stdout}"
        );
    }
    let app_section: Vec<&str> = stdout
        .split("\n\n")
        .find(|s| s.starts_with("job app "))
        .expect("app's section")
        .lines()
        .collect();
    assert!(
        app_section
            .iter()
            .any(|l| l.trim_start().starts_with("main")),
        "{app_section:?}"
    );
    assert!(
        app_section.iter().any(|l| l.contains("up to 3 times")),
        "{app_section:?}"
    );
    assert!(!marker.exists(), "check must not run anything");
}

#[test]
fn check_rejects_a_bad_config_with_file_line_and_column() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "bad.json5",
        "{\n  jobs: [\n    {name: \"app\", exec: \"true\", restart: 3},\n  ]\n}\n",
    );
    let (code, stdout, stderr) = run_autopilot(&["check", "-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:33", cfg.display())),
        "{stderr}"
    );
    assert!(stderr.contains("jobs[0].restart"), "{stderr}");
    assert!(stderr.contains("did you mean `restarts`?"), "{stderr}");
    assert_eq!(stdout, "", "no plan for a bad config");

    let syntax = dir.write(
        "syntax.json5",
        "{\n  jobs: [\n    {name: \"app\" exec: \"true\"},\n  ]\n}\n",
    );
    let (code, _, stderr) = run_autopilot(&["check", "-config", syntax.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", syntax.display())),
        "{stderr}"
    );
}

#[test]
fn template_renders_to_stdout_or_to_the_out_file() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "config.json5",
        "{jobs: [{name: \"{{ .APP_NAME }}\", exec: \"{{ .MISSING | default \"/bin/true\" }}\"}]}\n",
    );
    let c = cfg.to_str().unwrap();
    let envs = [("APP_NAME", "rendered-app")];
    let want = "{jobs: [{name: \"rendered-app\", exec: \"/bin/true\"}]}\n";

    let (code, stdout, stderr) = run_autopilot(&["-template", "-config", c], &envs);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, want);

    let out = dir.join("rendered.json5");
    let o = out.to_str().unwrap();
    let (code, stdout, stderr) = run_autopilot(&["-template", "-config", c, "-out", o], &envs);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "the rendering goes to the file only");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);

    // The rendered file is itself a valid config.
    let (code, stdout, stderr) = run_autopilot(&["check", "-config", o], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("job rendered-app"), "{stdout}");
}

#[test]
fn template_errors_exit_2_with_their_position() {
    let dir = TestDir::new();
    let cfg = dir.write("config.json5", "{\n  jobs: [{{ .X | nosuchfunc }}]\n}\n");
    let (code, _, stderr) = run_autopilot(&["-template", "-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:", cfg.display())),
        "{stderr}"
    );
}

#[test]
fn the_containerpilot_variable_names_the_config() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "main": true, "exec": ["sh", "-c", "exit 7"]},
    ]}));
    let c = cfg.to_str().unwrap();
    for value in [c.to_string(), format!("file://{c}")] {
        let mut ap = Autopilot::spawn_pid1(&[], &[("CONTAINERPILOT", &value)]);
        assert_eq!(
            ap.wait_exit(LONG),
            7,
            "CONTAINERPILOT={value}: {}",
            ap.output()
        );
    }
    // `check` reads it too.
    let (code, stdout, stderr) = run_autopilot(&["check"], &[("CONTAINERPILOT", c)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("job app"), "{stdout}");
}

#[test]
fn the_config_flag_wins_over_the_containerpilot_variable() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "main": true, "exec": ["sh", "-c", "exit 4"]},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[("CONTAINERPILOT", "/nonexistent.json5")]);
    assert_eq!(ap.wait_exit(LONG), 4, "{}", ap.output());
}

#[test]
fn check_validates_the_consul_settings_as_run_would() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "config.json5",
        r#"{consul: {address: "https://localhost:8501", tls: {cafile: "/nonexistent/ca.pem"}}, jobs: []}"#,
    );
    let (code, _, stderr) = run_autopilot(&["check", "-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
    let ok = dir.write("ok.json5", r#"{consul: "localhost:8500", jobs: []}"#);
    let (code, stdout, stderr) = run_autopilot(&["check", "-config", ok.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("localhost:8500"), "{stdout}");
}

#[test]
fn logging_output_goes_to_stderr_or_a_file_as_configured() {
    let dir = TestDir::new();
    let job = r#"jobs: [{name: "hello", exec: ["echo", "hi from the job"]}]"#;
    let cfg = dir.write(
        "stderr.json5",
        format!(r#"{{logging: {{output: "stderr"}}, {job}}}"#),
    );
    let (code, stdout, stderr) = run_autopilot(&["-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout");
    assert!(stderr.contains("hello: hi from the job"), "{stderr}");

    let log = dir.join("autopilot.log");
    let cfg = dir.write(
        "file.json5",
        format!(
            r#"{{logging: {{output: "{}", format: "json"}}, {job}}}"#,
            log.display()
        ),
    );
    let (code, stdout, stderr) = run_autopilot(&["-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
    let lines = file_lines(&log);
    let job_line: serde_json::Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["source"] == "hello")
        .unwrap_or_else(|| panic!("no json line from the job in {lines:?}"));
    assert_eq!(job_line["msg"], "hi from the job");
}
