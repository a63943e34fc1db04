//! Unit tests of the election machine: how the job's own life (health,
//! exit, stop, maintenance) and reloads end or restart its competition.

use super::tests::{Election, agent, asks_for_session, config, destroyed, logged, published};
use super::*;
use log::Level;

#[test]
fn an_unhealthy_job_steps_down_and_waits_for_a_newer_pass() {
    let mut e = Election::elected();
    let fx = e.event(EventCode::Unhealthy);
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    assert_eq!(e.m.role(), Role::Standby);
    assert_eq!(e.m.next_timer(), None);
    // The agent still shows the last pass: not enough.
    assert!(e.pass(2).is_empty());
    assert!(asks_for_session(&e.pass(3)));
}

#[test]
fn a_check_critical_in_consul_gives_the_session_up() {
    let mut e = Election::elected();
    let fx = e.on(Input::Agent(agent(false, 2)));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    assert!(e.on(Input::Agent(agent(true, 2))).is_empty());
    assert!(asks_for_session(&e.pass(3)));
}

#[test]
fn a_session_created_for_a_job_that_turned_unfit_is_destroyed() {
    let mut e = Election::new();
    e.pass(2);
    let fx = e.event(EventCode::ExitFailed);
    assert!(
        published(&fx).is_empty(),
        "never elected: nothing to depose"
    );
    assert_eq!(e.m.role(), Role::Standby);
    let fx = e.created("s1");
    assert_eq!(
        fx,
        [Effect::DestroySession {
            session: "s1".into()
        }]
    );
    assert_eq!(e.m.role(), Role::Standby);
}

#[test]
fn stopping_on_shutdown_deposes_and_destroys_the_session() {
    let mut e = Election::elected();
    let fx = e.event(EventCode::Stopping);
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    assert_eq!(e.m.role(), Role::Standby);
    // Stopped afterwards: nothing more to do.
    assert!(e.event(EventCode::Stopped).is_empty());
}

#[test]
fn maintenance_and_missed_events_depose() {
    let mut e = Election::elected();
    let fx = e.on(Input::Event(Event::new(
        EventCode::EnterMaintenance,
        GLOBAL,
    )));
    assert_eq!(published(&fx), [EventCode::Deposed]);

    let mut e = Election::elected();
    let fx = e.on(Input::EventsLost(4));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(
        logged(&fx, Level::Error),
        ["db: leader election missed 4 events; stepping down to be safe"]
    );
    // Another job's events change nothing.
    let mut e = Election::elected();
    assert!(
        e.on(Input::Event(Event::new(EventCode::Unhealthy, "web")))
            .is_empty()
    );
}

#[test]
fn a_reload_that_removes_leader_clears_the_variable_and_status() {
    let mut e = Election::elected();
    let fx = e.on(Input::Retire(Retire::Removed));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    assert!(!fx.contains(&Effect::PublishStatus), "no longer ours");
    assert_eq!(
        &fx[fx.len() - 2..],
        [Effect::SetVariable(None), Effect::ClearStatus]
    );
    assert!(e.m.retired());
    // Nothing happens after retirement.
    assert!(e.pass(5).is_empty());
    assert!(e.on(Input::Timer(Timer::Open)).is_empty());
}

#[test]
fn a_reload_that_changes_leader_hands_over_to_a_new_election() {
    let mut e = Election::elected();
    let fx = e.on(Input::Retire(Retire::Replaced));
    assert_eq!(published(&fx), [EventCode::Deposed]);
    assert_eq!(destroyed(&fx), ["s1"]);
    assert!(!fx.contains(&Effect::SetVariable(None)));
    assert!(!fx.contains(&Effect::ClearStatus));

    // The new election (ttl 20s, lock-delay 5s) runs while the job restarts:
    // the old process's passes do not count until it is stopped.
    let mut e = Election::with(config(20, 5), true);
    assert!(e.pass(2).is_empty());
    assert!(e.event(EventCode::Stopped).is_empty());
    // The agent still shows the old process's pass; the new one's counts.
    assert!(e.on(Input::Agent(agent(true, 2))).is_empty());
    assert!(asks_for_session(&e.pass(3)));
    e.created("s9");
    e.acquired("s9", Ok(true));
    // The new ttl: renew at 10s, fail-safe at 20 - 4 = 16s.
    assert_eq!(e.m.timer(Timer::Renew), Some(e.at(10.0)));
    assert_eq!(e.m.timer(Timer::Failsafe), Some(e.at(16.0)));

    // A refused key waits out the new lock-delay.
    let mut e = Election::with(config(20, 5), false);
    e.pass(2);
    e.created("s9");
    e.key(0.0, None);
    e.on_at(
        1.0,
        Input::Acquired {
            id: "s9".into(),
            result: Ok(false),
        },
    );
    assert_eq!(e.m.timer(Timer::Acquire), Some(e.at(5.0)));
}
