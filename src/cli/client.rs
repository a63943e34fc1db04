//! Reaching a running autopilot's control socket from a subcommand
//! (`-putenv`, `-reload`, `status`, `events`, `tags`, ...): one blocking
//! request, and what to check when the socket cannot be reached.

pub use crate::http::client::Reply;
use crate::http::client::exchange;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a request did not get an answer.
#[derive(Debug)]
pub struct ClientError {
    pub socket: PathBuf,
    pub kind: io::ErrorKind,
    pub message: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

/// Sends one request and waits up to `timeout` for each read or write.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let fail = |e: io::Error, what: &str| ClientError {
        socket: socket.to_path_buf(),
        kind: e.kind(),
        message: explain(socket, &e, what),
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| fail(e, "connect"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e, "configure"))?;
    exchange(&mut stream, method, path, body).map_err(|e| fail(e, "talk to"))
}

/// Turns a socket error into what the user should check.
fn explain(socket: &Path, e: &io::Error, what: &str) -> String {
    let path = socket.display();
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "no control socket at {path}: is autopilot running? Point at its socket with -socket PATH, \
             $AUTOPILOT_CONTROL_SOCKET or -config FILE (its control.socket)"
        ),
        io::ErrorKind::ConnectionRefused => {
            format!("nothing listens on {path} (a stale socket file): autopilot is not running")
        }
        io::ErrorKind::PermissionDenied => format!(
            "permission denied on {path}: the control socket is owner-only (0600); run this as the user autopilot runs as"
        ),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("autopilot did not answer on {path} in time")
        }
        _ => format!("cannot {what} the control socket {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_explained() {
        let e = request(
            Path::new("/nonexistent/autopilot.sock"),
            "GET",
            "/v3/ping",
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(e.kind, io::ErrorKind::NotFound);
        assert!(e.to_string().contains("is autopilot running?"), "{e}");
    }
}
