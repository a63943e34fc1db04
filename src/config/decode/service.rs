//! The Consul registration part of a job: `port` and what goes with it
//! (`tags`, `interfaces`, `consul`, `initial_status`, `meta`).

use std::collections::BTreeMap;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::duration;
use crate::config::error::Reporter;
use crate::config::model::ServiceConfig;
use crate::config::source::{Spanned, Value};
use crate::config::suggest;

pub(crate) const CONSUL_KEYS: &[&str] = &["enableTagOverride", "deregisterCriticalServiceAfter"];
const STATUSES: [&str; 3] = ["passing", "warning", "critical"];

/// Keys that only mean something for a registered (advertised) job.
const NEEDS_PORT: [&str; 5] = ["tags", "interfaces", "consul", "initial_status", "meta"];

/// Decodes the registration keys of the job in `f`. `None` when the job has
/// no `port` (it is not advertised); the other keys are still checked.
pub fn decode(f: &mut Fields<'_>, rep: &mut Reporter<'_>) -> Option<ServiceConfig> {
    let port_value = f.get("port", rep);
    let port = match port_value {
        Some(v) if values::is_blank(v) => {
            rep.warning(
                v.span(),
                &f.path_of("port"),
                "`port` is empty, so the job is not registered in Consul",
                Some("if the port comes from a template, set its environment variable".into()),
            );
            None
        }
        Some(v) => values::port(v, &f.path_of("port"), rep),
        None => None,
    };
    // An invalid port is reported already; do not pile warnings on top.
    let advertised = port_value.is_some_and(|v| !values::is_blank(v));

    let mut service = ServiceConfig {
        port: port.unwrap_or(0),
        ..ServiceConfig::default()
    };
    for key in NEEDS_PORT {
        let Some(v) = f.get(key, rep) else { continue };
        let path = f.path_of(key);
        if !advertised {
            rep.warning(
                f.key_span(key).unwrap_or(v.span()),
                &path,
                format!("`{key}` has no effect without `port`"),
                Some(format!(
                    "add `port` to register this job in Consul, or remove `{key}`"
                )),
            );
        }
        match key {
            "tags" => service.tags = values::string_list(v, &path, rep).unwrap_or_default(),
            "interfaces" => {
                service.interfaces = values::string_list(v, &path, rep).unwrap_or_default()
            }
            "consul" => consul_extras(v, &path, &mut service, rep),
            "initial_status" => service.initial_status = initial_status(v, &path, rep),
            _ => service.meta = meta(v, &path, rep),
        }
    }
    port.map(|_| service)
}

fn consul_extras(
    v: &Spanned<Value>,
    path: &str,
    service: &mut ServiceConfig,
    rep: &mut Reporter<'_>,
) {
    let Some(mut f) = Fields::open(v, path, "job Consul options", CONSUL_KEYS, rep) else {
        return;
    };
    if let Some(v) = f.get("enableTagOverride", rep) {
        service.enable_tag_override =
            values::bool(v, &f.path_of("enableTagOverride"), rep).unwrap_or(false);
    }
    if let Some(v) = f
        .get("deregisterCriticalServiceAfter", rep)
        .filter(|v| !values::is_blank(v))
    {
        let path = f.path_of("deregisterCriticalServiceAfter");
        // Consul parses this itself, with Go's syntax: no bare numbers.
        let text = match &v.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => {
                rep.error(
                    v.span(),
                    &path,
                    format!("missing unit in duration `{}`", n.raw),
                    Some(format!(
                        "Consul needs a unit: write `\"{}s\"` or `\"{}m\"`",
                        n.raw, n.raw
                    )),
                );
                None
            }
            _ => values::string(v, &path, rep),
        };
        if let Some(text) = text {
            match duration::parse_go(&text) {
                Ok(_) => service.deregister_critical_service_after = Some(text),
                Err(e) => rep.error(
                    v.span(),
                    &path,
                    e.message,
                    Some(e.hint.unwrap_or_else(|| "for example `\"10m\"`".into())),
                ),
            }
        }
    }
    f.finish(rep, &no_special);
}

fn initial_status(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<String> {
    if values::is_blank(v) {
        return None;
    }
    let status = values::string(v, path, rep)?;
    if STATUSES.contains(&status.as_str()) {
        return Some(status);
    }
    let hint = match suggest::closest(&status, STATUSES) {
        Some(close) => format!("did you mean `\"{close}\"`?"),
        None => "write `\"passing\"`, `\"warning\"` or `\"critical\"`".into(),
    };
    rep.error(
        v.span(),
        path,
        format!("invalid initial status {status:?}"),
        Some(hint),
    );
    None
}

fn meta(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> BTreeMap<String, String> {
    let Value::Object(entries) = &v.value else {
        rep.error(
            v.span(),
            path,
            format!("expected an object of strings, found {}", v.value.kind()),
            Some("write `meta: {version: \"1.2\"}`".into()),
        );
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let entry_path = format!("{path}.{}", key.value);
        let text = match &value.value {
            Value::Bool(b) => Some(b.to_string()),
            _ => values::string(value, &entry_path, rep),
        };
        if let Some(text) = text {
            out.insert(key.value.clone(), text);
        }
    }
    out
}
