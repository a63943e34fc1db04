//! Telemetry: declared metrics updated through the control socket and the
//! subcommands, autopilot's own metrics, `/metrics` checked by a real
//! Prometheus parser (`promtool check metrics`), `/status`, and the
//! `containerpilot` service in a real Consul.

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

fn telemetry_config(port: u16, extra_jobs: Vec<Value>) -> Value {
    let mut jobs = vec![json!({"name": "app", "exec": ["sleep", "1000"]})];
    jobs.extend(extra_jobs);
    json!({
        "telemetry": {
            "port": port,
            "interfaces": ["lo"],
            "tags": ["metrics"],
            "metrics": [
                // Only a name: settable by that name.
                {"name": "hits", "type": "counter"},
                {"namespace": "app", "subsystem": "queue", "name": "depth", "type": "gauge", "help": "items waiting"},
                {"namespace": "app", "name": "size_bytes", "type": "histogram", "help": "response sizes"},
                {"name": "latency_seconds", "type": "summary", "help": "request latency"},
            ],
        },
        "jobs": jobs,
    })
}

fn get(port: u16, path: &str) -> HttpResponse {
    http_request(&format!("127.0.0.1:{port}"), "GET", path, None, DEADLINE)
        .unwrap_or_else(|e| panic!("GET {path} on the telemetry port {port}: {e}"))
}

fn wait_serving(port: u16) {
    wait_until("the telemetry endpoint to answer", DEADLINE, || {
        http_request(
            &format!("127.0.0.1:{port}"),
            "GET",
            "/metrics",
            None,
            DEADLINE,
        )
        .ok()
        .filter(|r| r.status == 200)
    });
}

/// The value of the sample line `series` (name with labels, as printed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Runs `promtool check metrics` on `text`: (exit code, output).
fn promtool(text: &str) -> (i32, String) {
    let bin = which("promtool")
        .or_else(|| {
            Some("/usr/local/bin/promtool".into()).filter(|p: &std::path::PathBuf| p.is_file())
        })
        .expect("promtool is not installed: run `bash scripts/install-deps.sh` as root");
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn metrics_are_updated_by_name_and_parse_with_promtool() {
    let port = free_port();
    let dir = TestDir::new();
    let cfg = dir.json_config(&telemetry_config(
        port,
        vec![json!({"name": "checked", "exec": ["sleep", "1000"], "health": {"exec": "true", "interval": 1, "ttl": 5}})],
    ));
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_serving(port);

    // Subcommands: ContainerPilot's flag form (values sent as strings by its
    // client) and the modern form; counters add, gauges set.
    assert_eq!(
        ap.control_command(&["-putmetric", "hits=2", "-putmetric", "app_queue_depth=7"])
            .0,
        0
    );
    assert_eq!(
        ap.control_command(&["putmetric", "hits=3", "app_queue_depth=4.5"])
            .0,
        0
    );
    // The socket: numbers or numeric strings; histograms and summaries observe.
    let r = ap.control_request(
        "POST",
        "/v3/metric",
        Some(r#"{"app_size_bytes": 300, "latency_seconds": "0.25"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    ap.control_request("POST", "/v3/metric", Some(r#"{"latency_seconds": 0.75}"#));

    // Unknown metrics and bad values are refused, and change nothing.
    let r = ap.control_request("POST", "/v3/metric", Some(r#"{"hits": 1, "hitz": 1}"#));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("unknown metric") && r.body.contains("Did you mean"),
        "{}",
        r.body
    );
    let r = ap.control_request("POST", "/v3/metric", Some(r#"{"hits": "lots"}"#));
    assert!(
        r.status == 400 && r.body.contains("must be a number"),
        "{}",
        r.body
    );
    let r = ap.control_request("POST", "/v3/metric", Some(r#"{"hits": -1}"#));
    assert!(
        r.status == 400 && r.body.contains("only goes up"),
        "{}",
        r.body
    );
    let (code, _, err) = ap.control_command(&["-putmetric", "nope=1"]);
    assert!(
        code == 1 && err.contains("unknown metric \"nope\""),
        "{err}"
    );

    // Health checks of `checked` get counted and timed.
    let metrics = wait_until("a health check to be counted", DEADLINE, || {
        let text = get(port, "/metrics").body;
        sample(
            &text,
            r#"containerpilot_health_checks_total{job="checked",result="passed"}"#,
        )
        .map(|_| text)
    });
    let r = get(port, "/metrics");
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));

    assert_eq!(sample(&metrics, "hits"), Some(5.0), "{metrics}");
    assert_eq!(sample(&metrics, "app_queue_depth"), Some(4.5), "{metrics}");
    assert_eq!(
        sample(&metrics, "app_size_bytes_count"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"app_size_bytes_bucket{le="500"}"#),
        None,
        "default buckets: {metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"app_size_bytes_bucket{le="+Inf"}"#),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "latency_seconds_count"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "latency_seconds_sum"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"latency_seconds{quantile="0.99"}"#),
        Some(0.75),
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP app_queue_depth items waiting\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE latency_seconds summary\n"),
        "{metrics}"
    );

    // autopilot's own metrics.
    assert_eq!(
        sample(
            &metrics,
            r#"containerpilot_events{code="startup",source="global"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"containerpilot_control_http_requests{code="400",path="/v3/metric"}"#
        ),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"containerpilot_job_restarts_total{job="app"}"#),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            r#"containerpilot_health_check_duration_seconds_count{job="checked"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "containerpilot_events_lost_total"),
        Some(0.0),
        "{metrics}"
    );

    // A real Prometheus parser accepts all of it. Exit 3 means lint remarks
    // only: counters without `_total` (ContainerPilot's names, kept for
    // dashboards, and this config's `hits`).
    let (code, out) = promtool(&metrics);
    assert!(
        code == 0 || code == 3,
        "promtool failed ({code}):\n{out}\n---\n{metrics}"
    );
    assert!(!out.contains("error"), "promtool:\n{out}\n---\n{metrics}");
    for remark in out.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            [
                "containerpilot_events ",
                "containerpilot_control_http_requests ",
                "hits "
            ]
            .iter()
            .any(|name| remark.starts_with(name)),
            "unexpected promtool remark {remark:?}:\n{out}"
        );
    }
}

#[test]
fn status_lists_advertised_jobs_and_watches() {
    let port = free_port();
    let dir = TestDir::new();
    let mut config = telemetry_config(
        port,
        vec![
            json!({"name": "web", "exec": ["sleep", "1000"], "port": 8080, "health": {"exec": "true", "interval": 1, "ttl": 5}}),
        ],
    );
    config["watches"] = json!([{"name": "db", "interval": 5}]);
    let cfg = dir.json_config(&config);
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_serving(port);
    let status = wait_until("web to be healthy in /status", DEADLINE, || {
        let v: Value = serde_json::from_str(&get(port, "/status").body).unwrap();
        let web = v["Services"]
            .as_array()?
            .iter()
            .find(|s| s["Name"] == "web")?
            .clone();
        (web["Status"] == "healthy").then_some(v)
    });
    assert_eq!(status["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["Watches"], json!(["db"]));
    let names: Vec<&str> = status["Services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "containerpilot"], "{status}");
    assert_eq!(status["Services"][1]["Port"], port);
    let r = get(port, "/nope");
    assert_eq!(r.status, 404);
    drop(ap);
}

#[test]
fn telemetry_is_the_containerpilot_service_in_consul() {
    let consul = Consul::start();
    let port = free_port();
    let dir = TestDir::new();
    let mut config = telemetry_config(port, vec![]);
    config["consul"] = json!(consul.addr());
    let cfg = dir.json_config(&config);
    let ap = Autopilot::start_pid1(&cfg, &[], &[("HOSTNAME", "telemetry-test")]);
    let instance = wait_until(
        "containerpilot to be registered and passing",
        DEADLINE,
        || {
            consul
                .passing_instances("containerpilot")
                .into_iter()
                .next()
        },
    );
    assert_eq!(instance["Service"]["ID"], "containerpilot-telemetry-test");
    assert_eq!(instance["Service"]["Port"], port);
    assert_eq!(instance["Service"]["Tags"], json!(["metrics"]));
    assert_eq!(instance["Service"]["Address"], "127.0.0.1");
    // Maintenance takes it out like any service.
    assert_eq!(ap.control_command(&["-maintenance", "enable"]).0, 0);
    wait_until("containerpilot to be deregistered", DEADLINE, || {
        consul
            .passing_instances("containerpilot")
            .is_empty()
            .then_some(())
    });
}

#[test]
fn reload_applies_new_metrics_and_a_new_port() {
    let [port, new_port] = free_ports(2)[..] else {
        unreachable!()
    };
    let dir = TestDir::new();
    let cfg = dir.json_config(&telemetry_config(port, vec![]));
    let ap = Autopilot::start_pid1(&cfg, &[], &[]);
    wait_serving(port);
    assert_eq!(ap.control_command(&["-putmetric", "hits=4"]).0, 0);

    let mut config = telemetry_config(new_port, vec![]);
    config["telemetry"]["metrics"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "added", "type": "gauge", "help": "new"}));
    dir.json_config(&config);
    let (code, out, err) = ap.control_command(&["-reload"]);
    assert_eq!(code, 0, "{err}");
    // The telemetry job advertises the new port: it is restarted, `app` is not.
    assert!(
        out.contains("1 unchanged (app), 1 restarted (containerpilot)"),
        "{out}"
    );
    wait_serving(new_port);
    assert!(
        http_request(
            &format!("127.0.0.1:{port}"),
            "GET",
            "/metrics",
            None,
            DEADLINE
        )
        .is_err()
    );
    assert_eq!(ap.control_command(&["-putmetric", "added=1"]).0, 0);
    let metrics = get(new_port, "/metrics").body;
    assert_eq!(
        sample(&metrics, "hits"),
        Some(4.0),
        "an unchanged metric keeps its value: {metrics}"
    );
    assert_eq!(sample(&metrics, "added"), Some(1.0), "{metrics}");

    // A port that is taken fails the reload and changes nothing.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    dir.json_config(&telemetry_config(taken_port, vec![]));
    let (code, _, err) = ap.control_command(&["-reload"]);
    assert!(
        code == 1 && err.contains(&format!("cannot listen on telemetry port {taken_port}")),
        "{err}"
    );
    assert_eq!(get(new_port, "/metrics").status, 200);
}

#[test]
fn a_taken_telemetry_port_stops_autopilot_at_start() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TestDir::new();
    let cfg = dir.json_config(&telemetry_config(port, vec![]));
    let mut ap = Autopilot::start_plain(&cfg, &[], &[]);
    assert_eq!(ap.wait_exit(DEADLINE), 1);
    assert!(
        ap.output()
            .contains(&format!("cannot listen on telemetry port {port}")),
        "{}",
        ap.output()
    );
}
