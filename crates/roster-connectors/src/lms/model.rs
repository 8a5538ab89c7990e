//! Wire types of the learning platform's contract (`docs/learning-platform.openapi.yaml`).
//! JSON is camelCase; optional fields are omitted when absent.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The profile fields roster sends with `PUT /users/{employeeId}` (a full replace:
/// omitted optional fields are cleared). Personal data: never log it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserProfile {
    pub full_name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hire_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<NaiveDate>,
}

/// Whether a person can sign in to the platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Access {
    #[default]
    Granted,
    Revoked,
}

/// A person as `GET /users/{employeeId}` returns them. After anonymization the direct
/// identifiers (name, email, picture) are absent; after purge every personal field is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub employee_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hire_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<NaiveDate>,
    #[serde(default)]
    pub access: Access,
    /// Direct identifiers were stripped (deprovisioning).
    #[serde(default)]
    pub anonymized: bool,
    /// Every remaining personal field was removed.
    #[serde(default)]
    pub purged: bool,
    /// The person has authorized the platform's calendar integration (may own
    /// synced calendar events).
    #[serde(default)]
    pub calendar_access: bool,
}

/// `POST /users`: a new person with their whole profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser<'a> {
    pub employee_id: &'a str,
    #[serde(flatten)]
    pub profile: &'a UserProfile,
}

/// What `POST /users` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// 201: the account was created.
    Created,
    /// 409 `user-exists`: an account with this employee ID exists already.
    Exists,
}

/// `PATCH /users/{employeeId}` (JSON merge patch, RFC 7396): only the fields present
/// are changed; `Some(None)` clears an optional field. Personal data: never log it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilePatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_employee_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hire_date: Option<Option<NaiveDate>>,
}

impl ProfilePatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What `PUT /users/{employeeId}` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// 201: the person did not exist.
    Created,
    /// 204: the existing record was replaced.
    Updated,
}

/// Whether an involvement is an event or a (hosted) session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InvolvementKind {
    Event,
    Session,
}

/// A person's role in an upcoming event or session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Attendee,
    Presenter,
    Organizer,
    CoOrganizer,
    Host,
}

/// The roles `DELETE /events/{eventId}/roles/{role}/{employeeId}` removes
/// (attendees are unenrolled with their own operation; hosts' sessions are deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventRole {
    Presenter,
    Organizer,
    CoOrganizer,
}

impl EventRole {
    /// The path segment of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            EventRole::Presenter => "presenter",
            EventRole::Organizer => "organizer",
            EventRole::CoOrganizer => "coOrganizer",
        }
    }

    /// Parses a path segment.
    pub fn parse(segment: &str) -> Option<Self> {
        match segment {
            "presenter" => Some(EventRole::Presenter),
            "organizer" => Some(EventRole::Organizer),
            "coOrganizer" => Some(EventRole::CoOrganizer),
            _ => None,
        }
    }
}

impl fmt::Display for EventRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<Role> for EventRole {
    type Error = Role;

    /// `Attendee` and `Host` are not event roles of the roles endpoint.
    fn try_from(role: Role) -> Result<Self, Role> {
        match role {
            Role::Presenter => Ok(EventRole::Presenter),
            Role::Organizer => Ok(EventRole::Organizer),
            Role::CoOrganizer => Ok(EventRole::CoOrganizer),
            other => Err(other),
        }
    }
}

impl From<EventRole> for Role {
    fn from(role: EventRole) -> Self {
        match role {
            EventRole::Presenter => Role::Presenter,
            EventRole::Organizer => Role::Organizer,
            EventRole::CoOrganizer => Role::CoOrganizer,
        }
    }
}

/// One upcoming event or session a person takes part in (or whose synced calendar
/// event they own). People are referenced by employee ID only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Involvement {
    pub id: String,
    pub kind: InvolvementKind,
    #[serde(default)]
    pub title: String,
    pub starts_at: DateTime<Utc>,
    /// The person's roles, in the order attendee, presenter, organizer, coOrganizer,
    /// host. Empty when the person only owns the synced calendar event.
    pub roles: Vec<Role>,
    /// Events: the organizer's employee ID, if the event has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<String>,
    /// Events: co-organizers, in order.
    #[serde(default)]
    pub co_organizers: Vec<String>,
    /// Events: presenters, in order.
    #[serde(default)]
    pub presenters: Vec<String>,
    /// Sessions: the host's employee ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Seats available in total; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    pub seats_taken: u32,
    /// The synced calendar event's ID, when synced to a calendar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_event_id: Option<String>,
    /// Employee ID whose calendar holds the synced event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_owner: Option<String>,
}

impl Involvement {
    /// The person holds `role` here.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Where an event's or session's synced calendar event now lives
/// (`PUT /events/{eventId}/calendar-link`, `PUT /sessions/{sessionId}/calendar-link`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarLink {
    pub calendar_event_id: String,
    /// Employee ID of the calendar's owner.
    pub calendar_owner: String,
}

/// An automated assignment rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    /// The rule's display name (content, not personal data).
    #[serde(default)]
    pub name: String,
    /// The person in whose name the rule assigns content.
    pub assigner_employee_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Body of `POST /rules/{ruleId}/transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTransfer {
    pub new_assigner_employee_id: String,
}

/// A group a person belongs to. `id` is the path key (`/groups/{group}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub member_count: u32,
}

/// State of an assignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AssignmentStatus {
    /// Assigned and not completed: shows in the person's queue and as pending.
    #[default]
    Outstanding,
    /// Completed: part of the engagement history, never removed by deprovisioning.
    Completed,
}

impl AssignmentStatus {
    /// The query-parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStatus::Outstanding => "outstanding",
            AssignmentStatus::Completed => "completed",
        }
    }
}

/// A piece of content assigned to a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub employee_id: String,
    pub content_id: String,
    #[serde(default)]
    pub content_title: String,
    #[serde(default)]
    pub status: AssignmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The automated rule that made the assignment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

/// Kind of engagement record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EngagementKind {
    Completion,
    Attendance,
    Score,
}

/// A historical engagement record (completion, attendance, assessment score). Kept
/// through anonymization and purge, reachable by employee ID; removed only by the
/// tenant's full deletion. Carries no personal data besides the employee ID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngagementRecord {
    pub id: String,
    pub employee_id: String,
    pub kind: EngagementKind,
    /// The course, event or assessment the record is about.
    pub item_id: String,
    #[serde(default)]
    pub item_title: String,
    pub occurred_at: DateTime<Utc>,
    /// Assessment score in [0, 1] (scores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// The envelope of every list response: `{"items": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// An RFC 7807 problem document (`application/problem+json`). `title` and `detail`
/// never contain names or email addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub type_: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn about_blank() -> String {
    "about:blank".into()
}
