use super::*;

#[test]
fn urls_parse_into_what_a_request_needs() {
    let u = Url::parse("http://127.0.0.1:8080/health?deep=1#frag").unwrap();
    assert_eq!(u.host, "127.0.0.1");
    assert_eq!(u.port, 8080);
    assert_eq!(u.authority, "127.0.0.1:8080");
    assert_eq!(u.path_and_query, "/health?deep=1");
    assert!(!u.https && !u.has_credentials);

    let u = Url::parse("HTTPS://Consul.Example").unwrap();
    assert!(u.https);
    assert_eq!((u.host.as_str(), u.port), ("consul.example", 443));
    assert_eq!(u.authority, "consul.example");
    assert_eq!(u.path_and_query, "/");

    let u = Url::parse("http://[::1]:8500?x=a b").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 8500));
    assert_eq!(u.authority, "[::1]:8500");
    assert_eq!(u.path_and_query, "/?x=a%20b");

    assert!(Url::parse("http://u:p@web/").unwrap().has_credentials);
}

#[test]
fn bad_urls_say_why() {
    let e = |s: &str| Url::parse(s).unwrap_err();
    assert_eq!(e("http://"), "empty host");
    assert_eq!(e("http://:80/"), "empty host");
    assert_eq!(e("http://web:99999/"), "invalid port number");
    assert_eq!(e("http://web:8x/"), "invalid port number");
    assert_eq!(e("http://[::1/"), "invalid IPv6 address");
    assert_eq!(e("http://wéb/"), "invalid domain character");
    assert_eq!(e("ftp://web/"), "unsupported scheme ftp");
}

#[test]
fn queries_are_form_encoded() {
    let q = [("filter", "a b&c".to_string()), ("dc", "dc1".into())];
    assert_eq!(with_query("/v1/x", &q), "/v1/x?filter=a+b%26c&dc=dc1");
    assert_eq!(with_query("/v1/x?stale", &q[1..]), "/v1/x?stale&dc=dc1");
    assert_eq!(with_query("/v1/x", &[]), "/v1/x");
}

/// Serves `answers` raw HTTP responses; each connection reads one request
/// per answer of its group, then the server closes it. Returns the port
/// and how many connections were accepted.
async fn server(groups: Vec<Vec<&'static str>>) -> (u16, tokio::task::JoinHandle<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut accepted = 0;
        for answers in groups {
            let (mut stream, _) = listener.accept().await.unwrap();
            accepted += 1;
            for answer in answers {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed the connection");
                    request.extend_from_slice(&buf[..n]);
                }
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        }
        accepted
    });
    (port, task)
}

fn client(keep_alive: bool) -> HttpClient {
    HttpClient::new(Settings {
        headers: vec![(
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("1"),
        )],
        connect_timeout: Some(Duration::from_secs(5)),
        keep_alive,
        tls: None,
        connect_host: None,
    })
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn kept_alive_connections_are_reused_and_closed_ones_replaced() {
    // Two requests on the first connection, which the server then
    // closes; the third request needs a new one.
    let (port, accepted) = server(vec![vec![OK, OK], vec![OK]]).await;
    let url = Url::parse(&format!("http://127.0.0.1:{port}/v1/x")).unwrap();
    let c = client(true);
    let t = Duration::from_secs(5);
    for _ in 0..3 {
        let r = c.send(Method::GET, &url, None, t).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    }
    assert_eq!(accepted.await.unwrap(), 2);
}

#[tokio::test]
async fn failures_say_why() {
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let e = client(false)
        .send(Method::GET, &url, None, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(request_failure(&e).starts_with("cannot connect: "), "{e}");

    // Accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let e = client(false)
        .send(Method::GET, &url, None, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    drop(listener);
}

#[test]
fn pem_without_certificates_or_key_is_refused() {
    assert!(pem_certs(b"not a certificate").is_none());
    assert!(pem_identity(b"not a certificate").is_err());
}
