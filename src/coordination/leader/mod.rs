//! Leader election as a job feature: a job with `leader` competes for a
//! Consul KV key, and hooks react to its `elected` and `deposed` events.
//!
//! One task per such job (an [`Election`]). It competes only while the job
//! is healthy in Consul: once a passing health result has reached the agent
//! it creates a session tied to the node (`serfHealth`) and to the job's own
//! check (`service:<id>`), so a failing check invalidates the session at
//! once, then:
//! - acquires the key (`?acquire=`) with `{name, id, address, port}`;
//! - follows the key with a blocking query, to notice losing it and to try
//!   again as soon as it is free (after the lock-delay, which Consul imposes
//!   after an invalidation);
//! - renews the session every `ttl/2`.
//!
//! It is deposed (locally, at once, whatever Consul says) when the key's
//! session is no longer ours, when the session is gone (renew answers 404),
//! when the job turns unhealthy, exits, stops or enters maintenance, or when
//! renewals have failed for too long (the fail-safe, [`failsafe_margin`]).
//! `CONTAINERPILOT_<JOB>_LEADER` is set before `elected`/`deposed` is
//! published, so the hooks those events start see it.
//!
//! Voluntary step-downs destroy the session rather than release the key, so
//! Consul's lock-delay applies to every hand-over: it is the time a deposed
//! leader's `deposed` hook has before anyone else can be elected.
//!
//! "Healthy" is what the registry reports the agent has (its `CheckView`),
//! not the job's `healthy` event: a session can only be created once the
//! check passes *in Consul*, and a job restarted at once after a long run
//! publishes no new `healthy`, yet its new process must pass a check before
//! it may lead again (each step-down caused by the job waits for a newer pass).
//!
//! Idle cost: a renewal every `ttl/2` and one blocking query a minute while
//! competing; nothing while the job is not healthy.
//!
//! Split like the jobs: [`machine`] holds every rule above as a pure
//! transition function (the clock passed in, Consul calls returned as
//! data), so renewal failures, the fail-safe, the lock-delay and a lost
//! session are unit-tested without Consul; [`task`] only performs its
//! effects and turns replies and timers into its inputs.

mod machine;
mod protocol;
mod task;

pub use machine::{failsafe_deadline, failsafe_margin};

use crate::config::model::{JobConfig, LeaderConfig};
use crate::discovery::client::ConsulClient;
use crate::discovery::registry::ConsulRegistry;
use crate::environ::Environ;
use crate::events::Bus;
use crate::jobs::machine::State;
use crate::jobs::status::StatusBoard;
use protocol::Retire;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use task::Election;
use tokio::sync::mpsc;

/// What every election task shares.
#[derive(Clone)]
pub struct Context {
    pub client: ConsulClient,
    pub registry: Arc<ConsulRegistry>,
    pub bus: Bus,
    pub environ: Environ,
    pub board: StatusBoard,
}

/// The running election tasks, one per job with `leader`.
pub struct Leaders {
    ctx: Context,
    /// By job: the settings the task runs with, and how to retire it.
    tasks: Mutex<HashMap<String, (LeaderConfig, mpsc::Sender<Retire>)>>,
}

impl Leaders {
    pub fn new(ctx: Context) -> Leaders {
        Leaders {
            ctx,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an election for each job with `leader`; after a reload
    /// (`at_startup` false), retires the ones whose job is gone or whose
    /// `leader` changed.
    ///
    /// A job whose `leader` changed in a reload is restarted by the
    /// supervisor (its definition changed): its new election waits for the
    /// old process to be `stopped`, so the old one's health results cannot
    /// elect it.
    pub fn configure(&self, jobs: &[JobConfig], at_startup: bool) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashMap<&str, &LeaderConfig> = jobs
            .iter()
            .filter_map(|j| j.leader.as_ref().map(|l| (j.name.as_str(), l)))
            .collect();
        tasks.retain(|job, (config, retire)| {
            let keep = wanted.get(job.as_str()) == Some(&&*config);
            if !keep {
                let why = if wanted.contains_key(job.as_str()) {
                    Retire::Replaced
                } else {
                    Retire::Removed
                };
                // The channel holds one message and nobody else sends.
                let _ = retire.try_send(why);
            }
            keep
        });
        for (job, config) in wanted {
            if tasks.contains_key(job) {
                continue;
            }
            let Some(view) = self.ctx.registry.check_view(job) else {
                log::error!(
                    "{job}: cannot compete for leadership of {}: the job is not registered in Consul",
                    config.key
                );
                continue;
            };
            let restarting = !at_startup
                && self
                    .ctx
                    .board
                    .get(job)
                    .is_some_and(|s| s.state != State::Stopped);
            let (tx, rx) = mpsc::channel(1);
            let mut election =
                Election::new(job, config.clone(), self.ctx.clone(), view, rx, restarting);
            election.announce();
            tokio::spawn(election.run());
            tasks.insert(job.to_string(), (config.clone(), tx));
        }
    }
}
