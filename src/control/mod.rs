//! The control plane: HTTP over a unix socket (`control.socket`, default
//! `/var/run/containerpilot.socket`), with ContainerPilot's endpoints and a
//! few new ones. See docs/control.md for the API.
//!
//! - [`socket`]: claiming the socket path (owner-only; stale replaced, live
//!   refused);
//! - `endpoints`: the routes; `reload`: re-reading the config file;
//!   `service`: a running job's live tags and meta;
//! - [`status`]: the status view and its table;
//! - [`events`]: the live event stream (`GET /v3/events`).
//!
//! The subcommands that talk to a running autopilot (`-putenv`, `-reload`,
//! `status`, `events`, ...) are its clients, in the `cli` module above it.
//!
//! The socket is bound (and the telemetry port too) before the supervisor
//! starts anything, so a socket in use stops autopilot with a clear error
//! instead of leaving it running without a control plane.

mod endpoints;
pub mod events;
mod reload;
mod service;
pub mod socket;
pub mod status;

use crate::config::model::{Config, ControlConfig};
use crate::discovery::edit::ServiceEditor;
use crate::http;
use crate::jobs::Common;
use crate::supervisor::Requests;
use crate::telemetry::Telemetry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

pub use reload::Loader;

/// Overrides the config's `control.socket` (for a whole container, or to
/// give each test run its own socket); the subcommands read it too.
pub const SOCKET_ENV: &str = "AUTOPILOT_CONTROL_SOCKET";

/// Where the control socket is: `-socket`, else `$AUTOPILOT_CONTROL_SOCKET`,
/// else the config's `control.socket`, else ContainerPilot's default path, or
/// (when its directory is not writable: not root) a per-user path
/// ([`default_socket`]). The supervisor uses this rule; the subcommands use
/// [`client_socket_path`], which also finds a root autopilot's socket.
pub fn socket_path(
    flag: Option<&str>,
    control: Option<&ControlConfig>,
    env: &HashMap<String, String>,
) -> PathBuf {
    flag.filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env.get(SOCKET_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| {
            control
                .map(|c| c.socket.clone())
                .filter(|s| *s != ControlConfig::default().socket)
        })
        .unwrap_or_else(|| default_socket(env))
}

/// [`socket_path`] for the subcommands: when it falls back to the per-user
/// path but ContainerPilot's default socket exists, that is the running
/// autopilot (started by root; the request may then be refused, with a clear
/// "permission denied").
pub fn client_socket_path(
    flag: Option<&str>,
    control: Option<&ControlConfig>,
    env: &HashMap<String, String>,
) -> PathBuf {
    let path = socket_path(flag, control, env);
    let standard = ControlConfig::default().socket;
    if path == per_user_socket(env) && standard.exists() {
        standard
    } else {
        path
    }
}

/// ContainerPilot's `/var/run/containerpilot.socket` when `/var/run` is
/// writable; else a path this user can create: in `$XDG_RUNTIME_DIR`, or in
/// a directory of its own under the temp directory. Running as an ordinary
/// user then needs no `control` section and no flag.
pub fn default_socket(env: &HashMap<String, String>) -> PathBuf {
    let standard = ControlConfig::default().socket;
    match standard.parent() {
        Some(dir) if writable(dir) => standard,
        _ => per_user_socket(env),
    }
}

/// The socket's path when ContainerPilot's default is not writable.
fn per_user_socket(env: &HashMap<String, String>) -> PathBuf {
    if let Some(dir) = env
        .get("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|d| writable(d))
    {
        return dir.join("autopilot.socket");
    }
    let tmp = env
        .get("TMPDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    tmp.join(format!("autopilot-{}", uid()))
        .join("autopilot.socket")
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Creates the per-user directory of `socket` (owner-only) when it is the
/// temp-directory fallback, and checks that this user owns it: another
/// user must not be able to plant a socket there.
pub fn prepare_socket_dir(socket: &Path, env: &HashMap<String, String>) -> Result<(), String> {
    if socket != per_user_socket(env) {
        return Ok(());
    }
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    if env
        .get("XDG_RUNTIME_DIR")
        .is_some_and(|x| Path::new(x) == dir)
    {
        return Ok(());
    }
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid() {
        return Err(format!(
            "{} is not a directory owned by this user; remove it, or pass -socket PATH",
            dir.display()
        ));
    }
    Ok(())
}

/// What the control endpoints share.
struct State {
    /// The board, bus, environment and running config of the run.
    common: Common,
    requests: Requests,
    telemetry: Telemetry,
    /// Live tag/meta changes; `None` without Consul.
    editor: Option<Arc<dyn ServiceEditor>>,
    /// How to re-read the config; `None` when it came from the command line.
    loader: Option<Loader>,
    /// The socket being served (a reload cannot move it).
    socket: PathBuf,
    /// Reloads run one at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// The control socket and telemetry endpoint, bound and ready to serve.
pub struct ControlPlane {
    socket: socket::BoundSocket,
    telemetry: Telemetry,
}

/// What the control plane serves, handed over by `main` at start-up.
pub struct Wiring {
    pub common: Common,
    pub requests: Requests,
    pub editor: Option<Arc<dyn ServiceEditor>>,
    pub loader: Option<Loader>,
    /// A ContainerPilot 2 SIGHUP, from the supervisor: reload the config by
    /// the same path as `POST /v3/reload`.
    pub sighup_reloads: mpsc::UnboundedReceiver<()>,
}

impl ControlPlane {
    /// Binds the control socket at `socket_path` and the telemetry port of
    /// `config` (already through [`crate::telemetry::prepare`]).
    pub fn bind(config: &Config, socket_path: &Path) -> Result<ControlPlane, String> {
        let telemetry = Telemetry::new(config)?;
        let socket = socket::bind(socket_path)?;
        Ok(ControlPlane { socket, telemetry })
    }

    /// Starts telemetry, then serves the control socket.
    pub fn start(self, wiring: Wiring) {
        self.telemetry
            .start(&wiring.common, wiring.requests.clone());
        let socket::BoundSocket { listener, file } = self.socket;
        let path = file.path().to_path_buf();
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                log::error!("control: cannot serve the socket {}: {e}", path.display());
                return;
            }
        };
        let state = Arc::new(State {
            common: wiring.common,
            requests: wiring.requests,
            telemetry: self.telemetry,
            editor: wiring.editor,
            loader: wiring.loader,
            socket: path.clone(),
            reloading: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(reload::on_sighup(state.clone(), wiring.sighup_reloads));
        log::info!("control: listening on {}", path.display());
        tokio::spawn(async move {
            // The socket file lives exactly as long as the server.
            let _file = file;
            http::serve(listener, state, "control", false).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_user_socket_prefers_xdg_runtime_dir() {
        let xdg = tempfile::tempdir().unwrap();
        let env = HashMap::from([(
            "XDG_RUNTIME_DIR".to_string(),
            xdg.path().display().to_string(),
        )]);
        assert_eq!(per_user_socket(&env), xdg.path().join("autopilot.socket"));
        let env = HashMap::from([("TMPDIR".to_string(), "/scratch".to_string())]);
        assert_eq!(
            per_user_socket(&env),
            Path::new(&format!("/scratch/autopilot-{}/autopilot.socket", uid()))
        );
        // XDG_RUNTIME_DIR that cannot be written is passed over.
        let env = HashMap::from([(
            "XDG_RUNTIME_DIR".to_string(),
            "/nonexistent/run".to_string(),
        )]);
        assert!(per_user_socket(&env).starts_with(format!("/tmp/autopilot-{}", uid())));
    }

    #[test]
    fn socket_path_precedence() {
        let config = ControlConfig {
            socket: "/cfg.sock".into(),
        };
        let env = HashMap::from([(SOCKET_ENV.to_string(), "/env.sock".to_string())]);
        let none = HashMap::new();
        assert_eq!(
            socket_path(Some("/flag.sock"), Some(&config), &env),
            Path::new("/flag.sock")
        );
        assert_eq!(
            socket_path(None, Some(&config), &env),
            Path::new("/env.sock")
        );
        assert_eq!(
            socket_path(None, Some(&config), &none),
            Path::new("/cfg.sock")
        );
        assert_eq!(socket_path(None, None, &none), default_socket(&none));
        let empty = HashMap::from([(SOCKET_ENV.to_string(), String::new())]);
        assert_eq!(
            socket_path(None, Some(&config), &empty),
            Path::new("/cfg.sock")
        );
    }
}
