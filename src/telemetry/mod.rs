//! Prometheus telemetry (the `telemetry` section).
//!
//! - [`metrics`]: the metrics a config declares, updated through the control
//!   socket; [`summary`]: the summary type the Prometheus crates lack;
//! - [`builtin`]: autopilot's own metrics (events, control requests, health
//!   checks, restarts, watch instances);
//! - [`server`]: the HTTP endpoint (`/metrics`, `/status`) on
//!   `telemetry.port`, on every interface;
//! - [`probes`]: the kubelet's `/live` and `/ready`, on the same endpoint;
//! - [`job`]: the synthetic `containerpilot` job that advertises the
//!   endpoint in Consul, added by [`prepare`] to the config autopilot runs.
//!
//! One [`Telemetry`] value lives for the whole run and owns its own
//! `prometheus::Registry` (no process-global registry). The control socket
//! holds a clone to record metric updates and control requests, and to
//! apply a reloaded config.

pub mod builtin;
pub mod job;
pub mod metrics;
pub mod probes;
pub mod server;
pub mod summary;

pub use job::{prepare, telemetry_job};

use crate::config::model::Config;
use crate::jobs::Common;
use crate::jobs::status::CheckObserver;
use crate::supervisor::Requests;
use builtin::Counted;
use metrics::UserMetrics;
use std::net::{Ipv4Addr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// The telemetry state of a run. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    counted: Counted,
    user: Mutex<UserMetrics>,
    /// Set by [`Telemetry::start`].
    running: OnceLock<Running>,
    /// Bound before the runtime starts, so a taken port stops autopilot at
    /// once; served from [`Telemetry::start`] on.
    bound: Mutex<Option<StdTcpListener>>,
    serving: Mutex<Option<Serving>>,
    counting_events: AtomicBool,
}

/// What telemetry reads from a running supervisor.
struct Running {
    /// The board, the bus, the environment and the running config (for `/status`).
    common: Common,
    /// For `/live`'s round trip through the supervisor's loop.
    requests: Requests,
}

/// The endpoint being served.
struct Serving {
    port: u16,
    task: AbortHandle,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a reload does to the endpoint, decided (and the new port bound)
/// before anything is applied, so a taken port fails the reload cleanly.
pub enum ListenerChange {
    Keep,
    Stop,
    Start(u16, TcpListener),
}

impl Telemetry {
    /// Prepares telemetry for `config` (already through [`prepare`]); binds
    /// the telemetry port when there is one.
    pub fn new(config: &Config) -> Result<Telemetry, String> {
        let mut user = UserMetrics::default();
        let mut bound = None;
        if let Some(t) = &config.telemetry {
            user.configure(&t.metrics);
            let listener = StdTcpListener::bind((Ipv4Addr::UNSPECIFIED, t.port))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| bind_error(t.port, &e))?;
            bound = Some(listener);
        }
        Ok(Telemetry {
            inner: Arc::new(Inner {
                counted: Counted::new(),
                user: Mutex::new(user),
                running: OnceLock::new(),
                bound: Mutex::new(bound),
                serving: Mutex::new(None),
                counting_events: AtomicBool::new(false),
            }),
        })
    }

    /// Starts serving and counting, for the run `common` belongs to.
    pub fn start(&self, common: &Common, requests: Requests) {
        let config = common.config.borrow().clone();
        let counted = self.inner.counted.clone();
        let observer: CheckObserver = Arc::new(move |job: &str, passed: bool, took| {
            counted.health_checked(job, passed, took)
        });
        common.board.observe_checks(observer);
        let _ = self.inner.running.set(Running {
            common: common.clone(),
            requests,
        });
        let bound = self.inner.bound.lock().unwrap().take();
        if let (Some(t), Some(listener)) = (&config.telemetry, bound) {
            match TcpListener::from_std(listener) {
                Ok(listener) => self.serve(t.port, listener),
                Err(e) => log::error!("telemetry: {}", bind_error(t.port, &e)),
            }
        }
    }

    /// Serves `listener`, replacing any endpoint served before.
    fn serve(&self, port: u16, listener: TcpListener) {
        self.count_events();
        let endpoint = Arc::new(server::Endpoint {
            telemetry: self.clone(),
        });
        let task = tokio::spawn(crate::http::serve(listener, endpoint, "telemetry", true));
        log::info!("telemetry: serving /metrics, /status, /live and /ready on port {port}");
        *self.inner.serving.lock().unwrap() = Some(Serving {
            port,
            task: task.abort_handle(),
        });
    }

    /// Starts counting events, once; from then on every event is counted.
    fn count_events(&self) {
        let Some(running) = self.inner.running.get() else {
            return;
        };
        if !self.inner.counting_events.swap(true, Ordering::Relaxed) {
            tokio::spawn(
                self.inner
                    .counted
                    .clone()
                    .count_events(running.common.bus.clone()),
            );
        }
    }

    /// Counts one control-socket request.
    pub fn control_request(&self, path: &str, code: u16) {
        self.inner.counted.control_request(path, code);
    }

    /// Updates declared metrics (see [`UserMetrics::record`]).
    pub fn record(&self, updates: &[(String, f64)]) -> Result<(), String> {
        self.inner.user.lock().unwrap().record(updates)
    }

    /// Decides what a reload to `new` does to the endpoint, binding a new
    /// port if needed.
    pub async fn listener_change(&self, new: &Config) -> Result<ListenerChange, String> {
        let current = self.inner.serving.lock().unwrap().as_ref().map(|s| s.port);
        Ok(match (&new.telemetry, current) {
            (None, None) => ListenerChange::Keep,
            (None, Some(_)) => ListenerChange::Stop,
            (Some(t), Some(port)) if t.port == port => ListenerChange::Keep,
            (Some(t), _) => {
                let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, t.port))
                    .await
                    .map_err(|e| bind_error(t.port, &e))?;
                ListenerChange::Start(t.port, listener)
            }
        })
    }

    /// Applies a reloaded config: declared metrics (unchanged ones keep
    /// their values) and the endpoint's port. (`/status` reads the running
    /// config the supervisor publishes.)
    pub fn apply(&self, new: &Config, change: ListenerChange) {
        let declared = new
            .telemetry
            .as_ref()
            .map(|t| t.metrics.as_slice())
            .unwrap_or_default();
        self.inner.user.lock().unwrap().configure(declared);
        match change {
            ListenerChange::Keep => {}
            ListenerChange::Stop => {
                log::info!("telemetry: no longer configured; stopped serving");
                *self.inner.serving.lock().unwrap() = None;
            }
            ListenerChange::Start(port, listener) => self.serve(port, listener),
        }
    }

    /// The `/metrics` text.
    pub fn scrape(&self) -> Result<String, prometheus::Error> {
        let mut families = self.inner.counted.registry.gather();
        if let Some(running) = self.inner.running.get() {
            families.extend(builtin::observed(&running.common));
        }
        families.extend(self.inner.user.lock().unwrap().families());
        // The text encoder refuses a family without samples (a label set
        // nobody has used yet); leaving it out is what Prometheus expects.
        families.retain(|f| !f.get_metric().is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        prometheus::TextEncoder::new().encode_to_string(&families)
    }

    /// The `/status` answer: advertised jobs and watch names.
    pub fn status(&self) -> server::Status {
        let running = self.inner.running.get();
        let config = running.map(|r| r.common.config.borrow().clone());
        let env = running
            .map(|r| r.common.environ.snapshot())
            .unwrap_or_default();
        let services = config
            .iter()
            .flat_map(|c| c.jobs.iter())
            .filter_map(|job| {
                let service = job.service.as_ref()?;
                let ip_key = format!("CONTAINERPILOT_{}_IP", crate::environ::env_name(&job.name));
                let health = running
                    .and_then(|r| r.common.board.get(&job.name))
                    .map(|s| s.health.as_str());
                Some(server::ServiceStatus {
                    name: job.name.clone(),
                    address: env.get(&ip_key).cloned().unwrap_or_default(),
                    port: service.port,
                    status: health.unwrap_or("unknown").to_string(),
                })
            })
            .collect();
        let watches = config
            .iter()
            .flat_map(|c| c.watches.iter())
            .map(|w| w.name.clone())
            .collect();
        server::Status {
            version: env!("CARGO_PKG_VERSION"),
            services,
            watches,
        }
    }
}

fn bind_error(port: u16, e: &std::io::Error) -> String {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process uses it: free it or set telemetry.port to another port"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: choose a higher telemetry.port"
        }
        _ => "",
    };
    format!("cannot listen on telemetry port {port}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse_str(text, "test.json5").unwrap().config
    }

    #[test]
    fn prepare_adds_the_telemetry_job_only_with_telemetry() {
        let plain = prepare(config("{jobs: [{name: 'app', exec: 'true'}]}")).unwrap();
        assert_eq!(plain.jobs.len(), 1);
        let with = prepare(config(
            "{jobs: [{name: 'app', exec: 'true'}], telemetry: {port: 9191, metrics: [{name: 'hits', type: 'counter', help: 'h'}]}}",
        ))
        .unwrap();
        assert_eq!(
            with.jobs
                .iter()
                .map(|j| j.name.as_str())
                .collect::<Vec<_>>(),
            ["app", "containerpilot"]
        );
    }

    #[test]
    fn prepare_explains_clashes() {
        let e = prepare(config(
            "{jobs: [{name: 'containerpilot', exec: 'true'}], telemetry: {port: 9191}}",
        ))
        .unwrap_err();
        assert!(e.contains("reserved for the telemetry service"), "{e}");
        let e = prepare(config(
            "{telemetry: {port: 9191, metrics: [{name: 'containerpilot_events', type: 'counter', help: 'h'}]}}",
        ))
        .unwrap_err();
        assert!(e.contains("autopilot's own"), "{e}");
    }
}
