//! The coordination subcommands, for hooks (no curl, jq or python needed):
//!
//! ```text
//! autopilot kv get KEY                 print the value
//! autopilot kv put KEY [VALUE]         write it (no VALUE: read standard input)
//! autopilot kv cas KEY OLD NEW         write NEW only if the value is still OLD
//! autopilot kv delete KEY
//! autopilot lock acquire KEY [VALUE]   take the lock (held until released)
//! autopilot lock release KEY
//! autopilot lock holder KEY            print who holds it
//! autopilot tags JOB [add|remove|set TAG... | reset]
//! autopilot meta JOB [set KEY=VALUE... | remove KEY... | reset]
//! ```
//!
//! `kv` and `lock` talk to Consul directly, with the address, token and TLS
//! settings of the config (`-config`, else `$CONTAINERPILOT`) or, without
//! one, of the `CONSUL_*` environment variables. `tags` and `meta` ask the
//! running autopilot through its control socket, since it owns the
//! registration.
//!
//! Exit codes: [`EXIT_OK`], [`EXIT_NO`], [`EXIT_USAGE`], [`EXIT_CONSUL`].

use crate::config::model::ConsulConfig;
use crate::coordination::kv::{self, CreateError, SessionSpec};
use crate::discovery::client::{CallError, ConsulClient};
use crate::discovery::edit::{LiveService, ServiceEdit};
use crate::discovery::{address, registry};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::time::Duration;

/// Done.
pub const EXIT_OK: u8 = 0;
/// The answer is no: a failed check-and-set, a lock held by someone else,
/// no such key, a free lock asked for its holder, or autopilot refused.
pub const EXIT_NO: u8 = 1;
/// The command line (or the config it names) is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Consul could not be asked: unreachable, or it refused the request (ACL,
/// no cluster leader). For `tags`/`meta`: the change is recorded but not
/// yet in Consul; autopilot applies it as soon as Consul answers.
pub const EXIT_CONSUL: u8 = 3;

/// The subcommand names, for the command-line parser.
pub const SUBCOMMANDS: [&str; 4] = ["kv", "lock", "tags", "meta"];

/// Lock sessions keep Consul's default lock-delay: after the holder's node
/// fails, nobody gets the lock for this long. A release has no delay.
const LOCK_DELAY: Duration = Duration::from_secs(15);
/// Long enough for the running autopilot to reach Consul (it answers 503
/// after 15 s without Consul).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    KvGet {
        key: String,
    },
    /// `value: None` reads standard input.
    KvPut {
        key: String,
        value: Option<String>,
    },
    KvCas {
        key: String,
        old: String,
        new: String,
    },
    KvDelete {
        key: String,
    },
    LockAcquire {
        key: String,
        value: Option<String>,
    },
    LockRelease {
        key: String,
    },
    LockHolder {
        key: String,
    },
    /// `edit: None` prints the tags.
    Tags {
        job: String,
        edit: Option<ServiceEdit>,
    },
    /// `edit: None` prints the meta as `KEY=VALUE` lines.
    Meta {
        job: String,
        edit: Option<ServiceEdit>,
    },
}

/// Parses the words after `kv`, `lock`, `tags` or `meta`; the error says
/// what to write instead.
pub fn parse(sub: &str, words: &[String]) -> Result<Command, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let usage = |form: &str| Err(format!("usage: autopilot {sub} {form}"));
    match sub {
        "kv" => match w.as_slice() {
            ["get", key] => Ok(Command::KvGet { key: key_arg(key)? }),
            ["put", key] => Ok(Command::KvPut {
                key: key_arg(key)?,
                value: None,
            }),
            ["put", key, value] => Ok(Command::KvPut {
                key: key_arg(key)?,
                value: Some(value.to_string()),
            }),
            ["cas", key, old, new] => Ok(Command::KvCas {
                key: key_arg(key)?,
                old: old.to_string(),
                new: new.to_string(),
            }),
            ["delete", key] => Ok(Command::KvDelete { key: key_arg(key)? }),
            [op, ..] if ["get", "put", "cas", "delete"].contains(op) => match *op {
                "get" => usage("get KEY"),
                "put" => usage(
                    "put KEY [VALUE]   (without VALUE, the value is read from standard input)",
                ),
                "cas" => usage("cas KEY OLD NEW   (OLD \"\" matches a missing key)"),
                _ => usage("delete KEY"),
            },
            _ => usage("get|put|cas|delete KEY [VALUE]"),
        },
        "lock" => match w.as_slice() {
            ["acquire", key] => Ok(Command::LockAcquire {
                key: key_arg(key)?,
                value: None,
            }),
            ["acquire", key, value] => Ok(Command::LockAcquire {
                key: key_arg(key)?,
                value: Some(value.to_string()),
            }),
            ["release", key] => Ok(Command::LockRelease { key: key_arg(key)? }),
            ["holder", key] => Ok(Command::LockHolder { key: key_arg(key)? }),
            _ => usage("acquire KEY [VALUE] | release KEY | holder KEY"),
        },
        "tags" => {
            let form = "JOB [add TAG... | remove TAG... | set [TAG...] | reset]";
            let Some((job, rest)) = w.split_first() else {
                return usage(form);
            };
            let list = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect();
            let edit = match rest {
                [] => None,
                ["add", tags @ ..] if !tags.is_empty() => Some(ServiceEdit {
                    add_tags: list(tags),
                    ..ServiceEdit::default()
                }),
                ["remove", tags @ ..] if !tags.is_empty() => Some(ServiceEdit {
                    remove_tags: list(tags),
                    ..ServiceEdit::default()
                }),
                ["set", tags @ ..] => Some(ServiceEdit {
                    tags: Some(list(tags)),
                    ..ServiceEdit::default()
                }),
                ["reset"] => Some(ServiceEdit {
                    reset_tags: true,
                    ..ServiceEdit::default()
                }),
                _ => return usage(form),
            };
            validate(edit.as_ref())?;
            Ok(Command::Tags {
                job: job.to_string(),
                edit,
            })
        }
        "meta" => {
            let form = "JOB [set KEY=VALUE... | remove KEY... | reset]";
            let Some((job, rest)) = w.split_first() else {
                return usage(form);
            };
            let edit = match rest {
                [] => None,
                ["set", pairs @ ..] if !pairs.is_empty() => {
                    let mut meta = BTreeMap::new();
                    for pair in pairs {
                        let Some((k, v)) = pair.split_once('=') else {
                            return Err(format!(
                                "autopilot meta {job} set: {pair:?} is not KEY=VALUE"
                            ));
                        };
                        meta.insert(k.to_string(), Some(v.to_string()));
                    }
                    Some(ServiceEdit {
                        meta,
                        ..ServiceEdit::default()
                    })
                }
                ["remove", keys @ ..] if !keys.is_empty() => Some(ServiceEdit {
                    meta: keys.iter().map(|k| (k.to_string(), None)).collect(),
                    ..ServiceEdit::default()
                }),
                ["reset"] => Some(ServiceEdit {
                    reset_meta: true,
                    ..ServiceEdit::default()
                }),
                _ => return usage(form),
            };
            validate(edit.as_ref())?;
            Ok(Command::Meta {
                job: job.to_string(),
                edit,
            })
        }
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

fn key_arg(key: &str) -> Result<String, String> {
    let trimmed = key.trim_start_matches('/');
    if trimmed.trim().is_empty() {
        return Err(format!(
            "{key:?} is not a KV key: give a key such as app/config"
        ));
    }
    Ok(trimmed.to_string())
}

fn validate(edit: Option<&ServiceEdit>) -> Result<(), String> {
    edit.map_or(Ok(()), ServiceEdit::validate)
}

/// Runs `command`; returns the exit code. Messages go to standard error,
/// values to standard output.
pub fn run(command: &Command, config_flag: Option<&str>, socket_flag: Option<&str>) -> u8 {
    let env: HashMap<String, String> = std::env::vars().collect();
    match command {
        Command::Tags { job, edit } | Command::Meta { job, edit } => {
            let tags = matches!(command, Command::Tags { .. });
            service(job, edit.as_ref(), tags, config_flag, socket_flag, &env)
        }
        _ => {
            let client = match consul_client(config_flag, &env) {
                Ok(c) => c,
                Err((code, why)) => {
                    eprintln!("autopilot: {why}");
                    return code;
                }
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("autopilot: cannot start the runtime: {e}");
                    return EXIT_CONSUL;
                }
            };
            let holder = registry::hostname(&|k| env.get(k).cloned());
            match runtime.block_on(consul_command(command, &client, &holder)) {
                Ok(Outcome::Done(out)) => {
                    let mut stdout = std::io::stdout().lock();
                    if stdout
                        .write_all(&out)
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        return EXIT_NO;
                    }
                    EXIT_OK
                }
                Ok(Outcome::No(why)) => {
                    eprintln!("autopilot: {why}");
                    EXIT_NO
                }
                Err(Trouble::Usage(why)) => {
                    eprintln!("autopilot: {why}");
                    EXIT_USAGE
                }
                Err(Trouble::Consul(e)) => {
                    eprintln!("autopilot: {}", consul_trouble(&e, client.display_url()));
                    EXIT_CONSUL
                }
            }
        }
    }
}

/// The Consul client for `kv` and `lock`: the config's `consul` section
/// (with the environment filling what it leaves out, as for the running
/// autopilot), or the environment alone without a config.
fn consul_client(
    config_flag: Option<&str>,
    env: &HashMap<String, String>,
) -> Result<ConsulClient, (u8, String)> {
    let explicit = config_flag.is_some_and(|f| !f.is_empty());
    let consul = match crate::config::resolve_path(config_flag, env) {
        None => ConsulConfig::default(),
        Some(path) => match crate::config::load(&path, env) {
            Ok(loaded) => loaded.config.consul.unwrap_or_default(),
            Err(e) if explicit => return Err((EXIT_USAGE, e.to_string())),
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                eprintln!(
                    "autopilot: note: $CONTAINERPILOT ({}) did not load ({first}); using the CONSUL_* environment variables",
                    path.display()
                );
                ConsulConfig::default()
            }
        },
    };
    let endpoint = address::resolve(&consul, &|k| env.get(k).cloned())
        .map_err(|e| (EXIT_USAGE, e.to_string()))?;
    ConsulClient::new(&endpoint).map_err(|e| (EXIT_USAGE, e.to_string()))
}

/// What a Consul command found.
enum Outcome {
    /// Success, with what to print.
    Done(Vec<u8>),
    /// A definite "no", with why.
    No(String),
}

enum Trouble {
    Usage(String),
    Consul(CallError),
}

impl From<CallError> for Trouble {
    fn from(e: CallError) -> Trouble {
        Trouble::Consul(e)
    }
}

async fn consul_command(
    command: &Command,
    client: &ConsulClient,
    me: &str,
) -> Result<Outcome, Trouble> {
    match command {
        Command::KvGet { key } => match kv::read(client, key, None).await?.entry {
            Some(entry) => {
                let mut out = entry.value.unwrap_or_default();
                out.push(b'\n');
                Ok(Outcome::Done(out))
            }
            None => Ok(Outcome::No(format!("no such key: {key}"))),
        },
        Command::KvPut { key, value } => {
            let value = match value {
                Some(v) => v.clone().into_bytes(),
                None => read_stdin().map_err(Trouble::Usage)?,
            };
            if kv::put(client, key, value, None).await? {
                Ok(Outcome::Done(Vec::new()))
            } else {
                Ok(Outcome::No(format!("Consul did not write {key}")))
            }
        }
        Command::KvCas { key, old, new } => {
            let entry = kv::read(client, key, None).await?.entry;
            let (current, index) = match &entry {
                Some(e) => (e.value.clone().unwrap_or_default(), e.modify_index),
                None => (Vec::new(), 0),
            };
            if current != old.as_bytes() {
                let shown = match &entry {
                    None => "missing".to_string(),
                    Some(_) => format!("{:?}", String::from_utf8_lossy(&current)),
                };
                return Ok(Outcome::No(format!(
                    "cas failed: {key} is {shown}, not {old:?}"
                )));
            }
            if kv::put(client, key, new.clone().into_bytes(), Some(index)).await? {
                Ok(Outcome::Done(Vec::new()))
            } else {
                Ok(Outcome::No(format!(
                    "cas failed: {key} changed while it was being written; read it again"
                )))
            }
        }
        Command::KvDelete { key } => {
            kv::delete(client, key).await?;
            Ok(Outcome::Done(Vec::new()))
        }
        Command::LockAcquire { key, value } => {
            lock_acquire(client, key, value.as_deref(), me).await
        }
        Command::LockRelease { key } => {
            let Some(entry) = kv::read(client, key, None).await?.entry else {
                return Ok(Outcome::Done(Vec::new()));
            };
            let Some(session) = entry.session else {
                return Ok(Outcome::Done(Vec::new()));
            };
            let holder = holder_name(client, &session).await?;
            if holder.as_deref() != Some(me) {
                return Ok(Outcome::No(format!(
                    "lock {key} is held by {}, not by {me}; only the holder releases it",
                    holder.as_deref().unwrap_or("an expired session")
                )));
            }
            kv::release(client, key, &session).await?;
            kv::destroy_session(client, &session).await?;
            Ok(Outcome::Done(Vec::new()))
        }
        Command::LockHolder { key } => {
            let session = kv::read(client, key, None)
                .await?
                .entry
                .and_then(|e| e.session);
            let holder = match session {
                Some(s) => holder_name(client, &s).await?,
                None => None,
            };
            match holder {
                Some(h) => Ok(Outcome::Done(format!("{h}\n").into_bytes())),
                None => Ok(Outcome::No(format!("lock {key} is free"))),
            }
        }
        Command::Tags { .. } | Command::Meta { .. } => Err(Trouble::Usage(
            "tags and meta go through the control socket".into(),
        )),
    }
}

/// Takes `key` for `me`. Holding it already is success (a hook may run
/// twice); the value is written again then.
async fn lock_acquire(
    client: &ConsulClient,
    key: &str,
    value: Option<&str>,
    me: &str,
) -> Result<Outcome, Trouble> {
    let value = value.unwrap_or(me).as_bytes().to_vec();
    if let Some(session) = kv::read(client, key, None)
        .await?
        .entry
        .and_then(|e| e.session)
    {
        let holder = holder_name(client, &session).await?;
        if holder.as_deref() == Some(me) {
            return match kv::acquire(client, key, &session, value).await? {
                true => Ok(Outcome::Done(Vec::new())),
                false => Ok(Outcome::No(format!(
                    "lock {key} was lost meanwhile; try again"
                ))),
            };
        }
        if let Some(other) = holder {
            return Ok(Outcome::No(format!("lock {key} is held by {other}")));
        }
    }
    let spec = SessionSpec {
        name: kv::session_name_for(me),
        // Tied to the node only: the lock outlives this command and is
        // released by `lock release` (or when the node fails).
        checks: vec!["serfHealth".into()],
        ttl: None,
        lock_delay: LOCK_DELAY,
    };
    let session = match kv::create_session(client, &spec).await {
        Ok(s) => s,
        Err(CreateError::CheckNotPassing(why)) => {
            return Ok(Outcome::No(format!("Consul refuses a session: {why}")));
        }
        Err(CreateError::Failed(e)) => return Err(e.into()),
    };
    let acquired = kv::acquire(client, key, &session, value).await;
    if !matches!(acquired, Ok(true)) {
        // Not ours after all: leave no session behind.
        let _ = kv::destroy_session(client, &session).await;
    }
    if acquired? {
        return Ok(Outcome::Done(Vec::new()));
    }
    let holder = match kv::read(client, key, None)
        .await?
        .entry
        .and_then(|e| e.session)
    {
        Some(s) => holder_name(client, &s).await?,
        None => None,
    };
    Ok(Outcome::No(match holder {
        Some(h) => format!("lock {key} is held by {h}"),
        None => format!(
            "lock {key} cannot be taken yet: its last holder's session ended and Consul's \
             lock-delay (up to 60s) keeps it free; try again shortly"
        ),
    }))
}

/// Who holds a session (`None` when it no longer exists).
async fn holder_name(client: &ConsulClient, session: &str) -> Result<Option<String>, Trouble> {
    Ok(kv::session_name(client, session)
        .await?
        .map(|name| kv::holder_of(&name).to_string()))
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut value = Vec::new();
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|e| format!("cannot read the value from standard input: {e}"))?;
    Ok(value)
}

/// A Consul failure in words, with what to check.
fn consul_trouble(e: &CallError, url: &str) -> String {
    match e {
        CallError::Unreachable(why) => format!(
            "consul at {url} is unreachable ({why}); check CONSUL_HTTP_ADDR or the config's `consul`"
        ),
        CallError::Status { status: 403, .. } => format!(
            "consul at {url} refused the request ({e}): the ACL token (CONSUL_HTTP_TOKEN or consul.token) may not allow it"
        ),
        CallError::Status { .. } => format!("consul at {url} refused the request ({e})"),
    }
}

/// `tags` and `meta`: through the running autopilot's control socket.
fn service(
    job: &str,
    edit: Option<&ServiceEdit>,
    tags: bool,
    config_flag: Option<&str>,
    socket_flag: Option<&str>,
    env: &HashMap<String, String>,
) -> u8 {
    // Found as the control subcommands find it: `-socket`,
    // `$AUTOPILOT_CONTROL_SOCKET`, the config's `control.socket`, the default.
    let (socket, _) = super::control::resolve_socket(socket_flag, config_flag, env);
    let path = format!(
        "/v3/jobs/{}/service",
        crate::discovery::client::segment(job)
    );
    let body = edit.map(|e| serde_json::to_vec(e).unwrap_or_default());
    let method = if body.is_some() { "POST" } else { "GET" };
    let reply =
        match super::client::request(&socket, method, &path, body.as_deref(), CONTROL_TIMEOUT) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("autopilot: {e}");
                return EXIT_NO;
            }
        };
    if reply.status == 503 {
        eprintln!("autopilot: {}", reply.message());
        return EXIT_CONSUL;
    }
    if !reply.is_success() {
        eprintln!("autopilot: {}", reply.message());
        return EXIT_NO;
    }
    if edit.is_some() {
        return EXIT_OK;
    }
    let live: LiveService = match serde_json::from_str(&reply.body) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autopilot: unexpected answer ({e}): {}", reply.body);
            return EXIT_NO;
        }
    };
    let lines: Vec<String> = if tags {
        live.tags
    } else {
        live.meta.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    for line in lines {
        println!("{line}");
    }
    EXIT_OK
}

#[cfg(test)]
mod tests;
