//! The only place roster reads the wall clock. Logic receives `now` as an argument.

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current time, injected into the shells.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, to the millisecond: persisted deadlines stay readable
/// (`2026-03-01T09:00:00.250Z`) and sub-millisecond precision decides nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}
