//! The Consul KV and session calls that leader election and the `kv` and
//! `lock` subcommands make, typed: a lost CAS, a held lock or an unknown
//! session are answers ([`Ok`]), not failures, so callers can tell them apart
//! from an agent that is unreachable or refuses the request.

use crate::discovery::client::{Blocking, CallError, ConsulClient, Reply, key_path, segment};
use crate::http::outbound::Method;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// One key as Consul returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// `None` for a key stored without a value.
    pub value: Option<Vec<u8>>,
    /// The session holding the key's lock, if any.
    pub session: Option<String>,
    /// For check-and-set: the index of the key's last change.
    pub modify_index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEntry {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    modify_index: u64,
}

/// A key read: the entry (`None` when there is no such key) and the index
/// for the next blocking read.
#[derive(Debug, Clone)]
pub struct Read {
    pub entry: Option<Entry>,
    pub index: Option<u64>,
}

/// A call that did not give an answer: the agent is unreachable, or it
/// refused (ACL, no cluster leader, bad request).
pub type Failure = CallError;

/// Reads `key`, as a blocking query when `blocking` is given.
pub async fn read(
    client: &ConsulClient,
    key: &str,
    blocking: Option<Blocking>,
) -> Result<Read, Failure> {
    let reply = client.get(&kv_path(key), &[], blocking).await?;
    if reply.status == 404 {
        return Ok(Read {
            entry: None,
            index: reply.index,
        });
    }
    let reply = reply.success()?;
    let entries: Vec<RawEntry> = serde_json::from_slice(&reply.body)
        .map_err(|e| CallError::Unreachable(format!("unreadable answer for key {key}: {e}")))?;
    let wanted = key.trim_start_matches('/');
    let entry = match entries.into_iter().find(|e| e.key == wanted) {
        Some(raw) => Some(decode(raw)?),
        None => None,
    };
    Ok(Read {
        entry,
        index: reply.index,
    })
}

fn decode(raw: RawEntry) -> Result<Entry, Failure> {
    let value = match raw.value {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| {
                    CallError::Unreachable(format!("the value of {} is not base64: {e}", raw.key))
                })?,
        ),
        None => None,
    };
    Ok(Entry {
        key: raw.key,
        value,
        session: raw.session.filter(|s| !s.is_empty()),
        modify_index: raw.modify_index,
    })
}

/// Writes `value`; with `cas`, only if the key's modify index is still that
/// (0: only if the key does not exist). Returns whether it was written.
pub async fn put(
    client: &ConsulClient,
    key: &str,
    value: Vec<u8>,
    cas: Option<u64>,
) -> Result<bool, Failure> {
    let query: Vec<(&str, String)> = cas.map(|i| ("cas", i.to_string())).into_iter().collect();
    let reply = client
        .call(Method::PUT, &kv_path(key), &query, Some(value))
        .await?;
    boolean(reply.success()?)
}

/// Deletes `key` (a key that does not exist counts as deleted).
pub async fn delete(client: &ConsulClient, key: &str) -> Result<bool, Failure> {
    let reply = client
        .call(Method::DELETE, &kv_path(key), &[], None)
        .await?;
    boolean(reply.success()?)
}

/// Takes the lock on `key` for `session`, writing `value`. `false`: another
/// session holds it, or it is in its lock-delay after an invalidation.
/// Acquiring a lock the session already holds succeeds (and rewrites the value).
pub async fn acquire(
    client: &ConsulClient,
    key: &str,
    session: &str,
    value: Vec<u8>,
) -> Result<bool, Failure> {
    let query = [("acquire", session.to_string())];
    let reply = client
        .call(Method::PUT, &kv_path(key), &query, Some(value))
        .await?;
    boolean(reply.success()?)
}

/// Releases the lock `session` holds on `key` (no lock-delay follows).
/// `false`: the session does not hold it.
pub async fn release(client: &ConsulClient, key: &str, session: &str) -> Result<bool, Failure> {
    let query = [("release", session.to_string())];
    let reply = client
        .call(Method::PUT, &kv_path(key), &query, None)
        .await?;
    boolean(reply.success()?)
}

/// What a new session is tied to.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Shown by `autopilot lock holder`: `autopilot:<holder>`.
    pub name: String,
    /// Health checks whose failure invalidates the session at once.
    pub checks: Vec<String>,
    /// `None`: no TTL (the session lives until destroyed or a check fails).
    pub ttl: Option<Duration>,
    pub lock_delay: Duration,
}

impl SessionSpec {
    fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "Name": self.name,
            "Checks": self.checks,
            "LockDelay": go_duration(self.lock_delay),
            // An invalidated session's locks are released, not deleted: the
            // key keeps the last holder's value for whoever looks.
            "Behavior": "release",
        });
        if let Some(ttl) = self.ttl {
            body["TTL"] = json!(go_duration(ttl));
        }
        body
    }
}

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// A check it should be tied to is missing or critical (Consul refuses
    /// such a session); retrying helps once the check passes.
    CheckNotPassing(String),
    Failed(Failure),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::CheckNotPassing(why) => write!(f, "{why}"),
            CreateError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Creates a session; returns its ID.
pub async fn create_session(
    client: &ConsulClient,
    spec: &SessionSpec,
) -> Result<String, CreateError> {
    let body = serde_json::to_vec(&spec.body()).unwrap_or_default();
    let reply = client
        .call(Method::PUT, "/v1/session/create", &[], Some(body))
        .await
        .map_err(CreateError::Failed)?;
    if !(200..300).contains(&reply.status) {
        let text = String::from_utf8_lossy(&reply.body).trim().to_string();
        // Consul 1.x: "Check 'service:db-1' is in critical state",
        // "Missing check 'service:db-1' registration".
        if text.contains("critical state") || text.contains("Missing check") {
            return Err(CreateError::CheckNotPassing(text));
        }
        return Err(CreateError::Failed(CallError::Status {
            status: reply.status,
            body: text,
        }));
    }
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "ID")]
        id: String,
    }
    serde_json::from_slice::<Created>(&reply.body)
        .map(|c| c.id)
        .map_err(|e| {
            CreateError::Failed(CallError::Unreachable(format!(
                "unreadable answer to session create: {e}"
            )))
        })
}

/// Renews a TTL session. `Ok(false)`: Consul no longer knows it (it expired
/// or was invalidated by one of its checks).
pub async fn renew_session(client: &ConsulClient, id: &str) -> Result<bool, Failure> {
    let path = format!("/v1/session/renew/{}", segment(id));
    let reply = client.call(Method::PUT, &path, &[], None).await?;
    if reply.status == 404 {
        return Ok(false);
    }
    let reply = reply.success()?;
    // Some versions answer 200 with an empty list for an unknown session.
    Ok(!matches!(
        serde_json::from_slice::<serde_json::Value>(&reply.body),
        Ok(serde_json::Value::Array(a)) if a.is_empty()
    ) && !reply.body.trim_ascii().eq(b"null"))
}

/// Destroys a session, releasing its locks (with its lock-delay).
pub async fn destroy_session(client: &ConsulClient, id: &str) -> Result<(), Failure> {
    let path = format!("/v1/session/destroy/{}", segment(id));
    let reply = client.call(Method::PUT, &path, &[], None).await?;
    reply.success().map(|_| ())
}

/// A session's name, or `None` when Consul does not know the session.
pub async fn session_name(client: &ConsulClient, id: &str) -> Result<Option<String>, Failure> {
    let path = format!("/v1/session/info/{}", segment(id));
    let reply = client.get(&path, &[], None).await?.success()?;
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "Name", default)]
        name: String,
    }
    let infos: Option<Vec<Info>> = serde_json::from_slice(&reply.body)
        .map_err(|e| CallError::Unreachable(format!("unreadable answer to session info: {e}")))?;
    Ok(infos.unwrap_or_default().into_iter().next().map(|i| i.name))
}

/// The session name autopilot gives a holder (a leader's service ID, or a
/// `lock acquire` caller's hostname), so `lock holder` can print who it is.
pub fn session_name_for(holder: &str) -> String {
    format!("autopilot:{holder}")
}

/// The holder named by a session name [`session_name_for`] made; other
/// sessions (made by other tools) are shown by their name as is.
pub fn holder_of(session_name: &str) -> &str {
    session_name
        .strip_prefix("autopilot:")
        .unwrap_or(session_name)
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", key_path(key))
}

/// The `true`/`false` body of KV writes.
fn boolean(reply: Reply) -> Result<bool, Failure> {
    match reply.body.trim_ascii() {
        b"true" => Ok(true),
        b"false" => Ok(false),
        other => Err(CallError::Unreachable(format!(
            "unexpected answer {:?} (expected true or false)",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// A duration as Consul reads it (`"15s"`, `"1500ms"`).
pub fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_with_their_session() {
        let raw: Vec<RawEntry> = serde_json::from_str(
            r#"[{"Key": "a/b", "Value": "aGk=", "Session": "s-1", "ModifyIndex": 42, "Flags": 0},
                {"Key": "a/c", "Value": null, "Session": ""}]"#,
        )
        .unwrap();
        let mut it = raw.into_iter();
        let first = decode(it.next().unwrap()).unwrap();
        assert_eq!(first.value.as_deref(), Some(&b"hi"[..]));
        assert_eq!(first.session.as_deref(), Some("s-1"));
        assert_eq!(first.modify_index, 42);
        let second = decode(it.next().unwrap()).unwrap();
        assert_eq!((second.value, second.session), (None, None));
    }

    #[test]
    fn sessions_carry_their_checks_and_limits() {
        let spec = SessionSpec {
            name: session_name_for("db-host1"),
            checks: vec!["serfHealth".into(), "service:db-host1".into()],
            ttl: Some(Duration::from_secs(15)),
            lock_delay: Duration::from_millis(1500),
        };
        let body = spec.body();
        assert_eq!(body["Name"], "autopilot:db-host1");
        assert_eq!(body["Checks"][1], "service:db-host1");
        assert_eq!(body["TTL"], "15s");
        assert_eq!(body["LockDelay"], "1500ms");
        assert_eq!(body["Behavior"], "release");
        let no_ttl = SessionSpec { ttl: None, ..spec };
        assert!(no_ttl.body().get("TTL").is_none());
        assert_eq!(holder_of("autopilot:db-host1"), "db-host1");
        assert_eq!(holder_of("consul-lock"), "consul-lock");
    }

    #[test]
    fn kv_answers_must_be_booleans() {
        let reply = |body: &str| Reply {
            status: 200,
            index: None,
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(boolean(reply("true\n")), Ok(true));
        assert_eq!(boolean(reply("false")), Ok(false));
        assert!(boolean(reply("<html>")).is_err());
    }
}
