//! Help text, rendered from the command table ([`super::spec`]).

use super::spec::{self, COMMANDS, Command};
use std::fmt::Write;

/// `autopilot help`: every command in one line each, then the rules every
/// command shares.
pub fn overview() -> String {
    let mut out = String::from(
        "autopilot: an in-container supervisor for the Autopilot Pattern (ContainerPilot compatible)\n\n\
         Usage:\n  autopilot [-config FILE] [APP ARGS...]   run the config's jobs (as the container's ENTRYPOINT)\n  \
         autopilot -- CMD [ARGS...]               run CMD as the only job, like tini (no config)\n  \
         autopilot COMMAND [ARGS...]\n\nCommands:\n",
    );
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        let _ = writeln!(out, "  {:<width$}  {}", c.name, c.summary);
    }
    out.push_str(
        "\nRun `autopilot help COMMAND` (or `autopilot COMMAND -help`) for its flags, exit codes \
         and an example.\n\n\
         The config file comes from -config (or --config), else from $CONTAINERPILOT; either may \
         also hold\nthe JSON itself, or a path prefixed with file://, as ContainerPilot 2 allowed.\n\
         Flags take one or two dashes, and their value as the next word or after '='.\n\
         ContainerPilot's flags keep working: -putenv, -putmetric, -reload, -maintenance, -ping, \
         -template, -version.\n",
    );
    out
}

/// `autopilot help CMD`: its usage, what it does, flags, exit codes, example.
pub fn command(c: &Command) -> String {
    let mut out = String::new();
    for form in c.usage.split('\n') {
        let name = if form.starts_with("--") { "" } else { c.name };
        let line = format!("autopilot {name} {form}");
        let _ = writeln!(out, "Usage: {}", squeeze(&line));
    }
    let _ = writeln!(out, "\n{}", wrap(c.about, 78, ""));
    if !c.flags.is_empty() {
        out.push_str("\nFlags:\n");
        for name in c.flags {
            let f = spec::flag(name).expect("the spec test checks flag names");
            let _ = writeln!(out, "  {:<22} {}", flag_usage(f), f.help);
        }
    }
    out.push_str("\nExit codes:\n");
    for (code, meaning) in c.exit_codes {
        let _ = writeln!(out, "  {code:<4} {meaning}");
    }
    out.push_str("\nExample:\n");
    for line in c.example.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// `-config FILE`, `-json`.
pub fn flag_usage(f: &spec::Flag) -> String {
    match f.value {
        Some(v) => format!("-{} {v}", f.name),
        None => format!("-{}", f.name),
    }
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Wraps `text` at `width` columns, each line after the first indented.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_string();
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_usage_flags_exit_codes_and_example() {
        for c in COMMANDS {
            let text = command(c);
            assert!(text.starts_with("Usage: autopilot"), "{text}");
            assert!(text.contains("Exit codes:\n  0"), "{text}");
            assert!(text.contains("Example:\n  autopilot"), "{text}");
            for f in c.flags {
                assert!(text.contains(&format!("  -{f}")), "{text}");
            }
            assert!(overview().contains(&format!("  {} ", c.name)));
        }
    }

    #[test]
    fn wrapping_keeps_every_word() {
        let text = "one two three four five six";
        let wrapped = wrap(text, 9, "");
        assert_eq!(wrapped, "one two\nthree\nfour five\nsix");
    }
}
