//! The mass-deprovisioning guard's decision: would this sync take more users out of
//! Active than the policy allows at once? Then none of them leaves; they are held
//! until an administrator approves (docs/feeds.md).

use roster_api::MassDeprovisionGuard;

/// The guard's verdict on a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Below the thresholds (or the guard is off): the removals apply.
    Proceed,
    /// Above a threshold: the removals are held. The message names the numbers and
    /// the threshold, never a person.
    Hold { message: String },
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
