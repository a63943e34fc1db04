//! Which ContainerPilot generation a document was written for.
//!
//! ContainerPilot 2 configs have `services`, `backends`, hooks (`preStart`,
//! ...), `coprocesses`, `tasks` or `telemetry.sensors` at the top; version 3
//! replaced all of them with `jobs` and `watches`. Some published configs were
//! caught half-way through the migration (v3 `jobs` next to v2
//! `telemetry.sensors`): those have v3 keys and are decoded as v3, where the
//! leftover v2 keys are reported with what replaced them.

use super::source::{Span, Spanned, Value};

/// Top-level keys only ContainerPilot 2 knew.
pub(crate) const V2_KEYS: [&str; 7] = [
    "services",
    "backends",
    "preStart",
    "preStop",
    "postStop",
    "coprocesses",
    "tasks",
];

/// Top-level keys only ContainerPilot 3 knows.
pub(crate) const V3_KEYS: [&str; 3] = ["jobs", "watches", "control"];

#[derive(Debug, Clone, PartialEq)]
pub enum Version {
    V3,
    /// A ContainerPilot 2 document; `marker` is the first key that says so.
    V2 {
        marker: Span,
        key: String,
    },
}

pub fn detect(root: &Spanned<Value>) -> Version {
    let Value::Object(entries) = &root.value else {
        return Version::V3;
    };
    if entries
        .iter()
        .any(|(k, _)| V3_KEYS.contains(&k.value.as_str()))
    {
        return Version::V3;
    }
    for (key, value) in entries {
        if V2_KEYS.contains(&key.value.as_str()) {
            return Version::V2 {
                marker: key.span(),
                key: key.value.clone(),
            };
        }
        if key.value == "telemetry"
            && let Some(sensors) =
                entries_of(value).and_then(|e| e.iter().find(|(k, _)| k.value == "sensors"))
        {
            return Version::V2 {
                marker: sensors.0.span(),
                key: "telemetry.sensors".into(),
            };
        }
    }
    Version::V3
}

fn entries_of(v: &Spanned<Value>) -> Option<&[(Spanned<String>, Spanned<Value>)]> {
    match &v.value {
        Value::Object(entries) => Some(entries),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::parse;

    fn version(text: &str) -> Version {
        detect(&parse(text, "t").unwrap())
    }

    #[test]
    fn v2_keys_mark_a_v2_document() {
        assert!(
            matches!(version("{consul: 'c:8500', services: []}"), Version::V2 { key, .. } if key == "services")
        );
        assert!(
            matches!(version("{telemetry: {sensors: []}}"), Version::V2 { key, .. } if key == "telemetry.sensors")
        );
        assert_eq!(version("{consul: 'c:8500', jobs: []}"), Version::V3);
        assert_eq!(version("{}"), Version::V3);
    }

    #[test]
    fn a_half_migrated_document_is_v3() {
        assert_eq!(version("{jobs: [], telemetry: {sensors: []}}"), Version::V3);
    }
}
