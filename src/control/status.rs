//! The status view (`GET /v3/status`, `autopilot status`): every job's
//! state (and since when), pid, restarts, health, last exit and service
//! registration, in the config's order, and every watch with the instances
//! it last saw. JSON keys are camelCase, as the config's are.
//!
//! Watches report their instances on the status board
//! ([`crate::jobs::status::StatusBoard::update_watch`]); the configured
//! watches are listed even before (or without) such a report.

use crate::config::model::{Config, WatchTarget};
use crate::jobs::machine::Health;
use crate::jobs::status::{JobStatus, LeaderStatus, StatusBoard, WatchInstance, now_ms};
use crate::logging::human_duration;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub version: String,
    /// autopilot's pid (1 when it is the container's init).
    pub pid: u32,
    /// When this view was taken (ms since the Unix epoch): "since" ages
    /// are measured against it, not against the reader's clock.
    #[serde(default)]
    pub time_ms: u64,
    pub maintenance: bool,
    pub jobs: Vec<JobView>,
    pub watches: Vec<WatchView>,
}

/// A job as the status view shows it (the board's entry, owned strings so
/// the client can read it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub name: String,
    pub state: String,
    /// When `state` began (ms since the Unix epoch).
    #[serde(default)]
    pub since_ms: u64,
    /// `None` for a job with no health check (shown as `-`).
    pub health: Option<String>,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub last_exit_code: Option<i32>,
    pub advertised: bool,
    pub service: Option<String>,
    /// The job's part in its leader election (jobs with `leader` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderStatus>,
}

impl From<JobStatus> for JobView {
    fn from(j: JobStatus) -> JobView {
        JobView {
            name: j.name,
            state: j.state.as_str().to_string(),
            since_ms: j.since_ms,
            health: Some(j.health.as_str().to_string()),
            pid: j.pid,
            restarts: j.restarts,
            last_exit: j.last_exit,
            last_exit_code: j.last_exit_code,
            advertised: j.advertised,
            service: j.service.map(|s| s.as_str().to_string()),
            leader: j.leader,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchView {
    pub name: String,
    /// What it follows: `service web`, `service web tag=x dc=y`, `key k`, `prefix p/`.
    pub target: String,
    /// Healthy instances at the watch's last answer; `None` before the first
    /// answer (or while watches do not report).
    pub instances: Option<Vec<InstanceView>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub id: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
}

impl From<WatchInstance> for InstanceView {
    fn from(i: WatchInstance) -> InstanceView {
        InstanceView {
            id: i.id,
            address: i.address,
            port: i.port,
            tags: i.tags,
        }
    }
}

/// Collects the status of a run from its board and running config.
pub fn collect(board: &StatusBoard, config: &Config) -> Status {
    let reported = board.watches();
    let watches = config
        .watches
        .iter()
        .map(|w| {
            let instances = reported
                .iter()
                .find(|r| r.name == w.name)
                .and_then(|r| r.instances.clone())
                .map(|list| list.into_iter().map(InstanceView::from).collect());
            WatchView {
                name: w.name.clone(),
                target: describe(&w.target),
                instances,
            }
        })
        .collect();
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        time_ms: now_ms(),
        maintenance: board.in_maintenance(),
        jobs: in_config_order(board.all(), config),
        watches,
    }
}

/// The jobs in the order the config lists them (a job a reload removed,
/// still stopping, comes last); `health` only for jobs with a check, or
/// in maintenance.
fn in_config_order(jobs: Vec<JobStatus>, config: &Config) -> Vec<JobView> {
    let position = |name: &str| {
        config
            .jobs
            .iter()
            .position(|j| j.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut views: Vec<(usize, JobView)> = jobs
        .into_iter()
        .map(|j| {
            let index = position(&j.name);
            let checked = config.jobs.get(index).is_some_and(|c| c.health.is_some());
            let shown = checked || j.health == Health::Maintenance;
            let mut view = JobView::from(j);
            if !shown {
                view.health = None;
            }
            (index, view)
        })
        .collect();
    views.sort_by_key(|(index, _)| *index);
    views.into_iter().map(|(_, view)| view).collect()
}

fn describe(target: &WatchTarget) -> String {
    let dc = |dc: &Option<String>| dc.as_ref().map(|d| format!(" dc={d}")).unwrap_or_default();
    match target {
        WatchTarget::Service {
            service,
            tag,
            dc: d,
        } => {
            let tag = tag
                .as_ref()
                .map(|t| format!(" tag={t}"))
                .unwrap_or_default();
            format!("service {service}{tag}{}", dc(d))
        }
        WatchTarget::Key { key, dc: d } => format!("key {key}{}", dc(d)),
        WatchTarget::Prefix { prefix, dc: d } => format!("prefix {prefix}{}", dc(d)),
    }
}

/// The table `autopilot status` prints.
pub fn table(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "autopilot {} (pid {}){}",
        status.version,
        status.pid,
        if status.maintenance {
            ": IN MAINTENANCE"
        } else {
            ""
        }
    );
    let dash = || "-".to_string();
    let mut rows = vec![
        [
            "JOB",
            "STATE",
            "SINCE",
            "HEALTH",
            "PID",
            "RESTARTS",
            "LAST EXIT",
            "SERVICE",
        ]
        .map(str::to_string),
    ];
    for j in &status.jobs {
        let since = match j.since_ms {
            0 => dash(),
            ms => format!(
                "{} ago",
                human_duration(std::time::Duration::from_millis(
                    status.time_ms.saturating_sub(ms)
                ))
            ),
        };
        rows.push([
            j.name.clone(),
            j.state.clone(),
            since,
            j.health.clone().unwrap_or_else(dash),
            j.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            j.restarts.to_string(),
            j.last_exit.clone().unwrap_or_else(dash),
            match (&j.service, &j.leader) {
                (Some(s), Some(l)) => format!("{s}, {}", l.role),
                (s, _) => s.clone().unwrap_or_else(dash),
            },
        ]);
    }
    out.push('\n');
    push_rows(&mut out, &rows);
    if !status.watches.is_empty() {
        let mut rows = vec![["WATCH", "TARGET", "INSTANCES"].map(str::to_string)];
        for w in &status.watches {
            let instances = match &w.instances {
                None => "unknown".to_string(),
                Some(list) if list.is_empty() => "0".to_string(),
                Some(list) => {
                    let addresses: Vec<String> = list
                        .iter()
                        .map(|i| format!("{}:{}", i.address, i.port))
                        .collect();
                    format!("{} ({})", list.len(), addresses.join(", "))
                }
            };
            rows.push([w.name.clone(), w.target.clone(), instances]);
        }
        out.push('\n');
        push_rows(&mut out, &rows);
    }
    out
}

/// Left-aligned columns, two spaces apart, no trailing spaces.
fn push_rows<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_shows_missing_values_as_dashes() {
        let status = Status {
            version: "1.0".into(),
            pid: 1,
            time_ms: 1_000_000,
            maintenance: true,
            jobs: vec![
                JobView {
                    name: "app".into(),
                    state: "running".into(),
                    since_ms: 1_000_000 - 125_000,
                    health: Some("healthy".into()),
                    pid: Some(42),
                    restarts: 2,
                    last_exit: Some("exit code 1".into()),
                    last_exit_code: Some(1),
                    advertised: true,
                    service: Some("passing".into()),
                    leader: None,
                },
                JobView {
                    name: "setup-db".into(),
                    state: "stopped".into(),
                    since_ms: 1_000_000 - 1_500,
                    health: None,
                    pid: None,
                    restarts: 0,
                    last_exit: None,
                    last_exit_code: None,
                    advertised: false,
                    service: None,
                    leader: None,
                },
            ],
            watches: vec![WatchView {
                name: "db".into(),
                target: "service db".into(),
                instances: None,
            }],
        };
        let t = table(&status);
        assert!(
            t.starts_with("autopilot 1.0 (pid 1): IN MAINTENANCE\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "JOB       STATE    SINCE     HEALTH   PID  RESTARTS  LAST EXIT    SERVICE\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "app       running  2m5s ago  healthy  42   2         exit code 1  passing\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("setup-db  stopped  1.5s ago  -        -    0         -            -\n"),
            "{t}"
        );
        assert!(t.contains("db     service db  unknown\n"), "{t}");
    }

    #[test]
    fn json_keys_are_camel_case() {
        let view = JobView {
            name: "app".into(),
            state: "running".into(),
            since_ms: 5,
            health: None,
            pid: None,
            restarts: 0,
            last_exit: Some("exit code 3".into()),
            last_exit_code: Some(3),
            advertised: false,
            service: None,
            leader: None,
        };
        let v = serde_json::to_value(&view).unwrap();
        assert_eq!(v["lastExitCode"], 3);
        assert_eq!(v["sinceMs"], 5);
        assert!(v["health"].is_null());
        assert!(v.get("last_exit_code").is_none());
    }
}
