//! Starting a program without copying autopilot's page tables.
//!
//! `fork` copies the parent's page tables and then takes a copy-on-write
//! fault for every page either side touches before the child's `exec`: with
//! 200 autopilots reacting to one Consul change, that was 77% of autopilot's
//! CPU (`perf`: `copy_page_range`, page faults). Here the child is made with
//! `clone(CLONE_VM | CLONE_VFORK)`: it runs on a small stack of its own in
//! our memory while the calling thread sleeps until it has called `execve`
//! (or exited), so nothing is copied. The price is what the child may do:
//! everything that allocates or locks (the C strings, argv, envp, the PATH
//! candidates) is prepared here first, and the child only makes raw system
//! calls on that prepared data.
//!
//! Why hand-written: std's `Command` forks whenever a `pre_exec` hook is set,
//! and its fast path (glibc's `posix_spawn`) leaves glibc's internal signals
//! 32 and 33 ignored in the child and cannot hand over the terminal; no crate
//! offers a vfork-style spawn with a full signal reset and `tcsetpgrp`.
//!
//! The gain, measured on the 2-CPU build machine (docs/consul.md, "Without
//! `fork`"): `bash benches/spawn.sh` puts autopilot's CPU per hook start at
//! 0.21 ms instead of 0.49 to 0.54 ms, and the hook's own at 0.6 instead of
//! 0.8 ms (a forked child's exec also tore down its copy of our memory); with
//! 200 autopilots on one Consul (`benches/consul_scale.sh`), 0.96 instead of
//! 1.33 ms of autopilot CPU per change and watcher, p99 change -> hook start
//! 273 instead of 354 ms.
//!
//! What the child sees is what std's fork path gave it: stdin, stdout and
//! stderr as asked, its own process group, default dispositions for every
//! signal, an empty mask, and glibc `execvp`'s PATH search over the child's
//! own `PATH` (or `/bin:/usr/bin`), including its fallback of running a file
//! without a `#!` line with `/bin/sh`. There is no `fork` fallback: every
//! kernel Rust supports has these clone flags, and Docker's default seccomp
//! profile filters only clone's namespace flags.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack. It runs a handful of system calls with small frames;
/// glibc's `posix_spawn` makes do with 32 KiB plus argv.
const CHILD_STACK: usize = 64 * 1024;

/// The search path glibc's `execvp` uses when `PATH` is unset (`_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// What a program name containing no `/` may be at most (`NAME_MAX`), as
/// glibc's `execvp` checks before searching.
const NAME_MAX: usize = 255;

/// The child's file descriptors 0, 1 and 2.
pub struct Stdio<'a> {
    /// Dup'ed onto fd 0, or `None` to inherit ours.
    pub stdin: Option<BorrowedFd<'a>>,
    /// Dup'ed onto fds 1 and 2, or `None` to inherit ours.
    pub output: Option<BorrowedFd<'a>>,
}

/// Starts `program` with `args` and exactly the environment `env`, in a new
/// process group; with `foreground`, that group also becomes the foreground
/// group of the terminal on stdin, if stdin is one. Returns the pid once the
/// program runs; an error (with the errno `execvp` would give) if it cannot
/// be started, the failed child already reaped.
pub fn spawn(
    program: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    stdio: Stdio<'_>,
    foreground: bool,
) -> io::Result<libc::pid_t> {
    let candidates = candidates(program, env.get("PATH").map(String::as_str))?;
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(c_string)
        .collect::<io::Result<_>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| c_string(&format!("{k}={v}")))
        .collect::<io::Result<_>>()?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    let candidate_ptrs: Vec<*const c_char> = candidates.iter().map(|c| c.as_ptr()).collect();
    // glibc's script fallback: `/bin/sh FILE ARGS...`, FILE filled in by the child.
    let shell = c"/bin/sh";
    let mut script_argv: Vec<*const c_char> = vec![shell.as_ptr(), std::ptr::null()];
    // argv[1..] and its terminating null (only the null for a bare program).
    script_argv.extend_from_slice(&argv_ptrs[1..]);

    let args = ChildArgs {
        candidates: candidate_ptrs.as_ptr(),
        candidate_count: candidate_ptrs.len(),
        argv: argv_ptrs.as_ptr(),
        envp: envp_ptrs.as_ptr(),
        script_argv: script_argv.as_mut_ptr(),
        stdin: stdio.stdin.map_or(-1, |fd| fd.as_raw_fd()),
        output: stdio.output.map_or(-1, |fd| fd.as_raw_fd()),
        foreground,
        error: AtomicI32::new(0),
    };
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
    // Stacks grow down on every architecture Linux runs Rust on; the ABI
    // wants the top 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;

    // Block every signal (glibc's internal ones too, hence the raw call)
    // until the child has reset its handlers: until then it shares our
    // memory, and one of our handlers running there would corrupt it.
    let all = !0u64;
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask reads and writes one 8-byte kernel sigset each.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            std::mem::size_of::<u64>(),
        );
    }
    // SAFETY: the child runs `child_main` on `stack` (ours, unused otherwise,
    // alive until after clone returns, since CLONE_VFORK suspends this thread
    // until the child has exec'd or exited) and only reads `args`, which
    // outlives it for the same reason.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const ChildArgs as *mut c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: as above; `old` is the mask we had.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        );
    }
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    match args.error.load(Ordering::SeqCst) {
        0 => Ok(pid),
        errno => {
            reap(pid);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The paths `execvp` would try for `program`, in order: the program itself
/// if it contains a `/`, otherwise it under each entry of `path` (an empty
/// entry meaning the current directory).
fn candidates(program: &str, path: Option<&str>) -> io::Result<Vec<CString>> {
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if program.contains('/') {
        return Ok(vec![c_string(program)?]);
    }
    if program.len() > NAME_MAX {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    let program = c_string(program)?;
    let path = path.unwrap_or(DEFAULT_PATH);
    path.split(':')
        // glibc skips entries longer than its buffer (PATH_MAX), which only
        // a PATH longer than that can have.
        .filter(|dir| dir.len() < libc::PATH_MAX as usize)
        .map(|dir| {
            let mut full = Vec::with_capacity(dir.len() + 1 + program.as_bytes().len());
            if !dir.is_empty() {
                full.extend_from_slice(dir.as_bytes());
                full.push(b'/');
            }
            full.extend_from_slice(program.as_bytes());
            CString::new(full).map_err(|_| nul_error())
        })
        .collect()
}

fn c_string(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| nul_error())
}

/// std's error for the same mistake, so messages stay as they were.
fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte found in provided data",
    )
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Collects a child that failed to exec, so the reaper does not count it as
/// an orphan. It has already exited: CLONE_VFORK returned.
fn reap(pid: libc::pid_t) {
    loop {
        // SAFETY: waitpid on our own child, status not wanted.
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Everything the child needs, prepared by the parent; raw pointers into
/// the parent's vectors, alive until the child has exec'd or exited.
struct ChildArgs {
    candidates: *const *const c_char,
    candidate_count: usize,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// `/bin/sh`, a slot for the file, argv[1..], null.
    script_argv: *mut *const c_char,
    /// -1: inherit.
    stdin: RawFd,
    /// -1: inherit.
    output: RawFd,
    foreground: bool,
    /// The errno of the failure, set by the child when it cannot exec. In
    /// shared memory rather than through a close-on-exec pipe: CLONE_VFORK
    /// returns only once the child has exec'd or exited, so the value is
    /// final by then, and a pipe would cost three more system calls.
    error: AtomicI32,
}

/// The child, between clone and exec. It shares our memory and the stack
/// `spawn` gave it, and runs with every signal blocked: it may only make
/// system calls on `ChildArgs`, never allocate, lock or panic.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` of `spawn`, alive while we run.
    let args = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: only system calls on the prepared data; see the function doc.
    let errno = unsafe { set_up_and_exec(args) };
    args.error.store(errno, Ordering::SeqCst);
    // SAFETY: _exit ends only this process (no CLONE_THREAD), without
    // running any of the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

/// Prepares the child as std's fork path did and execs; returns the errno of
/// the step that failed.
unsafe fn set_up_and_exec(args: &ChildArgs) -> c_int {
    unsafe {
        if args.stdin >= 0 && dup_onto(args.stdin, 0) < 0 {
            return errno();
        }
        if args.output >= 0 && (dup_onto(args.output, 1) < 0 || dup_onto(args.output, 2) < 0) {
            return errno();
        }
        if libc::setpgid(0, 0) < 0 {
            return errno();
        }
        if args.foreground && libc::isatty(0) == 1 {
            // SIGTTOU is blocked (all signals are), so a background group may
            // take the terminal. Failure only means there is none to take.
            libc::tcsetpgrp(0, libc::getpid());
        }
        reset_signal_dispositions();
        let empty = 0u64;
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        );
        exec_first_candidate(args)
    }
}

/// glibc `execvp`'s loop over the candidates: go on past the errors that
/// mean "not here", remember EACCES, run a file the kernel will not exec
/// (ENOEXEC) with `/bin/sh`, and stop at any other error.
unsafe fn exec_first_candidate(args: &ChildArgs) -> c_int {
    unsafe {
        let mut got_eacces = false;
        let mut last = libc::ENOENT;
        for i in 0..args.candidate_count {
            let file = *args.candidates.add(i);
            libc::execve(file, args.argv, args.envp);
            last = errno();
            match last {
                libc::EACCES => got_eacces = true,
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                libc::ENOEXEC => {
                    *args.script_argv.add(1) = file;
                    libc::execve(*args.script_argv, args.script_argv, args.envp);
                    return errno();
                }
                _ => return last,
            }
        }
        if got_eacces { libc::EACCES } else { last }
    }
}

/// `dup2(fd, target)`, clearing close-on-exec when `fd` already is `target`
/// (dup2 does nothing then, and the child would lose the fd at exec).
unsafe fn dup_onto(fd: RawFd, target: RawFd) -> c_int {
    unsafe {
        if fd == target {
            return libc::fcntl(fd, libc::F_SETFD, 0);
        }
        loop {
            let rc = libc::dup2(fd, target);
            if rc >= 0 || errno() != libc::EINTR {
                return rc;
            }
        }
    }
}

/// Default dispositions for every signal the kernel knows, real-time ones
/// included: an ignored signal stays ignored across exec, and autopilot may
/// have inherited ignored ones itself; a handled one would otherwise run our
/// handler in our memory. glibc's `sigaction` refuses glibc's internal
/// signals 32 and 33 (which `posix_spawn` leaves ignored, and a Rust parent
/// spawns us with it), so this asks the kernel directly.
unsafe fn reset_signal_dispositions() {
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
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno; in the child, the parent thread's,
    // which is asleep until we exec or exit and does not read it after.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Waits for `pid` and returns its exit code.
    fn wait(pid: libc::pid_t) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid on our own child into a local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// Runs `program` with stdin from /dev/null; returns its output and exit code.
    fn run(program: &str, args: &[&str], env: &BTreeMap<String, String>) -> (String, i32) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let null = File::open("/dev/null").unwrap();
        let (read, write) = pipe();
        let stdio = Stdio {
            stdin: Some(null.as_fd()),
            output: Some(write.as_fd()),
        };
        let pid = spawn(program, &args, env, stdio, false).unwrap();
        drop(write);
        let mut out = String::new();
        File::from(read).read_to_string(&mut out).unwrap();
        (out, wait(pid))
    }

    fn spawn_error(program: &str, env: &BTreeMap<String, String>) -> io::Error {
        let stdio = Stdio {
            stdin: None,
            output: None,
        };
        match spawn(program, &[], env, stdio, false) {
            Ok(pid) => panic!("{program} started as pid {pid}"),
            Err(e) => e,
        }
    }

    fn executable(path: &std::path::Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_program_is_not_found_as_under_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let path = env(&[("PATH", dir.path().to_str().unwrap())]);
        for (program, env) in [
            ("/no/such/program", &BTreeMap::new()),
            ("no-such-program", &path),
            ("", &path),
        ] {
            let e = spawn_error(program, env);
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{program:?}: {e}");
        }
        let long = "x".repeat(NAME_MAX + 1);
        let e = spawn_error(&long, &path);
        assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    }

    #[test]
    fn a_file_that_cannot_be_executed_is_permission_denied_even_when_searched() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        executable(&file, "#!/bin/sh\n", 0o644);
        let e = spawn_error(file.to_str().unwrap(), &BTreeMap::new());
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        let e = spawn_error(dir.path().to_str().unwrap(), &BTreeMap::new());
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "a directory: {e}");
        // The search goes on past it, and reports EACCES only if nothing else is found.
        let path = format!("{}:/no/such/dir", dir.path().display());
        let e = spawn_error("tool", &env(&[("PATH", &path)]));
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        let later = tempfile::tempdir().unwrap();
        executable(&later.path().join("tool"), "#!/bin/sh\necho later\n", 0o755);
        let path = format!("{}:{}", dir.path().display(), later.path().display());
        assert_eq!(
            run("tool", &[], &env(&[("PATH", &path)])),
            ("later\n".into(), 0)
        );
    }

    #[test]
    fn a_nul_byte_is_refused_with_stds_message() {
        let e = spawn_error("/bin/true\0", &BTreeMap::new());
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "nul byte found in provided data");
    }

    #[test]
    fn the_program_is_searched_in_the_childs_path_or_the_default_one() {
        let dir = tempfile::tempdir().unwrap();
        executable(
            &dir.path().join("hello"),
            "#!/bin/sh\necho hi \"$@\"\n",
            0o755,
        );
        let path = format!("/no/such/dir:{}", dir.path().display());
        let env = env(&[("PATH", &path), ("WHO", "me")]);
        assert_eq!(run("hello", &["a b", "c"], &env), ("hi a b c\n".into(), 0));
        // Without PATH, glibc's default: /bin:/usr/bin.
        assert_eq!(run("true", &[], &BTreeMap::new()), (String::new(), 0));
        let e = spawn_error("hello", &BTreeMap::new());
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn the_environment_is_exactly_the_one_given() {
        let env = env(&[("A", "1"), ("B", "two words")]);
        assert_eq!(
            run("/usr/bin/env", &[], &env),
            ("A=1\nB=two words\n".into(), 0)
        );
    }

    #[test]
    fn a_file_without_a_shebang_runs_with_sh_as_under_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        executable(&file, "echo from sh: \"$0\" \"$1\"\n", 0o755);
        let (out, code) = run(file.to_str().unwrap(), &["arg"], &BTreeMap::new());
        assert_eq!(
            (out, code),
            (format!("from sh: {} arg\n", file.display()), 0)
        );
        let path = env(&[("PATH", dir.path().to_str().unwrap())]);
        let (out, code) = run("plain", &[], &path);
        assert_eq!((out, code), (format!("from sh: {} \n", file.display()), 0));
    }

    /// The value of `field` in a /proc status text.
    fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {field} in {status}"))
            .trim()
    }

    /// This thread's signal mask, as the kernel sees it.
    fn thread_mask() -> u64 {
        let mut mask = 0u64;
        // SAFETY: rt_sigprocmask writes one 8-byte kernel sigset into `mask`.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                std::ptr::null::<u64>(),
                &mut mask as *mut u64,
                std::mem::size_of::<u64>(),
            )
        };
        mask
    }

    #[test]
    fn the_child_has_its_own_group_default_signals_and_an_empty_mask() {
        // This thread blocks a signal, and the process ignores one: neither
        // may reach the child. (Signal 40 is nobody's in this test binary.)
        let mut usr1 = nix::sys::signal::SigSet::empty();
        usr1.add(nix::sys::signal::Signal::SIGUSR1);
        usr1.thread_block().unwrap();
        // SAFETY: ignoring a real-time signal nothing here uses.
        unsafe { libc::signal(40, libc::SIG_IGN) };
        let mask_before = thread_mask();

        let (out, code) = run(
            "cat",
            &["/proc/self/stat", "/proc/self/status"],
            &env(&[("PATH", "/usr/bin:/bin")]),
        );

        let mask_after = thread_mask();
        usr1.thread_unblock().unwrap();
        // SAFETY: as above.
        unsafe { libc::signal(40, libc::SIG_DFL) };
        assert_eq!(code, 0);
        assert_eq!(mask_before, 1 << (libc::SIGUSR1 - 1));
        assert_eq!(mask_after, mask_before, "the parent's mask is restored");
        let (stat, status) = out.split_once('\n').unwrap();
        let after_name: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let pid = status_field(status, "Pid");
        assert_eq!(after_name[2], pid, "process group = its own pid: {stat}");
        for field in ["SigBlk", "SigIgn", "SigCgt"] {
            assert_eq!(status_field(status, field), "0000000000000000", "{field}");
        }
    }

    #[test]
    fn the_child_has_exactly_the_three_stdio_fds() {
        let (stdin_read, stdin_write) = pipe();
        let (out_read, out_write) = pipe();
        let stdio = Stdio {
            stdin: Some(stdin_read.as_fd()),
            output: Some(out_write.as_fd()),
        };
        let ours: Vec<i32> = [&stdin_read, &stdin_write, &out_read, &out_write]
            .iter()
            .map(|fd| fd.as_raw_fd())
            .collect();
        let pid = spawn("cat", &[], &env(&[("PATH", "/bin")]), stdio, false).unwrap();
        drop((stdin_read, out_write));
        // Once `cat` echoes a line it is past its loader's own opens: the fds
        // left are the ones it was given. Besides 0, 1 and 2 it may have
        // inherited what whoever ran the tests left open without
        // close-on-exec, but none of the pipes' own fds.
        let mut stdin = File::from(stdin_write);
        stdin.write_all(b"ping\n").unwrap();
        let mut out = File::from(out_read);
        let mut echo = [0u8; 5];
        out.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping\n");
        let fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .into_string()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        for fd in 0..3 {
            assert!(fds.contains(&fd), "{fds:?}");
        }
        for fd in &ours {
            assert!(!fds.contains(fd), "fd {fd} of {ours:?} leaked: {fds:?}");
        }
        let link = |fd: i32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(link(1), link(2));
        drop(stdin);
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
        assert_eq!(wait(pid), 0);
    }

    #[test]
    fn an_inherited_stdio_fd_is_kept_and_foreground_without_a_terminal_is_harmless() {
        let (read, write) = pipe();
        let stdio = Stdio {
            stdin: None,
            output: Some(write.as_fd()),
        };
        let args = [
            "-c".to_string(),
            "readlink /proc/self/fd/0 >/dev/null && echo ok".into(),
        ];
        let pid = spawn("/bin/sh", &args, &BTreeMap::new(), stdio, true).unwrap();
        drop(write);
        let mut out = String::new();
        File::from(read).read_to_string(&mut out).unwrap();
        assert_eq!((out.as_str(), wait(pid)), ("ok\n", 0));
    }
}
