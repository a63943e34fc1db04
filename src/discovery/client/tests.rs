use super::*;
use crate::config::model::{ConsulConfig, ConsulTls};

fn endpoint(tls: ConsulTls) -> Endpoint {
    let config = ConsulConfig {
        address: "https://consul:8501".into(),
        tls: Some(tls),
        ..ConsulConfig::default()
    };
    super::super::address::resolve(&config, &|_| None).unwrap()
}

#[test]
fn freshness_is_read_from_the_headers() {
    let mut headers = HeaderMap::new();
    assert_eq!(Freshness::from_headers(&headers), Freshness::default());
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("false"));
    headers.insert("X-Consul-LastContact", HeaderValue::from_static("1500"));
    assert_eq!(
        Freshness::from_headers(&headers),
        Freshness {
            known_leader: Some(false),
            last_contact: Some(Duration::from_millis(1500)),
        }
    );
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("junk"));
    assert_eq!(Freshness::from_headers(&headers).known_leader, None);
}

#[test]
fn a_leader_regained_or_an_agent_back_is_an_agent_change() {
    let reach = Reachability::new();
    let changes = reach.changes.subscribe();
    reach.leader("x", Some(true));
    reach.leader("x", None);
    assert_eq!(*changes.borrow(), 0, "a leader all along is no change");
    reach.leader("x", Some(false));
    reach.leader("x", Some(false));
    assert_eq!(*changes.borrow(), 0);
    reach.leader("x", Some(true));
    assert_eq!(*changes.borrow(), 1, "the leader is back");
    reach.unreachable("x", "refused");
    reach.answered("x");
    assert_eq!(*changes.borrow(), 2, "the agent is back");
    reach.answered("x");
    assert_eq!(*changes.borrow(), 2);
}

#[test]
fn paths_are_encoded() {
    assert_eq!(segment("web app/1"), "web%20app%2F1");
    assert_eq!(key_path("/config/app name"), "config/app%20name");
}

#[test]
fn missing_or_bad_tls_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = ConsulClient::new(&endpoint(ConsulTls {
        ca_file: Some(dir.path().join("nope.pem")),
        verify: true,
        ..ConsulTls::default()
    }))
    .err()
    .unwrap();
    assert_eq!(e.at, "consul.tls.cafile");
    assert!(e.what.contains("cannot read the CA certificate"), "{e}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = ConsulClient::new(&endpoint(ConsulTls {
        ca_file: Some(junk.clone()),
        verify: true,
        ..ConsulTls::default()
    }))
    .err()
    .unwrap();
    assert!(e.what.contains("holds no PEM certificate"), "{e}");

    let e = ConsulClient::new(&endpoint(ConsulTls {
        ca_path: Some(dir.path().to_path_buf()),
        verify: true,
        ..ConsulTls::default()
    }))
    .err()
    .unwrap();
    assert_eq!(e.at, "consul.tls.capath");

    let e = ConsulClient::new(&endpoint(ConsulTls {
        client_cert: Some(junk.clone()),
        client_key: Some(junk),
        verify: true,
        ..ConsulTls::default()
    }))
    .err()
    .unwrap();
    assert_eq!(e.at, "consul.tls.clientcert");
    assert!(e.what.contains("client identity"), "{e}");
}

#[test]
fn a_plain_endpoint_builds() {
    let config = ConsulConfig {
        address: "127.0.0.1:8500".into(),
        token: Some("secret".into()),
        ..ConsulConfig::default()
    };
    let ep = super::super::address::resolve(&config, &|_| None).unwrap();
    let client = ConsulClient::new(&ep).unwrap();
    assert_eq!(client.display_url(), "http://127.0.0.1:8500");
}
