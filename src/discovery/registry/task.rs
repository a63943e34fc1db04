//! The task that runs one service's [`Machine`]: it turns messages, the
//! retry time and the agent's return into inputs, and performs the effects
//! (Consul calls, logs, the status view). The decisions are the machine's.

use super::CheckView;
use super::definition::{ServiceDef, Status};
use super::machine::{Call, Effect, Input, Machine};
use crate::discovery::client::{CallError, ConsulClient, segment};
use crate::jobs::machine::ServiceAction;
use crate::jobs::status::StatusBoard;
use serde_json::json;
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// What [`super::ConsulRegistry`] tells a service's task.
pub enum Msg {
    /// A job's action; acknowledged once it reached Consul, or once it is
    /// left to a retry.
    Action(ServiceAction, oneshot::Sender<()>),
    Define(ServiceDef),
    /// A live tag/meta change; answered once the agent has it (`Ok(true)`),
    /// once it is known not to be registered (`Ok(false)`), or with why the
    /// call failed (it is retried).
    Edit(ServiceDef, oneshot::Sender<Result<bool, String>>),
}

/// Keeps one job's registration in line with what the job wants.
pub struct ServiceAgent {
    machine: Machine,
    /// The job's name, for the status view.
    job: String,
    client: ConsulClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Counts the agent's returns after an outage.
    returns: watch::Receiver<u64>,
    retry_at: Option<Instant>,
    view: watch::Sender<CheckView>,
    board: StatusBoard,
}

impl ServiceAgent {
    pub fn new(
        def: ServiceDef,
        client: ConsulClient,
        rx: mpsc::UnboundedReceiver<Msg>,
        view: watch::Sender<CheckView>,
        board: StatusBoard,
    ) -> ServiceAgent {
        let mut returns = client.agent_returns();
        returns.mark_unchanged();
        let job = def.name.clone();
        let machine = Machine::new(def);
        board.set_registration(&job, machine.board());
        ServiceAgent {
            machine,
            job,
            client,
            rx,
            returns,
            retry_at: None,
            view,
            board,
        }
    }

    pub async fn run(mut self) {
        let mut returns_open = true;
        loop {
            tokio::select! {
                msg = self.rx.recv() => {
                    let Some(msg) = msg else { break };
                    match msg {
                        Msg::Action(action, ack) => {
                            self.feed(Input::Action(action)).await;
                            let _ = ack.send(());
                        }
                        Msg::Define(def) => {
                            self.feed(Input::Define(def)).await;
                        }
                        Msg::Edit(def, reply) => {
                            // The machine settles every edit; without an
                            // answer the caller hears the task stopped.
                            if let Some(settled) = self.feed(Input::Edit(def)).await {
                                let _ = reply.send(settled);
                            }
                        }
                    }
                }
                _ = sleep_until(self.retry_at) => {
                    self.feed(Input::RetryDue).await;
                }
                changed = self.returns.changed(), if returns_open => {
                    if changed.is_err() {
                        returns_open = false;
                        continue;
                    }
                    self.feed(Input::AgentReturned).await;
                }
            }
        }
    }

    /// Gives the machine `input`, then performs its effects, making the
    /// calls it asks for one after the other and feeding back each answer.
    /// Returns how the sync ended, if the input started one.
    async fn feed(&mut self, input: Input) -> Option<Result<bool, String>> {
        let mut effects: VecDeque<Effect> = self.machine.on(input, now()).into();
        let mut settled = None;
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Call(call) => {
                    let answer = perform(&self.client, &call).await;
                    effects.extend(self.machine.on(Input::Answered(answer), now()));
                }
                Effect::Log(level, line) => log::log!(level, "{line}"),
                Effect::Board(have) => self.board.set_registration(&self.job, have),
                Effect::View(view) => {
                    self.view.send_if_modified(|v| {
                        let changed = *v != view;
                        *v = view;
                        changed
                    });
                }
                Effect::RetryAt(at) => self.retry_at = at.map(Instant::from_std),
                Effect::ReturnSeen => self.returns.mark_unchanged(),
                Effect::Settled(result) => settled = Some(result),
            }
        }
        settled
    }
}

/// The machine's clock is std's; tokio's follows it (and can be paused).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Makes one call to the agent.
async fn perform(client: &ConsulClient, call: &Call) -> Result<(), CallError> {
    match call {
        Call::Register(def, status) => {
            let body = def.registration(*status);
            client
                .put("/v1/agent/service/register", Some(&body))
                .await?;
        }
        Call::Update { check_id, status } => {
            let path = format!("/v1/agent/check/update/{}", segment(check_id));
            let output = match status {
                Status::Passing => "ok",
                Status::Critical => "health check failed",
            };
            let body = json!({"Status": status.as_str(), "Output": output});
            client.put(&path, Some(&body)).await?;
        }
        Call::Deregister { id } => {
            let path = format!("/v1/agent/service/deregister/{}", segment(id));
            client.put(&path, None).await?;
        }
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
