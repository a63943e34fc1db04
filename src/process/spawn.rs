//! Starting child processes the way a PID 1 must.
//!
//! Each child gets its own process group (so a stop or timeout can signal the
//! whole tree it started), default signal dispositions and an empty signal
//! mask (whatever the supervisor blocks or handles must not leak into the
//! app), an explicit environment, and stdin from /dev/null. The process
//! itself is made by [`clone_spawn`](super::clone_spawn) (no `fork`); waiting
//! is the reaper's job.

use super::clone_spawn;
use crate::config::model::Exec;
use crate::logging;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Each line becomes a log line tagged with this name.
    Log(String),
    /// As `Log`, and the last line is kept (a health check's failure reason).
    LogKeepingLast(String, LastLine),
    /// Inherit the supervisor's stdout/stderr untouched (`logging.raw`).
    Raw,
}

impl Output {
    /// The name output lines are logged under, unless the output is raw.
    fn log_name(&self) -> Option<&str> {
        match self {
            Output::Log(name) | Output::LogKeepingLast(name, _) => Some(name),
            Output::Raw => None,
        }
    }
}

/// The last non-empty line a child wrote, known once its output is closed.
#[derive(Debug, Clone)]
pub struct LastLine {
    /// `None` while the output is open; then the last line, if there was one.
    closed: Arc<watch::Sender<Option<Option<String>>>>,
}

impl Default for LastLine {
    fn default() -> Self {
        LastLine {
            closed: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl LastLine {
    /// The last line, once every writer has closed the output; `None` if
    /// there was none, or if the output is still open after `within` (a
    /// background process may keep it open forever).
    pub async fn wait(&self, within: std::time::Duration) -> Option<String> {
        let mut rx = self.closed.subscribe();
        let closed = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
        match closed {
            Ok(Ok(value)) => value.clone().flatten(),
            _ => None,
        }
    }
}

/// Why a process could not be started, mapped to the shell's exit codes.
#[derive(Debug)]
pub struct SpawnError {
    pub error: io::Error,
}

impl SpawnError {
    /// 127 when the program does not exist, 126 when it cannot be executed.
    pub fn exit_code(&self) -> i32 {
        match self.error.kind() {
            io::ErrorKind::NotFound => 127,
            _ => 126,
        }
    }
}

/// Whether the main job gets autopilot's stdin (and, when that is a
/// terminal, becomes its foreground process group): set once at startup, for
/// `autopilot -- CMD` and whenever autopilot's stdin is a terminal
/// (`docker run -it`), so an interactive main job works as under a shell.
static MAIN_GETS_STDIN: AtomicBool = AtomicBool::new(false);

/// See [`MAIN_GETS_STDIN`].
pub fn give_stdin_to_main(on: bool) {
    MAIN_GETS_STDIN.store(on, Ordering::Relaxed);
}

/// Whether the main job is started with [`spawn_main`] semantics.
pub fn main_gets_stdin() -> bool {
    MAIN_GETS_STDIN.load(Ordering::Relaxed)
}

/// Starts `exec` in a new process group. Returns the pid, which is also the
/// process group id.
pub fn spawn(
    exec: &Exec,
    env: &BTreeMap<String, String>,
    output: &Output,
) -> Result<Pid, SpawnError> {
    start(exec, env, output, false)
}

/// [`spawn`] for the main job when [`main_gets_stdin`]: it inherits stdin,
/// and when stdin is a terminal its process group becomes the terminal's
/// foreground group (as a shell does for the job it runs, and tini for its
/// child), so the terminal's Ctrl-C reaches it and a shell's job control works.
pub fn spawn_main(
    exec: &Exec,
    env: &BTreeMap<String, String>,
    output: &Output,
) -> Result<Pid, SpawnError> {
    start(exec, env, output, true)
}

fn start(
    exec: &Exec,
    env: &BTreeMap<String, String>,
    output: &Output,
    foreground: bool,
) -> Result<Pid, SpawnError> {
    let fail = |error: io::Error| SpawnError { error };
    // Opened per spawn (close-on-exec), as std did.
    let dev_null = if foreground {
        None
    } else {
        Some(std::fs::File::open("/dev/null").map_err(fail)?)
    };
    // Close-on-exec on both ends: only the child's fds 1 and 2 (dup2 drops
    // the flag) may hold the write end, or the reader would wait for EOF on
    // whichever unrelated child inherited it.
    let log_pipe = match output.log_name() {
        None => None,
        Some(_) => {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?)
        }
    };
    let stdio = clone_spawn::Stdio {
        stdin: dev_null.as_ref().map(|f| f.as_fd()),
        output: log_pipe.as_ref().map(|(_, write)| write.as_fd()),
    };
    let pid =
        clone_spawn::spawn(&exec.program, &exec.args, env, stdio, foreground).map_err(fail)?;
    // Our write end closes here, so the reader sees EOF when the child's
    // tree closes its copies. Never waited on here: the reaper owns waitpid.
    if let (Some((read, _write)), Some(name)) = (log_pipe, output.log_name()) {
        let last = match output {
            Output::LogKeepingLast(_, last) => Some(last.clone()),
            _ => None,
        };
        forward_lines(read, name.to_string(), last);
    }
    Ok(Pid::from_raw(pid))
}

/// Longest line kept from a child; the rest of an over-long line is dropped
/// so a runaway writer cannot grow our memory.
const MAX_LINE: usize = 64 * 1024;

fn forward_lines(read: OwnedFd, name: String, last: Option<LastLine>) {
    let receiver = match tokio::net::unix::pipe::Receiver::from_owned_fd(read) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("{name}: cannot read output: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        let mut reader = BufReader::new(receiver);
        let mut buf = Vec::new();
        let mut last_line: Option<String> = None;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    buf.truncate(MAX_LINE);
                    let line = String::from_utf8_lossy(&buf);
                    logging::job_output(&name, &line);
                    if last.is_some() && !line.trim().is_empty() {
                        last_line = Some(line.trim_end().to_string());
                    }
                }
            }
        }
        if let Some(last) = last {
            last.closed.send_replace(Some(last_line));
        }
    });
}

/// Sends `signal` to every process in the group led by `pgid`. A group that
/// is already gone is not an error.
pub fn signal_group(pgid: Pid, signal: Signal) {
    // pgid 0 would mean our own group and 1 the init group: never ours to signal.
    if pgid.as_raw() <= 1 {
        return;
    }
    match killpg(pgid, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => log::warn!("cannot send {signal} to process group {pgid}: {e}"),
    }
}

/// Whether any process (zombies included) is left in the group.
pub fn group_alive(pgid: Pid) -> bool {
    pgid.as_raw() > 1 && !matches!(killpg(pgid, None), Err(nix::errno::Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(program: &str, args: &[&str]) -> Exec {
        Exec {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn path() -> BTreeMap<String, String> {
        BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())])
    }

    #[test]
    fn a_program_that_cannot_start_maps_to_the_shells_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let cases = [
            (
                "no-such-program",
                127,
                "No such file or directory (os error 2)",
            ),
            (
                plain.to_str().unwrap(),
                126,
                "Permission denied (os error 13)",
            ),
        ];
        for (program, code, message) in cases {
            let e = spawn(&exec(program, &[]), &path(), &Output::Raw).unwrap_err();
            assert_eq!(
                (e.exit_code(), e.error.to_string().as_str()),
                (code, message)
            );
        }
    }

    /// The pipe inode behind `fd` of `pid`, if that fd is a pipe.
    fn pipe_of(pid: Pid, fd: &str) -> Option<String> {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
        let link = link.to_string_lossy();
        link.starts_with("pipe:").then(|| link.into_owned())
    }

    #[tokio::test]
    async fn a_childs_log_pipe_stays_out_of_the_next_child() {
        let first = spawn(
            &exec("sleep", &["60"]),
            &path(),
            &Output::Log("first".into()),
        )
        .unwrap();
        let second = spawn(&exec("sleep", &["60"]), &path(), &Output::Raw).unwrap();
        let log_pipe = pipe_of(first, "1").expect("the first child's stdout is its log pipe");
        let leaked: Vec<String> = std::fs::read_dir(format!("/proc/{second}/fd"))
            .unwrap()
            .filter_map(|e| pipe_of(second, e.unwrap().file_name().to_str()?))
            .filter(|p| *p == log_pipe)
            .collect();
        for pid in [first, second] {
            signal_group(pid, Signal::SIGKILL);
            nix::sys::wait::waitpid(pid, None).unwrap();
        }
        assert_eq!(leaked, Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_last_line_is_known_once_the_child_closes_its_output() {
        let last = LastLine::default();
        let output = Output::LogKeepingLast("check".into(), last.clone());
        let pid = spawn(&exec("sh", &["-c", "echo one; echo two"]), &path(), &output).unwrap();
        let line = last.wait(std::time::Duration::from_secs(10)).await;
        nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(line.as_deref(), Some("two"));
    }
}
