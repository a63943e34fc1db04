//! The control plane: HTTP over a unix socket (`control.socket`, default
//! `/var/run/containerpilot.socket`), with ContainerPilot's endpoints and a
//! few new ones. See docs/control.md for the API.
//!
//! - [`socket`]: claiming the socket path (owner-only; stale replaced, live
//!   refused);
//! - [`http`]: the HTTP plumbing shared with telemetry;
//! - `endpoints`: the routes; `reload`: re-reading the config file;
//!   `service`: a running job's live tags and meta;
//! - [`status`]: the status view and its table;
//! - [`events`]: the live event stream (`GET /v3/events`, `autopilot events`);
//! - [`client`] and [`commands`]: the subcommands that talk to a running
//!   autopilot (`-putenv`, `-reload`, `status`, ...).
//!
//! The socket is bound (and the telemetry port too) before the supervisor
//! starts anything, so a socket in use stops autopilot with a clear error
//! instead of leaving it running without a control plane.

pub mod client;
pub mod commands;
mod endpoints;
pub mod events;
pub mod http;
mod reload;
mod service;
pub mod socket;
pub mod status;

use crate::config::model::{Config, ControlConfig};
use crate::supervisor::{Extension, Handle};
use crate::telemetry::Telemetry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Overrides the config's `control.socket` (for a whole container, or to
/// give each test run its own socket); the subcommands read it too.
pub const SOCKET_ENV: &str = "AUTOPILOT_CONTROL_SOCKET";

/// Where the control socket is: `-socket`, else `$AUTOPILOT_CONTROL_SOCKET`,
/// else the config's `control.socket`, else ContainerPilot's default path.
/// The supervisor and the subcommands use this same rule, so they agree.
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
        .or_else(|| control.map(|c| c.socket.clone()))
        .unwrap_or_else(|| ControlConfig::default().socket)
}

/// What the control endpoints share.
struct State {
    handle: Handle,
    telemetry: Telemetry,
    /// The file reload re-reads.
    config_path: PathBuf,
    /// The socket being served (a reload cannot move it).
    socket: PathBuf,
    /// The config being run: the watches for the status view, and what a
    /// reload compares against.
    config: Mutex<Arc<Config>>,
    /// Reloads run one at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// The control socket and telemetry endpoint, bound and ready to serve.
pub struct ControlPlane {
    socket: socket::BoundSocket,
    telemetry: Telemetry,
    config_path: PathBuf,
}

impl ControlPlane {
    /// Binds the control socket at `socket_path` and the telemetry port of
    /// `config` (already through [`crate::telemetry::prepare`]).
    /// `config_path` is the file a reload re-reads.
    pub fn bind(
        config: &Config,
        config_path: &Path,
        socket_path: &Path,
    ) -> Result<ControlPlane, String> {
        let telemetry = Telemetry::new(config)?;
        let socket = socket::bind(socket_path)?;
        Ok(ControlPlane {
            socket,
            telemetry,
            config_path: config_path.to_path_buf(),
        })
    }

    /// The supervisor extensions: telemetry, then the control socket.
    pub fn extensions(self) -> Vec<Extension> {
        let telemetry = self.telemetry.clone();
        let control: Extension = Box::new(move |config: &Config, handle: &Handle| {
            self.start(config, handle);
            None
        });
        vec![telemetry.extension(), control]
    }

    fn start(self, config: &Config, handle: &Handle) {
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
            handle: handle.clone(),
            telemetry: self.telemetry,
            config_path: self.config_path,
            socket: path.clone(),
            config: Mutex::new(Arc::new(config.clone())),
            reloading: tokio::sync::Mutex::new(()),
        });
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
        assert_eq!(
            socket_path(None, None, &none),
            Path::new("/var/run/containerpilot.socket")
        );
        let empty = HashMap::from([(SOCKET_ENV.to_string(), String::new())]);
        assert_eq!(
            socket_path(None, Some(&config), &empty),
            Path::new("/cfg.sock")
        );
    }
}
