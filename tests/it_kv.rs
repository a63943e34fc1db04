//! Coordination for hooks, against a real Consul agent: the `kv` and `lock`
//! subcommands, live service tags and meta (`tags`, `meta`, the control
//! endpoint), and what a watch hands its hooks (added/removed instances,
//! the first state published once at startup).

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `autopilot ARGS` with `CONSUL_HTTP_ADDR` pointing at `consul`.
fn ap(consul: &Consul, args: &[&str]) -> (i32, String, String) {
    run_autopilot(args, &[("CONSUL_HTTP_ADDR", &consul.addr())])
}

/// [`ap`] with `HOSTNAME=host` (the lock holder's name).
fn ap_as(consul: &Consul, host: &str, args: &[&str]) -> (i32, String, String) {
    run_autopilot(
        args,
        &[("CONSUL_HTTP_ADDR", &consul.addr()), ("HOSTNAME", host)],
    )
}

/// A key's raw value straight from Consul.
fn raw(consul: &Consul, key: &str) -> Option<String> {
    let (status, body) = consul.http_get(&format!("/v1/kv/{key}?raw"));
    (status == 200).then_some(body)
}

#[test]
fn kv_subcommands_round_trip_and_say_no_clearly() {
    let consul = Consul::start();
    let dir = TestDir::new();

    assert_eq!(
        ap(&consul, &["kv", "put", "app/greeting", "hello world"]),
        (0, String::new(), String::new())
    );
    assert_eq!(raw(&consul, "app/greeting").as_deref(), Some("hello world"));
    let (code, out, _) = ap(&consul, &["kv", "get", "app/greeting"]);
    assert_eq!((code, out.as_str()), (0, "hello world\n"));

    let (code, out, err) = ap(&consul, &["kv", "get", "app/missing"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no such key: app/missing"), "{err}");

    // Check-and-set: the old value must match; "" matches a missing key.
    let (code, _, err) = ap(&consul, &["kv", "cas", "app/greeting", "hello", "x"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cas failed: app/greeting is \"hello world\", not \"hello\""),
        "{err}"
    );
    assert_eq!(raw(&consul, "app/greeting").as_deref(), Some("hello world"));
    assert_eq!(
        ap(
            &consul,
            &["kv", "cas", "app/greeting", "hello world", "bye"]
        )
        .0,
        0
    );
    assert_eq!(raw(&consul, "app/greeting").as_deref(), Some("bye"));
    assert_eq!(ap(&consul, &["kv", "cas", "app/primary", "", "db-1"]).0, 0);
    let (code, _, err) = ap(&consul, &["kv", "cas", "app/primary", "", "db-2"]);
    assert_eq!(code, 1);
    assert!(err.contains("is \"db-1\", not \"\""), "{err}");

    // Values that look like flags go after `--`; `=` and spaces are kept.
    assert_eq!(ap(&consul, &["kv", "put", "app/n", "--", "-5"]).0, 0);
    assert_eq!(raw(&consul, "app/n").as_deref(), Some("-5"));
    assert_eq!(ap(&consul, &["kv", "put", "app/url", "a=b c=d"]).0, 0);
    assert_eq!(raw(&consul, "app/url").as_deref(), Some("a=b c=d"));

    // Without VALUE the value comes from standard input, bytes as they are.
    let mut child = Command::new(autopilot_bin())
        .args(["kv", "put", "app/file"])
        .env("CONSUL_HTTP_ADDR", consul.addr())
        .env_remove("CONTAINERPILOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line 1\nline 2\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        raw(&consul, "app/file").as_deref(),
        Some("line 1\nline 2\n")
    );

    assert_eq!(ap(&consul, &["kv", "delete", "app/file"]).0, 0);
    assert_eq!(ap(&consul, &["kv", "get", "app/file"]).0, 1);
    assert_eq!(
        ap(&consul, &["kv", "delete", "app/file"]).0,
        0,
        "deleting twice is fine"
    );

    // The address (and token, TLS) can come from the config instead.
    let cfg = dir.json_config(&json!({"consul": consul.addr(), "jobs": []}));
    let (code, out, err) = run_autopilot(
        &[
            "kv",
            "get",
            "-config",
            cfg.to_str().unwrap(),
            "app/greeting",
        ],
        &[],
    );
    assert_eq!((code, out.as_str()), (0, "bye\n"), "{err}");
    let (code, out, _) = run_autopilot(
        &["kv", "get", "app/greeting"],
        &[("CONTAINERPILOT", cfg.to_str().unwrap())],
    );
    assert_eq!((code, out.as_str()), (0, "bye\n"));

    // Unreachable Consul: exit 3 and a message that says so.
    let nobody = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = run_autopilot(
        &["kv", "get", "app/greeting"],
        &[("CONSUL_HTTP_ADDR", &nobody)],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("consul at http://{nobody} is unreachable")),
        "{err}"
    );
    let (code, _, err) = run_autopilot(
        &["kv", "cas", "k", "a", "b"],
        &[("CONSUL_HTTP_ADDR", &nobody)],
    );
    assert_eq!(code, 3, "{err}");

    // Usage errors: exit 2.
    let (code, _, err) = ap(&consul, &["kv", "fetch", "k"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("usage: autopilot kv get|put|cas|delete"),
        "{err}"
    );
    let (code, _, err) = run_autopilot(&["kv", "get", "-config", "/no/such.json5", "k"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_lock_is_held_until_its_holder_releases_it() {
    let consul = Consul::start();
    let key = "locks/backup";

    assert_eq!(ap_as(&consul, "h1", &["lock", "acquire", key]).0, 0);
    assert_eq!(
        ap_as(&consul, "h1", &["lock", "acquire", key]).0,
        0,
        "holding it already is fine"
    );
    let (code, _, err) = ap_as(&consul, "h2", &["lock", "acquire", key]);
    assert_eq!(code, 1);
    assert!(err.contains("lock locks/backup is held by h1"), "{err}");
    assert_eq!(
        ap(&consul, &["lock", "holder", key]),
        (0, "h1\n".into(), String::new())
    );

    // Consul sees a real lock: a session named after the holder.
    let entry = &consul.get_json(&format!("/v1/kv/{key}"))[0];
    let session = entry["Session"].as_str().expect("the key is locked");
    let info = consul.get_json(&format!("/v1/session/info/{session}"));
    assert_eq!(info[0]["Name"], "autopilot:h1");

    let (code, _, err) = ap_as(&consul, "h2", &["lock", "release", key]);
    assert_eq!(code, 1);
    assert!(err.contains("held by h1, not by h2"), "{err}");
    assert_eq!(ap_as(&consul, "h1", &["lock", "release", key]).0, 0);
    let (code, out, err) = ap(&consul, &["lock", "holder", key]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("lock locks/backup is free"), "{err}");
    assert_eq!(
        ap_as(&consul, "h1", &["lock", "release", key]).0,
        0,
        "releasing a free lock is fine"
    );

    // Released (not expired): the next holder gets it at once.
    assert_eq!(
        ap_as(&consul, "h2", &["lock", "acquire", key, "h2 since now"]).0,
        0
    );
    assert_eq!(ap(&consul, &["lock", "holder", key]).1, "h2\n");
    assert_eq!(raw(&consul, key).as_deref(), Some("h2 since now"));
    assert!(
        consul
            .get_json(&format!("/v1/session/info/{session}"))
            .as_array()
            .is_none_or(Vec::is_empty),
        "the released session was destroyed"
    );

    let nobody = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = run_autopilot(&["lock", "acquire", key], &[("CONSUL_HTTP_ADDR", &nobody)]);
    assert_eq!(code, 3, "{err}");
}

/// The `web` service as the agent has it.
fn agent_service(consul: &Consul, id: &str) -> Option<Value> {
    let (status, body) = consul.http_get(&format!("/v1/agent/service/{id}"));
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

fn job_status(pilot: &Autopilot, job: &str) -> Value {
    let status: Value =
        serde_json::from_str(&pilot.control_request("GET", "/v3/status", None).body).unwrap();
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .cloned()
        .unwrap()
}

#[test]
fn tags_and_meta_change_while_the_service_runs() {
    let mut consul = Consul::start();
    let dir = TestDir::new();
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "jobs": [
            {
                "name": "web", "exec": "sleep 1000", "port": 8080, "interfaces": ["lo"],
                "tags": ["blue"], "meta": {"version": "1"},
                "health": {"exec": "true", "interval": 1, "ttl": 30},
            },
            {"name": "helper", "exec": "sleep 1000"},
        ],
    }));
    let pilot = Autopilot::start_plain(&cfg, &[], &[("HOSTNAME", "tags-test")]);
    let id = "web-tags-test";
    wait_until("web passing", DEADLINE, || {
        (consul.passing_instances("web").len() == 1).then_some(())
    });
    let pid = job_status(&pilot, "web")["pid"].as_i64().unwrap();

    // Registered again at once: the agent has the tag when the command returns.
    let (code, out, err) = pilot.control_command(&["tags", "web", "add", "primary"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        agent_service(&consul, id).unwrap()["Tags"],
        json!(["blue", "primary"])
    );
    wait_until("the tag in /v1/health/service/web", DEADLINE, || {
        let e = &consul.get_json("/v1/health/service/web?tag=primary&passing=1");
        (e.as_array()?.len() == 1).then_some(())
    });
    assert_eq!(pilot.control_command(&["tags", "web"]).1, "blue\nprimary\n");

    assert_eq!(
        pilot
            .control_command(&["meta", "web", "set", "role=primary", "since=a=b"])
            .0,
        0
    );
    assert_eq!(
        agent_service(&consul, id).unwrap()["Meta"],
        json!({"version": "1", "role": "primary", "since": "a=b"})
    );
    assert_eq!(
        pilot.control_command(&["meta", "web", "remove", "since"]).0,
        0
    );
    assert_eq!(
        pilot.control_command(&["meta", "web"]).1,
        "role=primary\nversion=1\n"
    );

    // The job's process is untouched and its check still passes.
    let web = job_status(&pilot, "web");
    assert_eq!(web["pid"].as_i64(), Some(pid));
    assert_eq!(web["restarts"], 0);
    assert!(pid_alive(pid as i32));
    assert_eq!(consul.passing_instances("web").len(), 1);

    // The control endpoint itself.
    let reply = pilot.control_request(
        "POST",
        "/v3/jobs/web/service",
        Some(r#"{"removeTags": ["blue"], "addTags": ["v2"]}"#),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let live: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(live["tags"], json!(["primary", "v2"]));
    assert_eq!(live["id"], id);
    assert_eq!(live["registered"], true);
    let reply = pilot.control_request("POST", "/v3/jobs/web/service", Some(r#"{"tag": ["x"]}"#));
    assert_eq!(reply.status, 400, "{}", reply.body);

    // Live changes survive the agent losing its state (registered again with them).
    consul.restart();
    wait_until(
        "web registered again with its live tags",
        Duration::from_secs(20),
        || {
            let svc = agent_service(&consul, id)?;
            (svc["Tags"] == json!(["primary", "v2"]) && svc["Meta"]["role"] == "primary")
                .then_some(())
        },
    );

    // Back to the config.
    assert_eq!(pilot.control_command(&["tags", "web", "reset"]).0, 0);
    assert_eq!(pilot.control_command(&["meta", "web", "reset"]).0, 0);
    let svc = agent_service(&consul, id).unwrap();
    assert_eq!(
        (svc["Tags"].clone(), svc["Meta"].clone()),
        (json!(["blue"]), json!({"version": "1"}))
    );
    assert_eq!(job_status(&pilot, "web")["pid"].as_i64(), Some(pid));

    // Refusals.
    let (code, _, err) = pilot.control_command(&["tags", "nope", "add", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("no job named \"nope\""), "{err}");
    let (code, _, err) = pilot.control_command(&["tags", "helper", "add", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no `port`"), "{err}");
    let (code, _, err) = pilot.control_command(&["meta", "web", "set", "consul-x=1"]);
    assert_eq!(code, 2, "{err}");

    // Consul away: the change is kept (exit 3 says so) and applied on its return.
    consul.kill();
    let (code, _, err) = pilot.control_command(&["tags", "web", "add", "later"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("applies it as soon as Consul answers"),
        "{err}"
    );
    consul.start_again();
    wait_until("the pending tag applied", Duration::from_secs(20), || {
        let svc = agent_service(&consul, id)?;
        (svc["Tags"] == json!(["blue", "later"])).then_some(())
    });
    assert_eq!(job_status(&pilot, "web")["pid"].as_i64(), Some(pid));
}

fn register(consul: &Consul, id: &str, port: u16, tags: &[&str]) {
    let body = json!({
        "ID": id, "Name": "up", "Address": "127.0.0.1", "Port": port, "Tags": tags,
        "Meta": {"zone": "a"},
    });
    assert_eq!(
        consul.http_put("/v1/agent/service/register", &body.to_string()),
        200
    );
}

/// A watcher whose `onChange` hook numbers its runs and keeps, for run N,
/// `changes-N.json` (a copy of the changes file) and a line
/// `N added=... removed=...` in `runs`.
fn watcher(dir: &TestDir, consul: &Consul) -> std::path::PathBuf {
    let d = dir.path().display();
    let hook = format!(
        "n=$(($(cat {d}/n 2>/dev/null || echo 0) + 1)); echo $n > {d}/n; \
         cp \"$CONTAINERPILOT_WATCH_UP_CHANGES_FILE\" {d}/changes-$n.json; \
         echo \"$n added=$CONTAINERPILOT_WATCH_UP_ADDED removed=$CONTAINERPILOT_WATCH_UP_REMOVED\" >> {d}/runs"
    );
    dir.json_config(&json!({
        "consul": consul.addr(),
        "watches": [{"name": "up", "interval": "100ms"}],
        "jobs": [
            {"name": "keeper", "exec": "sleep 1000"},
            {"name": "on-change", "exec": ["sh", "-c", hook], "when": {"source": "watch.up", "each": "changed"}},
        ],
    }))
}

fn wait_run(dir: &TestDir, line: &str) {
    wait_until(&format!("hook run {line:?}"), DEADLINE, || {
        file_lines(&dir.join("runs"))
            .last()
            .is_some_and(|l| l == line)
            .then_some(())
    });
}

fn changes(dir: &TestDir, n: u32) -> Value {
    let path = dir.join(&format!("changes-{n}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

#[test]
fn an_on_change_hook_reads_added_and_removed_instances() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let _ap = Autopilot::start_plain(&watcher(&dir, &consul), &[], &[("HOSTNAME", "watcher")]);

    // The first state (no instances) comes at startup.
    wait_run(&dir, "1 added= removed=");
    let first = changes(&dir, 1);
    assert_eq!(
        first,
        json!({"instances": [], "added": [], "removed": [], "changed": []})
    );

    register(&consul, "up-1", 7001, &[]);
    wait_run(&dir, "2 added=127.0.0.1:7001 removed=");
    register(&consul, "up-2", 7002, &["replica"]);
    wait_run(&dir, "3 added=127.0.0.1:7002 removed=");
    let third = changes(&dir, 3);
    assert_eq!(ids(&third["instances"]), ["up-1", "up-2"]);
    assert_eq!(ids(&third["added"]), ["up-2"]);
    let added = &third["added"][0];
    assert_eq!(
        (
            &added["address"],
            &added["port"],
            &added["tags"],
            &added["meta"]
        ),
        (
            &json!("127.0.0.1"),
            &json!(7002),
            &json!(["replica"]),
            &json!({"zone": "a"})
        )
    );

    assert_eq!(
        consul.http_put("/v1/agent/service/deregister/up-1", ""),
        200
    );
    wait_run(&dir, "4 added= removed=127.0.0.1:7001");
    assert_eq!(ids(&changes(&dir, 4)["removed"]), ["up-1"]);

    // A tag change is a change of an instance, neither added nor removed.
    register(&consul, "up-2", 7002, &["primary"]);
    wait_run(&dir, "5 added= removed=");
    let fifth = changes(&dir, 5);
    assert_eq!(ids(&fifth["changed"]), ["up-2"]);
    assert_eq!(fifth["changed"][0]["tags"], json!(["primary"]));
}

#[test]
fn a_watch_publishes_its_first_state_once_at_startup() {
    let consul = Consul::start();
    register(&consul, "up-1", 7001, &[]);
    let dir = TestDir::new();
    let d = dir.path().display();
    let line = |name: &str, text: &str| {
        json!({
            "name": format!("on-{name}"),
            "exec": ["sh", "-c", format!("echo \"{text}\" >> {d}/{name}")],
            "when": {"source": format!("watch.{name}"), "each": "changed"},
        })
    };
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "watches": [
            {"name": "up", "interval": "100ms"},
            {"name": "ghost", "interval": "100ms"},
            {"name": "flag", "key": "app/flag", "interval": "100ms"},
        ],
        "jobs": [
            {"name": "keeper", "exec": "sleep 1000"},
            line("up", "$CONTAINERPILOT_WATCH_UP_COUNT added=$CONTAINERPILOT_WATCH_UP_ADDED"),
            line("ghost", "$CONTAINERPILOT_WATCH_GHOST_COUNT added=$CONTAINERPILOT_WATCH_GHOST_ADDED"),
            line("flag", "${CONTAINERPILOT_WATCH_FLAG_VALUE-unset}"),
            {
                "name": "on-ghost-unhealthy",
                "exec": ["sh", "-c", format!("echo unhealthy >> {d}/ghost-health")],
                "when": {"source": "watch.ghost", "each": "unhealthy"},
            },
        ],
    }));
    let _ap = Autopilot::start_plain(&cfg, &[], &[("HOSTNAME", "first-state")]);
    let path = |name: &str| dir.join(name);
    wait_until("every watch's first state", DEADLINE, || {
        let all = [
            (path("up"), "1 added=127.0.0.1:7001"),
            (path("ghost"), "0 added="),
            (path("flag"), "unset"),
            (path("ghost-health"), "unhealthy"),
        ];
        all.iter()
            .all(|(p, want)| file_lines(p) == [*want])
            .then_some(())
    });
    // Once: nothing changes, nothing more is published (several intervals,
    // while the blocking queries wait).
    holds_for("one publication per watch", Duration::from_secs(3), || {
        ["up", "ghost", "flag", "ghost-health"]
            .iter()
            .all(|n| file_lines(&path(n)).len() == 1)
    });
}
