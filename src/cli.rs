//! Command-line parsing.
//!
//! ContainerPilot users call the binary with Go-style single-dash flags
//! (`-config`, `-version`, `-putenv k=v`), which clap does not accept as long
//! flags, so this small parser handles both `-flag` and `--flag`, with the
//! value as the next word or after `=`.

use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Supervise the config's jobs (the default).
    Run,
    /// Validate the config and print the plan, without running anything.
    Check,
    /// Print the rendered config (`-template`), to `-out` or stdout.
    Template { out: Option<PathBuf> },
    Version,
    Help,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub action: Action,
    /// `-config`/`--config`, or None to use `$CONTAINERPILOT`.
    pub config: Option<String>,
    /// Words after the flags (a ContainerPilot 2 app command line).
    pub rest: Vec<String>,
}

/// A command-line mistake, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nRun `autopilot -help` for usage.", self.0)
    }
}

pub const USAGE: &str = "\
autopilot: an in-container supervisor for the Autopilot Pattern (ContainerPilot compatible)

Usage:
  autopilot [-config FILE]                 run the config's jobs (as the container's ENTRYPOINT)
  autopilot check [-config FILE]           validate the config and print the plan; runs nothing
  autopilot -template [-config FILE] [-out FILE]
                                           print the config after template rendering
  autopilot -version                       print the version

The config file comes from -config (or --config), else from $CONTAINERPILOT.
Flags take one or two dashes, and their value as the next word or after '='.
";

const FLAGS_WITH_VALUE: [&str; 2] = ["config", "out"];
const SWITCHES: [&str; 4] = ["version", "template", "help", "h"];
const SUBCOMMANDS: [&str; 4] = ["run", "check", "version", "help"];

pub fn parse(args: &[String]) -> Result<Cli, UsageError> {
    let mut config = None;
    let mut out = None;
    let mut template = false;
    let mut version = false;
    let mut help = false;
    let mut subcommand: Option<String> = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            // Everything after `--` belongs to the app, even words like `-x`.
            rest.extend(args[i..].iter().cloned());
            break;
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            if subcommand.is_none() && SUBCOMMANDS.contains(&arg.as_str()) {
                subcommand = Some(arg.clone());
            } else {
                // The app's command line starts here; its flags are its own.
                rest.extend(args[i - 1..].iter().cloned());
                break;
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
                _ => out = Some(PathBuf::from(value)),
            }
        } else if SWITCHES.contains(&name) {
            match name {
                "version" => version = true,
                "template" => template = true,
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
    let action = match subcommand.as_deref() {
        _ if help => Action::Help,
        Some("help") => Action::Help,
        _ if version => Action::Version,
        Some("version") => Action::Version,
        Some("check") => Action::Check,
        _ if template => Action::Template { out },
        _ => Action::Run,
    };
    Ok(Cli { action, config, rest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, UsageError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
        assert_eq!(c.action, Action::Check);
        assert_eq!(c.config.as_deref(), Some("x.json5"));
        assert_eq!(
            p(&["-template", "-out", "o.json"]).unwrap().action,
            Action::Template { out: Some("o.json".into()) }
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
    fn unknown_flags_get_a_suggestion() {
        let e = p(&["-confg", "x"]).unwrap_err();
        assert!(e.0.contains("did you mean -config?"), "{}", e.0);
        assert!(p(&["-config"]).unwrap_err().0.contains("needs a value"));
    }
}
