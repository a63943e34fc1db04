//! Consul: registration, TTL checks, deregistration, watches and outages,
//! each against a real `consul agent -dev` on free loopback ports.
//!
//! Two autopilot instances on one machine share the hostname, so every test
//! sets `HOSTNAME` (the documented override for the `<name>-<hostname>` ID).

use crate::common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longer than [`DEADLINE`] for steps that include an agent restart.
const SLOW: Duration = Duration::from_secs(20);

/// Writes `text` as the config, replacing each `@KEY@` placeholder.
fn config(dir: &TestDir, name: &str, text: &str, vars: &[(&str, &str)]) -> PathBuf {
    let mut t = text.to_string();
    for (k, v) in vars {
        t = t.replace(&format!("@{k}@"), v);
    }
    dir.write(name, t)
}

/// `GET /v1/agent/service/<id>` when the agent has it.
fn agent_service(consul: &Consul, id: &str) -> Option<Value> {
    let (status, body) = consul.http_get(&format!("/v1/agent/service/{id}"));
    (status == 200).then(|| serde_json::from_str(&body).expect("agent service JSON"))
}

/// The status of the TTL check of service `id` on the agent.
fn check_status(consul: &Consul, id: &str) -> Option<String> {
    let checks = consul.get_json("/v1/agent/checks");
    checks
        .get(format!("service:{id}"))
        .and_then(|c| c["Status"].as_str())
        .map(String::from)
}

/// The lines of `name` in `dir` (empty when it does not exist yet).
fn lines(dir: &TestDir, name: &str) -> Vec<String> {
    dir.read(name)
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// Waits until the last line of `name` is `want`.
fn wait_last_line(dir: &TestDir, name: &str, want: &str, deadline: Duration) {
    wait_until(&format!("{name} to end with {want:?}"), deadline, || {
        (lines(dir, name).last().map(String::as_str) == Some(want)).then_some(())
    });
}

/// Starts autopilot (not as PID 1) with `HOSTNAME=host` and a control
/// socket of its own in `dir`, so several can run side by side.
fn start(cfg: &std::path::Path, dir: &TestDir, host: &str) -> Autopilot {
    start_env(cfg, dir, host, &[])
}

/// [`start`] with more environment variables.
fn start_env(cfg: &std::path::Path, dir: &TestDir, host: &str, envs: &[(&str, &str)]) -> Autopilot {
    let stem = cfg
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("autopilot");
    let socket = dir.join(&format!("{stem}-{host}.sock"));
    let mut all = vec![
        ("HOSTNAME", host),
        ("AUTOPILOT_CONTROL_SOCKET", socket.to_str().unwrap()),
    ];
    all.extend_from_slice(envs);
    Autopilot::start_plain(cfg, &[], &all)
}

fn register_external(consul: &Consul, id: &str, name: &str, port: u16, tags: &[&str]) {
    let body = serde_json::json!({
        "ID": id, "Name": name, "Address": "127.0.0.1", "Port": port, "Tags": tags,
    });
    assert_eq!(
        consul.http_put("/v1/agent/service/register", &body.to_string()),
        200
    );
}

#[test]
fn registration_fields_reach_consul() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: {address: "@CONSUL@", token: "s3cr3t-t0ken-value"},
          logging: {level: "DEBUG"},
          jobs: [{
            name: "web",
            exec: ["sh", "-c", "echo $CONTAINERPILOT_WEB_IP > @DIR@/ip; exec sleep 1000"],
            port: 8080,
            tags: ["blue", "v1"],
            meta: {version: "1.2.3"},
            interfaces: ["lo"],
            initial_status: "warning",
            consul: {enableTagOverride: true, deregisterCriticalServiceAfter: "10m"},
            health: {exec: "true", interval: 600, ttl: 900},
          }],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let ap = start(&cfg, &dir, "reg-test");
    let svc = wait_until("web-reg-test in /v1/agent/services", DEADLINE, || {
        agent_service(&consul, "web-reg-test")
    });
    assert_eq!(svc["Service"], "web");
    assert_eq!(svc["Port"], 8080);
    assert_eq!(svc["Address"], "127.0.0.1");
    assert_eq!(svc["Tags"], serde_json::json!(["blue", "v1"]));
    assert_eq!(svc["Meta"]["version"], "1.2.3");
    assert_eq!(svc["EnableTagOverride"], true);

    // The health check runs first after 600 s: the initial status shows.
    // (The catalog follows the agent's local state within moments.)
    let ttl = wait_until("the TTL check in /v1/health/service/web", DEADLINE, || {
        let entries = consul.get_json("/v1/health/service/web");
        entries[0]["Checks"]
            .as_array()?
            .iter()
            .find(|c| c["CheckID"] == "service:web-reg-test")
            .cloned()
    });
    assert_eq!(ttl["Status"], "warning");
    assert_eq!(ttl["ServiceID"], "web-reg-test");

    wait_last_line(&dir, "ip", "127.0.0.1", DEADLINE);
    let out = ap.output();
    assert!(out.contains("advertising 127.0.0.1:8080"), "{out}");
    assert!(!out.contains("s3cr3t"), "the token was logged:\n{out}");
}

#[test]
fn ttl_is_refreshed_by_passing_checks_and_a_failing_check_is_critical_at_once() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [
            {
              name: "steady",
              exec: "sleep 1000",
              port: 7000,
              interfaces: ["lo"],
              health: {exec: "true", interval: 1, ttl: 2},
            },
            {
              name: "flip",
              exec: "sleep 1000",
              port: 7001,
              interfaces: ["lo"],
              health: {exec: ["test", "-f", "@DIR@/healthy"], interval: 1, ttl: 60},
            },
          ],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let _ap = start(&cfg, &dir, "ttl-test");

    wait_until("steady passing", DEADLINE, || {
        (check_status(&consul, "steady-ttl-test").as_deref() == Some("passing")).then_some(())
    });
    // Three TTLs long: only refreshes keep it passing.
    holds_for("steady stays passing", Duration::from_secs(6), || {
        check_status(&consul, "steady-ttl-test").as_deref() == Some("passing")
    });

    wait_until("flip registered critical", DEADLINE, || {
        (check_status(&consul, "flip-ttl-test").as_deref() == Some("critical")).then_some(())
    });
    dir.write("healthy", "");
    wait_until("flip passing", DEADLINE, || {
        (check_status(&consul, "flip-ttl-test").as_deref() == Some("passing")).then_some(())
    });
    std::fs::remove_file(dir.join("healthy")).unwrap();
    // The TTL is 60 s: only the failed check can make it critical this fast.
    let start = Instant::now();
    wait_until(
        "flip critical after a failed check",
        Duration::from_secs(5),
        || (check_status(&consul, "flip-ttl-test").as_deref() == Some("critical")).then_some(()),
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn initial_status_passing_is_visible_before_any_check() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [{
            name: "api", exec: "sleep 1000", port: 9000, interfaces: ["lo"],
            initial_status: "passing",
            health: {exec: "false", interval: 600, ttl: 900},
          }],
        }"#,
        &[("CONSUL", &consul.addr())],
    );
    let _ap = start(&cfg, &dir, "init-test");
    wait_until("api passing in /v1/health/service", DEADLINE, || {
        (consul.passing_instances("api").len() == 1).then_some(())
    });
}

#[test]
fn deregistration_happens_before_the_job_gets_sigterm() {
    require_root("autopilot runs as PID 1");
    let consul = Consul::start();
    let dir = TestDir::new();
    let trap = format!(
        "if curl -sf -o /dev/null http://{}/v1/agent/service/web-term-test; \
         then echo registered; else echo gone; fi > {}/at_term; exit 0",
        consul.addr(),
        dir.path().display()
    );
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [{
            name: "web",
            exec: ["sh", "-c", "trap '@TRAP@' TERM; while true; do sleep 0.1; done"],
            port: 8080, interfaces: ["lo"], initial_status: "passing",
            health: {exec: "true", interval: 1, ttl: 10},
          }],
        }"#,
        &[("CONSUL", &consul.addr()), ("TRAP", &trap)],
    );
    let socket = dir.join("ctl.sock");
    let mut ap = Autopilot::start_pid1(
        &cfg,
        &[],
        &[
            ("HOSTNAME", "term-test"),
            ("AUTOPILOT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    wait_until("web passing", DEADLINE, || {
        (consul.passing_instances("web").len() == 1).then_some(())
    });
    ap.signal(libc::SIGTERM);
    let code = ap.wait_exit(DEADLINE);
    assert_eq!(
        dir.read("at_term").as_deref(),
        Some("gone\n"),
        "output:\n{}",
        ap.output()
    );
    assert!(agent_service(&consul, "web-term-test").is_none());
    assert_eq!(code, 0, "{}", ap.output());
}

#[test]
fn a_job_that_ends_for_good_is_deregistered() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [
            {
              name: "batch",
              exec: ["sh", "-c", "while [ ! -f @DIR@/stop ]; do sleep 0.1; done"],
              port: 8081, interfaces: ["lo"], initial_status: "passing",
              health: {exec: "true", interval: 1, ttl: 10},
            },
            {name: "keeper", exec: "sleep 1000"},
          ],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let mut ap = start(&cfg, &dir, "end-test");
    wait_until("batch registered", DEADLINE, || {
        agent_service(&consul, "batch-end-test")
    });
    dir.write("stop", "");
    wait_until("batch deregistered", DEADLINE, || {
        agent_service(&consul, "batch-end-test")
            .is_none()
            .then_some(())
    });
    assert_eq!(
        ap.try_status(),
        None,
        "autopilot must keep running for `keeper`"
    );
}

#[test]
fn a_watch_fires_on_register_health_flip_and_deregister() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let d = dir.path().to_str().unwrap().to_string();
    let upstream = config(
        &dir,
        "upstream.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [{
            name: "upstream", exec: "sleep 1000", port: 5432, interfaces: ["lo"],
            initial_status: "passing",
            health: {exec: ["test", "!", "-f", "@DIR@/sick"], interval: 1, ttl: 30},
          }],
        }"#,
        &[("CONSUL", &consul.addr()), ("DIR", &d)],
    );
    let watcher = config(
        &dir,
        "watcher.json5",
        r#"{
          consul: "@CONSUL@",
          watches: [{name: "upstream", interval: "100ms"}],
          jobs: [
            {name: "keeper", exec: "sleep 1000"},
            {
              name: "on-change",
              exec: ["sh", "-c", "echo \"$CONTAINERPILOT_WATCH_UPSTREAM_COUNT $CONTAINERPILOT_WATCH_UPSTREAM_INSTANCES\" >> @DIR@/changes; cp \"$CONTAINERPILOT_WATCH_UPSTREAM_FILE\" @DIR@/last.json"],
              when: {source: "watch.upstream", each: "changed"},
            },
            {
              name: "on-healthy",
              exec: ["sh", "-c", "echo healthy >> @DIR@/health"],
              when: {source: "watch.upstream", each: "healthy"},
            },
            {
              name: "on-unhealthy",
              exec: ["sh", "-c", "echo unhealthy >> @DIR@/health"],
              when: {source: "watch.upstream", each: "unhealthy"},
            },
          ],
        }"#,
        &[("CONSUL", &consul.addr()), ("DIR", &d)],
    );
    let _watcher = start(&watcher, &dir, "watcher");
    // The first state is published at startup: nothing there yet.
    wait_last_line(&dir, "changes", "0 ", DEADLINE);
    wait_last_line(&dir, "health", "unhealthy", DEADLINE);

    let mut up = start(&upstream, &dir, "up-1");
    wait_last_line(&dir, "changes", "1 127.0.0.1:5432", DEADLINE);
    wait_last_line(&dir, "health", "healthy", DEADLINE);
    // The hook writes `changes` first, then copies the file.
    let json: Value = wait_until("the hook's copy of the watch file", DEADLINE, || {
        let json: Value = serde_json::from_str(&dir.read("last.json")?).ok()?;
        (json.as_array()?.len() == 1).then_some(json)
    });
    assert_eq!(json[0]["id"], "upstream-up-1");
    assert_eq!(json[0]["address"], "127.0.0.1");
    assert_eq!(json[0]["port"], 5432);

    dir.write("sick", "");
    wait_last_line(&dir, "changes", "0 ", DEADLINE);
    wait_last_line(&dir, "health", "unhealthy", DEADLINE);
    std::fs::remove_file(dir.join("sick")).unwrap();
    wait_last_line(&dir, "changes", "1 127.0.0.1:5432", DEADLINE);
    wait_last_line(&dir, "health", "healthy", DEADLINE);

    up.signal(libc::SIGTERM);
    up.wait_exit(DEADLINE);
    wait_last_line(&dir, "changes", "0 ", DEADLINE);
    wait_last_line(&dir, "health", "unhealthy", DEADLINE);
    assert_eq!(
        lines(&dir, "health"),
        ["unhealthy", "healthy", "unhealthy", "healthy", "unhealthy"],
        "healthy/unhealthy are published only when health flips"
    );
}

#[test]
fn services_come_back_after_the_agent_restarts_and_jobs_are_untouched() {
    let mut consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          watches: [{name: "web", interval: "100ms"}],
          jobs: [
            {
              name: "web", exec: "sleep 1001", port: 8080, interfaces: ["lo"],
              initial_status: "passing",
              health: {exec: "true", interval: 1, ttl: 10},
            },
            {
              name: "on-change", exec: ["sh", "-c", "echo changed >> @DIR@/changes"],
              when: {source: "watch.web", each: "changed"},
            },
          ],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let mut ap = start(&cfg, &dir, "restart-test");
    wait_until("web passing", DEADLINE, || {
        (consul.passing_instances("web").len() == 1).then_some(())
    });
    let host_pid = ap.autopilot_host_pid();
    let job_pid = wait_until("the job's pid", DEADLINE, || {
        find_descendants(host_pid, "sleep 1001").first().copied()
    });

    consul.kill();
    ap.wait_for_output("is unreachable", DEADLINE);
    consul.start_again();
    wait_until("web registered and passing again", SLOW, || {
        (consul.passing_instances("web").len() == 1).then_some(())
    });
    assert!(pid_alive(job_pid), "the job was stopped");
    assert_eq!(
        find_descendants(host_pid, "sleep 1001"),
        [job_pid],
        "the job was restarted"
    );
    let out = ap.output();
    assert!(out.contains("registered again"), "{out}");
    // One warning per outage, not one per retry.
    assert_eq!(out.matches("is unreachable").count(), 1, "{out}");
    // No event storm: the watch publishes at most start, gone, back.
    let published = out
        .lines()
        .filter(|l| l.contains("watch.web: ") && l.contains(" passing"))
        .count();
    assert!(
        published <= 4,
        "too many watch publications ({published}):\n{out}"
    );
}

#[test]
fn consul_down_at_start_does_not_stop_jobs_and_registration_follows() {
    let mut consul = Consul::start();
    consul.stop();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          jobs: [{
            name: "web", exec: ["sh", "-c", "echo started >> @DIR@/runs; exec sleep 1000"],
            port: 8080, interfaces: ["lo"], initial_status: "passing",
            health: {exec: "true", interval: 1, ttl: 10},
          }],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let mut ap = start(&cfg, &dir, "late-test");
    wait_last_line(&dir, "runs", "started", DEADLINE);
    ap.wait_for_output("is unreachable", DEADLINE);
    consul.start_again();
    wait_until("web registered once the agent is up", SLOW, || {
        (consul.passing_instances("web").len() == 1).then_some(())
    });
    assert_eq!(lines(&dir, "runs"), ["started"], "the job must not restart");
}

#[test]
fn watches_filter_by_tag_and_datacenter() {
    let consul = Consul::start();
    let dir = TestDir::new();
    register_external(&consul, "db-1", "db", 1001, &["primary"]);
    register_external(&consul, "db-2", "db", 1002, &["replica"]);
    register_external(&consul, "cache-1", "cache", 2001, &[]);
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          watches: [
            {name: "db", tag: "primary", interval: "100ms"},
            {name: "cache", dc: "dc1", interval: "100ms"},
            {name: "web", dc: "elsewhere", interval: "100ms"},
          ],
          jobs: [
            {name: "keeper", exec: "sleep 1000"},
            {
              name: "on-db", exec: ["sh", "-c", "echo \"$CONTAINERPILOT_WATCH_DB_INSTANCES\" >> @DIR@/db"],
              when: {source: "watch.db", each: "changed"},
            },
            {
              name: "on-cache", exec: ["sh", "-c", "echo \"$CONTAINERPILOT_WATCH_CACHE_INSTANCES\" >> @DIR@/cache"],
              when: {source: "watch.cache", each: "changed"},
            },
            {
              name: "on-web", exec: ["sh", "-c", "echo fired >> @DIR@/web"],
              when: {source: "watch.web", each: "changed"},
            },
          ],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let mut ap = start(&cfg, &dir, "filter-test");
    wait_last_line(&dir, "db", "127.0.0.1:1001", DEADLINE);
    wait_last_line(&dir, "cache", "127.0.0.1:2001", DEADLINE);

    // Another replica is no change for a watch of primaries...
    register_external(&consul, "db-3", "db", 1003, &["replica"]);
    // ...another primary is.
    register_external(&consul, "db-4", "db", 1004, &["primary"]);
    wait_last_line(&dir, "db", "127.0.0.1:1001,127.0.0.1:1004", DEADLINE);
    assert_eq!(lines(&dir, "db").len(), 2, "{:?}", lines(&dir, "db"));

    // An unknown datacenter is an error that is reported, never an event.
    ap.wait_for_output(
        "watch.web: cannot read service `web` in datacenter `elsewhere`",
        DEADLINE,
    );
    assert!(dir.read("web").is_none(), "watch.web must not fire");
}

#[test]
fn kv_watches_hand_the_new_value_to_the_hook() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{
          consul: "@CONSUL@",
          watches: [
            {name: "flag", key: "app/flag", interval: "100ms"},
            {name: "conf", prefix: "app/conf/", interval: "100ms"},
          ],
          jobs: [
            {name: "keeper", exec: "sleep 1000"},
            {
              name: "on-flag", exec: ["sh", "-c", "echo \"${CONTAINERPILOT_WATCH_FLAG_VALUE-<none>}\" >> @DIR@/flag"],
              when: {source: "watch.flag", each: "changed"},
            },
            {
              name: "on-conf", exec: ["sh", "-c", "cp \"$CONTAINERPILOT_WATCH_CONF_FILE\" @DIR@/conf.json; echo $CONTAINERPILOT_WATCH_CONF_COUNT >> @DIR@/conf"],
              when: {source: "watch.conf", each: "changed"},
            },
          ],
        }"#,
        &[
            ("CONSUL", &consul.addr()),
            ("DIR", dir.path().to_str().unwrap()),
        ],
    );
    let _ap = start(&cfg, &dir, "kv-test");
    // The first state (no key) is published at startup.
    wait_last_line(&dir, "flag", "<none>", DEADLINE);
    wait_last_line(&dir, "conf", "0", DEADLINE);

    assert_eq!(consul.http_put("/v1/kv/app/flag", "on"), 200);
    wait_last_line(&dir, "flag", "on", DEADLINE);
    assert_eq!(consul.http_put("/v1/kv/app/flag", "off"), 200);
    wait_last_line(&dir, "flag", "off", DEADLINE);
    // Writing the same value again is no change.
    assert_eq!(consul.http_put("/v1/kv/app/flag", "off"), 200);
    assert_eq!(consul.http_put("/v1/kv/app/conf/a", "1"), 200);
    assert_eq!(consul.http_put("/v1/kv/app/conf/b", "two"), 200);
    wait_last_line(&dir, "conf", "2", DEADLINE);
    let json: Value = serde_json::from_str(&dir.read("conf.json").unwrap()).unwrap();
    assert_eq!(json["app/conf/a"], "1");
    assert_eq!(json["app/conf/b"], "two");
    assert_eq!(lines(&dir, "flag"), ["<none>", "on", "off"]);
}

#[test]
fn a_bad_consul_address_stops_autopilot_with_a_clear_error() {
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{consul: "ftp://consul:8500", jobs: [{name: "app", exec: "sleep 1000"}]}"#,
        &[],
    );
    let mut ap = start(&cfg, &dir, "plain");
    let code = ap.wait_exit(DEADLINE);
    let out = ap.output();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("consul: consul.address: \"ftp://consul:8500\": unknown scheme"),
        "{out}"
    );
}

#[test]
fn without_a_consul_section_autopilot_says_so_once_and_runs() {
    let dir = TestDir::new();
    let cfg = config(
        &dir,
        "autopilot.json5",
        r#"{jobs: [{name: "app", exec: ["sh", "-c", "echo ran > @DIR@/ran"]}]}"#,
        &[("DIR", dir.path().to_str().unwrap())],
    );
    let mut ap = start(&cfg, &dir, "plain");
    ap.wait_exit(DEADLINE);
    assert_eq!(dir.read("ran").as_deref(), Some("ran\n"));
    assert_eq!(
        ap.count_output("no consul configured: running without service discovery"),
        1,
        "{}",
        ap.output()
    );
}

/// Creates a CA, a server certificate (SANs: server.dc1.consul, localhost,
/// 127.0.0.1) and a client certificate with `consul tls`, in `dir`.
fn make_certs(dir: &TestDir) {
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server", "-dc", "dc1"],
        &["tls", "cert", "create", "-client", "-dc", "dc1"],
    ] {
        let out = std::process::Command::new(require_consul())
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run consul tls");
        assert!(
            out.status.success(),
            "consul {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn tls_uses_the_ca_client_certificate_and_server_name() {
    let certs = TestDir::new();
    make_certs(&certs);
    let file = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let (ca, cert, key) = (
        file("consul-agent-ca.pem"),
        file("dc1-client-consul-0.pem"),
        file("dc1-client-consul-0-key.pem"),
    );
    let https = free_port();
    let consul = Consul::start_with(serde_json::json!({
        "ports": {"https": https},
        "ca_file": ca,
        "cert_file": file("dc1-server-consul-0.pem"),
        "key_file": file("dc1-server-consul-0-key.pem"),
        // HTTPS clients must show a certificate signed by the CA.
        "verify_incoming": true,
    }));
    let dir = TestDir::new();
    let url = format!("https://127.0.0.1:{https}");
    let run = |name: &str, consul_section: &str, envs: &[(&str, &str)]| {
        let text = format!(
            r#"{{consul: {consul_section}, jobs: [{{
                name: "@NAME@", exec: "sleep 1000", port: 8080, interfaces: ["lo"],
                initial_status: "passing", health: {{exec: "true", interval: 1, ttl: 10}},
            }}]}}"#
        );
        let vars = [
            ("NAME", name),
            ("URL", url.as_str()),
            ("CA", &ca),
            ("CERT", &cert),
            ("KEY", &key),
        ];
        let cfg = config(&dir, &format!("{name}.json5"), &text, &vars);
        start_env(&cfg, &dir, "tls", envs)
    };
    let full =
        r#"address: "@URL@", tls: {cafile: "@CA@", clientcert: "@CERT@", clientkey: "@KEY@""#;
    let _good = run(
        "good",
        &format!(r#"{{{full}, servername: "server.dc1.consul"}}}}"#),
        &[],
    );
    let _env = run(
        "viaenv",
        r#""@URL@""#,
        &[
            ("CONSUL_CACERT", &ca),
            ("CONSUL_CLIENT_CERT", &cert),
            ("CONSUL_CLIENT_KEY", &key),
        ],
    );
    let _insecure = run(
        "insecure",
        r#"{address: "@URL@", tls: {clientcert: "@CERT@", clientkey: "@KEY@", servername: "wrong.example", verify: false}}"#,
        &[],
    );
    let mut wrong_name = run(
        "wrongname",
        &format!(r#"{{{full}, servername: "wrong.example"}}}}"#),
        &[],
    );
    let mut unknown_ca = run(
        "unknownca",
        r#"{address: "@URL@", tls: {clientcert: "@CERT@", clientkey: "@KEY@"}}"#,
        &[],
    );
    let mut no_cert = run(
        "nocert",
        r#"{address: "@URL@", tls: {cafile: "@CA@"}}"#,
        &[],
    );

    for name in ["good", "viaenv", "insecure"] {
        wait_until(&format!("{name} registered over TLS"), DEADLINE, || {
            agent_service(&consul, &format!("{name}-tls"))
        });
    }
    wrong_name.wait_for_output("invalid peer certificate", DEADLINE);
    unknown_ca.wait_for_output("invalid peer certificate", DEADLINE);
    no_cert.wait_for_output("Consul call failed", DEADLINE);
    for name in ["wrongname", "unknownca", "nocert"] {
        assert!(
            agent_service(&consul, &format!("{name}-tls")).is_none(),
            "{name} registered"
        );
    }
}
