//! The mass-deprovisioning guard on a sync that knows its plan up front: would its
//! removals take more users out of Active than the policy allows at once? Then the
//! guard trips before anything is written, so that even the first removals are held
//! (phase `Held`, one by one, by the lifecycle: docs/lifecycle.md). The decision itself
//! is the lifecycle's ([`roster_lifecycle::guard::admit`]); this counts its inputs.

use roster_api::{MassDeprovisionGuard, Phase};
use roster_lifecycle::guard::{Admission, Tally, admit};

use crate::{Existing, Plan};

/// The guard's verdict on a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Below the thresholds (or the guard is off, or nobody leaves): the removals apply.
    Proceed,
    /// The removals will be held. `trips`: the sync must trip the guard before it
    /// writes (it was not tripped). The message names the numbers and the threshold,
    /// never a person.
    Hold {
        message: String,
        leaving: usize,
        trips: bool,
    },
}

/// The guard's verdict on a plan: counts the tenant's Active and Held users (of any
/// source) and the plan's writes that take one out of Active. `tripped`: the tenant's
/// guard is tripped already.
pub fn check(
    guard: &MassDeprovisionGuard,
    tenant: &str,
    existing: &[Existing],
    plan: &Plan,
    tripped: bool,
) -> Verdict {
    let size = existing
        .iter()
        .filter(|e| {
            e.spec.tenant_ref.name == tenant
                && !e.deleting
                && matches!(e.phase, Phase::Active | Phase::Held)
        })
        .count();
    let leaving = plan.writes.iter().filter(|w| w.deactivates).count();
    let tally = Tally {
        tenant_size: size,
        admitted: 0,
        tripped,
    };
    match admit(guard, tally, leaving) {
        Admission::Admit => Verdict::Proceed,
        Admission::Hold { trips, message } => Verdict::Hold {
            message,
            leaving,
            trips,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_file::{CsvFormat, read_csv};
    use crate::plan::{Target, plan};

    /// A truncated file (60 % of the people missing) is held; an approval lets it through.
    #[test]
    fn a_truncated_file_is_held_until_approved() {
        let header = "Employee ID,Full Name,Email Address\n";
        let all: String = (1..=10)
            .map(|i| format!("{i:03},P {i},p{i}@example.com\n"))
            .collect();
        let few: String = (1..=4)
            .map(|i| format!("{i:03},P {i},p{i}@example.com\n"))
            .collect();
        let target = Target {
            tenant: "acme",
            source: roster_api::RecordSource::Csv,
            complete: true,
        };
        let read = |rows: &str| {
            read_csv(format!("{header}{rows}").as_bytes(), &CsvFormat::default()).unwrap()
        };
        let first = plan(&target, &read(&all), &[]);
        let users: Vec<Existing> = first
            .writes
            .iter()
            .map(|w| Existing {
                name: w.name.clone(),
                spec: w.spec.clone(),
                phase: Phase::Active,
                deleting: false,
            })
            .collect();
        let guard = MassDeprovisionGuard::default();
        assert_eq!(
            check(&guard, "acme", &[], &first, false),
            Verdict::Proceed,
            "joiners are never held"
        );
        let truncated = plan(&target, &read(&few), &users);
        assert_eq!(
            check(&guard, "acme", &users, &truncated, false),
            Verdict::Hold {
                message:
                    "6 of 10 users (60 %) would leave Active within a minute, more than maxPercent 20"
                        .into(),
                leaving: 6,
                trips: true,
            }
        );
        // Tripped already: held, without tripping again.
        assert!(matches!(
            check(&guard, "acme", &users, &truncated, true),
            Verdict::Hold { trips: false, .. }
        ));
        // One leaver of ten is ordinary.
        let one_less = plan(&target, &read(&all[..all.rfind("010,").unwrap()]), &users);
        assert_eq!(
            check(&guard, "acme", &users, &one_less, false),
            Verdict::Proceed
        );
    }
}
