//! Runs one job's election: feeds the [`Machine`] its inputs and carries
//! out its effects with the Consul client, the bus, the environment and
//! the status board. It decides nothing itself.

use super::Context;
use super::machine::{KEY_WAIT, Machine};
use super::protocol::{Agent, Call, CreateFailure, Effect, Input, KeyState, Retire, Role, Timer};
use crate::config::model::LeaderConfig;
use crate::coordination::kv::{self, CreateError, SessionSpec};
use crate::discovery::client::{Blocking, ConsulClient};
use crate::discovery::registry::CheckView;
use crate::environ::env_name;
use crate::events::Event;
use crate::jobs::status::LeaderStatus;
use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};

/// A Consul call in flight; it ends with the machine's input.
type Reply = Pin<Box<dyn Future<Output = Input> + Send>>;

/// One job's election task.
pub(super) struct Election {
    job: String,
    config: LeaderConfig,
    ctx: Context,
    env_key: String,
    machine: Machine,
    events: broadcast::Receiver<Event>,
    view: watch::Receiver<CheckView>,
    retire: mpsc::Receiver<Retire>,
    calls: BTreeMap<Call, Reply>,
    /// The wall-clock time of the last role change, taken once per change
    /// so that every status update shows the same `sinceMs`.
    role_since_ms: Option<(std::time::Instant, u64)>,
}

impl Election {
    /// Subscribes to the bus now, so no event published after this call is missed.
    pub(super) fn new(
        job: &str,
        config: LeaderConfig,
        ctx: Context,
        view: watch::Receiver<CheckView>,
        retire: mpsc::Receiver<Retire>,
        restarting: bool,
    ) -> Election {
        // Only a passing result that comes after this election started counts.
        let agent = agent_of(&ctx, job, &view);
        Election {
            env_key: format!("CONTAINERPILOT_{}_LEADER", env_name(job)),
            job: job.to_string(),
            events: ctx.bus.subscribe(),
            machine: Machine::new(job, config.clone(), agent, restarting, Instant::now()),
            config,
            ctx,
            view,
            retire,
            calls: BTreeMap::new(),
            role_since_ms: None,
        }
    }

    /// Sets the variable to `false` and writes the status entry: done when
    /// the election is set up, not when its task first runs, as the job's
    /// own process may be started before that and must see `false` too.
    pub(super) fn announce(&mut self) {
        self.ctx
            .environ
            .set_runtime(&self.env_key, Some("false".into()));
        self.publish_status();
    }

    pub(super) async fn run(mut self) {
        log::info!(
            "{}: competes for leadership of Consul key {} once healthy (session ttl {}, lock-delay {})",
            self.job,
            self.config.key,
            kv::go_duration(self.config.ttl),
            kv::go_duration(self.config.lock_delay)
        );
        let mut view_open = true;
        self.view.borrow_and_update();
        self.handle(Input::Agent(self.agent()));
        while !self.machine.retired() {
            self.publish_status();
            let timer = self.machine.next_timer();
            let input = tokio::select! {
                why = self.retire.recv() => Input::Retire(why.unwrap_or(Retire::Removed)),
                event = self.events.recv() => match event {
                    Ok(event) => Input::Event(event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.ctx.bus.record_lost(n);
                        Input::EventsLost(n)
                    }
                    Err(broadcast::error::RecvError::Closed) => Input::Retire(Retire::Removed),
                },
                changed = self.view.changed(), if view_open => match changed {
                    Ok(()) => {
                        self.view.borrow_and_update();
                        Input::Agent(self.agent())
                    }
                    Err(_) => {
                        view_open = false;
                        continue;
                    }
                },
                (call, reply) = next_reply(&mut self.calls) => {
                    self.calls.remove(&call);
                    reply
                }
                timer = sleep_until(timer) => Input::Timer(timer),
            };
            self.handle(input);
        }
    }

    /// Feeds one input to the machine, with the latest of the registry,
    /// and carries out what it decides.
    fn handle(&mut self, input: Input) {
        self.machine.observe(self.agent());
        for effect in self.machine.on(input, Instant::now()) {
            self.perform(effect);
        }
    }

    /// What the registry has of the job now.
    fn agent(&self) -> Agent {
        agent_of(&self.ctx, &self.job, &self.view)
    }

    fn service_id(&self) -> Option<String> {
        self.ctx.registry.service(&self.job).map(|d| d.id)
    }

    fn perform(&mut self, effect: Effect) {
        let client = self.ctx.client.clone();
        match effect {
            Effect::CreateSession { service_id } => {
                let spec = SessionSpec {
                    name: kv::session_name_for(&service_id),
                    checks: vec!["serfHealth".into(), format!("service:{service_id}")],
                    ttl: Some(self.config.ttl),
                    lock_delay: self.config.lock_delay,
                };
                self.start(Call::CreateSession, async move {
                    let sent = Instant::now();
                    let result = kv::create_session(&client, &spec)
                        .await
                        .map_err(|e| match e {
                            CreateError::CheckNotPassing(why) => {
                                CreateFailure::CheckNotPassing(why)
                            }
                            CreateError::Failed(e) => CreateFailure::Failed(e.to_string()),
                        });
                    Input::Created { sent, result }
                });
            }
            Effect::Renew { session } => self.start(Call::Renew, async move {
                let sent = Instant::now();
                let result = kv::renew_session(&client, &session).await;
                Input::Renewed {
                    id: session,
                    sent,
                    result: result.map_err(|e| e.to_string()),
                }
            }),
            Effect::Acquire { session } => {
                let key = self.config.key.clone();
                let value = self.value();
                self.start(Call::Acquire, async move {
                    let result = kv::acquire(&client, &key, &session, value).await;
                    Input::Acquired {
                        id: session,
                        result: result.map_err(|e| e.to_string()),
                    }
                });
            }
            Effect::ReadKey { index } => {
                let key = self.config.key.clone();
                self.start(Call::ReadKey, async move {
                    let started = Instant::now();
                    let blocking = Blocking {
                        index,
                        wait: KEY_WAIT,
                    };
                    let result = kv::read(&client, &key, Some(blocking)).await;
                    Input::KeyRead {
                        index,
                        started,
                        result: result.map(key_state).map_err(|e| e.to_string()),
                    }
                });
            }
            Effect::DestroySession { session } => destroy_later(client, session),
            Effect::Cancel(call) => {
                self.calls.remove(&call);
            }
            Effect::SetVariable(value) => self
                .ctx
                .environ
                .set_runtime(&self.env_key, value.map(|v| v.to_string())),
            Effect::PublishStatus => self.publish_status(),
            Effect::ClearStatus => self.ctx.board.set_leader(&self.job, None),
            Effect::Publish(code) => self.ctx.bus.publish(Event::new(code, &self.job)),
            Effect::Log(level, line) => log::log!(level, "{line}"),
        }
    }

    fn start(&mut self, call: Call, reply: impl Future<Output = Input> + Send + 'static) {
        self.calls.insert(call, Box::pin(reply));
    }

    /// What the leader writes into the key.
    fn value(&self) -> Vec<u8> {
        let def = self.ctx.registry.service(&self.job);
        let value = serde_json::json!({
            "name": self.job,
            "id": def.as_ref().map(|d| d.id.clone()),
            "address": def.as_ref().map(|d| d.address.to_string()),
            "port": def.as_ref().map(|d| d.port),
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }

    fn publish_status(&mut self) {
        if self.machine.retired() {
            return;
        }
        let role = self.machine.role();
        let holder = match role {
            Role::Leader => self.service_id(),
            _ => self.machine.holder().map(String::from),
        };
        let changed_at = self.machine.role_since();
        let since_ms = match self.role_since_ms {
            Some((at, ms)) if at == changed_at => ms,
            _ => {
                let ms = now_ms().saturating_sub(changed_at.elapsed().as_millis() as u64);
                self.role_since_ms = Some((changed_at, ms));
                ms
            }
        };
        self.ctx.board.set_leader(
            &self.job,
            Some(LeaderStatus {
                role,
                key: self.config.key.clone(),
                holder,
                since_ms,
            }),
        );
    }
}

fn agent_of(ctx: &Context, job: &str, view: &watch::Receiver<CheckView>) -> Agent {
    let view = *view.borrow();
    Agent {
        service_id: ctx.registry.service(job).map(|d| d.id),
        passing: view.passing,
        passes: view.passes,
    }
}

/// The key's holder as the machine needs it: the session, and the service
/// ID named by the value.
fn key_state(read: kv::Read) -> KeyState {
    let entry = read.entry;
    KeyState {
        index: read.index,
        session: entry.as_ref().and_then(|e| e.session.clone()),
        holder: entry
            .as_ref()
            .and_then(|e| e.value.as_deref())
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from)),
    }
}

/// Destroys a session in the background: it is invalid or unwanted either
/// way, and if the call fails the session expires by its TTL.
fn destroy_later(client: ConsulClient, id: String) {
    tokio::spawn(async move {
        if let Err(e) = kv::destroy_session(&client, &id).await {
            log::debug!(
                "leader election: cannot destroy session {id} ({e}); it expires by its TTL"
            );
        }
    });
}

/// The first call in flight to answer (never, with none).
async fn next_reply(calls: &mut BTreeMap<Call, Reply>) -> (Call, Input) {
    poll_fn(|cx| {
        for (call, reply) in calls.iter_mut() {
            if let Poll::Ready(input) = reply.as_mut().poll(cx) {
                return Poll::Ready((*call, input));
            }
        }
        Poll::Pending
    })
    .await
}

/// Fires the machine's next timer (never, with none).
async fn sleep_until(timer: Option<(Timer, Instant)>) -> Timer {
    match timer {
        Some((timer, at)) => {
            tokio::time::sleep_until(at.into()).await;
            timer
        }
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
