//! Running one health check, off the job's event loop.
//!
//! A check runs as its own task with its own timeout, and reports back over a
//! channel, so a slow or hung check can never stall the job or the bus. On
//! timeout the check's whole process group is killed.

use crate::config::model::{HealthCheck, HealthConfig};
use crate::environ::Environ;
use crate::process::{self, Output, Reaper};
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
        if let Some(pgid) = self.pgid {
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
    results: mpsc::Sender<bool>,
) -> RunningCheck {
    let timeout = health.timeout;
    let name = format!("check.{job}");
    match &health.check {
        HealthCheck::Exec(exec) => {
            let output = if health.logging_raw {
                Output::Raw
            } else {
                Output::Log(name.clone())
            };
            match process::spawn(exec, &env.snapshot(), &output) {
                Err(e) => {
                    log::warn!("{name}: cannot run `{}`: {}", exec.display(), e.error);
                    let task = tokio::spawn(async move {
                        let _ = results.send(false).await;
                    });
                    RunningCheck { task, pgid: None }
                }
                Ok(pid) => {
                    let exit = reaper.watch(pid);
                    let task = tokio::spawn(async move {
                        let passed = match tokio::time::timeout(timeout, exit).await {
                            Ok(Ok(status)) => {
                                if !status.success() {
                                    log::debug!("{name}: failed ({status})");
                                }
                                status.success()
                            }
                            Ok(Err(_)) => false,
                            Err(_) => {
                                log::warn!("{name}: timed out after {timeout:?}, killing it");
                                process::signal_group(pid, Signal::SIGKILL);
                                false
                            }
                        };
                        let _ = results.send(passed).await;
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
            let task = tokio::spawn(async move {
                let passed =
                    tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address))
                        .await
                        .is_ok_and(|r| r.is_ok());
                let _ = results.send(passed).await;
            });
            RunningCheck { task, pgid: None }
        }
        HealthCheck::Http { url, ok_status } => {
            let url = url.clone();
            let ok_status = ok_status.clone();
            let task = tokio::spawn(async move {
                let passed = match tokio::time::timeout(timeout, http_status(&url)).await {
                    Ok(Ok(code)) => ok_status.contains(&code),
                    Ok(Err(e)) => {
                        log::debug!("{name}: {e}");
                        false
                    }
                    Err(_) => false,
                };
                let _ = results.send(passed).await;
            });
            RunningCheck { task, pgid: None }
        }
    }
}

/// GETs a plain `http://` URL and returns the status code. Health checks
/// only need the status line, so a full HTTP client is not worth its size.
async fn http_status(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: autopilot\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = stream
            .read(&mut head[got..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let line = String::from_utf8_lossy(&head[..got]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {line:?}"))
}
