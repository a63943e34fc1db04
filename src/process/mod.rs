//! Processes: spawning, the reaper, exit statuses and PID-1 setup.

mod clone_spawn;
mod exit;
pub mod memory;
mod reaper;
mod spawn;

pub use exit::ExitStatus;
pub use reaper::Reaper;
pub use spawn::{
    LastLine, Output, SpawnError, give_stdin_to_main, group_alive, main_gets_stdin, signal_group,
    spawn, spawn_main,
};

/// When we are not PID 1, ask the kernel to re-parent orphans of our
/// children to us, so they can still be reaped. Returns whether we are PID 1.
pub fn become_reaper() -> bool {
    if std::process::id() == 1 {
        return true;
    }
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        log::warn!(
            "not PID 1 and cannot become a child subreaper ({}): zombie reaping won't work",
            std::io::Error::last_os_error()
        );
    }
    false
}
