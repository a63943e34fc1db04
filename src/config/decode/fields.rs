//! Reading the keys of one config object, with `deny_unknown_fields`
//! semantics: every key must be consumed by the section's decoder, and the
//! ones left over are reported with a suggestion.

use super::values;
use crate::config::error::{Reporter, Severity};
use crate::config::source::{Span, Spanned, Value};
use crate::config::suggest;

/// The keys of one object, tracking which ones the decoder has used.
pub struct Fields<'a> {
    path: String,
    span: Span,
    entries: &'a [(Spanned<String>, Spanned<Value>)],
    used: Vec<bool>,
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    /// Opens `value` as an object; reports an error (and returns `None`) when
    /// it is something else. `known` lists the section's keys, for suggestions.
    pub fn open(
        value: &'a Spanned<Value>,
        path: &str,
        what: &str,
        known: &'static [&'static str],
        rep: &mut Reporter<'_>,
    ) -> Option<Fields<'a>> {
        match &value.value {
            Value::Object(entries) => Some(Fields {
                path: path.to_string(),
                span: value.span(),
                entries,
                used: vec![false; entries.len()],
                known,
            }),
            other => {
                rep.error(
                    value.span(),
                    path,
                    format!("expected {what} (an object), found {}", other.kind()),
                    Some(format!(
                        "write `{{ ... }}` with the keys: {}",
                        known.join(", ")
                    )),
                );
                None
            }
        }
    }

    /// The object's own span, for "missing key" errors.
    pub fn span(&self) -> Span {
        self.span
    }

    /// Path of this object (`jobs[1].health`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Path of a key of this object (`jobs[1]` + `health` → `jobs[1].health`).
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, or `None` when it is absent or `null` (ContainerPilot
    /// read `null` as "not set"). Like ContainerPilot's decoder, a key spelled
    /// with different case still counts, with a warning to fix the spelling.
    pub fn get(&mut self, key: &str, rep: &mut Reporter<'_>) -> Option<&'a Spanned<Value>> {
        let index = match self.entries.iter().position(|(k, _)| k.value == key) {
            Some(i) => i,
            None => {
                let i = self
                    .entries
                    .iter()
                    .position(|(k, _)| k.value.eq_ignore_ascii_case(key))?;
                let written = &self.entries[i].0;
                rep.warning(
                    written.span(),
                    &self.path_of(&written.value),
                    format!("key `{}` should be spelled `{key}`", written.value),
                    Some(format!("write `{key}`")),
                );
                i
            }
        };
        self.used[index] = true;
        let value = &self.entries[index].1;
        (!matches!(value.value, Value::Null)).then_some(value)
    }

    /// Span of the key itself (for errors about the key rather than its value).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.value.eq_ignore_ascii_case(key))
            .map(|(k, _)| k.span())
    }

    /// Reports every key the decoder did not use. `special` may explain keys
    /// that have a known meaning elsewhere (ContainerPilot 2 names).
    pub fn finish(self, rep: &mut Reporter<'_>, special: &dyn Fn(&str) -> Option<String>) {
        self.report_unused(Severity::Error, rep, special);
    }

    /// Like [`Fields::finish`], but the keys left over are only warned about
    /// and ignored: ContainerPilot 2 decoded with Go's `json.Unmarshal`, which
    /// skips unknown keys, and published v2 configs rely on that.
    pub fn finish_lenient(self, rep: &mut Reporter<'_>, special: &dyn Fn(&str) -> Option<String>) {
        self.report_unused(Severity::Warning, rep, special);
    }

    fn report_unused(
        self,
        severity: Severity,
        rep: &mut Reporter<'_>,
        special: &dyn Fn(&str) -> Option<String>,
    ) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let hint = special(&key.value).or_else(|| {
                suggest::closest(&key.value, self.known.iter().copied())
                    .map(|k| format!("did you mean `{k}`?"))
            });
            let hint =
                hint.unwrap_or_else(|| format!("known keys here: {}", self.known.join(", ")));
            let location = if self.path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{}`", self.path)
            };
            let path = self.path_of(&key.value);
            match severity {
                Severity::Error => rep.error(
                    key.span(),
                    &path,
                    format!("unknown key `{}` {location}", key.value),
                    Some(hint),
                ),
                Severity::Warning => rep.warning(
                    key.span(),
                    &path,
                    format!("unknown key `{}` {location} is ignored", key.value),
                    Some(hint),
                ),
            }
        }
    }
}

/// The required, non-empty `name` of a job or a watch, with the value it is
/// read from (for spans). Missing, it is reported on the object with
/// `missing_hint`; empty, on the value with `empty_hint`.
pub fn required_name<'a>(
    f: &mut Fields<'a>,
    rep: &mut Reporter<'_>,
    empty_hint: &str,
    missing_hint: &str,
) -> (Option<&'a Spanned<Value>>, Option<String>) {
    let name_value = f.get("name", rep);
    let name = match name_value {
        Some(n) => values::env_safe_name(n, &f.path_of("name"), rep, empty_hint),
        None => {
            rep.error(
                f.span(),
                f.path(),
                "missing `name`",
                Some(missing_hint.to_string()),
            );
            None
        }
    };
    (name_value, name)
}

/// No special explanations for unknown keys.
pub fn no_special(_: &str) -> Option<String> {
    None
}
