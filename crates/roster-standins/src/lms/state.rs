//! The stand-in's in-memory platform: records, the platform's rules for changing
//! them, the idempotency store, the call log, faults and the rate limiter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::calls::{self, Call, Duplicate};
use super::faults::{Fault, Faults, Limiter, RateLimit};
use super::seed::{
    EventRecord, GroupRecord, LmsSeed, Notification, SeedError, SessionRecord, valid_employee_id,
};
use roster_connectors::lms::{
    Access, Assignment, AssignmentStatus, CalendarLink, EngagementRecord, EventRole, Group,
    Involvement, InvolvementKind, Role, Rule, RuleTransfer, User, UserProfile,
};

/// A shared handle on one stand-in's state (one tenant of the platform). Cheap to
/// clone; every clone sees the same data. Besides serving HTTP (see
/// [`router`](super::router)), it is the Rust API of the stand-in: seed it, inspect
/// it, inject faults, read the call log.
#[derive(Clone)]
pub struct LmsState {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for LmsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmsState").finish_non_exhaustive()
    }
}

impl LmsState {
    /// An empty platform that accepts the bearer `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::new(token.into()))),
        }
    }

    /// A platform seeded with `seed`.
    pub fn with_seed(token: impl Into<String>, seed: LmsSeed) -> Result<Self, SeedError> {
        let state = Self::new(token);
        state.seed(seed)?;
        Ok(state)
    }

    /// Adds (or replaces, by ID) the seed's records. References may point at users
    /// already present. Nothing is changed when the seed is invalid.
    pub fn seed(&self, seed: LmsSeed) -> Result<(), SeedError> {
        let mut inner = self.lock();
        let known: BTreeSet<String> = inner.users.keys().cloned().collect();
        seed.validate(&known)?;
        inner.load(seed);
        Ok(())
    }

    /// The bearer token the stand-in accepts.
    pub fn token(&self) -> String {
        self.lock().token.clone()
    }

    /// Every record, as a seed (a snapshot; feeding it to another stand-in clones this one).
    pub fn export(&self) -> LmsSeed {
        self.lock().export()
    }

    pub fn user(&self, employee_id: &str) -> Option<User> {
        self.lock().users.get(employee_id).cloned()
    }

    pub fn event(&self, event_id: &str) -> Option<EventRecord> {
        self.lock().events.get(event_id).cloned()
    }

    pub fn session(&self, session_id: &str) -> Option<SessionRecord> {
        self.lock().sessions.get(session_id).cloned()
    }

    pub fn rule(&self, rule_id: &str) -> Option<Rule> {
        self.lock().rules.get(rule_id).cloned()
    }

    pub fn group(&self, group_id: &str) -> Option<GroupRecord> {
        self.lock().groups.get(group_id).cloned()
    }

    pub fn assignment(&self, assignment_id: &str) -> Option<Assignment> {
        self.lock().assignments.get(assignment_id).cloned()
    }

    /// Engagement records of one employee ID.
    pub fn engagement_of(&self, employee_id: &str) -> Vec<EngagementRecord> {
        self.lock().engagement_of(employee_id)
    }

    /// Notifications the platform sent (session cancellations), in order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.lock().notifications.clone()
    }

    /// Every API request so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests of one operation ID (e.g. `revokeAccess`), in order.
    pub fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .cloned()
            .collect()
    }

    /// How many requests of `operation` took effect.
    pub fn applied_count(&self, operation: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation && c.applied)
            .count()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Mutations that took effect twice (must be empty): see [`Duplicate`].
    pub fn duplicates(&self) -> Vec<Duplicate> {
        calls::duplicates(&self.lock().calls)
    }

    /// Installs a fault; returns its ID. Panics on an invalid fault (see [`Fault::check`]).
    pub fn add_fault(&self, fault: Fault) -> u64 {
        if let Err(why) = fault.check() {
            panic!("invalid fault: {why}");
        }
        self.lock().faults.add(fault)
    }

    /// Removes one fault; false if it was not (or no longer) installed.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.lock().faults.remove(id)
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Installed faults with their IDs (spent faults are gone).
    pub fn faults(&self) -> Vec<(u64, Fault)> {
        self.lock().faults.list()
    }

    /// Sets (or with `None` removes) the real rate limit on API requests.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.lock().limiter.set(limit);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A successful answer of a platform operation.
#[derive(Debug)]
pub(crate) enum Reply {
    NoContent,
    Created { location: String },
    Json(Value),
}

/// A refused operation, rendered as an RFC 7807 problem. `detail` never names a person.
#[derive(Debug)]
pub(crate) struct Fail {
    pub status: u16,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
}

impl Fail {
    pub fn new(
        status: u16,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
        }
    }
}

pub(crate) type Outcome = Result<Reply, Fail>;

/// The members a `UserProfile` may have (the contract's schema).
const PROFILE_MEMBERS: [&str; 9] = [
    "fullName",
    "email",
    "pictureUrl",
    "department",
    "title",
    "location",
    "managerEmployeeId",
    "hireDate",
    "terminationDate",
];

fn invalid_body(detail: &str) -> Fail {
    Fail::new(
        400,
        "invalid-body",
        "Invalid request body",
        detail.to_string(),
    )
}

fn user_not_found() -> Fail {
    Fail::new(
        404,
        "user-not-found",
        "User not found",
        "No user has this employee ID.",
    )
}

fn started(kind: &str) -> Fail {
    Fail::new(
        409,
        if kind == "event" {
            "event-started"
        } else {
            "session-started"
        },
        if kind == "event" {
            "Event already started"
        } else {
            "Session already started"
        },
        format!(
            "The {kind} has started; its roster is part of the attendance history and cannot change."
        ),
    )
}

/// A stored response under an idempotency key.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub fingerprint: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Idem {
    InFlight { fingerprint: String },
    Done(Stored),
}

/// What the idempotency store says about a new request.
pub(crate) enum Begin {
    Fresh,
    Replay(Stored),
    InFlight,
    Mismatch,
}

pub(crate) struct Inner {
    token: String,
    users: BTreeMap<String, User>,
    events: BTreeMap<String, EventRecord>,
    sessions: BTreeMap<String, SessionRecord>,
    rules: BTreeMap<String, Rule>,
    groups: BTreeMap<String, GroupRecord>,
    assignments: BTreeMap<String, Assignment>,
    engagement: Vec<EngagementRecord>,
    locations: Vec<String>,
    notifications: Vec<Notification>,
    idempotency: HashMap<String, Idem>,
    pub calls: Vec<Call>,
    pub faults: Faults,
    pub limiter: Limiter,
}

impl Inner {
    fn new(token: String) -> Self {
        Self {
            token,
            users: BTreeMap::new(),
            events: BTreeMap::new(),
            sessions: BTreeMap::new(),
            rules: BTreeMap::new(),
            groups: BTreeMap::new(),
            assignments: BTreeMap::new(),
            engagement: Vec::new(),
            locations: Vec::new(),
            notifications: Vec::new(),
            idempotency: HashMap::new(),
            calls: Vec::new(),
            faults: Faults::default(),
            limiter: Limiter::default(),
        }
    }

    pub fn authorized(&self, header: Option<&str>) -> bool {
        header
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|token| token.trim() == self.token)
    }

    fn load(&mut self, seed: LmsSeed) {
        for user in seed.users {
            self.users.insert(user.employee_id.clone(), user);
        }
        for event in seed.events {
            self.events.insert(event.id.clone(), event);
        }
        for session in seed.sessions {
            self.sessions.insert(session.id.clone(), session);
        }
        for rule in seed.rules {
            self.rules.insert(rule.id.clone(), rule);
        }
        for mut group in seed.groups {
            if group.name.is_empty() {
                group.name = group.id.clone();
            }
            let mut seen = BTreeSet::new();
            group.members.retain(|m| seen.insert(m.clone()));
            self.groups.insert(group.id.clone(), group);
        }
        for assignment in seed.assignments {
            self.assignments.insert(assignment.id.clone(), assignment);
        }
        for record in seed.engagement {
            self.engagement.retain(|r| r.id != record.id);
            self.engagement.push(record);
        }
        for location in seed.locations {
            if !self.locations.contains(&location) {
                self.locations.push(location);
            }
        }
    }

    fn export(&self) -> LmsSeed {
        LmsSeed {
            users: self.users.values().cloned().collect(),
            events: self.events.values().cloned().collect(),
            sessions: self.sessions.values().cloned().collect(),
            rules: self.rules.values().cloned().collect(),
            groups: self.groups.values().cloned().collect(),
            assignments: self.assignments.values().cloned().collect(),
            engagement: self.engagement.clone(),
            locations: self.locations.clone(),
        }
    }

    fn engagement_of(&self, employee_id: &str) -> Vec<EngagementRecord> {
        self.engagement
            .iter()
            .filter(|r| r.employee_id == employee_id)
            .cloned()
            .collect()
    }

    pub fn next_seq(&self) -> u64 {
        self.calls.last().map_or(1, |c| c.seq + 1)
    }

    // ---- idempotency --------------------------------------------------------

    pub fn begin(&mut self, key: &str, fingerprint: &str) -> Begin {
        match self.idempotency.get(key) {
            None => {
                self.idempotency.insert(
                    key.to_string(),
                    Idem::InFlight {
                        fingerprint: fingerprint.to_string(),
                    },
                );
                Begin::Fresh
            }
            Some(Idem::InFlight { fingerprint: f }) if f == fingerprint => Begin::InFlight,
            Some(Idem::InFlight { .. }) => Begin::Mismatch,
            Some(Idem::Done(stored)) if stored.fingerprint == fingerprint => {
                Begin::Replay(stored.clone())
            }
            Some(Idem::Done(_)) => Begin::Mismatch,
        }
    }

    pub fn finish(&mut self, key: &str, stored: Option<Stored>) {
        match stored {
            Some(stored) => {
                self.idempotency.insert(key.to_string(), Idem::Done(stored));
            }
            None => {
                self.idempotency.remove(key);
            }
        }
    }

    // ---- profile and access -------------------------------------------------

    pub fn upsert_user(&mut self, employee_id: &str, profile: UserProfile) -> Outcome {
        if !valid_employee_id(employee_id) {
            return Err(Fail::new(
                400,
                "invalid-employee-id",
                "Invalid employee ID",
                "An employee ID is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            ));
        }
        check_profile(&profile)?;
        let created = !self.users.contains_key(employee_id);
        let user = self
            .users
            .entry(employee_id.to_string())
            .or_insert_with(|| User {
                employee_id: employee_id.to_string(),
                full_name: None,
                email: None,
                picture_url: None,
                department: None,
                title: None,
                location: None,
                manager_employee_id: None,
                hire_date: None,
                termination_date: None,
                access: Access::Granted,
                anonymized: false,
                purged: false,
                calendar_access: false,
            });
        user.full_name = Some(profile.full_name);
        user.email = Some(profile.email);
        user.picture_url = profile.picture_url;
        user.department = profile.department;
        user.title = profile.title;
        user.location = profile.location;
        user.manager_employee_id = profile.manager_employee_id;
        user.hire_date = profile.hire_date;
        user.termination_date = profile.termination_date;
        user.anonymized = false;
        user.purged = false;
        Ok(if created {
            Reply::Created {
                location: format!("/users/{employee_id}"),
            }
        } else {
            Reply::NoContent
        })
    }

    /// `POST /users`: a new account; an existing employee ID is `409 user-exists`.
    pub fn create_user(&mut self, body: Value) -> Outcome {
        let Value::Object(mut fields) = body else {
            return Err(invalid_body("The body must be a JSON object."));
        };
        let employee_id = match fields.remove("employeeId") {
            Some(Value::String(id)) if valid_employee_id(&id) => id,
            _ => {
                return Err(Fail::new(
                    400,
                    "invalid-employee-id",
                    "Invalid employee ID",
                    "`employeeId` is required: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
                ));
            }
        };
        let profile: UserProfile = serde_json::from_value(Value::Object(fields))
            .map_err(|_| invalid_body("The body does not match the UserProfile schema."))?;
        check_profile(&profile)?;
        if self.users.contains_key(&employee_id) {
            return Err(Fail::new(
                409,
                "user-exists",
                "User exists",
                "An account with this employee ID exists; change it with PATCH /users/{employeeId}.",
            ));
        }
        self.check_manager(&employee_id, profile.manager_employee_id.as_deref())?;
        let location = self.configured_location(profile.location.as_deref());
        self.users.insert(
            employee_id.clone(),
            User {
                employee_id: employee_id.clone(),
                full_name: Some(profile.full_name),
                email: Some(profile.email),
                picture_url: profile.picture_url,
                department: profile.department,
                title: profile.title,
                location,
                manager_employee_id: profile.manager_employee_id,
                hire_date: profile.hire_date,
                termination_date: profile.termination_date,
                access: Access::Granted,
                anonymized: false,
                purged: false,
                calendar_access: false,
            },
        );
        Ok(Reply::Created {
            location: format!("/users/{employee_id}"),
        })
    }

    /// `PATCH /users/{employeeId}`: a JSON merge patch (RFC 7396) of the profile.
    /// `fullName` and `email` cannot be cleared; unknown members are refused; the
    /// patched profile must be valid as a whole, or nothing changes.
    pub fn update_user(&mut self, employee_id: &str, body: Value) -> Outcome {
        let Value::Object(patch) = body else {
            return Err(invalid_body("A merge patch must be a JSON object."));
        };
        let user = self.users.get(employee_id).ok_or_else(user_not_found)?;
        let mut profile = json!(UserProfile {
            full_name: user.full_name.clone().unwrap_or_default(),
            email: user.email.clone().unwrap_or_default(),
            picture_url: user.picture_url.clone(),
            department: user.department.clone(),
            title: user.title.clone(),
            location: user.location.clone(),
            manager_employee_id: user.manager_employee_id.clone(),
            hire_date: user.hire_date,
            termination_date: user.termination_date,
        });
        for (key, value) in patch {
            if !PROFILE_MEMBERS.contains(&key.as_str()) {
                return Err(invalid_body(
                    "The patch has a member that is not a profile field.",
                ));
            }
            if value.is_null() && matches!(key.as_str(), "fullName" | "email") {
                return Err(Fail::new(
                    422,
                    "invalid-profile",
                    "Invalid profile",
                    "`fullName` and `email` cannot be cleared.",
                ));
            }
            if value.is_null() {
                profile.as_object_mut().map(|p| p.remove(&key));
            } else {
                profile[key] = value;
            }
        }
        let profile: UserProfile = serde_json::from_value(profile)
            .map_err(|_| invalid_body("The patch does not match the UserProfile schema."))?;
        check_profile(&profile)?;
        self.check_manager(employee_id, profile.manager_employee_id.as_deref())?;
        let location = self.configured_location(profile.location.as_deref());
        let user = self.users.get_mut(employee_id).ok_or_else(user_not_found)?;
        user.full_name = Some(profile.full_name);
        user.email = Some(profile.email);
        user.picture_url = profile.picture_url;
        user.department = profile.department;
        user.title = profile.title;
        user.location = location;
        user.manager_employee_id = profile.manager_employee_id;
        user.hire_date = profile.hire_date;
        user.termination_date = profile.termination_date;
        // A profile sent for an anonymized or purged person makes the record personal
        // again (a rehire keeps the employee ID); access stays as it was.
        user.anonymized = false;
        user.purged = false;
        Ok(Reply::NoContent)
    }

    /// A manager must be a known person other than the user.
    fn check_manager(&self, employee_id: &str, manager: Option<&str>) -> Result<(), Fail> {
        match manager {
            Some(m) if m == employee_id || !self.users.contains_key(m) => Err(Fail::new(
                422,
                "unknown-manager",
                "Unknown manager",
                "`managerEmployeeId` must be the employee ID of another existing user.",
            )),
            _ => Ok(()),
        }
    }

    /// The platform keeps only configured location names (in their configured
    /// spelling); any other is left blank.
    fn configured_location(&self, location: Option<&str>) -> Option<String> {
        let location = location?;
        if self.locations.is_empty() {
            return Some(location.to_string());
        }
        self.locations
            .iter()
            .find(|l| l.eq_ignore_ascii_case(location.trim()))
            .cloned()
    }

    pub fn get_user(&self, employee_id: &str) -> Outcome {
        let user = self.users.get(employee_id).ok_or_else(user_not_found)?;
        Ok(Reply::Json(json!(user)))
    }

    pub fn revoke_access(&mut self, employee_id: &str) -> Outcome {
        if let Some(user) = self.users.get_mut(employee_id) {
            user.access = Access::Revoked;
        }
        Ok(Reply::NoContent)
    }

    pub fn restore_access(&mut self, employee_id: &str) -> Outcome {
        let user = self.users.get_mut(employee_id).ok_or_else(user_not_found)?;
        if user.anonymized {
            return Err(Fail::new(
                409,
                "user-anonymized",
                "User is anonymized",
                "An anonymized user cannot regain access; send the profile again (PUT) first.",
            ));
        }
        user.access = Access::Granted;
        Ok(Reply::NoContent)
    }

    // ---- events and sessions ------------------------------------------------

    pub fn involvements(&self, employee_id: &str, now: DateTime<Utc>) -> Outcome {
        if !self.users.contains_key(employee_id) {
            return Err(user_not_found());
        }
        let me = |id: &String| id == employee_id;
        let mut items = Vec::new();
        for event in self.events.values().filter(|e| e.starts_at > now) {
            let mut roles = Vec::new();
            if event.attendees.iter().any(me) {
                roles.push(Role::Attendee);
            }
            if event.presenters.iter().any(me) {
                roles.push(Role::Presenter);
            }
            if event.organizer.as_ref().is_some_and(me) {
                roles.push(Role::Organizer);
            }
            if event.co_organizers.iter().any(me) {
                roles.push(Role::CoOrganizer);
            }
            if roles.is_empty() && !event.calendar_owner.as_ref().is_some_and(me) {
                continue;
            }
            items.push(Involvement {
                id: event.id.clone(),
                kind: InvolvementKind::Event,
                title: event.title.clone(),
                starts_at: event.starts_at,
                roles,
                organizer: event.organizer.clone(),
                co_organizers: event.co_organizers.clone(),
                presenters: event.presenters.clone(),
                host: None,
                capacity: event.capacity,
                seats_taken: seats(&event.attendees),
                calendar_event_id: event.calendar_event_id.clone(),
                calendar_owner: event.calendar_owner.clone(),
            });
        }
        for session in self.sessions.values().filter(|s| s.starts_at > now) {
            let mut roles = Vec::new();
            if session.attendees.iter().any(me) {
                roles.push(Role::Attendee);
            }
            if me(&session.host) {
                roles.push(Role::Host);
            }
            if roles.is_empty() && !session.calendar_owner.as_ref().is_some_and(me) {
                continue;
            }
            items.push(Involvement {
                id: session.id.clone(),
                kind: InvolvementKind::Session,
                title: session.title.clone(),
                starts_at: session.starts_at,
                roles,
                organizer: None,
                co_organizers: Vec::new(),
                presenters: Vec::new(),
                host: Some(session.host.clone()),
                capacity: session.capacity,
                seats_taken: seats(&session.attendees),
                calendar_event_id: session.calendar_event_id.clone(),
                calendar_owner: session.calendar_owner.clone(),
            });
        }
        items.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        Ok(list(items))
    }

    pub fn remove_event_attendee(
        &mut self,
        event_id: &str,
        employee_id: &str,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(event) = self.events.get_mut(event_id) else {
            return Ok(Reply::NoContent);
        };
        if !event.attendees.iter().any(|a| a == employee_id) {
            return Ok(Reply::NoContent);
        }
        if event.starts_at <= now {
            return Err(started("event"));
        }
        event.attendees.retain(|a| a != employee_id);
        Ok(Reply::NoContent)
    }

    pub fn remove_event_role(
        &mut self,
        event_id: &str,
        role: &str,
        employee_id: &str,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(role) = EventRole::parse(role) else {
            return Err(Fail::new(
                400,
                "invalid-role",
                "Invalid role",
                "The role must be presenter, organizer or coOrganizer.",
            ));
        };
        let Some(event) = self.events.get_mut(event_id) else {
            return Ok(Reply::NoContent);
        };
        let holds = match role {
            EventRole::Presenter => event.presenters.iter().any(|p| p == employee_id),
            EventRole::Organizer => event.organizer.as_deref() == Some(employee_id),
            EventRole::CoOrganizer => event.co_organizers.iter().any(|p| p == employee_id),
        };
        if !holds {
            return Ok(Reply::NoContent);
        }
        if event.starts_at <= now {
            return Err(started("event"));
        }
        match role {
            EventRole::Presenter => event.presenters.retain(|p| p != employee_id),
            EventRole::Organizer => event.organizer = None,
            EventRole::CoOrganizer => event.co_organizers.retain(|p| p != employee_id),
        }
        Ok(Reply::NoContent)
    }

    pub fn set_event_calendar_link(&mut self, event_id: &str, link: CalendarLink) -> Outcome {
        self.check_calendar_owner(&link)?;
        let event = self.events.get_mut(event_id).ok_or_else(|| {
            Fail::new(
                404,
                "event-not-found",
                "Event not found",
                "No event has this ID.",
            )
        })?;
        event.calendar_event_id = Some(link.calendar_event_id);
        event.calendar_owner = Some(link.calendar_owner);
        Ok(Reply::NoContent)
    }

    pub fn delete_session(&mut self, session_id: &str, now: DateTime<Utc>) -> Outcome {
        let Some(session) = self.sessions.get(session_id) else {
            return Ok(Reply::NoContent);
        };
        if session.starts_at <= now {
            return Err(started("session"));
        }
        let session = self.sessions.remove(session_id).expect("checked above");
        for attendee in session.attendees {
            self.notifications.push(Notification {
                employee_id: attendee,
                kind: "sessionCancelled".into(),
                session_id: session.id.clone(),
            });
        }
        Ok(Reply::NoContent)
    }

    pub fn remove_session_attendee(
        &mut self,
        session_id: &str,
        employee_id: &str,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Ok(Reply::NoContent);
        };
        if !session.attendees.iter().any(|a| a == employee_id) {
            return Ok(Reply::NoContent);
        }
        if session.starts_at <= now {
            return Err(started("session"));
        }
        session.attendees.retain(|a| a != employee_id);
        Ok(Reply::NoContent)
    }

    pub fn set_session_calendar_link(&mut self, session_id: &str, link: CalendarLink) -> Outcome {
        self.check_calendar_owner(&link)?;
        let session = self.sessions.get_mut(session_id).ok_or_else(|| {
            Fail::new(
                404,
                "session-not-found",
                "Session not found",
                "No session has this ID.",
            )
        })?;
        session.calendar_event_id = Some(link.calendar_event_id);
        session.calendar_owner = Some(link.calendar_owner);
        Ok(Reply::NoContent)
    }

    fn check_calendar_owner(&self, link: &CalendarLink) -> Result<(), Fail> {
        if link.calendar_event_id.trim().is_empty() {
            return Err(Fail::new(
                422,
                "invalid-calendar-link",
                "Invalid calendar link",
                "`calendarEventId` must not be empty.",
            ));
        }
        match self.users.get(&link.calendar_owner) {
            Some(owner) if owner.calendar_access && !owner.anonymized => Ok(()),
            _ => Err(Fail::new(
                422,
                "calendar-owner-not-eligible",
                "Calendar owner not eligible",
                "`calendarOwner` must be an existing, non-anonymized user who has authorized calendar access.",
            )),
        }
    }

    // ---- rules ----------------------------------------------------------------

    pub fn user_rules(&self, employee_id: &str, role: Option<&str>) -> Outcome {
        if role != Some("assigner") {
            return Err(Fail::new(
                400,
                "invalid-query",
                "Invalid query",
                "The query parameter `role` is required and must be `assigner`.",
            ));
        }
        if !self.users.contains_key(employee_id) {
            return Err(user_not_found());
        }
        let rules: Vec<&Rule> = self
            .rules
            .values()
            .filter(|r| r.assigner_employee_id == employee_id)
            .collect();
        Ok(list(rules))
    }

    pub fn transfer_rule(&mut self, rule_id: &str, transfer: RuleTransfer) -> Outcome {
        if !self.rules.contains_key(rule_id) {
            return Err(Fail::new(
                404,
                "rule-not-found",
                "Rule not found",
                "No rule has this ID.",
            ));
        }
        let new = &transfer.new_assigner_employee_id;
        match self.users.get(new) {
            None => {
                return Err(Fail::new(
                    422,
                    "assigner-not-found",
                    "New assigner not found",
                    "`newAssignerEmployeeId` is not the employee ID of a user.",
                ));
            }
            Some(user) if user.access != Access::Granted || user.anonymized => {
                return Err(Fail::new(
                    422,
                    "assigner-not-eligible",
                    "New assigner not eligible",
                    "The new assigner must have access to the platform.",
                ));
            }
            Some(_) => {}
        }
        let rule = self.rules.get_mut(rule_id).expect("checked above");
        rule.assigner_employee_id = new.clone();
        Ok(Reply::Json(json!(rule)))
    }

    // ---- groups ---------------------------------------------------------------

    pub fn user_groups(&self, employee_id: &str) -> Outcome {
        if !self.users.contains_key(employee_id) {
            return Err(user_not_found());
        }
        let groups: Vec<Group> = self
            .groups
            .values()
            .filter(|g| g.members.iter().any(|m| m == employee_id))
            .map(|g| Group {
                id: g.id.clone(),
                name: g.name.clone(),
                member_count: seats(&g.members),
            })
            .collect();
        Ok(list(groups))
    }

    pub fn add_group_member(&mut self, group_id: &str, employee_id: &str) -> Outcome {
        let user = self.users.get(employee_id).ok_or_else(user_not_found)?;
        if user.anonymized {
            return Err(Fail::new(
                409,
                "user-anonymized",
                "User is anonymized",
                "An anonymized user cannot join groups.",
            ));
        }
        if group_id.trim().is_empty() || group_id.len() > 256 {
            return Err(Fail::new(
                400,
                "invalid-group",
                "Invalid group",
                "A group ID is 1-256 characters.",
            ));
        }
        // Groups are set up at the platform by its administrators; members only join.
        let group = self.groups.get_mut(group_id).ok_or_else(|| {
            Fail::new(
                404,
                "group-not-found",
                "Group not found",
                "No group has this ID; groups are created at the platform before rules fill them.",
            )
        })?;
        if !group.members.iter().any(|m| m == employee_id) {
            group.members.push(employee_id.to_string());
        }
        Ok(Reply::NoContent)
    }

    pub fn remove_group_member(&mut self, group_id: &str, employee_id: &str) -> Outcome {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.members.retain(|m| m != employee_id);
        }
        Ok(Reply::NoContent)
    }

    // ---- assignments ----------------------------------------------------------

    pub fn user_assignments(&self, employee_id: &str, status: Option<&str>) -> Outcome {
        let wanted = match status {
            None | Some("all") => None,
            Some("outstanding") => Some(AssignmentStatus::Outstanding),
            Some("completed") => Some(AssignmentStatus::Completed),
            Some(_) => {
                return Err(Fail::new(
                    400,
                    "invalid-query",
                    "Invalid query",
                    "`status` must be outstanding, completed or all.",
                ));
            }
        };
        if !self.users.contains_key(employee_id) {
            return Err(user_not_found());
        }
        let items: Vec<&Assignment> = self
            .assignments
            .values()
            .filter(|a| a.employee_id == employee_id)
            .filter(|a| wanted.is_none_or(|w| a.status == w))
            .collect();
        Ok(list(items))
    }

    pub fn delete_assignment(&mut self, assignment_id: &str) -> Outcome {
        match self.assignments.get(assignment_id) {
            None => Ok(Reply::NoContent),
            Some(a) if a.status == AssignmentStatus::Completed => Err(Fail::new(
                409,
                "assignment-completed",
                "Assignment completed",
                "A completed assignment is engagement history and is kept.",
            )),
            Some(_) => {
                self.assignments.remove(assignment_id);
                Ok(Reply::NoContent)
            }
        }
    }

    // ---- personal data ------------------------------------------------------

    pub fn anonymize(&mut self, employee_id: &str) -> Outcome {
        if let Some(user) = self.users.get_mut(employee_id) {
            user.full_name = None;
            user.email = None;
            user.picture_url = None;
            user.access = Access::Revoked;
            user.calendar_access = false;
            user.anonymized = true;
        }
        Ok(Reply::NoContent)
    }

    pub fn purge(&mut self, employee_id: &str) -> Outcome {
        self.anonymize(employee_id)?;
        if let Some(user) = self.users.get_mut(employee_id) {
            user.department = None;
            user.title = None;
            user.location = None;
            user.manager_employee_id = None;
            user.hire_date = None;
            user.termination_date = None;
            user.purged = true;
        }
        Ok(Reply::NoContent)
    }

    pub fn engagement(&self, employee_id: Option<&str>) -> Outcome {
        let Some(employee_id) = employee_id.filter(|e| !e.is_empty()) else {
            return Err(Fail::new(
                400,
                "invalid-query",
                "Invalid query",
                "The query parameter `employeeId` is required.",
            ));
        };
        Ok(list(self.engagement_of(employee_id)))
    }

    pub fn delete_tenant(&mut self) -> Outcome {
        self.users.clear();
        self.events.clear();
        self.sessions.clear();
        self.rules.clear();
        self.groups.clear();
        self.assignments.clear();
        self.engagement.clear();
        self.notifications.clear();
        Ok(Reply::NoContent)
    }
}

fn seats(people: &[String]) -> u32 {
    people.len().try_into().unwrap_or(u32::MAX)
}

fn list<T: serde::Serialize>(items: Vec<T>) -> Reply {
    Reply::Json(json!({ "items": items }))
}

fn check_profile(profile: &UserProfile) -> Result<(), Fail> {
    let invalid = |detail: &str| {
        Err(Fail::new(
            422,
            "invalid-profile",
            "Invalid profile",
            detail.to_string(),
        ))
    };
    let name = profile.full_name.trim();
    if name.is_empty() || name.chars().count() > 256 {
        return invalid("`fullName` must be 1-256 characters.");
    }
    let email_ok = profile.email.len() <= 254
        && !profile.email.contains(char::is_whitespace)
        && profile
            .email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !email_ok {
        return invalid("`email` must be an email address.");
    }
    if profile
        .picture_url
        .as_deref()
        .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return invalid("`pictureUrl` must be an http(s) URL.");
    }
    if profile
        .manager_employee_id
        .as_deref()
        .is_some_and(|m| !valid_employee_id(m))
    {
        return invalid("`managerEmployeeId` must be an employee ID.");
    }
    for (field, value) in [
        ("department", &profile.department),
        ("title", &profile.title),
        ("location", &profile.location),
    ] {
        if value.as_deref().is_some_and(|v| v.chars().count() > 256) {
            return Err(Fail::new(
                422,
                "invalid-profile",
                "Invalid profile",
                format!("`{field}` must be at most 256 characters."),
            ));
        }
    }
    Ok(())
}
