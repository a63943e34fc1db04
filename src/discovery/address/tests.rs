use super::*;
use crate::config::model::ConsulTls;
use std::collections::HashMap;

fn with_env(config: &ConsulConfig, vars: &[(&str, &str)]) -> Result<Endpoint, ConsulError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve(config, &|k| map.get(k).cloned())
}

fn addr(a: &str) -> ConsulConfig {
    ConsulConfig {
        address: a.into(),
        ..ConsulConfig::default()
    }
}

fn err_of(config: &ConsulConfig, vars: &[(&str, &str)]) -> ConsulError {
    with_env(config, vars).expect_err("expected an error")
}

#[test]
fn host_port_is_http() {
    let e = with_env(&addr("consul:8500"), &[]).unwrap();
    assert_eq!(e.display_url(), "http://consul:8500");
    assert_eq!(e.request_base(), "http://consul:8500");
    assert!(e.tls.verify);
}

#[test]
fn urls_carry_their_scheme_and_default_port() {
    assert_eq!(
        with_env(&addr("https://consul:8501"), &[]).unwrap().scheme,
        Scheme::Https
    );
    assert_eq!(with_env(&addr("https://consul/"), &[]).unwrap().port, 8501);
    assert_eq!(with_env(&addr("http://consul"), &[]).unwrap().port, 8500);
    assert_eq!(with_env(&addr("consul"), &[]).unwrap().port, 8500);
}

#[test]
fn ipv6_addresses() {
    let e = with_env(&addr("[::1]:8500"), &[]).unwrap();
    assert_eq!(e.host, "::1");
    assert_eq!(e.display_url(), "http://[::1]:8500");
    assert_eq!(with_env(&addr("fe80::1"), &[]).unwrap().port, 8500);
}

#[test]
fn the_config_wins_over_the_environment_except_for_the_token() {
    let mut c = addr("consul:8500");
    c.token = Some("from-config".into());
    let e = with_env(
        &c,
        &[
            ("CONSUL_HTTP_ADDR", "other:1"),
            ("CONSUL_HTTP_TOKEN", "from-env"),
        ],
    )
    .unwrap();
    assert_eq!(e.host, "consul");
    assert_eq!(e.token.as_deref(), Some("from-env"));
    let e = with_env(&c, &[]).unwrap();
    assert_eq!(e.token.as_deref(), Some("from-config"));
}

#[test]
fn the_environment_fills_an_empty_address() {
    let e = with_env(&addr(""), &[("CONSUL_HTTP_ADDR", "https://10.1.2.3:9999")]).unwrap();
    assert_eq!(e.display_url(), "https://10.1.2.3:9999");
    let e = with_env(&addr(""), &[]).unwrap();
    assert_eq!(e.display_url(), "http://127.0.0.1:8500");
    let e = with_env(&addr("consul"), &[("CONSUL_HTTP_SSL", "true")]).unwrap();
    assert_eq!(e.display_url(), "https://consul:8501");
}

#[test]
fn the_scheme_field_applies_to_a_bare_address() {
    let mut c = addr("consul:8501");
    c.scheme = Some("https".into());
    assert_eq!(with_env(&c, &[]).unwrap().scheme, Scheme::Https);
}

#[test]
fn tls_fields_come_from_config_then_environment() {
    let mut c = addr("https://consul:8501");
    c.tls = Some(ConsulTls {
        ca_file: Some("/etc/ca.pem".into()),
        server_name: Some("server.dc1.consul".into()),
        verify: true,
        ..ConsulTls::default()
    });
    let e = with_env(
        &c,
        &[
            ("CONSUL_CACERT", "/env/ca.pem"),
            ("CONSUL_CLIENT_CERT", "/env/c.pem"),
            ("CONSUL_CLIENT_KEY", "/env/k.pem"),
        ],
    )
    .unwrap();
    let ca = e.tls.ca_file.as_ref().unwrap();
    assert_eq!(
        (ca.value.to_str().unwrap(), ca.from),
        ("/etc/ca.pem", "consul.tls.cafile")
    );
    assert_eq!(
        e.tls.client_cert.as_ref().unwrap().from,
        "CONSUL_CLIENT_CERT"
    );
    assert_eq!(e.request_base(), "https://server.dc1.consul:8501");
    assert_eq!(e.pinned_name(), Some("server.dc1.consul"));
}

#[test]
fn verification_is_on_unless_turned_off() {
    let c = addr("https://consul");
    assert!(with_env(&c, &[]).unwrap().tls.verify);
    assert!(
        !with_env(&c, &[("CONSUL_HTTP_SSL_VERIFY", "false")])
            .unwrap()
            .tls
            .verify
    );
    let mut off = c.clone();
    off.tls = Some(ConsulTls {
        verify: false,
        ..ConsulTls::default()
    });
    assert!(
        !with_env(&off, &[("CONSUL_HTTP_SSL_VERIFY", "true")])
            .unwrap()
            .tls
            .verify
    );
}

#[test]
fn the_token_never_shows_in_debug_output() {
    let mut c = addr("consul:8500");
    c.token = Some("s3cr3t-token".into());
    let e = with_env(&c, &[]).unwrap();
    assert!(!format!("{e:?}").contains("s3cr3t"));
}

#[test]
fn bad_addresses_say_what_and_where() {
    let cases = [
        ("ftp://consul:21", "unknown scheme"),
        ("unix:///var/run/consul.sock", "unix sockets"),
        ("consul:http", "not a number"),
        ("consul:0", "not a number"),
        ("consul:99999", "not a number"),
        ("http://:8500", "no host"),
        (":8500", "no host"),
        ("consul:8500/v1/agent", "a path"),
        ("user:pw@consul:8500", "passwords"),
        ("[::1:8500", "missing `]`"),
        ("[nope]:8500", "not an IPv6"),
        ("con sul:8500", "spaces"),
        ("cons$ul:8500", "not a valid host name"),
    ];
    for (text, expected) in cases {
        let e = err_of(&addr(text), &[]);
        assert_eq!(e.at, "consul.address", "{text}");
        assert!(e.what.contains(expected), "{text}: {e}");
        assert!(e.to_string().starts_with("consul: consul.address: "), "{e}");
    }
    let e = err_of(&addr(""), &[("CONSUL_HTTP_ADDR", "ftp://x")]);
    assert_eq!(e.at, "CONSUL_HTTP_ADDR");
}

#[test]
fn bad_settings_say_how_to_fix_them() {
    let mut c = addr("http://consul:8500");
    c.scheme = Some("https".into());
    assert!(err_of(&c, &[]).what.contains("contradicts"));

    let mut c = addr("consul");
    c.scheme = Some("tcp".into());
    assert_eq!(err_of(&c, &[]).at, "consul.scheme");

    let e = err_of(&addr("consul"), &[("CONSUL_HTTP_SSL_VERIFY", "maybe")]);
    assert_eq!(e.at, "CONSUL_HTTP_SSL_VERIFY");
    assert!(e.fix.contains("true or false"));

    let mut c = addr("https://consul");
    c.tls = Some(ConsulTls {
        client_cert: Some("/c.pem".into()),
        verify: true,
        ..ConsulTls::default()
    });
    let e = err_of(&c, &[]);
    assert_eq!(e.at, "consul.tls.clientcert");
    assert!(e.fix.contains("clientkey"));

    let e = err_of(&addr("https://consul"), &[("CONSUL_CLIENT_KEY", "/k.pem")]);
    assert_eq!(e.at, "CONSUL_CLIENT_KEY");

    let e = err_of(
        &addr("https://consul"),
        &[("CONSUL_TLS_SERVER_NAME", "not a name")],
    );
    assert_eq!(e.at, "CONSUL_TLS_SERVER_NAME");
    assert!(e.what.contains("not a host name"), "{e}");
}

#[test]
fn tls_over_http_is_a_warning() {
    let mut c = addr("consul:8500");
    c.tls = Some(ConsulTls {
        ca_file: Some("/ca.pem".into()),
        verify: true,
        ..ConsulTls::default()
    });
    let e = with_env(&c, &[]).unwrap();
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].contains("ignored"));
}
