//! Loading a configuration: read → render the template → parse JSON5 →
//! decode and validate into [`model::Config`].
//!
//! Every stage reports into the same [`error::Diagnostic`] form, so whatever
//! goes wrong the user gets the place, the problem and a fix. Template errors
//! point into the file as written; everything later points into the rendered
//! text, because that is what was parsed (print it with `-template`).
//!
//! A ContainerPilot 2 document is translated into the same typed config
//! (`v2`), its lifecycle hooks included (`hooks`); `migrate` writes any
//! config back out as ContainerPilot 3 JSON5.

pub mod decode;
pub mod duration;
pub mod error;
pub mod hooks;
pub mod metric_name;
pub mod migrate;
pub mod model;
pub mod quirks;
pub mod source;
pub mod suggest;
pub mod template;
pub mod v2;
pub mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use error::{ConfigError, Diagnostic, Reporter, Severity};
use model::{Config, SignalMode};
use version::Version;

/// A loaded configuration and what it was made from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The text after template rendering (what `-template` prints).
    pub rendered: String,
    pub path: PathBuf,
    /// Things that work but are probably not what was meant.
    pub warnings: Vec<Diagnostic>,
}

/// What the command line adds to a configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// The words after the flags. ContainerPilot 2 took them as the app to
    /// supervise; each word is rendered as a template, like the file. A
    /// ContainerPilot 3 config ignores them (with a warning): its jobs say
    /// what to run.
    pub app: Vec<String>,
    /// How translated ContainerPilot 2 sensors call autopilot back
    /// (`-putmetric`). When not given: the running binary, else `autopilot`
    /// from PATH. Loads that cannot pass it (a reload through the control
    /// socket) thus still get the same jobs.
    pub self_exe: Option<PathBuf>,
}

/// Where a configuration comes from. ContainerPilot 2 also took the JSON
/// itself as the `-config` value, and images in the wild do that.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    Inline(String),
}

impl Source {
    /// Reads a `-config` (or `CONTAINERPILOT`) value: JSON text when it
    /// starts with `{`, otherwise a path, with or without `file://`.
    pub fn from_flag(raw: &str) -> Source {
        if without_bom(raw).trim_start().starts_with('{') {
            Source::Inline(raw.to_string())
        } else {
            Source::File(strip_file_url(Path::new(raw)))
        }
    }

    /// How diagnostics name it.
    pub fn label(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Inline(_) => INLINE_LABEL.to_string(),
        }
    }
}

/// The name diagnostics give a config passed as text to `-config`.
const INLINE_LABEL: &str = "-config (inline JSON)";

/// `-config` (if given) or else the `CONTAINERPILOT` environment variable,
/// as a [`Source`].
pub fn resolve_source(flag: Option<&str>, env: &HashMap<String, String>) -> Option<Source> {
    let raw = flag.filter(|f| !f.is_empty()).or_else(|| {
        env.get("CONTAINERPILOT")
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    })?;
    Some(Source::from_flag(raw))
}

/// Loads a configuration from wherever it comes from.
pub fn load_source(
    source: &Source,
    env: &HashMap<String, String>,
    options: &LoadOptions,
) -> Result<Loaded, ConfigError> {
    match source {
        Source::File(path) => load_with(path, env, options),
        Source::Inline(text) => load_str_with(text, INLINE_LABEL, env, options),
    }
}

/// Renders the template of a source without parsing the result (`-template`).
pub fn render_source(
    source: &Source,
    env: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    match source {
        Source::File(path) => render_only(path, env),
        Source::Inline(text) => render(text, INLINE_LABEL, env),
    }
}

/// The config path named by `-config` (if given) or else the `CONTAINERPILOT`
/// environment variable, without ContainerPilot's optional `file://` prefix.
pub fn resolve_path(flag: Option<&str>, env: &HashMap<String, String>) -> Option<PathBuf> {
    let raw = flag.filter(|f| !f.is_empty()).or_else(|| {
        env.get("CONTAINERPILOT")
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    })?;
    Some(strip_file_url(Path::new(raw)))
}

fn strip_file_url(path: &Path) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_prefix("file://")) {
        Some(rest) => PathBuf::from(rest),
        None => path.to_path_buf(),
    }
}

/// Reads, renders, parses and validates the configuration at `path`.
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Loaded, ConfigError> {
    load_with(path, env, &LoadOptions::default())
}

/// [`load`], with what the command line adds (a ContainerPilot 2 app).
pub fn load_with(
    path: &Path,
    env: &HashMap<String, String>,
    options: &LoadOptions,
) -> Result<Loaded, ConfigError> {
    let path = strip_file_url(path);
    let file = path.display().to_string();
    let raw = read(&path, &file)?;
    let mut loaded = load_str_with(&raw, &file, env, options)?;
    loaded.path = path;
    Ok(loaded)
}

/// Renders the template at `path` without parsing the result (`-template`).
pub fn render_only(path: &Path, env: &HashMap<String, String>) -> Result<String, ConfigError> {
    let path = strip_file_url(path);
    let file = path.display().to_string();
    let raw = read(&path, &file)?;
    render(&raw, &file, env)
}

/// The whole pipeline on text already in memory; `origin` labels diagnostics.
pub fn load_str(
    raw: &str,
    origin: &str,
    env: &HashMap<String, String>,
) -> Result<Loaded, ConfigError> {
    load_str_with(raw, origin, env, &LoadOptions::default())
}

/// [`load_str`], with what the command line adds (a ContainerPilot 2 app).
pub fn load_str_with(
    raw: &str,
    origin: &str,
    env: &HashMap<String, String>,
    options: &LoadOptions,
) -> Result<Loaded, ConfigError> {
    let raw = without_bom(raw);
    let rendered = render(raw, origin, env)?;
    let input = v2::Input {
        app: render_app(&options.app, env)?,
        self_exe: options
            .self_exe
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .map_or_else(|| "autopilot".to_string(), |p| p.display().to_string()),
    };
    // Positions after rendering are in the rendered text; when the template
    // added or removed lines they no longer match the file, so say so.
    let label = if raw.lines().count() == rendered.lines().count() {
        origin.to_string()
    } else {
        format!("{origin} (as rendered)")
    };
    let mut loaded = parse_labelled(&rendered, &label, &input)?;
    loaded.path = PathBuf::from(origin);
    loaded
        .warnings
        .extend(quirks::env_value_warnings(raw, origin, env));
    if loaded.config.signals == SignalMode::V3 && !input.app.is_empty() {
        let mut warning = Diagnostic::unlocated(
            "the command line",
            format!(
                "`{}` after the flags is ignored: only ContainerPilot 2 configs take the app \
                 from the command line",
                input.app.join(" ")
            ),
            Some(format!(
                "{origin} is a ContainerPilot 3 config: run the app as a job, \
                 `{{name: \"app\", exec: [...], main: true}}`"
            )),
        );
        warning.severity = Severity::Warning;
        loaded.warnings.insert(0, warning);
    }
    Ok(loaded)
}

/// Renders each word of the app's command line as a template, as
/// ContainerPilot 2 did, so `app --name {{ .HOSTNAME }}` works.
fn render_app(words: &[String], env: &HashMap<String, String>) -> Result<Vec<String>, ConfigError> {
    let rendered: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            template::render(word, env).map_err(|e| {
                ConfigError::single(Diagnostic::unlocated(
                    "the command line",
                    format!(
                        "template error in word {} of the app's command line ({word:?}): {}",
                        i + 1,
                        e.message
                    ),
                    Some(
                        "each word after the flags is rendered as a Go template with the \
                         environment as data; write `{{ .NAME }}`"
                            .into(),
                    ),
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    if let Some(i) = rendered.iter().position(|word| word.contains('\0')) {
        return Err(ConfigError::single(Diagnostic::unlocated(
            "the command line",
            format!(
                "word {} of the app's command line ({:?}) renders to text with a NUL character",
                i + 1,
                words[i]
            ),
            Some("no process can be given a NUL character: change the template".into()),
        )));
    }
    if rendered
        .first()
        .is_some_and(|program| program.trim().is_empty())
    {
        return Err(ConfigError::single(Diagnostic::unlocated(
            "the command line",
            format!(
                "the app's program ({:?} after the flags) renders to nothing",
                words[0]
            ),
            Some("name the program to run; if it comes from a template, set its variable".into()),
        )));
    }
    Ok(rendered)
}

/// Parses and validates already-rendered text (no template step).
pub fn parse_str(rendered: &str, origin: &str) -> Result<Loaded, ConfigError> {
    parse_labelled(without_bom(rendered), origin, &v2::Input::default())
}

fn parse_labelled(rendered: &str, label: &str, input: &v2::Input) -> Result<Loaded, ConfigError> {
    let mut rep = Reporter::new(rendered, label);
    let config = source::parse_into(&mut rep).map(|root| {
        source::reject_nul(&root, "", &mut rep);
        quirks::event_warnings(&root, &mut rep);
        match version::detect(&root) {
            Version::V3 => decode::decode(&root, &mut rep),
            Version::V2 { .. } => v2::translate(&root, input, &mut rep),
        }
    });
    let failed = rep.has_errors();
    let diagnostics = rep.into_diagnostics();
    match config {
        Some(config) if !failed => Ok(Loaded {
            config,
            rendered: rendered.to_string(),
            path: PathBuf::from(label),
            warnings: diagnostics,
        }),
        _ => Err(ConfigError { diagnostics }),
    }
}

/// The text without the UTF-8 byte order mark that Windows editors write
/// at the start of a file (it is not JSON5, but it is not content either).
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Renders the template, turning its error into a located diagnostic.
fn render(raw: &str, file: &str, env: &HashMap<String, String>) -> Result<String, ConfigError> {
    let raw = without_bom(raw);
    template::render(raw, env).map_err(|e| {
        // Underline the whole `{{ ... }}` action when the error is inside one.
        let line = raw.split('\n').nth(e.line.saturating_sub(1)).unwrap_or("");
        let rest: String = line.chars().skip(e.column.saturating_sub(1)).collect();
        let caret_len = match rest.find("}}") {
            Some(end) => rest[..end + 2].chars().count(),
            None => 1,
        };
        ConfigError::single(Diagnostic::at_line_col(
            raw,
            file,
            (e.line, e.column),
            caret_len,
            format!("template: {}", e.message),
            Some("the config is a Go text/template rendered with the environment as data".into()),
        ))
    })
}

/// Reads the file, explaining the usual reasons it cannot be.
fn read(path: &Path, file: &str) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let (message, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (
                "configuration file not found".to_string(),
                "pass the path with `-config FILE` or set CONTAINERPILOT=FILE",
            ),
            std::io::ErrorKind::PermissionDenied => (
                "permission denied reading the configuration file".to_string(),
                "make the file readable by the user autopilot runs as",
            ),
            _ => (
                format!("cannot read the configuration file: {e}"),
                "pass the path of a JSON5 file with `-config FILE`",
            ),
        };
        ConfigError::single(Diagnostic::unlocated(file, message, Some(hint.to_string())))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let offset = String::from_utf8_lossy(&e.as_bytes()[..valid]).len();
        ConfigError::single(Diagnostic::at(
            Severity::Error,
            &text,
            file,
            source::Span::new(offset, offset + 1),
            "",
            "the file is not valid UTF-8",
            Some("save the configuration as UTF-8 text".into()),
        ))
    })
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;
