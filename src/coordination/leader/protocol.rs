//! What an election's machine and its task say to each other: the inputs
//! the task feeds (events, Consul replies, timers) and the effects it
//! carries out. Plain data, so the machine's tests can write them out.

use crate::events::{Event, EventCode};
use log::Level;
use std::time::Instant;

/// Where a job stands (the status view's type, so no translation is needed).
pub use crate::jobs::status::LeaderRole as Role;

/// What the Consul agent has of the job's service, as the task last read
/// it from the registry.
///
/// "Healthy" is the check passing *in Consul*, not the job's `healthy`
/// event: a session can only be created once the agent has the check
/// passing, and a job restarted at once after a long run publishes no new
/// `healthy`, yet its new process must pass a check before it may lead
/// again (each step-down caused by the job waits for a newer pass).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// The service's ID, once registered.
    pub service_id: Option<String>,
    /// Its check is passing, as set from a passing health result.
    pub passing: bool,
    /// How many passing health results reached the agent: a higher number
    /// is a newer result.
    pub passes: u64,
}

/// Why an election ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// The job no longer has `leader` (or is gone): its variable and status
    /// entry go too.
    Removed,
    /// A new election for the same job takes over (its `leader` changed):
    /// the variable and status entry are the new one's.
    Replaced,
}

/// The Consul calls the machine asks for; at most one of each is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    CreateSession,
    Renew,
    Acquire,
    /// The blocking query that follows the key.
    ReadKey,
}

/// The machine's timers: each is set (with a deadline) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Retry creating a session.
    Open,
    /// Renew the session (`ttl/2` after the last success, sooner on failure).
    Renew,
    /// Retry acquiring the key (after a failure, or once the lock-delay is over).
    Acquire,
    /// Retry following the key.
    ReadKey,
    /// No renewal succeeded for `ttl - margin`: a leader steps down. Set
    /// while leading; see [`super::failsafe_deadline`].
    Failsafe,
}

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateFailure {
    /// A check it should be tied to is missing or critical in the catalog;
    /// retrying helps once it passes.
    CheckNotPassing(String),
    /// The agent is unreachable or refused.
    Failed(String),
}

/// The key as a blocking query found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyState {
    /// `X-Consul-Index`, if the agent sent one.
    pub index: Option<u64>,
    /// The session holding the key's lock (`None`: free or missing).
    pub session: Option<String>,
    /// The service ID its value names (`id`), if any.
    pub holder: Option<String>,
}

/// What the machine reacts to. Replies come only for calls in flight: the
/// task drops a call the machine cancels.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// What the agent has of the job's service changed.
    Agent(Agent),
    /// An event from the bus.
    Event(Event),
    /// The bus overran: this many events were missed.
    EventsLost(u64),
    /// [`Effect::CreateSession`] answered; `sent` is when the call was sent.
    Created {
        sent: Instant,
        result: Result<String, CreateFailure>,
    },
    /// [`Effect::Renew`] answered: `Ok(false)` when Consul no longer knows
    /// the session.
    Renewed {
        id: String,
        sent: Instant,
        result: Result<bool, String>,
    },
    /// [`Effect::Acquire`] answered: `Ok(false)` when refused.
    Acquired {
        id: String,
        result: Result<bool, String>,
    },
    /// [`Effect::ReadKey`] answered: `index` is the one it was sent with,
    /// `started` when it was sent.
    KeyRead {
        index: u64,
        started: Instant,
        result: Result<KeyState, String>,
    },
    Timer(Timer),
    /// A reload removed or replaced this election; nothing follows.
    Retire(Retire),
}

/// What the task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create a session tied to the node and to this service's check.
    CreateSession {
        service_id: String,
    },
    Renew {
        session: String,
    },
    /// Acquire the key with this session, writing the job's address into it.
    Acquire {
        session: String,
    },
    /// Start a blocking query on the key from this index.
    ReadKey {
        index: u64,
    },
    /// Destroy a session in the background (it expires by its TTL otherwise).
    DestroySession {
        session: String,
    },
    /// Drop a call in flight: its reply must not arrive.
    Cancel(Call),
    /// Set `CONTAINERPILOT_<JOB>_LEADER` (`None`: remove it).
    SetVariable(Option<bool>),
    /// Write the status entry now (before the event that follows).
    PublishStatus,
    /// Remove the status entry.
    ClearStatus,
    /// Publish an event with the job as source.
    Publish(EventCode),
    Log(Level, String),
}
