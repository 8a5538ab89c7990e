//! The mass-deprovisioning guard's decision: may one more removal take a person out
//! of Active now, or is it held (phase `Held`) for an administrator's approval?
//!
//! The decision is a function of the policy's thresholds, the tenant's size, the
//! removals admitted within the last minute (counted from persisted timestamps, so a
//! restart neither resets nor double-counts the window) and whether the tenant's guard
//! is tripped. Once tripped it stays tripped, holding every new removal, until the
//! Tenant's approve or reject annotation changes (docs/lifecycle.md). No clock, no I/O.

use chrono::{DateTime, Duration, Utc};
use roster_api::{GuardTrip, MassDeprovisionGuard};

/// The guard counts removals over this window ("one minute of changes").
pub const WINDOW: Duration = Duration::minutes(1);

/// The percentage applies from this many removals within the window: in a tenant of
/// six, one or two leavers on the same day are ordinary business, not a mass event,
/// and holding them would make the guard a nuisance in every small tenant. The
/// count threshold (`maxUsers`) applies always.
pub const PERCENT_FROM: usize = 5;

/// What the guard decides about new removals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// They leave Active as usual.
    Admit,
    /// They are held. `trips`: this decision trips the guard (the tenant was not tripped
    /// before); `message` gives the numbers and the threshold, never a person.
    Hold { trips: bool, message: String },
}

/// What the guard knows about a tenant when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The tenant's users who had access at the start of the window: the Active and
    /// Held users plus those admitted within the window.
    pub tenant_size: usize,
    /// Removals admitted within the window.
    pub admitted: usize,
    /// The tenant's guard is tripped (see [`trip_holds`]).
    pub tripped: bool,
}

/// Decides for `removals` new removals at once: 1 for a user's trigger, the whole
/// plan's for a feed sync that knows it up front.
pub fn admit(guard: &MassDeprovisionGuard, tally: Tally, removals: usize) -> Admission {
    if !guard.enabled || removals == 0 {
        return Admission::Admit;
    }
    if tally.tripped {
        return Admission::Hold {
            trips: false,
            message: "the mass-deprovisioning guard is tripped: every new removal is held until the removals are approved or rejected".into(),
        };
    }
    match exceeds(guard, tally.tenant_size, tally.admitted + removals) {
        Some(message) => Admission::Hold {
            trips: true,
            message,
        },
        None => Admission::Admit,
    }
}

/// Why `leaving` removals out of `tenant_size` users exceed the thresholds, if they do.
pub fn exceeds(guard: &MassDeprovisionGuard, tenant_size: usize, leaving: usize) -> Option<String> {
    let max_users = guard.max_users.max(0) as usize;
    let size = tenant_size.max(leaving).max(1);
    let percent = leaving as f64 * 100.0 / size as f64;
    if leaving > max_users {
        return Some(format!(
            "{leaving} of {size} users would leave Active within a minute, more than maxUsers {max_users}"
        ));
    }
    if leaving >= PERCENT_FROM && percent > f64::from(guard.max_percent) {
        return Some(format!(
            "{leaving} of {size} users ({percent:.0} %) would leave Active within a minute, more than maxPercent {}",
            guard.max_percent
        ));
    }
    None
}

/// How many of `admitted` (the persisted admission times of a tenant's users) fall
/// within the window ending at `now`. A time in the future (another replica's clock
/// ahead of ours) counts too: it is certainly recent.
pub fn in_window(admitted: impl IntoIterator<Item = DateTime<Utc>>, now: DateTime<Utc>) -> usize {
    admitted.into_iter().filter(|at| *at > now - WINDOW).count()
}

/// The Tenant's approve and reject annotation values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decisions<'a> {
    pub approve: Option<&'a str>,
    pub reject: Option<&'a str>,
}

/// Whether a trip recorded in the Tenant's status still holds: neither annotation has
/// changed since it tripped.
pub fn trip_holds(trip: Option<&GuardTrip>, decisions: Decisions) -> bool {
    trip.is_some_and(|t| {
        t.approve_token.as_deref() == decisions.approve
            && t.reject_token.as_deref() == decisions.reject
    })
}

/// The verdict on a held person, from the tokens recorded when they were held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Approved,
    /// A rejection wins over an approval given at the same time: nobody loses access
    /// on a contradictory answer.
    Rejected,
}

pub fn verdict(
    held_approve: Option<&str>,
    held_reject: Option<&str>,
    decisions: Decisions,
) -> Verdict {
    if decisions.reject.is_some() && decisions.reject != held_reject {
        Verdict::Rejected
    } else if decisions.approve.is_some() && decisions.approve != held_approve {
        Verdict::Approved
    } else {
        Verdict::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max_users: i32, max_percent: i32) -> MassDeprovisionGuard {
        MassDeprovisionGuard {
            enabled: true,
            max_users,
            max_percent,
        }
    }

    fn tally(tenant_size: usize, admitted: usize, tripped: bool) -> Tally {
        Tally {
            tenant_size,
            admitted,
            tripped,
        }
    }

    /// (maxUsers, maxPercent, tenant size, admitted in the window, tripped, new
    /// removals) → admitted?, trips?
    type Row = (i32, i32, usize, usize, bool, usize, bool, bool);

    #[test]
    fn the_admission_table() {
        let cases: &[Row] = &[
            // Below both thresholds.
            (50, 20, 1000, 0, false, 1, true, false),
            (50, 20, 1000, 49, false, 1, true, false),
            // The 51st removal within a minute trips the guard.
            (50, 20, 1000, 50, false, 1, false, true),
            // A sync that knows its 60 removals up front trips before the first.
            (50, 20, 1000, 0, false, 60, false, true),
            // Percentages: 10 of 100 is fine at 20 %, 21 of 100 is not.
            (50, 20, 100, 9, false, 1, true, false),
            (50, 20, 100, 20, false, 1, false, true),
            // 6 of 10 (a truncated file) trips on the percentage.
            (50, 20, 10, 0, false, 6, false, true),
            // Small tenants: fewer than PERCENT_FROM removals never trip on the percentage.
            (50, 20, 2, 0, false, 1, true, false),
            (50, 20, 5, 3, false, 1, true, false),
            (50, 20, 5, 4, false, 1, false, true),
            // The count applies to small numbers too.
            (2, 100, 1000, 2, false, 1, false, true),
            // Tripped: everything new is held, but it does not trip again.
            (50, 20, 1000, 0, true, 1, false, false),
            // Nothing to remove: nothing to hold.
            (50, 20, 10, 50, true, 0, true, false),
        ];
        for &(max_users, max_percent, size, admitted, tripped, removals, admits, trips) in cases {
            let got = admit(
                &guard(max_users, max_percent),
                tally(size, admitted, tripped),
                removals,
            );
            let row = format!(
                "maxUsers {max_users}, maxPercent {max_percent}, {size} users, {admitted} admitted, tripped {tripped}, {removals} new: {got:?}"
            );
            match got {
                Admission::Admit => assert!(admits, "{row}"),
                Admission::Hold { trips: t, .. } => {
                    assert!(!admits, "{row}");
                    assert_eq!(t, trips, "{row}");
                }
            }
        }
    }

    #[test]
    fn a_disabled_guard_admits_everything() {
        let off = MassDeprovisionGuard {
            enabled: false,
            ..guard(1, 1)
        };
        assert_eq!(admit(&off, tally(10, 10, true), 10), Admission::Admit);
    }

    #[test]
    fn messages_give_numbers_and_the_threshold() {
        assert_eq!(
            exceeds(&guard(50, 20), 10, 6).unwrap(),
            "6 of 10 users (60 %) would leave Active within a minute, more than maxPercent 20"
        );
        assert_eq!(
            exceeds(&guard(50, 20), 1000, 51).unwrap(),
            "51 of 1000 users would leave Active within a minute, more than maxUsers 50"
        );
    }

    #[test]
    fn the_window_is_one_minute_of_persisted_times() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .to_utc();
        let times = [
            now - Duration::seconds(61),
            now - Duration::seconds(60),
            now - Duration::seconds(59),
            now,
            now + Duration::seconds(2),
        ];
        assert_eq!(in_window(times, now), 3);
        // The same times after a restart count the same: the window is derived, not kept.
        assert_eq!(in_window(times, now), 3);
        assert_eq!(in_window(times, now + Duration::seconds(61)), 1);
    }

    #[test]
    fn a_trip_holds_until_an_annotation_changes() {
        let trip = GuardTrip {
            tripped_time: DateTime::UNIX_EPOCH,
            message: String::new(),
            approve_token: Some("a1".into()),
            reject_token: None,
        };
        let d = |approve, reject| Decisions { approve, reject };
        assert!(trip_holds(Some(&trip), d(Some("a1"), None)));
        assert!(!trip_holds(Some(&trip), d(Some("a2"), None)));
        assert!(!trip_holds(Some(&trip), d(Some("a1"), Some("r1"))));
        assert!(!trip_holds(None, d(None, None)));
    }

    #[test]
    fn the_verdict_table() {
        let d = |approve, reject| Decisions { approve, reject };
        let cases = [
            (None, None, d(None, None), Verdict::Pending),
            (Some("a1"), None, d(Some("a1"), None), Verdict::Pending),
            (Some("a1"), None, d(Some("a2"), None), Verdict::Approved),
            (None, None, d(Some("a1"), None), Verdict::Approved),
            (None, None, d(None, Some("r1")), Verdict::Rejected),
            (None, Some("r1"), d(None, Some("r1")), Verdict::Pending),
            (None, None, d(Some("a1"), Some("r1")), Verdict::Rejected),
        ];
        for (approve, reject, decisions, want) in cases {
            assert_eq!(
                verdict(approve, reject, decisions),
                want,
                "{approve:?} {reject:?} {decisions:?}"
            );
        }
    }
}
