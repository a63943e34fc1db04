//! Running one health check, off the job's event loop.
//!
//! A check runs as its own task with its own timeout, and reports back over a
//! channel, so a slow or hung check can never stall the job or the bus. On
//! timeout an exec check's whole process group is killed.
//!
//! Three kinds, one contract (a `bool` on `results`, within `timeout`):
//! - `exec`: a command; exit 0 is healthy;
//! - `http`: a GET in-process (no curl in the image); a status in the
//!   configured range is healthy, redirects are not followed;
//! - `tcp`: a connect in-process (no nc in the image); connected is healthy.
//!
//! Every result carries why a check failed (an exec check's exit and last
//! output line, the HTTP status, the connect error), so the job's runner can
//! log each health transition with its cause: "why is my service critical"
//! is answered in the log, whatever the kind of check.

use super::narrate::ended;
use crate::config::model::{HealthCheck, HealthConfig};
use crate::environ::Environ;
use crate::http::outbound::{Failure, HttpClient, Method, Settings, Url, request_failure};
use crate::logging::human_duration;
use crate::process::{self, LastLine, Output, Reaper};
use nix::sys::signal::Signal;
use std::ops::RangeInclusive;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long to wait, after a failed exec check exits, for the rest of its
/// output (a background process it started may hold the pipe open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub passed: bool,
    /// Why it failed, in a few words (`None` when it passed).
    pub reason: Option<String>,
}

impl CheckOutcome {
    fn pass() -> CheckOutcome {
        CheckOutcome {
            passed: true,
            reason: None,
        }
    }

    fn fail(reason: String) -> CheckOutcome {
        CheckOutcome {
            passed: false,
            reason: Some(reason),
        }
    }
}

/// A check in flight; dropping it does not stop it, `cancel` does.
pub struct RunningCheck {
    task: JoinHandle<()>,
    pgid: Option<nix::unistd::Pid>,
}

impl RunningCheck {
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Kills the check's processes and forgets its result.
    pub fn cancel(self) {
        // A finished exec check has been reaped: its pid (and so its group
        // id) may already belong to a process we did not start, which must
        // never get a signal from us (a shared PID namespace makes that real).
        if !self.task.is_finished()
            && let Some(pgid) = self.pgid
        {
            process::signal_group(pgid, Signal::SIGKILL);
        }
        self.task.abort();
    }
}

/// Starts one check of `job`; its result (passing or not) arrives on `results`.
pub fn start(
    job: &str,
    health: &HealthConfig,
    env: &Environ,
    reaper: &Reaper,
    results: mpsc::Sender<CheckOutcome>,
) -> RunningCheck {
    let timeout = health.timeout;
    let name = format!("check.{job}");
    match &health.check {
        HealthCheck::Exec(exec) => {
            let last_line = LastLine::default();
            let output = if health.logging_raw {
                Output::Raw
            } else {
                Output::LogKeepingLast(name, last_line.clone())
            };
            match process::spawn(exec, &env.snapshot(), &output) {
                Err(e) => {
                    let reason = format!("cannot run `{}`: {}", exec.display(), e.error);
                    let task = tokio::spawn(async move {
                        let _ = results.send(CheckOutcome::fail(reason)).await;
                    });
                    RunningCheck { task, pgid: None }
                }
                Ok(pid) => {
                    let exit = reaper.watch(pid);
                    let task = tokio::spawn(async move {
                        let outcome = match tokio::time::timeout(timeout, exit).await {
                            Ok(Ok(status)) if status.success() => CheckOutcome::pass(),
                            Ok(Ok(status)) => {
                                let reason = match last_line.wait(OUTPUT_GRACE).await {
                                    Some(line) => format!("check {}: {line}", ended(status)),
                                    None => format!("check {} without output", ended(status)),
                                };
                                CheckOutcome::fail(reason)
                            }
                            Ok(Err(_)) => CheckOutcome::fail("check lost".into()),
                            Err(_) => {
                                process::signal_group(pid, Signal::SIGKILL);
                                CheckOutcome::fail(format!(
                                    "check timed out after {}, killed it",
                                    human_duration(timeout)
                                ))
                            }
                        };
                        let _ = results.send(outcome).await;
                    });
                    RunningCheck {
                        task,
                        pgid: Some(pid),
                    }
                }
            }
        }
        HealthCheck::Tcp { address } => {
            let address = address.clone();
            start_network_check(results, async move { tcp_check(&address, timeout).await })
        }
        HealthCheck::Http { url, ok_status } => {
            let url = url.clone();
            let ok_status = ok_status.clone();
            start_network_check(results, async move {
                http_check(&url, &ok_status, timeout).await
            })
        }
    }
}

/// Runs a check made in-process (TCP, HTTP): it passes on `Ok`, and fails
/// with the error as its reason.
fn start_network_check(
    results: mpsc::Sender<CheckOutcome>,
    check: impl Future<Output = Result<(), String>> + Send + 'static,
) -> RunningCheck {
    let task = tokio::spawn(async move {
        let outcome = match check.await {
            Ok(()) => CheckOutcome::pass(),
            Err(e) => CheckOutcome::fail(e),
        };
        let _ = results.send(outcome).await;
    });
    RunningCheck { task, pgid: None }
}

/// Connects to `address` (`host:port`; the name is resolved at each check,
/// so a restarted upstream with a new address is followed) and closes the
/// connection at once. `Err` says why the check failed.
async fn tcp_check(address: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {address}: {e}")),
        Err(_) => Err(format!(
            "connecting to {address} timed out after {}",
            human_duration(timeout)
        )),
    }
}

/// GETs `url` and judges its status. `Err` says why the check failed.
///
/// Like the kubelet's httpGet probe, a fresh connection is opened for each
/// check (`Connection: close`, no pooled connections): a connection kept
/// alive from an earlier check would hide an app that no longer accepts new
/// ones. Redirects are not followed: a 3xx is judged as a status.
async fn http_check(
    url: &str,
    ok_status: &RangeInclusive<u16>,
    timeout: Duration,
) -> Result<(), String> {
    let failed = |why: String| format!("GET {url} failed: {why}");
    let parsed = Url::parse(url).map_err(failed)?;
    // The timeout covers name resolution, the connection and the answer.
    let response = match http_client().status_of(Method::GET, &parsed, timeout).await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return Err(format!(
                "GET {url} timed out after {}",
                human_duration(timeout)
            ));
        }
        Err(e) => return Err(failed(describe(e))),
    };
    let status = response.status;
    if ok_status.contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "GET {url} answered {status}, expected {}-{}",
            ok_status.start(),
            ok_status.end()
        ))
    }
}

/// The one HTTP client of every HTTP check.
///
/// Its TLS setup loads the system's CA certificates (for `https://` checks),
/// far too costly to repeat every few seconds, so it is made once, on the
/// first HTTPS check, and never changes: it holds no per-job or per-request
/// state (no cookies, no kept-alive connections), only settings. No proxy:
/// `HTTP_PROXY` in a pod is meant for the app's outbound traffic, never for a
/// check of the app itself.
fn http_client() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        HttpClient::new(Settings {
            headers: Vec::new(),
            connect_timeout: None,
            keep_alive: false,
            tls: None,
            connect_host: None,
        })
    })
}

/// A failed request in a few words: the cause ("Connection refused",
/// "invalid peer certificate: UnknownIssuer").
fn describe(e: Failure) -> String {
    let text = request_failure(&e);
    if text.contains("UnknownIssuer") || text.contains("not valid for name") {
        format!(
            "{text} (the app's certificate is not trusted for this URL: https checks verify \
             certificates against the system's CAs; use an `exec` check with `curl -k` for a \
             self-signed one)"
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves `answers` (raw HTTP responses), one connection each, and
    /// returns the port and the requests received.
    async fn server(answers: Vec<&'static str>) -> (u16, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                seen.push(String::from_utf8_lossy(&request).into_owned());
                stream.write_all(answer.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
            }
            seen
        });
        (port, task)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    const REDIRECT: &str =
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n";

    #[tokio::test]
    async fn http_status_decides_and_redirects_are_not_followed() {
        let (port, seen) = server(vec![OK, UNAVAILABLE, REDIRECT, REDIRECT]).await;
        let url = format!("http://127.0.0.1:{port}/health?deep=1");
        let t = Duration::from_secs(5);
        assert_eq!(http_check(&url, &(200..=299), t).await, Ok(()));
        let e = http_check(&url, &(200..=299), t).await.unwrap_err();
        assert!(e.contains("answered 503, expected 200-299"), "{e}");
        let e = http_check(&url, &(200..=299), t).await.unwrap_err();
        assert!(e.contains("answered 302"), "{e}");
        assert_eq!(http_check(&url, &(200..=399), t).await, Ok(()));
        let requests = seen.await.unwrap();
        assert_eq!(requests.len(), 4, "the redirect was followed: {requests:?}");
        let first = requests[0].to_ascii_lowercase();
        assert!(
            first.starts_with("get /health?deep=1 http/1.1\r\n"),
            "{first}"
        );
        assert!(
            first.contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "{first}"
        );
        assert!(first.contains("connection: close\r\n"), "{first}");
    }

    #[tokio::test]
    async fn http_failures_say_why() {
        // A port nobody listens on: bind one, then close it.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let e = http_check(&url, &(200..=299), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            e.starts_with(&format!("GET {url} failed: cannot connect")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_http_check_that_hangs_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and never answers.
        let hold = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let url = format!("http://127.0.0.1:{port}/");
        let e = http_check(&url, &(200..=299), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.contains("timed out after 200ms"), "{e}");
        hold.abort();
    }

    #[tokio::test]
    async fn tcp_connects_or_says_why() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = Duration::from_secs(5);
        assert_eq!(tcp_check(&format!("127.0.0.1:{port}"), t).await, Ok(()));
        assert_eq!(tcp_check(&format!("localhost:{port}"), t).await, Ok(()));
        drop(listener);
        let e = tcp_check(&format!("127.0.0.1:{port}"), t)
            .await
            .unwrap_err();
        assert!(
            e.starts_with(&format!("cannot connect to 127.0.0.1:{port}:")),
            "{e}"
        );
    }
}
