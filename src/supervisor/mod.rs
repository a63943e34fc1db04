//! The supervisor: starts every job, turns signals into events, applies
//! reloads, runs the shutdown sequence and decides the container's exit code.
//!
//! Shutdown, step by step (SIGTERM, SIGINT, or the main job ending):
//! 1. publish `shutdown`; every advertised job deregisters from Consul, then
//!    every job publishes `stopping`;
//! 2. a job with stop hooks (jobs that start on its `stopping`) waits for
//!    them to finish, at most its `stopTimeout`;
//! 3. the job's process group gets SIGTERM;
//! 4. when the group is empty the job publishes `stopped` (post-stop hooks run);
//! 5. autopilot exits as soon as every job is stopped; whatever is still
//!    running when the top-level `stopTimeout` runs out gets SIGKILL, except
//!    post-stop hooks that can still run: a job killed there still publishes
//!    `stopped`, and its post-stop hooks get [`POST_STOP_GRACE`] to run (they
//!    are cleanup, as in ContainerPilot 3) before they are killed too.
//!
//! Signals follow the config's generation ([`SignalMode`]): for a
//! ContainerPilot 2 config SIGUSR1 toggles maintenance and SIGHUP reloads the
//! config file (through the reload path `main` wires to
//! [`Supervisor::reload_on_sighup`]); for a version 3 config SIGHUP is an
//! event and SIGUSR1 is forwarded.

mod outcome;
mod reload;
mod shutdown;
mod signals;

pub use reload::ReloadSummary;
pub use shutdown::POST_STOP_GRACE;

use crate::config::model::{Config, JobConfig, SignalMode};
use crate::environ::Environ;
use crate::events::{Bus, Event, EventCode};
use crate::jobs::Common;
use crate::jobs::machine::Rules;
use crate::jobs::registry::{NoDiscovery, ServiceRegistry};
use crate::jobs::runner::{Command, Mailbox, Report, Runner, Shared};
use crate::jobs::status::StatusBoard;
use crate::process::{self, Reaper};
use nix::sys::signal::Signal;
use outcome::Outcome;
use shutdown::{Overtime, ShutdownCause};
use signals::Signals;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// When to drop start-up code from memory ([`process::memory`]): once, this
/// long after start, when the jobs have started.
const RELEASE_STARTUP_CODE_AFTER: Duration = Duration::from_secs(1);

/// Requests to the running supervisor (from the control socket).
pub enum Request {
    /// Apply a new, already validated config.
    Reload(Box<Config>, oneshot::Sender<ReloadSummary>),
    /// Enter (`true`) or leave maintenance mode.
    Maintenance(bool),
    /// Send a signal to one job's process group.
    SignalJob(String, Signal, oneshot::Sender<Result<(), String>>),
    /// Shut down as on SIGTERM.
    Shutdown,
    /// Answered at once by the supervisor's loop: the liveness probe's proof
    /// that the loop is turning (a stuck loop never answers).
    Ping(oneshot::Sender<()>),
}

/// The way to a running supervisor's loop, for the control socket and the
/// liveness probe. Cheap to clone.
#[derive(Clone)]
pub struct Requests {
    tx: mpsc::Sender<Request>,
}

impl Requests {
    /// Sends a request; fails only when the supervisor is gone.
    pub async fn send(&self, request: Request) -> Result<(), String> {
        self.tx
            .send(request)
            .await
            .map_err(|_| "autopilot is shutting down".to_string())
    }
}

/// A supervisor built but not yet running: `main` hands its shared parts
/// ([`Supervisor::common`], [`Supervisor::requests`]) to discovery,
/// coordination, control and telemetry, then calls [`Supervisor::run`].
pub struct Supervisor {
    /// The running config; `published` tells everyone else.
    config: Arc<Config>,
    published: watch::Sender<Arc<Config>>,
    common: Common,
    registry: Arc<dyn ServiceRegistry>,
    tasks: JoinSet<Report>,
    commands: HashMap<String, Mailbox>,
    /// Set when shutdown begins (see [`Shared::shutdown`]).
    shutting_down: watch::Sender<bool>,
    /// Jobs stopped by a reload whose new definition starts once they end.
    replacements: HashMap<String, JobConfig>,
    /// Jobs removed by a reload: their end is not an outcome.
    removed: HashSet<String>,
    outcome: Outcome,
    is_pid1: bool,
    signals: Signals,
    requests_tx: mpsc::Sender<Request>,
    requests: mpsc::Receiver<Request>,
    /// Where a ContainerPilot 2 SIGHUP asks for the config to be re-read
    /// (the one reload path, which the control socket also takes).
    sighup_reloads: Option<mpsc::UnboundedSender<()>>,
}

impl Supervisor {
    /// Becomes the reaper, installs the signal handlers and builds the parts
    /// the jobs share. Must be called within the runtime.
    pub fn new(config: Config) -> Result<Supervisor, String> {
        let is_pid1 = process::become_reaper();
        let reaper = Reaper::start().map_err(|e| format!("cannot watch for child exits: {e}"))?;
        let signals = Signals::new().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let (requests_tx, requests) = mpsc::channel(16);
        let config = Arc::new(config);
        let (published, running) = watch::channel(config.clone());
        let common = Common {
            bus: Bus::new(),
            board: StatusBoard::default(),
            environ: Environ::new(std::env::vars().collect()),
            reaper,
            config: running,
        };
        let mut outcome = Outcome::new(None);
        outcome.follow(&config.jobs);
        Ok(Supervisor {
            config,
            published,
            common,
            registry: Arc::new(NoDiscovery),
            tasks: JoinSet::new(),
            commands: HashMap::new(),
            shutting_down: watch::Sender::new(false),
            replacements: HashMap::new(),
            removed: HashSet::new(),
            outcome,
            is_pid1,
            signals,
            requests_tx,
            requests,
            sighup_reloads: None,
        })
    }

    /// What the jobs share with the pieces started beside them.
    pub fn common(&self) -> Common {
        self.common.clone()
    }

    pub fn requests(&self) -> Requests {
        Requests {
            tx: self.requests_tx.clone(),
        }
    }

    /// Where to ask for a reload on a ContainerPilot 2 SIGHUP. Without it,
    /// SIGHUP changes nothing (a config that cannot be re-read).
    pub fn reload_on_sighup(&mut self, reloads: mpsc::UnboundedSender<()>) {
        self.sighup_reloads = Some(reloads);
    }

    /// Runs the jobs, registered through `registry`, until shutdown; returns
    /// the container's exit code.
    pub async fn run(mut self, registry: Arc<dyn ServiceRegistry>) -> i32 {
        self.registry = registry;
        let jobs = self.config.jobs.clone();
        for job in &jobs {
            self.start_job(job, &jobs, false);
        }
        log::info!(
            "autopilot {} started as pid {} with {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            crate::logging::plural(jobs.len() as u64, "job", "jobs")
        );
        if !self.is_pid1 {
            // A sidecar, or a pod with shareProcessNamespace: the PID namespace
            // is not ours, so nothing is signalled beyond our jobs' own groups.
            log::info!(
                "not PID 1: reaping our children's orphans as a child subreaper; signals go only \
                 to the process groups of our own jobs"
            );
        }
        self.common.bus.publish(Event::global(EventCode::Startup));
        if std::env::var_os("AUTOPILOT_KEEP_STARTUP_CODE").is_none() {
            // Once, when the jobs have started: the code run only at start-up
            // (config, templates, spawning) need not stay resident.
            tokio::spawn(async {
                tokio::time::sleep(RELEASE_STARTUP_CODE_AFTER).await;
                let released = process::memory::release_startup_code();
                log::debug!("released {released} KiB of start-up code pages");
            });
        }
        self.run_loop().await
    }

    fn shared(&self) -> Shared {
        Shared {
            bus: self.common.bus.clone(),
            reaper: self.common.reaper.clone(),
            environ: self.common.environ.clone(),
            registry: self.registry.clone(),
            board: self.common.board.clone(),
            shutdown: self.shutting_down.subscribe(),
        }
    }

    fn start_job(&mut self, job: &JobConfig, all: &[JobConfig], send_startup: bool) {
        let rules = Rules::new(job, all);
        let (runner, tx) = Runner::new(Arc::new(job.clone()), rules, self.shared());
        if send_startup {
            let _ = tx.send(Command::Startup);
        }
        self.commands.insert(job.name.clone(), tx);
        self.tasks.spawn(runner.run());
    }

    async fn run_loop(&mut self) -> i32 {
        let mut shutdown: Option<(ShutdownCause, Instant)> = None;
        let mut overtime = Overtime::No;
        if self.config.jobs.is_empty() {
            log::info!("no jobs configured");
        }
        loop {
            let deadline = self.deadline(shutdown.map(|(_, at)| at), overtime);
            tokio::select! {
                done = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    None => {}
                    Some(Ok(report)) => {
                        if self.job_ended(report, shutdown.is_some()) && shutdown.is_none() {
                            let cause = if self.outcome.failed.is_some() {
                                ShutdownCause::JobFailed
                            } else {
                                ShutdownCause::MainJobEnded
                            };
                            shutdown = Some(self.begin_shutdown(cause));
                        }
                        if self.tasks.is_empty() {
                            if shutdown.is_none() {
                                log::info!("every job is done");
                                shutdown = Some((ShutdownCause::AllJobsDone, Instant::now()));
                            }
                            break;
                        }
                    }
                    Some(Err(e)) => log::error!("a job task failed: {e}"),
                },
                sig = self.signals.next() => match sig {
                    sig if self.config.signals == SignalMode::Forward && sig != Signal::SIGTERM => {
                        self.forward(sig)
                    }
                    Signal::SIGTERM | Signal::SIGINT => {
                        if shutdown.is_none() {
                            log::info!("received {sig}: shutting down");
                            shutdown = Some(self.begin_shutdown(ShutdownCause::Signal));
                        }
                    }
                    Signal::SIGHUP if self.config.signals == SignalMode::V2 => {
                        if shutdown.is_none() {
                            self.reload_on_signal();
                        }
                    }
                    Signal::SIGUSR1 if self.config.signals == SignalMode::V2 => {
                        self.set_maintenance(!self.common.board.in_maintenance());
                    }
                    Signal::SIGHUP | Signal::SIGUSR2 => {
                        // The publisher table names the event each signal is.
                        if let Some(event) = Event::from_signal(sig.as_str()) {
                            self.common.bus.publish(event);
                        }
                    }
                    other => self.forward(other),
                },
                Some(request) = self.requests.recv() => match request {
                    Request::Reload(config, reply) => {
                        if shutdown.is_none() {
                            let _ = reply.send(self.reload(*config));
                        }
                    }
                    Request::Maintenance(on) => self.set_maintenance(on),
                    Request::SignalJob(name, sig, reply) => {
                        let result = match self.commands.get(&name) {
                            Some(tx) => tx.send(Command::Signal(sig)).map_err(|_| format!("job {name} has stopped")),
                            None => Err(format!("no running job named {name}")),
                        };
                        let _ = reply.send(result);
                    }
                    Request::Shutdown => {
                        if shutdown.is_none() {
                            log::info!("shutdown requested through the control socket");
                            shutdown = Some(self.begin_shutdown(ShutdownCause::Requested));
                        }
                    }
                    Request::Ping(reply) => {
                        let _ = reply.send(());
                    }
                },
                _ = sleep_until(deadline) => match self.past_deadline(overtime) {
                    Some(next) => overtime = next,
                    None => break,
                },
            }
            if self.tasks.is_empty() && shutdown.is_some() {
                break;
            }
        }
        let cause = shutdown
            .map(|(c, _)| c)
            .unwrap_or(ShutdownCause::AllJobsDone);
        let code = self.outcome.exit_code();
        log::info!(
            "autopilot exiting with code {code} ({}; {} orphans reaped)",
            cause.describe(),
            self.common.reaper.orphans_reaped()
        );
        code
    }

    /// Records a job's end; returns whether it ends the run (the main job,
    /// or a failed `exitOnFailure` job).
    fn job_ended(&mut self, report: Report, shutting_down: bool) -> bool {
        self.commands.remove(&report.name);
        if let Some(next) = self.replacements.remove(&report.name) {
            let all = self.config.jobs.clone();
            self.start_job(&next, &all, true);
            return false;
        }
        if self.removed.remove(&report.name) {
            self.common.board.remove(&report.name);
            return false;
        }
        let ends_run = self.outcome.job_ended(&report, shutting_down);
        if ends_run && !shutting_down {
            let exit = report
                .last_exit
                .map(|e| e.to_string())
                .unwrap_or("never ran".into());
            if self.outcome.failed.is_some() {
                log::error!(
                    "job `{}` failed ({exit}) and has exitOnFailure: shutting down",
                    report.name
                );
            } else {
                log::info!("main job `{}` ended ({exit}): shutting down", report.name);
            }
        }
        ends_run
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
