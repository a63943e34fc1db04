//! Probe endpoints for the kubelet, served on the telemetry port beside
//! `/metrics` (docs/sidecar.md):
//!
//! - `GET /live`: 200 while autopilot itself works, proven by a message
//!   round trip through the supervisor's loop; 503 when the loop does not
//!   answer within [`LIVE_BUDGET`]. Jobs' health never makes autopilot
//!   "dead": restarting the sidecar would not heal the app.
//! - `GET /ready`: 200 when every advertised job (one with `port`) is
//!   running and healthy; else 503, with the jobs that are not in the JSON
//!   body. Shutdown and maintenance make it 503, so the pod leaves the
//!   Service's endpoints as it leaves Consul.
//!
//! Both answer from state the supervisor and the jobs already keep (the
//! status board); nothing runs between requests.

use super::Telemetry;
use super::job::SERVICE_NAME as TELEMETRY_JOB;
use crate::http::{self, Response};
use crate::jobs::machine::{Health, State};
use crate::jobs::status::JobStatus;
use crate::supervisor::Request;
use hyper::StatusCode;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long `/live` waits for the supervisor's answer: the kubelet's
/// default `timeoutSeconds` (1). A loop that cannot answer a message in a
/// second is stuck, not busy.
pub const LIVE_BUDGET: Duration = Duration::from_secs(1);

/// The `/live` answer.
#[derive(Debug, Serialize)]
pub struct Liveness {
    pub live: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `/ready` answer.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    /// The advertised jobs that are not running and healthy, by name.
    pub not_ready: Vec<String>,
    /// Every advertised job the answer considered.
    pub jobs: Vec<JobReadiness>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct JobReadiness {
    pub name: String,
    /// `waiting`, `running`, `restarting`, `stopping` or `stopped`.
    pub state: String,
    /// `unknown` (not checked yet), `healthy`, `unhealthy` or `maintenance`.
    pub health: String,
}

/// `GET /live`.
pub async fn live(telemetry: &Telemetry) -> Response {
    let answer = match telemetry.inner.running.get() {
        None => Err("autopilot is starting".to_string()),
        Some(running) => {
            let (tx, rx) = oneshot::channel();
            let round_trip = async {
                running.requests.send(Request::Ping(tx)).await?;
                rx.await
                    .map_err(|_| "the supervisor has stopped".to_string())
            };
            match tokio::time::timeout(LIVE_BUDGET, round_trip).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the supervisor did not answer within {LIVE_BUDGET:?}"
                )),
            }
        }
    };
    match answer {
        Ok(()) => http::json(
            StatusCode::OK,
            &Liveness {
                live: true,
                error: None,
            },
        ),
        Err(e) => {
            log::warn!("telemetry: /live: {e}");
            http::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &Liveness {
                    live: false,
                    error: Some(e),
                },
            )
        }
    }
}

/// `GET /ready`.
pub fn ready(telemetry: &Telemetry) -> Response {
    let jobs = telemetry
        .inner
        .running
        .get()
        .map(|r| r.common.board.all())
        .unwrap_or_default();
    let readiness = readiness(&jobs);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    http::json(status, &readiness)
}

/// Ready when every advertised job is running and healthy. The telemetry
/// service itself is left out: this answer comes from its listener, and its
/// own check would only delay readiness by its first heartbeat.
pub fn readiness(jobs: &[JobStatus]) -> Readiness {
    let advertised: Vec<&JobStatus> = jobs
        .iter()
        .filter(|j| j.advertised && j.name != TELEMETRY_JOB)
        .collect();
    let not_ready: Vec<String> = advertised
        .iter()
        .filter(|j| !(j.state == State::Running && j.health == Health::Healthy))
        .map(|j| j.name.clone())
        .collect();
    let jobs: Vec<JobReadiness> = advertised
        .into_iter()
        .map(|j| JobReadiness {
            name: j.name.clone(),
            state: j.state.as_str().to_string(),
            health: j.health.as_str().to_string(),
        })
        .collect();
    Readiness {
        ready: not_ready.is_empty(),
        not_ready,
        jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, advertised: bool, state: State, health: Health) -> JobStatus {
        let mut j = JobStatus::new(name, advertised);
        j.state = state;
        j.health = health;
        j
    }

    #[test]
    fn ready_needs_every_advertised_job_running_and_healthy() {
        let jobs = vec![
            job("web", true, State::Running, Health::Healthy),
            job("db", true, State::Running, Health::Unhealthy),
            job("cache", true, State::Stopping, Health::Healthy),
            job("new", true, State::Running, Health::Unknown),
            job("hook", false, State::Waiting, Health::Unknown),
            job(TELEMETRY_JOB, true, State::Running, Health::Unknown),
        ];
        let r = readiness(&jobs);
        assert!(!r.ready);
        assert_eq!(r.not_ready, ["db", "cache", "new"]);
        assert_eq!(
            r.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
            ["web", "db", "cache", "new"]
        );
        let r = readiness(&jobs[..1]);
        assert!(r.ready && r.not_ready.is_empty());
    }

    #[test]
    fn without_advertised_jobs_autopilot_is_ready() {
        let r = readiness(&[job("worker", false, State::Running, Health::Unknown)]);
        assert!(r.ready && r.jobs.is_empty());
        let body = serde_json::to_value(&r).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ready": true, "notReady": [], "jobs": []})
        );
    }
}
