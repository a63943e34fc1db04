//! Watches: Consul data followed with blocking queries, turned into events.
//!
//! Each watch is one task with its own state (never shared by service name,
//! so two watches of one service with different tags or datacenters stay
//! apart). The task keeps one blocking query open: Consul answers as soon as
//! the data changes, or after [`WAIT`] with no change. So a change arrives in
//! milliseconds and an idle watch costs one request per [`WAIT`].
//!
//! The watch's `interval` is the minimum spacing between two publications,
//! not a poll period: changes that come faster are folded into the next
//! publication. A publication first updates the environment and the watch's
//! file (see [`super::payload`]), then publishes `changed` (and, for a
//! service, `healthy`/`unhealthy` when that flips), so a job started by the
//! event sees the new data. The first state observed is published once at
//! startup, so a hook can act on an upstream that was already up or gone.
//!
//! Errors never look like a change: the last known state stays, and the
//! query is retried with backoff, no longer apart than the watch's
//! `interval` (clamped to [`RETRY_CAP_MIN`, `RETRY_MAX`]).
//!
//! Queries are stale reads (`?stale`): any server answers from its own copy,
//! as Consul's performance guide advises for read-heavy loads, instead of
//! every follower forwarding every watch to the leader. A follower is
//! normally within milliseconds of the leader; an answer from a server that
//! knows no leader, or last heard from it more than [`MAX_STALENESS`] ago,
//! is not used: the watch asks the leader at once instead (and keeps its
//! last known state if there is none).
//!
//! An agent that restarted (a dev agent, or a cluster restored from a
//! snapshot) knows a lower index than the one we last saw, and would hold a
//! query carrying the old index for the whole [`WAIT`] while reporting
//! nothing. So, as Consul's blocking-query guide says, the index goes back
//! to 0 (an immediate answer) when an answer's index went backwards, after
//! any failed query, after an early answer without a change (what a
//! stopping agent sends for every query it holds) and after any pause
//! between two queries (an agent that restarts then is not seen at all: the
//! idle connection is quietly replaced by one to the new agent). And when
//! any caller sees the agent answer again after an outage, or the cluster
//! knows a leader again after it had none
//! ([`ConsulClient::agent_changes`]), the watch drops its open query (or
//! its retry's wait) and asks again from index 0 at once.

use super::backoff::Backoff;
use super::client::{Blocking, ConsulClient, Freshness, Reply, key_path, next_index, segment};
use super::payload::{self, Instance, KvEntry, RuntimeDir};
use crate::config::duration;
use crate::config::model::{WatchConfig, WatchTarget};
use crate::environ::Environ;
use crate::events::{Bus, Event, EventCode};
use crate::jobs::status::{StatusBoard, WatchInstance, WatchStatus};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long one blocking query may wait for a change. Consul caps `wait` at
/// 10 minutes; a minute keeps dead connections from lingering.
pub const WAIT: Duration = Duration::from_secs(60);
/// Retry delays after a failed query.
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);
/// The retry delay is capped by the watch's `interval`, but never below
/// this: a watch polling a dead agent ten times a second helps nobody.
const RETRY_CAP_MIN: Duration = Duration::from_millis(500);
/// Bounds on the spacing between two blocking queries' starts (the watch's
/// `interval`, clamped): a rate limit for a flapping service, as Consul's
/// blocking-query guide asks. Folding is harmless: nothing can be published
/// before `interval` has passed anyway.
const MIN_QUERY_SPACING: Duration = Duration::from_millis(10);
const MAX_QUERY_SPACING: Duration = Duration::from_secs(1);
/// A stale answer from a server that last heard from the leader longer ago
/// than this is not used. Consul's consistency guide puts a healthy
/// follower within about 50 ms of the leader; seconds mean the server is
/// cut off or overloaded, and raft elects a new leader within a few.
const MAX_STALENESS: Duration = Duration::from_secs(5);

/// Which servers may answer a watch's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    /// Any server, from its own copy (`?stale`).
    Stale,
    /// The leader (Consul's default mode), after a stale answer that
    /// could not be trusted.
    Leader,
}

/// Whether a stale answer may be used: its server knew a leader and heard
/// from it recently.
fn trusted(fresh: &Freshness) -> bool {
    fresh.known_leader != Some(false) && fresh.last_contact.is_none_or(|c| c <= MAX_STALENESS)
}

/// What a watch saw.
#[derive(Debug, Clone, PartialEq)]
enum Snapshot {
    Service(Vec<Instance>),
    Key(Option<KvEntry>),
    Prefix(Vec<KvEntry>),
}

impl Snapshot {
    /// Whether `self` and `other` are the same for the watch's events.
    fn same(&self, other: &Snapshot) -> bool {
        match (self, other) {
            (Snapshot::Service(a), Snapshot::Service(b)) => payload::same_instances(a, b),
            (Snapshot::Key(a), Snapshot::Key(b)) => {
                a.as_ref().map(|e| &e.value) == b.as_ref().map(|e| &e.value)
            }
            (Snapshot::Prefix(a), Snapshot::Prefix(b)) => a == b,
            _ => false,
        }
    }

    fn healthy(&self) -> Option<bool> {
        match self {
            Snapshot::Service(list) => Some(!list.is_empty()),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Snapshot::Service(list) if list.is_empty() => "no passing instances".into(),
            Snapshot::Service(list) => {
                let shown: Vec<String> = list.iter().take(5).map(Instance::host_port).collect();
                let more = if list.len() > 5 { ", ..." } else { "" };
                format!("{} passing ({}{more})", list.len(), shown.join(", "))
            }
            Snapshot::Key(None) => "no such key".into(),
            Snapshot::Key(Some(e)) => format!("{} bytes", e.value.as_ref().map_or(0, Vec::len)),
            Snapshot::Prefix(list) => format!("{} keys", list.len()),
        }
    }
}

type Query =
    Pin<Box<dyn Future<Output = Result<(Snapshot, Option<u64>, Freshness), String>> + Send>>;

/// Everything a watch task needs.
pub struct Watch {
    config: WatchConfig,
    client: ConsulClient,
    bus: Bus,
    environ: Environ,
    /// Where the status view and telemetry read the latest instances.
    board: StatusBoard,
    /// Keeps the directory alive while the watch runs.
    dir: Arc<RuntimeDir>,
    file: PathBuf,
    /// What changed since the last event (service watches).
    changes_file: PathBuf,
    env_prefix: String,
    source: String,
}

impl Watch {
    pub fn new(
        config: WatchConfig,
        client: ConsulClient,
        bus: Bus,
        environ: Environ,
        board: StatusBoard,
        dir: Arc<RuntimeDir>,
    ) -> Watch {
        let extension = match config.target {
            WatchTarget::Key { .. } => "value",
            _ => "json",
        };
        Watch {
            file: dir.file_for(&config.name, extension),
            changes_file: dir.file_for(&config.name, "changes.json"),
            env_prefix: payload::env_prefix(&config.name),
            source: config.source(),
            config,
            client,
            bus,
            environ,
            board,
            dir,
        }
    }

    /// Runs until autopilot exits.
    pub async fn run(self) {
        let mut index = 0u64;
        let retry_cap = self.config.interval.clamp(RETRY_CAP_MIN, RETRY_MAX);
        let mut backoff = Backoff::new(RETRY_INITIAL, retry_cap);
        let mut latest: Option<Snapshot> = None;
        let mut published: Option<Snapshot> = None;
        let mut next_publish = Instant::now();
        let mut failing = false;
        let mut distrusted = false;
        let mut mode = Consistency::Stale;
        let mut changes = self.client.agent_changes();
        changes.borrow_and_update();
        let spacing = self
            .config
            .interval
            .clamp(MIN_QUERY_SPACING, MAX_QUERY_SPACING);
        let mut started = Instant::now();
        let mut query = self.query(Blocking { index, wait: WAIT }, mode, Duration::ZERO);
        log::debug!(
            "{}: watching {} in Consul",
            self.source,
            self.describe_target()
        );
        loop {
            let pending = match (&latest, &published) {
                (Some(l), Some(p)) => !l.same(p),
                (Some(_), None) => true,
                _ => false,
            };
            tokio::select! {
                // An answer first: one that arrives with an agent change
                // already reflects it.
                biased;
                result = &mut query => {
                    changes.borrow_and_update();
                    let sent = index;
                    let asked = mode;
                    mode = Consistency::Stale;
                    let delay = match result {
                        Ok((_, _, fresh)) if asked == Consistency::Stale && !trusted(&fresh) => {
                            if !distrusted {
                                distrusted = true;
                                log::warn!("{}: a Consul server answered from a copy that may be stale ({fresh:?}); asking the leader", self.source);
                            }
                            index = 0;
                            mode = Consistency::Leader;
                            Duration::ZERO
                        }
                        Ok((snapshot, got, _)) => {
                            if failing {
                                failing = false;
                                log::info!("{}: Consul answers again", self.source);
                            }
                            if distrusted && asked == Consistency::Stale {
                                distrusted = false;
                                log::info!("{}: Consul servers answer from fresh copies again", self.source);
                            }
                            index = next_index(sent, got);
                            let elapsed = started.elapsed();
                            latest = Some(snapshot);
                            // An answer without a change long before `wait` ran out
                            // is not how blocking queries behave: slow down. It is
                            // how an agent that is stopping answers every query it
                            // holds; the agent that replaces it knows lower indexes
                            // and would hold ours for the whole wait: start over.
                            if got.is_none() || (sent != 0 && got == Some(sent) && elapsed < WAIT / 2) {
                                log::debug!("{}: early answer without a change (index {got:?}); asking again from the start", self.source);
                                index = 0;
                                backoff.next_delay()
                            } else {
                                backoff.reset();
                                match sent {
                                    // A read from index 0 is followed at once by
                                    // the blocking query it gave the index for.
                                    0 => Duration::ZERO,
                                    _ => spacing.saturating_sub(elapsed),
                                }
                            }
                        }
                        Err(e) => {
                            // The agent may come back restarted, with a lower index.
                            index = 0;
                            if !failing {
                                failing = true;
                                log::warn!("{}: cannot read {} from Consul ({e}); keeping the last known state and retrying", self.source, self.describe_target());
                            }
                            backoff.next_delay()
                        }
                    };
                    if !delay.is_zero() {
                        // During a pause the agent may restart unseen (its idle
                        // connection is just replaced), and the new one would hold
                        // our index for the whole wait: after a pause, read from
                        // index 0 (an immediate answer), then block.
                        index = 0;
                    }
                    started = Instant::now() + delay;
                    query = self.query(Blocking { index, wait: WAIT }, mode, delay);
                }
                Ok(()) = changes.changed() => {
                    // The open query may wait on an index the agent no longer
                    // knows, and a retry need not wait out its backoff.
                    log::debug!("{}: the agent or its cluster changed; asking again from the start", self.source);
                    index = 0;
                    started = Instant::now();
                    query = self.query(Blocking { index, wait: WAIT }, mode, Duration::ZERO);
                }
                _ = tokio::time::sleep_until(next_publish), if pending => {
                    let Some(now) = latest.clone() else { continue };
                    self.publish(published.as_ref(), &now).await;
                    published = Some(now);
                    next_publish = duration::later(Instant::now(), self.config.interval);
                }
            }
        }
    }

    fn describe_target(&self) -> String {
        match &self.config.target {
            WatchTarget::Service { service, tag, dc } => {
                let mut s = format!("service `{service}`");
                if let Some(tag) = tag {
                    s.push_str(&format!(" tagged `{tag}`"));
                }
                if let Some(dc) = dc {
                    s.push_str(&format!(" in datacenter `{dc}`"));
                }
                s
            }
            WatchTarget::Key { key, .. } => format!("key `{key}`"),
            WatchTarget::Prefix { prefix, .. } => format!("keys under `{prefix}`"),
        }
    }

    /// One blocking query, started after `delay`.
    fn query(&self, blocking: Blocking, mode: Consistency, delay: Duration) -> Query {
        let client = self.client.clone();
        let target = self.config.target.clone();
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let (path, mut params) = request(&target);
            if mode == Consistency::Stale {
                params.push(("stale", String::new()));
            }
            let (reply, fresh) = client
                .read(&path, &params, Some(blocking))
                .await
                .map_err(|e| e.to_string())?;
            let snapshot = parse(&target, &reply)?;
            Ok((snapshot, reply.index, fresh))
        })
    }

    /// Updates the environment and file, then publishes the events.
    async fn publish(&self, before: Option<&Snapshot>, now: &Snapshot) {
        let (mut vars, bytes) = match now {
            Snapshot::Service(list) => (
                payload::instance_vars(&self.env_prefix, list, &self.file),
                payload::instances_json(list),
            ),
            Snapshot::Key(entry) => (
                payload::key_vars(&self.env_prefix, entry.as_ref(), &self.file),
                entry
                    .as_ref()
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default(),
            ),
            Snapshot::Prefix(entries) => (
                payload::prefix_vars(&self.env_prefix, entries, &self.file),
                payload::prefix_json(entries),
            ),
        };
        let mut files = vec![(self.file.clone(), bytes)];
        let mut details = serde_json::Map::new();
        let mut summary = format!(
            "{} -> {}",
            before.map_or("nothing yet".into(), Snapshot::describe),
            now.describe()
        );
        if let Snapshot::Service(list) = now {
            let previous = match before {
                Some(Snapshot::Service(old)) => old.as_slice(),
                _ => &[],
            };
            let changes = payload::changes(previous, list);
            summary = instances_summary(previous.len(), &changes);
            let addresses = |list: &[&payload::Instance]| -> Vec<serde_json::Value> {
                list.iter().map(|i| i.host_port().into()).collect()
            };
            details.insert("instances".into(), list.len().into());
            details.insert("added".into(), addresses(&changes.added).into());
            details.insert("removed".into(), addresses(&changes.removed).into());
            vars.extend(payload::changes_vars(
                &self.env_prefix,
                &changes,
                &self.changes_file,
            ));
            files.push((self.changes_file.clone(), payload::changes_json(&changes)));
        }
        for e in payload::write_all_atomic(files).await {
            log::error!("{}: {e} (in {})", self.source, self.dir.path().display());
        }
        for (key, value) in vars {
            self.environ.set_runtime(&key, value);
        }
        if let Snapshot::Service(list) = now {
            self.board.update_watch(WatchStatus {
                name: self.config.name.clone(),
                instances: Some(
                    list.iter()
                        .map(|i| WatchInstance {
                            id: i.id.clone(),
                            address: i.address.clone(),
                            port: i.port,
                            tags: i.tags.clone(),
                        })
                        .collect(),
                ),
            });
        }
        log::info!("{}: {summary}", self.source);
        self.bus
            .publish_with(Event::new(EventCode::Changed, &self.source), details);
        if let Some(healthy) = now.healthy()
            && before.and_then(Snapshot::healthy) != Some(healthy)
        {
            let code = if healthy {
                EventCode::Healthy
            } else {
                EventCode::Unhealthy
            };
            self.bus.publish(Event::new(code, &self.source));
        }
    }
}

/// A service watch's change in one line: the count before and after, and
/// which instances came and went (`passing instances 1 -> 2: added
/// 10.0.0.2:80`).
fn instances_summary(before: usize, changes: &payload::Changes) -> String {
    let list = |items: &[&payload::Instance]| {
        let shown: Vec<String> = items.iter().take(5).map(|i| i.host_port()).collect();
        let more = if items.len() > 5 { ", ..." } else { "" };
        format!("{}{more}", shown.join(", "))
    };
    let mut parts = Vec::new();
    if !changes.added.is_empty() {
        parts.push(format!("added {}", list(&changes.added)));
    }
    if !changes.removed.is_empty() {
        parts.push(format!("removed {}", list(&changes.removed)));
    }
    if !changes.changed.is_empty() {
        parts.push(format!("changed {}", list(&changes.changed)));
    }
    let after = changes.instances.len();
    match parts.is_empty() {
        true => format!("passing instances {before} -> {after}"),
        false => format!(
            "passing instances {before} -> {after}: {}",
            parts.join("; ")
        ),
    }
}

/// The path and parameters of a watch's query.
fn request(target: &WatchTarget) -> (String, Vec<(&'static str, String)>) {
    let mut params = Vec::new();
    let path = match target {
        WatchTarget::Service { service, tag, dc } => {
            params.push(("passing", "1".to_string()));
            if let Some(tag) = tag {
                params.push(("tag", tag.clone()));
            }
            if let Some(dc) = dc {
                params.push(("dc", dc.clone()));
            }
            format!("/v1/health/service/{}", segment(service))
        }
        WatchTarget::Key { key, dc } => {
            if let Some(dc) = dc {
                params.push(("dc", dc.clone()));
            }
            format!("/v1/kv/{}", key_path(key))
        }
        WatchTarget::Prefix { prefix, dc } => {
            params.push(("recurse", "true".to_string()));
            if let Some(dc) = dc {
                params.push(("dc", dc.clone()));
            }
            format!("/v1/kv/{}", key_path(prefix))
        }
    };
    (path, params)
}

/// Reads a query's answer. A missing key is data (404), anything else but
/// 200 is an error.
fn parse(target: &WatchTarget, reply: &Reply) -> Result<Snapshot, String> {
    let is_kv = !matches!(target, WatchTarget::Service { .. });
    if is_kv && reply.status == 404 {
        return Ok(match target {
            WatchTarget::Key { .. } => Snapshot::Key(None),
            _ => Snapshot::Prefix(Vec::new()),
        });
    }
    if reply.status != 200 {
        let body = String::from_utf8_lossy(&reply.body);
        let body = body.trim();
        let hint = match reply.status {
            403 => " (the ACL token may not read this)",
            _ => "",
        };
        return Err(format!(
            "HTTP {}{hint}: {}",
            reply.status,
            body.chars().take(200).collect::<String>()
        ));
    }
    match target {
        WatchTarget::Service { .. } => payload::parse_health(&reply.body).map(Snapshot::Service),
        WatchTarget::Key { key, .. } => {
            let entries = payload::parse_kv(&reply.body)?;
            let key = key.trim_start_matches('/');
            Ok(Snapshot::Key(entries.into_iter().find(|e| e.key == key)))
        }
        WatchTarget::Prefix { .. } => payload::parse_kv(&reply.body).map(Snapshot::Prefix),
    }
}

#[cfg(test)]
mod tests;
