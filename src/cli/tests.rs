use super::*;

/// Parses with absolute paths as the only programs.
fn p(args: &[&str]) -> Result<Cli, UsageError> {
    parse_with(
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        &|w| w.starts_with('/'),
    )
}

#[test]
fn events_flags() {
    let cli = p(&["events", "-follow", "--json", "-socket", "/s"]).unwrap();
    assert_eq!(
        cli.action,
        Action::Events(events::Options {
            follow: true,
            json: true
        })
    );
    assert_eq!(cli.socket.as_deref(), Some("/s"));
    let e = p(&["events", "-folow"]).unwrap_err();
    assert!(e.0.contains("unknown flag -folow"), "{e}");
    let e = p(&["events", "app"]).unwrap_err();
    assert!(e.0.contains("takes no argument"), "{e}");
}

#[test]
fn help_for_one_command_in_every_form() {
    let check = spec::command("check");
    for args in [
        &["help", "check"][..],
        &["check", "-help"],
        &["check", "--help"],
        &["check", "-h"],
        &["check", "-config", "x", "-h"],
    ] {
        assert_eq!(p(args).unwrap().action, Action::Help(check), "{args:?}");
    }
    assert_eq!(
        p(&["kv", "--help"]).unwrap().action,
        Action::Help(spec::command("kv"))
    );
    assert_eq!(p(&["help"]).unwrap().action, Action::Help(None));
    assert_eq!(p(&["-help"]).unwrap().action, Action::Help(None));
    let e = p(&["help", "stauts"]).unwrap_err().0;
    assert!(e.contains("did you mean `status`?"), "{e}");
}

#[test]
fn unknown_commands_are_errors_unless_programs() {
    let e = p(&["stauts"]).unwrap_err().0;
    assert!(e.contains("unknown command `stauts`"), "{e}");
    assert!(e.contains("did you mean `status`?"), "{e}");
    let c = p(&["/bin/app", "-x"]).unwrap();
    assert_eq!(
        (c.action, c.rest),
        (Action::Run, vec!["/bin/app".into(), "-x".into()])
    );
    let c = p(&["run", "-config", "v2.json", "app", "-x"]).unwrap();
    assert_eq!(
        (c.action, c.rest),
        (Action::Run, vec!["app".into(), "-x".into()])
    );
    // After `--` anything goes: the word is the command to run.
    assert_eq!(p(&["--", "stauts"]).unwrap().rest, vec!["stauts"]);
}

#[test]
fn signal_strict_and_generated_files() {
    assert_eq!(
        p(&["signal", "web", "HUP"]).unwrap().action,
        Action::Control(ControlCommand::Signal {
            job: "web".into(),
            signal: "HUP".into()
        })
    );
    assert!(
        p(&["signal", "web"])
            .unwrap_err()
            .0
            .contains("a job and a signal")
    );
    assert_eq!(
        p(&["check", "-strict"]).unwrap().action,
        Action::Check { strict: true }
    );
    assert!(p(&["-strict"]).unwrap_err().0.contains("only applies"));
    assert_eq!(
        p(&["completions", "zsh"]).unwrap().action,
        Action::Completions("zsh".into())
    );
    assert!(
        p(&["completions", "tcsh"])
            .unwrap_err()
            .0
            .contains("choose one of")
    );
    assert_eq!(p(&["man"]).unwrap().action, Action::Man);
    assert_eq!(p(&["schema"]).unwrap().action, Action::Schema);
    assert_eq!(
        p(&["template", "-out", "o"]).unwrap().action,
        Action::Template {
            out: Some("o".into())
        }
    );
}

#[test]
fn every_subcommand_is_in_the_spec() {
    for sub in SUBCOMMANDS {
        assert!(spec::command(sub).is_some(), "{sub} has no spec entry");
    }
    for flag in FLAGS_WITH_VALUE {
        assert!(
            spec::flag(flag).is_some_and(|f| f.value.is_some()),
            "{flag}"
        );
    }
    for flag in SWITCHES {
        assert!(
            spec::flag(flag).is_some_and(|f| f.value.is_none()),
            "{flag}"
        );
    }
}

#[test]
fn single_and_double_dash_flags() {
    assert_eq!(p(&["-config", "/a"]).unwrap().config.as_deref(), Some("/a"));
    assert_eq!(p(&["--config=/b"]).unwrap().config.as_deref(), Some("/b"));
    assert_eq!(p(&["-version"]).unwrap().action, Action::Version);
    assert_eq!(p(&["--version"]).unwrap().action, Action::Version);
}

#[test]
fn subcommands() {
    let c = p(&["check", "-config", "x.json5"]).unwrap();
    assert_eq!(c.action, Action::Check { strict: false });
    assert_eq!(c.config.as_deref(), Some("x.json5"));
    assert_eq!(
        p(&["-template", "-out", "o.json"]).unwrap().action,
        Action::Template {
            out: Some("o.json".into())
        }
    );
}

#[test]
fn migrate_takes_an_output_file_and_the_app() {
    let c = p(&[
        "migrate",
        "-config",
        "old.json",
        "-out",
        "new.json5",
        "/bin/app",
        "-x",
    ])
    .unwrap();
    assert_eq!(
        c.action,
        Action::Migrate {
            out: Some("new.json5".into())
        }
    );
    assert_eq!(c.rest, vec!["/bin/app", "-x"]);
    assert_eq!(
        p(&["migrate"]).unwrap().action,
        Action::Migrate { out: None }
    );
}

#[test]
fn app_arguments_after_flags_are_kept_whole() {
    let c = p(&["-config", "c.json", "/bin/app", "-port", "80"]).unwrap();
    assert_eq!(c.action, Action::Run);
    assert_eq!(c.rest, vec!["/bin/app", "-port", "80"]);
    let c = p(&["-config", "c.json", "--", "-weird"]).unwrap();
    assert_eq!(c.rest, vec!["-weird"]);
}

#[test]
fn containerpilot_control_flags() {
    let c = p(&["-putenv", "A=x=y", "-putenv=B", "--putenv", "C="]).unwrap();
    assert_eq!(
        c.action,
        Action::Control(ControlCommand::PutEnv(vec![
            ("A".into(), Some("x=y".into())),
            ("B".into(), None),
            ("C".into(), Some(String::new())),
        ]))
    );
    let c = p(&["-putmetric", "hits=2", "-putmetric", "temp=-1.5"]).unwrap();
    assert_eq!(
        c.action,
        Action::Control(ControlCommand::PutMetric(vec![
            ("hits".into(), "2".into()),
            ("temp".into(), "-1.5".into()),
        ]))
    );
    assert_eq!(
        p(&["-reload"]).unwrap().action,
        Action::Control(ControlCommand::Reload)
    );
    assert_eq!(
        p(&["-ping"]).unwrap().action,
        Action::Control(ControlCommand::Ping)
    );
    assert_eq!(
        p(&["-maintenance", "enable"]).unwrap().action,
        Action::Control(ControlCommand::Maintenance(true))
    );
    assert_eq!(
        p(&["-maintenance=disable", "-config", "c.json5"])
            .unwrap()
            .action,
        Action::Control(ControlCommand::Maintenance(false))
    );
}

#[test]
fn control_subcommand_forms() {
    let c = p(&["putenv", "A=1", "B=2", "-socket", "/s"]).unwrap();
    assert_eq!(c.socket.as_deref(), Some("/s"));
    assert_eq!(
        c.action,
        Action::Control(ControlCommand::PutEnv(vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("2".into())),
        ]))
    );
    assert_eq!(
        p(&["maintenance", "disable"]).unwrap().action,
        Action::Control(ControlCommand::Maintenance(false))
    );
    assert_eq!(
        p(&["status", "-json"]).unwrap().action,
        Action::Control(ControlCommand::Status { json: true })
    );
    assert_eq!(
        p(&["status"]).unwrap().action,
        Action::Control(ControlCommand::Status { json: false })
    );
    assert_eq!(
        p(&["reload"]).unwrap().action,
        Action::Control(ControlCommand::Reload)
    );
    assert_eq!(
        p(&["ping"]).unwrap().action,
        Action::Control(ControlCommand::Ping)
    );
}

#[test]
fn bad_control_requests_are_explained() {
    let e = |args: &[&str]| p(args).unwrap_err().0;
    assert!(e(&["-maintenance", "on"]).contains("`enable` or `disable`"));
    assert!(e(&["-putmetric", "hits"]).contains("expected NAME=VALUE"));
    assert!(e(&["-putenv", "=x"]).contains("name before '=' is empty"));
    assert!(e(&["-reload", "-ping"]).contains("cannot be combined"));
    assert!(e(&["putenv"]).contains("needs an argument"));
    assert!(e(&["status", "extra"]).contains("takes no argument"));
    assert!(e(&["-json"]).contains("only applies"));
    assert!(e(&["-ping", "/bin/extra"]).contains("unexpected argument \"/bin/extra\""));
    assert!(e(&["-ping", "extra"]).contains("unknown command `extra`"));
    assert!(e(&["-relaod"]).contains("did you mean -reload?"));
}

#[test]
fn coordination_subcommands_take_their_words() {
    use coordination::Command;
    let c = p(&["kv", "put", "-config", "c.json5", "app/k", "v"]).unwrap();
    assert_eq!(c.config.as_deref(), Some("c.json5"));
    assert_eq!(
        c.action,
        Action::Coordination(Command::KvPut {
            key: "app/k".into(),
            value: Some("v".into())
        })
    );
    let c = p(&["kv", "cas", "k", "--", "-1", "-2"]).unwrap();
    assert_eq!(
        c.action,
        Action::Coordination(Command::KvCas {
            key: "k".into(),
            old: "-1".into(),
            new: "-2".into()
        })
    );
    assert!(
        p(&["lock", "acquire", "k", "-reload"])
            .unwrap_err()
            .0
            .contains("once per request")
    );
    assert!(
        p(&["kv", "get"])
            .unwrap_err()
            .0
            .contains("usage: autopilot kv get KEY")
    );
}

#[test]
fn unknown_flags_get_a_suggestion() {
    let e = p(&["-confg", "x"]).unwrap_err();
    assert!(e.0.contains("did you mean -config?"), "{}", e.0);
    assert!(p(&["-config"]).unwrap_err().0.contains("needs a value"));
}
