//! Starting child processes the way a PID 1 must.
//!
//! Each child gets its own process group (so a stop or timeout can signal the
//! whole tree it started), default signal dispositions and an empty signal
//! mask (whatever the supervisor blocks or handles must not leak into the
//! app), an explicit environment, and stdin from /dev/null. We use
//! `std::process::Command` only to fork and exec; waiting is the reaper's job.

use crate::config::model::Exec;
use crate::logging;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, sigprocmask};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
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
    let mut cmd = Command::new(&exec.program);
    cmd.args(&exec.args)
        .env_clear()
        .envs(env)
        .stdin(if foreground {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let log_pipe = match output.log_name() {
        None => None,
        Some(_) => {
            let (read, write) = nix::unistd::pipe().map_err(|e| SpawnError { error: e.into() })?;
            let write2 = write.try_clone().map_err(|error| SpawnError { error })?;
            cmd.stdout(Stdio::from(write)).stderr(Stdio::from(write2));
            Some(read)
        }
    };
    // SAFETY: the closure runs between fork and exec and only calls
    // async-signal-safe functions (sigprocmask, signal).
    unsafe {
        if foreground {
            cmd.pre_exec(take_terminal);
        }
        cmd.pre_exec(reset_signals);
    }
    let child = cmd.spawn().map_err(|error| SpawnError { error })?;
    // `cmd` (and with it our copies of the pipe's write end) is dropped at the
    // end of this function, so the reader sees EOF when the child's tree closes it.
    let pid = Pid::from_raw(child.id() as i32);
    drop(child); // Never waited on here: the reaper owns waitpid.
    if let (Some(read), Some(name)) = (log_pipe, output.log_name()) {
        let last = match output {
            Output::LogKeepingLast(_, last) => Some(last.clone()),
            _ => None,
        };
        forward_lines(read, name.to_string(), last);
    }
    Ok(pid)
}

/// In the child, after it has its own process group: make that group the
/// foreground group of the terminal on stdin, if stdin is one. SIGTTOU is
/// blocked first, since a background group asking for the terminal gets it
/// otherwise; [`reset_signals`] then clears the mask.
fn take_terminal() -> io::Result<()> {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None)?;
    // SAFETY: isatty, getpgrp and tcsetpgrp are async-signal-safe syscalls
    // on fd 0; failure (no controlling terminal) only means there is no
    // terminal to take.
    unsafe {
        if libc::isatty(0) == 1 {
            libc::tcsetpgrp(0, libc::getpgrp());
        }
    }
    Ok(())
}

/// Restores default dispositions and an empty mask in the child.
///
/// Every signal the kernel knows is reset, real-time ones included: an
/// ignored signal stays ignored across exec, and autopilot may have inherited
/// ignored signals itself. In particular glibc's `posix_spawn` (what Rust's
/// `Command` uses when it can, so what a Rust parent gives us) leaves glibc's
/// internal signals 32 and 33 ignored in the new process. glibc's `sigaction`
/// refuses to touch those two, so this asks the kernel directly.
fn reset_signals() -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    // A zeroed kernel `struct sigaction` is SIG_DFL, no flags and an empty
    // mask, whatever the order of its fields on this architecture; 32 bytes
    // covers every layout Linux uses.
    let default = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (large enough, see above) and
        // writes nothing (null old action); the kernel sigset is 8 bytes.
        // Between fork and exec only raw syscalls like this one are safe.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    Ok(())
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
