//! Who inherits a leaver's commitments. Pure: the caller says who is eligible.
//!
//! An eligible person is an Active user of the tenant with calendar access who is not
//! leaving; the leaver is never eligible. Candidates are tried in the policy's order
//! (by default organizer, co-organizers, presenters, then the fallback owner).

use roster_api::{CalendarOwnerCandidate, RuleTransferTarget};

/// The people attached to one calendar event, by employee ID, in their listed order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPeople<'a> {
    pub organizer: Option<&'a str>,
    pub co_organizers: &'a [String],
    pub presenters: &'a [String],
}

/// A chosen new owner and the rule that chose them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOwner {
    pub employee_id: String,
    pub via: CalendarOwnerCandidate,
}

/// The first eligible candidate in `order`, or `None` when nobody qualifies (the event
/// is then reported as having no eligible owner).
pub fn event_owner(
    order: &[CalendarOwnerCandidate],
    people: &EventPeople,
    leaver: &str,
    fallback: Option<&str>,
    eligible: impl Fn(&str) -> bool,
) -> Option<NewOwner> {
    let ok = |id: &str| id != leaver && eligible(id);
    for via in order {
        let found = match via {
            CalendarOwnerCandidate::Organizer => people.organizer.filter(|id| ok(id)),
            CalendarOwnerCandidate::CoOrganizers => people
                .co_organizers
                .iter()
                .map(String::as_str)
                .find(|id| ok(id)),
            CalendarOwnerCandidate::Presenters => people
                .presenters
                .iter()
                .map(String::as_str)
                .find(|id| ok(id)),
            CalendarOwnerCandidate::FallbackOwner => fallback.filter(|id| ok(id)),
        };
        if let Some(employee_id) = found {
            return Some(NewOwner {
                employee_id: employee_id.to_string(),
                via: *via,
            });
        }
    }
    None
}

/// Who receives the leaver's automated assignment rules: their manager when the policy
/// says so and the manager is eligible, otherwise the fallback owner.
pub fn rule_owner(
    target: RuleTransferTarget,
    manager: Option<&str>,
    leaver: &str,
    fallback: Option<&str>,
    eligible: impl Fn(&str) -> bool,
) -> Option<String> {
    let ok = |id: &&str| *id != leaver && eligible(id);
    let manager = match target {
        RuleTransferTarget::Manager => manager.filter(ok),
        RuleTransferTarget::FallbackOwner => None,
    };
    manager.or(fallback.filter(ok)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CalendarOwnerCandidate::*;

    const ORDER: [CalendarOwnerCandidate; 4] = [Organizer, CoOrganizers, Presenters, FallbackOwner];

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            organizer: Option<&'static str>,
            co: &'static [&'static str],
            presenters: &'static [&'static str],
            leaving: &'static [&'static str],
            expected: Option<(&'static str, CalendarOwnerCandidate)>,
        }
        let cases = [
            Case {
                name: "organizer first",
                organizer: Some("o"),
                co: &["c"],
                presenters: &["p"],
                leaving: &[],
                expected: Some(("o", Organizer)),
            },
            Case {
                name: "the leaver organizes: co-organizer",
                organizer: Some("L"),
                co: &["c1", "c2"],
                presenters: &["p"],
                leaving: &[],
                expected: Some(("c1", CoOrganizers)),
            },
            Case {
                name: "leaving co-organizer skipped",
                organizer: Some("L"),
                co: &["c1", "c2"],
                presenters: &[],
                leaving: &["c1"],
                expected: Some(("c2", CoOrganizers)),
            },
            Case {
                name: "only presenters",
                organizer: Some("L"),
                co: &[],
                presenters: &["p1"],
                leaving: &[],
                expected: Some(("p1", Presenters)),
            },
            Case {
                name: "nobody else: fallback",
                organizer: Some("L"),
                co: &[],
                presenters: &[],
                leaving: &[],
                expected: Some(("F", FallbackOwner)),
            },
            Case {
                name: "everyone leaving: fallback",
                organizer: Some("o"),
                co: &["c"],
                presenters: &["p"],
                leaving: &["o", "c", "p"],
                expected: Some(("F", FallbackOwner)),
            },
            Case {
                name: "fallback leaving too: nobody",
                organizer: Some("L"),
                co: &[],
                presenters: &[],
                leaving: &["F"],
                expected: None,
            },
        ];
        for case in cases {
            let co = ids(case.co);
            let presenters = ids(case.presenters);
            let people = EventPeople {
                organizer: case.organizer,
                co_organizers: &co,
                presenters: &presenters,
            };
            let got = event_owner(&ORDER, &people, "L", Some("F"), |id| {
                !case.leaving.contains(&id)
            });
            let expected = case.expected.map(|(id, via)| NewOwner {
                employee_id: id.into(),
                via,
            });
            assert_eq!(got, expected, "{}", case.name);
        }
    }

    #[test]
    fn the_policy_order_is_respected() {
        let co = ids(&["c"]);
        let presenters = ids(&["p"]);
        let people = EventPeople {
            organizer: Some("o"),
            co_organizers: &co,
            presenters: &presenters,
        };
        let got = event_owner(&[Presenters, Organizer], &people, "L", None, |_| true);
        assert_eq!(
            got,
            Some(NewOwner {
                employee_id: "p".into(),
                via: Presenters
            })
        );
        // Without FallbackOwner in the order, the fallback is never used.
        let alone = EventPeople {
            organizer: Some("L"),
            ..Default::default()
        };
        assert_eq!(
            event_owner(&[Organizer], &alone, "L", Some("F"), |_| true),
            None
        );
    }

    #[test]
    fn rules_go_to_an_eligible_manager_else_the_fallback() {
        assert_eq!(
            rule_owner(
                RuleTransferTarget::Manager,
                Some("m"),
                "L",
                Some("F"),
                |_| true
            ),
            Some("m".into())
        );
        assert_eq!(
            rule_owner(
                RuleTransferTarget::Manager,
                Some("m"),
                "L",
                Some("F"),
                |id| id != "m"
            ),
            Some("F".into())
        );
        assert_eq!(
            rule_owner(RuleTransferTarget::Manager, None, "L", Some("F"), |_| true),
            Some("F".into())
        );
        assert_eq!(
            rule_owner(
                RuleTransferTarget::FallbackOwner,
                Some("m"),
                "L",
                Some("F"),
                |_| true
            ),
            Some("F".into())
        );
        assert_eq!(
            rule_owner(RuleTransferTarget::Manager, Some("L"), "L", None, |_| true),
            None
        );
    }
}
