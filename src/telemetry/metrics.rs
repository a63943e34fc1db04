//! The metrics a config declares under `telemetry.metrics`, updated through
//! the control socket (`-putmetric NAME=VALUE`, `POST /v3/metric`).
//!
//! A metric's name is `namespace_subsystem_name` with the empty parts left
//! out, as the Prometheus client builds it. (ContainerPilot matched updates
//! against `namespace + "_" + subsystem + "_" + name` even when the first two
//! were empty, so a metric declared with only `name: "hits"` could never be
//! set as `hits`.)

use super::summary::Summary;
use crate::config::metric_name::{full_name, is_valid_name};
use crate::config::model::{MetricConfig, MetricType};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Histogram, HistogramOpts, Opts};
use std::collections::BTreeMap;

/// Checks the declared metrics: valid, distinct names that do not clash with
/// autopilot's own. Errors name the metric's place in the config.
pub fn validate(metrics: &[MetricConfig], reserved: &[&str]) -> Result<(), String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in metrics.iter().enumerate() {
        let at = format!("telemetry.metrics[{i}]");
        let name = full_name(m);
        if !is_valid_name(&name) {
            return Err(format!(
                "{at}: {name:?} is not a valid Prometheus metric name: use letters, digits, `_` and `:`, \
                 and do not start with a digit (the name is namespace_subsystem_name)"
            ));
        }
        if reserved.contains(&name.as_str()) {
            return Err(format!(
                "{at}: the metric name {name:?} is autopilot's own; choose another name"
            ));
        }
        if let Some(first) = seen.insert(name.clone(), i) {
            return Err(format!(
                "{at}: the metric name {name:?} is already declared by telemetry.metrics[{first}]"
            ));
        }
    }
    Ok(())
}

/// One declared metric and its value so far.
struct Declared {
    config: MetricConfig,
    value: Value,
}

enum Value {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Summary(Summary),
}

impl Value {
    fn new(name: &str, m: &MetricConfig) -> Result<Value, prometheus::Error> {
        // The Prometheus text format allows empty help, the crate does not.
        let help = if m.help.is_empty() {
            format!("{name} (set through the autopilot control socket)")
        } else {
            m.help.clone()
        };
        Ok(match m.kind {
            MetricType::Counter => Value::Counter(Counter::with_opts(Opts::new(name, help))?),
            MetricType::Gauge => Value::Gauge(Gauge::with_opts(Opts::new(name, help))?),
            MetricType::Histogram => {
                Value::Histogram(Histogram::with_opts(HistogramOpts::new(name, help))?)
            }
            MetricType::Summary => Value::Summary(Summary::new(name, &help)),
        })
    }

    fn families(&self) -> Vec<MetricFamily> {
        match self {
            Value::Counter(c) => c.collect(),
            Value::Gauge(g) => g.collect(),
            Value::Histogram(h) => h.collect(),
            Value::Summary(s) => vec![s.family()],
        }
    }
}

/// The declared metrics, by full name.
#[derive(Default)]
pub struct UserMetrics {
    metrics: BTreeMap<String, Declared>,
}

impl UserMetrics {
    /// Takes a new list of declared metrics (at start and on reload). A
    /// metric declared the same way as before keeps its value.
    pub fn configure(&mut self, configs: &[MetricConfig]) {
        let mut next = BTreeMap::new();
        for m in configs {
            let name = full_name(m);
            match self.metrics.remove(&name) {
                Some(old) if old.config == *m => {
                    next.insert(name, old);
                }
                _ => match Value::new(&name, m) {
                    Ok(value) => {
                        next.insert(
                            name,
                            Declared {
                                config: m.clone(),
                                value,
                            },
                        );
                    }
                    // Unreachable after `validate`; never worth a panic.
                    Err(e) => log::error!("telemetry: cannot declare metric {name}: {e}"),
                },
            }
        }
        self.metrics = next;
    }

    pub fn names(&self) -> Vec<&str> {
        self.metrics.keys().map(String::as_str).collect()
    }

    /// Applies updates: a counter is incremented by the value, a gauge set,
    /// a histogram or summary observes it. All updates are checked first, so
    /// a bad one changes nothing.
    pub fn record(&self, updates: &[(String, f64)]) -> Result<(), String> {
        for (name, value) in updates {
            let Some(declared) = self.metrics.get(name) else {
                return Err(self.unknown(name));
            };
            if !value.is_finite() {
                return Err(format!(
                    "metric {name}: the value must be a finite number, got {value}"
                ));
            }
            if matches!(declared.value, Value::Counter(_)) && *value < 0.0 {
                return Err(format!(
                    "metric {name} is a counter, which only goes up: the value is added to it and must not be negative (got {value})"
                ));
            }
        }
        for (name, value) in updates {
            match &self.metrics[name].value {
                Value::Counter(c) => c.inc_by(*value),
                Value::Gauge(g) => g.set(*value),
                Value::Histogram(h) => h.observe(*value),
                Value::Summary(s) => s.observe(*value),
            }
        }
        Ok(())
    }

    fn unknown(&self, name: &str) -> String {
        if self.metrics.is_empty() {
            return format!(
                "unknown metric {name:?}: the config declares no metrics; add it under `telemetry.metrics`"
            );
        }
        let names = self.names();
        let close = crate::config::suggest::closest(name, names.iter().copied())
            .map(|c| format!(" Did you mean {c:?}?"))
            .unwrap_or_default();
        format!(
            "unknown metric {name:?}: declared metrics are {}.{close}",
            names.join(", ")
        )
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        self.metrics
            .values()
            .flat_map(|d| d.value.families())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(namespace: &str, subsystem: &str, name: &str, kind: MetricType) -> MetricConfig {
        MetricConfig {
            namespace: namespace.into(),
            subsystem: subsystem.into(),
            name: name.into(),
            help: String::new(),
            kind,
        }
    }

    #[test]
    fn validation_explains_bad_and_duplicate_names() {
        let ok = [metric("", "", "hits", MetricType::Counter)];
        assert!(validate(&ok, &[]).is_ok());
        let bad = [metric("", "", "my-hits", MetricType::Counter)];
        assert!(
            validate(&bad, &[])
                .unwrap_err()
                .contains("telemetry.metrics[0]")
        );
        let dup = [
            metric("app", "", "hits", MetricType::Counter),
            metric("", "", "app_hits", MetricType::Gauge),
        ];
        assert!(
            validate(&dup, &[])
                .unwrap_err()
                .contains("already declared by telemetry.metrics[0]")
        );
        let reserved = [metric("", "", "containerpilot_events", MetricType::Counter)];
        assert!(
            validate(&reserved, &["containerpilot_events"])
                .unwrap_err()
                .contains("autopilot's own")
        );
    }

    #[test]
    fn updates_follow_the_metric_type() {
        let mut m = UserMetrics::default();
        m.configure(&[
            metric("", "", "hits", MetricType::Counter),
            metric("", "", "temp", MetricType::Gauge),
            metric("", "", "size", MetricType::Histogram),
            metric("", "", "latency", MetricType::Summary),
        ]);
        m.record(&[("hits".into(), 2.0), ("temp".into(), 5.0)])
            .unwrap();
        m.record(&[("hits".into(), 3.0), ("temp".into(), -1.5)])
            .unwrap();
        m.record(&[("size".into(), 0.3), ("latency".into(), 7.0)])
            .unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&m.families())
            .unwrap();
        assert!(text.contains("hits 5\n"), "{text}");
        assert!(text.contains("temp -1.5\n"), "{text}");
        assert!(text.contains("size_count 1\n"), "{text}");
        assert!(text.contains("latency{quantile=\"0.5\"} 7\n"), "{text}");
    }

    #[test]
    fn a_bad_update_changes_nothing() {
        let mut m = UserMetrics::default();
        m.configure(&[metric("", "", "hits", MetricType::Counter)]);
        let e = m
            .record(&[("hits".into(), 1.0), ("hist".into(), 1.0)])
            .unwrap_err();
        assert!(
            e.contains("unknown metric \"hist\"") && e.contains("Did you mean \"hits\"?"),
            "{e}"
        );
        assert!(
            m.record(&[("hits".into(), -1.0)])
                .unwrap_err()
                .contains("only goes up")
        );
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&m.families())
            .unwrap();
        assert!(text.contains("hits 0\n"), "{text}");
    }

    #[test]
    fn reconfiguring_keeps_unchanged_values() {
        let mut m = UserMetrics::default();
        let hits = metric("", "", "hits", MetricType::Counter);
        m.configure(std::slice::from_ref(&hits));
        m.record(&[("hits".into(), 4.0)]).unwrap();
        m.configure(&[hits, metric("", "", "temp", MetricType::Gauge)]);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&m.families())
            .unwrap();
        assert!(
            text.contains("hits 4\n") && text.contains("temp 0\n"),
            "{text}"
        );
        m.configure(&[]);
        assert!(m.names().is_empty());
    }
}
