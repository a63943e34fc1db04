//! What a watch hands to the jobs it triggers: the data it saw in Consul, as
//! environment variables and as a file.
//!
//! For a watch named `NAME` (upper-cased, other characters than letters and
//! digits as `_`), every child started afterwards gets:
//!
//! | variable                           | service watch                       | `key` watch        | `prefix` watch        |
//! |------------------------------------|-------------------------------------|--------------------|-----------------------|
//! | `CONTAINERPILOT_WATCH_NAME_INSTANCES` | `10.0.0.1:3306,10.0.0.2:3306`     |                    |                       |
//! | `CONTAINERPILOT_WATCH_NAME_COUNT`  | passing instances                   |                    | keys under the prefix |
//! | `CONTAINERPILOT_WATCH_NAME_VALUE`  |                                     | the value (unset if no key) |              |
//! | `CONTAINERPILOT_WATCH_NAME_FILE`   | JSON array of instances             | the raw value      | JSON object key → value |
//! | `CONTAINERPILOT_WATCH_NAME_ADDED`, `_REMOVED` | instances since the last event, as `INSTANCES` | |            |
//! | `CONTAINERPILOT_WATCH_NAME_CHANGES_FILE` | `{instances, added, removed, changed}` ([`changes_json`]) | | |
//!
//! The files live in a directory of autopilot's own ([`RuntimeDir`]) and are
//! replaced atomically (write, then rename), so a hook never reads half a file.

use crate::environ::env_name;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One passing instance of a watched service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: String,
    /// The Consul node it runs on (service IDs are only unique per node).
    pub node: String,
    /// The service address, or the node's when the service has none.
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
}

impl Instance {
    /// What a "change" compares: ContainerPilot compared address and port;
    /// autopilot also compares the instance's identity and tags.
    fn identity(&self) -> (&str, &str, &str, u16, &[String]) {
        (&self.node, &self.id, &self.address, self.port, &self.tags)
    }

    /// `address:port`, with IPv6 addresses in brackets.
    pub fn host_port(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// Whether two instance lists (as [`parse_health`] returns them) differ in
/// anything that counts as a change.
pub fn same_instances(a: &[Instance], b: &[Instance]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identity() == y.identity())
}

/// Parses the body of `GET /v1/health/service/<name>`, sorted by node and ID.
/// Entries that lack a service ID are skipped rather than failing the watch.
pub fn parse_health(body: &[u8]) -> Result<Vec<Instance>, String> {
    let entries: Vec<Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(v)) => v,
        Ok(Value::Null) => Vec::new(),
        Ok(other) => {
            return Err(format!(
                "expected a list of instances, got {}",
                kind(&other)
            ));
        }
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out: Vec<Instance> = entries
        .iter()
        .filter_map(|entry| {
            let node = entry.get("Node").cloned().unwrap_or(Value::Null);
            let service = entry.get("Service")?;
            let id = text(service, "ID");
            if id.is_empty() {
                return None;
            }
            let mut address = text(service, "Address");
            if address.is_empty() {
                address = text(&node, "Address");
            }
            let strings = |key: &str| -> Vec<String> {
                service
                    .get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let meta = service
                .get("Meta")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            Some(Instance {
                id,
                node: text(&node, "Node"),
                address,
                port: service
                    .get("Port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                tags: strings("Tags"),
                meta,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.node, &a.id).cmp(&(&b.node, &b.id)));
    Ok(out)
}

/// One key read from Consul's KV store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    /// `None` for a "folder" key without a value.
    pub value: Option<Vec<u8>>,
}

/// Parses the body of `GET /v1/kv/<key>[?recurse]`, sorted by key.
pub fn parse_kv(body: &[u8]) -> Result<Vec<KvEntry>, String> {
    use base64::Engine;
    let entries: Vec<Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(v)) => v,
        Ok(Value::Null) => Vec::new(),
        Ok(other) => return Err(format!("expected a list of keys, got {}", kind(&other))),
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    let mut out = Vec::new();
    for entry in &entries {
        let Some(key) = entry.get("Key").and_then(Value::as_str) else {
            continue;
        };
        let value = match entry.get("Value").and_then(Value::as_str) {
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("the value of {key} is not base64: {e}"))?,
            ),
            None => None,
        };
        out.push(KvEntry {
            key: key.to_string(),
            value,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `CONTAINERPILOT_WATCH_<NAME>_`: the prefix of a watch's variables.
pub fn env_prefix(watch: &str) -> String {
    let name: String = env_name(watch)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("CONTAINERPILOT_WATCH_{name}_")
}

/// The variables for a service watch's current instances (`file`: its JSON).
pub fn instance_vars(
    prefix: &str,
    instances: &[Instance],
    file: &Path,
) -> Vec<(String, Option<String>)> {
    let list: Vec<String> = instances.iter().map(Instance::host_port).collect();
    vec![
        (format!("{prefix}INSTANCES"), Some(list.join(","))),
        (format!("{prefix}COUNT"), Some(instances.len().to_string())),
        (format!("{prefix}FILE"), Some(file.display().to_string())),
    ]
}

/// What changed in a service watch between two publications. Instances are
/// told apart by node and ID; `changed` holds the new form of an instance
/// whose address, port, tags or meta differ. On the first publication every
/// instance is `added`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changes<'a> {
    /// Every instance now, so one read gives a consistent picture.
    pub instances: &'a [Instance],
    pub added: Vec<&'a Instance>,
    pub removed: Vec<&'a Instance>,
    pub changed: Vec<&'a Instance>,
}

pub fn changes<'a>(before: &'a [Instance], now: &'a [Instance]) -> Changes<'a> {
    let key = |i: &Instance| (i.node.clone(), i.id.clone());
    let old: BTreeMap<(String, String), &Instance> = before.iter().map(|i| (key(i), i)).collect();
    let new: BTreeMap<(String, String), &Instance> = now.iter().map(|i| (key(i), i)).collect();
    Changes {
        instances: now,
        added: now.iter().filter(|i| !old.contains_key(&key(i))).collect(),
        removed: before
            .iter()
            .filter(|i| !new.contains_key(&key(i)))
            .collect(),
        changed: now
            .iter()
            .filter(|i| old.get(&key(i)).is_some_and(|o| o != i))
            .collect(),
    }
}

/// The variables for what changed: `ADDED` and `REMOVED` as `host:port`
/// lists (like `INSTANCES`), and the changes file.
pub fn changes_vars(
    prefix: &str,
    changes: &Changes<'_>,
    file: &Path,
) -> Vec<(String, Option<String>)> {
    let list = |v: &[&Instance]| {
        v.iter()
            .map(|i| i.host_port())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        (format!("{prefix}ADDED"), Some(list(&changes.added))),
        (format!("{prefix}REMOVED"), Some(list(&changes.removed))),
        (
            format!("{prefix}CHANGES_FILE"),
            Some(file.display().to_string()),
        ),
    ]
}

/// The changes file of a service watch: `{"instances": [...], "added": [...],
/// "removed": [...], "changed": [...]}`.
pub fn changes_json(changes: &Changes<'_>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(changes).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes
}

/// The file for a service watch: a JSON array of instances.
pub fn instances_json(instances: &[Instance]) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(instances).unwrap_or_else(|_| b"[]".to_vec());
    bytes.push(b'\n');
    bytes
}

/// The variables for a `key` watch. A value that cannot be an environment
/// variable (it holds a NUL byte) is only in the file.
pub fn key_vars(
    prefix: &str,
    entry: Option<&KvEntry>,
    file: &Path,
) -> Vec<(String, Option<String>)> {
    let value = entry
        .and_then(|e| e.value.as_deref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|v| !v.contains('\0'));
    vec![
        (format!("{prefix}VALUE"), value),
        (format!("{prefix}FILE"), Some(file.display().to_string())),
    ]
}

/// The variables for a `prefix` watch.
pub fn prefix_vars(
    prefix: &str,
    entries: &[KvEntry],
    file: &Path,
) -> Vec<(String, Option<String>)> {
    vec![
        (format!("{prefix}COUNT"), Some(entries.len().to_string())),
        (format!("{prefix}FILE"), Some(file.display().to_string())),
    ]
}

/// The file for a `prefix` watch: `{"key": "value", "folder/": null}`.
/// Values are read as UTF-8 (invalid bytes replaced).
pub fn prefix_json(entries: &[KvEntry]) -> Vec<u8> {
    let map: BTreeMap<&str, Option<String>> = entries
        .iter()
        .map(|e| {
            (
                e.key.as_str(),
                e.value
                    .as_deref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&map).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes
}

/// The directory for watch files: `/run/autopilot-<pid>` when `/run` is
/// writable, else `$TMPDIR/autopilot-<pid>` (usually `/tmp`). Removed when
/// autopilot exits normally.
///
/// Held under an exclusive `flock` while autopilot runs: every autopilot is
/// PID 1, so two of them sharing a `/run` (a host-mounted one, or the
/// benches' many autopilots each in its own PID namespace) would otherwise
/// write the same files and remove the directory under each other. A
/// directory whose lock is held goes to the next name (`autopilot-1.2`, ...);
/// one left behind by a killed autopilot is not locked and is reused.
pub struct RuntimeDir {
    path: PathBuf,
    /// Keeps the lock (closed on exec, so children do not hold it).
    _lock: Option<Flock<std::fs::File>>,
}

impl RuntimeDir {
    pub fn create() -> Result<RuntimeDir, String> {
        let leaf = format!("autopilot-{}", std::process::id());
        let bases = [Path::new("/run").to_path_buf(), std::env::temp_dir()];
        let mut errors = Vec::new();
        for base in bases {
            match RuntimeDir::claim(&base, &leaf) {
                Ok(dir) => return Ok(dir),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "cannot create a directory for watch data ({})",
            errors.join("; ")
        ))
    }

    /// The first of `base/leaf`, `base/leaf.2`, ... that no running autopilot holds.
    fn claim(base: &Path, leaf: &str) -> Result<RuntimeDir, String> {
        // Room for the benches: hundreds of autopilots on one `/run`.
        const TRIES: u32 = 4096;
        let mut n = 1;
        let mut attempts = 0;
        while attempts < TRIES * 2 && n <= TRIES {
            attempts += 1;
            let path = match n {
                1 => base.join(leaf),
                n => base.join(format!("{leaf}.{n}")),
            };
            let shown = path.display();
            std::fs::create_dir_all(&path).map_err(|e| format!("{shown}: {e}"))?;
            let dir = match std::fs::File::open(&path) {
                Ok(dir) => dir,
                // Removed by the autopilot that held it, just now: try again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{shown}: {e}")),
            };
            let lock = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((_, Errno::EWOULDBLOCK)) => {
                    n += 1;
                    continue;
                }
                Err((_, e)) => return Err(format!("{shown}: cannot lock: {e}")),
            };
            // Locked, but maybe a directory its holder removed meanwhile.
            let held = lock.metadata().map_err(|e| format!("{shown}: {e}"))?;
            match std::fs::metadata(&path) {
                Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {
                    return Ok(RuntimeDir {
                        path,
                        _lock: Some(lock),
                    });
                }
                _ => continue,
            }
        }
        Err(format!(
            "{}: {TRIES} directories named {leaf}* in use",
            base.display()
        ))
    }

    /// A directory of the test's own: `create` names it by pid, which tests
    /// running in one process would share (and remove under each other).
    #[cfg(test)]
    pub fn at(path: PathBuf) -> RuntimeDir {
        RuntimeDir { path, _lock: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file of the watch `name` with this extension.
    pub fn file_for(&self, name: &str, extension: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.path.join(format!("watch-{safe}.{extension}"))
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Replaces `path` with `bytes` atomically, off the async thread.
pub async fn write_atomic(path: PathBuf, bytes: Vec<u8>) -> Result<(), String> {
    match write_all_atomic(vec![(path, bytes)]).await.pop() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Replaces each file atomically, all in one trip to a blocking thread (one
/// wake-up of that thread per change, not one per file); returns the errors.
pub async fn write_all_atomic(files: Vec<(PathBuf, Vec<u8>)>) -> Vec<String> {
    let shown: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let job = tokio::task::spawn_blocking(move || -> Vec<(usize, std::io::Error)> {
        let mut errors = Vec::new();
        for (i, (path, bytes)) in files.into_iter().enumerate() {
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                errors.push((i, e));
            }
        }
        errors
    });
    match job.await {
        Ok(errors) => errors
            .into_iter()
            .map(|(i, e)| format!("cannot write {}: {e}", shown[i]))
            .collect(),
        Err(e) => vec![format!("cannot write {}: {e}", shown.join(", "))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH: &str = r#"[
        {"Node": {"Node": "n2", "Address": "10.0.0.2"},
         "Service": {"ID": "db-b", "Service": "db", "Address": "", "Port": 3306, "Tags": ["replica"], "Meta": {"v": "2"}}},
        {"Node": {"Node": "n1", "Address": "10.0.0.1"},
         "Service": {"ID": "db-a", "Service": "db", "Address": "192.168.0.1", "Port": 3306, "Tags": null, "Meta": null}},
        {"Node": {"Node": "n3"}, "Service": {"Service": "broken"}}
    ]"#;

    #[test]
    fn health_answers_become_sorted_instances() {
        let list = parse_health(HEALTH.as_bytes()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "db-a");
        assert_eq!(list[0].address, "192.168.0.1");
        assert!(list[0].tags.is_empty());
        assert_eq!(
            list[1].address, "10.0.0.2",
            "falls back to the node address"
        );
        assert_eq!(list[1].meta["v"], "2");
        assert!(parse_health(b"null").unwrap().is_empty());
        assert!(
            parse_health(b"{\"x\":1}")
                .unwrap_err()
                .contains("an object")
        );
        assert!(parse_health(b"<html>").is_err());
    }

    #[test]
    fn a_change_is_any_difference_in_id_address_port_or_tags() {
        let base = parse_health(HEALTH.as_bytes()).unwrap();
        assert!(same_instances(&base, &base.clone()));
        let mut meta_only = base.clone();
        meta_only[0].meta.insert("x".into(), "y".into());
        assert!(same_instances(&base, &meta_only));
        for change in 0..4 {
            let mut other = base.clone();
            match change {
                0 => other[0].id = "db-z".into(),
                1 => other[0].address = "192.168.0.9".into(),
                2 => other[0].port = 3307,
                _ => other[0].tags.push("primary".into()),
            }
            assert!(!same_instances(&base, &other), "change {change}");
        }
        assert!(!same_instances(&base, &base[..1]));
    }

    #[test]
    fn service_variables_and_file() {
        let list = parse_health(HEALTH.as_bytes()).unwrap();
        let prefix = env_prefix("my-db.primary");
        assert_eq!(prefix, "CONTAINERPILOT_WATCH_MY_DB_PRIMARY_");
        let vars: BTreeMap<_, _> = instance_vars(&prefix, &list, Path::new("/run/x.json"))
            .into_iter()
            .collect();
        assert_eq!(
            vars["CONTAINERPILOT_WATCH_MY_DB_PRIMARY_INSTANCES"].as_deref(),
            Some("192.168.0.1:3306,10.0.0.2:3306")
        );
        assert_eq!(
            vars["CONTAINERPILOT_WATCH_MY_DB_PRIMARY_COUNT"].as_deref(),
            Some("2")
        );
        let json: Value = serde_json::from_slice(&instances_json(&list)).unwrap();
        assert_eq!(json[1]["tags"][0], "replica");
        assert_eq!(json[1]["meta"]["v"], "2");
        assert_eq!(json[0]["port"], 3306);
    }

    #[test]
    fn changes_tell_added_removed_and_changed_instances_apart() {
        let before = parse_health(HEALTH.as_bytes()).unwrap();
        let first = changes(&[], &before);
        assert_eq!(first.added.len(), 2);
        assert!(first.removed.is_empty() && first.changed.is_empty());

        let mut now = before.clone();
        now.remove(0);
        now[0].tags.push("primary".into());
        now.push(Instance {
            id: "db-c".into(),
            node: "n3".into(),
            address: "10.0.0.3".into(),
            port: 3306,
            tags: vec![],
            meta: BTreeMap::new(),
        });
        let c = changes(&before, &now);
        assert_eq!(
            c.added.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["db-c"]
        );
        assert_eq!(
            c.removed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["db-a"]
        );
        assert_eq!(c.changed[0].tags, ["replica", "primary"]);
        let vars: BTreeMap<_, _> = changes_vars("P_", &c, Path::new("/c.json"))
            .into_iter()
            .collect();
        assert_eq!(vars["P_ADDED"].as_deref(), Some("10.0.0.3:3306"));
        assert_eq!(vars["P_REMOVED"].as_deref(), Some("192.168.0.1:3306"));
        assert_eq!(vars["P_CHANGES_FILE"].as_deref(), Some("/c.json"));
        let json: Value = serde_json::from_slice(&changes_json(&c)).unwrap();
        assert_eq!(json["instances"].as_array().unwrap().len(), 2);
        assert_eq!(json["removed"][0]["id"], "db-a");
        assert_eq!(json["added"][0]["port"], 3306);
        assert_eq!(json["changed"][0]["meta"]["v"], "2");
    }

    #[test]
    fn ipv6_instances_are_bracketed() {
        let i = Instance {
            id: "x".into(),
            node: "n".into(),
            address: "2001:db8::1".into(),
            port: 80,
            tags: vec![],
            meta: BTreeMap::new(),
        };
        assert_eq!(i.host_port(), "[2001:db8::1]:80");
    }

    #[test]
    fn kv_answers_decode_base64() {
        let body = r#"[{"Key": "app/b", "Value": "d29ybGQ=", "Flags": 0},
                       {"Key": "app/", "Value": null},
                       {"Key": "app/a", "Value": "aGVsbG8="}]"#;
        let entries = parse_kv(body.as_bytes()).unwrap();
        assert_eq!(entries[0].key, "app/");
        assert_eq!(entries[1].value.as_deref(), Some(&b"hello"[..]));
        let json: Value = serde_json::from_slice(&prefix_json(&entries)).unwrap();
        assert_eq!(json["app/b"], "world");
        assert!(json["app/"].is_null());
        assert!(parse_kv(br#"[{"Key": "k", "Value": "!!"}]"#).is_err());

        let vars: BTreeMap<_, _> = key_vars("P_", entries.get(1), Path::new("/f"))
            .into_iter()
            .collect();
        assert_eq!(vars["P_VALUE"].as_deref(), Some("hello"));
        let vars: BTreeMap<_, _> = key_vars("P_", None, Path::new("/f")).into_iter().collect();
        assert_eq!(vars["P_VALUE"], None);
    }

    #[tokio::test]
    async fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch-db.json");
        write_atomic(path.clone(), b"[1]".to_vec()).await.unwrap();
        write_atomic(path.clone(), b"[2]".to_vec()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[2]");
        assert!(
            write_atomic(dir.path().join("no/such/dir"), vec![])
                .await
                .is_err()
        );
    }

    #[test]
    fn autopilots_sharing_a_base_get_a_directory_each() {
        let base = tempfile::tempdir().unwrap();
        let first = RuntimeDir::claim(base.path(), "autopilot-1").unwrap();
        let second = RuntimeDir::claim(base.path(), "autopilot-1").unwrap();
        assert_eq!(first.path(), base.path().join("autopilot-1"));
        assert_eq!(second.path(), base.path().join("autopilot-1.2"));
        drop(first);
        assert!(!base.path().join("autopilot-1").exists());
        assert!(second.path().is_dir());
        // Left behind by a killed autopilot: not locked, so reused.
        std::fs::create_dir(base.path().join("autopilot-1")).unwrap();
        let third = RuntimeDir::claim(base.path(), "autopilot-1").unwrap();
        assert_eq!(third.path(), base.path().join("autopilot-1"));
    }

    #[test]
    fn runtime_dir_files_have_safe_names() {
        let dir = RuntimeDir::create().unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        assert_eq!(
            dir.file_for("a/b c", "json")
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
            "watch-a_b_c.json"
        );
        drop(dir);
        assert!(!path.exists());
    }
}
