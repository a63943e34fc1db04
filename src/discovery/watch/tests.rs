use super::*;

#[test]
fn the_index_resets_when_it_goes_backwards() {
    assert_eq!(next_index(0, Some(42)), 42);
    assert_eq!(next_index(42, Some(42)), 42);
    assert_eq!(next_index(42, Some(50)), 50);
    assert_eq!(next_index(42, Some(7)), 0);
    assert_eq!(next_index(0, Some(0)), 1);
    assert_eq!(next_index(42, None), 0);
}

#[test]
fn service_queries_ask_for_passing_instances_with_filters() {
    let (path, params) = request(&WatchTarget::Service {
        service: "db".into(),
        tag: Some("primary".into()),
        dc: Some("dc2".into()),
    });
    assert_eq!(path, "/v1/health/service/db");
    assert!(params.contains(&("passing", "1".into())));
    assert!(params.contains(&("tag", "primary".into())));
    assert!(params.contains(&("dc", "dc2".into())));
    let (path, params) = request(&WatchTarget::Prefix {
        prefix: "/app/config".into(),
        dc: None,
    });
    assert_eq!(path, "/v1/kv/app/config");
    assert_eq!(params, vec![("recurse", "true".to_string())]);
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        index: Some(1),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn a_missing_key_is_data_but_other_errors_are_not() {
    let key = WatchTarget::Key {
        key: "app/flag".into(),
        dc: None,
    };
    assert_eq!(parse(&key, &reply(404, "")).unwrap(), Snapshot::Key(None));
    let got = parse(&key, &reply(200, r#"[{"Key":"app/flag","Value":"b24="}]"#)).unwrap();
    assert!(matches!(got, Snapshot::Key(Some(ref e)) if e.value.as_deref() == Some(&b"on"[..])));
    assert!(
        parse(&key, &reply(403, "Permission denied"))
            .unwrap_err()
            .contains("ACL")
    );
    let service = WatchTarget::Service {
        service: "db".into(),
        tag: None,
        dc: None,
    };
    assert!(parse(&service, &reply(404, "")).is_err());
    assert!(
        parse(&service, &reply(500, "No cluster leader"))
            .unwrap_err()
            .contains("No cluster leader")
    );
}

#[test]
fn stale_answers_are_trusted_only_from_servers_in_touch_with_a_leader() {
    let fresh = |known_leader, last_contact: Option<u64>| Freshness {
        known_leader,
        last_contact: last_contact.map(Duration::from_millis),
    };
    assert!(trusted(&fresh(None, None)), "a local answer has no headers");
    assert!(trusted(&fresh(Some(true), Some(0))), "the leader");
    assert!(trusted(&fresh(Some(true), Some(40))), "a follower");
    assert!(trusted(&fresh(Some(true), Some(5000))));
    assert!(
        !trusted(&fresh(Some(true), Some(5001))),
        "a lagging follower"
    );
    assert!(!trusted(&fresh(Some(false), Some(10))), "no leader");
}

/// A fake agent that knows a leader or not as told, answers a watch's
/// query from index 0 at once (X-Consul-Index 100) and holds any other
/// for ever, as a restarted cluster that only knows lower indexes would
/// hold it for the whole wait. Returns its address and the request
/// lines it saw.
async fn fake_agent(
    port: Arc<std::sync::Mutex<u16>>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (log, port) = (log.clone(), port.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let line = head.lines().next().unwrap_or("").to_string();
                    log.lock().unwrap().push(line.clone());
                    let (headers, body) = if line.contains("/v1/status/leaderless") {
                        ("X-Consul-KnownLeader: false\r\n".to_string(), String::new())
                    } else if line.contains("/v1/status/leader-back") {
                        ("X-Consul-KnownLeader: true\r\n".to_string(), String::new())
                    } else if line.contains("index=0&") {
                        let port = *port.lock().unwrap();
                        let body = format!(
                            r#"[{{"Node":{{"Node":"n1","Address":"127.0.0.1"}},"Service":{{"ID":"db-{port}","Port":{port}}}}}]"#
                        );
                        let headers = "X-Consul-Index: 100\r\nX-Consul-KnownLeader: true\r\nX-Consul-LastContact: 0\r\n";
                        (headers.to_string(), body)
                    } else {
                        std::future::pending::<()>().await;
                        unreachable!()
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn next_changed(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    loop {
        let event = events.recv().await.unwrap();
        if event.code == EventCode::Changed {
            return;
        }
    }
}

#[tokio::test]
async fn a_leader_regained_makes_a_held_query_start_again_from_index_0() {
    let port = Arc::new(std::sync::Mutex::new(5001));
    let (addr, seen) = fake_agent(port.clone()).await;
    let consul = crate::config::model::ConsulConfig {
        address: addr,
        ..Default::default()
    };
    let endpoint = super::super::address::resolve(&consul, &|_| None).unwrap();
    let client = ConsulClient::new(&endpoint).unwrap();
    let bus = Bus::new();
    let mut events = bus.subscribe();
    let config = WatchConfig {
        name: "db".into(),
        target: WatchTarget::Service {
            service: "db".into(),
            tag: None,
            dc: None,
        },
        interval: Duration::from_millis(10),
        line: 1,
    };
    let files = tempfile::tempdir().unwrap();
    let watch = Watch::new(
        config,
        client.clone(),
        bus.clone(),
        Environ::new(Default::default()),
        StatusBoard::default(),
        Arc::new(RuntimeDir::at(files.path().to_path_buf())),
    );
    let task = tokio::spawn(watch.run());
    // Far below the 60 s a held query would take.
    let deadline = Duration::from_secs(10);
    tokio::time::timeout(deadline, next_changed(&mut events))
        .await
        .expect("the first state");
    // The query now held carries index 100; the data changes, but the
    // agent will never answer it.
    let held = |seen: &std::sync::Mutex<Vec<String>>| {
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("index=100&"))
    };
    while !held(&seen) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    *port.lock().unwrap() = 5002;
    // Another call sees the cluster lose its leader and get one again.
    client
        .get("/v1/status/leaderless", &[], None)
        .await
        .unwrap();
    client
        .get("/v1/status/leader-back", &[], None)
        .await
        .unwrap();
    tokio::time::timeout(deadline, next_changed(&mut events))
        .await
        .expect("the change, read again from index 0");
    task.abort();
    let seen = seen.lock().unwrap();
    let queries: Vec<&String> = seen.iter().filter(|l| l.contains("/v1/health/")).collect();
    assert!(queries.iter().all(|l| l.contains("stale")), "{queries:?}");
    assert_eq!(
        queries.iter().filter(|l| l.contains("index=0&")).count(),
        2,
        "{queries:?}"
    );
}

#[test]
fn kv_changes_compare_values_only() {
    let entry = |v: &str| KvEntry {
        key: "k".into(),
        value: Some(v.as_bytes().to_vec()),
    };
    assert!(Snapshot::Key(Some(entry("a"))).same(&Snapshot::Key(Some(entry("a")))));
    assert!(!Snapshot::Key(Some(entry("a"))).same(&Snapshot::Key(Some(entry("b")))));
    assert!(!Snapshot::Key(None).same(&Snapshot::Key(Some(entry("a")))));
    assert!(!Snapshot::Prefix(vec![entry("a")]).same(&Snapshot::Prefix(vec![])));
}
