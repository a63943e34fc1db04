//! Unit tests of the election machine: no Consul, no clock (time is passed in).

use super::*;
use crate::coordination::leader::protocol::KeyState;
use crate::discovery::client::next_index;

pub(super) const JOB: &str = "db";
const SERVICE: &str = "db-1";

pub(super) fn config(ttl: u64, lock_delay: u64) -> LeaderConfig {
    LeaderConfig {
        key: "db/leader".into(),
        ttl: Duration::from_secs(ttl),
        lock_delay: Duration::from_secs(lock_delay),
    }
}

pub(super) fn agent(passing: bool, passes: u64) -> Agent {
    Agent {
        service_id: Some(SERVICE.into()),
        passing,
        passes,
    }
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A machine and the time it is at.
pub(super) struct Election {
    pub(super) m: Machine,
    t0: Instant,
    pub(super) now: Instant,
}

impl Election {
    /// A new election (ttl 10s, lock-delay 3s) whose job has passed 1 check.
    pub(super) fn new() -> Election {
        Election::with(config(10, 3), false)
    }

    pub(super) fn with(config: LeaderConfig, restarting: bool) -> Election {
        let t0 = Instant::now();
        Election {
            m: Machine::new(JOB, config, agent(true, 1), restarting, t0),
            t0,
            now: t0,
        }
    }

    /// Time since the start.
    pub(super) fn at(&self, s: f64) -> Instant {
        self.t0 + secs(s)
    }

    pub(super) fn on(&mut self, input: Input) -> Vec<Effect> {
        self.m.on(input, self.now)
    }

    /// Moves the clock to `s` seconds after the start, then feeds `input`.
    pub(super) fn on_at(&mut self, s: f64, input: Input) -> Vec<Effect> {
        self.now = self.at(s);
        self.on(input)
    }

    pub(super) fn event(&mut self, code: EventCode) -> Vec<Effect> {
        self.on(Input::Event(Event::new(code, JOB)))
    }

    /// A new passing result: the machine asks for a session.
    pub(super) fn pass(&mut self, passes: u64) -> Vec<Effect> {
        self.on(Input::Agent(agent(true, passes)))
    }

    /// The session `id` is created, sent now.
    pub(super) fn created(&mut self, id: &str) -> Vec<Effect> {
        let sent = self.now;
        self.on(Input::Created {
            sent,
            result: Ok(id.into()),
        })
    }

    pub(super) fn acquired(&mut self, id: &str, result: Result<bool, String>) -> Vec<Effect> {
        self.on(Input::Acquired {
            id: id.into(),
            result,
        })
    }

    pub(super) fn renewed(&mut self, sent: f64, result: Result<bool, String>) -> Vec<Effect> {
        let sent = self.at(sent);
        self.on(Input::Renewed {
            id: "s1".into(),
            sent,
            result,
        })
    }

    /// A blocking query started at `started` answers with index 7.
    pub(super) fn key(&mut self, started: f64, session: Option<&str>) -> Vec<Effect> {
        let started = self.at(started);
        self.on(Input::KeyRead {
            index: 0,
            started,
            result: Ok(KeyState {
                index: Some(7),
                session: session.map(String::from),
                holder: session.map(|_| "db-2".into()),
            }),
        })
    }

    /// Passes, opens session `s1` and takes the key, all at time 0.
    pub(super) fn elected() -> Election {
        let mut e = Election::new();
        e.pass(2);
        e.created("s1");
        let fx = e.acquired("s1", Ok(true));
        assert_eq!(published(&fx), [EventCode::Elected]);
        e
    }
}

pub(super) fn published(fx: &[Effect]) -> Vec<EventCode> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Publish(code) => Some(*code),
            _ => None,
        })
        .collect()
}

pub(super) fn logged(fx: &[Effect], level: Level) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Log(l, line) if *l == level => Some(line.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn destroyed(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::DestroySession { session } => Some(session.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn asks_to_acquire(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::Acquire { .. }))
}

pub(super) fn asks_for_session(fx: &[Effect]) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::CreateSession { service_id } if service_id == SERVICE))
}

#[test]
fn the_failsafe_steps_down_before_the_session_can_expire() {
    for secs in [10, 15, 30, 60, 600, 86_400] {
        let ttl = Duration::from_secs(secs);
        let margin = failsafe_margin(ttl);
        assert!(margin >= MIN_MARGIN, "{secs}s");
        // Deposed strictly before the earliest server-side expiry...
        let start = Instant::now();
        assert!(failsafe_deadline(start, ttl) + margin <= start + ttl);
        // ...and renewals get at least 3s of retries first.
        assert!(ttl / 2 >= margin + Duration::from_secs(3), "{secs}s");
    }
    assert_eq!(
        failsafe_margin(Duration::from_secs(10)),
        Duration::from_secs(2)
    );
    assert_eq!(
        failsafe_margin(Duration::from_secs(60)),
        Duration::from_secs(12)
    );
}

#[test]
fn key_indexes_follow_consuls_rules() {
    assert_eq!(next_index(0, Some(9)), 9);
    assert_eq!(next_index(9, Some(3)), 0);
    assert_eq!(next_index(0, Some(0)), 1);
    assert_eq!(next_index(5, None), 0);
}

#[test]
fn a_new_pass_opens_a_session_and_taking_the_key_elects() {
    let mut e = Election::new();
    // The pass the job had before the election started does not count.
    assert!(e.on(Input::Agent(agent(true, 1))).is_empty());
    assert_eq!(e.m.role(), Role::Standby);

    assert_eq!(
        e.pass(2),
        [Effect::CreateSession {
            service_id: SERVICE.into()
        }]
    );
    assert_eq!(e.m.role(), Role::Candidate);
    // A second pass while the creation runs asks for nothing more.
    assert!(e.pass(3).is_empty());

    let fx = e.created("s1");
    assert!(fx.contains(&Effect::Acquire {
        session: "s1".into()
    }));
    assert!(fx.contains(&Effect::ReadKey { index: 0 }));
    assert_eq!(e.m.timer(Timer::Renew), Some(e.at(5.0)));

    let fx = e.acquired("s1", Ok(true));
    // The variable and the status come before the event, for its hooks.
    assert_eq!(fx[0], Effect::SetVariable(Some(true)));
    assert_eq!(fx[1], Effect::PublishStatus);
    assert_eq!(fx.last(), Some(&Effect::Publish(EventCode::Elected)));
    assert_eq!(e.m.role(), Role::Leader);
    assert_eq!(e.m.holder(), Some(SERVICE));
    assert_eq!(e.m.timer(Timer::Failsafe), Some(e.at(8.0)));
}

#[test]
fn a_leader_holds_while_renewals_succeed() {
    let mut e = Election::elected();
    assert_eq!(e.m.next_timer(), Some((Timer::Renew, e.at(5.0))));
    let fx = e.on_at(5.0, Input::Timer(Timer::Renew));
    assert_eq!(
        fx,
        [Effect::Renew {
            session: "s1".into()
        }]
    );
    // A renewal is in flight: the next one waits for it.
    assert!(e.on(Input::Timer(Timer::Renew)).is_empty());

    assert!(e.renewed(5.0, Ok(true)).is_empty());
    assert_eq!(e.m.timer(Timer::Renew), Some(e.at(10.0)));
    assert_eq!(e.m.timer(Timer::Failsafe), Some(e.at(13.0)));
    // The old fail-safe deadline passes without a step-down.
    assert!(e.on_at(8.5, Input::Timer(Timer::Failsafe)).is_empty());
    assert_eq!(e.m.role(), Role::Leader);
}

#[test]
fn failed_renewals_are_retried_quickly_and_logged_once() {
    let mut e = Election::elected();
    e.on_at(5.0, Input::Timer(Timer::Renew));
    let fx = e.renewed(5.0, Err("connection refused".into()));
    assert_eq!(
        logged(&fx, Level::Warn),
        [
            "db: leader election: cannot renew the session (connection refused); \
          stepping down in 3.0s unless one succeeds; retrying"
        ]
    );
    let retry = e.m.timer(Timer::Renew).unwrap();
    assert!(retry > e.now && retry <= e.now + RETRY_INITIAL);
    assert_eq!(e.m.role(), Role::Leader);

    e.on_at(5.2, Input::Timer(Timer::Renew));
    let fx = e.renewed(5.2, Err("connection refused".into()));
    assert!(logged(&fx, Level::Warn).is_empty(), "one warning per spell");
    assert_eq!(logged(&fx, Level::Debug).len(), 1);

    e.on_at(5.6, Input::Timer(Timer::Renew));
    let fx = e.renewed(5.6, Ok(true));
    assert_eq!(
        logged(&fx, Level::Info),
        ["db: leader election: Consul answers again"]
    );
    assert_eq!(e.m.timer(Timer::Failsafe), Some(e.at(13.6)));
    assert!(published(&fx).is_empty());
}

#[test]
fn the_failsafe_steps_down_and_a_later_renewal_takes_the_key_back() {
    let mut e = Election::elected();
    e.on_at(5.0, Input::Timer(Timer::Renew));
    e.renewed(5.0, Err("timeout".into()));
    assert_eq!(e.m.next_timer().map(|(t, _)| t), Some(Timer::Renew));

    // No renewal succeeded for ttl - margin = 8s: deposed, session kept.
    assert_eq!(e.m.timer(Timer::Failsafe), Some(e.at(8.0)));
    let fx = e.on_at(8.0, Input::Timer(Timer::Failsafe));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert!(fx.contains(&Effect::SetVariable(Some(false))));
    assert!(destroyed(&fx).is_empty());
    assert_eq!(e.m.role(), Role::Candidate);
    assert_eq!(e.m.timer(Timer::Failsafe), None);

    // Consul answers again and the session survived: try the key at once.
    e.on_at(8.1, Input::Timer(Timer::Renew));
    let fx = e.renewed(8.1, Ok(true));
    assert!(asks_to_acquire(&fx));
    let fx = e.acquired("s1", Ok(true));
    assert_eq!(published(&fx), [EventCode::Elected]);
}

#[test]
fn a_key_acquired_after_the_failsafe_deadline_waits_for_a_renewal() {
    let mut e = Election::new();
    e.pass(2);
    e.created("s1");
    // The acquisition answers after ttl - margin without a renewal.
    e.now = e.at(8.5);
    let fx = e.acquired("s1", Ok(true));
    assert!(published(&fx).is_empty());
    assert_eq!(e.m.role(), Role::Candidate);
    let fx = e.renewed(8.5, Ok(true));
    assert!(asks_to_acquire(&fx));
    assert_eq!(published(&e.acquired("s1", Ok(true))), [EventCode::Elected]);
}

#[test]
fn a_lost_session_deposes_and_a_new_one_is_opened() {
    let mut e = Election::elected();
    e.on_at(5.0, Input::Timer(Timer::Renew));
    let fx = e.renewed(5.0, Ok(false));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    // The blocking query on the key is dropped with the session.
    assert!(fx.contains(&Effect::Cancel(Call::ReadKey)));
    assert!(!e.m.in_flight(Call::ReadKey));
    assert_eq!(e.m.role(), Role::Standby);

    // The job is still fit: a new session after a short delay.
    let (timer, at) = e.m.next_timer().unwrap();
    assert_eq!(timer, Timer::Open);
    assert!(at <= e.now + RETRY_INITIAL);
    let fx = e.on_at(5.2, Input::Timer(Timer::Open));
    assert!(asks_for_session(&fx));
    assert_eq!(e.m.role(), Role::Candidate);
}

#[test]
fn a_free_key_refused_during_the_lock_delay_is_retried_once_it_is_over() {
    let mut e = Election::new();
    e.pass(2);
    e.created("s1");
    // Another leader's session was just invalidated: the key is free...
    e.key(0.0, None);
    // ...but Consul refuses it until the lock-delay (3s) is over.
    let fx = e.on_at(
        0.5,
        Input::Acquired {
            id: "s1".into(),
            result: Ok(false),
        },
    );
    assert!(fx.is_empty());
    assert_eq!(e.m.timer(Timer::Acquire), Some(e.at(3.0)));
    // The key still free meanwhile: no earlier try.
    e.now = e.at(1.0);
    assert!(!asks_to_acquire(&e.key(0.0, None)));

    let fx = e.on_at(3.0, Input::Timer(Timer::Acquire));
    assert!(asks_to_acquire(&fx));
    assert_eq!(published(&e.acquired("s1", Ok(true))), [EventCode::Elected]);
}

#[test]
fn a_key_held_by_another_is_taken_as_soon_as_it_is_free() {
    let mut e = Election::new();
    e.pass(2);
    e.created("s1");
    e.key(0.0, Some("other"));
    assert!(e.acquired("s1", Ok(false)).is_empty());
    assert_eq!(e.m.timer(Timer::Acquire), None, "held: wait for the key");
    assert_eq!(e.m.holder(), Some("db-2"));

    let fx = e.key(0.1, None);
    assert!(asks_to_acquire(&fx));
    assert_eq!(e.m.holder(), None);
}

#[test]
fn another_session_on_the_key_deposes_unless_the_read_predates_the_election() {
    let mut e = Election::new();
    e.pass(2);
    e.created("s1");
    e.now = e.at(0.5);
    assert_eq!(published(&e.acquired("s1", Ok(true))), [EventCode::Elected]);
    e.now = e.at(1.0);
    // A query started before we were elected may not show our lock yet.
    assert!(published(&e.key(0.2, None)).is_empty());
    assert_eq!(e.m.role(), Role::Leader);

    let fx = e.key(0.9, Some("s2"));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(
        logged(&fx, Level::Warn),
        ["db: deposed (another session holds the key)"]
    );
    // Still competing with our session.
    assert_eq!(e.m.role(), Role::Candidate);
    assert_eq!(e.m.holder(), Some("db-2"));
    assert!(destroyed(&fx).is_empty());
}

#[test]
fn key_read_failures_restart_from_index_zero_and_quick_answers_slow_down() {
    let mut e = Election::new();
    e.pass(2);
    e.created("s1");
    let fx = e.on(Input::KeyRead {
        index: 0,
        started: e.now,
        result: Err("agent restarting".into()),
    });
    assert_eq!(
        logged(&fx, Level::Warn),
        ["db: leader election: cannot read db/leader (agent restarting); retrying"]
    );
    assert!(e.m.timer(Timer::ReadKey).is_some());
    let fx = e.on(Input::Timer(Timer::ReadKey));
    assert_eq!(fx, [Effect::ReadKey { index: 0 }]);

    // A normal answer: follow on from its index at once.
    let fx = e.key(0.0, Some("other"));
    assert!(fx.contains(&Effect::ReadKey { index: 7 }));
    // The same index again, long before the wait ran out: not at once.
    let fx = e.on_at(
        1.0,
        Input::KeyRead {
            index: 7,
            started: e.at(0.5),
            result: Ok(KeyState {
                index: Some(7),
                session: Some("other".into()),
                holder: None,
            }),
        },
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::ReadKey { .. })));
    assert!(e.m.timer(Timer::ReadKey).is_some());
}
