//! The demo's company: the seeds in `examples/standins/demo-*-seed.yaml`, the
//! DirectoryUsers generated from them, and what changed downstream, read from the
//! stand-ins at the end.
//!
//! Everything printed from here names people by employee ID or by role, never by name
//! or email.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use kube::api::ObjectMeta;

use roster_api::{DirectoryUser, DirectoryUserSpec, RecordSource};
use roster_connectors::lms::{Access, AssignmentStatus, User};
use roster_standins::calendar::{CalendarSeed, GoogleCalendarStandin};
use roster_standins::lms::{LmsSeed, LmsState};

/// File names of the seeds, under `<examples>/standins/`.
pub const LMS_SEED: &str = "demo-lms-seed.yaml";
pub const CALENDAR_SEED: &str = "demo-calendar-seed.yaml";

/// The DirectoryUser name of an employee ID (the rule every people source uses).
pub use roster_api::directory_user::object_name;

/// The two seeds, loaded and checked against each other.
#[derive(Clone, Debug)]
pub struct Company {
    pub lms: LmsSeed,
    /// With relative times already resolved.
    pub calendar: CalendarSeed,
}

impl Company {
    /// Reads both seeds from `<examples>/standins/` and resolves the calendar's relative
    /// times against `now`.
    pub fn load(examples: &Path, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let dir = examples.join("standins");
        let lms_path = dir.join(LMS_SEED);
        let lms = LmsSeed::from_path(&lms_path)
            .with_context(|| format!("read {}", lms_path.display()))?;
        let calendar_path = dir.join(CALENDAR_SEED);
        let mut calendar = CalendarSeed::from_yaml_file(&calendar_path)
            .with_context(|| format!("read {}", calendar_path.display()))?;
        resolve_relative_times(&mut calendar, now)
            .with_context(|| format!("{}", calendar_path.display()))?;
        let company = Self { lms, calendar };
        company.check()?;
        Ok(company)
    }

    /// The seeds are consistent: the learning platform accepts its seed, the calendar's
    /// events parse, and every event the platform synced to a calendar is in the
    /// calendar seed under the same id, organized by the calendar owner's email.
    pub fn check(&self) -> anyhow::Result<()> {
        self.lms
            .validate(&BTreeSet::new())
            .context("the learning-platform seed")?;
        let events = self.calendar.events().context("the calendar seed")?;
        let organizers: BTreeMap<&str, &str> = events
            .iter()
            .map(|e| (e.id.as_str(), e.organizer.as_str()))
            .collect();
        let links = self
            .lms
            .events
            .iter()
            .map(|e| (&e.id, &e.calendar_event_id, &e.calendar_owner))
            .chain(
                self.lms
                    .sessions
                    .iter()
                    .map(|s| (&s.id, &s.calendar_event_id, &s.calendar_owner)),
            );
        for (id, event_id, owner) in links {
            let (Some(event_id), Some(owner)) = (event_id, owner) else {
                continue;
            };
            let Some(organizer) = organizers.get(event_id.as_str()) else {
                bail!("{id} is synced to calendar event {event_id}, which the calendar seed lacks");
            };
            let owner_email = self.email_of(owner).unwrap_or_default();
            if !organizer.eq_ignore_ascii_case(owner_email) {
                bail!(
                    "calendar event {event_id} must be organized by the calendar owner of {id} ({owner})"
                );
            }
        }
        let people: BTreeSet<String> = self
            .lms
            .users
            .iter()
            .filter_map(|u| u.email.as_deref())
            .map(str::to_ascii_lowercase)
            .collect();
        for email in &self.calendar.users {
            if !people.contains(&email.to_ascii_lowercase()) {
                bail!(
                    "a calendar of the calendar seed belongs to nobody in the learning-platform seed"
                );
            }
        }
        Ok(())
    }

    /// The email of an employee ID, per the learning-platform seed.
    pub fn email_of(&self, employee_id: &str) -> Option<&str> {
        self.lms
            .users
            .iter()
            .find(|u| u.employee_id == employee_id)
            .and_then(|u| u.email.as_deref())
    }

    /// The DirectoryUser a people source would write for a seeded person.
    pub fn directory_user(&self, user: &User, tenant: &str) -> DirectoryUser {
        let spec = DirectoryUserSpec {
            tenant_ref: tenant.into(),
            employee_id: user.employee_id.clone(),
            full_name: user.full_name.clone().unwrap_or_default(),
            email: user.email.clone().unwrap_or_default(),
            picture_url: user.picture_url.clone(),
            hire_date: user.hire_date,
            termination_date: user.termination_date,
            department: user.department.clone(),
            title: user.title.clone(),
            location: user.location.clone(),
            manager_email: user
                .manager_employee_id
                .as_deref()
                .and_then(|m| self.email_of(m))
                .map(str::to_string),
            active: true,
            source: RecordSource::Manual,
            groups: Vec::new(),
        };
        let name = object_name(&user.employee_id);
        DirectoryUser {
            metadata: ObjectMeta {
                name: Some(name),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/part-of".to_string(),
                    "roster-demo".to_string(),
                )])),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }
}

/// A learning-platform record for a DirectoryUser the seed does not know (e.g. one
/// added to `examples/users.yaml` later), so its steps find the person.
pub fn platform_user(spec: &DirectoryUserSpec, manager: Option<String>) -> User {
    User {
        employee_id: spec.employee_id.clone(),
        full_name: Some(spec.full_name.clone()),
        email: Some(spec.email.clone()),
        picture_url: spec.picture_url.clone(),
        department: spec.department.clone(),
        title: spec.title.clone(),
        location: spec.location.clone(),
        manager_employee_id: manager,
        hire_date: spec.hire_date,
        termination_date: spec.termination_date,
        access: Access::Granted,
        anonymized: false,
        purged: false,
        calendar_access: false,
    }
}

/// Turns `+2d`, `+2d 1h`, `-1h` into RFC 3339 times from `now` (to the minute), so the
/// calendar's events stay upcoming like the learning platform's.
pub fn resolve_relative_times(seed: &mut CalendarSeed, now: DateTime<Utc>) -> anyhow::Result<()> {
    let base = now.trunc_subsecs(0);
    let base = base - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&base)));
    let resolve = |value: &mut String| -> anyhow::Result<()> {
        let text = value.trim();
        let (sign, rest) = match text.split_at_checked(1) {
            Some(("+", rest)) => (1, rest),
            Some(("-", rest)) => (-1, rest),
            _ => return Ok(()),
        };
        let offset = humantime::parse_duration(rest.trim())
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .with_context(|| {
                format!("a relative time must look like +2d or +2d 1h, not {text:?}")
            })?;
        *value = (base + offset * sign).to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(())
    };
    for event in &mut seed.events {
        resolve(&mut event.start)?;
        resolve(&mut event.end)?;
        for exception in &mut event.exceptions {
            resolve(&mut exception.original_start)?;
            if let Some(start) = &mut exception.start {
                resolve(start)?;
            }
            if let Some(end) = &mut exception.end {
                resolve(end)?;
            }
        }
    }
    Ok(())
}

/// What the stand-ins held at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub lms: LmsSeed,
    /// Calendar event id → (organizer email, recurring).
    pub calendar: BTreeMap<String, (String, bool)>,
    pub revoked: usize,
    pub restored: usize,
    /// Accounts created and profile updates applied (joiners and movers).
    pub created: usize,
    pub updated: usize,
    pub notifications: usize,
    /// Changes applied twice (learning platform and calendar): must stay 0.
    pub duplicates: usize,
}

impl Snapshot {
    pub fn take(lms: &LmsState, calendar: &GoogleCalendarStandin, ids: &[String]) -> Self {
        Self {
            lms: lms.export(),
            calendar: ids
                .iter()
                .filter_map(|id| {
                    calendar
                        .event(id)
                        .map(|e| (id.clone(), (e.organizer.clone(), e.is_recurring())))
                })
                .collect(),
            revoked: lms.applied_count("revokeAccess"),
            restored: lms.applied_count("restoreAccess"),
            created: lms.applied_count("createUser"),
            updated: lms.applied_count("updateUser"),
            notifications: lms.notifications().len(),
            duplicates: lms.duplicates().len() + calendar.duplicates().duplicates.len(),
        }
    }
}

/// Who is who, captured before anyone leaves (purge scrubs the records later).
#[derive(Clone, Debug, Default)]
pub struct People {
    /// Lower-case email → employee ID.
    pub by_email: BTreeMap<String, String>,
    /// Employee ID → their manager's employee ID.
    pub managers: BTreeMap<String, String>,
    /// The tenant's calendar fallback owner.
    pub fallback: Option<String>,
}

impl People {
    pub fn from_directory(users: &[DirectoryUser], fallback: Option<&str>) -> Self {
        let by_email: BTreeMap<String, String> = users
            .iter()
            .map(|u| {
                (
                    u.spec.email.to_ascii_lowercase(),
                    u.spec.employee_id.clone(),
                )
            })
            .collect();
        let managers = users
            .iter()
            .filter_map(|u| {
                let manager = u.spec.manager_email.as_deref()?.to_ascii_lowercase();
                Some((u.spec.employee_id.clone(), by_email.get(&manager)?.clone()))
            })
            .collect();
        let fallback = fallback
            .filter(|id| users.iter().any(|u| u.spec.employee_id == *id))
            .map(str::to_string);
        Self {
            by_email,
            managers,
            fallback,
        }
    }
}

/// What changed downstream between two snapshots, counted by kind and role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New owner's role → calendar events moved.
    pub events_moved: BTreeMap<&'static str, usize>,
    pub series_moved: usize,
    pub seats_freed: usize,
    pub seat_places: usize,
    pub roles_removed: usize,
    pub sessions_deleted: usize,
    pub attendees_notified: usize,
    /// New assigner's role → rules moved.
    pub rules_moved: BTreeMap<&'static str, usize>,
    pub memberships_removed: usize,
    pub memberships_added: usize,
    pub groups_touched: usize,
    pub accounts_created: usize,
    pub profiles_updated: usize,
    pub assignments_removed: usize,
    pub completed_kept: usize,
    pub anonymized: usize,
    pub purged: usize,
    pub engagement_kept: usize,
    pub revoked: usize,
    pub restored: usize,
    pub duplicates: usize,
}

impl Changes {
    pub fn between(before: &Snapshot, after: &Snapshot, people: &People) -> Self {
        let mut changes = Changes::default();
        let (b, a) = (&before.lms, &after.lms);

        // Calendar events: a new organizer, named by their role in the platform event.
        for (id, (old, recurring)) in &before.calendar {
            let Some((new, _)) = after.calendar.get(id) else {
                continue;
            };
            if new.eq_ignore_ascii_case(old) {
                continue;
            }
            let new_id = people.by_email.get(&new.to_ascii_lowercase());
            let linked = b
                .events
                .iter()
                .find(|e| e.calendar_event_id.as_deref() == Some(id))
                .map(|e| {
                    (
                        e.organizer.clone(),
                        e.co_organizers.clone(),
                        e.presenters.clone(),
                    )
                })
                .or_else(|| {
                    b.sessions
                        .iter()
                        .find(|s| s.calendar_event_id.as_deref() == Some(id))
                        .map(|s| (Some(s.host.clone()), Vec::new(), Vec::new()))
                });
            let role = match (new_id, linked) {
                (Some(n), Some((organizer, co, presenters))) => {
                    if organizer.as_ref() == Some(n) {
                        "the event's organizer"
                    } else if co.contains(n) {
                        "a co-organizer"
                    } else if presenters.contains(n) {
                        "a presenter"
                    } else if people.fallback.as_ref() == Some(n) {
                        "the fallback owner"
                    } else {
                        "someone else"
                    }
                }
                _ => "someone else",
            };
            *changes.events_moved.entry(role).or_default() += 1;
            if *recurring {
                changes.series_moved += 1;
            }
        }

        // Events and sessions: seats, roles, deleted sessions.
        for event in &b.events {
            let Some(now) = a.events.iter().find(|e| e.id == event.id) else {
                continue;
            };
            let freed = event
                .attendees
                .iter()
                .filter(|p| !now.attendees.contains(p))
                .count();
            changes.seats_freed += freed;
            changes.seat_places += usize::from(freed > 0);
            changes.roles_removed +=
                usize::from(event.organizer.is_some() && now.organizer.is_none())
                    + event
                        .co_organizers
                        .iter()
                        .filter(|p| !now.co_organizers.contains(p))
                        .count()
                    + event
                        .presenters
                        .iter()
                        .filter(|p| !now.presenters.contains(p))
                        .count();
        }
        for session in &b.sessions {
            match a.sessions.iter().find(|s| s.id == session.id) {
                None => changes.sessions_deleted += 1,
                Some(now) => {
                    let freed = session
                        .attendees
                        .iter()
                        .filter(|p| !now.attendees.contains(p))
                        .count();
                    changes.seats_freed += freed;
                    changes.seat_places += usize::from(freed > 0);
                }
            }
        }
        changes.attendees_notified = after.notifications.saturating_sub(before.notifications);

        // Rules: the new assigner, by role.
        for rule in &b.rules {
            let Some(now) = a.rules.iter().find(|r| r.id == rule.id) else {
                continue;
            };
            if now.assigner_employee_id == rule.assigner_employee_id {
                continue;
            }
            let new = &now.assigner_employee_id;
            let role = if people.managers.get(&rule.assigner_employee_id) == Some(new) {
                "the leaver's manager"
            } else if people.fallback.as_ref() == Some(new) {
                "the fallback owner"
            } else {
                "someone else"
            };
            *changes.rules_moved.entry(role).or_default() += 1;
        }

        // Groups.
        for group in &b.groups {
            let now = a.groups.iter().find(|g| g.id == group.id);
            let removed = group
                .members
                .iter()
                .filter(|m| now.is_none_or(|g| !g.members.contains(m)))
                .count();
            changes.memberships_removed += removed;
            let added = now.map_or(0, |now| {
                now.members
                    .iter()
                    .filter(|m| !group.members.contains(m))
                    .count()
            });
            changes.memberships_added += added;
            changes.groups_touched += usize::from(removed + added > 0);
        }
        changes.accounts_created = after.created.saturating_sub(before.created);
        changes.profiles_updated = after.updated.saturating_sub(before.updated);

        // Assignments: outstanding ones of leavers go, completed ones stay.
        let anonymized: BTreeSet<&str> = a
            .users
            .iter()
            .filter(|u| u.anonymized)
            .map(|u| u.employee_id.as_str())
            .collect();
        changes.assignments_removed = b
            .assignments
            .iter()
            .filter(|x| !a.assignments.iter().any(|y| y.id == x.id))
            .count();
        changes.completed_kept = a
            .assignments
            .iter()
            .filter(|x| x.status == AssignmentStatus::Completed)
            .filter(|x| anonymized.contains(x.employee_id.as_str()))
            .count();

        // People.
        changes.anonymized = anonymized.len();
        changes.purged = a.users.iter().filter(|u| u.purged).count();
        changes.engagement_kept = a
            .engagement
            .iter()
            .filter(|r| anonymized.contains(r.employee_id.as_str()))
            .count();
        changes.revoked = after.revoked.saturating_sub(before.revoked);
        changes.restored = after.restored.saturating_sub(before.restored);
        changes.duplicates = after.duplicates;
        changes
    }

    /// The summary, one line per kind of change. PII-free: counts and roles only.
    pub fn lines(&self) -> Vec<String> {
        let by_role = |map: &BTreeMap<&'static str, usize>| {
            let mut parts: Vec<(&&str, &usize)> = map.iter().collect();
            parts.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
            parts
                .iter()
                .map(|(role, n)| format!("{n} to {role}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let moved: usize = self.events_moved.values().sum();
        let rules: usize = self.rules_moved.values().sum();
        let mut lines = Vec::new();
        lines.push(format!(
            "joiners       {} created at the learning platform; the rest adopted by employee ID",
            count(self.accounts_created, "account", "accounts")
        ));
        lines.push(format!(
            "movers        {} sent (only the changed fields)",
            count(self.profiles_updated, "profile update", "profile updates")
        ));
        lines.push(format!(
            "access        {} revoked at once (stage 1); {} restored after a reversal",
            self.revoked, self.restored
        ));
        let mut calendar = format!("calendar      {}", count(moved, "event", "events"));
        if moved > 0 {
            calendar.push_str(&format!(
                " transferred with events.move ({} recurring): {}",
                self.series_moved,
                by_role(&self.events_moved)
            ));
        } else {
            calendar.push_str(" transferred");
        }
        lines.push(calendar);
        lines.push(format!(
            "seats         {} freed in {}; {} removed (presenter, organizer, co-organizer)",
            count(self.seats_freed, "attendee seat", "attendee seats"),
            count(self.seat_places, "event or session", "events and sessions"),
            count(self.roles_removed, "role", "roles")
        ));
        lines.push(format!(
            "sessions      {} hosted by leavers deleted; {} notified",
            self.sessions_deleted,
            count(self.attendees_notified, "attendee", "attendees")
        ));
        let mut rule_line = format!(
            "rules         {} moved",
            count(rules, "assignment rule", "assignment rules")
        );
        if rules > 0 {
            rule_line.push_str(&format!(": {}", by_role(&self.rules_moved)));
        }
        lines.push(rule_line);
        lines.push(format!(
            "groups        {} left, {} added by the Tenant's rules ({} touched)",
            count(
                self.memberships_removed,
                "group membership",
                "group memberships"
            ),
            self.memberships_added,
            count(self.groups_touched, "group", "groups")
        ));
        lines.push(format!(
            "assignments   {} removed; {} kept",
            count(
                self.assignments_removed,
                "outstanding assignment",
                "outstanding assignments"
            ),
            count(self.completed_kept, "completed one", "completed ones")
        ));
        lines.push(format!(
            "people        {} anonymized, {} purged; {} kept, reachable by employee ID",
            count(self.anonymized, "user", "users"),
            self.purged,
            count(
                self.engagement_kept,
                "engagement record",
                "engagement records"
            )
        ));
        lines.push(format!(
            "idempotency   {} applied twice",
            count(self.duplicates, "change", "changes")
        ));
        lines
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Time of day as shown next to deadlines: `12:00:10Z`.
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> std::path::PathBuf {
        roster_testkit::repo_path("examples")
    }

    #[test]
    fn the_seeds_are_aligned() {
        let company = Company::load(&examples(), Utc::now()).expect("the demo seeds load");
        assert!(
            (18..=24).contains(&company.lms.users.len()),
            "about 20 people"
        );
        assert_eq!(company.lms.users.len(), company.calendar.users.len());
        for user in &company.lms.users {
            assert!(
                user.email
                    .as_deref()
                    .is_some_and(|e| e.ends_with("@example.com")),
                "{}: example.com addresses only",
                user.employee_id
            );
        }
        let recurring = company
            .calendar
            .events()
            .unwrap()
            .iter()
            .filter(|e| e.is_recurring())
            .count();
        assert!(recurring >= 1, "a recurring series");
    }

    #[test]
    fn the_seed_knows_the_people_of_users_yaml() {
        let company = Company::load(&examples(), Utc::now()).unwrap();
        let text = std::fs::read_to_string(examples().join("users.yaml")).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc).unwrap();
            let Ok(user) = serde_yaml_ng::from_value::<DirectoryUser>(value) else {
                continue;
            };
            assert_eq!(
                company.email_of(&user.spec.employee_id),
                Some(user.spec.email.as_str()),
                "{} differs between users.yaml and {LMS_SEED}",
                user.spec.employee_id
            );
        }
    }

    #[test]
    fn relative_times_resolve_from_now() {
        let now = DateTime::parse_from_rfc3339("2030-05-06T07:08:09.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut seed = CalendarSeed::from_yaml_str(
            "events:\n- id: a\n  organizer: a@example.com\n  start: \"+2d\"\n  end: \"+2d 1h\"\n  exceptions:\n  - originalStart: \"-1h\"\n    cancelled: true\n",
        )
        .unwrap();
        resolve_relative_times(&mut seed, now).unwrap();
        assert_eq!(seed.events[0].start, "2030-05-08T07:08:00Z");
        assert_eq!(seed.events[0].end, "2030-05-08T08:08:00Z");
        assert_eq!(
            seed.events[0].exceptions[0].original_start,
            "2030-05-06T06:08:00Z"
        );
        seed.events[0].start = "soon".into();
        assert!(
            resolve_relative_times(&mut seed, now).is_ok(),
            "absolute values are left alone"
        );
    }

    #[test]
    fn generated_users_are_named_by_employee_id() {
        let company = Company::load(&examples(), Utc::now()).unwrap();
        let seeded = company
            .lms
            .users
            .iter()
            .find(|u| u.employee_id == "1011")
            .unwrap();
        let user = company.directory_user(seeded, "acme");
        assert_eq!(user.metadata.name.as_deref(), Some("e-1011"));
        assert_eq!(user.spec.manager_email.as_deref(), company.email_of("1012"));
        assert!(user.spec.active);
    }
}
