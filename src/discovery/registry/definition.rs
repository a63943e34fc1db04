//! What one job registers in Consul, and the JSON the agent is sent for it.

use crate::config::model::JobConfig;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// What one job registers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// `<name>-<hostname>`.
    pub id: String,
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// The TTL check's TTL; `None` for a job without a health check (it is
    /// registered without a check, so Consul counts it as passing).
    pub ttl: Option<Duration>,
    pub initial_status: Option<String>,
    pub enable_tag_override: bool,
    pub deregister_critical_after: Option<String>,
}

impl ServiceDef {
    /// The definition for `job`, advertised at `address`; `None` when the
    /// job has no `port`.
    pub fn for_job(job: &JobConfig, hostname: &str, address: IpAddr) -> Option<ServiceDef> {
        let service = job.service.as_ref()?;
        Some(ServiceDef {
            id: format!("{}-{}", job.name, hostname),
            name: job.name.clone(),
            address,
            port: service.port,
            tags: service.tags.clone(),
            meta: service.meta.clone(),
            ttl: job.health.as_ref().map(|h| h.ttl),
            initial_status: service.initial_status.clone(),
            enable_tag_override: service.enable_tag_override,
            deregister_critical_after: service.deregister_critical_service_after.clone(),
        })
    }

    /// The ID of the service's TTL check (a leader's session is tied to it).
    pub fn check_id(&self) -> String {
        format!("service:{}", self.id)
    }

    /// The body of `PUT /v1/agent/service/register`, with the TTL check in
    /// `status` (or the initial status, or Consul's default: critical).
    pub(super) fn registration(&self, status: Option<Status>) -> serde_json::Value {
        let mut body = json!({
            "ID": self.id,
            "Name": self.name,
            "Tags": self.tags,
            "Address": self.address.to_string(),
            "Port": self.port,
            "EnableTagOverride": self.enable_tag_override,
        });
        if !self.meta.is_empty() {
            body["Meta"] = json!(self.meta);
        }
        if let Some(ttl) = self.ttl {
            let mut check = json!({
                "TTL": go_duration(ttl),
                "Notes": format!("TTL for {} set by autopilot", self.name),
            });
            match (status, &self.initial_status) {
                (Some(s), _) => check["Status"] = json!(s.as_str()),
                (None, Some(initial)) => check["Status"] = json!(initial),
                (None, None) => {}
            }
            if let Some(after) = &self.deregister_critical_after {
                check["DeregisterCriticalServiceAfter"] = json!(after);
            }
            body["Check"] = check;
        }
        body
    }
}

/// A duration as Consul reads it (`"10s"`, `"1500ms"`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The hostname in service IDs: `$HOSTNAME` if set (Docker sets it to the
/// container's hostname; tests set it to keep two instances apart), else
/// the kernel's hostname, as ContainerPilot's `os.Hostname()`.
pub fn hostname(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("HOSTNAME")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// A TTL check status we set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passing,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ServiceDef {
        ServiceDef {
            id: "web-host1".into(),
            name: "web".into(),
            address: "10.0.0.5".parse().unwrap(),
            port: 8080,
            tags: vec!["a".into(), "b".into()],
            meta: BTreeMap::from([("version".to_string(), "1.2".to_string())]),
            ttl: Some(Duration::from_secs(10)),
            initial_status: Some("warning".into()),
            enable_tag_override: true,
            deregister_critical_after: Some("10m".into()),
        }
    }

    #[test]
    fn the_registration_carries_every_field() {
        let body = def().registration(None);
        assert_eq!(body["ID"], "web-host1");
        assert_eq!(body["Name"], "web");
        assert_eq!(body["Address"], "10.0.0.5");
        assert_eq!(body["Port"], 8080);
        assert_eq!(body["Tags"], json!(["a", "b"]));
        assert_eq!(body["Meta"]["version"], "1.2");
        assert_eq!(body["EnableTagOverride"], true);
        assert_eq!(body["Check"]["TTL"], "10s");
        assert_eq!(body["Check"]["Status"], "warning");
        assert_eq!(body["Check"]["DeregisterCriticalServiceAfter"], "10m");
        // A known health result wins over the initial status.
        assert_eq!(
            def().registration(Some(Status::Passing))["Check"]["Status"],
            "passing"
        );
    }

    #[test]
    fn without_initial_status_consul_decides_and_without_health_there_is_no_check() {
        let mut d = def();
        d.initial_status = None;
        assert!(d.registration(None)["Check"].get("Status").is_none());
        d.ttl = None;
        d.meta.clear();
        let body = d.registration(None);
        assert!(body.get("Check").is_none());
        assert!(body.get("Meta").is_none());
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn hostname_prefers_the_environment() {
        assert_eq!(hostname(&|_| Some("box-1".into())), "box-1");
        assert!(!hostname(&|_| None).is_empty());
        assert!(!hostname(&|_| Some("  ".into())).is_empty());
    }
}
