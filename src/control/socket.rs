//! Claiming the control socket's path.
//!
//! - A socket file nobody listens on (left by a killed autopilot) is stale:
//!   it is replaced.
//! - A socket somebody answers on belongs to a running process: autopilot
//!   refuses to start rather than steal it (ContainerPilot removed it, and
//!   two supervisors then fought over one path).
//! - Any other kind of file is never removed: that would destroy data.
//!
//! The socket is created owner-only (0600): whoever can connect can change
//! the environment of every job and stop their services.

use crate::http::client;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for an answer from whoever holds a live socket.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound socket and the file that goes away with it.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub file: SocketFile,
}

/// The socket's file; dropping it removes the file, unless something else
/// has replaced it meanwhile.
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `path`, replacing a stale socket and refusing a live one.
pub fn bind(path: &Path) -> Result<BoundSocket, String> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot inspect the control socket path {shown}: {e}"
            ));
        }
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(format!(
                "the control socket path {shown} exists and is not a socket; \
                 remove it or set `control: {{socket: \"...\"}}` to another path"
            ));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(stream) => return Err(in_use(path, stream)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                log::info!("replacing the stale control socket {shown}");
                std::fs::remove_file(path)
                    .map_err(|e| format!("cannot remove the stale control socket {shown}: {e}"))?;
            }
            Err(e) => {
                return Err(format!(
                    "cannot check whether the control socket {shown} is in use: {e}"
                ));
            }
        },
    }
    // A minimal image (FROM scratch) may have no /var/run at all.
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}, the control socket's directory: {e}",
                dir.display()
            )
        })?;
    }
    // The umask makes the socket owner-only from its first moment; the chmod
    // below states the intent and covers filesystems that ignore the umask.
    let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(previous);
    let listener = bound.map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound => {
                "; create its directory or set `control.socket` to another path"
            }
            io::ErrorKind::PermissionDenied => {
                "; run as a user who may write there or set `control.socket`"
            }
            _ => "",
        };
        format!("cannot create the control socket {shown}: {e}{hint}")
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make the control socket {shown} owner-only: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot set up the control socket {shown}: {e}"))?;
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| format!("cannot inspect {shown}: {e}"))?;
    Ok(BoundSocket {
        listener,
        file: SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        },
    })
}

/// Explains who holds a live socket: another autopilot (it answers our
/// ping) or some other process.
fn in_use(path: &Path, mut stream: UnixStream) -> String {
    let pid = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.pid())
        .filter(|p| *p > 0)
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let _ = stream.set_read_timeout(Some(PING_TIMEOUT));
    let _ = stream.set_write_timeout(Some(PING_TIMEOUT));
    let is_autopilot =
        client::exchange(&mut stream, "GET", "/v3/ping", None).is_ok_and(|r| r.is_success());
    let who = if is_autopilot {
        "another autopilot"
    } else {
        "another process"
    };
    format!(
        "the control socket {} is in use: {who}{pid} is listening on it. \
         Stop it first, or give this one its own socket with `control: {{socket: \"...\"}}`, \
         -socket PATH or $AUTOPILOT_CONTROL_SOCKET",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_owner_only_replaces_stale_and_refuses_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        // A listener that is dropped leaves its file behind: a stale socket.
        drop(UnixListener::bind(&path).unwrap());
        let bound = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = bind(&path).err().unwrap();
        assert!(
            e.contains("is in use") && e.contains("another process"),
            "{e}"
        );
        drop(bound);
        assert!(
            !path.exists(),
            "the socket file goes away with the listener"
        );
    }

    #[test]
    fn never_removes_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        std::fs::write(&path, "data").unwrap();
        let e = bind(&path).err().unwrap();
        assert!(e.contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }
}
