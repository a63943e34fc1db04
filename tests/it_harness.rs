//! Smoke tests of the test harness itself (tests/common/mod.rs).

use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn free_ports_are_distinct_and_bindable() {
    let ports = free_ports(20);
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "ports not distinct: {ports:?}");
    let p = free_port();
    std::net::TcpListener::bind(("127.0.0.1", p)).expect("free_port() is bindable");
}

#[test]
fn wait_until_returns_the_value() {
    let start = Instant::now();
    let v = wait_until("a counter to reach 3", Duration::from_secs(5), {
        let mut n = 0;
        move || {
            n += 1;
            (n >= 3).then_some(n)
        }
    });
    assert_eq!(v, 3);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
#[should_panic(expected = "waiting for: something that never happens")]
fn wait_until_panics_at_the_deadline() {
    wait_until(
        "something that never happens",
        Duration::from_millis(100),
        || None::<()>,
    );
}

#[test]
fn test_dir_writes_files() {
    let d = TestDir::new();
    let p = d.write("a/b/config.json5", "{}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}");
    let s = d.write_executable("run.sh", "#!/bin/sh\necho hi\n");
    assert_eq!(
        run_cmd(s.to_str().unwrap(), [] as [&str; 0]),
        (0, "hi\n".to_string())
    );
}

#[test]
fn unshare_gives_pid_1() {
    require_root("unshare --pid");
    let (code, out) = run_cmd(
        "unshare",
        ["--pid", "--fork", "--mount-proc", "sh", "-c", "echo $$"],
    );
    assert_eq!((code, out.trim()), (0, "1"), "{out}");
}

#[test]
fn proc_helpers_see_children_and_zombies() {
    // sh forks `true`, then execs `sleep`, which never reaps it: a zombie child.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "true & exec sleep 30"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let z = wait_until("a zombie under sleep", DEADLINE, || {
        let z = zombies_under(pid);
        (!z.is_empty()).then_some(z)
    });
    assert_eq!(children_of(pid), z);
    assert_eq!(descendants_of(pid), z);
    assert_eq!(proc_state(z[0]), Some('Z'));
    assert!(!pid_alive(z[0]));
    assert!(pid_alive(pid));
    assert_eq!(ppid_of(z[0]), Some(pid));
    assert!(proc_cmdline(pid).unwrap().contains("sleep 30"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!pid_alive(pid));
    assert_eq!(proc_state(pid), None);
}

#[test]
fn pid1_process_gets_signals_and_exit_code() {
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let mut p = Autopilot::program_pid1(Path::new("/bin/sh"), &["-c", script], &[]);
    p.wait_for_output("ready", DEADLINE);
    let host_pid = p.autopilot_host_pid();
    assert_ne!(host_pid, p.spawned_pid());
    assert_eq!(ppid_of(host_pid), Some(p.spawned_pid()));
    assert_eq!(
        ns_pids(host_pid).last(),
        Some(&1),
        "should be PID 1 inside its namespace"
    );
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(DEADLINE), 7);
    assert!(p.output().contains("got-term"), "{}", p.output());
}

#[test]
fn dropping_a_pid1_process_kills_its_namespace() {
    let mut p = Autopilot::program_pid1(
        Path::new("/bin/sh"),
        &["-c", "sleep 300 & sleep 301 & echo started; wait"],
        &[],
    );
    p.wait_for_output("started", DEADLINE);
    let host_pid = p.autopilot_host_pid();
    let all = wait_until("both sleeps to start", DEADLINE, || {
        let d = descendants_of(p.spawned_pid());
        (d.len() >= 3).then_some(d)
    });
    assert!(all.contains(&host_pid));
    drop(p);
    wait_until(
        "every process of the namespace to be gone",
        DEADLINE,
        || all.iter().all(|&pid| !pid_alive(pid)).then_some(()),
    );
}

#[test]
fn plain_process_and_wait_exit() {
    let mut p = Autopilot::program_plain(
        Path::new("/bin/sh"),
        &["-c", "echo out; echo err >&2; exit 3"],
        &[],
    );
    assert_eq!(p.wait_exit(DEADLINE), 3);
    let out = p.output();
    assert!(out.contains("out") && out.contains("err"), "{out}");
}

#[test]
fn output_counting() {
    let mut p = Autopilot::program_plain(
        Path::new("/bin/sh"),
        &["-c", "echo tick; echo tick; sleep 30"],
        &[],
    );
    p.wait_for_output_count("tick", 2, DEADLINE);
    assert_eq!(p.count_output("tick"), 2);
    assert_eq!(p.try_status(), None);
}

#[test]
fn sigkilled_pid1_gives_unshare_exit_1() {
    // Documented in Autopilot::wait_exit: util-linux 2.38 unshare exits 1 when its
    // child is SIGKILLed (and re-raises any other fatal signal on itself).
    let mut p = Autopilot::program_pid1(Path::new("/bin/sh"), &["-c", "echo up; sleep 300"], &[]);
    p.wait_for_output("up", DEADLINE);
    p.signal(libc::SIGKILL);
    assert_eq!(p.wait_exit(DEADLINE), 1);
}

#[test]
fn autopilot_binary_exists() {
    assert!(autopilot_bin().is_file(), "{}", autopilot_bin().display());
}

#[test]
fn consul_starts_with_a_leader_and_restarts_on_the_same_port() {
    assert!(
        consul_available(),
        "consul missing: run `bash scripts/install-deps.sh` as root"
    );
    let mut c = Consul::start();
    let (status, leader) = c.http_get("/v1/status/leader");
    assert_eq!(status, 200);
    assert!(leader.contains("127.0.0.1"), "{leader}");
    assert_eq!(c.http_put("/v1/kv/autopilot-test", "hello"), 200);
    let (status, body) = c.http_get("/v1/kv/autopilot-test?raw");
    assert_eq!((status, body.as_str()), (200, "hello"));
    // A body large enough to come back chunked.
    let tags: Vec<String> = (0..200).map(|i| format!("tag-{i}")).collect();
    let svc = serde_json::json!({"Name": "web", "ID": "web-1", "Port": 8080, "Tags": tags});
    assert_eq!(
        c.http_put("/v1/agent/service/register", &svc.to_string()),
        200
    );
    let r = http_request(&c.addr(), "GET", "/v1/agent/services", None, DEADLINE).unwrap();
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "exercise the chunked decoder"
    );
    let services: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        services["web-1"]["Tags"].as_array().map(|t| t.len()),
        Some(200),
        "{services}"
    );
    assert!(c.catalog_services().contains(&"consul".to_string()));

    let addr = c.addr();
    c.restart();
    assert_eq!(c.addr(), addr);
    let (status, _) = c.http_get("/v1/agent/self");
    assert_eq!(status, 200);

    c.kill();
    assert!(http_request(&addr, "GET", "/v1/agent/self", None, Duration::from_secs(1)).is_err());
    c.start_again();
    assert!(c.is_running());
}
