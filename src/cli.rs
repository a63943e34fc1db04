//! Command-line parsing.
//!
//! ContainerPilot users call the binary with Go-style single-dash flags
//! (`-config`, `-version`, `-putenv k=v`), which clap does not accept as long
//! flags, so this small parser handles both `-flag` and `--flag`, with the
//! value as the next word or after `=`.
//!
//! The subcommands and flags are defined once, in [`spec`]; help, the shell
//! completions and the man page are rendered from that table.

pub mod client;
pub mod completions;
pub mod control;
pub mod coordination;
pub mod events;
pub mod explain;
pub mod help;
pub mod man;
pub mod schema;
pub mod spec;

pub use control::ControlCommand;
use control::ControlWords;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Supervise the config's jobs (the default).
    Run,
    /// Validate the config and print the plan, without running anything;
    /// `strict`: warnings fail too.
    Check {
        strict: bool,
    },
    /// Print the rendered config (`-template`), to `-out` or stdout.
    Template {
        out: Option<PathBuf>,
    },
    /// Write the config as ContainerPilot 3 JSON5 (`migrate`), to `-out` or stdout.
    Migrate {
        out: Option<PathBuf>,
    },
    Version,
    /// Help for every command, or for one.
    Help(Option<&'static spec::Command>),
    /// A shell completion script (`bash`, `zsh`, `fish`).
    Completions(String),
    /// The manual page, in roff.
    Man,
    /// A JSON Schema of the config file.
    Schema,
    /// Ask a running autopilot something through its control socket.
    Control(ControlCommand),
    /// `kv`, `lock`, `tags`, `meta`: coordination commands for hooks.
    Coordination(coordination::Command),
    /// `events`: what a running autopilot did and does (its own flags).
    Events(events::Options),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub action: Action,
    /// `-config`/`--config`, or None to use `$CONTAINERPILOT`.
    pub config: Option<String>,
    /// `-socket`: the control socket, overriding the config's `control.socket`.
    pub socket: Option<String>,
    /// Words after the flags (a ContainerPilot 2 app command line).
    pub rest: Vec<String>,
}

/// A command-line mistake, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nRun `autopilot help` for usage.", self.0)
    }
}

const FLAGS_WITH_VALUE: [&str; 6] = [
    "config",
    "out",
    "socket",
    "putenv",
    "putmetric",
    "maintenance",
];
const SWITCHES: [&str; 8] = [
    "version", "template", "help", "h", "reload", "ping", "json", "strict",
];
const SUBCOMMANDS: [&str; 21] = [
    "run",
    "events",
    "check",
    "template",
    "migrate",
    "version",
    "help",
    "status",
    "signal",
    "putenv",
    "putmetric",
    "reload",
    "maintenance",
    "ping",
    "kv",
    "lock",
    "tags",
    "meta",
    "completions",
    "man",
    "schema",
];
/// Subcommands that take their arguments as the words that follow.
const SUBCOMMANDS_WITH_ARGS: [&str; 6] = [
    "putenv",
    "putmetric",
    "maintenance",
    "signal",
    "completions",
    "help",
];
/// Subcommands that take no words at all (an app command line makes no sense).
const SUBCOMMANDS_WITHOUT_ARGS: [&str; 7] = [
    "status", "reload", "ping", "man", "schema", "version", "template",
];

/// Whether `word` names a program that can run: a path to a file, or a
/// name found on `PATH`. The first word that is not a subcommand is a
/// ContainerPilot 2 app only if it is one.
pub fn is_program(word: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if word.contains('/') {
        return executable(std::path::Path::new(word));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(word))))
}

/// Parses the command line; the first free word is an app only if
/// [`is_program`] says so.
pub fn parse(args: &[String]) -> Result<Cli, UsageError> {
    parse_with(args, &is_program)
}

/// [`parse`], with the test for "is this word a program" given.
pub fn parse_with(args: &[String], is_program: &dyn Fn(&str) -> bool) -> Result<Cli, UsageError> {
    // `autopilot events` parses its own flags (see [`events`]).
    if args.first().is_some_and(|a| a == "events") {
        return events::parse(&args[1..]);
    }
    let mut config = None;
    let mut out = None;
    let mut socket = None;
    let mut template = false;
    let mut version = false;
    let mut help = false;
    let mut strict = false;
    let mut control = ControlWords::default();
    let mut subcommand: Option<String> = None;
    // The words of `help CMD` and `completions SHELL`.
    let mut words: Vec<String> = Vec::new();
    let mut rest = Vec::new();
    // The words of a coordination subcommand (`kv put KEY VALUE`).
    let mut coordination: Vec<String> = Vec::new();
    let is_coordination =
        |sub: Option<&str>| sub.is_some_and(|s| coordination::SUBCOMMANDS.contains(&s));
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            // Everything after `--` belongs to the app (or is a coordination
            // command's words), even words like `-x`.
            if is_coordination(subcommand.as_deref()) {
                coordination.extend(args[i..].iter().cloned());
            } else if subcommand.as_deref() == Some("signal") {
                control.signal.extend(args[i..].iter().cloned());
            } else {
                rest.extend(args[i..].iter().cloned());
            }
            break;
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            match subcommand.as_deref() {
                None if SUBCOMMANDS.contains(&arg.as_str()) || spec::command(arg).is_some() => {
                    subcommand = Some(arg.clone())
                }
                None if !is_program(arg) => return Err(unknown_command(arg)),
                Some("putenv") => control.putenv.push(arg.clone()),
                Some("putmetric") => control.putmetric.push(arg.clone()),
                Some("maintenance") => control.maintenance.push(arg.clone()),
                Some("signal") => control.signal.push(arg.clone()),
                Some("help" | "completions") => words.push(arg.clone()),
                sub if is_coordination(sub) => coordination.push(arg.clone()),
                Some(sub) if SUBCOMMANDS_WITHOUT_ARGS.contains(&sub) => {
                    return Err(UsageError(format!(
                        "`autopilot {sub}` takes no argument, got {arg:?}"
                    )));
                }
                _ => {
                    // The app's command line starts here; its flags are its own.
                    rest.extend(args[i - 1..].iter().cloned());
                    break;
                }
            }
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if FLAGS_WITH_VALUE.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or_else(|| UsageError(format!("flag -{name} needs a value")))?;
                    i += 1;
                    v
                }
            };
            match name {
                "config" => config = Some(value),
                "socket" => socket = Some(value),
                "putenv" => control.putenv.push(value),
                "putmetric" => control.putmetric.push(value),
                "maintenance" => control.maintenance.push(value),
                _ => out = Some(PathBuf::from(value)),
            }
        } else if SWITCHES.contains(&name) {
            match name {
                "version" => version = true,
                "template" => template = true,
                "reload" => control.reload = true,
                "ping" => control.ping = true,
                "json" => control.json = true,
                "strict" => strict = true,
                _ => help = true,
            }
        } else {
            let known = FLAGS_WITH_VALUE.iter().chain(SWITCHES.iter());
            let hint = known
                .map(|k| (strsim::levenshtein(k, name), *k))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| format!(" (did you mean -{k}?)"))
                .unwrap_or_default();
            return Err(UsageError(format!("unknown flag {arg}{hint}")));
        }
    }
    // `CMD -help` and `help CMD`: that command's help, whatever else was given.
    if help || subcommand.as_deref() == Some("help") {
        let topic = match (subcommand.as_deref(), words.as_slice()) {
            (Some("help"), [word]) => Some(spec::command(word).ok_or_else(|| {
                let hint = spec::closest_command(word)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                UsageError(format!("no command `{word}` to explain{hint}"))
            })?),
            (Some("help"), [_, extra, ..]) => {
                return Err(UsageError(format!(
                    "`autopilot help` takes one command name, got also {extra:?}"
                )));
            }
            (Some("help"), []) if !help => None,
            (Some(sub), _) => spec::command(sub),
            (None, _) => None,
        };
        return Ok(Cli {
            action: Action::Help(topic),
            config,
            socket,
            rest,
        });
    }
    if strict && subcommand.as_deref() != Some("check") {
        return Err(UsageError(
            "-strict only applies to `autopilot check`".into(),
        ));
    }
    match subcommand.as_deref() {
        Some("status") => control.status = true,
        Some("reload") => control.reload = true,
        Some("ping") => control.ping = true,
        Some("completions") => {
            let shells = completions::SHELLS.join(", ");
            return match words.as_slice() {
                [shell] if completions::SHELLS.contains(&shell.as_str()) => Ok(Cli {
                    action: Action::Completions(shell.clone()),
                    config,
                    socket,
                    rest,
                }),
                [] => Err(UsageError(format!(
                    "`autopilot completions` needs a shell: one of {shells}"
                ))),
                [shell] => Err(UsageError(format!(
                    "no completions for {shell:?}: choose one of {shells}"
                ))),
                [_, extra, ..] => Err(UsageError(format!(
                    "`autopilot completions` takes one shell, got also {extra:?}"
                ))),
            };
        }
        Some(sub) if SUBCOMMANDS_WITH_ARGS.contains(&sub) => {
            let given = match sub {
                "putenv" => &control.putenv,
                "putmetric" => &control.putmetric,
                "signal" => &control.signal,
                _ => &control.maintenance,
            };
            if given.is_empty() {
                let example = match sub {
                    "putenv" => "autopilot putenv NAME=VALUE",
                    "putmetric" => "autopilot putmetric NAME=VALUE",
                    "signal" => "autopilot signal JOB HUP",
                    _ => "autopilot maintenance enable",
                };
                return Err(UsageError(format!(
                    "`autopilot {sub}` needs an argument, e.g. `{example}`"
                )));
            }
        }
        _ => {}
    }
    let request = control.command()?;
    if let Some(sub) = subcommand.as_deref().filter(|s| is_coordination(Some(s))) {
        if version || template || request.is_some() {
            return Err(UsageError(format!(
                "`autopilot {sub}` takes no other request; run autopilot once per request"
            )));
        }
        let command = coordination::parse(sub, &coordination).map_err(UsageError)?;
        return Ok(Cli {
            action: Action::Coordination(command),
            config,
            socket,
            rest,
        });
    }
    if let (Some(_), Some(word)) = (&request, rest.first()) {
        return Err(UsageError(format!(
            "unexpected argument {word:?}: requests to a running autopilot take no command line"
        )));
    }
    let action = match subcommand.as_deref() {
        // In the command table (so it has help) but not handled above.
        Some(sub) if !SUBCOMMANDS.contains(&sub) => {
            return Err(UsageError(format!(
                "`autopilot {sub}` is not available in this build"
            )));
        }
        _ if version => Action::Version,
        Some("version") => Action::Version,
        _ if request.is_some() => Action::Control(request.expect("checked")),
        Some("check") => Action::Check { strict },
        Some("migrate") => Action::Migrate { out },
        Some("man") => Action::Man,
        Some("schema") => Action::Schema,
        Some("template") => Action::Template { out },
        _ if template => Action::Template { out },
        _ => Action::Run,
    };
    Ok(Cli {
        action,
        config,
        socket,
        rest,
    })
}

/// A first word that is neither a subcommand nor a program.
fn unknown_command(word: &str) -> UsageError {
    let hint = spec::closest_command(word)
        .map(|close| format!("; did you mean `{close}`?"))
        .unwrap_or_default();
    UsageError(format!(
        "unknown command `{word}`: not an autopilot command, nor a program to run \
         (a path, or a name on PATH){hint}"
    ))
}

#[cfg(test)]
mod tests;
