//! One running config: after a reload by either path (a ContainerPilot 2
//! SIGHUP, or `POST /v3/reload`), `autopilot status` and the telemetry
//! endpoint (`/metrics`, `/status`) show the new config, never the old one.

use crate::common::*;
use serde_json::{Value, json};

/// A ContainerPilot 2 config: one sensor (a declared metric, fed by a job
/// through `-putmetric`) and one backend (a watch) per name.
fn v2_config(port: u16, names: &[&str]) -> Value {
    let sensors: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"name": format!("{n}_total"), "help": format!("sensor {n}"),
                   "type": "counter", "poll": 1, "check": ["echo", "3"]})
        })
        .collect();
    let backends: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": format!("backend_{n}"), "poll": 1, "onChange": "true"}))
        .collect();
    json!({
        "telemetry": {"port": port, "interfaces": ["lo"], "sensors": sensors},
        "backends": backends,
    })
}

fn get(port: u16, path: &str) -> HttpResponse {
    http_request(&format!("127.0.0.1:{port}"), "GET", path, None, DEADLINE)
        .unwrap_or_else(|e| panic!("GET {path} on the telemetry port {port}: {e}"))
}

/// Waits until the control socket's status, telemetry's `/status` and
/// `/metrics` all show `name`'s backend and its sensor's value.
fn wait_config_shown(ap: &Autopilot, port: u16, name: &str) {
    let watch = format!("backend_{name}");
    let metric = format!("{name}_total");
    wait_until(
        &format!("`autopilot status` to list the watch {watch}"),
        DEADLINE,
        || {
            let (code, out, _) = ap.control_command(&["status", "-json"]);
            let status: Value = serde_json::from_str(&out).ok()?;
            let names: Vec<&str> = status["watches"]
                .as_array()?
                .iter()
                .filter_map(|w| w["name"].as_str())
                .collect();
            (code == 0 && names.contains(&watch.as_str())).then_some(())
        },
    );
    wait_until(
        &format!("telemetry /status to list the watch {watch}"),
        DEADLINE,
        || {
            let status: Value = serde_json::from_str(&get(port, "/status").body).ok()?;
            let watches = status["Watches"].as_array()?;
            watches.iter().any(|w| w == &json!(watch)).then_some(())
        },
    );
    wait_until(
        &format!("/metrics to show a value of `{metric}` (from its sensor)"),
        DEADLINE,
        || {
            let text = get(port, "/metrics").body;
            let value = text.lines().find_map(|l| {
                l.strip_prefix(metric.as_str())?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })?;
            (value > 0.0).then_some(())
        },
    );
}

#[test]
fn status_and_metrics_follow_a_sighup_reload_and_a_control_reload() {
    let dir = TestDir::new();
    let port = free_port();
    let path = dir.write("containerpilot.json", v2_config(port, &["one"]).to_string());
    let mut ap = Autopilot::start_pid1(&path, &["sleep", "1000"], &[]);
    wait_config_shown(&ap, port, "one");

    // ContainerPilot 2's SIGHUP re-reads the file.
    dir.write(
        "containerpilot.json",
        v2_config(port, &["one", "two"]).to_string(),
    );
    ap.signal(libc::SIGHUP);
    wait_config_shown(&ap, port, "two");

    // The control socket's reload takes the same path.
    dir.write(
        "containerpilot.json",
        v2_config(port, &["three"]).to_string(),
    );
    let r = ap.control_request("POST", "/v3/reload", None);
    assert_eq!(r.status, 200, "{}", r.body);
    wait_config_shown(&ap, port, "three");
    let (_, out, _) = ap.control_command(&["status", "-json"]);
    assert!(
        !out.contains("backend_one"),
        "a removed watch is listed: {out}"
    );
    let status = get(port, "/status").body;
    assert!(!status.contains("backend_two"), "{status}");

    ap.signal(libc::SIGTERM);
    // The app (`sleep`) ends by the SIGTERM it is sent.
    assert_eq!(ap.wait_exit(DEADLINE), 143, "{}", ap.output());
}
