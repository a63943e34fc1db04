//! Migrating from ContainerPilot: where a config leans on a ContainerPilot
//! quirk autopilot does not copy, `autopilot check` and the startup log warn
//! with file:line, the source line and the fix (src/config/quirks.rs,
//! docs/migrating.md).

use crate::common::*;

/// A config with one of each: a string command with shell syntax (line 4), a
/// template read of a variable whose value has `=` (line 5), and
/// `each: "unhealthy"` (line 6).
const CONFIG: &str = r#"{
  jobs: [
    {name: "app", main: true, exec: ["sh", "-c", "echo app-up; exec sleep 100"],
     health: {exec: "sh -c 'test -d /tmp'", interval: 1, ttl: 5}},
    {name: "agent", exec: ["echo", "-encrypt={{ .ENCRYPT_KEY }}=="]},
    {name: "fix", exec: "true", when: {source: "app", each: "unhealthy"}},
  ],
}
"#;

/// The three warnings, as both `check` and the startup log print them.
fn assert_quirk_warnings(out: &str, cfg: &str) {
    for expected in [
        // The string command: where, what it runs, and the array meant.
        "warning: jobs[0].health.exec: this command is one string, which autopilot splits on spaces",
        r#"it runs ["sh", "-c", "'test", "-d", "/tmp'"]"#,
        &format!("--> {cfg}:4:21"),
        r#"4 |      health: {exec: "sh -c 'test -d /tmp'", interval: 1, ttl: 5}},"#,
        r#"= help: write it as an array, one element per word: `["sh", "-c", "test -d /tmp"]`"#,
        // The `=` value: both renderings.
        "warning: `.ENCRYPT_KEY` renders differently than under ContainerPilot",
        &format!("--> {cfg}:5:49"),
        r#"5 |     {name: "agent", exec: ["echo", "-encrypt={{ .ENCRYPT_KEY }}=="]},"#,
        r#"autopilot renders `{name: "agent", exec: ["echo", "-encrypt=a2V5===="]},` where ContainerPilot rendered `{name: "agent", exec: ["echo", "-encrypt=a2V5=="]},`"#,
        // `each: "unhealthy"`.
        "warning: jobs[2].when.each: this job runs each time `app` turns unhealthy",
        &format!("--> {cfg}:6:61"),
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn check_warns_where_a_config_leans_on_containerpilot_quirks() {
    let dir = TestDir::new();
    let cfg = dir.write("containerpilot.json5", CONFIG);
    let cfg = cfg.to_str().unwrap();
    let (code, stdout, stderr) =
        run_autopilot(&["check", "-config", cfg], &[("ENCRYPT_KEY", "a2V5==")]);
    assert_eq!(code, 0, "warnings do not fail `check`:\n{stderr}");
    assert!(stdout.contains("will supervise 3 jobs"), "{stdout}");
    assert_quirk_warnings(&stderr, cfg);
    // Without `=` in the value there is nothing to say about it.
    let (_, _, stderr) = run_autopilot(&["check", "-config", cfg], &[("ENCRYPT_KEY", "a2V5")]);
    assert!(!stderr.contains("ENCRYPT_KEY"), "{stderr}");
}

#[test]
fn the_quirk_warnings_are_logged_at_startup() {
    let dir = TestDir::new();
    let cfg = dir.write("containerpilot.json5", CONFIG);
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[("ENCRYPT_KEY", "a2V5==")]);
    // Logged before anything starts, and the jobs run all the same.
    let out = ap.wait_for_output("app-up", LONG);
    assert_quirk_warnings(&out, cfg.to_str().unwrap());
    let warned_at = out.find("renders differently").unwrap();
    assert!(warned_at < out.find("app-up").unwrap(), "{out}");
    ap.signal(libc::SIGTERM);
    ap.wait_exit(LONG);
}
