//! Unit tests of the registration machine: no Consul, no clock.

use super::*;
use std::collections::{BTreeMap, VecDeque};

fn def() -> ServiceDef {
    ServiceDef {
        id: "web-host1".into(),
        name: "web".into(),
        address: "10.0.0.5".parse().unwrap(),
        port: 8080,
        tags: vec!["a".into()],
        meta: BTreeMap::new(),
        ttl: Some(Duration::from_secs(10)),
        initial_status: None,
        enable_tag_override: false,
        deregister_critical_after: None,
    }
}

fn refused() -> Result<(), CallError> {
    Err(CallError::Unreachable("connection refused".into()))
}

/// The agent restarted and lost its state.
fn unknown_check() -> Result<(), CallError> {
    Err(CallError::Status {
        status: 500,
        body: "Unknown check \"service:web-host1\"".into(),
    })
}

/// Plays the task: performs the effects by recording them, and answers each
/// call with the next scripted answer (a success when there is none left).
struct Harness {
    machine: Machine,
    now: Instant,
    answers: VecDeque<Result<(), CallError>>,
    calls: Vec<Call>,
    logs: Vec<(Level, String)>,
    board: &'static str,
    view: CheckView,
    retry_at: Option<Instant>,
    /// The outcome of the last input's sync, if it started one.
    settled: Option<Result<bool, String>>,
    returns_seen: usize,
}

impl Harness {
    fn new(def: ServiceDef) -> Harness {
        let machine = Machine::new(def);
        Harness {
            board: machine.board().as_str(),
            machine,
            now: Instant::now(),
            answers: VecDeque::new(),
            calls: Vec::new(),
            logs: Vec::new(),
            view: CheckView::default(),
            retry_at: None,
            settled: None,
            returns_seen: 0,
        }
    }

    /// A service registered with a passing check, the record cleared.
    fn passing() -> Harness {
        let mut h = Harness::new(def());
        h.feed(Input::Action(ServiceAction::Register));
        h.feed(Input::Action(ServiceAction::Pass));
        h.clear();
        h
    }

    fn answer(&mut self, answers: impl IntoIterator<Item = Result<(), CallError>>) -> &mut Self {
        self.answers.extend(answers);
        self
    }

    fn feed(&mut self, input: Input) {
        self.settled = None;
        let mut effects: VecDeque<Effect> = self.machine.on(input, self.now).into();
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Call(call) => {
                    self.calls.push(call);
                    let answer = self.answers.pop_front().unwrap_or(Ok(()));
                    effects.extend(self.machine.on(Input::Answered(answer), self.now));
                }
                Effect::Log(level, line) => self.logs.push((level, line)),
                Effect::Board(have) => self.board = have.as_str(),
                Effect::View(view) => {
                    assert_ne!(view, self.view, "a view is sent only when it changed");
                    self.view = view;
                }
                Effect::RetryAt(at) => self.retry_at = at,
                Effect::ReturnSeen => self.returns_seen += 1,
                Effect::Settled(result) => self.settled = Some(result),
            }
        }
        assert!(
            self.answers.is_empty(),
            "unused answers: {:?}",
            self.answers
        );
    }

    /// The retry time comes.
    fn retry(&mut self) {
        self.now = self.retry_at.expect("a retry is pending");
        self.feed(Input::RetryDue);
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.logs.clear();
        self.returns_seen = 0;
    }

    fn said(&self, text: &str) -> usize {
        self.logs.iter().filter(|(_, l)| l.contains(text)).count()
    }

    fn warnings(&self) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|(level, _)| *level == Level::Warn)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    fn retry_delay(&self) -> Duration {
        self.retry_at.expect("a retry is pending") - self.now
    }
}

fn update(status: Status) -> Call {
    Call::Update {
        check_id: "service:web-host1".into(),
        status,
    }
}

fn deregister() -> Call {
    Call::Deregister {
        id: "web-host1".into(),
    }
}

fn view(registered: bool, passing: bool, passes: u64) -> CheckView {
    CheckView {
        registered,
        passing,
        passes,
    }
}

#[test]
fn registers_then_sets_the_check_from_health_results() {
    let mut h = Harness::new(def());
    assert_eq!(h.board, "not registered");
    h.feed(Input::Action(ServiceAction::Register));
    assert_eq!(h.calls, [Call::Register(def(), None)]);
    assert_eq!(
        h.logs,
        [(
            Level::Info,
            "web: registered in Consul as web-host1 at 10.0.0.5:8080".to_string()
        )]
    );
    assert_eq!((h.board, h.view), ("registered", view(true, false, 0)));
    assert_eq!(h.settled, Some(Ok(true)));
    assert_eq!(h.returns_seen, 1);
    h.clear();

    // Every pass refreshes the TTL, even without a change of status.
    h.feed(Input::Action(ServiceAction::Pass));
    h.feed(Input::Action(ServiceAction::Pass));
    assert_eq!(h.calls, [update(Status::Passing), update(Status::Passing)]);
    assert_eq!((h.board, h.view), ("passing", view(true, true, 2)));
    h.clear();

    // A failure is sent once; the view keeps the count of passes.
    h.feed(Input::Action(ServiceAction::Fail));
    h.feed(Input::Action(ServiceAction::Fail));
    assert_eq!(h.calls, [update(Status::Critical)]);
    assert_eq!((h.board, h.view), ("critical", view(true, false, 2)));
    assert_eq!(h.retry_at, None);
    assert_eq!(h.said("registered"), 0);
}

#[test]
fn a_service_without_a_health_check_has_no_check_to_set() {
    let mut h = Harness::new(ServiceDef { ttl: None, ..def() });
    h.feed(Input::Action(ServiceAction::Register));
    h.feed(Input::Action(ServiceAction::Pass));
    h.feed(Input::Action(ServiceAction::Fail));
    assert_eq!(
        h.calls,
        [Call::Register(ServiceDef { ttl: None, ..def() }, None)]
    );
}

#[test]
fn a_ttl_update_for_a_lost_check_registers_again_once() {
    let mut h = Harness::passing();
    h.answer([unknown_check()])
        .feed(Input::Action(ServiceAction::Pass));
    // One sync: the refused update, then the registration with the status
    // the update carried.
    assert_eq!(
        h.calls,
        [
            update(Status::Passing),
            Call::Register(def(), Some(Status::Passing))
        ]
    );
    assert_eq!(h.said("does not know service:web-host1"), 1);
    assert_eq!(h.said("web: registered again in Consul"), 1);
    assert!(h.logs[1].1.ends_with("(passing)"), "{:?}", h.logs);
    assert_eq!(h.warnings(), Vec::<&str>::new());
    assert_eq!((h.board, h.view), ("passing", view(true, true, 2)));
    assert_eq!(h.settled, Some(Ok(true)));

    // From then on, updates alone.
    h.feed(Input::Action(ServiceAction::Pass));
    assert_eq!(h.calls.last(), Some(&update(Status::Passing)));
    assert_eq!(h.calls.len(), 3);
    assert_eq!(h.said("registered again"), 1);
}

#[test]
fn a_failed_ttl_update_is_retried_by_registering_again() {
    let mut h = Harness::passing();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Fail));
    assert_eq!(
        h.warnings(),
        [
            "web: Consul call failed (updating service:web-host1: connection refused); \
          retrying with backoff, the job keeps running"
        ]
    );
    assert_eq!(h.board, "unknown");
    // A blip does not change what followers see (a leader keeps its place).
    assert_eq!(h.view, view(true, true, 1));
    assert!(h.settled.as_ref().is_some_and(|s| s.is_err()));
    h.clear();

    // What the agent has is unknown: the retry registers again, with the
    // latest wish.
    h.retry();
    assert_eq!(h.calls, [Call::Register(def(), Some(Status::Critical))]);
    assert_eq!(h.said("registered again"), 1);
    assert_eq!((h.board, h.view), ("critical", view(true, false, 1)));
    assert_eq!(h.retry_at, None);
}

#[test]
fn an_outage_backs_off_and_keeps_only_the_latest_wish() {
    let mut h = Harness::passing();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Fail));
    let first = h.retry_delay();
    assert!(
        first <= RETRY_INITIAL && first >= RETRY_INITIAL * 4 / 5,
        "{first:?}"
    );
    h.clear();

    // Health results during the backoff wait for the retry: no storm.
    for action in [
        ServiceAction::Pass,
        ServiceAction::Fail,
        ServiceAction::Pass,
    ] {
        h.feed(Input::Action(action));
        assert_eq!(h.settled, None);
    }
    assert!(h.calls.is_empty());

    // Each failed retry waits longer, said at debug level only.
    let mut delays = Vec::new();
    for _ in 0..5 {
        h.answer([refused()]).retry();
        delays.push(h.retry_delay());
    }
    for (delay, base) in delays.iter().zip([400, 800, 1600, 3000, 3000]) {
        let base = Duration::from_millis(base);
        assert!(*delay <= base && *delay >= base * 4 / 5, "{delays:?}");
    }
    assert_eq!(h.warnings(), Vec::<&str>::new());
    assert_eq!(h.said("Consul call failed again"), 5);
    // Passes not yet applied are not counted.
    assert_eq!(h.view, view(true, true, 1));

    // The agent is back: one registration with the latest wish.
    h.clear();
    h.feed(Input::AgentReturned);
    assert_eq!(h.calls, [Call::Register(def(), Some(Status::Passing))]);
    assert_eq!(h.said("registered again"), 1);
    assert_eq!((h.board, h.view), ("passing", view(true, true, 3)));
    assert_eq!(h.retry_at, None);

    // The backoff starts over, and the next outage is said again.
    h.clear();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Pass));
    assert_eq!(h.warnings().len(), 1);
    assert!(h.retry_delay() <= RETRY_INITIAL);
}

#[test]
fn the_agent_returning_registers_again_even_when_all_seemed_well() {
    let mut h = Harness::passing();
    h.feed(Input::AgentReturned);
    assert_eq!(h.calls, [Call::Register(def(), Some(Status::Passing))]);
    assert_eq!(h.returns_seen, 1);

    // Nothing to restore when the job is not registered.
    let mut h = Harness::new(def());
    h.feed(Input::AgentReturned);
    assert!(h.calls.is_empty());
    assert_eq!(h.settled, Some(Ok(false)));
    assert_eq!(h.board, "not registered");
}

#[test]
fn maintenance_deregisters_and_its_end_registers_again() {
    let mut h = Harness::passing();
    h.feed(Input::Action(ServiceAction::Deregister));
    assert_eq!(h.calls, [deregister()]);
    assert_eq!(h.said("web: deregistered web-host1 from Consul"), 1);
    assert_eq!((h.board, h.view), ("deregistered", view(false, false, 1)));
    assert_eq!(h.settled, Some(Ok(false)));
    h.clear();

    // Out of maintenance: the initial status until the next health result.
    h.feed(Input::Action(ServiceAction::Register));
    assert_eq!(h.calls, [Call::Register(def(), None)]);
    assert_eq!(h.said("registered again"), 1);
    h.feed(Input::Action(ServiceAction::Pass));
    assert_eq!((h.board, h.view), ("passing", view(true, true, 2)));
}

#[test]
fn deregistering_a_service_the_agent_does_not_have_is_done() {
    let mut h = Harness::passing();
    h.answer([Err(CallError::Status {
        status: 500,
        body: "Unknown service \"web-host1\"".into(),
    })])
    .feed(Input::Action(ServiceAction::Deregister));
    assert_eq!(h.settled, Some(Ok(false)));
    assert_eq!(h.board, "deregistered");
    assert_eq!(h.retry_at, None);
    assert!(h.logs.is_empty(), "{:?}", h.logs);
}

#[test]
fn deregistration_at_shutdown_and_its_failures_are_said() {
    let mut h = Harness::passing();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Deregister));
    assert_eq!(
        h.warnings(),
        [
            "web: Consul call failed (deregistering web-host1: connection refused); \
          retrying with backoff, the job keeps running"
        ]
    );
    // Nothing is known to have changed at the agent.
    assert_eq!((h.board, h.view), ("passing", view(true, true, 1)));
    h.clear();

    // During an outage the deregistration does not wait for the retry, and
    // its failure is said although other failures are not.
    let mut h = Harness::passing();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Pass));
    h.clear();
    h.answer([refused()])
        .feed(Input::Action(ServiceAction::Deregister));
    assert_eq!(h.calls, [deregister()]);
    assert_eq!(
        h.warnings(),
        [
            "web: cannot deregister web-host1 from Consul (deregistering web-host1: \
          connection refused); retrying while autopilot runs"
        ]
    );
    assert!(h.settled.as_ref().is_some_and(|s| s.is_err()));
    h.clear();

    // The retry finishes it.
    h.retry();
    assert_eq!(h.calls, [deregister()]);
    assert_eq!(h.board, "deregistered");
    assert_eq!(h.retry_at, None);
}

#[test]
fn a_live_edit_is_registered_and_survives_the_agent_losing_it() {
    let edited = ServiceDef {
        tags: vec!["a".into(), "canary".into()],
        ..def()
    };
    let mut h = Harness::passing();
    h.feed(Input::Edit(edited.clone()));
    assert_eq!(
        h.calls,
        [Call::Register(edited.clone(), Some(Status::Passing))]
    );
    assert_eq!(h.settled, Some(Ok(true)));
    h.clear();

    // The agent lost its state: registered again with the edit.
    h.answer([unknown_check()])
        .feed(Input::Action(ServiceAction::Pass));
    assert_eq!(
        h.calls,
        [
            update(Status::Passing),
            Call::Register(edited.clone(), Some(Status::Passing))
        ]
    );

    // An edit the agent cannot take yet is answered with why; it is retried.
    h.clear();
    let again = ServiceDef {
        tags: vec!["b".into()],
        ..def()
    };
    h.answer([refused()]).feed(Input::Edit(again.clone()));
    assert_eq!(
        h.settled,
        Some(Err("registering web-host1: connection refused".into()))
    );
    h.retry();
    assert_eq!(
        h.calls.last(),
        Some(&Call::Register(again, Some(Status::Passing)))
    );

    // An edit of a service not registered is kept for its registration.
    let mut h = Harness::new(def());
    h.feed(Input::Edit(edited.clone()));
    assert!(h.calls.is_empty());
    assert_eq!(h.settled, Some(Ok(false)));
    h.feed(Input::Action(ServiceAction::Register));
    assert_eq!(h.calls, [Call::Register(edited, None)]);
}

#[test]
fn a_reload_registers_the_new_definition() {
    let moved = ServiceDef {
        port: 9090,
        ..def()
    };
    let mut h = Harness::passing();
    h.feed(Input::Define(moved.clone()));
    assert_eq!(
        h.calls,
        [Call::Register(moved.clone(), Some(Status::Passing))]
    );
    assert_eq!(
        h.logs,
        [(
            Level::Info,
            "web: registered again in Consul as web-host1 at 10.0.0.5:9090 (passing)".to_string()
        )]
    );
    assert_eq!(h.settled, Some(Ok(true)));

    // The new definition's ID is the one deregistered.
    h.clear();
    let renamed = ServiceDef {
        id: "web-host2".into(),
        ..moved
    };
    h.feed(Input::Define(renamed));
    h.feed(Input::Action(ServiceAction::Deregister));
    assert_eq!(
        h.calls.last(),
        Some(&Call::Deregister {
            id: "web-host2".into()
        })
    );
}

#[test]
fn inputs_out_of_turn_do_nothing() {
    let mut h = Harness::passing();
    // No call is awaited, no retry is due.
    assert!(h.machine.on(Input::Answered(Ok(())), h.now).is_empty());
    assert!(h.machine.on(Input::RetryDue, h.now).is_empty());
    // An input while a call is awaited waits for that sync to end.
    let effects = h.machine.on(Input::Action(ServiceAction::Fail), h.now);
    assert_eq!(effects, [Effect::Call(update(Status::Critical))]);
    assert!(
        h.machine
            .on(Input::Action(ServiceAction::Pass), h.now)
            .is_empty()
    );
    let effects = h.machine.on(Input::Answered(Ok(())), h.now);
    assert_eq!(
        effects.first(),
        Some(&Effect::Log(
            Level::Debug,
            "web: TTL check set to critical".into()
        ))
    );
    assert_eq!(effects.get(1), Some(&Effect::Call(update(Status::Passing))));
}

#[test]
fn unknown_check_answers_are_recognised() {
    let status = |status, body: &str| CallError::Status {
        status,
        body: body.into(),
    };
    assert!(is_unknown_check(&status(404, "")));
    assert!(is_unknown_check(&status(
        500,
        "Unknown check \"service:web-1\""
    )));
    assert!(is_unknown_check(&status(
        500,
        "CheckID \"x\" does not have associated TTL"
    )));
    assert!(!is_unknown_check(&status(500, "No cluster leader")));
    assert!(!is_unknown_check(&CallError::Unreachable("refused".into())));
    assert!(is_unknown_service(&status(
        500,
        "Unknown service \"web-1\""
    )));
}
