//! The `telemetry` section: the Prometheus endpoint and the metrics that jobs
//! may update through the control socket.

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::{MetricConfig, MetricType, TelemetryConfig};
use crate::config::source::{Spanned, Value};
use crate::config::suggest;

pub(crate) const TELEMETRY_KEYS: &[&str] = &["port", "interfaces", "tags", "metrics"];
pub(crate) const METRIC_KEYS: &[&str] = &["namespace", "subsystem", "name", "help", "type"];
const TYPES: [&str; 4] = ["counter", "gauge", "histogram", "summary"];

/// ContainerPilot's default telemetry port.
pub const DEFAULT_TELEMETRY_PORT: u16 = 9090;

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<TelemetryConfig> {
    let mut f = Fields::open(v, path, "telemetry options", TELEMETRY_KEYS, rep)?;
    let mut telemetry = endpoint(&mut f, rep);
    let mut metrics = Vec::new();
    if let Some(list) = f.get("metrics", rep) {
        match &list.value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(m) =
                        decode_metric(item, &format!("{}[{i}]", f.path_of("metrics")), rep)
                    {
                        metrics.push(m);
                    }
                }
            }
            other => rep.error(
                list.span(),
                &f.path_of("metrics"),
                format!("expected an array of metrics, found {}", other.kind()),
                Some(
                    "write `metrics: [{name: \"hits\", help: \"...\", type: \"counter\"}]`".into(),
                ),
            ),
        }
    }
    f.finish(rep, &telemetry_key_hint);
    telemetry.metrics = metrics;
    Some(telemetry)
}

/// The endpoint's keys, which ContainerPilot 2's `telemetry` (`config::v2`)
/// shares: `port` (default [`DEFAULT_TELEMETRY_PORT`]), `interfaces` and
/// `tags`; the metrics are left empty for the caller.
pub(crate) fn endpoint(f: &mut Fields<'_>, rep: &mut Reporter<'_>) -> TelemetryConfig {
    let port = match f.get("port", rep).filter(|v| !values::is_blank(v)) {
        Some(v) => values::port(v, &f.path_of("port"), rep).unwrap_or(DEFAULT_TELEMETRY_PORT),
        None => DEFAULT_TELEMETRY_PORT,
    };
    let interfaces = f
        .get("interfaces", rep)
        .and_then(|v| values::string_list(v, &f.path_of("interfaces"), rep))
        .unwrap_or_default();
    let tags = f
        .get("tags", rep)
        .and_then(|v| values::string_list(v, &f.path_of("tags"), rep))
        .unwrap_or_default();
    TelemetryConfig {
        port,
        interfaces,
        tags,
        metrics: Vec::new(),
    }
}

fn decode_metric(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> Option<MetricConfig> {
    let mut f = Fields::open(v, path, "a metric", METRIC_KEYS, rep)?;
    let namespace = text(&mut f, "namespace", rep)
        .map(|(s, _)| s)
        .unwrap_or_default();
    let subsystem = text(&mut f, "subsystem", rep)
        .map(|(s, _)| s)
        .unwrap_or_default();
    let name = text(&mut f, "name", rep);
    let help = text(&mut f, "help", rep)
        .map(|(s, _)| s)
        .unwrap_or_default();
    let kind = text(&mut f, "type", rep);
    let span = f.span();
    f.finish(rep, &no_special);

    let name = match name {
        Some((n, _)) if !n.trim().is_empty() => Some(n),
        _ => {
            rep.error(
                span,
                path,
                "a metric needs a `name`",
                Some("add `name: \"requests_total\"`".into()),
            );
            None
        }
    };
    let kind = match kind {
        Some((k, v)) => metric_type(&k, v, &format!("{path}.type"), rep),
        None => {
            rep.error(
                span,
                path,
                "a metric needs a `type`",
                Some(format!("add `type:` with one of: {}", TYPES.join(", "))),
            );
            None
        }
    };
    Some(MetricConfig {
        namespace,
        subsystem,
        name: name?,
        help,
        kind: kind?,
    })
}

/// The metric type named `text`, read from `v` at `path`; an unknown name is
/// reported with the closest known one. ContainerPilot 2's sensors
/// (`config::v2`) share it.
pub(crate) fn metric_type(
    text: &str,
    v: &Spanned<Value>,
    path: &str,
    rep: &mut Reporter<'_>,
) -> Option<MetricType> {
    match text {
        "counter" => Some(MetricType::Counter),
        "gauge" => Some(MetricType::Gauge),
        "histogram" => Some(MetricType::Histogram),
        "summary" => Some(MetricType::Summary),
        other => {
            let hint = match suggest::closest(other, TYPES) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("write one of: {}", TYPES.join(", ")),
            };
            rep.error(
                v.span(),
                path,
                format!("unknown metric type {other:?}"),
                Some(hint),
            );
            None
        }
    }
}

fn text<'a>(
    f: &mut Fields<'a>,
    key: &str,
    rep: &mut Reporter<'_>,
) -> Option<(String, &'a Spanned<Value>)> {
    let v = f.get(key, rep)?;
    values::string(v, &f.path_of(key), rep).map(|s| (s, v))
}

fn telemetry_key_hint(key: &str) -> Option<String> {
    (key == "sensors").then(|| {
        "`sensors` are ContainerPilot 2 syntax: in ContainerPilot 3 declare the metric under \
         `metrics` and run the sensor as a job with `when: {interval: \"...\"}` that updates \
         it through the control socket"
            .to_string()
    })
}
