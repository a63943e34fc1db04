//! Signals: every one autopilot handles merged into one stream, and what
//! the supervisor does with those it passes on (forwarding, maintenance).

use super::Supervisor;
use crate::events::{Event, EventCode};
use crate::jobs::runner::Command;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Signals forwarded to the main job (or to every running job when no job is
/// marked `main`), so an app behind autopilot still gets them.
const FORWARDED: [Signal; 5] = [
    Signal::SIGUSR1,
    Signal::SIGQUIT,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

/// Every signal autopilot handles, merged into one stream. Handling a signal
/// in PID 1 is required: the kernel gives PID 1 no default actions.
pub(super) struct Signals {
    rx: mpsc::UnboundedReceiver<Signal>,
}

impl Signals {
    pub(super) fn new() -> std::io::Result<Signals> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handled = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR2,
        ]
        .into_iter()
        .chain(FORWARDED);
        for sig in handled {
            let mut stream = signal(SignalKind::from_raw(sig as i32))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Signals { rx })
    }

    pub(super) async fn next(&mut self) -> Signal {
        match self.rx.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }
}

impl Supervisor {
    pub(super) fn forward(&self, sig: Signal) {
        log::debug!("forwarding {sig}");
        let main = self.outcome.main_job.as_deref();
        for (name, tx) in &self.commands {
            if main.is_none_or(|m| m == name) {
                let _ = tx.send(Command::Signal(sig));
            }
        }
    }

    pub(super) fn set_maintenance(&self, on: bool) {
        if self.common.board.set_maintenance(on) {
            log::info!(
                "{} maintenance mode",
                if on { "entering" } else { "leaving" }
            );
            let code = if on {
                EventCode::EnterMaintenance
            } else {
                EventCode::ExitMaintenance
            };
            self.common.bus.publish(Event::global(code));
        }
    }
}
