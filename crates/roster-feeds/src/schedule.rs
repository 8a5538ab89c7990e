//! When a source is due. The last sync's completion time is persisted in the Tenant's
//! `status.sourceSyncs`, and the next due time is computed from it alone, so a restart
//! (or a new leader) neither runs a sync again early nor skips one.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::FeedError;

/// After a failed sync, the next attempt comes this soon (or at the regular time,
/// whichever is first).
pub const RETRY_AFTER_FAILURE: Duration = Duration::minutes(5);

/// A source's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every `interval` after the last sync.
    Every(Duration),
    /// Daily at this local time in the Tenant's time zone.
    DailyAt(NaiveTime),
}

impl Schedule {
    /// From a source's `interval` (a Go duration) and `dailyAt` (`HH:MM`).
    pub fn from_spec(interval: &str, daily_at: Option<&str>) -> Result<Self, FeedError> {
        if let Some(at) = daily_at {
            return NaiveTime::parse_from_str(at, "%H:%M")
                .map(Schedule::DailyAt)
                .map_err(|_| FeedError::Settings("dailyAt must be HH:MM".into()));
        }
        match roster_lifecycle::settings::parse_duration(interval) {
            Some(d) if d >= Duration::minutes(1) => Ok(Schedule::Every(d)),
            _ => Err(FeedError::Settings(
                "interval must be a duration of at least 1m, such as 24h".into(),
            )),
        }
    }
}

/// The last sync as status records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastSync {
    pub completed: DateTime<Utc>,
    pub failed: bool,
}

/// When the source is next due; `None` when it never ran (due at once).
pub fn next_due(schedule: Schedule, zone: Tz, last: Option<LastSync>) -> Option<DateTime<Utc>> {
    let last = last?;
    let regular = match schedule {
        Schedule::Every(interval) => last.completed + interval,
        Schedule::DailyAt(at) => next_local(zone, last.completed, at),
    };
    Some(if last.failed {
        regular.min(last.completed + RETRY_AFTER_FAILURE)
    } else {
        regular
    })
}

/// Whether a source is due at `now`.
pub fn is_due(schedule: Schedule, zone: Tz, last: Option<LastSync>, now: DateTime<Utc>) -> bool {
    next_due(schedule, zone, last).is_none_or(|due| due <= now)
}

/// The first moment after `after` at which the clock in `zone` shows `at`. A time that
/// does not exist that day (a spring-forward gap) runs an hour later; a time that
/// exists twice runs at the first.
fn next_local(zone: Tz, after: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let local_day = after.with_timezone(&zone).date_naive();
    for offset in 0..3 {
        let day = local_day + Duration::days(offset);
        let naive = day.and_time(at);
        let candidate = zone
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                zone.from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        if let Some(t) = candidate
            && t > after
        {
            return t;
        }
    }
    after + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn due_times_come_from_the_last_sync() {
        let every = Schedule::from_spec("6h", None).unwrap();
        let daily = Schedule::from_spec("24h", Some("02:30")).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let ok = |at: &str| {
            Some(LastSync {
                completed: t(at),
                failed: false,
            })
        };
        let failed = |at: &str| {
            Some(LastSync {
                completed: t(at),
                failed: true,
            })
        };
        let cases = [
            ("never ran: due at once", every, None, None),
            (
                "every 6h",
                every,
                ok("2026-03-01T10:00:00Z"),
                Some(t("2026-03-01T16:00:00Z")),
            ),
            (
                "a failure retries soon",
                every,
                failed("2026-03-01T10:00:00Z"),
                Some(t("2026-03-01T10:05:00Z")),
            ),
            (
                "daily at 02:30 Berlin (CET)",
                daily,
                ok("2026-03-01T01:30:05Z"),
                Some(t("2026-03-02T01:30:00Z")),
            ),
            (
                "later the same day",
                daily,
                ok("2026-03-01T00:00:00Z"),
                Some(t("2026-03-01T01:30:00Z")),
            ),
            (
                "spring forward: 02:30 does not exist, 03:30 CEST",
                daily,
                ok("2026-03-28T02:00:00Z"),
                Some(t("2026-03-29T01:30:00Z")),
            ),
        ];
        for (what, schedule, last, expected) in cases {
            assert_eq!(next_due(schedule, berlin, last), expected, "{what}");
        }
        assert!(is_due(
            every,
            berlin,
            ok("2026-03-01T10:00:00Z"),
            t("2026-03-01T16:00:00Z")
        ));
        assert!(!is_due(
            every,
            berlin,
            ok("2026-03-01T10:00:00Z"),
            t("2026-03-01T15:59:59Z")
        ));
    }

    #[test]
    fn settings_are_checked() {
        assert!(Schedule::from_spec("30s", None).is_err());
        assert!(Schedule::from_spec("1d", None).is_err());
        assert!(Schedule::from_spec("24h", Some("25:00")).is_err());
        assert_eq!(
            Schedule::from_spec("1h30m", None).unwrap(),
            Schedule::Every(Duration::minutes(90))
        );
    }
}
