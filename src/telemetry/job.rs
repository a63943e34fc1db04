//! The telemetry endpoint as a Consul service.
//!
//! ContainerPilot registered its metrics endpoint as the service
//! `containerpilot` with a TTL check it refreshed itself. Here that is an
//! ordinary advertised job without a process: the service registry registers
//! it like any job, and its health check (a TCP connect to the telemetry
//! listener) keeps the TTL fresh and fails it if the listener goes away.

use super::metrics;
use crate::config::model::{
    Config, HealthCheck, HealthConfig, JobConfig, ServiceConfig, TelemetryConfig,
};
use std::time::Duration;

/// The service name ContainerPilot used for its telemetry endpoint.
pub const SERVICE_NAME: &str = "containerpilot";
/// ContainerPilot's heartbeat for the telemetry service.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// ContainerPilot's TTL for the telemetry service.
const TTL: Duration = Duration::from_secs(15);

/// The synthetic job that advertises the telemetry endpoint.
pub fn telemetry_job(telemetry: &TelemetryConfig) -> JobConfig {
    JobConfig {
        health: Some(HealthConfig {
            check: HealthCheck::Tcp {
                // The listener is on every interface, so loopback reaches it.
                address: format!("127.0.0.1:{}", telemetry.port),
            },
            interval: HEARTBEAT,
            ttl: TTL,
            timeout: HEARTBEAT,
            logging_raw: false,
        }),
        service: Some(ServiceConfig {
            port: telemetry.port,
            tags: telemetry.tags.clone(),
            interfaces: telemetry.interfaces.clone(),
            ..ServiceConfig::default()
        }),
        ..JobConfig::named(SERVICE_NAME)
    }
}

/// The config autopilot runs: the file's, plus the telemetry job when
/// `telemetry` is configured. Also checks what the config decoder cannot
/// know: metric names against autopilot's own and the reserved job name.
/// Used at start and on every reload.
pub fn prepare(mut config: Config) -> Result<Config, String> {
    let Some(telemetry) = &config.telemetry else {
        return Ok(config);
    };
    metrics::validate(&telemetry.metrics, &super::builtin::RESERVED)?;
    if let Some(job) = config.jobs.iter().find(|j| j.name == SERVICE_NAME) {
        return Err(format!(
            "job `{SERVICE_NAME}` (line {}): this name is reserved for the telemetry service when \
             `telemetry` is configured; rename the job",
            job.line
        ));
    }
    let job = telemetry_job(telemetry);
    config.jobs.push(job);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry() -> TelemetryConfig {
        TelemetryConfig {
            port: 9191,
            interfaces: vec!["eth0".into()],
            tags: vec!["metrics".into()],
            metrics: vec![],
        }
    }

    #[test]
    fn the_job_advertises_the_port_and_checks_the_listener() {
        let job = telemetry_job(&telemetry());
        assert_eq!(job.name, "containerpilot");
        assert!(job.exec.is_none());
        let service = job.service.unwrap();
        assert_eq!(
            (service.port, service.tags, service.interfaces),
            (9191, vec!["metrics".to_string()], vec!["eth0".to_string()])
        );
        let health = job.health.unwrap();
        assert_eq!(
            health.check,
            HealthCheck::Tcp {
                address: "127.0.0.1:9191".into()
            }
        );
        assert_eq!((health.interval, health.ttl), (HEARTBEAT, TTL));
    }
}
