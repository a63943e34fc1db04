//! The journal: what happened, in order, for people watching
//! (`autopilot events`, `GET /v3/events`).
//!
//! Every event published on the bus is recorded here, with its details when
//! the publisher has some (an exit's code, a watch's added and removed
//! instances), and so is every job state change. The last [`KEEP`] records
//! stay in a ring buffer; each has a sequence number, so a follower asks for
//! "everything after N" and learns when it fell so far behind that records
//! were overwritten. Recording never blocks and never allocates beyond the
//! ring: a follower that stops reading costs nothing.

use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How many records are kept for late readers: a burst of every job
/// stopping at once fits, and memory stays a few tens of KiB.
pub const KEEP: usize = 256;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// Increases by one per record, from 1.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `event` (published on the bus) or `state` (a job's state changed).
    #[serde(rename = "type")]
    pub kind: String,
    /// For events: `source`, `code` and details (`exitCode`, `exit`,
    /// `added`, `removed`); for state changes: `job`, `from`, `to`.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Record {
    /// One line for people: `TIME event app.exitFailed exitCode=3`,
    /// `TIME state app running -> restarting`.
    pub fn text(&self) -> String {
        let field = |k: &str| self.fields.get(k).and_then(Value::as_str).unwrap_or("");
        let mut line = match self.kind.as_str() {
            "state" => format!(
                "{} state {} {} -> {}",
                self.time,
                field("job"),
                field("from"),
                field("to")
            ),
            kind => format!("{} {kind} {}.{}", self.time, field("source"), field("code")),
        };
        for (k, v) in &self.fields {
            if matches!(k.as_str(), "job" | "from" | "to" | "source" | "code") {
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) if items.is_empty() => "-".to_string(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={value}"));
        }
        line
    }
}

/// The fields that name what happened come first, in this order; details
/// follow (alphabetically).
const LEADING: [&str; 5] = ["source", "code", "job", "from", "to"];

impl Serialize for Record {
    /// `seq`, `time`, `type`, then who and what (`source`, `code` or `job`,
    /// `from`, `to`), then the details: a line reads from left to right.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3 + self.fields.len()))?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("type", &self.kind)?;
        for key in LEADING {
            if let Some(value) = self.fields.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in &self.fields {
            if !LEADING.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// What a follower gets: the records after its position, and how many it
/// missed because they were overwritten before it asked.
#[derive(Debug, Default)]
pub struct Page {
    pub missed: u64,
    pub records: Vec<Arc<Record>>,
}

/// The journal. Cheap to share (`Arc`).
pub struct Journal {
    ring: Mutex<VecDeque<Arc<Record>>>,
    /// The latest sequence number; followers wait on it.
    latest: watch::Sender<u64>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            ring: Mutex::new(VecDeque::with_capacity(KEEP)),
            latest: watch::Sender::new(0),
        }
    }
}

impl Journal {
    /// Records a bus event: its source and code, plus `details`.
    pub fn event(&self, source: &str, code: &str, details: Map<String, Value>) {
        let mut fields = Map::new();
        fields.insert("source".into(), source.into());
        fields.insert("code".into(), code.into());
        fields.extend(details);
        self.record("event", fields);
    }

    /// Records a job's state change.
    pub fn state(&self, job: &str, from: &str, to: &str) {
        let mut fields = Map::new();
        fields.insert("job".into(), job.into());
        fields.insert("from".into(), from.into());
        fields.insert("to".into(), to.into());
        self.record("state", fields);
    }

    fn record(&self, kind: &str, fields: Map<String, Value>) {
        let mut ring = self.ring.lock().unwrap();
        let seq = *self.latest.borrow() + 1;
        if ring.len() == KEEP {
            ring.pop_front();
        }
        ring.push_back(Arc::new(Record {
            seq,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            kind: kind.to_string(),
            fields,
        }));
        // Under the ring's lock, so sequence numbers follow ring order.
        self.latest.send_replace(seq);
    }

    /// The sequence number of the last record (0: none yet).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// The records after `after` (0: every record kept).
    pub fn after(&self, after: u64) -> Page {
        let ring = self.ring.lock().unwrap();
        let first = ring.front().map_or(after + 1, |r| r.seq);
        Page {
            missed: first.saturating_sub(after + 1),
            records: ring.iter().filter(|r| r.seq > after).cloned().collect(),
        }
    }

    /// [`Journal::after`], waiting up to `within` for a record to come when
    /// there is none yet (a blocking query: no polling).
    pub async fn wait_after(&self, after: u64, within: Duration) -> Page {
        let mut latest = self.latest.subscribe();
        let _ = tokio::time::timeout(within, latest.wait_for(|seq| *seq > after)).await;
        self.after(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn records_follow_in_order_and_old_ones_are_counted_as_missed() {
        let j = Journal::default();
        for i in 0..KEEP + 3 {
            j.event("app", "changed", details(json!({"n": i})));
        }
        let page = j.after(0);
        assert_eq!(page.records.len(), KEEP);
        assert_eq!(page.missed, 3);
        assert_eq!(page.records[0].seq, 4);
        let tail = j.after(KEEP as u64 + 1);
        assert_eq!(tail.missed, 0);
        assert_eq!(
            tail.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [KEEP as u64 + 2, KEEP as u64 + 3]
        );
    }

    #[test]
    fn text_lines_read_well() {
        let j = Journal::default();
        j.event(
            "app",
            "exitFailed",
            details(json!({"exitCode": 3, "exit": "exited with code 3"})),
        );
        j.state("app", "running", "restarting");
        j.event(
            "watch.db",
            "changed",
            details(json!({"added": ["10.0.0.2:5432"], "removed": []})),
        );
        let lines: Vec<String> = j
            .after(0)
            .records
            .iter()
            .map(|r| r.text().split_once(' ').unwrap().1.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "event app.exitFailed exit=exited with code 3 exitCode=3",
                "state app running -> restarting",
                "event watch.db.changed added=10.0.0.2:5432 removed=-",
            ]
        );
    }

    #[test]
    fn json_has_the_fields_at_the_top_level() {
        let j = Journal::default();
        j.state("app", "waiting", "running");
        j.event("app", "exitFailed", details(json!({"exitCode": 3})));
        let page = j.after(0);
        let line = serde_json::to_string(&*page.records[1]).unwrap();
        assert!(
            line.ends_with(r#","type":"event","source":"app","code":"exitFailed","exitCode":3}"#),
            "{line}"
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, *page.records[1]);
        let v = serde_json::to_value(&*page.records[0]).unwrap();
        assert_eq!(v["type"], "state");
        assert_eq!(v["job"], "app");
        assert_eq!(v["to"], "running");
        assert_eq!(v["seq"], 1);
    }

    #[tokio::test]
    async fn a_follower_waits_for_the_next_record() {
        let j = Arc::new(Journal::default());
        let waiting = {
            let j = j.clone();
            tokio::spawn(async move { j.wait_after(0, Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        j.state("app", "waiting", "running");
        let page = waiting.await.unwrap();
        assert_eq!(page.records.len(), 1);
    }
}
