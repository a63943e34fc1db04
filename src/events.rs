//! Events and the event bus.
//!
//! Every job sees every event, in the order it was published. Publishing never
//! blocks: the bus is a bounded `tokio::sync::broadcast` channel, and a subscriber
//! that falls behind loses the oldest events (it gets `Lagged(n)`, which the job
//! logs and counts). Jobs never do slow work inline, so in practice none lags.

pub mod publishers;

use crate::journal::Journal;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// What happened. The string forms are ContainerPilot's, so configs can name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventCode {
    Startup,
    Shutdown,
    ExitSuccess,
    ExitFailed,
    Healthy,
    Unhealthy,
    Changed,
    Stopping,
    Stopped,
    TimerExpired,
    EnterMaintenance,
    ExitMaintenance,
    /// SIGHUP received by the supervisor (source "SIGHUP").
    SigHup,
    /// SIGUSR2 received by the supervisor (source "SIGUSR2").
    SigUsr2,
    /// A job won leadership of its key.
    Elected,
    /// A job lost leadership of its key.
    Deposed,
}

impl EventCode {
    /// Every code, for suggestions and docs.
    pub const ALL: [EventCode; 16] = [
        EventCode::Startup,
        EventCode::Shutdown,
        EventCode::ExitSuccess,
        EventCode::ExitFailed,
        EventCode::Healthy,
        EventCode::Unhealthy,
        EventCode::Changed,
        EventCode::Stopping,
        EventCode::Stopped,
        EventCode::TimerExpired,
        EventCode::EnterMaintenance,
        EventCode::ExitMaintenance,
        EventCode::SigHup,
        EventCode::SigUsr2,
        EventCode::Elected,
        EventCode::Deposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::Startup => "startup",
            EventCode::Shutdown => "shutdown",
            EventCode::ExitSuccess => "exitSuccess",
            EventCode::ExitFailed => "exitFailed",
            EventCode::Healthy => "healthy",
            EventCode::Unhealthy => "unhealthy",
            EventCode::Changed => "changed",
            EventCode::Stopping => "stopping",
            EventCode::Stopped => "stopped",
            EventCode::TimerExpired => "timerExpired",
            EventCode::EnterMaintenance => "enterMaintenance",
            EventCode::ExitMaintenance => "exitMaintenance",
            EventCode::SigHup => "SIGHUP",
            EventCode::SigUsr2 => "SIGUSR2",
            EventCode::Elected => "elected",
            EventCode::Deposed => "deposed",
        }
    }

    /// Parses a code as written in a config (exact spelling, as ContainerPilot).
    pub fn parse(s: &str) -> Option<EventCode> {
        EventCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Codes autopilot itself publishes, as [`GLOBAL`] (signal events are
    /// published under the signal's name: see [`publishers`]).
    pub fn is_global(self) -> bool {
        publishers::Publisher::Global.emits(self).is_some()
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The source name of events published by the supervisor itself.
pub const GLOBAL: &str = "global";

/// An event: a code and the name of what published it (a job, `watch.<name>`,
/// `global`, or the signal name for signal events).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    pub code: EventCode,
    pub source: Arc<str>,
}

impl Event {
    pub fn new(code: EventCode, source: &str) -> Event {
        Event {
            code,
            source: Arc::from(source),
        }
    }

    pub fn global(code: EventCode) -> Event {
        Event::new(code, GLOBAL)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.source, self.code)
    }
}

/// Capacity of the bus. Large enough that a burst of events (every job
/// stopping at once, a watch flapping) never laps a healthy subscriber.
const BUS_CAPACITY: usize = 1024;

/// The ordered, non-blocking event bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
    published: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    /// Every event, with its details, for people watching (`autopilot events`).
    journal: Arc<Journal>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        Bus {
            tx,
            published: Arc::new(AtomicU64::new(0)),
            lost: Arc::new(AtomicU64::new(0)),
            journal: Arc::default(),
        }
    }

    /// Publishes to every current subscriber. Never blocks.
    pub fn publish(&self, event: Event) {
        self.publish_with(event, Map::new());
    }

    /// [`Bus::publish`], with details for the journal (an exit's code, a
    /// watch's added and removed instances); subscribers get the event alone.
    pub fn publish_with(&self, event: Event, details: Map<String, Value>) {
        log::debug!("event: {event}");
        self.journal
            .event(&event.source, event.code.as_str(), details);
        self.published.fetch_add(1, Ordering::Relaxed);
        // An error only means nobody is subscribed, which is fine.
        let _ = self.tx.send(event);
    }

    /// The record of what happened, for the control socket.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Records events a lagging subscriber missed, so the loss is never silent.
    pub fn record_lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }

    pub fn published_count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    pub fn lost_count(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_names() {
        for code in EventCode::ALL {
            assert_eq!(EventCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(EventCode::parse("exitsuccess"), None);
    }

    #[tokio::test]
    async fn every_subscriber_sees_events_in_order() {
        let bus = Bus::new();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        bus.publish(Event::global(EventCode::Startup));
        bus.publish(Event::new(EventCode::ExitSuccess, "setup"));
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.unwrap().code, EventCode::Startup);
            assert_eq!(rx.recv().await.unwrap().source.as_ref(), "setup");
        }
    }
}
