//! The layer test: imports between autopilot's modules run one way (issue
//! #16), so a newcomer can change a lower module without reading the ones
//! above it, and cycles cannot come back unnoticed.
//!
//! It reads every source file under `src/` except test files (named
//! `*tests.rs`), `lib.rs` (which declares the modules) and `main.rs` (the
//! top: it names the library as `autopilot::`), drops their
//! `#[cfg(test)] mod NAME { ... }` blocks, and finds each `crate::NAME` and
//! each NAME in `use crate::{NAME, ...}`, in code and in comments alike (a
//! doc link is a dependency for the reader). A reference to a module in a
//! higher layer fails the test with its file, line and arrow.

use std::fmt;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may refer to modules in its own layer
/// and in the layers below it, never above.
const LAYERS: &[&[&str]] = &[
    &[
        "events", "journal", "process", "environ", "config", "logging", "http",
    ],
    &["plan", "jobs"],
    &["discovery"],
    &["coordination"],
    &["supervisor"],
    &["control", "telemetry"],
    &["cli", "main"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// A reference from one module to another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Arrow {
    from: String,
    to: String,
    file: String,
    line: usize,
}

impl fmt::Display for Arrow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} -> {} (`{}` is in a higher layer than `{}`)",
            self.file, self.line, self.from, self.to, self.to, self.from
        )
    }
}

/// The top-level module a file under `src/` belongs to: `jobs/runner.rs`
/// and `jobs.rs` are `jobs`; `lib.rs` and `main.rs` belong to none.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_string()),
        None if relative.components().count() > 1 => Some(first.to_string()),
        None => None,
    }
}

/// Where the literal or comment starting at byte `i` of `s` ends (the index
/// after it), if one starts there: strings, raw and byte strings, char
/// literals, line and (nested) block comments. Braces in them are not code.
fn skip_literal(s: &str, i: usize) -> Option<usize> {
    let b = s.as_bytes();
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    match at(i) {
        b'/' if at(i + 1) == b'/' => Some(s[i..].find('\n').map_or(b.len(), |n| i + n)),
        b'/' if at(i + 1) == b'*' => {
            let (mut depth, mut k) = (1, i + 2);
            while k < b.len() && depth > 0 {
                let pair = (at(k), at(k + 1));
                depth += match pair {
                    (b'/', b'*') => 1,
                    (b'*', b'/') => -1,
                    _ => 0,
                };
                k += if matches!(pair, (b'/', b'*') | (b'*', b'/')) {
                    2
                } else {
                    1
                };
            }
            Some(k)
        }
        b'"' => {
            let mut k = i + 1;
            while k < b.len() && at(k) != b'"' {
                k += if at(k) == b'\\' { 2 } else { 1 };
            }
            Some(k + 1)
        }
        // b"..", b'x', br"..", r"..", r#".."#; not an identifier like `bar`
        // or a raw identifier like `r#type`.
        b'b' | b'r' if i == 0 || !(at(i - 1).is_ascii_alphanumeric() || at(i - 1) == b'_') => {
            let mut k = i;
            if at(k) == b'b' {
                k += 1;
                if matches!(at(k), b'"' | b'\'') {
                    return skip_literal(s, k);
                }
            }
            if at(k) != b'r' {
                return None;
            }
            k += 1;
            let hashes = b[k..].iter().take_while(|&&c| c == b'#').count();
            if at(k + hashes) != b'"' {
                return None;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = k + hashes + 1;
            Some(
                s[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len()),
            )
        }
        // A char literal ('x', '\n', '\u{7b}'); a lifetime ('a) is code.
        b'\'' if at(i + 1) == b'\\' => {
            Some(s.get(i + 3..)?.find('\'').map_or(b.len(), |n| i + 4 + n))
        }
        b'\'' => {
            let end = i + 1 + s[i + 1..].chars().next()?.len_utf8();
            (at(end) == b'\'').then_some(end + 1)
        }
        _ => None,
    }
}

/// `text` with its `#[cfg(test)] mod NAME { ... }` blocks blanked out
/// (newlines kept, so line numbers stay right).
fn strip_test_modules(text: &str) -> String {
    const ATTR: &[u8] = b"#[cfg(test)]";
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = skip_literal(text, i) {
            i = end.max(i + 1);
            continue;
        }
        if !b[i..].starts_with(ATTR) {
            i += 1;
            continue;
        }
        let start = i;
        // What follows the attribute: other attributes, `pub(..)`, `mod NAME`.
        let rest = &text[i + ATTR.len()..];
        let head_len = rest.find(['{', ';']).unwrap_or(rest.len());
        let head = &rest[..head_len];
        let words: Vec<&str> = head
            .split(|c: char| c.is_whitespace())
            .filter(|w| !w.is_empty() && !w.starts_with("#[") && !w.starts_with("pub"))
            .collect();
        let is_inline_mod =
            words.len() == 2 && words[0] == "mod" && rest.as_bytes().get(head_len) == Some(&b'{');
        if !is_inline_mod {
            i += ATTR.len();
            continue;
        }
        let mut k = i + ATTR.len() + head_len + 1;
        let mut depth = 1;
        while k < b.len() && depth > 0 {
            if let Some(end) = skip_literal(text, k) {
                k = end.max(k + 1);
                continue;
            }
            match b[k] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            k += 1;
        }
        for c in &mut out[start..k.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        i = k;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every module named after `crate::`, with its line: `crate::NAME` and each
/// NAME of `crate::{NAME, NAME::x, ...}`.
fn references(text: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = text[..at].matches('\n').count() + 1;
        let after = &text[at + "crate::".len()..];
        let Some(group) = after.strip_prefix('{') else {
            found.push((line, ident(after)));
            continue;
        };
        // The top-level items of the group, split at commas outside braces.
        let mut depth = 0;
        let mut item_start = 0;
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.push((line, ident(&group[item_start..k])));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.push((line, ident(&group[item_start..k])));
                    item_start = k + 1;
                }
                _ => {}
            }
        }
    }
    found.retain(|(_, name)| !name.is_empty() && name != "self");
    found
}

/// The references of `file` (a path under `src/`) to modules above its own,
/// and to modules that are in no layer.
fn back_arrows(file: &Path, text: &str) -> Vec<Arrow> {
    let Some(from) = module_of(file) else {
        return Vec::new();
    };
    let from_layer = layer_of(&from);
    references(&strip_test_modules(text))
        .into_iter()
        .filter(|(_, to)| *to != from)
        .filter(|(_, to)| match (from_layer, layer_of(to)) {
            (Some(f), Some(t)) => t > f,
            _ => true,
        })
        .map(|(line, to)| Arrow {
            from: from.clone(),
            to,
            file: format!("src/{}", file.display()),
            line,
        })
        .collect()
}

/// Source files under `src/`, relative to it, without test files.
fn source_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src.clone()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
                files.push(path.strip_prefix(&src).expect("under src").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// Every back-arrow in the tree, in file order.
fn all_back_arrows() -> Vec<Arrow> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    source_files()
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(src.join(file))
                .unwrap_or_else(|e| panic!("cannot read src/{}: {e}", file.display()));
            back_arrows(file, &text)
        })
        .collect()
}

#[test]
fn no_module_refers_to_one_above_it() {
    let new: Vec<String> = all_back_arrows().iter().map(Arrow::to_string).collect();
    assert!(
        new.is_empty(),
        "imports must run down the layers {LAYERS:?}; these run up:\n{}\n\
         Move the shared piece down (or the caller up) instead of importing upwards.",
        new.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    for module in modules {
        assert!(
            layer_of(module).is_some(),
            "module `{module}` has no place in LAYERS (src/layering_tests.rs)"
        );
    }
}

#[test]
fn a_planted_back_import_is_found() {
    let file = Path::new("jobs/runner.rs");
    let text = "//! Runs a job.\n\
                use crate::config::model::JobConfig;\n\
                use crate::supervisor::Handle;\n";
    let arrows = back_arrows(file, text);
    assert_eq!(arrows.len(), 1, "{arrows:?}");
    assert_eq!(
        arrows[0].to_string(),
        "src/jobs/runner.rs:3: jobs -> supervisor (`supervisor` is in a higher layer than `jobs`)"
    );
}

#[test]
fn groups_comments_and_nested_paths_count() {
    let text = "use crate::{events::Bus, control::{self, http}};\n\
                /// See [`crate::telemetry::Telemetry`].\n\
                fn f() { crate::cli::parse(&[]); }\n\
                use crate::jobs::machine;\n";
    let to: Vec<(usize, String)> = back_arrows(Path::new("discovery/watch.rs"), text)
        .into_iter()
        .map(|a| (a.line, a.to))
        .collect();
    assert_eq!(
        to,
        [
            (1, "control".to_string()),
            (2, "telemetry".to_string()),
            (3, "cli".to_string())
        ]
    );
}

#[test]
fn test_modules_are_exempt_but_only_they_are() {
    let text = r##"use crate::events::Bus;
#[cfg(test)]
mod tests {
    use crate::supervisor::Handle;
    const JSON: &str = r#"{"a": "}"}"#;
    fn f() -> char { '}' }
    fn g<'a>(s: &'a str) -> &'a str { "}}" }
}
#[cfg(test)]
mod more_tests;
use crate::control::http;
"##;
    let arrows = back_arrows(Path::new("plan/mod.rs"), text);
    let lines: Vec<(usize, &str)> = arrows.iter().map(|a| (a.line, a.to.as_str())).collect();
    assert_eq!(lines, [(11, "control")], "{arrows:?}");
}

#[test]
fn a_module_outside_the_table_is_reported() {
    let arrows = back_arrows(Path::new("events.rs"), "use crate::gadgets::Thing;\n");
    assert_eq!(arrows.len(), 1);
    assert_eq!(arrows[0].to, "gadgets");
    assert!(back_arrows(Path::new("lib.rs"), "use crate::cli;\n").is_empty());
    assert_eq!(module_of(Path::new("plan/mod.rs")).as_deref(), Some("plan"));
    assert_eq!(module_of(Path::new("events.rs")).as_deref(), Some("events"));
}
