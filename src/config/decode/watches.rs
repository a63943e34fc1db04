//! The `watches` section: Consul services (or KV keys) to follow.

use std::time::Duration;

use super::fields::{Fields, required_name};
use super::values;
use crate::config::error::Reporter;
use crate::config::hooks::{self, Created, Hook};
use crate::config::model::{JobConfig, WatchConfig, WatchTarget};
use crate::config::source::{Span, Spanned, Value};

pub(crate) const WATCH_KEYS: &[&str] =
    &["name", "interval", "tag", "dc", "key", "prefix", "onChange"];

/// Default minimum spacing between two events of a watch, ContainerPilot's
/// usual poll interval. With blocking queries it only limits event bursts.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// Decodes the `watches` array. A watch's `onChange` hook becomes a job
/// (`config::hooks`), returned beside the watches and recorded in `created`.
pub fn decode_all(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
    created: &mut Vec<Created>,
) -> (Vec<WatchConfig>, Vec<JobConfig>) {
    let Value::Array(items) = &v.value else {
        rep.error(
            v.span(),
            path,
            format!("expected an array of watches, found {}", v.value.kind()),
            Some("write `watches: [{name: \"db\", interval: 10}]`".into()),
        );
        return (Vec::new(), Vec::new());
    };
    let mut watches: Vec<WatchConfig> = Vec::new();
    let mut on_change = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some((watch, name_span, hook)) = decode_one(item, &item_path, rep) else {
            continue;
        };
        if let Some(first) = watches.iter().find(|w| w.name == watch.name) {
            rep.error(
                name_span,
                &format!("{item_path}.name"),
                format!("there is already a watch named `{}`", watch.name),
                Some(format!(
                    "the first one is on line {}; both would publish as `watch.{}`, so watch \
                     names must be unique",
                    first.line, watch.name
                )),
            );
        }
        if let Some(hook) = hook {
            on_change.push(hooks::on_change(&watch, &hook, created));
        }
        watches.push(watch);
    }
    (watches, on_change)
}

fn decode_one(
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<(WatchConfig, Span, Option<Hook>)> {
    let mut f = Fields::open(v, path, "a watch", WATCH_KEYS, rep)?;
    let line = rep.line_of(v.start);
    let (name_value, name) = required_name(
        &mut f,
        rep,
        "name the Consul service to watch, e.g. `name: \"db\"`",
        "name the Consul service to watch: add `name: \"db\"`",
    );
    let mut text = |f: &mut Fields<'_>, key: &str| -> Option<(String, Span)> {
        let v = f.get(key, rep).filter(|v| !values::is_blank(v))?;
        values::string(v, &f.path_of(key), rep).map(|s| (s, v.span()))
    };
    let tag = text(&mut f, "tag");
    let dc = text(&mut f, "dc").map(|(s, _)| s);
    let key = text(&mut f, "key");
    let prefix = text(&mut f, "prefix");
    let on_change = f.get("onChange", rep).and_then(|v| {
        let key_span = f.key_span("onChange").unwrap_or(v.span());
        hooks::decode_command(v, key_span, &f.path_of("onChange"), rep)
    });
    let interval = match f.get("interval", rep).filter(|v| !values::is_blank(v)) {
        Some(v) => values::duration_at_least(
            v,
            &f.path_of("interval"),
            rep,
            "interval: 10",
            Duration::from_nanos(1),
        ),
        None => Some(DEFAULT_WATCH_INTERVAL),
    };

    let target = match (key, prefix) {
        (Some(_), Some((_, span))) => {
            rep.error(
                span,
                &f.path_of("prefix"),
                "`key` and `prefix` cannot both be set",
                Some("watch one key with `key`, or every key under a path with `prefix`".into()),
            );
            None
        }
        (kv_key, kv_prefix) => {
            if let (Some((_, tag_span)), true) = (&tag, kv_key.is_some() || kv_prefix.is_some()) {
                rep.error(
                    *tag_span,
                    &f.path_of("tag"),
                    "`tag` only applies to service watches",
                    Some("remove `tag`, or remove `key` / `prefix` to watch the service".into()),
                );
            }
            match (kv_key, kv_prefix) {
                (Some((key, _)), _) => Some(WatchTarget::Key { key, dc }),
                (_, Some((prefix, _))) => Some(WatchTarget::Prefix { prefix, dc }),
                _ => name.clone().map(|service| WatchTarget::Service {
                    service,
                    tag: tag.map(|(t, _)| t),
                    dc,
                }),
            }
        }
    };
    f.finish(rep, &watch_key_hint);
    let watch = WatchConfig {
        name: name?,
        target: target?,
        interval: interval?,
        line,
    };
    Some((watch, name_value.map_or(v.span(), Spanned::span), on_change))
}

fn watch_key_hint(key: &str) -> Option<String> {
    match key {
        "poll" => Some("ContainerPilot 2's `poll` is `interval` in ContainerPilot 3".into()),
        _ => None,
    }
}
