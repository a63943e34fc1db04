//! autopilot's own metrics.
//!
//! Two kinds, both without timers:
//! - counted as things happen: events (a task subscribed to the bus), control
//!   requests, health-check results and durations (the status board's check
//!   observer);
//! - read at scrape time from what already exists: job restarts and watch
//!   instances (the status board), events lost by lagging subscribers (the
//!   bus), orphans reaped (the reaper).
//!
//! The ContainerPilot names (`containerpilot_events`,
//! `containerpilot_control_http_requests`, `containerpilot_watch_instances`)
//! are kept so existing dashboards work; newer metrics follow today's naming
//! (`_total` for counters, units in the name).

use crate::events::Bus;
use crate::jobs::Common;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub const EVENTS: &str = "containerpilot_events";
pub const CONTROL_REQUESTS: &str = "containerpilot_control_http_requests";
pub const WATCH_INSTANCES: &str = "containerpilot_watch_instances";
pub const HEALTH_CHECKS: &str = "containerpilot_health_checks_total";
pub const HEALTH_CHECK_SECONDS: &str = "containerpilot_health_check_duration_seconds";
pub const JOB_RESTARTS: &str = "containerpilot_job_restarts_total";
pub const EVENTS_LOST: &str = "containerpilot_events_lost_total";
pub const ORPHANS_REAPED: &str = "containerpilot_orphans_reaped_total";

/// Names a declared metric may not take (with their `_sum`/`_count`/...
/// series these are the names autopilot itself writes).
pub const RESERVED: [&str; 8] = [
    EVENTS,
    CONTROL_REQUESTS,
    WATCH_INSTANCES,
    HEALTH_CHECKS,
    HEALTH_CHECK_SECONDS,
    JOB_RESTARTS,
    EVENTS_LOST,
    ORPHANS_REAPED,
];

/// The metrics counted as things happen. Cheap to clone.
#[derive(Clone)]
pub struct Counted {
    pub registry: Registry,
    events: IntCounterVec,
    control_requests: IntCounterVec,
    health_checks: IntCounterVec,
    health_check_seconds: HistogramVec,
}

impl Counted {
    pub fn new() -> Counted {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("distinct static names");
            c
        };
        let events = counter(
            EVENTS,
            "count of autopilot events, by code and source",
            &["code", "source"],
        );
        let control_requests = counter(
            CONTROL_REQUESTS,
            "count of requests to the control socket, by path and HTTP code",
            &["code", "path"],
        );
        let health_checks = counter(
            HEALTH_CHECKS,
            "health checks run, by job and result (passed or failed)",
            &["job", "result"],
        );
        let health_check_seconds = HistogramVec::new(
            HistogramOpts::new(HEALTH_CHECK_SECONDS, "how long health checks took, by job"),
            &["job"],
        )
        .expect("static metric definition");
        registry
            .register(Box::new(health_check_seconds.clone()))
            .expect("distinct static names");
        Counted {
            registry,
            events,
            control_requests,
            health_checks,
            health_check_seconds,
        }
    }

    pub fn control_request(&self, path: &str, code: u16) {
        self.control_requests
            .with_label_values(&[code.to_string().as_str(), path])
            .inc();
    }

    pub fn health_checked(&self, job: &str, passed: bool, took: Duration) {
        let result = if passed { "passed" } else { "failed" };
        self.health_checks.with_label_values(&[job, result]).inc();
        self.health_check_seconds
            .with_label_values(&[job])
            .observe(took.as_secs_f64());
    }

    /// Counts every event on the bus until the bus closes. Subscribes now,
    /// so events published before the returned task first runs (`startup`)
    /// are counted too. The task only wakes when an event is published.
    pub fn count_events(self, bus: Bus) -> impl std::future::Future<Output = ()> + Send {
        let rx = bus.subscribe();
        self.count_from(bus, rx)
    }

    async fn count_from(
        self,
        bus: Bus,
        mut rx: tokio::sync::broadcast::Receiver<crate::events::Event>,
    ) {
        loop {
            match rx.recv().await {
                Ok(event) => self
                    .events
                    .with_label_values(&[event.code.as_str(), &event.source])
                    .inc(),
                Err(RecvError::Lagged(n)) => {
                    bus.record_lost(n);
                    log::warn!(
                        "telemetry: missed {n} events (event bus overrun); event counts are low by {n}"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

impl Default for Counted {
    fn default() -> Self {
        Counted::new()
    }
}

/// The metrics read at scrape time from the supervisor's shared state.
pub fn observed(handle: &Common) -> Vec<MetricFamily> {
    let jobs = handle
        .board
        .all()
        .into_iter()
        .map(|job| counter(&[("job", &job.name)], f64::from(job.restarts)))
        .collect();
    let watches = handle
        .board
        .watches()
        .into_iter()
        .filter_map(|w| {
            let n = w.instances.as_ref()?.len();
            Some(gauge(&[("service", &w.name)], n as f64))
        })
        .collect();
    vec![
        family(
            JOB_RESTARTS,
            "times each job's process was restarted",
            MetricType::COUNTER,
            jobs,
        ),
        family(
            WATCH_INSTANCES,
            "healthy instances each watch sees, by watch name",
            MetricType::GAUGE,
            watches,
        ),
        family(
            EVENTS_LOST,
            "events a lagging subscriber missed (should stay 0)",
            MetricType::COUNTER,
            vec![counter(&[], handle.bus.lost_count() as f64)],
        ),
        family(
            ORPHANS_REAPED,
            "exited processes autopilot reaped that no job had started",
            MetricType::COUNTER,
            vec![counter(&[], handle.reaper.orphans_reaped() as f64)],
        ),
    ]
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn labelled(labels: &[(&str, &str)]) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect();
    let mut m = Metric::default();
    m.set_label(pairs);
    m
}

fn counter(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut m = labelled(labels);
    let mut c = Counter::default();
    c.set_value(value);
    m.set_counter(c);
    m
}

fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut m = labelled(labels);
    let mut g = Gauge::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}
