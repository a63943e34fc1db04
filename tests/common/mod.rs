//! Shared harness for autopilot's integration tests.
//!
//! Every integration test is a module of the single test binary
//! `tests/integration.rs` (one binary = one link, and shared helpers compile once).
//!
//! Rules the helpers enforce:
//! - The only kind of waiting is a condition with a deadline ([`wait_until`]);
//!   no bare sleeps in tests.
//! - Nothing leaks: [`Autopilot`] and [`Consul`] SIGKILL what they started on drop.
//! - Missing prerequisites FAIL (root for PID namespaces, the `consul` binary),
//!   with a message saying what to do; nothing is silently skipped.
#![allow(dead_code)]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A sensible default deadline for "this should happen soon" conditions:
/// generous, because CI shares two cores; passing tests never wait it out.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// For waits that include whole process lifetimes (a stop timeout, a run of
/// restarts): these tests must not flake on a loaded 2-core machine.
pub const LONG: Duration = Duration::from_secs(30);

/// A job's `exec` that runs `script` with `sh -c`.
pub fn sh(script: &str) -> serde_json::Value {
    serde_json::json!(["sh", "-c", script])
}

/// Starts autopilot as PID 1 and waits until its signal handlers are installed.
/// A job's script that appends `NAME-running` to `log`, then waits (in
/// a way a TERM interrupts at once) and appends `NAME-got-term` on SIGTERM
/// before exiting 0: the order of stop steps shows in `log`.
pub fn logs_term(name: &str, log: &Path) -> String {
    let l = log.display();
    format!(
        "trap 'echo {name}-got-term >> {l}; exit 0' TERM; echo {name}-running >> {l}; \
         while :; do sleep 1000 & wait $!; done"
    )
}

pub fn start_ready(config: &Path) -> Autopilot {
    let mut ap = Autopilot::start_pid1(config, &[], &[]);
    ap.wait_for_output("started as pid 1", LONG);
    ap
}

/// Checks that `ok` holds at every poll for `span` (a property over time,
/// such as "the TTL is kept alive"), panicking as soon as it does not.
pub fn holds_for(what: &str, span: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    wait_until(what, span + Duration::from_secs(5), || {
        assert!(
            ok(),
            "no longer true after {:.1}s: {what}",
            start.elapsed().as_secs_f64()
        );
        (start.elapsed() >= span).then_some(())
    });
}

/// Waits until the file has a line equal to `line`.
pub fn wait_line(path: &Path, line: &str) {
    wait_until(&format!("{line:?} in {}", path.display()), LONG, || {
        file_lines(path).iter().any(|l| l == line).then_some(())
    });
}

/// How often [`wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(25);

// ------------------------------------------------------------------ basics

/// The debug `autopilot` binary cargo built for this test run.
pub fn autopilot_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_autopilot"))
}

/// True when the tests run as root (needed for PID namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Panics with a clear message unless running as root.
pub fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test must run as root ({why}); run it via `bash scripts/test.sh` as root"
    );
}

/// Polls `f` every 25 ms until it returns `Some`, and returns that value.
/// Panics with `what` and the elapsed time when `deadline` passes.
pub fn wait_until<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= deadline {
            panic!(
                "timed out after {:.2}s (deadline {:.2}s) waiting for: {what}",
                start.elapsed().as_secs_f64(),
                deadline.as_secs_f64()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// A temporary directory, removed on drop.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("autopilot-test-")
            .tempdir()
            .expect("create temp dir");
        TestDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` (parent directories created) and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Like [`TestDir::write`], then `chmod 755` (for job scripts).
    pub fn write_executable(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.write(name, contents);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        p
    }

    /// Reads `name` if it exists.
    pub fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.join(name)).ok()
    }

    /// Writes `config` (a `serde_json::json!` value; JSON is valid JSON5) to
    /// `config.json5` and returns its path. Building configs as values keeps
    /// shell snippets inside `exec` correctly quoted.
    pub fn json_config(&self, config: &serde_json::Value) -> PathBuf {
        self.write(
            "config.json5",
            serde_json::to_string_pretty(config).expect("serialize config"),
        )
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A loopback port that is free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct loopback ports, each free for TCP and UDP right now. All sockets are
/// held until every port is chosen, so the ports are distinct.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 1000, "could not find {n} free ports");
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().unwrap().port();
        // Consul's DNS and serf use UDP on the same port number.
        let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        held.push((tcp, udp));
        ports.push(port);
    }
    ports
}

/// Looks `name` up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

// ------------------------------------------------------------------ /proc

/// (state, ppid) from /proc/<pid>/stat.
fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field is in parentheses and may contain spaces or ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

fn all_pids() -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Direct children of `pid` (scans /proc: this kernel has no /proc/<pid>/task/*/children).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = all_pids()
        .into_iter()
        .filter(|&p| stat_fields(p).map(|(_, ppid)| ppid == pid).unwrap_or(false))
        .collect();
    v.sort_unstable();
    v
}

/// All descendants of `pid` (children, grandchildren, ...), not including `pid`.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    // One scan of /proc, then walk the parent links.
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| stat_fields(p).map(|(_, ppid)| (p, ppid)))
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    let mut seen = HashSet::from([pid]);
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parents {
            if pp == p && seen.insert(c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The state letter of /proc/<pid>/stat (`R`, `S`, `D`, `T`, `Z` for zombie, ...),
/// or `None` when there is no such process.
pub fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid).map(|(s, _)| s)
}

/// The parent pid of `pid`.
pub fn ppid_of(pid: i32) -> Option<i32> {
    stat_fields(pid).map(|(_, p)| p)
}

/// True when `pid` exists and is neither a zombie nor dead (`Z`/`X`).
pub fn pid_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Descendants of `pid` that are zombies.
pub fn zombies_under(pid: i32) -> Vec<i32> {
    descendants_of(pid)
        .into_iter()
        .filter(|&p| proc_state(p) == Some('Z'))
        .collect()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn proc_cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    Some(parts.join(" "))
}

/// The pids of `pid` in each PID namespace, outermost first (the `NSpid:` line of
/// /proc/<pid>/status). The last one is the pid as seen inside its own namespace.
pub fn ns_pids(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("NSpid:").map(|r| {
                    r.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// Process group id of `pid`.
pub fn pgid_of(pid: i32) -> Option<i32> {
    // SAFETY: getpgid has no memory-safety preconditions.
    let g = unsafe { libc::getpgid(pid) };
    (g >= 0).then_some(g)
}

/// Descendants of `pid` whose command line contains `needle`.
pub fn find_descendants(pid: i32, needle: &str) -> Vec<i32> {
    descendants_of(pid)
        .into_iter()
        .filter(|&p| proc_cmdline(p).is_some_and(|c| c.contains(needle)))
        .collect()
}

/// One field of /proc/<pid>/status (`"SigBlk"`, `"VmRSS"`, ...), value trimmed.
pub fn proc_status_field(pid: i32, key: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// The environment of `pid` (/proc/<pid>/environ), as `KEY=VALUE` split at the first `=`.
pub fn proc_environ(pid: i32) -> Option<Vec<(String, String)>> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = String::from_utf8_lossy(s);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (s.into_owned(), String::new()),
                }
            })
            .collect(),
    )
}

/// The host pid of the descendant of `root` whose pid inside its own (innermost)
/// PID namespace is `ns_pid`.
pub fn host_pid_in_ns(root: i32, ns_pid: i32) -> Option<i32> {
    descendants_of(root)
        .into_iter()
        .find(|&p| ns_pids(p).last() == Some(&ns_pid))
}

/// The non-empty lines of a file, or none if it does not exist (yet).
pub fn file_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `sig` to `pid`; returns false if the process does not exist.
pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

// ------------------------------------------------------------------ output capture

/// Bytes from a child's stdout and stderr, interleaved as they arrive.
#[derive(Clone, Default)]
struct OutputBuf(Arc<Mutex<Vec<u8>>>);

impl OutputBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn spawn_reader(
        &self,
        mut r: impl Read + Send + 'static,
        echo: Option<&'static str>,
    ) -> JoinHandle<()> {
        let buf = self.0.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(tag) = echo {
                            eprint!("[{tag}] {}", String::from_utf8_lossy(&chunk[..n]));
                        }
                        buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                    }
                }
            }
        })
    }
}

/// Set AUTOPILOT_TEST_ECHO=1 to see the output of autopilot (and consul) live.
fn echo_enabled() -> bool {
    std::env::var_os("AUTOPILOT_TEST_ECHO").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Exit status as a shell would report it: the code, or 128+signal.
fn status_code(st: ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

// ------------------------------------------------------------------ autopilot

/// A running autopilot under test. Drop kills it (and, in PID 1 mode, its whole
/// PID namespace).
pub struct Autopilot {
    child: Child,
    pid1: bool,
    out: OutputBuf,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    host_pid: Option<i32>,
    /// This run's own control socket (see [`CONTROL_SOCKET_ENV`]) and the
    /// directory holding it.
    control_socket: PathBuf,
    _control_dir: TestDir,
}

/// The environment variable that overrides the config's `control.socket`.
/// [`Autopilot`] sets it to a fresh path for every run (unless the test's
/// `envs` set it, e.g. to "" to use the config's), so parallel tests never
/// share the default /var/run/containerpilot.socket.
pub const CONTROL_SOCKET_ENV: &str = "AUTOPILOT_CONTROL_SOCKET";

impl Autopilot {
    /// Runs `autopilot -config <config> <extra_args>` as PID 1 of a fresh PID
    /// namespace: `unshare --pid --fork --mount-proc --kill-child <bin> ...`.
    /// `unshare` stays in the host namespace as autopilot's parent; `--kill-child`
    /// makes the kernel SIGKILL autopilot if `unshare` dies (e.g. the test crashed).
    pub fn start_pid1(config: &Path, extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut args = vec!["-config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        Self::spawn_pid1(&args, envs)
    }

    /// Like [`Autopilot::start_pid1`] but as an ordinary child of the test.
    pub fn start_plain(config: &Path, extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut args = vec!["-config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        Self::spawn_plain(&args, envs)
    }

    /// Runs `autopilot <args>` as PID 1 of a new PID namespace (any subcommand).
    pub fn spawn_pid1(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::program_pid1(&autopilot_bin(), args, envs)
    }

    /// Runs `autopilot <args>` as an ordinary child of the test (any subcommand).
    pub fn spawn_plain(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::program_plain(&autopilot_bin(), args, envs)
    }

    /// Any program as PID 1 of a new PID namespace (used to test the harness and
    /// to run reference inits such as tini or dumb-init side by side).
    pub fn program_pid1(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        require_root("the process runs as PID 1 via unshare --pid --fork --mount-proc");
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(program)
            .args(args);
        Self::spawn(cmd, envs, true)
    }

    /// Any program as an ordinary child of the test.
    pub fn program_plain(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::spawn(cmd, envs, false)
    }

    fn spawn(mut cmd: Command, envs: &[(&str, &str)], pid1: bool) -> Self {
        let control_dir = TestDir::new();
        let mut control_socket = control_dir.join("control.sock");
        match envs.iter().find(|(k, _)| *k == CONTROL_SOCKET_ENV) {
            Some((_, v)) => control_socket = PathBuf::from(v),
            None => {
                cmd.env(CONTROL_SOCKET_ENV, &control_socket);
            }
        }
        cmd.envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let out = OutputBuf::default();
        let echo = echo_enabled();
        let readers = vec![
            out.spawn_reader(child.stdout.take().unwrap(), echo.then_some("autopilot")),
            out.spawn_reader(child.stderr.take().unwrap(), echo.then_some("autopilot")),
        ];
        let host_pid = (!pid1).then_some(child.id() as i32);
        Autopilot {
            child,
            pid1,
            out,
            readers,
            status: None,
            host_pid,
            control_socket,
            _control_dir: control_dir,
        }
    }

    /// The control socket this run was told to use through
    /// [`CONTROL_SOCKET_ENV`] (empty if the test set that to "").
    pub fn control_socket(&self) -> &Path {
        &self.control_socket
    }

    /// One HTTP request to this run's control socket (10 s timeout).
    pub fn control_request(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        http_request_unix(
            &self.control_socket,
            method,
            path,
            body.map(str::as_bytes),
            DEADLINE,
        )
        .unwrap_or_else(|e| {
            panic!(
                "{method} {path} on {}: {e}\n---- autopilot output ----\n{}",
                self.control_socket.display(),
                self.output()
            )
        })
    }

    /// Runs `autopilot <args>` (a control subcommand) against this run's
    /// socket, found through [`CONTROL_SOCKET_ENV`] as a job would find it.
    /// Returns (exit code, stdout, stderr).
    pub fn control_command(&self, args: &[&str]) -> (i32, String, String) {
        let socket = self
            .control_socket
            .to_str()
            .expect("utf-8 path")
            .to_string();
        run_autopilot(args, &[(CONTROL_SOCKET_ENV, socket.as_str())])
    }

    /// True when started with [`Autopilot::start_pid1`].
    pub fn is_pid1(&self) -> bool {
        self.pid1
    }

    /// Pid of the process the test spawned (`unshare` in PID 1 mode).
    pub fn spawned_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Autopilot's pid as seen from the host (the test's) PID namespace. In PID 1
    /// mode that is the single child of `unshare`; waits up to 5 s for the fork.
    pub fn autopilot_host_pid(&mut self) -> i32 {
        if let Some(p) = self.host_pid {
            return p;
        }
        let unshare = self.spawned_pid();
        let p = wait_until("unshare to fork autopilot", Duration::from_secs(5), || {
            children_of(unshare).first().copied()
        });
        self.host_pid = Some(p);
        p
    }

    /// Everything autopilot printed so far (stdout and stderr interleaved).
    pub fn output(&self) -> String {
        self.out.text()
    }

    /// Waits until the output contains `pattern`; returns the whole output then.
    pub fn wait_for_output(&mut self, pattern: &str, deadline: Duration) -> String {
        self.wait_output_where(&format!("output {pattern:?}"), deadline, |t| {
            t.contains(pattern)
        })
    }

    /// Waits until `pattern` occurs at least `n` times; returns the whole output then.
    pub fn wait_for_output_count(&mut self, pattern: &str, n: usize, deadline: Duration) -> String {
        self.wait_output_where(&format!("{n} x output {pattern:?}"), deadline, |t| {
            t.matches(pattern).count() >= n
        })
    }

    /// Waits until `pred(output)` holds; on timeout panics with the whole output.
    pub fn wait_output_where(
        &mut self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let text = self.output();
            if pred(&text) {
                return text;
            }
            if start.elapsed() >= deadline {
                let exited = match self.try_status() {
                    Some(c) => format!("autopilot has exited with {c}"),
                    None => "autopilot is still running".to_string(),
                };
                panic!(
                    "timed out after {:.2}s waiting for {what} ({exited}); output so far:\n{text}",
                    start.elapsed().as_secs_f64()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Number of (non-overlapping) occurrences of `pattern` in the output so far.
    pub fn count_output(&self, pattern: &str) -> usize {
        self.output().matches(pattern).count()
    }

    /// Sends `sig` to autopilot itself (not to `unshare`). Note that, as PID 1,
    /// autopilot only receives signals it has installed a handler for (and SIGKILL).
    pub fn signal(&mut self, sig: i32) {
        let pid = self.autopilot_host_pid();
        assert!(
            kill(pid, sig),
            "kill({pid}, {sig}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The exit code if it has exited (non-blocking), see [`Autopilot::wait_exit`].
    pub fn try_status(&mut self) -> Option<i32> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.map(status_code)
    }

    /// Waits for the process to exit and returns its exit code; waits (up to 2 s
    /// more) for the output pipes to close so [`Autopilot::output`] is complete.
    ///
    /// In PID 1 mode the code is `unshare`'s, which is autopilot's exit code when
    /// it exits normally. If autopilot dies of a signal other than SIGKILL,
    /// `unshare` re-raises it on itself and this returns 128+signal. If autopilot
    /// is SIGKILLed, util-linux 2.38 `unshare` prints "sigprocmask unblock failed"
    /// and exits 1. In plain mode: the code, or 128+signal.
    pub fn wait_exit(&mut self, deadline: Duration) -> i32 {
        let code = wait_until("autopilot to exit", deadline, || self.try_status());
        let start = Instant::now();
        while !self.readers.iter().all(|r| r.is_finished())
            && start.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        code
    }

    /// SIGKILLs everything: autopilot (and in plain mode its descendants), then
    /// `unshare`; reaps. Called by Drop.
    pub fn kill_all(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let spawned = self.spawned_pid();
        // Collect first: once the parent dies the children are reparented.
        let mut victims = descendants_of(spawned);
        victims.push(spawned);
        for &p in &victims {
            kill(p, libc::SIGKILL);
        }
        self.status = self.child.wait().ok();
        // Plain mode: autopilot's jobs may live in other process groups and get
        // reparented; also kill anything that escaped the first pass.
        for p in victims {
            kill(p, libc::SIGKILL);
        }
    }
}

impl Drop for Autopilot {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            eprintln!(
                "---- autopilot output ----\n{}\n---- end ----",
                self.output()
            );
        }
    }
}

// ------------------------------------------------------------------ HTTP

/// A minimal blocking HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over TCP (`addr` = "127.0.0.1:PORT"), `Connection: close`.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let sock_addr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let stream = TcpStream::connect_timeout(&sock_addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    http_exchange(stream, addr, method, path, body)
}

/// One HTTP/1.1 request over a unix socket (autopilot's control socket).
pub fn http_request_unix(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    http_exchange(stream, "control", method, path, body)
}

fn http_exchange(
    mut s: impl Read + Write,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<HttpResponse> {
    let body = body.unwrap_or(b"");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: autopilot-tests\r\n"
    );
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        req.push_str(&format!(
            "Content-Length: {}\r\nContent-Type: application/json\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_http_response(&raw)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn parse_http_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut out = Vec::new();
        loop {
            let eol = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("truncated chunk size"))?;
            let size_str = String::from_utf8_lossy(&body[..eol]);
            let size_str = size_str.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16).map_err(|_| bad("bad chunk size"))?;
            body = &body[eol + 2..];
            if size == 0 {
                break;
            }
            if body.len() < size {
                return Err(bad("truncated chunk"));
            }
            out.extend_from_slice(&body[..size]);
            body = body.get(size + 2..).unwrap_or(&[]);
        }
        out
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(n) => body[..n.min(body.len())].to_vec(),
            None => body.to_vec(),
        }
    };
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

// ------------------------------------------------------------------ consul

/// Where the `consul` binary is: PATH, then /usr/local/bin, then the repo's .deps/bin.
pub fn consul_bin() -> Option<PathBuf> {
    which("consul").or_else(|| {
        [
            PathBuf::from("/usr/local/bin/consul"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/bin/consul"),
        ]
        .into_iter()
        .find(|p| p.is_file())
    })
}

/// True when a `consul` binary is available.
pub fn consul_available() -> bool {
    consul_bin().is_some()
}

/// Panics (fails the test) when consul is missing.
pub fn require_consul() -> PathBuf {
    consul_bin().unwrap_or_else(|| {
        panic!("`consul` is not installed (not on PATH nor in /usr/local/bin): run `bash scripts/install-deps.sh` as root")
    })
}

/// The loopback ports a [`Consul`] agent listens on.
#[derive(Debug, Clone, Copy)]
pub struct ConsulPorts {
    pub http: u16,
    pub dns: u16,
    pub serf_lan: u16,
    pub serf_wan: u16,
    pub server: u16,
    pub grpc: u16,
}

/// A real `consul agent -dev` on free loopback ports, with its own data dir.
/// Dev mode keeps the catalog in memory: after [`Consul::restart`] registrations
/// are gone (as after a real agent/cluster loss), the node id is kept.
pub struct Consul {
    dir: TestDir,
    ports: ConsulPorts,
    node: String,
    child: Option<Child>,
    out: OutputBuf,
    starts: u32,
}

impl Consul {
    /// Starts an agent and waits (30 s) until it has a leader, answers
    /// /v1/agent/self and has synced its own node into the catalog.
    pub fn start() -> Self {
        Self::start_with(serde_json::json!({}))
    }

    /// Like [`Consul::start`], with `extra` merged into the agent's config
    /// (objects merge key by key, e.g. `{"ports": {"https": 8501}}` adds a port).
    pub fn start_with(extra: serde_json::Value) -> Self {
        require_consul();
        let p = free_ports(6);
        let ports = ConsulPorts {
            http: p[0],
            dns: p[1],
            serf_lan: p[2],
            serf_wan: p[3],
            server: p[4],
            grpc: p[5],
        };
        let dir = TestDir::new();
        let config = serde_json::json!({
            "ports": {
                "http": ports.http, "dns": ports.dns, "serf_lan": ports.serf_lan,
                "serf_wan": ports.serf_wan, "server": ports.server, "grpc": ports.grpc,
            },
            // Never phone home: this machine only talks to loopback.
            "disable_update_check": true,
            "disable_host_node_id": true,
        });
        let config = merge_json(config, extra);
        dir.write("config.json", serde_json::to_vec_pretty(&config).unwrap());
        fs::create_dir_all(dir.join("data")).unwrap();
        let mut c = Consul {
            node: format!("autopilot-test-{}", ports.http),
            dir,
            ports,
            child: None,
            out: OutputBuf::default(),
            starts: 0,
        };
        c.launch();
        c
    }

    fn launch(&mut self) {
        let bin = require_consul();
        let mut cmd = Command::new(bin);
        cmd.arg("agent")
            .arg("-dev")
            .args(["-bind", "127.0.0.1", "-client", "127.0.0.1"])
            .arg("-node")
            .arg(&self.node)
            .arg("-data-dir")
            .arg(self.dir.join("data"))
            .arg("-config-file")
            .arg(self.dir.join("config.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn consul");
        self.starts += 1;
        let _ = writeln!(
            self.out.0.lock().unwrap(),
            "==== consul start #{} ====",
            self.starts
        );
        let echo = echo_enabled().then_some("consul");
        self.out.spawn_reader(child.stdout.take().unwrap(), echo);
        self.out.spawn_reader(child.stderr.take().unwrap(), echo);
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Duration::from_secs(30);
        let start = Instant::now();
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("consul exited early with {st}; output:\n{}", self.output());
            }
            if self.is_ready() {
                return;
            }
            if start.elapsed() >= deadline {
                panic!(
                    "timed out after {:.1}s waiting for consul on {} to elect a leader; output:\n{}",
                    start.elapsed().as_secs_f64(),
                    self.addr(),
                    self.output()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn is_ready(&self) -> bool {
        let t = Duration::from_secs(2);
        let leader = http_request(&self.addr(), "GET", "/v1/status/leader", None, t);
        let Ok(leader) = leader else { return false };
        let leader = leader.body.trim().trim_matches('"');
        if leader.is_empty() {
            return false;
        }
        let ok = |path: &str| {
            http_request(&self.addr(), "GET", path, None, t)
                .map(|r| r.status == 200 && r.body.trim() != "null")
                .unwrap_or(false)
        };
        ok("/v1/agent/self") && ok(&format!("/v1/catalog/node/{}", self.node))
    }

    /// "127.0.0.1:HTTP_PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.http)
    }

    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    pub fn ports(&self) -> ConsulPorts {
        self.ports
    }

    /// The agent's node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Consul's own output (all starts).
    pub fn output(&self) -> String {
        self.out.text()
    }

    /// Host pid of the running agent.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// GET `path` (e.g. "/v1/catalog/services"); panics if the request fails.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let r = http_request(&self.addr(), "GET", path, None, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("GET {path} on consul {}: {e}", self.addr()));
        (r.status, r.body)
    }

    /// PUT `body` to `path`; returns the status code; panics if the request fails.
    pub fn http_put(&self, path: &str, body: &str) -> u16 {
        let r = http_request(
            &self.addr(),
            "PUT",
            path,
            Some(body.as_bytes()),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("PUT {path} on consul {}: {e}", self.addr()));
        r.status
    }

    /// GET `path` and parse the body as JSON (panics unless 200 and valid JSON).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.http_get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON ({e}): {body}"))
    }

    /// Names of services in the catalog.
    pub fn catalog_services(&self) -> Vec<String> {
        match self.get_json("/v1/catalog/services") {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Healthy (passing) instances of `service`, as /v1/health/service/<s>?passing returns.
    pub fn passing_instances(&self, service: &str) -> Vec<serde_json::Value> {
        match self.get_json(&format!("/v1/health/service/{service}?passing=1")) {
            serde_json::Value::Array(v) => v,
            _ => Vec::new(),
        }
    }

    /// Gracefully stops the agent: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            kill(pid, libc::SIGTERM);
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    kill(pid, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(POLL);
            }
        }
    }

    /// Kills the agent hard (SIGKILL), as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the agent again on the same ports and data dir, waits until ready.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts a stopped/killed agent again on the same ports and data dir.
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "consul is still running; use restart()"
        );
        self.launch();
    }
}

impl Drop for Consul {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let out = self.output();
            let tail: String = {
                let lines: Vec<&str> = out.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            eprintln!("---- consul output (last 40 lines) ----\n{tail}\n---- end ----");
        }
    }
}

/// Runs the autopilot binary to completion as an ordinary child (for commands
/// that start nothing: `-version`, `check`, `-template`, config errors), with
/// `CONTAINERPILOT` removed from its environment unless `envs` sets it.
/// Returns (exit code, stdout, stderr), kept apart.
pub fn run_autopilot(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(autopilot_bin())
        .args(args)
        .env_remove("CONTAINERPILOT")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run autopilot");
    (
        status_code(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `extra` laid over `base`: objects merge key by key, anything else replaces.
fn merge_json(base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    match (base, extra) {
        (serde_json::Value::Object(mut b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                let merged = match b.remove(&k) {
                    Some(old) => merge_json(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            serde_json::Value::Object(b)
        }
        (_, extra) => extra,
    }
}

/// Runs a command to completion, returning (exit code, stdout+stderr).
pub fn run_cmd<I, S>(program: &str, args: I) -> (i32, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (status_code(out.status), text)
}
