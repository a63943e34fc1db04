use super::*;
use crate::config::parse_str;

fn plan_of(text: &str) -> Plan {
    let loaded = parse_str(text, "t.json5").unwrap_or_else(|e| panic!("{e}"));
    plan(&loaded.config)
}

fn has_line(p: &Plan, expected: &str) {
    assert!(
        p.lines.iter().any(|l| l == expected),
        "missing line {expected:?} in:\n{p}"
    );
}

const SAMPLE: &str = r#"{
  consul: "localhost:8500",
  jobs: [
    { name: "setup", exec: "/bin/setup" },
    {
      name: "app",
      exec: ["/bin/app", "--serve"],
      port: 8080,
      tags: ["web"],
      restarts: "unlimited",
      stopTimeout: "5s",
      when: { source: "setup", once: "exitSuccess" },
      health: { exec: "/bin/check", interval: 5, ttl: 10 },
      main: true,
    },
    { name: "preStop", exec: "/bin/drain", when: { source: "app", once: "stopping" } },
    { name: "onChange", exec: "/bin/reload", when: { source: "watch.db", each: "changed" } },
    { name: "backup", exec: "/bin/backup", when: { interval: "5m" }, timeout: "10m" },
    { name: "reload", exec: "/bin/hup", when: { each: "SIGHUP" } },
  ],
  watches: [ { name: "db", interval: 3 } ],
}"#;

#[test]
fn describes_what_starts_each_job() {
    let p = plan_of(SAMPLE);
    has_line(&p, "autopilot will supervise 6 jobs and 1 watch.");
    has_line(&p, "job setup (line 4)");
    has_line(&p, "  starts    at startup");
    has_line(&p, "  starts    once `setup` emits exitSuccess");
    has_line(&p, "  starts    each time `watch.db` emits changed");
    has_line(&p, "  starts    every 5m (timeout 10m)");
    has_line(&p, "  starts    on SIGHUP");
}

#[test]
fn describes_restarts_health_service_and_hooks() {
    let p = plan_of(SAMPLE);
    has_line(&p, "job app (line 5)");
    has_line(&p, "  exec      /bin/app --serve");
    has_line(&p, "  restarts  unlimited, backoff 100ms doubling to 10s");
    has_line(
        &p,
        "  stop      waits 5s after `stopping` before it is killed",
    );
    has_line(
        &p,
        "  health    runs `/bin/check` every 5s, timeout 5s, ttl 10s",
    );
    has_line(&p, "  service   registers `app` on port 8080, tags web");
    has_line(
        &p,
        "  main      the container exits with this job's exit code",
    );
    has_line(&p, "  hooks     `preStop` runs once `app` emits stopping");
    has_line(&p, "  hooks     `app` runs once `setup` emits exitSuccess");
    has_line(&p, "  restarts  on every tick");
    has_line(&p, "watch db (line 21)");
    has_line(&p, "  follows   healthy instances of `db`");
    has_line(&p, "  events    as `watch.db`, at most one per 3s");
    has_line(
        &p,
        "  hooks     `onChange` runs each time `watch.db` emits changed",
    );
    assert!(p.warnings.is_empty(), "{p}");
}

#[test]
fn warns_about_an_unknown_source_with_a_suggestion() {
    let p = plan_of(
        r#"{jobs: [
              {name: "setup", exec: "a"},
              {name: "app", exec: "b", when: {source: "stup", once: "exitSuccess"}},
            ]}"#,
    );
    assert_eq!(p.warnings.len(), 1, "{p}");
    let w = &p.warnings[0];
    assert_eq!((w.level, w.line), (Level::Warning, 3));
    assert!(w.message.contains("`stup`, which is not a job"), "{w}");
    assert_eq!(w.hint.as_deref(), Some("did you mean `setup`?"));
}

#[test]
fn a_watch_named_without_its_prefix_is_explained() {
    let p = plan_of(
        r#"{jobs: [{name: "r", exec: "a", when: {source: "db", each: "changed"}}],
                watches: [{name: "db"}]}"#,
    );
    let w = p
        .warnings
        .iter()
        .find(|w| w.level == Level::Warning)
        .unwrap();
    assert!(w.hint.as_ref().unwrap().contains("`watch.db`"), "{w}");
}

#[test]
fn warns_about_events_a_source_never_emits() {
    let p = plan_of(
        r#"{jobs: [
              {name: "setup", exec: "a"},
              {name: "a", exec: "x", when: {source: "setup", once: "healthy"}},
              {name: "b", exec: "x", when: {source: "setup", each: "changed"}},
              {name: "c", exec: "x", when: {source: "setup", once: "startup"}},
              {name: "d", exec: "x", when: {source: "watch.w", once: "exitSuccess"}},
              {name: "e", exec: "x", when: {source: "e", once: "exitSuccess"}},
              {name: "f", exec: "x", when: {source: "watch.w", each: "changed"}},
            ], watches: [{name: "w"}]}"#,
    );
    let lines: Vec<(usize, &str)> = p
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(lines.len(), 5, "{p}");
    assert!(lines[0].1.contains("`setup` has no health check"), "{p}");
    assert!(lines[1].1.contains("only watches emit `changed`"), "{p}");
    assert!(lines[2].1.contains("comes from autopilot itself"), "{p}");
    assert!(lines[3].1.contains("watches only emit changed"), "{p}");
    assert!(lines[4].1.contains("waits for its own"), "{p}");
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7]
    );
}

#[test]
fn what_a_source_does_emit_is_listed_in_full() {
    let p = plan_of(
        r#"{consul: "localhost:8500", jobs: [
              {name: "a", exec: "x", when: {source: "watch.w", once: "stopped"}},
              {name: "b", exec: "x", when: {source: "global", once: "healthy"}},
              {name: "c", exec: "x", when: {source: "SIGHUP", once: "SIGUSR2"}},
              {name: "d", exec: "x", when: {source: "a", once: "SIGHUP"}},
              {name: "e", exec: "x", when: {source: "watch.w", each: "changed"}},
            ], watches: [{name: "w"}]}"#,
    );
    for line in [
        "warning: line 2: job `a` waits for `stopped` from `watch.w`, but watches only emit \
             changed, healthy and unhealthy, not `stopped`, so it never starts",
        "warning: line 3: job `b` waits for `healthy` from `global`, but `global` only emits \
             startup, shutdown, enterMaintenance and exitMaintenance, not `healthy`, so it never starts",
        "warning: line 4: job `c` waits for `SIGUSR2` from `SIGHUP`, but `SIGHUP` only emits \
             SIGHUP, not `SIGUSR2`, so it never starts",
        "warning: line 5: job `d` waits for `SIGHUP` from `a`, but `SIGHUP` comes from the \
             signal, not from a job, so it never starts",
    ] {
        assert!(
            p.to_string().lines().any(|l| l == line),
            "missing {line:?}:\n{p}"
        );
    }
    assert_eq!(p.warnings.len(), 4, "{p}");
}

#[test]
fn jobs_waiting_for_each_other_are_a_cycle() {
    let p = plan_of(
        r#"{jobs: [
  {name: "a", exec: "true", when: {source: "b", once: "exitSuccess"}},
  {name: "b", exec: "true", when: {source: "a", once: "exitSuccess"}},
  {name: "x", exec: "true", when: {source: "z", once: "healthy"}},
  {name: "y", exec: "true", when: {source: "x", once: "exitSuccess"}},
  {name: "z", exec: "true", when: {source: "y", each: "exitFailed"}},
  {name: "free", exec: "true"},
  {name: "after", exec: "true", when: {source: "a", once: "exitSuccess"}},
]}"#,
    );
    let cycles: Vec<&PlanWarning> = p
        .warnings
        .iter()
        .filter(|w| w.message.contains("wait for each other"))
        .collect();
    assert_eq!(cycles.len(), 2, "{p}");
    assert_eq!(cycles[0].line, 2);
    assert_eq!(
        cycles[0].message,
        "jobs `a` and `b` wait for each other, so none of them ever starts: \
             `a` waits for `b`'s `exitSuccess`, `b` waits for `a`'s `exitSuccess`"
    );
    assert_eq!(cycles[1].line, 4);
    assert!(
        cycles[1]
            .message
            .starts_with("jobs `x`, `z` and `y` wait for each other in a cycle"),
        "{}",
        cycles[1].message
    );
    assert!(
        cycles[1]
            .message
            .contains("`z` waits for `y`'s `exitFailed`"),
        "{}",
        cycles[1].message
    );
}

#[test]
fn a_warning_renders_like_a_config_error() {
    let text = "{jobs: [\n  {name: \"a\", exec: \"true\", when: {source: \"a\", once: \"exitSuccess\"}},\n]}";
    let p = plan_of(text);
    let d = p.warnings[0].diagnostic(text, "c.json5").to_string();
    assert!(d.starts_with("warning:"), "{d}");
    assert!(d.contains("c.json5:2:3"), "{d}");
    assert!(d.contains("{name: \"a\""), "{d}");
}

#[test]
fn a_watch_nobody_listens_to_is_info() {
    let p = plan_of(r#"{jobs: [{name: "a", exec: "x"}], watches: [{name: "lonely"}]}"#);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].level, Level::Info);
    assert_eq!(
        p.warnings[0].to_string().lines().next().unwrap(),
        "info: line 1: no job reacts to watch `lonely`"
    );
}

#[test]
fn a_registered_job_without_consul_is_flagged() {
    let p = plan_of(
        r#"{jobs: [{name: "web", exec: "x", port: 80, health: {exec: "c", interval: 1, ttl: 3}}]}"#,
    );
    assert!(p.warnings[0].message.contains("no `consul` section"), "{p}");
    has_line(&p, "  consul    none: no service registration, no watches");
}

#[test]
fn the_plan_labels_hook_jobs_and_exit_on_failure() {
    let p = plan_of(
        r#"{jobs: [
                {name: "app", exec: "/bin/app", hooks: {preStart: "/bin/prep", preStop: "/bin/drain"}},
                {name: "setup", exec: "/bin/setup", exitOnFailure: true},
              ]}"#,
    );
    let plan = p.to_string();
    for line in [
        "job app.preStart (line 2)",
        "  hook      preStart of `app`: `app` starts once it succeeds; \
             if it fails, autopilot exits with its exit code",
        "  hook      preStop of `app`: `app` waits for it before its SIGTERM",
        "  hooks     `app.preStop` runs once `app` emits stopping",
        "  failure   if it fails, autopilot shuts down and exits with its exit code",
    ] {
        assert!(plan.lines().any(|l| l == line), "missing {line:?}:\n{plan}");
    }
    // The preStart's own failure rule is in its `hook` line, not repeated.
    assert_eq!(plan.matches("  failure ").count(), 1, "{plan}");
}

#[test]
fn a_job_without_exec_says_what_it_does() {
    let p = plan_of(
        r#"{consul: "localhost:8500", telemetry: {port: 9090}, jobs: [
              {name: "web", port: 8080, health: {http: "http://127.0.0.1:8080/health", interval: 5, ttl: 15}},
              {name: "db", port: 5432, health: {tcp: "127.0.0.1:5432", interval: 5, ttl: 15}},
              {name: "probe", health: {tcp: "127.0.0.1:6379", interval: 5, ttl: 15}},
            ]}"#,
    );
    has_line(
        &p,
        "  probes    GET /live and /ready on port 9090 (for a livenessProbe and a readinessProbe)",
    );
    has_line(&p, "  exec      none: no process of its own");
    has_line(
        &p,
        "  does      advertises `web` without a process: registered when it starts, passing \
             or critical as its health check says, deregistered at shutdown",
    );
    has_line(
        &p,
        "  health    GET http://127.0.0.1:8080/health expecting 200-299 every 5s, timeout 5s, ttl 15s",
    );
    has_line(
        &p,
        "  health    connects to 127.0.0.1:5432 every 5s, timeout 5s, ttl 15s",
    );
    has_line(
        &p,
        "  does      runs its health check without a process: publishes healthy and unhealthy",
    );
    assert!(
        !p.lines.iter().any(|l| l.starts_with("  restarts")),
        "no restarts without a process:\n{p}"
    );
    assert!(p.warnings.is_empty(), "{p}");
}

#[test]
fn settings_without_effect_on_a_job_without_exec_are_flagged() {
    let p = plan_of(
        r#"{jobs: [
              {name: "idle"},
              {name: "ticker", when: {interval: "5s"}},
              {name: "web", restarts: 3, timeout: "10s", main: true},
            ]}"#,
    );
    let found: Vec<(usize, Level, &str)> = p
        .warnings
        .iter()
        .map(|w| (w.line, w.level, w.message.as_str()))
        .collect();
    let on = |line: usize, part: &str| {
        found
            .iter()
            .find(|f| f.0 == line && f.2.contains(part))
            .map(|f| f.1)
            .unwrap_or_else(|| panic!("no finding {part:?} on line {line}:\n{p}"))
    };
    for line in [2, 3, 4] {
        assert_eq!(on(line, "has no `exec`, `port` or `health`"), Level::Info);
    }
    assert_eq!(on(3, "nothing runs on the ticks"), Level::Warning);
    assert_eq!(on(4, "no process to restart"), Level::Warning);
    assert_eq!(on(4, "no process to time out"), Level::Warning);
    assert_eq!(on(4, "it never exits"), Level::Info);
    assert_eq!(found.len(), 7, "{p}");
}

#[test]
fn leadership_is_shown_and_needs_consul() {
    let job = r#"{name: "db", exec: "x", port: 3306, health: {exec: "c", interval: 1, ttl: 3},
                      leader: {key: "service/db/primary", ttl: 20, lockDelay: 2}}"#;
    let p = plan_of(&format!("{{consul: 'c:8500', jobs: [{job}]}}"));
    has_line(
        &p,
        "  leader    competes for Consul key `service/db/primary` while healthy (session ttl \
             20s, lock-delay 2s): publishes elected and deposed, sets CONTAINERPILOT_DB_LEADER",
    );
    assert!(p.warnings.is_empty(), "{p}");
    let p = plan_of(&format!("{{jobs: [{job}]}}"));
    assert!(
        p.warnings.iter().any(|w| w
            .message
            .contains("has `leader` but there is no `consul` section")),
        "{p}"
    );
}

#[test]
fn signals_and_globals_read_naturally() {
    let p = plan_of(
        r#"{jobs: [
              {name: "a", exec: "x", when: {once: "SIGUSR2"}},
              {name: "b", exec: "x", when: {source: "global", once: "shutdown", timeout: "30s"}},
            ]}"#,
    );
    has_line(&p, "  starts    on the first SIGUSR2");
    has_line(&p, "  starts    at shutdown, giving up after 30s");
    assert!(p.warnings.is_empty(), "{p}");
}
