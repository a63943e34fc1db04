//! The supervisor: starts every job, turns signals into events, runs the
//! shutdown sequence and decides the container's exit code.
//!
//! Shutdown, step by step (SIGTERM, SIGINT, or the main job ending):
//! 1. publish `shutdown`; every job publishes `stopping`;
//! 2. a job with stop hooks (jobs that start on its `stopping`) waits for
//!    them to finish, at most its `stopTimeout`;
//! 3. the job deregisters from Consul, then its process group gets SIGTERM;
//! 4. when the group is empty the job publishes `stopped` (post-stop hooks run);
//! 5. autopilot exits as soon as every job is stopped; whatever is still
//!    running when the top-level `stopTimeout` runs out gets SIGKILL.

use crate::config::model::Config;
use crate::discovery::{NoDiscovery, ServiceRegistry};
use crate::environ::Environ;
use crate::events::{Bus, Event, EventCode};
use crate::jobs::machine::Rules;
use crate::jobs::runner::{Command, Report, Runner, Shared};
use crate::jobs::status::StatusBoard;
use crate::process::{self, ExitStatus, Reaper};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// After the shutdown deadline's SIGKILL, how long to wait for the kernel to
/// deliver the last exits before giving up on them.
const AFTER_KILL_GRACE: Duration = Duration::from_secs(1);

/// Signals forwarded to the main job (or to every running job when no job is
/// marked `main`), so an app behind autopilot still gets them.
const FORWARDED: [Signal; 5] = [
    Signal::SIGUSR1,
    Signal::SIGQUIT,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

/// Why autopilot started shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShutdownCause {
    Signal,
    MainJobEnded,
    AllJobsDone,
}

/// Runs `config` until shutdown; returns the container's exit code.
pub async fn run(config: Config, registry: Option<Arc<dyn ServiceRegistry>>) -> i32 {
    let is_pid1 = process::become_reaper();
    let reaper = match Reaper::start() {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot watch for child exits: {e}");
            return 1;
        }
    };
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return 1;
        }
    };
    let shared = Shared {
        bus: Bus::new(),
        reaper,
        environ: Environ::new(std::env::vars().collect()),
        registry: registry.unwrap_or_else(|| Arc::new(NoDiscovery)),
        board: StatusBoard::default(),
    };
    let main_job = config.jobs.iter().find(|j| j.main).map(|j| j.name.clone());

    let mut tasks = JoinSet::new();
    let mut commands: HashMap<String, mpsc::Sender<Command>> = HashMap::new();
    for job in &config.jobs {
        let rules = Rules::new(job, &config.jobs);
        let (runner, tx) = Runner::new(Arc::new(job.clone()), rules, shared.clone());
        commands.insert(job.name.clone(), tx);
        tasks.spawn(runner.run());
    }
    log::info!(
        "autopilot {} started as pid {} with {} jobs",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        config.jobs.len()
    );
    shared.bus.publish(Event::global(EventCode::Startup));

    let mut outcome = Outcome::new(main_job.clone());
    let mut shutdown: Option<(ShutdownCause, Instant)> = None;
    let mut killed_at: Option<Instant> = None;
    loop {
        let deadline = match (shutdown, killed_at) {
            (_, Some(at)) => Some(at + AFTER_KILL_GRACE),
            (Some((_, at)), None) => Some(at + config.stop_timeout),
            _ => None,
        };
        tokio::select! {
            done = tasks.join_next() => match done {
                None => break,
                Some(Ok(report)) => {
                    commands.remove(&report.name);
                    let ended_main = outcome.job_ended(&report, shutdown.is_some());
                    if ended_main && shutdown.is_none() {
                        log::info!("main job `{}` ended ({}): shutting down",
                            report.name, report.last_exit.map(|e| e.to_string()).unwrap_or("never ran".into()));
                        shutdown = Some(begin_shutdown(&shared.bus, ShutdownCause::MainJobEnded));
                    }
                    if tasks.is_empty() {
                        if shutdown.is_none() {
                            log::info!("every job is done");
                            shutdown = Some((ShutdownCause::AllJobsDone, Instant::now()));
                        }
                        break;
                    }
                }
                Some(Err(e)) => log::error!("a job task failed: {e}"),
            },
            sig = signals.next() => match sig {
                Signal::SIGTERM | Signal::SIGINT => {
                    if shutdown.is_none() {
                        log::info!("received {sig}: shutting down");
                        shutdown = Some(begin_shutdown(&shared.bus, ShutdownCause::Signal));
                    }
                }
                Signal::SIGHUP => shared.bus.publish(Event::new(EventCode::SigHup, "SIGHUP")),
                Signal::SIGUSR2 => shared.bus.publish(Event::new(EventCode::SigUsr2, "SIGUSR2")),
                other => forward(other, main_job.as_deref(), &commands).await,
            },
            _ = sleep_until(deadline) => {
                if killed_at.is_some() {
                    log::warn!("{} jobs did not report their exit after SIGKILL; exiting anyway", tasks.len());
                    break;
                }
                log::warn!("stop timeout of {:?} reached: killing what is left", config.stop_timeout);
                for tx in commands.values() {
                    let _ = tx.send(Command::ForceKill).await;
                }
                if is_pid1 {
                    // As PID 1 we own the namespace: nothing may outlive us.
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
                }
                killed_at = Some(Instant::now());
            }
        }
    }
    let cause = shutdown.map(|(c, _)| c).unwrap_or(ShutdownCause::AllJobsDone);
    let code = outcome.exit_code();
    log::info!(
        "autopilot exiting with code {code} ({}; {} orphans reaped)",
        match cause {
            ShutdownCause::Signal => "stopped by signal",
            ShutdownCause::MainJobEnded => "main job ended",
            ShutdownCause::AllJobsDone => "all jobs done",
        },
        shared.reaper.orphans_reaped()
    );
    code
}

fn begin_shutdown(bus: &Bus, cause: ShutdownCause) -> (ShutdownCause, Instant) {
    bus.publish(Event::global(EventCode::Shutdown));
    (cause, Instant::now())
}

async fn forward(sig: Signal, main_job: Option<&str>, commands: &HashMap<String, mpsc::Sender<Command>>) {
    log::debug!("forwarding {sig}");
    for (name, tx) in commands {
        if main_job.is_none_or(|m| m == name) {
            let _ = tx.send(Command::Signal(sig)).await;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The exit-code rule (README "Exit codes"):
/// - with a job marked `main: true`: that job's last exit code (128+signal
///   for a signal death; 0 if it never ran);
/// - otherwise: the code of the last job that ended for good with a failure
///   before shutdown began, or 0.
struct Outcome {
    main_job: Option<String>,
    main_exit: Option<ExitStatus>,
    last_failure: Option<ExitStatus>,
}

impl Outcome {
    fn new(main_job: Option<String>) -> Outcome {
        Outcome {
            main_job,
            main_exit: None,
            last_failure: None,
        }
    }

    /// Records a job's end; returns whether it was the main job.
    fn job_ended(&mut self, report: &Report, shutting_down: bool) -> bool {
        if self.main_job.as_deref() == Some(report.name.as_str()) {
            self.main_exit = report.last_exit;
            return true;
        }
        if !shutting_down && let Some(exit) = report.last_exit.filter(|e| !e.success()) {
            self.last_failure = Some(exit);
        }
        false
    }

    fn exit_code(&self) -> i32 {
        match &self.main_job {
            Some(_) => self.main_exit.map(ExitStatus::code).unwrap_or(0),
            None => self.last_failure.map(ExitStatus::code).unwrap_or(0),
        }
    }
}

/// Every signal autopilot handles, merged into one stream. Handling a signal
/// in PID 1 is required: the kernel gives PID 1 no default actions.
struct Signals {
    rx: mpsc::UnboundedReceiver<Signal>,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handled = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR2]
            .into_iter()
            .chain(FORWARDED);
        for sig in handled {
            let mut stream = signal(SignalKind::from_raw(sig as i32))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Signals { rx })
    }

    async fn next(&mut self) -> Signal {
        match self.rx.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }
}
