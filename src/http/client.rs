//! The client half of the same HTTP/1.1 conventions as the server in
//! [`crate::http`]: one request per connection, an answer with
//! `Content-Length` (or ended by closing the connection), errors as
//! `{"error": "..."}` bodies.
//!
//! Blocking and hand-written rather than hyper's client: the subcommands send
//! one request and exit, and the control socket's start-up check asks a
//! socket in use whether it is another autopilot, so a plain stream is all
//! they need: no runtime, no connection pool, no extra dependency. It only
//! ever talks to autopilot's own server.

use std::io::{self, Read, Write};

/// An answer: its status code and its body as text.
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
}
