//! The telemetry HTTP endpoint: `/metrics` in the Prometheus text format,
//! ContainerPilot's `/status` view of services and watches, and the
//! kubelet's probes `/live` and `/ready` ([`super::probes`]).

use super::Telemetry;
use crate::http::{self, Handler, Response};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use std::sync::Arc;

pub(super) struct Endpoint {
    pub telemetry: Telemetry,
}

impl Handler for Endpoint {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response {
        let path = request.uri().path();
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return http::method_not_allowed("GET", path);
        }
        match path {
            "/metrics" => match self.telemetry.scrape() {
                Ok(text) => {
                    http::with_type(StatusCode::OK, prometheus::TEXT_FORMAT, text.into_bytes())
                }
                Err(e) => {
                    log::error!("telemetry: cannot encode the metrics: {e}");
                    http::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot encode the metrics: {e}"),
                    )
                }
            },
            "/status" => http::json(StatusCode::OK, &self.telemetry.status()),
            "/live" => super::probes::live(&self.telemetry).await,
            "/ready" => super::probes::ready(&self.telemetry),
            other => http::error(
                StatusCode::NOT_FOUND,
                format!(
                    "no such path {other}: the telemetry endpoint serves /metrics, /status, \
                     /live and /ready"
                ),
            ),
        }
    }
}

/// ContainerPilot's `/status` answer (field names as it wrote them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    pub version: &'static str,
    pub services: Vec<ServiceStatus>,
    pub watches: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceStatus {
    pub name: String,
    /// The advertised IP, once the registry has worked it out (empty before).
    pub address: String,
    pub port: u16,
    /// The job's health: `healthy`, `unhealthy`, `maintenance` or `unknown`.
    pub status: String,
}
