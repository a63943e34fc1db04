//! Runs one job: feeds the state machine its inputs and carries out its effects.
//!
//! The runner owns the job's process, timers and health check. It waits only
//! on events, exits, timer deadlines and check results (no polling), so an
//! idle job costs nothing.

use super::health::{self, CheckOutcome, RunningCheck};
use super::machine::{Effect, Health, Input, Machine, Rules, ServiceAction, State, Timer};
use super::narrate::{self, Next};
use super::registry::ServiceRegistry;
use super::status::{JobStatus, Registration, StatusBoard};
use crate::config::duration;
use crate::config::model::JobConfig;
use crate::environ::Environ;
use crate::events::{Bus, Event, EventCode};
use crate::process::{self, ExitStatus, Output, Reaper};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

/// How long deregistration may hold up a job's SIGTERM.
const DEREGISTER_BUDGET: Duration = Duration::from_secs(2);

/// What the supervisor (or the control socket) can ask of a running job.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    /// The shutdown deadline passed: SIGKILL and be done.
    ForceKill,
    /// Send a signal to the job's process group, if it runs.
    Signal(Signal),
    /// Stop this job alone, gracefully (reload removed or changed it).
    Stop,
    /// Deliver the `startup` event to this job alone (a job added by reload).
    Startup,
}

/// Everything a job shares with the rest of the supervisor.
#[derive(Clone)]
pub struct Shared {
    pub bus: Bus,
    pub reaper: Reaper,
    pub environ: Environ,
    pub registry: Arc<dyn ServiceRegistry>,
    pub board: StatusBoard,
    /// Set once shutdown has begun, before the `shutdown` event is
    /// published: a runner that lagged on the bus (and so may have lost the
    /// event) still learns of it here.
    pub shutdown: watch::Receiver<bool>,
}

/// How the supervisor reaches a runner. Unbounded, so the supervisor's loop
/// never waits on a busy job (one awaiting its deregistration) and no
/// command (a `Stop` above all) is ever refused or dropped. What is queued
/// stays small: commands come from the supervisor alone, at most one per
/// signal, request or reload it handles, and the runner takes them in
/// microseconds once it is free.
pub type Mailbox = mpsc::UnboundedSender<Command>;

/// How the job ended, for the container's exit code.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub last_exit: Option<ExitStatus>,
}

pub struct Runner {
    config: Arc<JobConfig>,
    machine: Machine,
    shared: Shared,
    events: broadcast::Receiver<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Whether the `shutdown` event (or, after a lag, the flag) reached the
    /// machine, so that it gets it exactly once.
    saw_shutdown: bool,
    timers: HashMap<Timer, Instant>,
    /// The running process (also its process group id) and its exit.
    process: Option<(Pid, oneshot::Receiver<ExitStatus>)>,
    /// The leader exited while stopping but its group still has members.
    exit_pending: Option<(Pid, ExitStatus)>,
    check: Option<RunningCheck>,
    /// When the running check started, for the health-check duration metric.
    check_started: Option<std::time::Instant>,
    /// What we last asked of the registry, for the status view.
    service: Option<ServiceAction>,
    check_results_tx: mpsc::Sender<CheckOutcome>,
    check_results: mpsc::Receiver<CheckOutcome>,
    /// When the running process started, to say how long it ran.
    spawned_at: Option<std::time::Instant>,
    /// The state last recorded in the journal, and since when (ms since
    /// the Unix epoch) the job has been in it.
    journaled_state: State,
    state_since_ms: u64,
}

impl Runner {
    /// Subscribes to the bus now, so no event published after this call is missed.
    pub fn new(config: Arc<JobConfig>, rules: Rules, shared: Shared) -> (Runner, Mailbox) {
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (check_results_tx, check_results) = mpsc::channel(1);
        let mut runner = Runner {
            machine: Machine::new(rules),
            events: shared.bus.subscribe(),
            config,
            shared,
            commands,
            saw_shutdown: false,
            timers: HashMap::new(),
            process: None,
            exit_pending: None,
            check: None,
            check_started: None,
            service: None,
            check_results_tx,
            check_results,
            spawned_at: None,
            journaled_state: State::Waiting,
            state_since_ms: super::status::now_ms(),
        };
        runner.publish_status();
        (runner, cmd_tx)
    }

    pub async fn run(mut self) -> Report {
        let mut reaped = self.shared.reaper.reaped_notifications();
        loop {
            let next_timer = self
                .timers
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(t, at)| (*t, *at));
            let input = tokio::select! {
                status = wait_exit(&mut self.process) => {
                    let (pid, _) = self.process.take().expect("exit without a process");
                    self.shared.environ.set_job_pid(&self.config.name, None);
                    if self.machine.state() == State::Stopping && process::group_alive(pid) {
                        // Wait for the rest of the group before calling it stopped.
                        self.exit_pending = Some((pid, status));
                        continue;
                    }
                    Input::Exited(status)
                }
                changed = reaped.changed(), if self.exit_pending.is_some() => {
                    if changed.is_err() {
                        continue;
                    }
                    let (pid, status) = self.exit_pending.expect("checked above");
                    if process::group_alive(pid) {
                        continue;
                    }
                    self.exit_pending = None;
                    Input::Exited(status)
                }
                event = self.events.recv() => match event {
                    Ok(event) if is_shutdown(&event) => {
                        if std::mem::replace(&mut self.saw_shutdown, true) {
                            continue;
                        }
                        Input::Event(event)
                    }
                    Ok(event) => Input::Event(event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.shared.bus.record_lost(n);
                        log::error!("{}: missed {} (event bus overrun)", self.config.name, crate::logging::plural(n, "event", "events"));
                        if *self.shared.shutdown.borrow() && !self.saw_shutdown {
                            // The lost events may have held it.
                            self.saw_shutdown = true;
                            Input::Event(Event::global(EventCode::Shutdown))
                        } else {
                            continue;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => Input::ForceKill,
                },
                _ = sleep_until(next_timer.map(|(_, at)| at)) => {
                    let (timer, _) = next_timer.expect("sleep only with a timer");
                    self.timers.remove(&timer);
                    Input::Timer(timer)
                }
                Some(outcome) = self.check_results.recv() => {
                    self.check = None;
                    if let Some(started) = self.check_started.take() {
                        self.shared.board.health_checked(&self.config.name, outcome.passed, started.elapsed());
                    }
                    self.on_check(outcome).await;
                    continue;
                }
                Some(cmd) = self.commands.recv() => match cmd {
                    Command::ForceKill => {
                        if let Some((pid, status)) = self.exit_pending.take() {
                            process::signal_group(pid, Signal::SIGKILL);
                            Input::Exited(status)
                        } else {
                            Input::ForceKill
                        }
                    }
                    Command::Signal(sig) => {
                        if let Some((pid, _)) = &self.process {
                            process::signal_group(*pid, sig);
                        }
                        continue;
                    }
                    Command::Stop => Input::Stop,
                    Command::Startup => Input::Event(Event::global(crate::events::EventCode::Startup)),
                },
            };
            let exited = match input {
                Input::Exited(status) => {
                    Some((status, self.machine.state(), self.machine.restarts))
                }
                _ => None,
            };
            let effects = self.machine.on(input, std::time::Instant::now());
            if let Some((status, state, restarts)) = exited {
                self.log_exit(status, (state, restarts), &effects);
            }
            for effect in effects {
                self.apply(effect).await;
            }
            self.publish_status();
            if self.machine.state() == State::Stopped
                && self.process.is_none()
                && self.exit_pending.is_none()
            {
                break;
            }
        }
        if let Some(check) = self.check.take() {
            check.cancel();
        }
        Report {
            name: self.config.name.clone(),
            last_exit: self.machine.last_exit,
        }
    }

    /// A check result: fed to the machine, and a health transition logged
    /// with the failing check's reason.
    async fn on_check(&mut self, outcome: CheckOutcome) {
        let before = self.machine.health();
        let effects = self.machine.on(
            Input::HealthChecked(outcome.passed),
            std::time::Instant::now(),
        );
        let after = self.machine.health();
        let name = &self.config.name;
        if after != before && matches!(after, Health::Healthy | Health::Unhealthy) {
            let (level, line) = narrate::health_line(outcome.passed, outcome.reason.as_deref());
            log::log!(level, "{name}: {line}");
        } else if let Some(reason) = &outcome.reason {
            log::debug!("{name}: still unhealthy: {reason}");
        }
        for effect in effects {
            self.apply(effect).await;
        }
        self.publish_status();
    }

    /// Says how the process ended, how long it ran and what comes next.
    /// `before` is the state and restart count before the exit.
    fn log_exit(&self, status: ExitStatus, before: (State, u32), effects: &[Effect]) {
        let ran_for = self.spawned_at.map(|t| t.elapsed()).unwrap_or_default();
        let restart_delay = effects.iter().find_map(|e| match e {
            Effect::SetTimer(Timer::Restart, after) => Some(*after),
            _ => None,
        });
        let respawns = effects.contains(&Effect::Spawn);
        let restarted = self.machine.restarts > before.1;
        let interval = matches!(self.config.when, crate::config::model::When::Interval(_));
        let next = match self.machine.state() {
            _ if before.0 == State::Stopping => Next::Stopped,
            State::Restarting => Next::Restart {
                delay: restart_delay.unwrap_or_default(),
                number: self.machine.restarts,
            },
            State::Running if respawns && restarted && !interval => Next::Restart {
                delay: std::time::Duration::ZERO,
                number: self.machine.restarts,
            },
            State::Running => Next::RunAgain,
            State::Waiting if interval => Next::NextRun(
                self.timers
                    .get(&Timer::Interval)
                    .map(|at| at.saturating_duration_since(Instant::now())),
            ),
            State::Waiting => Next::WaitTrigger,
            State::Stopping | State::Stopped => Next::Done,
        };
        let (level, line) = narrate::exit_line(status, ran_for, &next, self.config.restarts);
        // A main job's last exit is autopilot's own exit code, passed on as
        // the container's: news, not a warning (and tini mode stays quiet).
        let level = if self.config.main && next == Next::Done {
            log::Level::Info
        } else {
            level
        };
        log::log!(level, "{}: {line}", self.config.name);
    }

    async fn apply(&mut self, effect: Effect) {
        let name = self.config.name.clone();
        match effect {
            Effect::Spawn => self.spawn(),
            Effect::Signal(sig) => {
                if let Some((pid, _)) = &self.process {
                    log::debug!("{name}: sending {sig} to process group {pid}");
                    process::signal_group(*pid, sig);
                } else if let Some((pid, _)) = &self.exit_pending {
                    process::signal_group(*pid, sig);
                }
            }
            Effect::Publish(code) => {
                let mut details = serde_json::Map::new();
                if let (EventCode::ExitSuccess | EventCode::ExitFailed, Some(exit)) =
                    (code, self.machine.last_exit)
                {
                    details.insert("exitCode".into(), exit.code().into());
                    details.insert("exit".into(), narrate::ended(exit).into());
                }
                self.shared
                    .bus
                    .publish_with(Event::new(code, &name), details);
            }
            Effect::SetTimer(timer, after) => {
                self.timers
                    .insert(timer, duration::later(Instant::now(), after));
            }
            Effect::CancelTimer(timer) => {
                self.timers.remove(&timer);
            }
            Effect::CheckHealth => {
                if self.check.as_ref().is_some_and(|c| !c.is_finished()) {
                    log::debug!("{name}: previous health check still running, skipping this one");
                    return;
                }
                if let Some(health) = &self.config.health {
                    self.check = Some(health::start(
                        &name,
                        health,
                        &self.shared.environ,
                        &self.shared.reaper,
                        self.check_results_tx.clone(),
                    ));
                    self.check_started = Some(std::time::Instant::now());
                }
            }
            Effect::CancelHealthCheck => {
                if let Some(check) = self.check.take() {
                    check.cancel();
                }
            }
            Effect::Service(action) => {
                self.service = Some(action);
                let done = self.shared.registry.apply(&name, action);
                if action == ServiceAction::Deregister {
                    // Clients must stop being sent here before the process stops.
                    if tokio::time::timeout(DEREGISTER_BUDGET, done).await.is_err() {
                        log::warn!(
                            "{name}: Consul did not confirm the deregistration within \
                             {DEREGISTER_BUDGET:?}; going on without it"
                        );
                    }
                } else {
                    tokio::spawn(done);
                }
            }
        }
    }

    fn spawn(&mut self) {
        let Some(exec) = &self.config.exec else {
            return;
        };
        let output = if self.config.logging_raw {
            Output::Raw
        } else {
            Output::Log(self.config.name.clone())
        };
        let start = if self.config.main && process::main_gets_stdin() {
            process::spawn_main
        } else {
            process::spawn
        };
        match start(exec, &self.shared.environ.snapshot(), &output) {
            Ok(pid) => {
                self.spawned_at = Some(std::time::Instant::now());
                let exit = self.shared.reaper.watch(pid);
                log::debug!(
                    "{}: started `{}` as pid {pid}",
                    self.config.name,
                    exec.display()
                );
                self.shared
                    .environ
                    .set_job_pid(&self.config.name, Some(pid.as_raw()));
                self.process = Some((pid, exit));
            }
            Err(e) => {
                log::error!(
                    "{}: cannot start `{}`: {}",
                    self.config.name,
                    exec.display(),
                    e.error
                );
                self.spawned_at = Some(std::time::Instant::now());
                // Report it as the shell would, through the normal exit path.
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(ExitStatus::Exited(e.exit_code()));
                self.process = Some((Pid::from_raw(0), rx));
            }
        }
    }

    fn publish_status(&mut self) {
        let state = self.machine.state();
        if state != self.journaled_state {
            self.shared.bus.journal().state(
                &self.config.name,
                self.journaled_state.as_str(),
                state.as_str(),
            );
            self.journaled_state = state;
            self.state_since_ms = super::status::now_ms();
        }
        let mut status = JobStatus::new(&self.config.name, self.config.service.is_some());
        status.state = self.machine.state();
        status.since_ms = self.state_since_ms;
        status.health = self.machine.health();
        status.pid = self
            .process
            .as_ref()
            .map(|(p, _)| p.as_raw())
            .filter(|p| *p > 0);
        status.restarts = self.machine.restarts;
        status.set_exit(self.machine.last_exit);
        status.service = self.service.map(|action| match action {
            ServiceAction::Register => Registration::Registered,
            ServiceAction::Pass => Registration::Passing,
            ServiceAction::Fail => Registration::Critical,
            ServiceAction::Deregister => Registration::Deregistered,
        });
        self.shared.board.update(status);
    }
}

fn is_shutdown(event: &Event) -> bool {
    event.code == EventCode::Shutdown && event.source.as_ref() == crate::events::GLOBAL
}

async fn wait_exit(process: &mut Option<(Pid, oneshot::Receiver<ExitStatus>)>) -> ExitStatus {
    match process {
        Some((_, rx)) => match rx.await {
            Ok(status) => status,
            // The reaper never drops a registered sender, so this is unreachable
            // in practice; treat it as a kill rather than hang.
            Err(_) => ExitStatus::Signaled(Signal::SIGKILL as i32),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::registry::NoDiscovery;
    use std::time::Duration;

    /// A runner for a job that waits for an event that never comes (so it
    /// spawns nothing), and the flag the supervisor sets at shutdown.
    fn waiting_runner(bus: &Bus) -> (Runner, Mailbox, watch::Sender<bool>) {
        let text =
            "{jobs: [{name: 'hook', exec: 'true', when: {source: 'never', once: 'exitSuccess'}}]}";
        let jobs = crate::config::parse_str(text, "t").unwrap().config.jobs;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shared = Shared {
            bus: bus.clone(),
            reaper: Reaper::inert(),
            environ: Environ::new(Default::default()),
            registry: Arc::new(NoDiscovery),
            board: StatusBoard::default(),
            shutdown,
        };
        let rules = Rules::new(&jobs[0], &jobs);
        let (runner, mailbox) = Runner::new(Arc::new(jobs[0].clone()), rules, shared);
        (runner, mailbox, shutdown_tx)
    }

    /// Stands for "never": a runner that has not stopped by then never will.
    const DEADLINE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_runner_that_lagged_past_the_shutdown_event_still_stops() {
        let bus = Bus::new();
        let (runner, _mailbox, shutdown) = waiting_runner(&bus);
        // As the supervisor does: the flag, then the event; then so many
        // events that the runner's receiver loses the shutdown event.
        shutdown.send_replace(true);
        bus.publish(Event::global(EventCode::Shutdown));
        for _ in 0..2000 {
            bus.publish(Event::new(EventCode::Changed, "watch.other"));
        }
        let report = tokio::time::timeout(DEADLINE, runner.run()).await;
        assert!(report.is_ok(), "the runner never learned of the shutdown");
        assert!(bus.lost_count() > 0, "the runner did not lag");
    }

    #[tokio::test]
    async fn a_runner_acts_on_shutdown_once_when_it_did_not_lag() {
        let bus = Bus::new();
        let (runner, _mailbox, shutdown) = waiting_runner(&bus);
        let mut events = bus.subscribe();
        shutdown.send_replace(true);
        bus.publish(Event::global(EventCode::Shutdown));
        bus.publish(Event::global(EventCode::Shutdown));
        tokio::time::timeout(DEADLINE, runner.run()).await.unwrap();
        let mut stopping = 0;
        while let Ok(event) = events.try_recv() {
            stopping += usize::from(event.code == EventCode::Stopping);
        }
        assert_eq!(stopping, 1);
    }

    #[tokio::test]
    async fn commands_wait_for_a_busy_runner_and_none_is_dropped() {
        let bus = Bus::new();
        let (mut runner, mailbox, _shutdown) = waiting_runner(&bus);
        // The runner is busy (not reading): sending never waits, and the
        // Stop after many signals still arrives.
        for _ in 0..100 {
            mailbox.send(Command::Signal(Signal::SIGWINCH)).unwrap();
        }
        mailbox.send(Command::Stop).unwrap();
        let mut last = None;
        while let Ok(command) = runner.commands.try_recv() {
            last = Some(command);
        }
        assert!(matches!(last, Some(Command::Stop)), "{last:?}");
    }
}
