//! The stand-in's data, as seeded (YAML / JSON / Rust) and as exported.
//!
//! The seed types are also the stand-in's stored records, so [`LmsSeed`] doubles as a
//! full snapshot of the stand-in's state (see `LmsState::export`).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use roster_connectors::lms::{Assignment, EngagementRecord, Rule, User};

/// Everything a stand-in holds. Times (`startsAt`) are RFC 3339 or relative to the
/// moment of seeding: `+7d`, `+2h 30m`, `-1h` (humantime durations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LmsSeed {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub events: Vec<EventRecord>,
    #[serde(default)]
    pub sessions: Vec<SessionRecord>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub groups: Vec<GroupRecord>,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub engagement: Vec<EngagementRecord>,
    /// The tenant's configured location names. A profile's location that matches none
    /// is left blank, as the platform documents; empty accepts any location.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

/// An event: people by employee ID, seats taken = attendees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventRecord {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<String>,
    #[serde(default)]
    pub co_organizers: Vec<String>,
    #[serde(default)]
    pub presenters: Vec<String>,
    /// Total seats; `None` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub attendees: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_owner: Option<String>,
}

/// A session hosted by one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRecord {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub starts_at: DateTime<Utc>,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub attendees: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_owner: Option<String>,
}

/// A group and its members (employee IDs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRecord {
    /// The path key (`/groups/{group}`).
    pub id: String,
    /// Display name; defaults to the ID.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// A notification the platform sent (the stand-in records instead of sending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub employee_id: String,
    /// `sessionCancelled`.
    pub kind: String,
    pub session_id: String,
}

/// Why a seed was refused. Messages name records by ID and field, never by person.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read the seed file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the seed is not valid YAML/JSON: {0}")]
    Parse(String),
    #[error("invalid seed: {0}")]
    Invalid(String),
}

impl LmsSeed {
    /// Parses YAML (JSON is YAML too).
    pub fn from_yaml_str(text: &str) -> Result<Self, SeedError> {
        serde_yaml_ng::from_str(text).map_err(|err| SeedError::Parse(position_only(&err)))
    }

    /// Reads a `.yaml`, `.yml` or `.json` file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, SeedError> {
        Self::from_yaml_str(&std::fs::read_to_string(path)?)
    }

    /// Checks references and numbers: every person an event, session, rule, group,
    /// assignment or engagement record names is one of `users` (or already known, in
    /// `known`), IDs are unique, and no event or session is over capacity.
    pub fn validate(&self, known: &BTreeSet<String>) -> Result<(), SeedError> {
        let mut people: BTreeSet<&str> = known.iter().map(String::as_str).collect();
        unique("users", self.users.iter().map(|u| u.employee_id.as_str()))?;
        for user in &self.users {
            if !valid_employee_id(&user.employee_id) {
                return invalid("a user has an invalid employeeId".into());
            }
            people.insert(&user.employee_id);
        }
        let check = |what: &str, id: &str, person: &str| -> Result<(), SeedError> {
            if people.contains(person) {
                Ok(())
            } else {
                invalid(format!("{what} {id} refers to an unknown employee ID"))
            }
        };
        unique("events", self.events.iter().map(|e| e.id.as_str()))?;
        for event in &self.events {
            let everyone = event
                .organizer
                .iter()
                .chain(&event.co_organizers)
                .chain(&event.presenters)
                .chain(&event.attendees)
                .chain(&event.calendar_owner);
            for person in everyone {
                check("event", &event.id, person)?;
            }
            seats("event", &event.id, event.capacity, &event.attendees)?;
        }
        unique("sessions", self.sessions.iter().map(|s| s.id.as_str()))?;
        for session in &self.sessions {
            let everyone = std::iter::once(&session.host)
                .chain(&session.attendees)
                .chain(&session.calendar_owner);
            for person in everyone {
                check("session", &session.id, person)?;
            }
            seats("session", &session.id, session.capacity, &session.attendees)?;
        }
        unique("rules", self.rules.iter().map(|r| r.id.as_str()))?;
        for rule in &self.rules {
            check("rule", &rule.id, &rule.assigner_employee_id)?;
        }
        unique("groups", self.groups.iter().map(|g| g.id.as_str()))?;
        for group in &self.groups {
            if group.id.is_empty() {
                return invalid("a group has an empty id".into());
            }
            for person in &group.members {
                check("group", &group.id, person)?;
            }
        }
        unique(
            "assignments",
            self.assignments.iter().map(|a| a.id.as_str()),
        )?;
        for assignment in &self.assignments {
            check("assignment", &assignment.id, &assignment.employee_id)?;
        }
        unique("engagement", self.engagement.iter().map(|r| r.id.as_str()))?;
        for record in &self.engagement {
            check("engagement record", &record.id, &record.employee_id)?;
        }
        Ok(())
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`: the mapping key's shape.
pub(crate) fn valid_employee_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn invalid(message: String) -> Result<(), SeedError> {
    Err(SeedError::Invalid(message))
}

fn unique<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), SeedError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return invalid(format!("duplicate id {id} in {what}"));
        }
    }
    Ok(())
}

fn seats(
    what: &str,
    id: &str,
    capacity: Option<u32>,
    attendees: &[String],
) -> Result<(), SeedError> {
    let distinct: BTreeSet<&String> = attendees.iter().collect();
    if distinct.len() != attendees.len() {
        return invalid(format!("{what} {id} lists an attendee twice"));
    }
    match capacity {
        Some(capacity) if attendees.len() > capacity as usize => invalid(format!(
            "{what} {id} has {} attendees for {capacity} seats",
            attendees.len()
        )),
        _ => Ok(()),
    }
}

/// YAML errors can quote the offending value (possibly personal data): keep the position.
fn position_only(err: &serde_yaml_ng::Error) -> String {
    match err.location() {
        Some(at) => format!("error at line {} column {}", at.line(), at.column()),
        None => "error in the document".into(),
    }
}

fn ser_time<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// RFC 3339, or `+<duration>` / `-<duration>` from now.
fn de_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_time(&text, Utc::now()).map_err(serde::de::Error::custom)
}

pub(crate) fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let relative = |rest: &str| {
        humantime::parse_duration(rest.trim())
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .ok_or_else(|| "a relative time must look like +7d or -2h 30m".to_string())
    };
    if let Some(rest) = text.strip_prefix('+') {
        return Ok(now + relative(rest)?);
    }
    if let Some(rest) = text.strip_prefix('-') {
        return Ok(now - relative(rest)?);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| "a time must be RFC 3339 (2030-01-15T10:00:00Z) or relative (+7d)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_relative() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("+7d", now).unwrap(),
            now + chrono::Duration::days(7)
        );
        assert_eq!(
            parse_time("-1h 30m", now).unwrap(),
            now - chrono::Duration::minutes(90)
        );
        assert_eq!(
            parse_time("2030-01-15T10:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2030-01-15T10:00:00+00:00"
        );
        assert!(parse_time("next week", now).is_err());
    }

    #[test]
    fn employee_ids() {
        assert!(valid_employee_id("0042"));
        assert!(valid_employee_id("E-1.a_b"));
        assert!(!valid_employee_id("-E1"));
        assert!(!valid_employee_id("a@b"));
        assert!(!valid_employee_id(""));
    }
}
