//! The snapshot plan: what a snapshot means for the tenant's DirectoryUsers.
//!
//! Desired spec per record, compared with the user as it is: only a difference is a
//! write (so a sync of an unchanged file writes nothing). People this source wrote
//! who are missing from a complete snapshot are "removed from the feed": their spec
//! is applied again with `active: false`, the lifecycle's deactivation trigger.
//! Managers named by employee ID resolve to the manager's email in a second pass,
//! over the whole snapshot and the existing users, so order in the file does not
//! matter.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roster_api::directory_user::object_name;
use roster_api::tenant::LocalObjectRef;
use roster_api::{DirectoryUserSpec, Phase, RecordSource};

use crate::{Manager, Record, RowError, Snapshot};

/// A DirectoryUser of the namespace, as the plan needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Existing {
    pub name: String,
    pub spec: DirectoryUserSpec,
    pub phase: Phase,
    /// Has a deletion timestamp.
    pub deleting: bool,
}

/// What a write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A new person.
    Create,
    /// A changed record.
    Update,
    /// An inactive person active again (back in the feed, or rehired).
    Reactivate,
    /// Missing from a complete snapshot: `active: false`.
    Remove,
}

impl Change {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Reactivate => "Reactivate",
            Self::Remove => "Remove",
        }
    }
}

/// One DirectoryUser to apply (the whole spec this source owns).
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub name: String,
    pub spec: DirectoryUserSpec,
    pub change: Change,
    /// Takes an active user out of Active (removed from the feed, or `active: false`
    /// in it): what the mass-deprovisioning guard counts.
    pub deactivates: bool,
}

/// What a sync does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Creates, updates and reactivations in file order, then removals by name.
    pub writes: Vec<Write>,
    /// Every user the snapshot describes, written or not (for `--output-dir`).
    pub desired: Vec<Write>,
    /// Records whose user is already as desired.
    pub unchanged: usize,
    /// Problems that reject no row but leave something out: a manager not found, a
    /// person another source manages. Row, column, reason; no values.
    pub notes: Vec<RowError>,
}

impl Plan {
    pub fn count(&self, change: Change) -> usize {
        self.writes.iter().filter(|w| w.change == change).count()
    }
}

/// The settings of the plan.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The Tenant's name (every user's `tenantRef`).
    pub tenant: &'a str,
    /// Which source writes (`spec.source`); only users of this source are updated or
    /// treated as removed.
    pub source: RecordSource,
    /// The snapshot lists everyone (`completeSnapshot`).
    pub complete: bool,
}

/// Plans a sync of `snapshot` against the namespace's users.
pub fn plan(target: &Target<'_>, snapshot: &Snapshot, existing: &[Existing]) -> Plan {
    let by_id: HashMap<&str, &Existing> = existing
        .iter()
        .map(|e| (e.spec.employee_id.as_str(), e))
        .collect();
    let mut notes = Vec::new();

    // Second pass: the manager's email of each record, once every record is known.
    let emails: HashMap<&str, &str> = snapshot
        .records
        .iter()
        .map(|r| (r.employee_id.as_str(), r.email.as_str()))
        .chain(
            existing
                .iter()
                .filter(|e| e.spec.tenant_ref.name == target.tenant && e.phase != Phase::Purged)
                .map(|e| (e.spec.employee_id.as_str(), e.spec.email.as_str())),
        )
        // Records come first: the snapshot's email wins over the cluster's.
        .fold(HashMap::new(), |mut map, (id, email)| {
            map.entry(id).or_insert(email);
            map
        });

    let mut plan = Plan::default();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for record in &snapshot.records {
        seen.insert(&record.employee_id);
        let manager_email = match &record.manager {
            None => None,
            Some(Manager::Email(email)) => Some(email.clone()),
            Some(Manager::EmployeeId(id)) => match emails.get(id.as_str()) {
                Some(email) => Some(email.to_string()),
                None => {
                    notes.push(RowError::new(
                        record.row,
                        crate::record::field_label(roster_api::tenant::ProfileField::ManagerEmail),
                        "the manager's employee ID matches nobody in this feed or tenant; left blank",
                    ));
                    None
                }
            },
        };
        let desired = desired_spec(target, record, manager_email);
        let current = by_id.get(record.employee_id.as_str());
        let name = current
            .map(|e| e.name.clone())
            .unwrap_or_else(|| object_name(&record.employee_id));
        let change = match current {
            None => Some(Change::Create),
            Some(e) => {
                if let Some(reason) = not_ours(target, e) {
                    notes.push(RowError::new(record.row, "", reason));
                    continue;
                }
                // `groups` are pushed by SCIM, never sent by a feed: not a difference.
                let compared = DirectoryUserSpec {
                    groups: e.spec.groups.clone(),
                    ..desired.clone()
                };
                if e.spec == compared {
                    None
                } else if !e.spec.active && desired.active {
                    Some(Change::Reactivate)
                } else {
                    Some(Change::Update)
                }
            }
        };
        let deactivates = current.is_some_and(|e| e.spec.active) && !desired.active;
        let write = Write {
            name,
            spec: desired,
            change: change.unwrap_or(Change::Update),
            deactivates,
        };
        match change {
            Some(_) => plan.writes.push(write.clone()),
            None => plan.unchanged += 1,
        }
        plan.desired.push(write);
    }

    if target.complete {
        let mut removed: BTreeMap<&str, Write> = BTreeMap::new();
        for e in existing {
            let id = e.spec.employee_id.as_str();
            if seen.contains(id)
                || snapshot.rejected_ids.contains(id)
                || not_ours(target, e).is_some()
                || !e.spec.active
            {
                continue;
            }
            let mut spec = e.spec.clone();
            spec.active = false;
            removed.insert(
                &e.name,
                Write {
                    name: e.name.clone(),
                    spec,
                    change: Change::Remove,
                    deactivates: true,
                },
            );
        }
        plan.desired.extend(removed.values().cloned());
        plan.writes.extend(removed.into_values());
    }
    plan.notes = notes;
    plan
}

/// Why this source leaves an existing user alone, if it does.
fn not_ours(target: &Target<'_>, e: &Existing) -> Option<&'static str> {
    if e.spec.tenant_ref.name != target.tenant {
        Some("the employee ID belongs to a user of another Tenant; not changed")
    } else if e.spec.source != target.source {
        Some("the employee ID belongs to a user another source manages; not changed")
    } else if e.deleting {
        Some("the user is being deleted; not changed")
    } else if e.phase == Phase::Purged {
        Some("the user is purged; personal data is not applied again")
    } else {
        None
    }
}

/// The spec this source wants for a record.
pub fn desired_spec(
    target: &Target<'_>,
    record: &Record,
    manager_email: Option<String>,
) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: LocalObjectRef {
            name: target.tenant.to_string(),
        },
        employee_id: record.employee_id.clone(),
        full_name: record.full_name.clone(),
        email: record.email.clone(),
        picture_url: record.picture_url.clone(),
        hire_date: record.hire_date,
        termination_date: record.termination_date,
        department: record.department.clone(),
        title: record.title.clone(),
        location: record.location.clone(),
        manager_email,
        // In the feed means active, unless the feed says otherwise. A rehire (a hire
        // date after the termination date) is active again through this too; the
        // lifecycle reads the dates.
        active: record.active.unwrap_or(true),
        source: target.source,
        groups: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_file::{CsvFormat, read_csv};

    const HEADER: &str =
        "Employee ID,Full Name,Email Address,Hire Date,Termination Date,Title,Manager's Email\n";

    fn target() -> Target<'static> {
        Target {
            tenant: "acme",
            source: RecordSource::Csv,
            complete: true,
        }
    }

    fn snapshot(rows: &str) -> Snapshot {
        read_csv(format!("{HEADER}{rows}").as_bytes(), &CsvFormat::default()).unwrap()
    }

    /// The users as they would be after applying every write of `plan` to `users`.
    fn applied(users: &[Existing], plan: &Plan) -> Vec<Existing> {
        let mut out: BTreeMap<String, Existing> =
            users.iter().map(|u| (u.name.clone(), u.clone())).collect();
        for w in &plan.writes {
            out.insert(
                w.name.clone(),
                Existing {
                    name: w.name.clone(),
                    spec: w.spec.clone(),
                    phase: Phase::Active,
                    deleting: false,
                },
            );
        }
        out.into_values().collect()
    }

    fn changes(plan: &Plan) -> Vec<(&str, Change)> {
        plan.writes
            .iter()
            .map(|w| (w.spec.employee_id.as_str(), w.change))
            .collect()
    }

    #[test]
    fn a_first_file_creates_and_the_same_file_again_writes_nothing() {
        let s = snapshot("001,A One,a@example.com,,,Engineer,002\n002,B Two,b@example.com,,,,\n");
        let first = plan(&target(), &s, &[]);
        assert_eq!(
            changes(&first),
            [("001", Change::Create), ("002", Change::Create)]
        );
        assert_eq!(first.writes[0].name, "e-001");
        // The manager came after the report in the file and still resolved.
        assert_eq!(
            first.writes[0].spec.manager_email.as_deref(),
            Some("b@example.com")
        );
        let mut users = applied(&[], &first);
        // Groups pushed over SCIM are no difference: a feed never sends them.
        users[0].spec.groups = vec!["Pushed".into()];
        let again = plan(&target(), &s, &users);
        assert!(again.writes.is_empty(), "{:?}", again.writes);
        assert_eq!(again.unchanged, 2);
    }

    #[test]
    fn changes_removals_rehires_and_rejected_rows() {
        let first = snapshot(
            "001,A One,a@example.com,2020-01-01,,Engineer,\n\
             002,B Two,b@example.com,,,,\n\
             003,C Three,c@example.com,,,,\n\
             004,D Four,d@example.com,,,,\n\
             005,E Five,e@example.com,2019-01-01,2024-12-31,,\n",
        );
        let mut users = applied(&[], &plan(&target(), &first, &[]));
        // 005 left earlier (another sync took them out of the feed).
        users
            .iter_mut()
            .find(|u| u.spec.employee_id == "005")
            .unwrap()
            .spec
            .active = false;
        let second = snapshot(
            "001,A One,a@example.com,2020-01-01,,Staff Engineer,\n\
             003,C Three,not-an-email,,,,\n\
             005,E Five,e@example.com,2025-06-01,2024-12-31,,\n",
        );
        let p = plan(&target(), &second, &users);
        assert_eq!(
            changes(&p),
            [
                ("001", Change::Update),
                ("005", Change::Reactivate),
                ("002", Change::Remove),
                ("004", Change::Remove),
            ],
            "003's row is bad: neither updated nor removed"
        );
        let removed = p
            .writes
            .iter()
            .find(|w| w.spec.employee_id == "002")
            .unwrap();
        assert!(!removed.spec.active);
        assert_eq!(
            removed.spec.full_name, "B Two",
            "the rest of the spec stays"
        );
        assert_eq!(p.unchanged, 0);
        // Missing again next time: already inactive, no write.
        let users = applied(&users, &p);
        let third = plan(&target(), &second, &users);
        assert!(third.writes.is_empty(), "{:?}", third.writes);
    }

    #[test]
    fn an_incomplete_snapshot_removes_nobody() {
        let s = snapshot("001,A One,a@example.com,,,,\n002,B Two,b@example.com,,,,\n");
        let users = applied(&[], &plan(&target(), &s, &[]));
        let partial = snapshot("001,A One,a@example.com,,,,\n");
        let p = plan(
            &Target {
                complete: false,
                ..target()
            },
            &partial,
            &users,
        );
        assert!(p.writes.is_empty());
    }

    #[test]
    fn users_of_other_sources_tenants_and_purged_users_are_left_alone() {
        let s = snapshot(
            "001,A One,a@example.com,,,,\n002,B Two,b@example.com,,,,\n003,C,c@example.com,,,,\n",
        );
        let mut users = applied(&[], &plan(&target(), &s, &[]));
        users[0].spec.source = RecordSource::Scim;
        users[1].phase = Phase::Purged;
        users[1].spec.full_name = "purged".into();
        users[2].spec.tenant_ref.name = "other".into();
        let mut extra = users[0].clone();
        extra.name = "e-009".into();
        extra.spec.employee_id = "009".into();
        users.push(extra);
        let p = plan(&target(), &s, &users);
        assert!(p.writes.is_empty(), "{:?}", p.writes);
        let rows: Vec<u64> = p.notes.iter().map(|n| n.row).collect();
        assert_eq!(rows, [2, 3, 4]);
    }

    #[test]
    fn an_unknown_manager_id_is_left_blank_and_noted() {
        let s =
            snapshot("001,A One,a@example.com,,,,777\n002,B,b@example.com,,,,boss@example.com\n");
        let p = plan(&target(), &s, &[]);
        assert_eq!(p.writes[0].spec.manager_email, None);
        assert_eq!(
            p.writes[1].spec.manager_email.as_deref(),
            Some("boss@example.com")
        );
        assert_eq!(p.notes.len(), 1);
        assert_eq!(
            (p.notes[0].row, p.notes[0].column.as_str()),
            (2, "Manager's Email")
        );
    }

    #[test]
    fn ids_that_are_not_names_get_the_shared_object_name() {
        let s = snapshot("AB_12,A One,a@example.com,,,,\n");
        let p = plan(&target(), &s, &[]);
        assert_eq!(p.writes[0].name, object_name("AB_12"));
        assert!(!p.writes[0].name.contains('_'));
    }
}
