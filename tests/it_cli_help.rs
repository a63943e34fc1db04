//! The command line as a new user meets it: help for every command in every
//! spelling, typos answered with a suggestion, completions, man page and
//! schema in sync with the binary, `check -strict`, the cycle warning,
//! `autopilot signal`, and the README's demo run by an ordinary user.

use crate::common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every subcommand `autopilot help` lists.
fn commands() -> Vec<String> {
    let (code, stdout, stderr) = run_autopilot(&["help"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let list = stdout
        .split("Commands:\n")
        .nth(1)
        .expect("a command list")
        .split("\n\n")
        .next()
        .unwrap();
    list.lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_command_has_help_with_flags_exit_codes_and_an_example() {
    let commands = commands();
    assert!(commands.len() >= 15, "{commands:?}");
    for name in ["check", "status", "signal", "kv", "completions", "events"] {
        assert!(commands.iter().any(|c| c == name), "{name} not listed");
    }
    for name in &commands {
        let (code, help, stderr) = run_autopilot(&["help", name], &[]);
        assert_eq!(code, 0, "help {name}: {stderr}");
        assert!(
            help.starts_with(&format!("Usage: autopilot {name}")),
            "help {name}:\n{help}"
        );
        assert!(help.contains("\nExit codes:\n  0 "), "help {name}:\n{help}");
        assert!(
            help.contains("\nExample:\n  autopilot"),
            "help {name}:\n{help}"
        );
        // Every other spelling prints the same text.
        for flag in ["-help", "--help", "-h"] {
            let (code, same, stderr) = run_autopilot(&[name, flag], &[]);
            assert_eq!((code, &same), (0, &help), "{name} {flag}: {stderr}");
        }
    }
    let (_, check, _) = run_autopilot(&["help", "check"], &[]);
    assert!(check.contains("  -strict "), "{check}");
    assert!(check.contains("  3    -strict:"), "{check}");
}

#[test]
fn no_arguments_and_typos_say_what_to_do() {
    let (code, stdout, stderr) = run_autopilot(&[], &[]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("autopilot help"), "{stderr}");
    assert!(stderr.contains("autopilot -- CMD"), "{stderr}");

    let (code, _, stderr) = run_autopilot(&["stauts"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown command `stauts`") && stderr.contains("did you mean `status`?"),
        "{stderr}"
    );
    let (code, _, stderr) = run_autopilot(&["help", "chekc"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("did you mean `check`?"), "{stderr}");
    let (code, _, stderr) = run_autopilot(&["-confg", "x"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("did you mean -config?"), "{stderr}");
}

#[test]
fn a_program_as_the_first_word_is_still_an_app() {
    // ContainerPilot 2's `containerpilot -config c.json /bin/app`: the first
    // free word is the app when it is a program. With no config, it runs alone.
    let (code, _, stderr) = run_autopilot(&["sh", "-c", "exit 4"], &[]);
    assert_eq!(code, 4, "{stderr}");
}

/// `file` in the repository.
fn committed(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn committed_completions_man_page_and_schema_match_the_binary() {
    for (args, file) in [
        (&["completions", "bash"][..], "completions/autopilot.bash"),
        (&["completions", "zsh"], "completions/_autopilot"),
        (&["completions", "fish"], "completions/autopilot.fish"),
        (&["man"], "man/autopilot.1"),
        (&["schema"], "autopilot.schema.json"),
    ] {
        let (code, generated, stderr) = run_autopilot(args, &[]);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            generated == committed(file),
            "{file} is out of date: run `bash scripts/generate-cli-files.sh` and commit"
        );
    }
}

/// Runs the bash completion function for `line` (the cursor after its last
/// word) and returns the candidates.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; _autopilot; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("completions/autopilot.bash")
            .display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words.len() - 1
    );
    let (code, out) = run_cmd("bash", ["-c", script.as_str()]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_words() {
    assert_eq!(bash_complete(&["autopilot", "sta"]), vec!["status"]);
    assert_eq!(
        bash_complete(&["autopilot", "check", "-st"]),
        vec!["-strict"]
    );
    assert_eq!(
        bash_complete(&["autopilot", "maintenance", ""]),
        vec!["enable", "disable"]
    );
    assert_eq!(
        bash_complete(&["autopilot", "completions", "f"]),
        vec!["fish"]
    );
    assert_eq!(bash_complete(&["autopilot", "help", "sig"]), vec!["signal"]);
}

#[test]
fn the_man_page_renders() {
    let dir = TestDir::new();
    let (_, page, _) = run_autopilot(&["man"], &[]);
    let file = dir.write("autopilot.1", page);
    let (code, out) = run_cmd(
        "groff",
        ["-man", "-Tutf8", "-ww", "-z", file.to_str().unwrap()],
    );
    assert_eq!((code, out.as_str()), (0, ""), "groff warnings");
}

#[test]
fn check_warns_about_a_cycle_on_stderr_and_strict_fails() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "cycle.json5",
        r#"{
  jobs: [
    {name: "a", exec: "true", when: {source: "b", once: "exitSuccess"}},
    {name: "b", exec: "true", when: {source: "a", once: "exitSuccess"}},
  ],
}
"#,
    );
    let c = cfg.to_str().unwrap();
    let (code, stdout, stderr) = run_autopilot(&["check", "-config", c], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("job a (line 3)"), "{stdout}");
    assert!(
        !stdout.contains("warning"),
        "warnings go to stderr:\n{stdout}"
    );
    let expected = format!(
        "warning: jobs `a` and `b` wait for each other, so none of them ever starts: \
         `a` waits for `b`'s `exitSuccess`, `b` waits for `a`'s `exitSuccess`\n --> {c}:3:5"
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.contains(r#"{name: "a", exec: "true""#),
        "the line is quoted:\n{stderr}"
    );

    let (code, _, stderr) = run_autopilot(&["check", "-strict", "-config", c], &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("1 warning (exit 3)"), "{stderr}");

    let clean = dir.write("clean.json5", r#"{jobs: [{name: "a", exec: "true"}]}"#);
    let (code, _, stderr) = run_autopilot(
        &["check", "-strict", "-config", clean.to_str().unwrap()],
        &[],
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn signal_reaches_a_running_job() {
    let dir = TestDir::new();
    let got = dir.join("got-hup");
    let ready = dir.join("ready");
    let cfg = dir.json_config(&json!({
        "jobs": [{
            "name": "web",
            "exec": sh(&format!(
                "trap 'echo hup >> {got}' HUP; touch {ready}; while true; do sleep 1; done",
                got = got.display(),
                ready = ready.display()
            )),
        }]
    }));
    let ap = Autopilot::start_plain(&cfg, &[], &[]);
    wait_until("the job's trap", DEADLINE, || ready.exists().then_some(()));
    let (code, stdout, stderr) = ap.control_command(&["signal", "web", "HUP"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("sent SIGHUP to job web (process group "),
        "{stdout}"
    );
    wait_line(&got, "hup");
    let (code, _, stderr) = ap.control_command(&["signal", "nope", "HUP"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no job named \"nope\""), "{stderr}");
    let (code, _, stderr) = ap.control_command(&["signal", "web", "SIGNOPE"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a signal"), "{stderr}");
}

/// The README's first command, as user `nobody`: no writable /var/run, no
/// flags. The control socket goes to a per-user path, autopilot says where,
/// and `autopilot status` (also as nobody) finds it there.
#[test]
fn the_readme_demo_runs_as_an_ordinary_user() {
    require_root("setpriv switches to user nobody");
    let dir = TestDir::new();
    // The test directory, the binary and the config must be reachable by nobody.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("autopilot");
    std::fs::copy(autopilot_bin(), &bin).expect("copy the binary");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/autopilot.json5");
    let cfg = dir.write(
        "hello.json5",
        std::fs::read(&config).expect("the demo config"),
    );
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let tmp_env = tmp.to_str().unwrap();
    let as_nobody = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        bin.to_str().unwrap(),
    ];
    let envs = [
        (CONTROL_SOCKET_ENV, ""),
        ("TMPDIR", tmp_env),
        ("XDG_RUNTIME_DIR", ""),
    ];
    let mut args = as_nobody.to_vec();
    args.extend(["-config", cfg.to_str().unwrap()]);
    let mut ap = Autopilot::program_plain(Path::new("setpriv"), &args, &envs);
    let socket = tmp.join("autopilot-65534/autopilot.socket");
    ap.wait_for_output(&format!("control: listening on {}", socket.display()), LONG);
    assert!(ap.output().contains("is not writable"), "{}", ap.output());
    ap.wait_for_output("the app is healthy", LONG);

    let mut status = as_nobody.to_vec();
    status.push("status");
    let out = std::process::Command::new("setpriv")
        .args(&status)
        .env_remove(CONTROL_SOCKET_ENV)
        .env_remove("CONTAINERPILOT")
        .env("TMPDIR", tmp_env)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run status");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("app"), "{table}");

    ap.signal(libc::SIGINT);
    assert_eq!(ap.wait_exit(LONG), 0, "{}", ap.output());
    assert!(
        ap.output().contains("post-stop: cleaned up"),
        "{}",
        ap.output()
    );
}

#[test]
fn an_empty_template_variable_is_named_with_its_line() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "consul.json5",
        "{\n  consul: \"{{ .CONSUL_HOST }}:8500\",\n  jobs: [{name: \"a\", exec: \"true\"}],\n}\n",
    );
    let c = cfg.to_str().unwrap();
    for args in [&["check", "-config", c][..], &["-config", c]] {
        let (code, _, stderr) = run_autopilot(args, &[]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: consul: consul.address: \":8500\" has no host; write \"consul:8500\", \
                 \"10.0.0.2:8500\" or \"https://consul:8501\"\n --> {c}:2:11\n"
            )),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "note: {c}:2 reads `CONSUL_HOST`, which is not set, so it rendered as \"\": \
                 consul: \"{{{{ .CONSUL_HOST }}}}:8500\","
            )),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = run_autopilot(&["check", "-config", c], &[("CONSUL_HOST", "consul")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("note:"), "{stderr}");
}

#[test]
fn a_misspelled_template_function_gets_a_suggestion() {
    let dir = TestDir::new();
    let cfg = dir.write(
        "typo.json5",
        "{jobs: [{name: \"a\", exec: '{{ .APP | defualt \"true\" }}'}]}\n",
    );
    let (code, _, stderr) = run_autopilot(&["check", "-config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: template: function \"defualt\" not defined (did you mean `default`?)"
        ),
        "{stderr}"
    );
}

/// The path of a committed completion script.
fn script_path(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(file)
        .display()
        .to_string()
}

#[test]
fn fish_completes_commands_flags_and_words() {
    let complete = |line: &str| {
        let script = format!(
            "source {}; complete -C '{line}'",
            script_path("completions/autopilot.fish")
        );
        let (code, out) = run_cmd("fish", ["-c", script.as_str()]);
        assert_eq!(code, 0, "{out}");
        out.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(complete("autopilot sta"), vec!["status"]);
    assert_eq!(complete("autopilot check -st"), vec!["-strict"]);
    assert_eq!(
        complete("autopilot maintenance "),
        vec!["disable", "enable"]
    );
    assert_eq!(complete("autopilot help sig"), vec!["signal"]);
}

#[test]
fn zsh_offers_each_commands_flags() {
    let file = script_path("completions/_autopilot");
    let (code, out) = run_cmd("zsh", ["-n", file.as_str()]);
    assert_eq!((code, out.as_str()), (0, ""), "zsh syntax");
    // zsh's completion system needs a terminal; instead, stand-ins for its
    // helpers print what the script hands them for `autopilot check <TAB>`.
    let script = format!(
        "_describe() {{ print -r -- \"describe: $*\" }}; \
         _arguments() {{ print -rl -- \"$@\" }}; \
         words=(autopilot check ''); CURRENT=3; source {file}"
    );
    let (code, out) = run_cmd("zsh", ["-c", script.as_str()]);
    assert_eq!(code, 0, "{out}");
    let specs: Vec<&str> = out.lines().collect();
    assert!(specs.iter().any(|s| s.starts_with("-strict[")), "{out}");
    assert!(specs.iter().any(|s| s.starts_with("-config[")), "{out}");
    assert!(!specs.iter().any(|s| s.starts_with("-json[")), "{out}");
}
