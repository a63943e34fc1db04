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

use crate::config::duration;
use crate::config::model::{Config, JobConfig, SignalMode, When};
use crate::environ::Environ;
use crate::events::{Bus, Event, EventCode};
use crate::jobs::Common;
use crate::jobs::machine::{Rules, State};
use crate::jobs::registry::{NoDiscovery, ServiceRegistry};
use crate::jobs::runner::{Command, Mailbox, Report, Runner, Shared};
use crate::jobs::status::StatusBoard;
use crate::process::{self, ExitStatus, Reaper};
use nix::sys::signal::Signal;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// After the shutdown deadline's SIGKILL, how long to wait for the kernel to
/// deliver the last exits before giving up on them.
const AFTER_KILL_GRACE: Duration = Duration::from_secs(1);

/// When to drop start-up code from memory ([`process::memory`]): once, this
/// long after start, when the jobs have started.
const RELEASE_STARTUP_CODE_AFTER: Duration = Duration::from_secs(1);

/// How long post-stop hooks may run past the top-level `stopTimeout`. With
/// the default `stopTimeout` of 5 s, 5 + 3 + [`AFTER_KILL_GRACE`] still fits
/// Docker's 10 s stop window.
pub const POST_STOP_GRACE: Duration = Duration::from_secs(3);

/// How far shutdown is past the top-level `stopTimeout`.
#[derive(Debug, Clone, Copy)]
enum Overtime {
    /// Still within it.
    No,
    /// Everything but post-stop hooks was killed; they may run until then.
    HooksGrace(Instant),
    /// Everything was killed at that time.
    Killed(Instant),
}

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
    /// A job with `exitOnFailure` failed (a ContainerPilot 2 `preStart`).
    JobFailed,
    AllJobsDone,
    Requested,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    pub unchanged: Vec<String>,
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

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
            let deadline = match (shutdown, overtime) {
                (_, Overtime::Killed(at)) => Some(at + AFTER_KILL_GRACE),
                (_, Overtime::HooksGrace(until)) => Some(until),
                (Some((_, at)), Overtime::No) => {
                    Some(duration::later(at, self.config.stop_timeout))
                }
                (None, Overtime::No) => None,
            };
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
                    Signal::SIGHUP => self.common.bus.publish(Event::new(EventCode::SigHup, "SIGHUP")),
                    Signal::SIGUSR2 => self.common.bus.publish(Event::new(EventCode::SigUsr2, "SIGUSR2")),
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
                _ = sleep_until(deadline) => match overtime {
                    Overtime::Killed(_) => {
                        log::warn!("{} did not report their exit after SIGKILL; exiting anyway", crate::logging::plural(self.tasks.len() as u64, "job", "jobs"));
                        break;
                    }
                    Overtime::No => {
                        log::warn!("stop timeout of {} reached: killing what is left", crate::logging::human_duration(self.config.stop_timeout));
                        let hooks = self.post_stop_hooks_that_can_run();
                        if hooks.is_empty() {
                            self.kill_everything();
                            overtime = Overtime::Killed(Instant::now());
                        } else {
                            log::info!(
                                "post-stop hooks {} may still run for {}",
                                hooks.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
                                crate::logging::human_duration(POST_STOP_GRACE)
                            );
                            self.kill_all_but(&hooks);
                            overtime = Overtime::HooksGrace(Instant::now() + POST_STOP_GRACE);
                        }
                    }
                    Overtime::HooksGrace(_) => {
                        log::warn!("post-stop hooks still running {} after the stop timeout: killing them", crate::logging::human_duration(POST_STOP_GRACE));
                        self.kill_everything();
                        overtime = Overtime::Killed(Instant::now());
                    }
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
            match cause {
                ShutdownCause::Signal => "stopped by signal",
                ShutdownCause::MainJobEnded => "main job ended",
                ShutdownCause::JobFailed => "a job with exitOnFailure failed",
                ShutdownCause::AllJobsDone => "all jobs done",
                ShutdownCause::Requested => "shutdown requested",
            },
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

    /// ContainerPilot 2's SIGHUP: asks for the config to be re-read by the
    /// one reload path (the control socket's), which re-reads it off the
    /// runtime thread and hands it back as a [`Request::Reload`], so
    /// unchanged jobs keep running. A config that fails to load changes
    /// nothing.
    fn reload_on_signal(&self) {
        match &self.sighup_reloads {
            Some(reloads) if reloads.send(()).is_ok() => {
                log::info!("received SIGHUP: reloading the config")
            }
            _ => log::warn!("received SIGHUP, but this config cannot be re-read; nothing changes"),
        }
    }

    /// The post-stop hooks (jobs started by another job's `stopped`) that
    /// may still run: their job has not stopped yet (killing it publishes
    /// `stopped`), or they are running now.
    fn post_stop_hooks_that_can_run(&self) -> HashSet<String> {
        self.config
            .jobs
            .iter()
            .filter(|job| self.commands.contains_key(&job.name))
            .filter(|job| match &job.when {
                When::Event { pattern, .. } => {
                    pattern.code == EventCode::Stopped
                        && pattern.source != job.name
                        && (self.commands.contains_key(&pattern.source)
                            || self
                                .common
                                .board
                                .get(&job.name)
                                .is_some_and(|s| s.state == State::Running))
                }
                _ => false,
            })
            .map(|job| job.name.clone())
            .collect()
    }

    /// SIGKILL for every job but `spared`. As PID 1, every other process of
    /// the namespace too (orphans included), unless a spared hook is running:
    /// it would die with them.
    fn kill_all_but(&self, spared: &HashSet<String>) {
        for (name, tx) in &self.commands {
            if !spared.contains(name) {
                let _ = tx.send(Command::ForceKill);
            }
        }
        let hook_running = spared.iter().any(|name| {
            self.common
                .board
                .get(name)
                .is_some_and(|s| s.state == State::Running)
        });
        if self.is_pid1 && !hook_running {
            // As PID 1 we own the namespace: nothing may outlive us.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
        }
    }

    fn kill_everything(&self) {
        self.kill_all_but(&HashSet::new());
    }

    fn begin_shutdown(&self, cause: ShutdownCause) -> (ShutdownCause, Instant) {
        // The flag first: a runner that lagged on the bus checks it.
        self.shutting_down.send_replace(true);
        self.common.bus.publish(Event::global(EventCode::Shutdown));
        (cause, Instant::now())
    }

    fn forward(&self, sig: Signal) {
        log::debug!("forwarding {sig}");
        let main = self.outcome.main_job.as_deref();
        for (name, tx) in &self.commands {
            if main.is_none_or(|m| m == name) {
                let _ = tx.send(Command::Signal(sig));
            }
        }
    }

    fn set_maintenance(&self, on: bool) {
        if self.common.board.set_maintenance(on) {
            log::info!(
                "{} maintenance mode",
                if on { "entering" } else { "leaving" }
            );
            let code = if on {
                EventCode::EnterMaintenance
            } else {
                EventCode::ExitMaintenance
            };
            self.common.bus.publish(Event::global(code));
        }
    }

    /// Applies a new config: unchanged jobs keep running untouched, changed
    /// jobs are stopped and started again with their new definition, removed
    /// jobs are stopped, new jobs are started.
    fn reload(&mut self, mut new: Config) -> ReloadSummary {
        keep_command_line_app(&self.config, &mut new);
        let mut summary = ReloadSummary::default();
        let old: HashMap<String, JobConfig> = self
            .config
            .jobs
            .iter()
            .map(|j| (j.name.clone(), j.clone()))
            .collect();
        let new_names: HashSet<&str> = new.jobs.iter().map(|j| j.name.as_str()).collect();
        for (name, _) in old.iter().filter(|(n, _)| !new_names.contains(n.as_str())) {
            if let Some(tx) = self.commands.get(name) {
                let _ = tx.send(Command::Stop);
                self.removed.insert(name.clone());
            }
            summary.removed.push(name.clone());
        }
        for job in &new.jobs {
            match old.get(&job.name) {
                Some(prev) if same_definition(prev, job) => {
                    summary.unchanged.push(job.name.clone())
                }
                Some(_) => {
                    summary.restarted.push(job.name.clone());
                    match self.commands.get(&job.name) {
                        Some(tx) => {
                            let _ = tx.send(Command::Stop);
                            self.replacements.insert(job.name.clone(), job.clone());
                        }
                        None => self.start_job(job, &new.jobs, true),
                    }
                }
                None => {
                    summary.added.push(job.name.clone());
                    self.start_job(job, &new.jobs, true);
                }
            }
        }
        self.registry.configure(&new.jobs);
        if let Err(e) = crate::logging::configure(&new.logging) {
            log::warn!("reload: cannot apply the new logging settings: {e}");
        }
        if new.consul != self.config.consul {
            log::warn!("reload: changes to `consul` take effect after a restart");
        }
        self.outcome.follow(&new.jobs);
        log::info!(
            "config reloaded: {} unchanged, {} restarted, {} added, {} removed",
            summary.unchanged.len(),
            summary.restarted.len(),
            summary.added.len(),
            summary.removed.len()
        );
        self.config = Arc::new(new);
        // After the jobs: whoever reads it (status, telemetry, watches) sees
        // a config the jobs already run.
        self.published.send_replace(self.config.clone());
        summary
    }
}

/// A ContainerPilot 2 config's app comes from autopilot's command line, not
/// from the file, so a reload that could not know it (`autopilot -reload`
/// re-reads the file alone) yields a config without the main job. Keep the
/// running app then: ContainerPilot 2 never restarted the app on a reload.
fn keep_command_line_app(old: &Config, new: &mut Config) {
    if old.signals != SignalMode::V2 || new.signals != SignalMode::V2 {
        return;
    }
    let Some(app) = old.jobs.iter().find(|j| j.main) else {
        return;
    };
    if new.jobs.iter().any(|j| j.main) {
        return;
    }
    match new.jobs.iter_mut().find(|j| j.name == app.name) {
        Some(slot) => *slot = app.clone(),
        None => new.jobs.insert(0, app.clone()),
    }
}

/// Two job definitions are the same if they differ at most in where they are
/// written in the file.
fn same_definition(a: &JobConfig, b: &JobConfig) -> bool {
    let mut b = b.clone();
    b.line = a.line;
    *a == b
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The exit-code rule (README "Exit codes"):
/// - when a job with `exitOnFailure: true` ended for good with a failure
///   before shutdown began (a ContainerPilot 2 `preStart`): its exit code;
/// - else, with a job marked `main: true`: that job's last exit code
///   (128+signal for a signal death; 0 if it never ran);
/// - otherwise: the code of the last job that ended for good with a failure
///   before shutdown began, or 0.
struct Outcome {
    main_job: Option<String>,
    main_exit: Option<ExitStatus>,
    last_failure: Option<ExitStatus>,
    /// Jobs with `exitOnFailure`.
    exit_on_failure: HashSet<String>,
    /// The first failure of one of them, which ended the run.
    failed: Option<ExitStatus>,
}

impl Outcome {
    fn new(main_job: Option<String>) -> Outcome {
        Outcome {
            main_job,
            main_exit: None,
            last_failure: None,
            exit_on_failure: HashSet::new(),
            failed: None,
        }
    }

    /// Takes the main job and the `exitOnFailure` jobs from a (new) config.
    fn follow(&mut self, jobs: &[JobConfig]) {
        self.main_job = jobs.iter().find(|j| j.main).map(|j| j.name.clone());
        self.exit_on_failure = jobs
            .iter()
            .filter(|j| j.exit_on_failure)
            .map(|j| j.name.clone())
            .collect();
    }

    /// Records a job's end; returns whether it ends the run: the main job
    /// ended, or an `exitOnFailure` job failed before shutdown.
    fn job_ended(&mut self, report: &Report, shutting_down: bool) -> bool {
        if self.main_job.as_deref() == Some(report.name.as_str()) {
            self.main_exit = report.last_exit;
            return true;
        }
        if !shutting_down && let Some(exit) = report.last_exit.filter(|e| !e.success()) {
            self.last_failure = Some(exit);
            if self.exit_on_failure.contains(&report.name) && self.failed.is_none() {
                self.failed = Some(exit);
                return true;
            }
        }
        false
    }

    fn exit_code(&self) -> i32 {
        if let Some(failed) = self.failed {
            return failed.code();
        }
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
        let handled = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR2,
        ]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, exit: Option<ExitStatus>) -> Report {
        Report {
            name: name.into(),
            last_exit: exit,
        }
    }

    #[test]
    fn the_main_job_decides_the_exit_code() {
        let mut o = Outcome::new(Some("app".into()));
        o.job_ended(&report("setup", Some(ExitStatus::Exited(3))), false);
        assert!(o.job_ended(&report("app", Some(ExitStatus::Signaled(15))), true));
        assert_eq!(o.exit_code(), 143);
    }

    #[test]
    fn without_a_main_job_the_last_failure_counts_but_not_during_shutdown() {
        let mut o = Outcome::new(None);
        assert_eq!(o.exit_code(), 0);
        o.job_ended(&report("a", Some(ExitStatus::Exited(0))), false);
        assert_eq!(o.exit_code(), 0);
        o.job_ended(&report("b", Some(ExitStatus::Exited(4))), false);
        o.job_ended(&report("c", Some(ExitStatus::Signaled(15))), true);
        assert_eq!(o.exit_code(), 4);
    }

    fn job(name: &str, main: bool, exit_on_failure: bool) -> JobConfig {
        let text = format!(
            "{{jobs: [{{name: '{name}', exec: 'x', main: {main}, exitOnFailure: {exit_on_failure}}}]}}"
        );
        crate::config::parse_str(&text, "t").unwrap().config.jobs[0].clone()
    }

    #[test]
    fn a_failed_exit_on_failure_job_ends_the_run_with_its_code() {
        let mut o = Outcome::new(None);
        o.follow(&[job("app", true, false), job("app.preStart", false, true)]);
        assert!(o.job_ended(&report("app.preStart", Some(ExitStatus::Exited(3))), false));
        // The main job never ran; the failure decides.
        assert!(o.job_ended(&report("app", None), true));
        assert_eq!(o.exit_code(), 3);
    }

    #[test]
    fn a_successful_exit_on_failure_job_changes_nothing() {
        let mut o = Outcome::new(None);
        o.follow(&[job("app", true, false), job("app.preStart", false, true)]);
        assert!(!o.job_ended(&report("app.preStart", Some(ExitStatus::Exited(0))), false));
        assert!(o.job_ended(&report("app", Some(ExitStatus::Exited(7))), false));
        assert_eq!(o.exit_code(), 7);
    }

    #[test]
    fn a_reload_without_the_command_line_keeps_the_v2_app() {
        let load = |app: &[&str]| {
            let options = crate::config::LoadOptions {
                app: app.iter().map(|s| s.to_string()).collect(),
                self_exe: None,
            };
            let text = r#"{"services": [{"name": "web", "port": 80, "health": "true", "poll": 1, "ttl": 3}],
                           "preStop": "drain"}"#;
            crate::config::load_str_with(text, "t", &HashMap::new(), &options)
                .unwrap()
                .config
        };
        let running = load(&["/bin/app", "-x"]);
        let mut reread = load(&[]);
        keep_command_line_app(&running, &mut reread);
        assert_eq!(running.jobs, reread.jobs);
    }
}
