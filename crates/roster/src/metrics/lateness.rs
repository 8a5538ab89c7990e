//! How late roster acted on a deadline persisted in status: the quarantine's end
//! (`deprovisionDueTime`, acted on by the move to Deprovisioning) and the purge
//! deadline (`purgeDueTime`, acted on by the move to Purged). Both times come from the
//! caller: the deadline from status, `now` from the injected clock after the status
//! write that carried the transition.

use chrono::{DateTime, Utc};
use roster_api::{DirectoryUserStatus, Phase};
use roster_lifecycle::Transition;

use super::{DeadlineLabels, Metrics};

/// The deadline `transition` acted on and how many seconds after it `now` is (never
/// negative), if it acted on one.
pub fn lateness(
    transition: &Transition,
    status: &DirectoryUserStatus,
    now: DateTime<Utc>,
) -> Option<(&'static str, f64)> {
    let (deadline, due) = match transition.to {
        Phase::Deprovisioning => ("quarantine-end", status.deprovision_due_time?),
        Phase::Purged => ("purge", status.purge_due_time?),
        _ => return None,
    };
    let late = (now - due).num_milliseconds().max(0) as f64 / 1000.0;
    Some((deadline, late))
}

impl Metrics {
    /// Records the lateness of each deadline these transitions acted on.
    pub fn deadlines_acted_on(
        &self,
        transitions: &[Transition],
        status: &DirectoryUserStatus,
        now: DateTime<Utc>,
    ) {
        for (deadline, late) in transitions.iter().filter_map(|t| lateness(t, status, now)) {
            self.deadline_lateness
                .get_or_create(&DeadlineLabels { deadline })
                .observe(late);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn to(from: Phase, to: Phase) -> Transition {
        Transition {
            from,
            to,
            reason: "Test",
        }
    }

    #[test]
    fn lateness_of_the_deadline_each_transition_acted_on() {
        let status = DirectoryUserStatus {
            deprovision_due_time: Some(at(0)),
            purge_due_time: Some(at(100)),
            ..Default::default()
        };
        let now = at(102);
        for (transition, expected) in [
            (
                to(Phase::Quarantined, Phase::Deprovisioning),
                Some(("quarantine-end", 102.0)),
            ),
            (
                to(Phase::Deprovisioned, Phase::Purged),
                Some(("purge", 2.0)),
            ),
            // Not a deadline: a trigger, a reversal, the steps completing.
            (to(Phase::Active, Phase::Quarantined), None),
            (to(Phase::Quarantined, Phase::Active), None),
            (to(Phase::Deprovisioning, Phase::Deprovisioned), None),
        ] {
            assert_eq!(
                lateness(&transition, &status, now),
                expected,
                "{transition:?}"
            );
        }
        // Acted on before the deadline (a clock step back): zero, never negative.
        assert_eq!(
            lateness(&to(Phase::Deprovisioned, Phase::Purged), &status, at(50)),
            Some(("purge", 0.0))
        );
        // No deadline recorded: nothing to measure.
        assert_eq!(
            lateness(
                &to(Phase::Deprovisioned, Phase::Purged),
                &DirectoryUserStatus::default(),
                now
            ),
            None
        );
    }

    #[test]
    fn lateness_is_observed_per_deadline() {
        let metrics = Metrics::default();
        let status = DirectoryUserStatus {
            purge_due_time: Some(at(0)),
            ..Default::default()
        };
        metrics.deadlines_acted_on(&[to(Phase::Deprovisioned, Phase::Purged)], &status, at(3));
        let text = metrics.encode();
        assert!(
            text.contains(r#"roster_deadline_lateness_seconds_sum{deadline="purge"} 3.0"#),
            "{text}"
        );
    }
}
