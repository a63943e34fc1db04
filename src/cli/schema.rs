//! A JSON Schema of the config file, for editors (`autopilot schema`).
//!
//! The keys of every object come from the decoder's own key lists
//! (`config::decode::*::*_KEYS`), so a key the decoder learns appears here
//! without a second edit. This module only adds what each value may be,
//! and as loosely as the decoder reads it (ContainerPilot accepted `"8080"`
//! for a port and `30` or `"30s"` for a duration). A ContainerPilot 3 object
//! allows no other keys, as the decoder refuses them; a ContainerPilot 2
//! document (recognised as `config::version` does) only has its top level
//! described, since its decoder ignores unknown keys.

use crate::config::decode::{
    consul, control, health, jobs, logging, restarts, service, telemetry, watches, when,
};
use crate::config::{hooks, v2, version};
use serde_json::{Map, Value, json};

fn duration() -> Value {
    json!({"type": ["string", "number"], "description": "a duration: `\"5s\"`, `\"1m30s\"`, or a number of seconds"})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn flag() -> Value {
    json!({"type": ["boolean", "string"]})
}

fn number() -> Value {
    json!({"type": ["integer", "string"]})
}

/// A command: `"prog arg"` (split on spaces) or `["prog", "arg"]`.
fn exec() -> Value {
    json!({"type": ["string", "array"], "items": {"type": "string"}})
}

fn strings() -> Value {
    json!({"type": ["array", "string"], "items": {"type": "string"}})
}

/// An object with exactly the decoder's `keys`; `types` says what some of
/// them hold (the rest may hold anything the decoder accepts).
fn object(keys: &[&str], types: Vec<(&str, Value)>, strict: bool) -> Value {
    let mut properties = Map::new();
    for key in keys {
        let schema = types
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| or_null(v.clone()))
            .unwrap_or_else(|| json!({}));
        properties.insert((*key).to_string(), schema);
    }
    for (key, _) in &types {
        debug_assert!(keys.contains(key), "schema types unknown key {key}");
    }
    json!({"type": "object", "properties": properties, "additionalProperties": !strict})
}

/// The decoder reads `null` as "not set", as ContainerPilot did.
fn or_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type") {
        let mut list = match types.take() {
            Value::Array(list) => list,
            one => vec![one],
        };
        list.push(json!("null"));
        *types = Value::Array(list);
    } else if let Some(Value::Array(any)) = schema.get_mut("anyOf") {
        any.push(json!({"type": "null"}));
    }
    schema
}

/// A parsed config document as plain JSON, to check it against the schema.
pub fn json_of(value: &crate::config::source::Spanned<crate::config::source::Value>) -> Value {
    use crate::config::source::Value as V;
    match &value.value {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Number(n) => serde_json::Number::from_f64(n.value)
            .map(|f| match n.as_i64() {
                Some(i) => Value::from(i),
                None => Value::Number(f),
            })
            .unwrap_or(Value::Null),
        V::String(s) => Value::String(s.clone()),
        V::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        V::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.value.clone(), json_of(v)))
                .collect(),
        ),
    }
}

fn strict(keys: &[&str], types: Vec<(&str, Value)>) -> Value {
    object(keys, types, true)
}

fn hook() -> Value {
    exec()
}

fn job() -> Value {
    let health = strict(
        health::HEALTH_KEYS,
        vec![
            ("exec", exec()),
            (
                "http",
                json!({"anyOf": [string(), strict(health::HTTP_KEYS, vec![("url", string())])]}),
            ),
            ("tcp", string()),
            ("interval", duration()),
            ("ttl", duration()),
            ("timeout", duration()),
            (
                "logging",
                strict(health::LOGGING_KEYS, vec![("raw", flag())]),
            ),
        ],
    );
    strict(
        jobs::JOB_KEYS,
        vec![
            ("name", string()),
            ("exec", exec()),
            (
                "logging",
                strict(health::LOGGING_KEYS, vec![("raw", flag())]),
            ),
            (
                "when",
                strict(
                    when::WHEN_KEYS,
                    vec![
                        ("source", string()),
                        ("once", string()),
                        ("each", string()),
                        ("interval", duration()),
                        ("timeout", duration()),
                    ],
                ),
            ),
            ("timeout", duration()),
            ("stopTimeout", duration()),
            ("restarts", number()),
            ("health", health),
            ("port", number()),
            ("tags", strings()),
            ("interfaces", strings()),
            (
                "consul",
                strict(
                    service::CONSUL_KEYS,
                    vec![
                        ("enableTagOverride", flag()),
                        ("deregisterCriticalServiceAfter", duration()),
                    ],
                ),
            ),
            ("initial_status", string()),
            ("meta", json!({"type": "object"})),
            ("main", flag()),
            (
                "backoff",
                strict(
                    restarts::BACKOFF_KEYS,
                    vec![
                        ("initial", duration()),
                        ("max", duration()),
                        ("reset", duration()),
                    ],
                ),
            ),
            (
                "hooks",
                strict(
                    hooks::JOB_HOOK_KEYS,
                    hooks::JOB_HOOK_KEYS.iter().map(|k| (*k, hook())).collect(),
                ),
            ),
            ("exitOnFailure", flag()),
            (
                "leader",
                strict(
                    jobs::LEADER_KEYS,
                    vec![
                        ("key", string()),
                        ("ttl", duration()),
                        ("lockDelay", duration()),
                    ],
                ),
            ),
        ],
    )
}

/// The ContainerPilot 3 document.
fn v3() -> Value {
    let consul = json!({"anyOf": [
        {"type": "string", "description": "host:port of the Consul agent"},
        strict(consul::CONSUL_KEYS, vec![
            ("address", string()),
            ("scheme", string()),
            ("token", string()),
            ("tls", strict(consul::TLS_KEYS, vec![("verify", flag())])),
        ]),
    ]});
    let watch = strict(
        watches::WATCH_KEYS,
        vec![
            ("name", string()),
            ("interval", duration()),
            ("tag", string()),
            ("dc", string()),
            ("onChange", hook()),
        ],
    );
    let telemetry = strict(
        telemetry::TELEMETRY_KEYS,
        vec![
            ("port", number()),
            ("interfaces", strings()),
            ("tags", strings()),
            (
                "metrics",
                json!({"type": "array", "items": strict(telemetry::METRIC_KEYS, vec![
                    ("namespace", string()),
                    ("subsystem", string()),
                    ("name", string()),
                    ("help", string()),
                    ("type", string()),
                ])}),
            ),
        ],
    );
    strict(
        crate::config::decode::TOP_KEYS,
        vec![
            ("consul", consul),
            (
                "logging",
                strict(
                    logging::LOGGING_KEYS,
                    vec![
                        ("level", string()),
                        ("format", string()),
                        ("output", string()),
                    ],
                ),
            ),
            (
                "control",
                strict(control::CONTROL_KEYS, vec![("socket", string())]),
            ),
            ("stopTimeout", duration()),
            ("jobs", json!({"type": "array", "items": job()})),
            ("watches", json!({"type": "array", "items": watch})),
            ("telemetry", telemetry),
        ],
    )
}

/// A ContainerPilot 2 document: its top level, as leniently as its decoder.
fn v2() -> Value {
    object(
        v2::TOP_KEYS,
        vec![
            ("services", json!({"type": "array"})),
            ("backends", json!({"type": "array"})),
            ("coprocesses", json!({"type": "array"})),
            ("tasks", json!({"type": "array"})),
            ("preStart", exec()),
            ("preStop", exec()),
            ("postStop", exec()),
        ],
        false,
    )
}

/// The schema: ContainerPilot 2 when a key only it knew is at the top and
/// none only ContainerPilot 3 knows (as `config::version` decides), else 3.
pub fn schema() -> Value {
    let any_key = |keys: &[&str]| {
        Value::Array(
            keys.iter()
                .map(|k| json!({"required": [k]}))
                .collect::<Vec<_>>(),
        )
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "autopilot configuration (ContainerPilot 3, or 2)",
        "description": "Generated by `autopilot schema` from the decoder's key lists. \
                        Applies to the config after template rendering.",
        "if": {"allOf": [
            {"anyOf": any_key(&version::V2_KEYS)},
            {"not": {"anyOf": any_key(&version::V3_KEYS)}},
        ]},
        "then": v2(),
        "else": v3(),
    })
}

/// The schema as pretty JSON.
pub fn text() -> String {
    serde_json::to_string_pretty(&schema()).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_key_is_described() {
        let s = schema();
        let jobs = &s["else"]["properties"]["jobs"]["items"]["properties"];
        for key in jobs::JOB_KEYS {
            assert!(jobs.get(key).is_some(), "no {key}");
        }
        assert_eq!(s["else"]["additionalProperties"], json!(false));
        assert_eq!(s["then"]["additionalProperties"], json!(true));
    }
}
