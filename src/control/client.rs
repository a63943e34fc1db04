//! A small blocking HTTP/1.1 client for the control socket, used by the
//! subcommands (`-putenv`, `-reload`, `status`, ...) and by the start-up
//! check for a live socket.
//!
//! Hand-written rather than hyper's client: a subcommand sends one request
//! and exits, so a blocking `UnixStream` needs no runtime, no connection pool
//! and no extra dependency. It only ever talks to autopilot's own server,
//! which always answers with `Content-Length` and closes the connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An answer from the control socket.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's explanation: the `error` field of a JSON error body, or
    /// the body itself.
    pub fn message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| self.body.trim().to_string())
    }
}

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

/// Writes the request and reads the whole answer (the server closes the
/// connection after answering).
pub fn exchange(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> io::Result<Reply> {
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: control\r\nUser-Agent: autopilot/{}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {what}"),
        )
    };
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the headers never end"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let body = &raw[end + 4..];
    let body = match length {
        Some(n) => &body[..n.min(body.len())],
        None => body,
    };
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
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
    fn parses_an_answer_with_and_without_length() {
        let r = parse_reply(
            b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 17\r\n\r\n{\"error\":\"bad x\"}",
        )
        .unwrap();
        assert_eq!(r.status, 422);
        assert!(!r.is_success());
        assert_eq!(r.message(), "bad x");
        let r = parse_reply(b"HTTP/1.1 200 OK\r\n\r\nok\n").unwrap();
        assert!(r.is_success());
        assert_eq!(r.message(), "ok");
        assert!(parse_reply(b"garbage").is_err());
    }

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
