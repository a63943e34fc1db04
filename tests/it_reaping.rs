//! PID 1's first duty: orphans re-parented to autopilot are reaped, so none is
//! left as a zombie; the same when autopilot is not PID 1 (it becomes a child
//! subreaper). A negative test shows the zombie check does fail when nobody
//! reaps, so the positive tests mean something (tini's test suite does the same).

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// How many orphans each test leaves behind.
const ORPHANS: usize = 100;

/// A shell snippet that leaves `ORPHANS` orphans (`sleep 2`, double-forked:
/// the subshell exits at once, so its `sleep` is re-parented), then says so.
fn spawn_orphans(marker: &str) -> String {
    format!("for i in $(seq {ORPHANS}); do (sleep 2 &); done; echo {marker}")
}

/// Live orphans (`sleep 2`) among `root`'s direct children.
fn orphans_of(root: i32) -> Vec<i32> {
    children_of(root)
        .into_iter()
        .filter(|&p| pid_alive(p) && proc_cmdline(p).as_deref() == Some("sleep 2"))
        .collect()
}

/// Waits until no `sleep 2` is alive under `root` and none of `root`'s
/// descendants is a zombie. Returns the zombies found at the deadline instead.
fn orphans_gone_without_zombies(root: i32, deadline: Duration) -> Result<(), Vec<i32>> {
    let start = std::time::Instant::now();
    loop {
        let alive = descendants_of(root)
            .into_iter()
            .any(|p| pid_alive(p) && proc_cmdline(p).as_deref() == Some("sleep 2"));
        let zombies = zombies_under(root);
        if !alive && zombies.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            return Err(zombies);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The count in autopilot's last line, `... N orphans reaped)`.
fn orphans_reaped(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.contains("autopilot exiting with code"))
        .unwrap_or_else(|| panic!("no exit line in:\n{out}"));
    let before = line.rsplit_once(" orphans reaped").expect("orphan count").0;
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

fn spawner_config(dir: &TestDir) -> std::path::PathBuf {
    let log = dir.join("spawner.log");
    let script = format!(
        "{} >> {}; exec sleep 1000",
        spawn_orphans("spawned"),
        log.display()
    );
    dir.json_config(&json!({"jobs": [
        {"name": "spawner", "exec": ["sh", "-c", script]},
    ]}))
}

fn wait_spawned(dir: &TestDir) {
    let log = dir.join("spawner.log");
    wait_until("the job to leave its orphans behind", LONG, || {
        file_lines(&log)
            .contains(&"spawned".to_string())
            .then_some(())
    });
}

fn check_reaping(mut ap: Autopilot, dir: &TestDir) {
    let root = ap.autopilot_host_pid();
    wait_spawned(dir);
    // They really are autopilot's now (else this test would prove nothing).
    let seen = wait_until("orphans re-parented to autopilot", LONG, || {
        let o = orphans_of(root);
        (!o.is_empty()).then_some(o.len())
    });
    assert!(seen > 0);
    if let Err(zombies) = orphans_gone_without_zombies(root, LONG) {
        panic!(
            "{} zombies left under autopilot: {zombies:?}\n{}",
            zombies.len(),
            ap.output()
        );
    }
    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(LONG), 0);
    let out = ap.output();
    assert!(
        orphans_reaped(&out) >= ORPHANS as u64,
        "expected at least {ORPHANS} orphans reaped:\n{out}"
    );
}

#[test]
fn orphans_are_reaped_by_autopilot_as_pid1() {
    let dir = TestDir::new();
    let cfg = spawner_config(&dir);
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    check_reaping(ap, &dir);
}

#[test]
fn orphans_are_reaped_when_autopilot_is_not_pid1() {
    // A child subreaper: orphans of its jobs come to autopilot, not to the
    // machine's init (which would also reap them, but then the check above
    // that they were re-parented to autopilot would fail).
    let dir = TestDir::new();
    let cfg = spawner_config(&dir);
    let ap = Autopilot::start_plain(&cfg, &[], &[]);
    check_reaping(ap, &dir);
}

#[test]
fn negative_a_pid1_that_never_reaps_leaves_zombies_the_check_sees() {
    // `sh` as PID 1 leaves the orphans, then becomes `sleep`, which never waits.
    let script = format!("{}; exec sleep 1000", spawn_orphans("spawned"));
    let mut p = Autopilot::program_pid1(Path::new("/bin/sh"), &["-c", &script], &[]);
    p.wait_for_output("spawned", LONG);
    let root = p.autopilot_host_pid();
    let zombies = wait_until("every orphan to become a zombie", LONG, || {
        let z = zombies_under(root);
        (z.len() == ORPHANS).then_some(z)
    });
    assert!(zombies.iter().all(|&z| ppid_of(z) == Some(root)));
    // The same check the positive tests rely on fails here.
    let check = orphans_gone_without_zombies(root, Duration::from_secs(2));
    assert_eq!(check.map_err(|z| z.len()), Err(ORPHANS));
}

#[test]
fn the_main_jobs_exit_code_survives_a_storm_of_orphans() {
    // One reaper owns waitpid(-1): orphans exiting around the main job must
    // not swallow its exit status (ContainerPilot lost it this way).
    let dir = TestDir::new();
    let done = dir.join("done");
    let d = done.display();
    let script = format!(
        "for i in $(seq {ORPHANS}); do ( (sleep 0.1; echo x >> {d}) & ); done; \
         while [ \"$(wc -l < {d} 2>/dev/null || echo 0)\" -lt {ORPHANS} ]; do sleep 0.05; done; exit 42"
    );
    let cfg = dir.json_config(&json!({"jobs": [
        {"name": "app", "main": true, "exec": ["sh", "-c", script]},
        {"name": "other", "exec": ["sleep", "1001"]},
    ]}));
    let mut ap = Autopilot::start_pid1(&cfg, &[], &[]);
    assert_eq!(ap.wait_exit(LONG), 42, "{}", ap.output());
    let out = ap.output();
    assert!(orphans_reaped(&out) >= 1, "{out}");
    assert_eq!(file_lines(&done).len(), ORPHANS);
}
