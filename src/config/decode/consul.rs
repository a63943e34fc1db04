//! The top-level `consul` section: how to reach the agent.
//!
//! Either a string (`"consul:8500"`, `"https://consul:8501"`) or an object with
//! `address`, `scheme`, `token` and `tls`. The address is kept as written;
//! the discovery module applies the `CONSUL_HTTP_*` environment and defaults.

use std::path::PathBuf;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::{ConsulConfig, ConsulTls};
use crate::config::source::{Spanned, Value};

pub(crate) const CONSUL_KEYS: &[&str] = &["address", "scheme", "token", "tls"];
pub(crate) const TLS_KEYS: &[&str] = &[
    "cafile",
    "capath",
    "clientcert",
    "clientkey",
    "servername",
    "verify",
];

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<ConsulConfig> {
    let config = match &v.value {
        Value::String(address) => ConsulConfig {
            address: address.trim().to_string(),
            ..ConsulConfig::default()
        },
        Value::Object(_) => decode_object(v, path, rep)?,
        other => {
            rep.error(
                v.span(),
                path,
                format!("expected an address or an object, found {}", other.kind()),
                Some(
                    "write `consul: \"localhost:8500\"` or `consul: {address: \"localhost:8500\"}`"
                        .into(),
                ),
            );
            return None;
        }
    };
    if config.address.is_empty() {
        // ContainerPilot handed an empty address to the Consul client, which
        // then used its default; keep that, but say so.
        rep.warning(
            v.span(),
            path,
            "the Consul address is empty: CONSUL_HTTP_ADDR or localhost:8500 is used",
            Some("if the address comes from a template, set its environment variable".into()),
        );
    }
    Some(config)
}

fn decode_object(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<ConsulConfig> {
    let mut f = Fields::open(v, path, "Consul options", CONSUL_KEYS, rep)?;
    let mut config = ConsulConfig::default();
    if let Some(v) = f.get("address", rep) {
        config.address = values::string(v, &f.path_of("address"), rep)
            .unwrap_or_default()
            .trim()
            .to_string();
    }
    if let Some(v) = f.get("scheme", rep).filter(|v| !values::is_blank(v))
        && let Some(scheme) = values::string(v, &f.path_of("scheme"), rep)
    {
        if scheme == "http" || scheme == "https" {
            config.scheme = Some(scheme);
        } else {
            rep.error(
                v.span(),
                &f.path_of("scheme"),
                format!("unknown scheme {scheme:?}"),
                Some("write `\"http\"` or `\"https\"`".into()),
            );
        }
    }
    if let Some(v) = f.get("token", rep).filter(|v| !values::is_blank(v)) {
        config.token = values::string(v, &f.path_of("token"), rep);
    }
    if let Some(v) = f.get("tls", rep) {
        config.tls = decode_tls(v, &f.path_of("tls"), rep);
    }
    f.finish(rep, &no_special);
    Some(config)
}

fn decode_tls(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<ConsulTls> {
    let mut f = Fields::open(v, path, "TLS options", TLS_KEYS, rep)?;
    let mut text = |f: &mut Fields<'_>, key: &str| -> Option<String> {
        let v = f.get(key, rep).filter(|v| !values::is_blank(v))?;
        values::string(v, &f.path_of(key), rep)
    };
    let tls = ConsulTls {
        ca_file: text(&mut f, "cafile").map(PathBuf::from),
        ca_path: text(&mut f, "capath").map(PathBuf::from),
        client_cert: text(&mut f, "clientcert").map(PathBuf::from),
        client_key: text(&mut f, "clientkey").map(PathBuf::from),
        server_name: text(&mut f, "servername"),
        verify: match f.get("verify", rep).filter(|v| !values::is_blank(v)) {
            Some(v) => values::bool(v, &f.path_of("verify"), rep).unwrap_or(true),
            None => true,
        },
    };
    f.finish(rep, &no_special);
    Some(tls)
}
