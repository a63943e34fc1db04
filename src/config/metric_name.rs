//! How a declared metric is named, and which names Prometheus accepts.
//!
//! These rules live in config, not telemetry, because the config decoder
//! needs them too (ContainerPilot 2's `telemetry.sensors` are checked and
//! migrated by name), and config sits below telemetry in the layers.
//!
//! A metric's name is `namespace_subsystem_name` with the empty parts left
//! out, as the Prometheus client builds it.

use super::model::MetricConfig;

/// The name a metric is scraped and updated by.
pub fn full_name(m: &MetricConfig) -> String {
    [m.namespace.as_str(), m.subsystem.as_str(), m.name.as_str()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::MetricType;

    fn metric(namespace: &str, subsystem: &str, name: &str) -> MetricConfig {
        MetricConfig {
            namespace: namespace.into(),
            subsystem: subsystem.into(),
            name: name.into(),
            help: String::new(),
            kind: MetricType::Counter,
        }
    }

    #[test]
    fn names_skip_empty_parts() {
        assert_eq!(full_name(&metric("", "", "hits")), "hits");
        assert_eq!(full_name(&metric("app", "", "hits")), "app_hits");
        assert_eq!(full_name(&metric("app", "http", "hits")), "app_http_hits");
    }

    #[test]
    fn valid_names_are_prometheus_names() {
        assert!(is_valid_name("app_hits:total"));
        assert!(is_valid_name("_x"));
        assert!(!is_valid_name("my-hits"));
        assert!(!is_valid_name("1hits"));
        assert!(!is_valid_name(""));
    }
}
