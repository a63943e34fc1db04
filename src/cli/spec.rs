//! The one definition of the command line: every subcommand with its flags,
//! exit codes and an example. The parser checks words against it, and the
//! help text, the shell completions and the man page are all rendered from
//! it, so they cannot drift apart.

/// A flag, written `-name` or `--name`, with its value as the next word or
/// after `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub name: &'static str,
    /// What the value is (`FILE`, `PATH`), or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// What a value is, for shell completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complete {
    Nothing,
    /// A file path.
    File,
    /// An executable on `PATH` (the app command line).
    Command,
    /// One of these words.
    Words(&'static [&'static str]),
}

/// A subcommand: `autopilot NAME ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub name: &'static str,
    /// One line, for the command list.
    pub summary: &'static str,
    /// The words after `autopilot NAME`, as in a usage line.
    pub usage: &'static str,
    /// What it does, in a few sentences.
    pub about: &'static str,
    /// The flags it accepts (names in [`FLAGS`]).
    pub flags: &'static [&'static str],
    /// How the first word after the command completes.
    pub first_word: Complete,
    pub exit_codes: &'static [(u8, &'static str)],
    pub example: &'static str,
}

/// Every flag, once.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "config",
        value: Some("FILE"),
        help: "the config file (else $CONTAINERPILOT); may also be the JSON itself or file://PATH",
    },
    Flag {
        name: "socket",
        value: Some("PATH"),
        help: "the control socket (else $AUTOPILOT_CONTROL_SOCKET, the config's control.socket, \
               /var/run/containerpilot.socket, or the per-user fallback)",
    },
    Flag {
        name: "out",
        value: Some("FILE"),
        help: "write the output to FILE instead of standard output (`-` is standard output)",
    },
    Flag {
        name: "strict",
        value: None,
        help: "fail (exit 3) when the config has warnings",
    },
    Flag {
        name: "json",
        value: None,
        help: "print JSON instead of text",
    },
    Flag {
        name: "follow",
        value: None,
        help: "keep streaming until interrupted",
    },
    Flag {
        name: "template",
        value: None,
        help: "same as `autopilot template`",
    },
    Flag {
        name: "version",
        value: None,
        help: "same as `autopilot version`",
    },
    Flag {
        name: "help",
        value: None,
        help: "print help (also -h): `autopilot CMD -help` for one command",
    },
    Flag {
        name: "h",
        value: None,
        help: "same as -help",
    },
    Flag {
        name: "putenv",
        value: Some("NAME=VALUE"),
        help: "same as `autopilot putenv` (repeatable)",
    },
    Flag {
        name: "putmetric",
        value: Some("NAME=VALUE"),
        help: "same as `autopilot putmetric` (repeatable)",
    },
    Flag {
        name: "maintenance",
        value: Some("enable|disable"),
        help: "same as `autopilot maintenance`",
    },
    Flag {
        name: "reload",
        value: None,
        help: "same as `autopilot reload`",
    },
    Flag {
        name: "ping",
        value: None,
        help: "same as `autopilot ping`",
    },
];

/// Exit codes of the commands that ask a running autopilot.
const CONTROL_EXIT: &[(u8, &str)] = &[
    (0, "done"),
    (
        1,
        "autopilot refused, or could not be reached at the socket",
    ),
    (2, "bad command line"),
];

/// Exit codes of `kv`, `lock`, `tags` and `meta` (crate::cli::coordination).
const COORDINATION_EXIT: &[(u8, &str)] = &[
    (0, "done"),
    (
        1,
        "no: a failed cas, a lock held by someone else, no such key, autopilot refused",
    ),
    (2, "bad command line, or the config it names"),
    (
        3,
        "Consul unreachable or refusing (tags/meta: recorded, applied when Consul answers)",
    ),
];

const SUCCESS_OR_USAGE: &[(u8, &str)] = &[(0, "done"), (2, "bad command line")];

/// Every subcommand, in the order help lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "run",
        summary: "run the config's jobs (the default, as the container's ENTRYPOINT)",
        usage: "[-config FILE] [-socket PATH] [APP ARGS...]\n-- CMD [ARGS...]",
        about: "Supervises the config's jobs as PID 1: reaps zombies, forwards signals, \
                health-checks and registers services, fires hooks. A ContainerPilot 2 config \
                takes its app after the flags. `autopilot -- CMD ARGS` with no config runs CMD \
                as the only (main) job, like tini: signals are forwarded to its process group, \
                zombies are reaped, and its exit code is autopilot's.",
        flags: &["config", "socket"],
        first_word: Complete::Command,
        exit_codes: &[
            (0, "the main job (or every job) ended successfully"),
            (
                1,
                "the control socket or telemetry port could not be claimed",
            ),
            (2, "bad command line or config: nothing was started"),
            (126, "the main job could not be executed (permission)"),
            (127, "the main job's program was not found"),
            (
                128,
                "and up: 128+N when the main job was killed by signal N; else the main job's own exit code",
            ),
        ],
        example: "autopilot -config /etc/containerpilot.json5\nautopilot -- nginx -g 'daemon off;'",
    },
    Command {
        name: "check",
        summary: "validate the config and print the plan; runs nothing",
        usage: "[-config FILE] [-strict] [APP ARGS...]",
        about: "Loads the config as `run` would and prints, for each job, what starts it, \
                how it restarts, how it is checked and which jobs react to it. Errors and \
                warnings go to standard error, each with its file, line and an excerpt.",
        flags: &["config", "strict"],
        first_word: Complete::Nothing,
        exit_codes: &[
            (
                0,
                "the config is valid (warnings are allowed without -strict)",
            ),
            (2, "the config has errors, or bad command line"),
            (3, "-strict: the config is valid but has warnings"),
        ],
        example: "autopilot check -strict -config containerpilot.json5",
    },
    Command {
        name: "template",
        summary: "print the config after template rendering",
        usage: "[-config FILE] [-out FILE]",
        about: "Renders the config file as a Go template with the environment as data and \
                prints the result (ContainerPilot's -template).",
        flags: &["config", "out"],
        first_word: Complete::Nothing,
        exit_codes: &[
            (0, "done"),
            (1, "the output file could not be written"),
            (2, "the template has errors, or bad command line"),
        ],
        example: "autopilot template -config containerpilot.json5 -out rendered.json5",
    },
    Command {
        name: "migrate",
        summary: "write the config (ContainerPilot 2 too) as ContainerPilot 3 JSON5",
        usage: "[-config FILE] [-out FILE] [APP ARGS...]",
        about: "Loads the config and writes it as ContainerPilot 3 JSON5, with comments where \
                a setting needs a human decision.",
        flags: &["config", "out"],
        first_word: Complete::Nothing,
        exit_codes: &[
            (0, "done"),
            (1, "the output file could not be written"),
            (2, "the config has errors, or bad command line"),
        ],
        example: "autopilot migrate -config containerpilot.json -out containerpilot.json5",
    },
    Command {
        name: "status",
        summary: "show jobs (state, pid, restarts, health, last exit) and watches",
        usage: "[-json] [-socket PATH]",
        about: "Asks the running autopilot, through its control socket, for its jobs and \
                watches.",
        flags: &["json", "socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot status -json",
    },
    Command {
        name: "events",
        summary: "print the events autopilot publishes (exits, health, watches, ...)",
        usage: "[-follow] [-json] [-socket PATH]",
        about: "Asks the running autopilot for its recent events; with -follow, streams them \
                as they are published until interrupted.",
        flags: &["follow", "json", "socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot events -follow",
    },
    Command {
        name: "signal",
        summary: "send a signal to a running job's process group",
        usage: "JOB SIGNAL [-socket PATH]",
        about: "Sends SIGNAL (a name like HUP or SIGHUP, or a number) to JOB's process group \
                through the control socket: for hooks in images without curl.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot signal nginx HUP",
    },
    Command {
        name: "putenv",
        summary: "set environment values for processes started from now on",
        usage: "NAME=VALUE... [-socket PATH]",
        about: "Sets (NAME=VALUE) or unsets (NAME, or NAME=) environment values that the \
                running autopilot passes to the processes it starts from now on.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot putenv LEADER=db-1 MODE=",
    },
    Command {
        name: "putmetric",
        summary: "add to a counter, set a gauge, observe a histogram or summary",
        usage: "NAME=VALUE... [-socket PATH]",
        about: "Updates the telemetry metrics the config declares.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot putmetric requests_total=1",
    },
    Command {
        name: "reload",
        summary: "re-read the config file; unchanged jobs keep running",
        usage: "[-socket PATH]",
        about: "Asks the running autopilot to re-read its config file, and prints which jobs \
                were unchanged, restarted, added and removed.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot reload",
    },
    Command {
        name: "maintenance",
        summary: "deregister every service and pause health checks, or resume",
        usage: "enable|disable [-socket PATH]",
        about: "Enters or leaves maintenance mode.",
        flags: &["socket", "config"],
        first_word: Complete::Words(&["enable", "disable"]),
        exit_codes: CONTROL_EXIT,
        example: "autopilot maintenance enable",
    },
    Command {
        name: "ping",
        summary: "check that autopilot answers",
        usage: "[-socket PATH]",
        about: "Prints `ok` when the running autopilot answers on its control socket.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: CONTROL_EXIT,
        example: "autopilot ping",
    },
    Command {
        name: "kv",
        summary: "read and write Consul KV",
        usage: "get KEY | put KEY [VALUE] | cas KEY OLD NEW | delete KEY",
        about: "Talks to Consul directly, with the address, token and TLS settings of the \
                config or of the CONSUL_* variables. `put` without VALUE reads standard input; \
                `cas KEY \"\" NEW` matches a missing key. Put `--` before a value that starts \
                with '-'.",
        flags: &["config"],
        first_word: Complete::Words(&["get", "put", "cas", "delete"]),
        exit_codes: COORDINATION_EXIT,
        example: "autopilot kv cas app/leader \"\" \"$HOSTNAME\"",
    },
    Command {
        name: "lock",
        summary: "a Consul lock held until released",
        usage: "acquire KEY [VALUE] | release KEY | holder KEY",
        about: "Takes, releases or names the holder of a lock in Consul (VALUE defaults to \
                $HOSTNAME).",
        flags: &["config"],
        first_word: Complete::Words(&["acquire", "release", "holder"]),
        exit_codes: COORDINATION_EXIT,
        example: "autopilot lock acquire app/migrations",
    },
    Command {
        name: "tags",
        summary: "print or change a running service's Consul tags (no reload)",
        usage: "JOB [add|remove|set TAG... | reset]",
        about: "Asks the running autopilot to change the tags it registers for JOB.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: COORDINATION_EXIT,
        example: "autopilot tags db add primary",
    },
    Command {
        name: "meta",
        summary: "print or change a running service's Consul meta (no reload)",
        usage: "JOB [set KEY=VALUE... | remove KEY... | reset]",
        about: "Asks the running autopilot to change the service meta it registers for JOB.",
        flags: &["socket", "config"],
        first_word: Complete::Nothing,
        exit_codes: COORDINATION_EXIT,
        example: "autopilot meta db set role=primary",
    },
    Command {
        name: "completions",
        summary: "print a shell completion script (bash, zsh or fish)",
        usage: "bash|zsh|fish",
        about: "Prints the completion script for the shell, generated from the same table as \
                this help. bash: `autopilot completions bash > /etc/bash_completion.d/autopilot`.",
        flags: &[],
        first_word: Complete::Words(&["bash", "zsh", "fish"]),
        exit_codes: SUCCESS_OR_USAGE,
        example: "autopilot completions fish > ~/.config/fish/completions/autopilot.fish",
    },
    Command {
        name: "man",
        summary: "print the manual page (roff)",
        usage: "",
        about: "Prints autopilot(1) in roff, generated from the same table as this help.",
        flags: &[],
        first_word: Complete::Nothing,
        exit_codes: SUCCESS_OR_USAGE,
        example: "autopilot man > /usr/share/man/man1/autopilot.1",
    },
    Command {
        name: "schema",
        summary: "print a JSON Schema of the config file, for editors",
        usage: "",
        about: "Prints a JSON Schema (draft 2020-12) of the ContainerPilot 3 config, built from \
                the decoder's own key lists.",
        flags: &[],
        first_word: Complete::Nothing,
        exit_codes: SUCCESS_OR_USAGE,
        example: "autopilot schema > containerpilot.schema.json",
    },
    Command {
        name: "version",
        summary: "print the version",
        usage: "",
        about: "Prints `autopilot VERSION`.",
        flags: &[],
        first_word: Complete::Nothing,
        exit_codes: SUCCESS_OR_USAGE,
        example: "autopilot version",
    },
    Command {
        name: "help",
        summary: "print help, for all commands or one",
        usage: "[COMMAND]",
        about: "Prints the list of commands, or one command's flags, exit codes and example.",
        flags: &[],
        first_word: Complete::Words(&[]),
        exit_codes: SUCCESS_OR_USAGE,
        example: "autopilot help check",
    },
];

pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

pub fn flag(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// The closest subcommand to a mistyped word, if one is close enough.
pub fn closest_command(word: &str) -> Option<&'static str> {
    crate::config::suggest::closest(word, COMMANDS.iter().map(|c| c.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_a_command_names_exists() {
        for c in COMMANDS {
            for f in c.flags {
                assert!(flag(f).is_some(), "`{}` names unknown flag -{f}", c.name);
            }
            assert!(!c.exit_codes.is_empty(), "{} has no exit codes", c.name);
            assert!(
                c.example.starts_with("autopilot"),
                "{}: {}",
                c.name,
                c.example
            );
        }
    }

    #[test]
    fn typos_find_the_command() {
        assert_eq!(closest_command("stauts"), Some("status"));
        assert_eq!(closest_command("chek"), Some("check"));
        assert_eq!(closest_command("zzzzzz"), None);
    }
}
