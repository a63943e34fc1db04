//! Leader election (`leader` on a job) against a real Consul agent: two and
//! three autopilot instances compete for one key.
//!
//! "Exactly one leader at any time" is checked continuously: a [`Monitor`]
//! thread polls every instance's status (control socket) in a tight loop and
//! records each role change with the time autopilot made it (`sinceMs`,
//! wall clock, same host), so leadership intervals can be rebuilt and checked
//! for overlap, even for hand-overs that fall between two polls. The hooks
//! each instance runs on `elected`/`deposed` append to a shared file too,
//! which checks what hooks see (`CONTAINERPILOT_DB_LEADER`) and their order.
//!
//! Every instance runs as PID 1 of its own PID namespace, so SIGKILL takes
//! its jobs with it, as in a container.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KEY: &str = "service/db/leader";

/// Election settings of a test.
#[derive(Clone, Copy)]
struct Timing {
    /// Session TTL, seconds (Consul's minimum is 10).
    ttl: u64,
    /// Lock-delay, seconds.
    lock_delay: u64,
    /// TTL of the job's own health check in Consul, seconds.
    health_ttl: u64,
}

const QUICK: Timing = Timing {
    ttl: 10,
    lock_delay: 1,
    health_ttl: 5,
};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The config every instance runs: `db` competes for [`KEY`] while its
/// health check passes (it fails while `sick-$HOSTNAME` exists); hooks log
/// `elected`/`deposed` and tag the leader `primary`.
fn db_config(dir: &TestDir, consul: &Consul, t: Timing) -> PathBuf {
    let d = dir.path().display();
    let bin = autopilot_bin();
    let bin = bin.display();
    let hook = |what: &str, tags: &str| {
        json!({
            "name": format!("on-{what}"),
            "exec": ["sh", "-c", format!(
                "echo \"$(date +%s%3N) $HOSTNAME {what} $CONTAINERPILOT_DB_LEADER\" >> {d}/events; \
                 {bin} tags db {tags} primary"
            )],
            "when": {"source": "db", "each": what},
        })
    };
    dir.json_config(&json!({
        "consul": consul.addr(),
        "jobs": [
            {
                "name": "db",
                "exec": "sleep 1000",
                "port": 5432,
                "interfaces": ["lo"],
                "health": {
                    "exec": ["sh", "-c", format!("test ! -f {d}/sick-$HOSTNAME")],
                    "interval": "500ms",
                    "ttl": t.health_ttl,
                },
                "leader": {"key": KEY, "ttl": t.ttl, "lockDelay": t.lock_delay},
            },
            hook("elected", "add"),
            hook("deposed", "remove"),
        ],
    }))
}

/// One autopilot instance, `HOSTNAME=host`, with its own control socket.
struct Member {
    host: String,
    socket: PathBuf,
    ap: Autopilot,
}

fn start_member(cfg: &Path, dir: &TestDir, host: &str) -> Member {
    let socket = dir.join(&format!("{host}.sock"));
    let ap = Autopilot::start_pid1(
        cfg,
        &[],
        &[
            ("HOSTNAME", host),
            (CONTROL_SOCKET_ENV, socket.to_str().unwrap()),
        ],
    );
    Member {
        host: host.to_string(),
        socket,
        ap,
    }
}

/// The `leader` part of job `db` in an instance's status, if it answers.
fn leader_status(socket: &Path) -> Option<Value> {
    let reply =
        http_request_unix(socket, "GET", "/v3/status", None, Duration::from_secs(2)).ok()?;
    let status: Value = serde_json::from_str(&reply.body).ok()?;
    status["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["name"] == "db")?
        .get("leader")
        .cloned()
}

fn role(member: &Member) -> Option<String> {
    leader_status(&member.socket).and_then(|l| l["role"].as_str().map(String::from))
}

/// Waits until exactly one of `members` leads and returns its index.
fn wait_for_one_leader(members: &[Member], deadline: Duration, not: Option<usize>) -> usize {
    wait_until("exactly one leader", deadline, || {
        let leaders: Vec<usize> = members
            .iter()
            .enumerate()
            .filter(|(i, m)| Some(*i) != not && role(m).as_deref() == Some("leader"))
            .map(|(i, _)| i)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    })
}

/// Records each instance's role if it changed since the last sample.
fn sample(targets: &[(String, PathBuf)], seen: &Seen) {
    for (host, socket) in targets {
        let Some(l) = leader_status(socket) else {
            continue;
        };
        let (Some(role), Some(since)) = (l["role"].as_str(), l["sinceMs"].as_u64()) else {
            continue;
        };
        let mut seen = seen.lock().unwrap();
        let list = seen.entry(host.clone()).or_default();
        if list.last() != Some(&(role.to_string(), since)) {
            list.push((role.to_string(), since));
        }
    }
}

/// A leadership interval of one instance, in wall-clock milliseconds.
#[derive(Debug, Clone)]
struct Interval {
    host: String,
    start: u64,
    /// `None`: still leading (at the end of the run).
    end: Option<u64>,
}

/// By host: role changes as `(role, sinceMs)`, in the order seen.
type Seen = Arc<Mutex<BTreeMap<String, Vec<(String, u64)>>>>;

/// Polls every instance's status continuously and rebuilds who led when.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Seen,
    /// By host: when it stopped existing (killed or exited).
    ended: Arc<Mutex<BTreeMap<String, u64>>>,
    polls: Arc<Mutex<u64>>,
}

impl Monitor {
    fn start(members: &[Member]) -> Monitor {
        let targets: Vec<(String, PathBuf)> = members
            .iter()
            .map(|m| (m.host.clone(), m.socket.clone()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::default();
        let polls = Arc::new(Mutex::new(0u64));
        let thread = {
            let (stop, seen, polls) = (stop.clone(), seen.clone(), polls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sample(&targets, &seen);
                    *polls.lock().unwrap() += 1;
                    // A sampling pace, not a wait: transitions carry their
                    // own timestamps, so a poll that comes late loses nothing.
                    std::thread::sleep(Duration::from_millis(20));
                }
                // One last round, so the state the test saw last is in.
                sample(&targets, &seen);
            })
        };
        Monitor {
            stop,
            thread: Some(thread),
            seen,
            ended: Arc::default(),
            polls,
        }
    }

    /// `host` stopped existing at `at_ms` (whatever it was then ends there).
    fn ended(&self, host: &str, at_ms: u64) {
        self.ended.lock().unwrap().insert(host.to_string(), at_ms);
    }

    /// Who led when, from the role changes seen so far.
    fn intervals(&self) -> Vec<Interval> {
        let seen = self.seen.lock().unwrap().clone();
        let ended = self.ended.lock().unwrap().clone();
        let mut out = Vec::new();
        for (host, changes) in seen {
            let mut open: Option<u64> = None;
            for (role, since) in changes {
                match (role == "leader", open) {
                    (true, None) => open = Some(since),
                    (true, Some(start)) if start != since => {
                        // Left and came back between two polls: count the
                        // whole span as leading (the strictest reading).
                        open = Some(start);
                    }
                    (false, Some(start)) => {
                        out.push(Interval {
                            host: host.clone(),
                            start,
                            end: Some(since),
                        });
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some(start) = open {
                out.push(Interval {
                    host: host.clone(),
                    start,
                    end: ended.get(&host).copied(),
                });
            }
        }
        out.sort_by_key(|i| i.start);
        out
    }

    /// Panics if two instances ever led at the same time.
    fn assert_never_two_leaders(&self) {
        let intervals = self.intervals();
        let polls = *self.polls.lock().unwrap();
        assert!(polls > 20, "the monitor barely ran ({polls} rounds)");
        for (i, a) in intervals.iter().enumerate() {
            for b in &intervals[i + 1..] {
                if a.host == b.host {
                    continue;
                }
                let a_end = a.end.unwrap_or(u64::MAX);
                let b_end = b.end.unwrap_or(u64::MAX);
                assert!(
                    a_end <= b.start || b_end <= a.start,
                    "two leaders at once: {a:?} and {b:?}\nall intervals: {intervals:#?}"
                );
            }
        }
    }

    /// The start of `host`'s last leadership.
    fn elected_at(&self, host: &str) -> Option<u64> {
        self.intervals()
            .into_iter()
            .filter(|i| i.host == host)
            .map(|i| i.start)
            .max()
    }

    fn finish(mut self) -> Monitor {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the monitor thread panicked");
        }
        self
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The `events` lines the hooks wrote: `(ms, host, event, LEADER value)`.
fn hook_events(dir: &TestDir) -> Vec<(u64, String, String, String)> {
    let mut events: Vec<(u64, String, String, String)> = file_lines(&dir.join("events"))
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.parse().ok()?,
                w.next()?.to_string(),
                w.next()?.to_string(),
                w.next().unwrap_or("").to_string(),
            ))
        })
        .collect();
    events.sort();
    events
}

/// What hooks saw: `elected` with `LEADER=true`, `deposed` with `false`,
/// alternating per host, and never two `elected` hooks outstanding at once.
/// `ended` lists instances that stopped (no `deposed` hook runs during a
/// shutdown) and when.
fn assert_hooks_agree(dir: &TestDir, ended: &[(&str, u64)]) {
    let mut events = hook_events(dir);
    for (host, at) in ended {
        events.push((*at, host.to_string(), "ended".into(), String::new()));
    }
    events.sort();
    let mut leading: BTreeMap<String, bool> = BTreeMap::new();
    for (ms, host, event, env) in &events {
        let was = leading.get(host).copied().unwrap_or(false);
        match event.as_str() {
            "elected" => {
                assert_eq!(
                    env, "true",
                    "elected hook saw LEADER={env} at {ms}: {events:?}"
                );
                assert!(!was, "{host} elected twice without deposed: {events:?}");
                let others: Vec<&String> = leading
                    .iter()
                    .filter(|(h, l)| **l && *h != host)
                    .map(|(h, _)| h)
                    .collect();
                assert!(
                    others.is_empty(),
                    "{host}'s elected hook ran at {ms} while {others:?} had not been deposed: {events:?}"
                );
                leading.insert(host.clone(), true);
            }
            "deposed" => {
                assert_eq!(
                    env, "false",
                    "deposed hook saw LEADER={env} at {ms}: {events:?}"
                );
                assert!(was, "{host} deposed without elected: {events:?}");
                leading.insert(host.clone(), false);
            }
            "ended" => {
                leading.insert(host.clone(), false);
            }
            other => panic!("unexpected hook line {other}: {events:?}"),
        }
    }
}

/// IDs of `db` instances tagged `primary` in the catalog's health view.
fn primaries(consul: &Consul) -> Vec<String> {
    match consul.get_json("/v1/health/service/db?tag=primary") {
        Value::Array(list) => list
            .iter()
            .filter_map(|e| e["Service"]["ID"].as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn two_instances_one_leader_and_a_failing_check_hands_leadership_over() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = db_config(&dir, &consul, QUICK);
    let members = vec![
        start_member(&cfg, &dir, "n1"),
        start_member(&cfg, &dir, "n2"),
    ];
    let monitor = Monitor::start(&members);
    let first = wait_for_one_leader(&members, Duration::from_secs(20), None);
    let leader = &members[first];
    let other = 1 - first;

    // The key names the leader; `lock holder` and `kv get` read it.
    let (code, holder, err) = run_autopilot(
        &["lock", "holder", KEY],
        &[("CONSUL_HTTP_ADDR", &consul.addr())],
    );
    assert_eq!(
        (code, holder.trim()),
        (0, format!("db-{}", leader.host).as_str()),
        "{err}"
    );
    let (code, value, _) =
        run_autopilot(&["kv", "get", KEY], &[("CONSUL_HTTP_ADDR", &consul.addr())]);
    assert_eq!(code, 0);
    let value: Value = serde_json::from_str(value.trim()).unwrap();
    assert_eq!(
        value,
        json!({"name": "db", "id": format!("db-{}", leader.host), "address": "127.0.0.1", "port": 5432})
    );
    // The elected hook tagged the leader `primary` (a live tag change).
    wait_until("the leader tagged primary", DEADLINE, || {
        (primaries(&consul) == [format!("db-{}", leader.host)]).then_some(())
    });
    let status = leader_status(&members[other].socket).unwrap();
    assert_eq!(status["role"], "candidate");
    assert_eq!(status["holder"], format!("db-{}", leader.host));
    assert_eq!(status["key"], KEY);

    // The leader's check fails: it is deposed at once, the other is
    // elected within ttl + lockDelay.
    let sick = dir.write(&format!("sick-{}", leader.host), "");
    let t0 = Instant::now();
    let next = wait_for_one_leader(
        &members,
        Duration::from_secs(QUICK.ttl + QUICK.lock_delay + 10),
        Some(first),
    );
    let took = t0.elapsed();
    assert_eq!(next, other);
    assert!(
        took <= Duration::from_secs(QUICK.ttl + QUICK.lock_delay),
        "hand-over took {took:?}"
    );
    wait_until(
        "the new leader tagged primary, the old one not",
        DEADLINE,
        || (primaries(&consul) == [format!("db-{}", members[other].host)]).then_some(()),
    );

    // Healthy again, the old leader competes but does not take over.
    std::fs::remove_file(sick).unwrap();
    wait_until("the old leader is a candidate again", DEADLINE, || {
        (role(&members[first]).as_deref() == Some("candidate")).then_some(())
    });
    assert_eq!(role(&members[other]).as_deref(), Some("leader"));

    let monitor = monitor.finish();
    monitor.assert_never_two_leaders();
    assert_eq!(monitor.intervals().len(), 2, "{:#?}", monitor.intervals());
    assert_hooks_agree(&dir, &[]);
    let events = hook_events(&dir);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.1.as_str(), e.2.as_str()))
            .collect::<Vec<_>>(),
        [
            (leader.host.as_str(), "elected"),
            (leader.host.as_str(), "deposed"),
            (members[other].host.as_str(), "elected"),
        ]
    );
}

#[test]
fn three_instances_never_have_two_leaders() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let timing = Timing {
        lock_delay: 2,
        ..QUICK
    };
    let cfg = db_config(&dir, &consul, timing);
    let mut members: Vec<Member> = ["n1", "n2", "n3"]
        .iter()
        .map(|h| start_member(&cfg, &dir, h))
        .collect();
    let monitor = Monitor::start(&members);
    let mut leader = wait_for_one_leader(&members, Duration::from_secs(20), None);

    // Rotate leadership: each leader in turn fails its check, then recovers.
    for round in 0..3 {
        let sick = dir.write(&format!("sick-{}", members[leader].host), "");
        let next = wait_for_one_leader(&members, Duration::from_secs(25), Some(leader));
        assert_ne!(next, leader, "round {round}");
        std::fs::remove_file(sick).unwrap();
        wait_until("the old leader competes again", DEADLINE, || {
            (role(&members[leader]).as_deref() == Some("candidate")).then_some(())
        });
        leader = next;
    }

    // A leader stopped with SIGTERM gives leadership up (its session is
    // destroyed: the others wait out the lock-delay, then one is elected).
    let stopped = members[leader].host.clone();
    members[leader].ap.signal(libc::SIGTERM);
    let code = members[leader].ap.wait_exit(DEADLINE);
    let stopped_at = now_ms();
    monitor.ended(&stopped, stopped_at);
    assert_eq!(code, 0, "{}", members[leader].ap.output());
    let rest: Vec<Member> = members.drain(..).filter(|m| m.host != stopped).collect();
    let next = wait_for_one_leader(&rest, Duration::from_secs(25), None);

    let monitor = monitor.finish();
    assert!(
        monitor
            .elected_at(&rest[next].host)
            .is_some_and(|at| at > stopped_at - 1000),
        "the monitor missed the last election: {:#?}",
        monitor.intervals()
    );
    monitor.assert_never_two_leaders();
    assert!(monitor.intervals().len() >= 5, "{:#?}", monitor.intervals());
    // Five elections: the first, three rotations, after the stop.
    wait_until("the fifth elected hook", DEADLINE, || {
        let events = hook_events(&dir);
        (events.iter().filter(|e| e.2 == "elected").count() == 5).then_some(())
    });
    assert_hooks_agree(&dir, &[(&stopped, stopped_at)]);
}

#[test]
fn a_killed_leader_is_replaced_once_its_session_ttl_runs_out() {
    let consul = Consul::start();
    let dir = TestDir::new();
    // The dead leader's service check stays passing (long health TTL):
    // only the session's TTL can free the key.
    let timing = Timing {
        health_ttl: 300,
        ..QUICK
    };
    let cfg = db_config(&dir, &consul, timing);
    let mut members = vec![
        start_member(&cfg, &dir, "n1"),
        start_member(&cfg, &dir, "n2"),
    ];
    let monitor = Monitor::start(&members);
    let first = wait_for_one_leader(&members, Duration::from_secs(20), None);
    let other = 1 - first;

    let pid = members[first].ap.autopilot_host_pid();
    let killed_at = now_ms();
    let t0 = Instant::now();
    assert!(kill(pid, libc::SIGKILL));
    monitor.ended(&members[first].host, killed_at);
    members[first].ap.wait_exit(DEADLINE);

    // Consul keeps a session for at least its TTL after the last renewal
    // (renewals come every ttl/2, so at least ttl/2 after the kill), and at
    // most twice the TTL; then the lock-delay.
    let ttl = Duration::from_secs(timing.ttl);
    let bound = 2 * ttl + Duration::from_secs(timing.lock_delay);
    let next = wait_for_one_leader(&members, bound + Duration::from_secs(15), Some(first));
    let took = t0.elapsed();
    assert_eq!(next, other);
    assert!(
        took >= ttl / 2,
        "elected after {took:?}, before the session could expire"
    );
    assert!(
        took <= bound + Duration::from_secs(5),
        "elected after {took:?}"
    );

    let monitor = monitor.finish();
    monitor.assert_never_two_leaders();
    let elected = monitor.elected_at(&members[other].host);
    assert!(
        elected.is_some_and(|at| at >= killed_at + 1000 * timing.ttl / 2),
        "elected at {elected:?}, killed at {killed_at}; seen: {:#?}",
        monitor.seen.lock().unwrap()
    );
}

#[test]
fn a_leader_that_loses_consul_steps_down_before_its_ttl() {
    let mut consul = Consul::start();
    let dir = TestDir::new();
    let cfg = db_config(&dir, &consul, QUICK);
    let members = vec![start_member(&cfg, &dir, "n1")];
    wait_for_one_leader(&members, Duration::from_secs(20), None);

    let t0 = Instant::now();
    consul.kill();
    wait_until(
        "the leader to step down",
        Duration::from_secs(QUICK.ttl + 5),
        || (role(&members[0]).as_deref() == Some("candidate")).then_some(()),
    );
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(QUICK.ttl),
        "stepped down {took:?} after Consul went away: the session could have expired first"
    );
    let out = members[0].ap.output();
    assert!(
        out.contains("stepping down before the session could expire"),
        "{out}"
    );
    wait_until("the deposed hook", DEADLINE, || {
        hook_events(&dir)
            .iter()
            .any(|e| e.2 == "deposed")
            .then_some(())
    });

    // Consul comes back (empty, as a dev agent): elected again.
    consul.start_again();
    wait_for_one_leader(&members, Duration::from_secs(30), None);
    wait_until("the second elected hook", DEADLINE, || {
        (hook_events(&dir).len() == 3).then_some(())
    });
    assert_hooks_agree(&dir, &[]);
}

#[test]
fn a_reload_keeps_leadership_unless_the_job_changes() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = db_config(&dir, &consul, QUICK);
    let members = vec![start_member(&cfg, &dir, "n1")];
    wait_for_one_leader(&members, Duration::from_secs(20), None);
    let since = leader_status(&members[0].socket).unwrap()["sinceMs"].clone();

    // Another job changes: `db` is untouched and stays leader.
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    config["jobs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "extra", "exec": "sleep 1000"}));
    dir.json_config(&config);
    let reply = members[0].ap.control_request("POST", "/v3/reload", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let status = leader_status(&members[0].socket).unwrap();
    assert_eq!(
        (&status["role"], &status["sinceMs"]),
        (&json!("leader"), &since)
    );

    // `leader` changes: the job restarts and competes for the new key; the
    // old key is given up.
    config["jobs"][0]["leader"]["key"] = json!("service/db/other");
    dir.json_config(&config);
    let reply = members[0].ap.control_request("POST", "/v3/reload", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_until("leader of the new key", Duration::from_secs(20), || {
        let l = leader_status(&members[0].socket)?;
        (l["key"] == "service/db/other" && l["role"] == "leader").then_some(())
    });
    let old = &consul.get_json(&format!("/v1/kv/{KEY}"))[0];
    assert!(old["Session"].is_null(), "the old key is still held: {old}");
    wait_until("the hooks of both elections", DEADLINE, || {
        let events: Vec<String> = hook_events(&dir).into_iter().map(|e| e.2).collect();
        (events == ["elected", "deposed", "elected"]).then_some(())
    });

    // No `leader` any more: the job no longer competes and gives the key up.
    config["jobs"][0].as_object_mut().unwrap().remove("leader");
    dir.json_config(&config);
    let reply = members[0].ap.control_request("POST", "/v3/reload", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_until("the election gone", Duration::from_secs(20), || {
        let held = consul.get_json("/v1/kv/service/db/other")[0]["Session"].is_string();
        (leader_status(&members[0].socket).is_none() && !held).then_some(())
    });
}
