//! A reload applies watch changes: new watches start (and their hooks get
//! their data), removed watches stop and their environment values go away.

use crate::common::*;
use serde_json::json;

fn config(
    consul: &Consul,
    log: &str,
    watches: serde_json::Value,
    hooks: &[(&str, &str)],
) -> serde_json::Value {
    let jobs: Vec<_> = hooks
        .iter()
        .map(|(watch, line)| {
            json!({
                "name": format!("on-{watch}"),
                "exec": ["sh", "-c", format!("echo \"{line}\" >> {log}")],
                "when": {"source": format!("watch.{watch}"), "each": "changed"},
            })
        })
        .collect();
    json!({"consul": consul.addr(), "jobs": jobs, "watches": watches})
}

#[test]
fn a_reload_starts_new_watches_and_stops_removed_ones() {
    let consul = Consul::start();
    let dir = TestDir::new();
    let log = dir.join("hooks.log");
    let log = log.to_str().unwrap();
    let line_a = "a=$CONTAINERPILOT_WATCH_A_VALUE";
    let line_b = "b=$CONTAINERPILOT_WATCH_B_VALUE a=${CONTAINERPILOT_WATCH_A_VALUE-unset}";
    let cfg = dir.json_config(&config(
        &consul,
        log,
        json!([{"name": "a", "key": "k/a", "interval": 0.01}]),
        &[("a", line_a)],
    ));
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    assert_eq!(consul.http_put("/v1/kv/k/a", "1"), 200);
    wait_until("the hook of watch a to see a=1", DEADLINE, || {
        file_lines(&dir.join("hooks.log"))
            .contains(&"a=1".to_string())
            .then_some(())
    });

    dir.json_config(&config(
        &consul,
        log,
        json!([{"name": "b", "key": "k/b", "interval": 0.01}]),
        &[("a", line_a), ("b", line_b)],
    ));
    let r = ap.control_request("POST", "/v3/reload", None);
    assert_eq!(r.status, 200, "{}", r.body);

    assert_eq!(consul.http_put("/v1/kv/k/b", "2"), 200);
    wait_until("the hook of the new watch b to see b=2", DEADLINE, || {
        file_lines(&dir.join("hooks.log"))
            .contains(&"b=2 a=unset".to_string())
            .then_some(())
    });
    // The removed watch no longer fires: a later change of b is seen, one of a is not.
    assert_eq!(consul.http_put("/v1/kv/k/a", "3"), 200);
    assert_eq!(consul.http_put("/v1/kv/k/b", "4"), 200);
    wait_until("the hook of watch b to see b=4", DEADLINE, || {
        file_lines(&dir.join("hooks.log"))
            .contains(&"b=4 a=unset".to_string())
            .then_some(())
    });
    let lines = file_lines(&dir.join("hooks.log"));
    assert!(
        !lines.contains(&"a=3".to_string()),
        "{lines:?}\n{}",
        ap.output()
    );
    let status: serde_json::Value =
        serde_json::from_str(&ap.control_request("GET", "/v3/status", None).body).unwrap();
    let names: Vec<&str> = status["watches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["b"], "{status}");
}
