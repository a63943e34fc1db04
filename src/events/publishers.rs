//! Which publisher emits which event, written down once.
//!
//! A job that waits for an event its source never emits waits forever, so
//! several places need to know who emits what: the plan (`autopilot check`)
//! warns about such waits, the decoder fills in the source of `once:
//! "SIGHUP"` or `once: "startup"` written without one, and the supervisor
//! publishes signal events under the signal's name. They all read
//! [`PUBLISHER_TABLE`] instead of keeping their own copy.

use super::EventCode::{self, *};

/// What publishes events, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// A job, under its name.
    Job,
    /// A watch, as `watch.NAME`.
    Watch,
    /// autopilot itself, as [`super::GLOBAL`].
    Global,
    /// A signal autopilot received, under the signal's name (`SIGHUP`), with
    /// the code of the same name.
    Signal,
}

/// What a job needs to emit a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// An `exec`: only a process exits.
    Exec,
    /// A `health` check.
    Health,
    /// A `leader` key to compete for.
    Leader,
}

/// Every code each kind of publisher can emit, and (for a job) what the job
/// needs for it. The order within a publisher is the order messages list
/// the codes in.
pub const PUBLISHER_TABLE: [(Publisher, EventCode, Needs); 18] = [
    (Publisher::Job, ExitSuccess, Needs::Exec),
    (Publisher::Job, ExitFailed, Needs::Exec),
    (Publisher::Job, Healthy, Needs::Health),
    (Publisher::Job, Unhealthy, Needs::Health),
    (Publisher::Job, Elected, Needs::Leader),
    (Publisher::Job, Deposed, Needs::Leader),
    (Publisher::Job, Stopping, Needs::Nothing),
    (Publisher::Job, Stopped, Needs::Nothing),
    (Publisher::Job, TimerExpired, Needs::Nothing),
    (Publisher::Watch, Changed, Needs::Nothing),
    (Publisher::Watch, Healthy, Needs::Nothing),
    (Publisher::Watch, Unhealthy, Needs::Nothing),
    (Publisher::Global, Startup, Needs::Nothing),
    (Publisher::Global, Shutdown, Needs::Nothing),
    (Publisher::Global, EnterMaintenance, Needs::Nothing),
    (Publisher::Global, ExitMaintenance, Needs::Nothing),
    (Publisher::Signal, SigHup, Needs::Nothing),
    (Publisher::Signal, SigUsr2, Needs::Nothing),
];

impl Publisher {
    /// Whether this kind of publisher can emit `code`, and what a job needs
    /// for it; `None` if it never does.
    pub fn emits(self, code: EventCode) -> Option<Needs> {
        PUBLISHER_TABLE
            .iter()
            .find(|(p, c, _)| *p == self && *c == code)
            .map(|(_, _, needs)| *needs)
    }

    /// The codes this kind of publisher can emit, in table order.
    pub fn codes(self) -> impl Iterator<Item = EventCode> {
        PUBLISHER_TABLE
            .iter()
            .filter(move |(p, _, _)| *p == self)
            .map(|(_, code, _)| *code)
    }
}

/// The names of the signals that become events, which are also the sources
/// those events are published under (`SIGHUP`, `SIGUSR2`).
pub fn signal_sources() -> impl Iterator<Item = &'static str> {
    Publisher::Signal.codes().map(EventCode::as_str)
}

impl EventCode {
    /// For a code a signal stands for, the signal's name: the source it is
    /// published under.
    pub fn signal_source(self) -> Option<&'static str> {
        Publisher::Signal.emits(self).map(|_| self.as_str())
    }
}

impl super::Event {
    /// The event autopilot publishes when it receives the signal `name`
    /// (`SIGHUP`), if that signal is one configs can react to.
    pub fn from_signal(name: &str) -> Option<super::Event> {
        Publisher::Signal
            .codes()
            .find(|code| code.as_str() == name)
            .map(|code| super::Event::new(code, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;

    #[test]
    fn every_code_has_a_publisher() {
        for code in EventCode::ALL {
            assert!(
                PUBLISHER_TABLE.iter().any(|(_, c, _)| *c == code),
                "nothing emits {code}"
            );
        }
    }

    #[test]
    fn signal_events_are_not_global() {
        assert!(Startup.is_global() && ExitMaintenance.is_global());
        assert!(!SigHup.is_global() && !Changed.is_global());
    }

    #[test]
    fn signals_are_published_under_their_own_name() {
        assert_eq!(signal_sources().collect::<Vec<_>>(), ["SIGHUP", "SIGUSR2"]);
        assert_eq!(
            Event::from_signal("SIGHUP"),
            Some(Event::new(EventCode::SigHup, "SIGHUP"))
        );
        assert_eq!(Event::from_signal("SIGTERM"), None);
        assert_eq!(EventCode::SigUsr2.signal_source(), Some("SIGUSR2"));
        assert_eq!(EventCode::Startup.signal_source(), None);
    }

    #[test]
    fn what_a_job_needs() {
        assert_eq!(Publisher::Job.emits(ExitSuccess), Some(Needs::Exec));
        assert_eq!(Publisher::Job.emits(Stopped), Some(Needs::Nothing));
        assert_eq!(Publisher::Job.emits(Changed), None);
        assert_eq!(Publisher::Watch.emits(Healthy), Some(Needs::Nothing));
    }
}
