//! `autopilot -- CMD ARGS` with no config, as `ENTRYPOINT ["autopilot", "--"]`:
//! a drop-in for tini. CMD is the one main job, as PID 1: its exit code is
//! autopilot's, signals reach its whole process group (tini -g), orphans are
//! reaped, and an interactive shell owns the terminal with job control.

use crate::common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// `autopilot -- sh -c SCRIPT` as PID 1 of a fresh PID namespace.
fn tini_sh(script: &str) -> Autopilot {
    Autopilot::spawn_pid1(&["--", "sh", "-c", script], &[])
}

#[test]
fn the_exit_code_passes_through() {
    for (script, code) in [
        ("exit 0", 0),
        ("exit 42", 42),
        ("kill -USR1 $$", 128 + libc::SIGUSR1),
    ] {
        let mut ap = tini_sh(script);
        assert_eq!(ap.wait_exit(LONG), code, "{script}: {}", ap.output());
        assert_eq!(ap.output(), "", "{script}: autopilot stays quiet");
    }
    let mut ap = Autopilot::spawn_pid1(&["--", "/nonexistent/program"], &[]);
    assert_eq!(ap.wait_exit(LONG), 127, "{}", ap.output());
    // The arguments are the command's, flags included, and not templates.
    let mut ap = Autopilot::spawn_pid1(&["--", "sh", "-c", "echo \"$0\" {{ .X }}", "-config"], &[]);
    assert_eq!(ap.wait_exit(LONG), 0);
    assert_eq!(ap.output().trim(), "-config {{ .X }}");
}

#[test]
fn signals_reach_the_command_and_its_process_group() {
    let dir = TestDir::new();
    let log = dir.join("log");
    let ready = dir.join("ready");
    // A grandchild in the same process group: tini -g's group kill must reach
    // it. (Every forwarded signal reaches it too, so it ignores the others.)
    let script = format!(
        r#"(trap '' HUP USR2 INT; trap 'echo grandchild TERM >> {log}; exit 0' TERM; touch {ready}.grandchild; while :; do sleep 1; done) &
trap 'echo HUP >> {log}' HUP
trap 'echo USR2 >> {log}' USR2
trap 'echo INT >> {log}' INT
trap 'echo TERM >> {log}; wait; exit 5' TERM
touch {ready}
while :; do sleep 1 & wait $!; done"#,
        log = log.display(),
        ready = ready.display()
    );
    let mut ap = tini_sh(&script);
    let grandchild_ready = dir.join("ready.grandchild");
    wait_until("the traps", LONG, || {
        (ready.exists() && grandchild_ready.exists()).then_some(())
    });
    for (sig, line) in [
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGINT, "INT"),
    ] {
        ap.signal(sig);
        wait_line(&log, line);
    }
    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(LONG), 5, "{}", ap.output());
    let lines = file_lines(&log);
    assert!(lines.contains(&"grandchild TERM".to_string()), "{lines:?}");
    assert!(lines.contains(&"TERM".to_string()), "{lines:?}");
}

#[test]
fn orphans_are_reaped() {
    let dir = TestDir::new();
    let spawned = dir.join("spawned");
    let done = dir.join("done");
    let script = format!(
        "for i in $(seq 50); do (sleep 1 &); done; touch {spawned}; \
         while [ ! -e {done} ]; do sleep 0.1; done",
        spawned = spawned.display(),
        done = done.display()
    );
    let mut ap = tini_sh(&script);
    let root = ap.autopilot_host_pid();
    wait_until("the orphans", LONG, || spawned.exists().then_some(()));
    wait_until("the orphans to exit and be reaped", LONG, || {
        let orphans = descendants_of(root)
            .into_iter()
            .any(|p| proc_cmdline(p).as_deref() == Some("sleep 1"));
        (!orphans && zombies_under(root).is_empty()).then_some(())
    });
    std::fs::write(&done, "").unwrap();
    assert_eq!(ap.wait_exit(LONG), 0, "{}", ap.output());
}

/// Runs `autopilot ARGS` as PID 1 on a pseudo-terminal (`script`), types
/// `input`, and returns the exit code and everything the terminal showed.
fn on_a_terminal(args: &str, input: &str) -> (i32, String) {
    require_root("unshare --pid needs root");
    let inner = format!(
        "unshare --pid --fork --mount-proc --kill-child {} {args}",
        autopilot_bin().display()
    );
    let dir = TestDir::new();
    let mut child = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .env(CONTROL_SOCKET_ENV, dir.join("control.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    // Killing `script` hangs up the terminal, which ends the rest.
    let guard = KillOnDrop(child.id() as i32);
    let status = wait_until("the shell to exit", LONG, || child.try_wait().unwrap());
    std::mem::forget(guard);
    drop(stdin);
    let out = reader.join().unwrap();
    (status.code().unwrap_or(-1), out)
}

/// SIGKILLs a process if the test panics while it runs.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0, libc::SIGKILL);
    }
}

/// The first `KEY:a:b` line's numbers, as the shell printed them.
fn numbers_after(out: &str, key: &str) -> Vec<i64> {
    out.lines()
        .filter_map(|l| l.split_once(key).map(|(_, rest)| rest))
        .map(|rest| {
            rest.trim()
                .split(':')
                .map(|n| n.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
        })
        .find_map(Result::ok)
        .unwrap_or_else(|| panic!("no {key} line with numbers in:\n{out}"))
}

/// What the tests type: the shell's and its terminal's foreground process
/// group ($5 and $8 of proc(5)), a background job's group, and exit 7.
const SHELL_INPUT: &str = "set -- $(cat /proc/$$/stat); echo \"FG=$5:$8\"\n\
                           sleep 30 &\n\
                           set -- $(cat /proc/$!/stat); echo \"BG=$5\"\n\
                           kill %1\n\
                           exit 7\n";

/// The shell owned the terminal, with job control, and its exit code was
/// autopilot's.
fn assert_interactive(code: i32, out: &str) {
    assert_eq!(code, 7, "the shell's exit code:\n{out}");
    assert!(!out.contains("job control turned off"), "{out}");
    let fg = numbers_after(out, "FG=");
    assert_eq!(
        fg[0], fg[1],
        "the shell's group is the terminal's foreground group:\n{out}"
    );
    let bg = numbers_after(out, "BG=");
    assert_ne!(
        bg[0], fg[0],
        "job control puts a background job in a group of its own:\n{out}"
    );
}

#[test]
fn an_interactive_shell_owns_the_terminal_with_job_control() {
    let (code, out) = on_a_terminal("-- sh -i", SHELL_INPUT);
    assert_interactive(code, &out);
}

/// `docker run -it` with a config: the `main` job gets the terminal too.
#[test]
fn with_a_config_the_main_job_gets_the_terminal() {
    let dir = TestDir::new();
    let cfg = dir.json_config(&serde_json::json!({
        "jobs": [{"name": "shell", "exec": ["sh", "-i"], "main": true, "logging": {"raw": true}}]
    }));
    let (code, out) = on_a_terminal(&format!("-config {}", cfg.display()), SHELL_INPUT);
    assert_interactive(code, &out);
}

#[test]
fn a_reload_says_there_is_no_config_to_re_read() {
    let dir = TestDir::new();
    let ready = dir.join("ready");
    let mut ap = tini_sh(&format!(
        "touch {}; while :; do sleep 1; done",
        ready.display()
    ));
    wait_until("the command to start", LONG, || {
        ready.exists().then_some(())
    });
    wait_until("the control socket", LONG, || {
        ap.control_socket().exists().then_some(())
    });
    let reply = ap.control_request("POST", "/v3/reload", None);
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(reply.body.contains("nothing to re-read"), "{}", reply.body);
    let (code, _, stderr) = ap.control_command(&["-reload"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("nothing to re-read"), "{stderr}");
    ap.signal(libc::SIGTERM);
    assert_eq!(ap.wait_exit(LONG), 128 + libc::SIGTERM, "{}", ap.output());
}
