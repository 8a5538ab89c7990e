//! The calendar hand-over plan: which of a leaver's calendar events move, to whom,
//! and which have nobody to take them. Pure: the shell lists the leaver's learning-
//! platform items and calendar events, asks the services who has calendar access, and
//! then only carries out [`CalendarPlan::transfers`].

use std::collections::{BTreeMap, BTreeSet};

use roster_api::{CalendarOwnerCandidate, DirectoryUserSpec, DirectoryUserStatus, Phase};

use crate::ownership::{EventPeople, NewOwner, event_owner};

/// One learning-platform event or session the leaver is involved in, as far as the
/// hand-over needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedItem<'a> {
    /// The platform's id of the event or session.
    pub id: &'a str,
    /// The synced calendar event's id, if the item is synced to a calendar.
    pub calendar_event_id: Option<&'a str>,
    /// Employee ID whose calendar holds the synced event.
    pub calendar_owner: Option<&'a str>,
    /// A session the leaver hosts. It is deleted by `RemoveFromEvents`, so handing its
    /// calendar event to someone would only give them a cancelled meeting.
    pub hosted_by_leaver: bool,
    pub people: EventPeople<'a>,
}

/// One calendar event to move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTransfer<'a> {
    pub calendar_event_id: &'a str,
    /// The platform item whose calendar link must follow the event.
    pub item_id: &'a str,
    pub new_owner: NewOwner,
}

/// What the hand-over does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CalendarPlan<'a> {
    pub transfers: Vec<PlannedTransfer<'a>>,
    /// Calendar events nobody eligible can take over (reported, never guessed).
    pub orphaned: Vec<&'a str>,
}

/// The leaver's items whose calendar event they own and that should move, by
/// calendar event id.
pub fn items_to_hand_over<'i, 'a>(
    items: &'i [SyncedItem<'a>],
    leaver: &str,
) -> BTreeMap<&'a str, &'i SyncedItem<'a>> {
    items
        .iter()
        .filter(|i| i.calendar_owner == Some(leaver) && !i.hosted_by_leaver)
        .filter_map(|i| i.calendar_event_id.map(|id| (id, i)))
        .collect()
}

/// Everyone who could take over one of `linked`'s events: the people named on them and
/// the fallback owner, never the leaver. The shell checks each one's calendar access.
pub fn owner_candidates<'a>(
    linked: &BTreeMap<&'a str, &SyncedItem<'a>>,
    leaver: &str,
    fallback: Option<&'a str>,
) -> BTreeSet<&'a str> {
    linked
        .values()
        .flat_map(|i| {
            let p = &i.people;
            p.organizer
                .into_iter()
                .chain(p.co_organizers.iter().map(String::as_str))
                .chain(p.presenters.iter().map(String::as_str))
        })
        .chain(fallback)
        .filter(|id| *id != leaver)
        .collect()
}

/// Plans the hand-over of the calendar events the leaver organizes (`listed`, as the
/// calendar service returned them) that belong to a linked platform item. Events the
/// calendar lists but the platform does not know are not roster's to move.
pub fn plan_calendar_transfers<'a>(
    order: &[CalendarOwnerCandidate],
    linked: &BTreeMap<&'a str, &SyncedItem<'a>>,
    listed: &[&'a str],
    leaver: &str,
    fallback: Option<&str>,
    eligible: impl Fn(&str) -> bool,
) -> CalendarPlan<'a> {
    let mut plan = CalendarPlan::default();
    for event_id in listed {
        let Some(item) = linked.get(event_id) else {
            continue;
        };
        match event_owner(order, &item.people, leaver, fallback, &eligible) {
            Some(new_owner) => plan.transfers.push(PlannedTransfer {
                calendar_event_id: event_id,
                item_id: item.id,
                new_owner,
            }),
            None => plan.orphaned.push(event_id),
        }
    }
    plan
}

impl CalendarPlan<'_> {
    /// The step's PII-free summary, and a warning for an administrator when events
    /// have no eligible new owner.
    pub fn summary(&self) -> (String, Option<String>) {
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &self.transfers {
            *by_rule.entry(t.new_owner.via.as_str()).or_default() += 1;
        }
        let mut summary = plural(
            self.transfers.len(),
            "event transferred",
            "events transferred",
        );
        if !by_rule.is_empty() {
            let parts: Vec<String> = by_rule
                .iter()
                .map(|(via, n)| format!("{n} to {via}"))
                .collect();
            summary.push_str(&format!(" ({})", parts.join(", ")));
        }
        let warning = (!self.orphaned.is_empty()).then(|| {
            let text = plural(
                self.orphaned.len(),
                "event has no eligible new owner",
                "events have no eligible new owner",
            );
            summary.push_str(&format!("; {text}"));
            format!("{text}; set a valid calendar.fallbackOwner on the Tenant")
        });
        (summary, warning)
    }
}

/// Whether a colleague can inherit a leaver's commitments: Active and not on their way
/// out (deactivated, deleted, or past Active).
pub fn is_staying(
    spec: &DirectoryUserSpec,
    status: Option<&DirectoryUserStatus>,
    deleting: bool,
) -> bool {
    spec.active && !deleting && status.is_none_or(|s| s.phase == Phase::Active)
}

/// `"1 event transferred"`, `"2 events transferred"`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use CalendarOwnerCandidate::*;

    const ORDER: [CalendarOwnerCandidate; 4] = [Organizer, CoOrganizers, Presenters, FallbackOwner];

    fn item<'a>(
        id: &'a str,
        event: Option<&'a str>,
        owner: Option<&'a str>,
        hosted: bool,
        people: EventPeople<'a>,
    ) -> SyncedItem<'a> {
        SyncedItem {
            id,
            calendar_event_id: event,
            calendar_owner: owner,
            hosted_by_leaver: hosted,
            people,
        }
    }

    /// Who gets which event, as a table: each row is one platform item of the leaver L.
    #[test]
    fn plan_table() {
        let co = vec!["c".to_string()];
        let leaving_co = vec!["x".to_string()];
        let presenters = vec!["p".to_string()];
        let none: Vec<String> = Vec::new();
        let items = [
            // Organized by someone staying: they take it.
            item(
                "ev-1",
                Some("g-1"),
                Some("L"),
                false,
                EventPeople {
                    organizer: Some("o"),
                    co_organizers: &co,
                    presenters: &presenters,
                },
            ),
            // L organizes; the co-organizer takes it.
            item(
                "ev-2",
                Some("g-2"),
                Some("L"),
                false,
                EventPeople {
                    organizer: Some("L"),
                    co_organizers: &co,
                    presenters: &none,
                },
            ),
            // L organizes; the co-organizer is leaving too: the presenter.
            item(
                "ev-3",
                Some("g-3"),
                Some("L"),
                false,
                EventPeople {
                    organizer: Some("L"),
                    co_organizers: &leaving_co,
                    presenters: &presenters,
                },
            ),
            // Nobody named: the fallback owner.
            item(
                "ev-4",
                Some("g-4"),
                Some("L"),
                false,
                EventPeople {
                    organizer: Some("L"),
                    co_organizers: &none,
                    presenters: &none,
                },
            ),
            // A session L hosts: deleted later, not handed over.
            item("se-5", Some("g-5"), Some("L"), true, EventPeople::default()),
            // Someone else's calendar holds it: not L's to move.
            item(
                "ev-6",
                Some("g-6"),
                Some("o"),
                false,
                EventPeople::default(),
            ),
            // Not synced to a calendar.
            item("ev-7", None, Some("L"), false, EventPeople::default()),
        ];
        let linked = items_to_hand_over(&items, "L");
        assert_eq!(
            linked.keys().copied().collect::<Vec<_>>(),
            ["g-1", "g-2", "g-3", "g-4"]
        );
        assert_eq!(
            owner_candidates(&linked, "L", Some("F"))
                .into_iter()
                .collect::<Vec<_>>(),
            ["F", "c", "o", "p", "x"]
        );
        // g-9 is on L's calendar but unknown to the platform: left alone.
        let listed = ["g-1", "g-2", "g-3", "g-4", "g-9"];
        let eligible = |id: &str| id != "x";
        let plan = plan_calendar_transfers(&ORDER, &linked, &listed, "L", Some("F"), eligible);
        let got: Vec<_> = plan
            .transfers
            .iter()
            .map(|t| {
                (
                    t.calendar_event_id,
                    t.item_id,
                    t.new_owner.employee_id.as_str(),
                    t.new_owner.via,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("g-1", "ev-1", "o", Organizer),
                ("g-2", "ev-2", "c", CoOrganizers),
                ("g-3", "ev-3", "p", Presenters),
                ("g-4", "ev-4", "F", FallbackOwner),
            ]
        );
        assert!(plan.orphaned.is_empty());
        assert_eq!(
            plan.summary(),
            (
                "4 events transferred (1 to CoOrganizers, 1 to FallbackOwner, 1 to Organizer, 1 to Presenters)".to_string(),
                None
            )
        );

        // Without a usable fallback owner, g-4 has nobody: reported, with a warning.
        let plan = plan_calendar_transfers(&ORDER, &linked, &listed, "L", Some("F"), |id| {
            id != "x" && id != "F"
        });
        assert_eq!(plan.orphaned, ["g-4"]);
        let (summary, warning) = plan.summary();
        assert_eq!(
            summary,
            "3 events transferred (1 to CoOrganizers, 1 to Organizer, 1 to Presenters); 1 event has no eligible new owner"
        );
        assert!(warning.unwrap().contains("fallbackOwner"));
    }

    #[test]
    fn nothing_to_hand_over() {
        let plan = CalendarPlan::default();
        assert_eq!(plan.summary(), ("0 events transferred".to_string(), None));
    }

    #[test]
    fn only_active_colleagues_who_stay_are_eligible() {
        let spec = DirectoryUserSpec {
            active: true,
            ..Default::default()
        };
        assert!(is_staying(&spec, None, false));
        assert!(!is_staying(&spec, None, true));
        let inactive = DirectoryUserSpec {
            active: false,
            ..spec.clone()
        };
        assert!(!is_staying(&inactive, None, false));
        let quarantined = DirectoryUserStatus {
            phase: Phase::Quarantined,
            ..Default::default()
        };
        assert!(!is_staying(&spec, Some(&quarantined), false));
    }
}
