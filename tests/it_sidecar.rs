//! Sidecar mode (docs/sidecar.md): autopilot as an ordinary process (not
//! PID 1) beside an app it did not start, as in a Kubernetes pod.
//!
//! The pod's network is a fresh network namespace with only `lo`, entered by
//! the test's own thread ([`PodNetwork`]): Consul, the app (python3's
//! http.server) and autopilot are all started from that thread, so they share
//! that loopback as a pod's containers share theirs, and nothing else on the
//! machine can collide with their ports. (Consul runs inside the pod network
//! too: a node-local agent reached over a veth pair would test the kernel's
//! routing, not autopilot.)
//!
//! The shared PID namespace test builds a pod's process namespace by hand: a
//! `sleep` as PID 1 (the pause container), a bystander started by the test
//! (the app container's process) and autopilot entered with `nsenter`.

use crate::common::*;
use serde_json::{Value, json};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh network namespace for the calling thread, with `lo` up, like a
/// pod's. Every process the thread starts from now on lives in it. Dropping
/// it puts the thread back in its original namespace; the pod's namespace
/// goes away with the last process in it.
///
/// Namespaces belong to threads, and libtest runs each test on a thread of
/// its own, so parallel tests are not affected.
struct PodNetwork {
    original: File,
}

impl PodNetwork {
    fn enter() -> PodNetwork {
        require_root("a test enters a network namespace of its own");
        let original = File::open("/proc/thread-self/ns/net").expect("open our network namespace");
        // SAFETY: unshare with CLONE_NEWNET only changes this thread's namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        let (code, out) = run_cmd("ip", ["link", "set", "lo", "up"]);
        assert_eq!(
            code, 0,
            "ip link set lo up (is iproute2 installed? run scripts/install-deps.sh): {out}"
        );
        PodNetwork { original }
    }
}

impl PodNetwork {
    /// Whether `pid` lives in this pod network (and not in the test's own).
    fn holds(&self, pid: i32) -> bool {
        let ino = |path: String| std::fs::metadata(path).map(|m| m.ino()).ok();
        let own = ino("/proc/thread-self/ns/net".into());
        let original = self.original.metadata().map(|m| m.ino()).ok();
        own.is_some() && own != original && ino(format!("/proc/{pid}/ns/net")) == own
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        // SAFETY: setns on a namespace file we opened; affects this thread only.
        let rc = unsafe { libc::setns(self.original.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            eprintln!(
                "cannot return to the original network namespace: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// A process the test started (the app, a bystander); SIGKILLed on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(program: &str, args: &[&str]) -> Proc {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Proc { child }
    }

    /// The app: python3's http.server on `127.0.0.1:port`, serving `dir`
    /// (so `GET /health` is 200 while the file `health` exists, else 404).
    fn http_app(port: u16, dir: &Path) -> Proc {
        std::fs::create_dir_all(dir).expect("create the app's directory");
        let app = Proc::spawn(
            "python3",
            &[
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--directory",
                dir.to_str().unwrap(),
                &port.to_string(),
            ],
        );
        wait_until("the app to listen", DEADLINE, || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(drop)
        });
        app
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status of the TTL check of service `id` on the agent, if registered.
fn check_status(consul: &Consul, id: &str) -> Option<String> {
    consul
        .get_json("/v1/agent/checks")
        .get(format!("service:{id}"))
        .and_then(|c| c["Status"].as_str())
        .map(String::from)
}

fn wait_status(consul: &Consul, id: &str, want: &str, deadline: Duration) {
    wait_until(&format!("{id} {want} in consul"), deadline, || {
        (check_status(consul, id).as_deref() == Some(want)).then_some(())
    });
}

fn registered(consul: &Consul, id: &str) -> bool {
    consul.http_get(&format!("/v1/agent/service/{id}")).0 == 200
}

/// GET `path` on the telemetry port: (status, JSON body).
fn probe(port: u16, path: &str) -> (u16, Value) {
    let r = http_request(&format!("127.0.0.1:{port}"), "GET", path, None, DEADLINE)
        .unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"));
    let body = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.body));
    (r.status, body)
}

/// Waits until `GET path` answers `status`; returns the body then.
fn wait_probe(port: u16, path: &str, status: u16) -> Value {
    wait_until(&format!("GET {path} to answer {status}"), DEADLINE, || {
        http_request(&format!("127.0.0.1:{port}"), "GET", path, None, DEADLINE)
            .ok()
            .filter(|r| r.status == status)
            .map(|r| serde_json::from_str::<Value>(&r.body).expect("JSON body"))
    })
}

/// A no-exec job advertising the app on `port`, checked by GET /health.
fn web_job(port: u16) -> Value {
    json!({
        "name": "web",
        "port": port,
        "health": {
            "http": {"url": format!("http://127.0.0.1:{port}/health"), "status": "200-299"},
            "interval": 1, "ttl": 10, "timeout": "2s",
        },
    })
}

#[test]
fn http_and_tcp_checks_drive_consul_status_beside_the_app() {
    let net = PodNetwork::enter();
    let consul = Consul::start();
    let dir = TestDir::new();
    let ports = free_ports(2);
    let (web_port, db_port) = (ports[0], ports[1]);
    let app = Proc::http_app(web_port, &dir.join("www"));
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "jobs": [
            web_job(web_port),
            {
                "name": "db",
                "port": db_port,
                "health": {"tcp": format!("localhost:{db_port}"), "interval": 1, "ttl": 10},
            },
        ],
    }));
    let mut ap = Autopilot::start_plain(&cfg, &[], &[("HOSTNAME", "pod-1")]);
    let pid = ap.autopilot_host_pid();
    assert_ne!(ns_pids(pid).last(), Some(&1));
    for (what, pid) in [
        ("autopilot", pid),
        ("the app", app.pid()),
        ("consul", consul.pid().unwrap()),
    ] {
        assert!(
            net.holds(pid),
            "{what} is not in the pod's network namespace"
        );
    }

    // No /health file yet, nothing on the db port: both critical, by their checks.
    let out =
        ap.wait_output_where("both checks to fail once", DEADLINE, |t| {
            t.contains(&format!(
            "web: unhealthy: GET http://127.0.0.1:{web_port}/health answered 404, expected 200-299"
        )) && t.contains(&format!("db: unhealthy: cannot connect to localhost:{db_port}"))
        });
    assert!(out.contains("not PID 1"), "{out}");
    wait_status(&consul, "web-pod-1", "critical", DEADLINE);
    wait_status(&consul, "db-pod-1", "critical", DEADLINE);

    dir.write("www/health", "ok");
    let mut db = Proc::http_app(db_port, &dir.join("db"));
    wait_status(&consul, "web-pod-1", "passing", DEADLINE);
    wait_status(&consul, "db-pod-1", "passing", DEADLINE);
    let web = &consul.passing_instances("web")[0]["Service"];
    assert_eq!(
        (web["Address"].as_str(), web["Port"].as_u64()),
        (Some("127.0.0.1"), Some(web_port as u64)),
        "a pod network with only lo advertises the loopback address"
    );

    // Both were refreshed every second with a 10 s TTL: only a failed check
    // can make them critical before the TTL runs out.
    std::fs::remove_file(dir.join("www/health")).unwrap();
    db.kill();
    wait_until(
        "web and db critical before their TTL runs out",
        Duration::from_secs(9),
        || {
            (check_status(&consul, "web-pod-1").as_deref() == Some("critical")
                && check_status(&consul, "db-pod-1").as_deref() == Some("critical"))
            .then_some(())
        },
    );
    assert!(
        ap.try_status().is_none(),
        "autopilot exited:\n{}",
        ap.output()
    );
}

#[test]
fn probes_answer_as_documented() {
    let _net = PodNetwork::enter();
    let dir = TestDir::new();
    let ports = free_ports(2);
    let (web_port, probes) = (ports[0], ports[1]);
    let _app = Proc::http_app(web_port, &dir.join("www"));
    // Runs on SIGTERM: what the kubelet would see while autopilot stops.
    let record = format!(
        "for p in live ready; do curl -s -o /dev/null -w '%{{http_code}}\\n' \
         http://127.0.0.1:{probes}/$p >> {log}; done",
        log = dir.join("at_stop").display()
    );
    let cfg = dir.json_config(&json!({
        "telemetry": {"port": probes},
        "jobs": [
            web_job(web_port),
            {"name": "drain", "exec": ["sh", "-c", record], "when": {"source": "web", "once": "stopping"}},
        ],
    }));
    let mut ap = Autopilot::start_plain(&cfg, &[], &[]);

    let live = wait_probe(probes, "/live", 200);
    assert_eq!(live, json!({"live": true}));
    // Not checked yet, or checked and failing: not ready, and it says who.
    let (status, ready) = wait_until("web running in /ready", DEADLINE, || {
        let (status, r) = probe(probes, "/ready");
        (r["jobs"][0]["state"] == "running").then_some((status, r))
    });
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["notReady"], json!(["web"]));
    assert_eq!(ready["jobs"][0]["name"], "web");
    assert_eq!(ready["jobs"][0]["state"], "running");
    let unhealthy = wait_until("web unhealthy in /ready", DEADLINE, || {
        let (_, r) = probe(probes, "/ready");
        (r["jobs"][0]["health"] == "unhealthy").then_some(r)
    });
    assert_eq!(unhealthy["notReady"], json!(["web"]));

    dir.write("www/health", "ok");
    let ready = wait_probe(probes, "/ready", 200);
    assert_eq!(
        ready,
        json!({"ready": true, "notReady": [],
               "jobs": [{"name": "web", "state": "running", "health": "healthy"}]}),
        "the telemetry service itself is not part of readiness"
    );

    // Maintenance takes the pod out of rotation too.
    let (code, _, err) = ap.control_command(&["maintenance", "enable"]);
    assert_eq!(code, 0, "{err}");
    let body = wait_probe(probes, "/ready", 503);
    assert_eq!(body["jobs"][0]["health"], "maintenance");
    let (code, _, err) = ap.control_command(&["maintenance", "disable"]);
    assert_eq!(code, 0, "{err}");
    wait_probe(probes, "/ready", 200);

    // Other methods and paths say what is there.
    let r = http_request(
        &format!("127.0.0.1:{probes}"),
        "POST",
        "/ready",
        None,
        DEADLINE,
    )
    .unwrap();
    assert_eq!(r.status, 405);
    let r = http_request(
        &format!("127.0.0.1:{probes}"),
        "GET",
        "/healthz",
        None,
        DEADLINE,
    )
    .unwrap();
    assert_eq!(r.status, 404);
    assert!(r.body.contains("/live and /ready"), "{}", r.body);

    // On SIGTERM: still live (do not restart a container that is stopping),
    // no longer ready.
    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(DEADLINE), 0, "{}", ap.output());
    assert_eq!(
        file_lines(&dir.join("at_stop")),
        ["200", "503"],
        "/live and /ready during shutdown; output:\n{}",
        ap.output()
    );
}

#[test]
fn sigterm_deregisters_first_then_runs_stop_hooks_and_exits_in_time() {
    let _net = PodNetwork::enter();
    let consul = Consul::start();
    let dir = TestDir::new();
    let web_port = free_port();
    let _app = Proc::http_app(web_port, &dir.join("www"));
    dir.write("www/health", "ok");
    // The stop hook asks Consul whether `web` is still registered.
    let hook = format!(
        "curl -s -o /dev/null -w '%{{http_code}}\\n' \
         http://{consul}/v1/agent/service/web-pod-3 > {dir}/at_hook; \
         echo done >> {dir}/at_hook",
        consul = consul.addr(),
        dir = dir.path().display()
    );
    let post = format!("echo stopped > {}/post", dir.path().display());
    let cfg = dir.json_config(&json!({
        "consul": consul.addr(),
        "stopTimeout": "5s",
        "jobs": [
            web_job(web_port),
            {"name": "preStop", "exec": ["sh", "-c", hook], "when": {"source": "web", "once": "stopping"}},
            {"name": "postStop", "exec": ["sh", "-c", post], "when": {"source": "web", "once": "stopped"}},
        ],
    }));
    let mut ap = Autopilot::start_plain(&cfg, &[], &[("HOSTNAME", "pod-3")]);
    wait_status(&consul, "web-pod-3", "passing", DEADLINE);

    let start = Instant::now();
    ap.signal(libc::SIGTERM);
    let code = ap.wait_exit(DEADLINE);
    let took = start.elapsed();
    let out = ap.output();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        file_lines(&dir.join("at_hook")),
        ["404", "done"],
        "the stop hook must run after `web` left Consul; output:\n{out}"
    );
    assert_eq!(dir.read("post").as_deref(), Some("stopped\n"), "{out}");
    assert!(!registered(&consul, "web-pod-3"), "{out}");
    // Nothing to wait for: well inside stopTimeout (and so the pod's grace period).
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} to stop:\n{out}"
    );
}

/// A bystander: logs every signal it catches to `log`, one name a line,
/// and writes `ready` once its handlers are in place.
const BYSTANDER: &str = r#"
import signal, sys
log, ready = sys.argv[1], sys.argv[2]
def caught(sig, frame):
    with open(log, "a") as f:
        f.write(signal.Signals(sig).name + "\n")
for s in signal.valid_signals():
    if s in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        continue
    try:
        signal.signal(s, caught)
    except (OSError, ValueError):
        pass
open(ready, "w").close()
while True:
    signal.pause()
"#;

/// A pod's PID namespace: `sleep` as PID 1 (the pause container), in a new
/// mount namespace with its own /proc. Dropping it kills the namespace.
struct PodPids {
    unshare: Child,
    pause: i32,
}

impl PodPids {
    fn start() -> PodPids {
        require_root("the test builds a PID namespace with unshare");
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare");
        let pid = unshare.id() as i32;
        let pause = wait_until("unshare to start the pause process", DEADLINE, || {
            children_of(pid)
                .first()
                .copied()
                .filter(|&p| proc_cmdline(p).as_deref() == Some("sleep 1000"))
        });
        PodPids { unshare, pause }
    }

    /// `nsenter` arguments that run a program inside this PID namespace.
    fn nsenter_args(&self) -> Vec<String> {
        ["-t", &self.pause.to_string(), "--pid", "--mount", "--"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

impl Drop for PodPids {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

#[test]
fn in_a_shared_pid_namespace_only_processes_it_started_get_signals() {
    let pod = PodPids::start();
    let dir = TestDir::new();
    let nsenter = which("nsenter").expect("nsenter (util-linux) is not installed");
    let nsenter = nsenter.to_str().unwrap();

    // The app container's process, started by the test, not by autopilot.
    let script = dir.write("bystander.py", BYSTANDER);
    let caught = dir.join("bystander.log");
    let ready = dir.join("bystander.ready");
    let mut args = pod.nsenter_args();
    args.extend(
        ["python3", script.to_str().unwrap()]
            .into_iter()
            .map(String::from),
    );
    args.push(caught.to_str().unwrap().into());
    args.push(ready.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bystander_enter = Proc::spawn(nsenter, &args);
    wait_until("the bystander's handlers", DEADLINE, || {
        ready.exists().then_some(())
    });
    let bystander = wait_until("the bystander's pid", DEADLINE, || {
        children_of(bystander_enter.pid()).first().copied()
    });

    // Autopilot's jobs: one ignores SIGTERM (so the stop deadline runs out
    // and the SIGKILL path runs), logging what is forwarded to it; two
    // react to the SIGHUP and SIGUSR2 events.
    let forwarded = dir.join("forwarded.log");
    let stubborn = format!(
        "ulimit -c 0; for s in USR1 QUIT WINCH ALRM; do trap \"echo $s >> {log}\" $s; done; \
         trap '' TERM INT; echo started >> {log}; while true; do sleep 1000 & wait $!; done",
        log = forwarded.display()
    );
    let events = dir.join("events.log");
    let on = |sig: &str| {
        json!({
            "name": format!("on-{}", sig.to_lowercase()),
            "exec": ["sh", "-c", format!("echo {sig} >> {}", events.display())],
            "when": {"source": sig, "each": sig},
        })
    };
    let cfg = dir.json_config(&json!({
        "stopTimeout": "2s",
        "jobs": [
            {"name": "stubborn", "exec": ["sh", "-c", stubborn]},
            on("SIGHUP"),
            on("SIGUSR2"),
        ],
    }));
    let mut args = pod.nsenter_args();
    args.extend([autopilot_bin().to_str().unwrap().to_string()]);
    args.extend(["-config".to_string(), cfg.to_str().unwrap().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ap = Autopilot::program_plain(Path::new(nsenter), &args, &[]);
    let autopilot = wait_until("autopilot inside the pod's PID namespace", DEADLINE, || {
        children_of(ap.spawned_pid())
            .first()
            .copied()
            .filter(|&p| proc_cmdline(p).is_some_and(|c| c.contains("-config")))
    });
    let ns_pid = *ns_pids(autopilot).last().unwrap();
    assert!(
        ns_pid > 1,
        "autopilot must not be PID 1 here (it is {ns_pid})"
    );
    wait_until("the stubborn job to start", DEADLINE, || {
        file_lines(&forwarded)
            .contains(&"started".into())
            .then_some(())
    });

    // Every signal autopilot handles, then SIGTERM; each is seen to be
    // handled (forwarded, or turned into an event) before the next.
    for (sig, name, seen) in [
        (libc::SIGUSR1, "USR1", &forwarded),
        (libc::SIGQUIT, "QUIT", &forwarded),
        (libc::SIGWINCH, "WINCH", &forwarded),
        (libc::SIGALRM, "ALRM", &forwarded),
        (libc::SIGHUP, "SIGHUP", &events),
        (libc::SIGUSR2, "SIGUSR2", &events),
    ] {
        assert!(kill(autopilot, sig), "kill autopilot with {name}");
        wait_until(&format!("{name} to be handled"), DEADLINE, || {
            file_lines(seen).contains(&name.to_string()).then_some(())
        });
    }
    assert!(kill(autopilot, libc::SIGCONT));
    let jobs = descendants_of(autopilot);
    assert!(!jobs.is_empty());
    assert!(kill(autopilot, libc::SIGTERM));
    // The stubborn job ignores SIGTERM: the 2 s stop deadline runs out and
    // its process group is killed, and nothing beyond it.
    let code = ap.wait_exit(DEADLINE);
    let out = ap.output();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stop timeout of 2s reached"), "{out}");
    assert!(out.contains("not PID 1"), "{out}");
    assert!(
        pid_alive(bystander),
        "the bystander was killed; autopilot's output:\n{out}"
    );
    assert_eq!(
        file_lines(&caught),
        Vec::<String>::new(),
        "signals reached a process autopilot did not start; output:\n{out}"
    );
    let left: Vec<i32> = jobs.into_iter().filter(|&p| pid_alive(p)).collect();
    assert!(
        left.is_empty(),
        "autopilot's own processes {left:?} outlived it"
    );
}

/// `autopilot check` on one job with `health`: (exit code, stderr).
fn check_health(dir: &TestDir, health: &str) -> (i32, String) {
    let cfg = dir.write(
        "bad.json5",
        format!("{{\n  jobs: [{{name: \"web\", port: 8080,\n    health: {{{health}, interval: 5, ttl: 15}}}}],\n}}\n"),
    );
    let (code, _, err) = run_autopilot(&["check", "-config", cfg.to_str().unwrap()], &[]);
    (code, err)
}

#[test]
fn bad_http_and_tcp_check_values_are_clear_errors() {
    let dir = TestDir::new();
    // (health, what the error must say) — each names the key, the line and
    // the column, and tells how to fix it.
    let cases = [
        (
            "http: \"localhost:8080/health\"",
            "error: jobs[0].health.http: `localhost:8080/health` is not an http:// or https:// URL",
            "help: write a full URL, for example `http://localhost:8080/health`",
        ),
        (
            "http: {url: \"http://127.0.0.1:8080/\", status: \"299-200\"}",
            "error: jobs[0].health.http.status: the status range `299-200` ends before it starts",
            "help: write the lower status first: `\"200-299\"`",
        ),
        (
            "http: {url: \"http://127.0.0.1:8080/\", status: \"600\"}",
            "error: jobs[0].health.http.status: invalid status `600`",
            "between 100 and 599",
        ),
        (
            "http: {url: \"https://127.0.0.1:8443/\", insecure: true}",
            "error: jobs[0].health.http.insecure: unknown key `insecure`",
            "use an `exec` check with `curl -k`",
        ),
        (
            "tcp: \"localhost\"",
            "error: jobs[0].health.tcp: `localhost` is not a `host:port` address: the port is missing",
            "help: add the port to connect to, for example `localhost:5432`",
        ),
        (
            "tcp: \"::1:5432\"",
            "error: jobs[0].health.tcp: `::1:5432` is ambiguous: an IPv6 address needs brackets",
            "help: write `[::1]:5432`",
        ),
        (
            "tcp: \"db:70000\"",
            "error: jobs[0].health.tcp: `70000` in `db:70000` is not a port number",
            "help: write a port between 1 and 65535",
        ),
    ];
    for (health, error, help) in cases {
        let (code, err) = check_health(&dir, health);
        assert_eq!(code, 2, "{health}: {err}");
        assert!(
            err.contains(error),
            "{health}: expected {error:?} in:\n{err}"
        );
        assert!(err.contains(help), "{health}: expected {help:?} in:\n{err}");
        assert!(
            err.contains("bad.json5:3:"),
            "{health}: no line:col in:\n{err}"
        );
    }
    // Running (not just checking) refuses the config the same way, before
    // starting anything.
    let cfg = dir.join("bad.json5");
    let (code, out, err) = run_autopilot(&["-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not a port number"), "{err}");
}

/// The repository's examples/kubernetes directory.
fn k8s_examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes")
}

/// Runs tests/k8s/validate.py on `dir`: (exit code, output).
fn validate_manifests(dir: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s/validate.py");
    run_cmd(
        "python3",
        [
            script.as_os_str(),
            "--autopilot".as_ref(),
            autopilot_bin().as_os_str(),
            dir.as_os_str(),
        ],
    )
}

#[test]
fn kubernetes_example_manifests_are_valid_and_wired() {
    let (code, out) = validate_manifests(&k8s_examples());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("schema: ok"), "{out}");
    assert!(out.contains("all checks passed"), "{out}");
}

#[test]
fn the_manifest_validation_catches_mistakes() {
    // Each mistake, made in a copy of the example, must fail the validation
    // with a message that names it: the check above means something.
    let mistakes = [
        ("path: /ready", "path: /readyz", "/readyz"),
        (
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSecond: 30",
            "terminationGracePeriodSecond",
        ),
        (
            "shareProcessNamespace: true",
            "shareProcessNamespace: false",
            "shareProcessNamespace",
        ),
        ("telemetry: {port: 9090}", "telemetry: {port: 9091}", "9091"),
        (
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 8",
            "stopTimeout",
        ),
    ];
    for (from, to, named) in mistakes {
        let dir = TestDir::new();
        let mut found = false;
        for entry in std::fs::read_dir(k8s_examples()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                found |= text.contains(from);
                dir.write(
                    path.file_name().unwrap().to_str().unwrap(),
                    text.replacen(from, to, 1),
                );
            }
        }
        assert!(found, "the example no longer contains {from:?}");
        let (code, out) = validate_manifests(dir.path());
        assert_ne!(code, 0, "{from:?} -> {to:?} was not caught:\n{out}");
        assert!(
            out.contains(named),
            "{from:?} -> {to:?}: the failure does not name {named:?}:\n{out}"
        );
    }
}
