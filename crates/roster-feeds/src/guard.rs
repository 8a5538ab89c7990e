//! The mass-deprovisioning guard's decision: would this sync take more users out of
//! Active than the policy allows at once? Then none of them leaves; they are held
//! until an administrator approves (docs/feeds.md).

use roster_api::{MassDeprovisionGuard, Phase};

use crate::{Existing, Plan};

/// The guard's verdict on a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Below the thresholds (or the guard is off): the removals apply.
    Proceed,
    /// Above a threshold: the removals are held. The message names the numbers and
    /// the threshold, never a person.
    Hold { message: String },
}

/// The guard's verdict on a plan: counts the tenant's Active users (of any source)
/// and the plan's writes that take one out of Active. `approved` (an approval not yet
/// acted on) lets a held sync through once.
pub fn check(
    guard: &MassDeprovisionGuard,
    tenant: &str,
    existing: &[Existing],
    plan: &Plan,
    approved: bool,
) -> Verdict {
    if approved {
        return Verdict::Proceed;
    }
    let active = existing
        .iter()
        .filter(|e| {
            e.spec.tenant_ref.name == tenant
                && e.spec.active
                && !e.deleting
                && e.phase == Phase::Active
        })
        .count();
    let leaving = plan.writes.iter().filter(|w| w.deactivates).count();
    decide(guard, active, leaving)
}

/// Decides for `leaving` users out of `active` Active users of the tenant.
pub fn decide(guard: &MassDeprovisionGuard, active: usize, leaving: usize) -> Verdict {
    if !guard.enabled || leaving == 0 {
        return Verdict::Proceed;
    }
    let max_users = guard.max_users.max(0) as usize;
    let percent = leaving as f64 * 100.0 / active.max(1) as f64;
    if leaving > max_users {
        return Verdict::Hold {
            message: format!(
                "{leaving} of {active} active users would leave at once, more than maxUsers {max_users}"
            ),
        };
    }
    if percent > f64::from(guard.max_percent) {
        return Verdict::Hold {
            message: format!(
                "{leaving} of {active} active users ({percent:.0} %) would leave at once, more than maxPercent {}",
                guard.max_percent
            ),
        };
    }
    Verdict::Proceed
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
        match check(&guard, "acme", &users, &truncated, false) {
            Verdict::Hold { message } => assert_eq!(
                message,
                "6 of 10 active users (60 %) would leave at once, more than maxPercent 20"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check(&guard, "acme", &users, &truncated, true),
            Verdict::Proceed
        );
    }

    #[test]
    fn thresholds() {
        let guard = MassDeprovisionGuard {
            enabled: true,
            max_users: 10,
            max_percent: 20,
        };
        let cases = [
            (100, 0, true),
            (100, 10, true),
            (100, 11, false),
            (20, 4, true),
            (20, 5, false),
            (10, 6, false),
            (0, 1, false),
        ];
        for (active, leaving, proceeds) in cases {
            let verdict = decide(&guard, active, leaving);
            assert_eq!(
                verdict == Verdict::Proceed,
                proceeds,
                "{leaving} of {active}: {verdict:?}"
            );
        }
        let off = MassDeprovisionGuard {
            enabled: false,
            ..guard
        };
        assert_eq!(decide(&off, 10, 10), Verdict::Proceed);
    }
}
