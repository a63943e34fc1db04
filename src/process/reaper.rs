//! The single owner of `waitpid(-1)`.
//!
//! Only this module ever waits for children. It wakes on SIGCHLD, collects every
//! exit status that is ready, and hands each one to whoever registered the pid
//! (a job or a health check). Anything unregistered is an orphan that was
//! re-parented to us: it is reaped and counted. Mixing this with per-child
//! waits is how other supervisors lost exit codes, so nothing else may wait.

use super::ExitStatus;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

/// Hands exit statuses to the tasks that spawned the processes. Cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

struct Inner {
    waiting: Mutex<HashMap<Pid, oneshot::Sender<ExitStatus>>>,
    orphans_reaped: AtomicU64,
    /// Bumped after every reaping round, so a stopping job can re-check
    /// whether its process group is empty without polling.
    reaped: watch::Sender<u64>,
}

impl Reaper {
    /// Starts the reaper task. Must be called before any child is spawned so
    /// that no SIGCHLD is missed.
    pub fn start() -> std::io::Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())?;
        let (reaped, _) = watch::channel(0);
        let reaper = Reaper {
            inner: Arc::new(Inner {
                waiting: Mutex::new(HashMap::new()),
                orphans_reaped: AtomicU64::new(0),
                reaped,
            }),
        };
        let task = reaper.clone();
        tokio::spawn(async move {
            // Children may already have exited before the first signal.
            task.reap_ready();
            while sigchld.recv().await.is_some() {
                task.reap_ready();
            }
        });
        Ok(reaper)
    }

    /// A reaper that never reaps, for unit tests of runners that spawn
    /// nothing: a real one would take the test process's other children.
    #[cfg(test)]
    pub fn inert() -> Reaper {
        Reaper {
            inner: Arc::new(Inner {
                waiting: Mutex::new(HashMap::new()),
                orphans_reaped: AtomicU64::new(0),
                reaped: watch::channel(0).0,
            }),
        }
    }

    /// Registers interest in `pid`'s exit. Call right after spawning, before
    /// yielding to the runtime (the reaper runs on the same thread, so it
    /// cannot collect the pid in between).
    pub fn watch(&self, pid: Pid) -> oneshot::Receiver<ExitStatus> {
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(pid, tx);
        rx
    }

    /// Subscribes to "something was reaped" notifications.
    pub fn reaped_notifications(&self) -> watch::Receiver<u64> {
        self.inner.reaped.subscribe()
    }

    pub fn orphans_reaped(&self) -> u64 {
        self.inner.orphans_reaped.load(Ordering::Relaxed)
    }

    /// Collects every exit status that is ready, until there is none left
    /// (0) or no children at all (ECHILD, not an error here).
    fn reap_ready(&self) {
        let mut any = false;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => break,
                Ok(status) => {
                    let Some((pid, exit)) = ExitStatus::from_wait(status) else {
                        continue;
                    };
                    any = true;
                    let waiter = self.inner.waiting.lock().unwrap().remove(&pid);
                    match waiter {
                        // The receiver may be gone (its job was dropped); fine.
                        Some(tx) => drop(tx.send(exit)),
                        None => {
                            self.inner.orphans_reaped.fetch_add(1, Ordering::Relaxed);
                            log::debug!("reaped orphan pid {pid} ({exit})");
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(e) => {
                    log::warn!("waitpid failed: {e}");
                    break;
                }
            }
        }
        if any {
            self.inner.reaped.send_modify(|n| *n += 1);
        }
    }
}
