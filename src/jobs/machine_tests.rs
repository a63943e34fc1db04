//! Unit tests of the job state machine: no processes, no clock.

use super::*;
use crate::config::model::{Backoff, EventPattern, Exec, HealthCheck, HealthConfig, ServiceConfig};
use crate::events::GLOBAL;

fn job(name: &str) -> JobConfig {
    JobConfig {
        exec: Some(Exec {
            program: "/bin/true".into(),
            args: vec![],
        }),
        line: 1,
        ..JobConfig::named(name)
    }
}

/// A health check every second; the machine never runs it, so any check will do.
fn health_every_second() -> HealthConfig {
    HealthConfig {
        check: HealthCheck::Tcp {
            address: "127.0.0.1:1".into(),
        },
        interval: Duration::from_secs(1),
        ttl: Duration::from_secs(3),
        timeout: Duration::from_secs(1),
        logging_raw: false,
    }
}

fn on_event(code: EventCode, source: &str, repeat: Repeat) -> When {
    When::Event {
        pattern: EventPattern {
            code,
            source: source.into(),
        },
        repeat,
        timeout: None,
    }
}

fn machine(cfg: &JobConfig, all: &[JobConfig]) -> Machine {
    Machine::new(Rules::new(cfg, all))
}

fn ev(code: EventCode, source: &str) -> Input {
    Input::Event(Event::new(code, source))
}

fn startup() -> Input {
    ev(EventCode::Startup, GLOBAL)
}

fn shutdown() -> Input {
    ev(EventCode::Shutdown, GLOBAL)
}

fn published(fx: &[Effect]) -> Vec<EventCode> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Publish(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn spawns(fx: &[Effect]) -> usize {
    fx.iter().filter(|e| **e == Effect::Spawn).count()
}

fn timer_set(fx: &[Effect], timer: Timer) -> Option<Duration> {
    fx.iter().find_map(|e| match e {
        Effect::SetTimer(t, d) if *t == timer => Some(*d),
        _ => None,
    })
}

#[test]
fn a_job_without_when_starts_at_startup_and_stops_after_its_exit() {
    let cfg = job("setup");
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    assert_eq!(spawns(&m.on(startup(), t0)), 1);
    assert_eq!(m.state(), State::Running);
    let fx = m.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert_eq!(
        published(&fx),
        vec![
            EventCode::ExitSuccess,
            EventCode::Stopping,
            EventCode::Stopped
        ]
    );
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn a_failed_exit_publishes_exit_failed() {
    let mut m = machine(&job("x"), &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let fx = m.on(Input::Exited(ExitStatus::Signaled(9)), t0);
    assert_eq!(published(&fx)[0], EventCode::ExitFailed);
}

#[test]
fn once_starts_on_the_first_matching_event_only() {
    let mut cfg = job("app");
    cfg.when = on_event(EventCode::ExitSuccess, "setup", Repeat::Once);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    assert_eq!(spawns(&m.on(startup(), t0)), 0);
    assert_eq!(spawns(&m.on(ev(EventCode::ExitFailed, "setup"), t0)), 0);
    assert_eq!(spawns(&m.on(ev(EventCode::ExitSuccess, "other"), t0)), 0);
    assert_eq!(spawns(&m.on(ev(EventCode::ExitSuccess, "setup"), t0)), 1);
    m.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert_eq!(m.state(), State::Stopped);
    assert_eq!(spawns(&m.on(ev(EventCode::ExitSuccess, "setup"), t0)), 0);
}

#[test]
fn each_starts_every_time_and_coalesces_events_while_running() {
    let mut cfg = job("onchange");
    cfg.when = on_event(EventCode::Changed, "watch.db", Repeat::Each);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    assert_eq!(spawns(&m.on(ev(EventCode::Changed, "watch.db"), t0)), 1);
    // Two more changes while it runs: one rerun, after it exits.
    assert_eq!(spawns(&m.on(ev(EventCode::Changed, "watch.db"), t0)), 0);
    assert_eq!(spawns(&m.on(ev(EventCode::Changed, "watch.db"), t0)), 0);
    assert_eq!(spawns(&m.on(Input::Exited(ExitStatus::Exited(0)), t0)), 1);
    assert_eq!(spawns(&m.on(Input::Exited(ExitStatus::Exited(0)), t0)), 0);
    assert_eq!(m.state(), State::Waiting);
    assert_eq!(spawns(&m.on(ev(EventCode::Changed, "watch.db"), t0)), 1);
}

#[test]
fn restarts_are_limited_and_backed_off() {
    let mut cfg = job("crashy");
    cfg.restarts = Restarts::Limit(3);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let mut delays = vec![];
    for _ in 0..3 {
        let fx = m.on(Input::Exited(ExitStatus::Exited(1)), t0);
        assert_eq!(m.state(), State::Restarting);
        delays.push(timer_set(&fx, Timer::Restart).unwrap());
        assert_eq!(spawns(&m.on(Input::Timer(Timer::Restart), t0)), 1);
    }
    assert_eq!(
        delays,
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
    m.on(Input::Exited(ExitStatus::Exited(1)), t0);
    assert_eq!(m.state(), State::Stopped);
    assert_eq!(m.restarts, 3);
}

#[test]
fn backoff_is_capped_and_reset_by_a_long_run() {
    let mut cfg = job("crashy");
    cfg.restarts = Restarts::Unlimited;
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let mut last = Duration::ZERO;
    for _ in 0..20 {
        let fx = m.on(Input::Exited(ExitStatus::Exited(1)), t0);
        last = timer_set(&fx, Timer::Restart).unwrap();
        m.on(Input::Timer(Timer::Restart), t0);
    }
    assert_eq!(last, Backoff::default().max);
    // A run longer than reset_after restarts at once.
    let later = t0 + Duration::from_secs(60);
    m.on(Input::Exited(ExitStatus::Exited(1)), t0);
    m.on(Input::Timer(Timer::Restart), later);
    let fx = m.on(
        Input::Exited(ExitStatus::Exited(1)),
        later + Duration::from_secs(11),
    );
    assert_eq!(spawns(&fx), 1);
    assert_eq!(m.state(), State::Running);
}

#[test]
fn interval_jobs_run_at_startup_then_on_each_tick_within_their_restart_limit() {
    let mut cfg = job("task");
    cfg.when = When::Interval(Duration::from_secs(5));
    cfg.restarts = Restarts::Limit(1);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    let fx = m.on(startup(), t0);
    assert_eq!(spawns(&fx), 1);
    assert_eq!(
        timer_set(&fx, Timer::Interval),
        Some(Duration::from_secs(5))
    );
    m.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert_eq!(m.state(), State::Waiting);
    assert_eq!(spawns(&m.on(Input::Timer(Timer::Interval), t0)), 1);
    m.on(Input::Exited(ExitStatus::Exited(0)), t0);
    let fx = m.on(Input::Timer(Timer::Interval), t0);
    assert_eq!(spawns(&fx), 0);
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn an_interval_job_running_at_its_last_tick_stops_when_that_run_ends() {
    let mut cfg = job("task");
    cfg.when = When::Interval(Duration::from_secs(5));
    cfg.restarts = Restarts::Limit(0);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    assert_eq!(spawns(&m.on(startup(), t0)), 1);
    // The tick finds the run still going and no restarts left.
    assert_eq!(spawns(&m.on(Input::Timer(Timer::Interval), t0)), 0);
    assert_eq!(m.state(), State::Running);
    let fx = m.on(Input::Exited(ExitStatus::Signaled(9)), t0);
    assert_eq!(m.state(), State::Stopped);
    assert_eq!(
        published(&fx),
        [
            EventCode::ExitFailed,
            EventCode::Stopping,
            EventCode::Stopped
        ]
    );
}

#[test]
fn an_exec_timeout_kills_the_group() {
    let mut cfg = job("slow");
    cfg.timeout = Some(Duration::from_secs(1));
    let mut m = machine(&cfg, &[]);
    let fx = m.on(startup(), Instant::now());
    assert_eq!(
        timer_set(&fx, Timer::ExecTimeout),
        Some(Duration::from_secs(1))
    );
    let fx = m.on(Input::Timer(Timer::ExecTimeout), Instant::now());
    assert_eq!(fx, vec![Effect::Signal(Signal::SIGKILL)]);
}

#[test]
fn when_timeout_gives_up_waiting_and_publishes_timer_expired() {
    let mut cfg = job("late");
    cfg.when = When::Event {
        pattern: EventPattern {
            code: EventCode::Healthy,
            source: "db".into(),
        },
        repeat: Repeat::Once,
        timeout: Some(Duration::from_secs(2)),
    };
    let mut m = machine(&cfg, &[]);
    let fx = m.on(startup(), Instant::now());
    assert_eq!(
        timer_set(&fx, Timer::WhenTimeout),
        Some(Duration::from_secs(2))
    );
    let fx = m.on(Input::Timer(Timer::WhenTimeout), Instant::now());
    assert_eq!(published(&fx)[0], EventCode::TimerExpired);
    assert_eq!(m.state(), State::Stopped);
    assert_eq!(
        spawns(&m.on(ev(EventCode::Healthy, "db"), Instant::now())),
        0
    );
}

#[test]
fn health_events_are_published_on_transitions_only() {
    let mut cfg = job("web");
    cfg.health = Some(health_every_second());
    cfg.service = Some(ServiceConfig {
        port: 80,
        ..ServiceConfig::default()
    });
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    let fx = m.on(startup(), t0);
    assert!(fx.contains(&Effect::Service(ServiceAction::Register)));
    assert_eq!(
        timer_set(&fx, Timer::HealthTick),
        Some(Duration::from_secs(1))
    );
    assert!(
        m.on(Input::Timer(Timer::HealthTick), t0)
            .contains(&Effect::CheckHealth)
    );
    let fx = m.on(Input::HealthChecked(true), t0);
    assert_eq!(published(&fx), vec![EventCode::Healthy]);
    assert!(fx.contains(&Effect::Service(ServiceAction::Pass)));
    let fx = m.on(Input::HealthChecked(true), t0);
    assert!(published(&fx).is_empty(), "no event when nothing changed");
    assert!(
        fx.contains(&Effect::Service(ServiceAction::Pass)),
        "TTL still refreshed"
    );
    let fx = m.on(Input::HealthChecked(false), t0);
    assert_eq!(published(&fx), vec![EventCode::Unhealthy]);
    assert!(fx.contains(&Effect::Service(ServiceAction::Fail)));
}

#[test]
fn maintenance_deregisters_and_pauses_health_checks() {
    let mut cfg = job("web");
    cfg.health = Some(health_every_second());
    cfg.service = Some(ServiceConfig::default());
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let fx = m.on(ev(EventCode::EnterMaintenance, GLOBAL), t0);
    assert!(fx.contains(&Effect::Service(ServiceAction::Deregister)));
    assert_eq!(m.health(), Health::Maintenance);
    assert!(
        !m.on(Input::Timer(Timer::HealthTick), t0)
            .contains(&Effect::CheckHealth)
    );
    assert!(m.on(Input::HealthChecked(true), t0).is_empty());
    let fx = m.on(ev(EventCode::ExitMaintenance, GLOBAL), t0);
    assert!(fx.contains(&Effect::Service(ServiceAction::Register)));
    assert_eq!(m.health(), Health::Unknown);
}

#[test]
fn shutdown_deregisters_before_sigterm_and_stops_after_the_exit() {
    let mut cfg = job("app");
    cfg.service = Some(ServiceConfig::default());
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let fx = m.on(shutdown(), t0);
    let dereg = fx
        .iter()
        .position(|e| *e == Effect::Service(ServiceAction::Deregister))
        .unwrap();
    let term = fx
        .iter()
        .position(|e| *e == Effect::Signal(Signal::SIGTERM))
        .unwrap();
    assert!(dereg < term);
    assert_eq!(published(&fx), vec![EventCode::Stopping]);
    assert_eq!(m.state(), State::Stopping);
    let fx = m.on(Input::Exited(ExitStatus::Signaled(15)), t0);
    assert_eq!(
        published(&fx),
        vec![EventCode::ExitFailed, EventCode::Stopped]
    );
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn a_job_waits_for_its_stop_hooks_before_sigterm() {
    let app = job("app");
    let mut pre_stop = job("preStop");
    pre_stop.when = on_event(EventCode::Stopping, "app", Repeat::Once);
    let mut post_stop = job("postStop");
    post_stop.when = on_event(EventCode::Stopped, "app", Repeat::Once);
    let all = vec![app.clone(), pre_stop.clone(), post_stop.clone()];
    let mut a = machine(&app, &all);
    let mut pre = machine(&pre_stop, &all);
    let mut post = machine(&post_stop, &all);
    let t0 = Instant::now();
    for m in [&mut a, &mut pre, &mut post] {
        m.on(startup(), t0);
    }
    let fx = a.on(shutdown(), t0);
    assert!(
        !fx.contains(&Effect::Signal(Signal::SIGTERM)),
        "waits for preStop"
    );
    // The hooks ignore the shutdown and wait for their event.
    for hook in [&mut pre, &mut post] {
        let fx = hook.on(shutdown(), t0);
        assert!(published(&fx).is_empty() && spawns(&fx) == 0, "{fx:?}");
        assert_eq!(hook.state(), State::Waiting);
    }
    assert_eq!(spawns(&pre.on(ev(EventCode::Stopping, "app"), t0)), 1);
    let fx = pre.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert!(published(&fx).contains(&EventCode::Stopped));
    assert_eq!(pre.state(), State::Stopped);
    let fx = a.on(ev(EventCode::Stopped, "preStop"), t0);
    assert!(fx.contains(&Effect::Signal(Signal::SIGTERM)));
    let fx = a.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert!(published(&fx).contains(&EventCode::Stopped));
    assert_eq!(spawns(&post.on(ev(EventCode::Stopped, "app"), t0)), 1);
    post.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert_eq!(post.state(), State::Stopped);
}

#[test]
fn stop_timeout_bounds_the_wait_for_hooks_and_the_kill() {
    let mut app = job("app");
    app.stop_timeout = Some(Duration::from_secs(3));
    let mut hook = job("hook");
    hook.when = on_event(EventCode::Stopping, "app", Repeat::Once);
    let all = vec![app.clone(), hook];
    let mut a = machine(&app, &all);
    let t0 = Instant::now();
    a.on(startup(), t0);
    let fx = a.on(shutdown(), t0);
    assert_eq!(
        timer_set(&fx, Timer::StopGrace),
        Some(Duration::from_secs(3))
    );
    let fx = a.on(Input::Timer(Timer::StopGrace), t0);
    assert!(fx.contains(&Effect::Signal(Signal::SIGTERM)));
    assert_eq!(
        timer_set(&fx, Timer::KillDeadline),
        Some(Duration::from_secs(3))
    );
    let fx = a.on(Input::Timer(Timer::KillDeadline), t0);
    assert_eq!(fx, vec![Effect::Signal(Signal::SIGKILL)]);
}

#[test]
fn waiting_jobs_stop_at_once_on_shutdown() {
    let mut cfg = job("onchange");
    cfg.when = on_event(EventCode::Changed, "watch.x", Repeat::Each);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    let fx = m.on(shutdown(), t0);
    assert_eq!(
        published(&fx),
        vec![EventCode::Stopping, EventCode::Stopped]
    );
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn force_kill_sends_sigkill_to_a_running_job() {
    let mut m = machine(&job("stubborn"), &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    m.on(shutdown(), t0);
    let fx = m.on(Input::ForceKill, t0);
    assert_eq!(fx, vec![Effect::Signal(Signal::SIGKILL)]);
    m.on(Input::Exited(ExitStatus::Signaled(9)), t0);
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn signal_events_start_jobs() {
    let mut cfg = job("on-hup");
    cfg.when = on_event(EventCode::SigHup, "SIGHUP", Repeat::Each);
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    m.on(startup(), t0);
    assert_eq!(spawns(&m.on(ev(EventCode::SigHup, "SIGHUP"), t0)), 1);
    assert_eq!(spawns(&m.on(ev(EventCode::SigUsr2, "SIGUSR2"), t0)), 0);
}

#[test]
fn a_job_without_exec_is_active_without_a_process() {
    let mut cfg = job("sidecar");
    cfg.exec = None;
    cfg.service = Some(ServiceConfig::default());
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    let fx = m.on(startup(), t0);
    assert_eq!(spawns(&fx), 0);
    assert!(fx.contains(&Effect::Service(ServiceAction::Register)));
    assert_eq!(m.state(), State::Running);
    let fx = m.on(shutdown(), t0);
    assert!(fx.contains(&Effect::Service(ServiceAction::Deregister)));
    assert_eq!(m.state(), State::Stopped);
}

#[test]
fn shutdown_deregisters_before_the_stop_hooks_run() {
    let mut app = job("app");
    app.service = Some(ServiceConfig::default());
    let mut pre_stop = job("preStop");
    pre_stop.when = on_event(EventCode::Stopping, "app", Repeat::Once);
    let all = vec![app.clone(), pre_stop];
    let mut a = machine(&app, &all);
    let t0 = Instant::now();
    a.on(startup(), t0);
    let fx = a.on(shutdown(), t0);
    let dereg = fx
        .iter()
        .position(|e| *e == Effect::Service(ServiceAction::Deregister))
        .expect("deregistered at once");
    let stopping = fx
        .iter()
        .position(|e| *e == Effect::Publish(EventCode::Stopping))
        .unwrap();
    assert!(dereg < stopping, "{fx:?}");
    // Once is enough: the hook's end and the exit do not deregister again.
    let fx = a.on(ev(EventCode::Stopped, "preStop"), t0);
    assert!(fx.contains(&Effect::Signal(Signal::SIGTERM)), "{fx:?}");
    assert!(!fx.contains(&Effect::Service(ServiceAction::Deregister)));
    let fx = a.on(Input::Exited(ExitStatus::Exited(0)), t0);
    assert!(!fx.contains(&Effect::Service(ServiceAction::Deregister)));
    assert_eq!(a.state(), State::Stopped);
}

#[test]
fn a_health_checked_job_without_port_makes_no_consul_calls() {
    let mut cfg = job("worker");
    cfg.health = Some(health_every_second());
    let mut m = machine(&cfg, &[]);
    let t0 = Instant::now();
    let mut fx = m.on(startup(), t0);
    fx.extend(m.on(Input::HealthChecked(true), t0));
    fx.extend(m.on(ev(EventCode::EnterMaintenance, GLOBAL), t0));
    fx.extend(m.on(ev(EventCode::ExitMaintenance, GLOBAL), t0));
    fx.extend(m.on(Input::HealthChecked(false), t0));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Service(_))),
        "{fx:?}"
    );
    assert_eq!(m.health(), Health::Unhealthy);
}
