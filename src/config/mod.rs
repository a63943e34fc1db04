//! Loading a configuration: read → render the template → parse JSON5 →
//! decode and validate into [`model::Config`].
//!
//! Every stage reports into the same [`error::Diagnostic`] form, so whatever
//! goes wrong the user gets the place, the problem and a fix. Template errors
//! point into the file as written; everything later points into the rendered
//! text, because that is what was parsed (print it with `-template`).

pub mod decode;
pub mod duration;
pub mod error;
pub mod model;
pub mod source;
pub mod suggest;
pub mod template;
pub mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use error::{ConfigError, Diagnostic, Reporter, Severity};
use model::Config;
use source::{Spanned, Value};
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

/// The config path named by `-config` (if given) or else the `CONTAINERPILOT`
/// environment variable, without ContainerPilot's optional `file://` prefix.
pub fn resolve_path(flag: Option<&str>, env: &HashMap<String, String>) -> Option<PathBuf> {
    let raw = flag
        .filter(|f| !f.is_empty())
        .or_else(|| env.get("CONTAINERPILOT").map(String::as_str).filter(|v| !v.is_empty()))?;
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
    let path = strip_file_url(path);
    let file = path.display().to_string();
    let raw = read(&path, &file)?;
    let mut loaded = load_str(&raw, &file, env)?;
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
pub fn load_str(raw: &str, origin: &str, env: &HashMap<String, String>) -> Result<Loaded, ConfigError> {
    let rendered = render(raw, origin, env)?;
    // Positions after rendering are in the rendered text; when the template
    // added or removed lines they no longer match the file, so say so.
    let label = if raw.lines().count() == rendered.lines().count() {
        origin.to_string()
    } else {
        format!("{origin} (as rendered)")
    };
    let mut loaded = parse_labelled(&rendered, &label)?;
    loaded.path = PathBuf::from(origin);
    Ok(loaded)
}

/// Parses and validates already-rendered text (no template step).
pub fn parse_str(rendered: &str, origin: &str) -> Result<Loaded, ConfigError> {
    parse_labelled(rendered, origin)
}

fn parse_labelled(rendered: &str, label: &str) -> Result<Loaded, ConfigError> {
    let mut rep = Reporter::new(rendered, label);
    let config = source::parse_into(&mut rep).and_then(|root| match version::detect(&root) {
        Version::V3 => Some(decode::decode(&root, &mut rep)),
        Version::V2 { marker, key } => decode_v2(&root, marker, &key, &mut rep),
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

/// The single entry point for ContainerPilot 2 documents. Translation to jobs
/// and watches (a future `v2::translate_v2(root, rep)`) plugs in here.
fn decode_v2(
    _root: &Spanned<Value>,
    marker: source::Span,
    key: &str,
    rep: &mut Reporter<'_>,
) -> Option<Config> {
    rep.error(
        marker,
        "",
        "ContainerPilot 2 configuration is not supported yet",
        Some(format!(
            "`{key}` is ContainerPilot 2 syntax; rewrite the file for ContainerPilot 3 \
             (`jobs` and `watches`)"
        )),
    );
    None
}

/// Renders the template, turning its error into a located diagnostic.
fn render(raw: &str, file: &str, env: &HashMap<String, String>) -> Result<String, ConfigError> {
    template::render(raw, env).map_err(|e| {
        // Underline the whole `{{ ... }}` action when the error is inside one.
        let line = raw.split('\n').nth(e.line.saturating_sub(1)).unwrap_or("");
        let rest: String = line.chars().skip(e.column.saturating_sub(1)).collect();
        let caret_len = match rest.find("}}") {
            Some(end) => rest[..end + 2].chars().count(),
            None => 1,
        };
        ConfigError::single(Diagnostic::at_line_col(
            Severity::Error,
            raw,
            file,
            e.line,
            e.column,
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
mod tests;
#[cfg(test)]
mod corpus_tests;
