//! Which trigger, if any, currently holds for a person: read from their record, the
//! object's deletion state and the tenant's time zone at `now`.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use roster_api::{DirectoryUserSpec, ObjectDeletionMode, Trigger};

/// What the record says at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triggers {
    /// The strongest trigger that holds now, if any.
    pub active: Option<Trigger>,
    /// The trigger skips the quarantine (manual deprovision-now, or an object
    /// deletion under `Immediate`).
    pub immediate: bool,
    /// A termination date that has not arrived yet: when it will.
    pub scheduled: Option<DateTime<Utc>>,
    /// When the person terminated, for the purge deadline: the termination date's
    /// start in the tenant's zone if it has arrived, else `None` (the trigger time is used).
    pub terminated_at: Option<DateTime<Utc>>,
}

/// Evaluates the triggers the record and the object's deletion state say hold.
/// Precedence (strongest first): object deletion, termination date, deactivation; a
/// deprovision-now request is added with [`Triggers::with_deprovision_now`].
pub fn evaluate(
    spec: &DirectoryUserSpec,
    deleting: bool,
    on_delete: ObjectDeletionMode,
    zone: Tz,
    now: DateTime<Utc>,
) -> Triggers {
    let termination = effective_termination(spec).map(|date| start_of_day(date, zone));
    let arrived = termination.filter(|at| *at <= now);
    let scheduled = termination.filter(|at| *at > now);
    let (active, immediate) = if deleting {
        (
            Some(Trigger::ObjectDeleted),
            on_delete == ObjectDeletionMode::Immediate,
        )
    } else if arrived.is_some() {
        (Some(Trigger::TerminationDate), false)
    } else if !spec.active {
        (Some(Trigger::Deactivated), false)
    } else {
        (None, false)
    };
    Triggers {
        active,
        immediate,
        scheduled: scheduled.filter(|_| active.is_none()),
        terminated_at: arrived,
    }
}

/// Whether the record says the person was rehired after the episode that took them
/// out: a hire date after the termination date and, for an episode not started by the
/// termination date, a hire date after the day roster saw the trigger. Nothing else
/// (`active: true` alone, a GitOps tool reverting an edit) brings an anonymized person
/// back.
pub fn rehired(
    spec: &DirectoryUserSpec,
    episode: Option<Trigger>,
    trigger_time: Option<DateTime<Utc>>,
    zone: Tz,
) -> bool {
    let Some(hired) = spec.hire_date else {
        return false;
    };
    let after_termination = spec.termination_date.is_none_or(|t| hired > t);
    let after_trigger =
        || trigger_time.is_some_and(|at| hired > at.with_timezone(&zone).date_naive());
    match episode {
        Some(Trigger::TerminationDate) => spec.termination_date.is_some() && after_termination,
        _ => after_termination && after_trigger(),
    }
}

impl Triggers {
    /// The triggers with a deprovision-now request (when `requested`): it outranks
    /// everything the record says, and only the object's deletion outranks it.
    pub fn with_deprovision_now(mut self, requested: bool) -> Self {
        if requested && self.active != Some(Trigger::ObjectDeleted) {
            self.active = Some(Trigger::DeprovisionNow);
            self.immediate = true;
            self.scheduled = None;
        }
        self
    }
}

/// The termination date, unless a later hire date says the person was rehired.
pub fn effective_termination(spec: &DirectoryUserSpec) -> Option<NaiveDate> {
    let termination = spec.termination_date?;
    match spec.hire_date {
        Some(hired) if hired > termination => None,
        _ => Some(termination),
    }
}

/// The first instant of `date` in `zone`. Where a DST change skips local midnight the
/// day starts at the first local time that exists; where midnight happens twice, at
/// the earlier one.
pub fn start_of_day(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists on every date");
    // DST gaps are at most a few hours; step forward in minutes until a local time exists.
    (0..=24 * 60)
        .find_map(|minutes| {
            zone.from_local_datetime(&(midnight + Duration::minutes(minutes)))
                .earliest()
        })
        .map(|local| local.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }
    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn start_of_day_in_zones() {
        let cases = [
            ("2025-03-17", "UTC", "2025-03-17T00:00:00Z"),
            ("2025-03-17", "Europe/Berlin", "2025-03-16T23:00:00Z"),
            // Berlin's spring-forward day: midnight exists (the gap is at 02:00).
            ("2025-03-30", "Europe/Berlin", "2025-03-29T23:00:00Z"),
            // Summer time: UTC+2.
            ("2025-07-01", "Europe/Berlin", "2025-06-30T22:00:00Z"),
            ("2025-03-17", "America/Los_Angeles", "2025-03-17T07:00:00Z"),
            // São Paulo skipped midnight on 2018-11-04: the day began at 01:00 (-02:00).
            ("2018-11-04", "America/Sao_Paulo", "2018-11-04T03:00:00Z"),
            // ...and repeated 23:00-24:00 on 2019-02-16; 2019-02-17 starts once, at -03:00.
            ("2019-02-17", "America/Sao_Paulo", "2019-02-17T03:00:00Z"),
            ("2025-03-17", "Pacific/Kiritimati", "2025-03-16T10:00:00Z"),
        ];
        for (day, zone, expected) in cases {
            assert_eq!(
                start_of_day(date(day), zone.parse().unwrap()),
                utc(expected),
                "{day} in {zone}"
            );
        }
    }

    #[test]
    fn rehire_cancels_termination() {
        let spec = DirectoryUserSpec {
            termination_date: Some(date("2025-01-31")),
            hire_date: Some(date("2025-06-01")),
            ..Default::default()
        };
        assert_eq!(effective_termination(&spec), None);
        let same_day = DirectoryUserSpec {
            hire_date: Some(date("2025-01-31")),
            ..spec
        };
        assert_eq!(effective_termination(&same_day), Some(date("2025-01-31")));
    }
}
