//! Where a config leans on a ContainerPilot quirk that autopilot does not
//! copy. Such a config loads and runs, but not as it did under ContainerPilot,
//! and nothing in it says why; so `autopilot check` and the startup log warn,
//! at the line concerned, with what ContainerPilot did and what to write
//! instead (the table in docs/migrating.md lists every difference):
//!
//! - a template reads a variable whose value contains `=`: ContainerPilot
//!   cut it at the first `=`, autopilot keeps it whole ([`env_value_warnings`]);
//! - a command written as one string with quotes or shell syntax: both split
//!   it on spaces and run it without a shell, so it cannot mean what it
//!   looks like ([`exec_string`]);
//! - `each: "healthy"` / `each: "unhealthy"`: ContainerPilot repeated these
//!   events with every check or change, autopilot publishes them when the
//!   state turns ([`event_warnings`]).

use std::collections::HashMap;

use super::error::{Diagnostic, Reporter, Severity};
use super::source::{Span, Spanned, Value};
use super::template;

/// The longest rendered line quoted in a warning; longer ones are cut.
const QUOTE_MAX: usize = 120;

// ---------------------------------------------------------------------------
// Environment values containing `=`

/// What ContainerPilot 3 made of an environment value: it split each
/// `NAME=VALUE` entry on every `=` and kept the second piece, so a value lost
/// everything from its first `=` on (`abc==` became `abc`).
pub fn containerpilot_value(value: &str) -> &str {
    value.split('=').next().unwrap_or(value)
}

/// The environment as ContainerPilot's templates saw it through `.NAME`
/// (its `env` function read the real environment, uncut).
pub fn containerpilot_env(env: &HashMap<String, String>) -> HashMap<String, String> {
    env.iter()
        .map(|(k, v)| (k.clone(), containerpilot_value(v).to_string()))
        .collect()
}

/// One warning per variable that the template `raw` reads as `.NAME` whose
/// value contains `=`, when that makes the rendering differ from
/// ContainerPilot's. Each points at the first `.NAME` in the file as written
/// and quotes the first line that differs, rendered both ways.
pub fn env_value_warnings(raw: &str, file: &str, env: &HashMap<String, String>) -> Vec<Diagnostic> {
    let mut suspects: Vec<(usize, &str, &str)> = env
        .iter()
        .filter(|(_, value)| value.contains('='))
        .filter_map(|(name, value)| {
            data_reference(raw, name).map(|at| (at, name.as_str(), value.as_str()))
        })
        .collect();
    if suspects.is_empty() {
        return Vec::new();
    }
    suspects.sort();
    let Ok(ours) = template::render(raw, env) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (at, name, value) in suspects {
        let mut data = env.clone();
        data.insert(name.to_string(), containerpilot_value(value).to_string());
        let Ok(theirs) = template::render_split(raw, &data, env) else {
            continue;
        };
        let Some((our_line, their_line)) = first_difference(&ours, &theirs) else {
            continue;
        };
        warnings.push(Diagnostic::at(
            Severity::Warning,
            raw,
            file,
            Span::new(at, at + 1 + name.len()),
            "",
            format!(
                "`.{name}` renders differently than under ContainerPilot: its value contains \
                 `=`, and ContainerPilot kept only what comes before the first `=`; \
                 autopilot keeps the whole value"
            ),
            Some(format!(
                "autopilot renders `{}` where ContainerPilot rendered `{}`; if the config \
                 makes up for the cut (a base64 key written `{{{{ .{name} }}}}==`), \
                 drop that part (docs/migrating.md)",
                quote(&our_line),
                quote(&their_line)
            )),
        ));
    }
    warnings
}

/// The byte offset of the first `.NAME` inside a `{{ ... }}` action of `raw`
/// (a read of the template's data, which ContainerPilot cut).
fn data_reference(raw: &str, name: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let needle = format!(".{name}");
    let mut from = 0;
    while let Some(open) = raw[from..].find("{{").map(|i| from + i) {
        let close = raw[open..].find("}}").map_or(raw.len(), |i| open + i);
        let action = &raw[open..close];
        let mut search = 0;
        while let Some(i) = action[search..].find(&needle).map(|i| search + i) {
            let before = action[..i].chars().next_back();
            let after = action[i + needle.len()..].chars().next();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                return Some(open + i);
            }
            search = i + needle.len();
        }
        from = close;
        if from >= raw.len() {
            break;
        }
    }
    None
}

/// The first line where two renderings differ, each trimmed.
fn first_difference(ours: &str, theirs: &str) -> Option<(String, String)> {
    let mut a = ours.lines();
    let mut b = theirs.lines();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => {
                return Some((
                    x.unwrap_or("").trim().to_string(),
                    y.unwrap_or("").trim().to_string(),
                ));
            }
        }
    }
}

/// A rendered line as quoted in a message: at most [`QUOTE_MAX`] characters.
fn quote(line: &str) -> String {
    if line.chars().count() <= QUOTE_MAX {
        line.to_string()
    } else {
        let cut: String = line.chars().take(QUOTE_MAX).collect();
        format!("{cut}...")
    }
}

// ---------------------------------------------------------------------------
// Commands written as one string

/// Reports a command written as one string that holds quotes or shell
/// syntax. ContainerPilot split such a string on spaces and ran it without a
/// shell, and so does autopilot; the quotes, `$`, pipes, `&&`, `;` and
/// redirections then reach the program as literal characters. Called for
/// every string command (`exec`, `health.exec`, hooks, ContainerPilot 2's
/// `health`, `command`, `onChange`, `check`...).
pub fn exec_string(text: &str, span: Span, path: &str, rep: &mut Reporter<'_>) {
    if let Some((message, hint)) = exec_string_advice(text) {
        rep.warning(span, path, message, Some(hint));
    }
}

/// The message and the fix for [`exec_string`], or `None` when the string
/// means the same to a shell as split on spaces.
pub fn exec_string_advice(text: &str) -> Option<(String, String)> {
    let reading = read_like_a_shell(text);
    if reading.syntax.is_empty() {
        return None;
    }
    let runs: Vec<&str> = text.split_whitespace().collect();
    // `sh -c 'script'`: the three words are what was meant, `$` and all.
    let shell_c = reading.words.len() == 3
        && is_shell(&reading.words[0])
        && reading.words[1] == "-c"
        && reading.balanced;
    let through_shell = !shell_c && (reading.needs_shell || !reading.balanced);
    let meant: Vec<String> = if through_shell {
        vec!["sh".into(), "-c".into(), text.trim().to_string()]
    } else {
        reading.words.clone()
    };
    let message = format!(
        "this command is one string, which autopilot splits on spaces and runs without a \
         shell, as ContainerPilot did, so the program gets {} as literal characters: it runs {}",
        reading.syntax.join(", "),
        array(&runs)
    );
    let hint = if through_shell {
        format!(
            "to have a shell read it, run it through one: `{}`",
            array(&meant)
        )
    } else {
        format!(
            "write it as an array, one element per word: `{}`",
            array(&meant)
        )
    };
    Some((message, hint))
}

/// How a POSIX shell would read a command line: its words, and which shell
/// syntax it holds.
struct ShellReading {
    words: Vec<String>,
    /// What a shell would interpret, for the message (`quotes`, `` `|` ``...).
    syntax: Vec<String>,
    /// Expansions or operators only a shell can carry out.
    needs_shell: bool,
    /// Every quote is closed.
    balanced: bool,
}

fn read_like_a_shell(text: &str) -> ShellReading {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut reading = ShellReading {
        words: Vec::new(),
        syntax: Vec::new(),
        needs_shell: false,
        balanced: true,
    };
    let note = |reading: &mut ShellReading, what: &str, needs_shell: bool| {
        if !reading.syntax.iter().any(|s| s == what) {
            reading.syntax.push(what.to_string());
        }
        reading.needs_shell |= needs_shell;
    };
    let mut word: Option<String> = None;
    let mut quote = Quote::None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (&quote, c) {
            (Quote::None, c) if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    reading.words.push(w);
                }
            }
            (Quote::None, '\'') => {
                note(&mut reading, "the quotes", false);
                quote = Quote::Single;
                word.get_or_insert_with(String::new);
            }
            (Quote::None, '"') => {
                note(&mut reading, "the quotes", false);
                quote = Quote::Double;
                word.get_or_insert_with(String::new);
            }
            // A backslash alone is no reason to warn: `--sep=\t` passes the
            // two characters as meant. Next to quotes, read it as a shell would.
            (Quote::None, '\\') => {
                let w = word.get_or_insert_with(String::new);
                if let Some(next) = chars.next() {
                    w.push(next);
                }
            }
            // Inside a word (`?a=1&b=2`, `a;b`) these are no shell syntax to
            // anyone writing a command as a string; at a word's edge they are.
            (Quote::None, '&' | ';')
                if word.is_some()
                    && chars.peek().is_some_and(|n| !n.is_whitespace() && *n != c) =>
            {
                word.get_or_insert_with(String::new).push(c);
            }
            (Quote::None, '|' | '&' | ';' | '<' | '>') => {
                let mut op = c.to_string();
                if let Some(&next) = chars.peek()
                    && matches!((c, next), ('|', '|') | ('&', '&') | ('>', '>') | ('>', '&'))
                {
                    op.push(next);
                    chars.next();
                }
                let what = match op.as_str() {
                    "<" | ">" | ">>" | ">&" => "the redirection".to_string(),
                    _ => format!("`{op}`"),
                };
                note(&mut reading, &what, true);
                // An operator ends a word; what follows starts another.
                if let Some(w) = word.take() {
                    reading.words.push(w);
                }
                reading.words.push(op);
            }
            // `$NAME`, `${...}`, `$(...)` and backquotes expand; a `$` before
            // anything else (`pa$$`, `$5`) means little to a shell either.
            (Quote::None | Quote::Double, '$')
                if !chars
                    .peek()
                    .is_some_and(|n| n.is_alphabetic() || matches!(n, '_' | '{' | '(')) =>
            {
                word.get_or_insert_with(String::new).push(c);
            }
            (Quote::None | Quote::Double, '$' | '`') => {
                note(&mut reading, "`$` or a backquote", true);
                word.get_or_insert_with(String::new).push(c);
            }
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            (Quote::Double, '\\')
                if chars
                    .peek()
                    .is_some_and(|n| matches!(n, '$' | '`' | '"' | '\\')) =>
            {
                let next = chars.next().unwrap_or('\\');
                word.get_or_insert_with(String::new).push(next);
            }
            (_, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word.take() {
        reading.words.push(w);
    }
    reading.balanced = quote == Quote::None;
    reading
}

fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    matches!(name, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh")
}

/// Words as a JSON array, the way a config would write them.
fn array<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| serde_json::Value::String(w.as_ref().to_string()).to_string())
        .collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------
// `each: "healthy"` and `each: "unhealthy"`

/// Warns about jobs that run on `each: "healthy"` or `each: "unhealthy"`.
/// ContainerPilot 3 published `healthy` after every passing health check and
/// `unhealthy` after every failing one, and a watch's with every `changed`;
/// so such a hook ran again and again. autopilot publishes them when the
/// state turns, so the hook runs once per turn.
pub fn event_warnings(root: &Spanned<Value>, rep: &mut Reporter<'_>) {
    let Some(Value::Array(jobs)) = root.value.get("jobs").map(|j| &j.value) else {
        return;
    };
    for (i, job) in jobs.iter().enumerate() {
        let Some(when) = job.value.get("when") else {
            continue;
        };
        let Some(each) = when.value.get("each") else {
            continue;
        };
        let code = match &each.value {
            Value::String(code) if code == "healthy" || code == "unhealthy" => code,
            _ => continue,
        };
        let source = match when.value.get("source").map(|s| &s.value) {
            Some(Value::String(source)) => source.as_str(),
            _ => continue,
        };
        let (message, hint) = if let Some(watch) = source.strip_prefix("watch.") {
            (
                format!(
                    "this job runs each time `{source}` turns {code}; ContainerPilot also \
                     published `{code}` with every change of a {code} watch, so it ran on \
                     every change"
                ),
                format!(
                    "to run on every change, write `each: \"changed\"` (the job can test \
                     CONTAINERPILOT_WATCH_{}_COUNT); to run when the watch turns {code}, \
                     leave it",
                    watch.to_uppercase().replace(['-', '.'], "_")
                ),
            )
        } else {
            let check = if code == "healthy" {
                "passing"
            } else {
                "failing"
            };
            (
                format!(
                    "this job runs each time `{source}` turns {code}; ContainerPilot \
                     published `{code}` after every {check} health check, so it ran every \
                     health-check interval while `{source}` was {code}"
                ),
                format!(
                    "to run periodically, give the job `when: {{interval: \"...\"}}`; to run \
                     when `{source}` turns {code}, leave it"
                ),
            )
        };
        rep.warning(
            each.span(),
            &format!("jobs[{i}].when.each"),
            message,
            Some(hint),
        );
    }
}

#[cfg(test)]
mod tests;
