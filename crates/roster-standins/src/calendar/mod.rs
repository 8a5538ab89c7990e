//! Calendar stand-ins: in-process servers that implement the parts of Google
//! Calendar API v3 ([`google::GoogleCalendarStandin`]) and Microsoft Graph calendars
//! ([`graph::GraphCalendarStandin`]) that roster's connectors use, on the real routes
//! and JSON shapes, with in-memory calendars per owner email.
//!
//! Test and demo equipment: roster never talks to them in production.
//!
//! Both share what is here:
//! - the event model ([`StandinEvent`]: organizer, attendees, times in a zone,
//!   recurrence expanded into instances, modified or cancelled occurrences);
//! - seeding from Rust or from YAML ([`CalendarSeed`]; see
//!   `examples/standins/calendar-seed.yaml`);
//! - fault injection per route ([`Fault`]: latency, 5xx, 429 with `Retry-After`,
//!   Google's 403 usage limit, any refusal with a reason code), set from Rust through
//!   [`StandinControl`];
//! - what the real front ends refuse before a request reaches the API: a POST, PUT or
//!   PATCH without `Content-Length` (or chunked encoding) gets 411 Length Required;
//! - tokens: each stand-in has a token endpoint that checks credentials as the real
//!   one does (Google: a service account's RS256-signed JWT; Microsoft: a client
//!   secret or a certificate-signed client assertion) and issues tokens that expire;
//!   the calendar routes accept only those, and only for what they were issued for
//!   (Google: the impersonated user's calendar; Graph: the mailboxes the app's access
//!   policy allows). The stand-ins' clock can be moved forward
//!   ([`StandinControl::advance_clock`]) to expire tokens;
//! - the call log ([`CallRecord`]: method, route template, owner, event id,
//!   idempotency key / `transactionId`, status, applied or replayed), the attendee
//!   notifications the services would send, and a duplicates report that makes an
//!   event moved or created twice visible.
//!
//! Each server binds `127.0.0.1:0` by default and reports its base URL, which is the
//! only thing a connector needs to be pointed at it.
//!
//! Deliberate simplifications (documented per server): recurrence supports daily,
//! weekly (with days) and monthly-by-date patterns; time zones are `UTC` or IANA
//! names; tokens are opaque strings, not JWTs.

pub mod google;
pub mod graph;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Utc, Weekday,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use google::GoogleCalendarStandin;
pub use graph::GraphCalendarStandin;

/// How many occurrences a series expands to at most (an open-ended series is also
/// cut three years after its start).
const MAX_OCCURRENCES: usize = 500;

// ---------------------------------------------------------------------------------
// Event model

/// A point in time as calendars keep it: a wall-clock time in a zone, or a date for
/// all-day events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum When {
    /// `local` wall-clock time in `zone` (`UTC` or an IANA name).
    Timed { local: NaiveDateTime, zone: String },
    /// An all-day date (floating: no zone).
    AllDay(NaiveDate),
}

impl When {
    /// A UTC instant.
    pub fn utc(at: DateTime<Utc>) -> When {
        When::Timed {
            local: at.naive_utc(),
            zone: "UTC".into(),
        }
    }

    /// A wall-clock time in `zone` (`UTC` or an IANA name such as `Europe/Berlin`).
    pub fn local(local: NaiveDateTime, zone: &str) -> Result<When, SeedError> {
        parse_zone(zone).ok_or_else(|| SeedError::invalid("unknown time zone", zone))?;
        Ok(When::Timed {
            local,
            zone: zone.to_string(),
        })
    }

    /// An all-day date.
    pub fn date(date: NaiveDate) -> When {
        When::AllDay(date)
    }

    /// The instant (all-day dates count from midnight UTC).
    pub fn instant(&self) -> DateTime<Utc> {
        match self {
            When::Timed { local, zone } => resolve_local(*local, zone),
            When::AllDay(date) => date.and_time(NaiveTime::MIN).and_utc(),
        }
    }

    /// The zone of a timed value (`UTC` for all-day dates).
    pub fn zone(&self) -> &str {
        match self {
            When::Timed { zone, .. } => zone,
            When::AllDay(_) => "UTC",
        }
    }

    pub fn is_all_day(&self) -> bool {
        matches!(self, When::AllDay(_))
    }

    /// The wall-clock time of this instant in `zone` (midnight for all-day dates).
    pub(crate) fn local_in(&self, zone: &str) -> NaiveDateTime {
        match self {
            When::AllDay(date) => date.and_time(NaiveTime::MIN),
            When::Timed { local, zone: own } if own == zone => *local,
            When::Timed { .. } => match parse_zone(zone) {
                Some(tz) => self.instant().with_timezone(&tz).naive_local(),
                None => self.instant().naive_utc(),
            },
        }
    }

    fn date_part(&self) -> NaiveDate {
        match self {
            When::Timed { local, .. } => local.date(),
            When::AllDay(date) => *date,
        }
    }

    fn with_date(&self, date: NaiveDate) -> When {
        match self {
            When::Timed { local, zone } => When::Timed {
                local: date.and_time(local.time()),
                zone: zone.clone(),
            },
            When::AllDay(_) => When::AllDay(date),
        }
    }

    /// The same kind of value `minutes` later (wall clock for timed values).
    pub fn plus_minutes(&self, minutes: i64) -> When {
        self.plus(TimeDelta::minutes(minutes))
    }

    fn plus(&self, delta: TimeDelta) -> When {
        match self {
            When::Timed { local, zone } => When::Timed {
                local: *local + delta,
                zone: zone.clone(),
            },
            When::AllDay(date) => When::AllDay(*date + delta),
        }
    }

    fn minus(&self, other: &When) -> TimeDelta {
        match (self, other) {
            (When::Timed { local: a, .. }, When::Timed { local: b, .. }) => *a - *b,
            (When::AllDay(a), When::AllDay(b)) => *a - *b,
            _ => self.instant() - other.instant(),
        }
    }
}

pub(crate) fn parse_zone(zone: &str) -> Option<chrono_tz::Tz> {
    zone.parse::<chrono_tz::Tz>().ok()
}

fn resolve_local(local: NaiveDateTime, zone: &str) -> DateTime<Utc> {
    let Some(tz) = parse_zone(zone) else {
        return local.and_utc();
    };
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            // In a spring-forward gap: the wall clock jumps, so take an hour later.
            tz.from_local_datetime(&(local + TimeDelta::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| local.and_utc())
}

/// How a series repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Frequency {
    Daily,
    Weekly,
    /// On the start's day of the month.
    Monthly,
}

/// A recurrence rule (the subset both services' stand-ins expand).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Recurrence {
    pub frequency: Frequency,
    /// Every `interval` days, weeks or months (at least 1).
    pub interval: u32,
    /// Number of occurrences, if bounded by count.
    pub count: Option<u32>,
    /// Last date, inclusive, if bounded by date.
    pub until: Option<NaiveDate>,
    /// Weekly only: the days (empty means the start's weekday).
    pub days_of_week: Vec<Weekday>,
}

impl Recurrence {
    /// Weekly on the start's weekday, `count` times.
    pub fn weekly(count: u32) -> Recurrence {
        Recurrence {
            frequency: Frequency::Weekly,
            interval: 1,
            count: Some(count),
            until: None,
            days_of_week: Vec::new(),
        }
    }

    /// Daily, `count` times.
    pub fn daily(count: u32) -> Recurrence {
        Recurrence {
            frequency: Frequency::Daily,
            interval: 1,
            count: Some(count),
            until: None,
            days_of_week: Vec::new(),
        }
    }

    /// The weekdays a weekly series falls on, Monday first.
    pub(crate) fn weekly_days(&self, start: NaiveDate) -> Vec<Weekday> {
        let mut days = if self.days_of_week.is_empty() {
            vec![start.weekday()]
        } else {
            self.days_of_week.clone()
        };
        days.sort_by_key(|d| d.num_days_from_monday());
        days.dedup();
        days
    }

    /// The original start of every occurrence of a series starting at `start`.
    pub(crate) fn occurrence_starts(&self, start: &When) -> Vec<When> {
        let first = start.date_part();
        let horizon = first + Days::new(3 * 366);
        let last = self.until.map_or(horizon, |u| u.min(horizon));
        let limit = self
            .count
            .map_or(MAX_OCCURRENCES, |c| (c as usize).min(MAX_OCCURRENCES));
        let interval = self.interval.max(1);
        let mut dates = Vec::new();
        let push = |date: NaiveDate, dates: &mut Vec<NaiveDate>| -> bool {
            if date > last || dates.len() >= limit {
                return false;
            }
            if date >= first {
                dates.push(date);
            }
            true
        };
        match self.frequency {
            Frequency::Daily => {
                let mut k = 0u64;
                while push(first + Days::new(k * u64::from(interval)), &mut dates) {
                    k += 1;
                }
            }
            Frequency::Weekly => {
                let days = self.weekly_days(first);
                let week0 = first - Days::new(u64::from(first.weekday().num_days_from_monday()));
                let mut k = 0u64;
                'weeks: loop {
                    let week = week0 + Days::new(7 * k * u64::from(interval));
                    for day in &days {
                        let date = week + Days::new(u64::from(day.num_days_from_monday()));
                        if !push(date, &mut dates) {
                            break 'weeks;
                        }
                    }
                    k += 1;
                }
            }
            Frequency::Monthly => {
                let mut k = 0u32;
                while let Some(month) = first.checked_add_months(Months::new(k * interval)) {
                    if month > last {
                        break;
                    }
                    // A day that does not exist in a month (the 31st) is skipped.
                    if let Some(date) = month.with_day(first.day())
                        && !push(date, &mut dates)
                    {
                        break;
                    }
                    k += 1;
                }
            }
        }
        dates.into_iter().map(|d| start.with_date(d)).collect()
    }
}

/// A change to one occurrence of a series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exception {
    /// The occurrence's start in the series' pattern (identifies it).
    pub original_start: When,
    /// The occurrence was cancelled.
    pub cancelled: bool,
    /// Moved to another time (`None`: unchanged).
    pub start: Option<When>,
    pub end: Option<When>,
    /// Retitled (`None`: the series' title).
    pub summary: Option<String>,
    /// Its own attendee list (`None`: the series').
    pub attendees: Option<Vec<StandinAttendee>>,
    /// Its own location (`None`: the series').
    pub location: Option<String>,
}

impl Exception {
    /// The occurrence that starts at `original_start`, cancelled.
    pub fn cancelled(original_start: When) -> Exception {
        Exception {
            original_start,
            cancelled: true,
            ..Exception::default()
        }
    }

    /// The occurrence that starts at `original_start`, unchanged so far.
    pub fn of(original_start: When) -> Exception {
        Exception {
            original_start,
            ..Exception::default()
        }
    }
}

impl Default for When {
    fn default() -> Self {
        When::AllDay(NaiveDate::default())
    }
}

/// An attendee's answer to the invitation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    #[default]
    NeedsAction,
    Accepted,
    Declined,
    Tentative,
}

/// One attendee.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StandinAttendee {
    pub email: String,
    pub optional: bool,
    /// A room or equipment.
    pub resource: bool,
    pub response: Response,
}

impl StandinAttendee {
    pub fn new(email: impl Into<String>) -> StandinAttendee {
        StandinAttendee {
            email: email.into(),
            optional: false,
            resource: false,
            response: Response::NeedsAction,
        }
    }
}

/// An event as a stand-in stores it. The organizer's calendar holds it; every
/// attendee sees it in theirs as a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandinEvent {
    /// Assigned by the stand-in when empty.
    pub id: String,
    pub organizer: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: When,
    pub end: When,
    pub recurrence: Option<Recurrence>,
    pub exceptions: Vec<Exception>,
    pub attendees: Vec<StandinAttendee>,
    /// Google's `eventType`: `default`, `focusTime`, `outOfOffice`, `workingLocation`…
    pub event_type: String,
    /// The join link of the online (Teams) meeting, if it is one. Graph writes the
    /// join information into the body as well.
    pub online_meeting: Option<String>,
}

impl StandinEvent {
    /// A one-off event organized by `organizer`.
    pub fn new(organizer: impl Into<String>, start: When, end: When) -> StandinEvent {
        StandinEvent {
            id: String::new(),
            organizer: organizer.into(),
            summary: None,
            description: None,
            location: None,
            start,
            end,
            recurrence: None,
            exceptions: Vec::new(),
            attendees: Vec::new(),
            event_type: "default".into(),
            online_meeting: None,
        }
    }

    /// A one-off event between two UTC instants.
    pub fn at(organizer: impl Into<String>, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        StandinEvent::new(organizer, When::utc(start), When::utc(end))
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn with_attendee(mut self, email: impl Into<String>) -> Self {
        self.attendees.push(StandinAttendee::new(email));
        self
    }

    pub fn with_recurrence(mut self, recurrence: Recurrence) -> Self {
        self.recurrence = Some(recurrence);
        self
    }

    pub fn with_exception(mut self, exception: Exception) -> Self {
        self.exceptions.push(exception);
        self
    }

    pub fn with_event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = event_type.into();
        self
    }

    /// Makes it an online (Teams) meeting with a join link of its own.
    pub fn with_online_meeting(mut self) -> Self {
        self.online_meeting = Some(teams_join_url());
        self
    }

    pub fn is_recurring(&self) -> bool {
        self.recurrence.is_some()
    }

    /// Whether `email` organizes the event.
    pub fn organized_by(&self, email: &str) -> bool {
        self.organizer.eq_ignore_ascii_case(email)
    }

    /// Whether `email` is among the attendees.
    pub fn has_attendee(&self, email: &str) -> bool {
        self.attendees
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// The attendees' addresses, lower-cased and sorted (for comparisons).
    pub fn attendee_emails(&self) -> Vec<String> {
        let mut emails: Vec<String> = self
            .attendees
            .iter()
            .map(|a| a.email.to_ascii_lowercase())
            .collect();
        emails.sort();
        emails
    }

    /// Every occurrence (a one-off event has one), exceptions applied, cancelled
    /// occurrences included and flagged.
    pub fn instances(&self) -> Vec<Instance> {
        let Some(recurrence) = &self.recurrence else {
            return vec![Instance {
                original_start: self.start.clone(),
                start: self.start.clone(),
                end: self.end.clone(),
                cancelled: false,
                modified: false,
                summary: self.summary.clone(),
                attendees: self.attendees.clone(),
                location: self.location.clone(),
            }];
        };
        let duration = self.end.minus(&self.start);
        recurrence
            .occurrence_starts(&self.start)
            .into_iter()
            .map(|original| {
                let exception = self
                    .exceptions
                    .iter()
                    .find(|e| e.original_start == original);
                let start = exception
                    .and_then(|e| e.start.clone())
                    .unwrap_or_else(|| original.clone());
                let end = exception
                    .and_then(|e| e.end.clone())
                    .unwrap_or_else(|| start.plus(duration));
                Instance {
                    start,
                    end,
                    cancelled: exception.is_some_and(|e| e.cancelled),
                    modified: exception.is_some(),
                    summary: exception
                        .and_then(|e| e.summary.clone())
                        .or_else(|| self.summary.clone()),
                    attendees: exception
                        .and_then(|e| e.attendees.clone())
                        .unwrap_or_else(|| self.attendees.clone()),
                    location: exception
                        .and_then(|e| e.location.clone())
                        .or_else(|| self.location.clone()),
                    original_start: original,
                }
            })
            .collect()
    }

    /// A digest of what makes two events "the same meeting" (for the duplicates report).
    pub(crate) fn fingerprint(&self) -> String {
        let attendees = self.attendee_emails().join(",");
        let start = self.start.instant().to_rfc3339();
        let end = self.end.instant().to_rfc3339();
        let recurrence = format!("{:?}", self.recurrence);
        roster_connectors::calendar::stable_digest(&[
            &self.organizer.to_ascii_lowercase(),
            self.summary.as_deref().unwrap_or(""),
            &start,
            &end,
            &attendees,
            &recurrence,
        ])
    }
}

/// One occurrence of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub original_start: When,
    pub start: When,
    pub end: When,
    pub cancelled: bool,
    /// An exception applies to it.
    pub modified: bool,
    pub summary: Option<String>,
    /// Its attendees (the series', unless the exception has its own).
    pub attendees: Vec<StandinAttendee>,
    pub location: Option<String>,
}

/// A fresh Teams join link (the shape Teams uses; the meeting id is random).
pub(crate) fn teams_join_url() -> String {
    format!(
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_{}%40thread.v2/0?context=%7b%22Tid%22%3a%22roster-standin%22%7d",
        random_id(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            48
        )
    )
}

// ---------------------------------------------------------------------------------
// Seeds

/// Why a seed (or an event inserted from Rust) was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read the seed file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the seed is not valid YAML for a calendar seed: {0}")]
    Yaml(String),
    #[error("invalid seed: {what} ({detail})")]
    Invalid { what: &'static str, detail: String },
}

impl SeedError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> SeedError {
        SeedError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Calendars to start a stand-in with: the directory's users (who have calendars)
/// and the events. Organizers have calendars implicitly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarSeed {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub events: Vec<SeedEvent>,
}

/// An event in a seed file. Times are `YYYY-MM-DDTHH:MM:SS` in `timeZone` (default
/// `UTC`; an RFC 3339 value with an offset is converted), or `YYYY-MM-DD` for all-day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub organizer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub start: String,
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<SeedRecurrence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<SeedException>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<SeedAttendee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// An online (Teams) meeting: the stand-in gives it a join link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub online_meeting: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRecurrence {
    pub frequency: Frequency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
    /// e.g. `[monday, wednesday]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_week: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedException {
    /// The occurrence's start in the series' pattern, in the event's zone.
    pub original_start: String,
    #[serde(default)]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The occurrence's own attendees (default: the series').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<SeedAttendee>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAttendee {
    pub email: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub resource: bool,
    #[serde(default)]
    pub response: Response,
}

impl SeedAttendee {
    fn to_attendee(&self) -> StandinAttendee {
        StandinAttendee {
            email: self.email.clone(),
            optional: self.optional,
            resource: self.resource,
            response: self.response,
        }
    }
}

impl CalendarSeed {
    pub fn from_yaml_str(yaml: &str) -> Result<CalendarSeed, SeedError> {
        serde_yaml_ng::from_str(yaml).map_err(|e| SeedError::Yaml(e.to_string()))
    }

    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<CalendarSeed, SeedError> {
        CalendarSeed::from_yaml_str(&std::fs::read_to_string(path)?)
    }

    /// The seed's events in the stand-ins' model, validated.
    pub fn events(&self) -> Result<Vec<StandinEvent>, SeedError> {
        self.events.iter().map(SeedEvent::to_event).collect()
    }
}

fn parse_when(value: &str, zone: &str) -> Result<When, SeedError> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(When::AllDay(date));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        let at = at.with_timezone(&Utc);
        let tz = parse_zone(zone).ok_or_else(|| SeedError::invalid("unknown time zone", zone))?;
        return When::local(at.with_timezone(&tz).naive_local(), zone);
    }
    let local = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M"))
        .map_err(|_| SeedError::invalid("not a date or date-time", value))?;
    When::local(local, zone)
}

fn parse_weekday(value: &str) -> Result<Weekday, SeedError> {
    value
        .parse::<Weekday>()
        .map_err(|_| SeedError::invalid("not a weekday", value))
}

impl SeedEvent {
    pub fn to_event(&self) -> Result<StandinEvent, SeedError> {
        let zone = self.time_zone.as_deref().unwrap_or("UTC");
        let start = parse_when(&self.start, zone)?;
        let end = parse_when(&self.end, zone)?;
        let recurrence = self
            .recurrence
            .as_ref()
            .map(|r| -> Result<Recurrence, SeedError> {
                Ok(Recurrence {
                    frequency: r.frequency,
                    interval: r.interval.unwrap_or(1),
                    count: r.count,
                    until: r.until,
                    days_of_week: r
                        .days_of_week
                        .iter()
                        .map(|d| parse_weekday(d))
                        .collect::<Result<_, _>>()?,
                })
            })
            .transpose()?;
        let exceptions = self
            .exceptions
            .iter()
            .map(|e| -> Result<Exception, SeedError> {
                Ok(Exception {
                    original_start: parse_when(&e.original_start, zone)?,
                    cancelled: e.cancelled,
                    start: e
                        .start
                        .as_deref()
                        .map(|s| parse_when(s, zone))
                        .transpose()?,
                    end: e.end.as_deref().map(|s| parse_when(s, zone)).transpose()?,
                    summary: e.summary.clone(),
                    attendees: e
                        .attendees
                        .as_ref()
                        .map(|list| list.iter().map(SeedAttendee::to_attendee).collect()),
                    location: e.location.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        let event = StandinEvent {
            id: self.id.clone().unwrap_or_default(),
            organizer: self.organizer.clone(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            location: self.location.clone(),
            start,
            end,
            recurrence,
            exceptions,
            attendees: self
                .attendees
                .iter()
                .map(SeedAttendee::to_attendee)
                .collect(),
            event_type: self.event_type.clone().unwrap_or_else(|| "default".into()),
            online_meeting: self.online_meeting.then(teams_join_url),
        };
        validate_event(&event)?;
        Ok(event)
    }
}

/// Checks an event before a stand-in stores it.
pub(crate) fn validate_event(event: &StandinEvent) -> Result<(), SeedError> {
    if !looks_like_email(&event.organizer) {
        return Err(SeedError::invalid("organizer is not an email", ""));
    }
    if event.attendees.iter().any(|a| !looks_like_email(&a.email)) {
        return Err(SeedError::invalid("attendee is not an email", ""));
    }
    if event.start.is_all_day() != event.end.is_all_day() {
        return Err(SeedError::invalid(
            "start and end must both be dates or both date-times",
            "",
        ));
    }
    if event.end.instant() < event.start.instant() {
        return Err(SeedError::invalid("end is before start", ""));
    }
    if event.id.contains(['_', '/', '?', '#']) {
        return Err(SeedError::invalid(
            "event ids must not contain '_', '/', '?' or '#'",
            event.id.clone(),
        ));
    }
    if let Some(recurrence) = &event.recurrence
        && recurrence.interval == 0
    {
        return Err(SeedError::invalid(
            "recurrence interval must be at least 1",
            "",
        ));
    }
    Ok(())
}

pub(crate) fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !value.contains(char::is_whitespace)
}

/// A random id from `alphabet`.
pub(crate) fn random_id(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

// ---------------------------------------------------------------------------------
// Faults

/// What an injected failure answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A server error with this status (500, 502, 503, 504…).
    Status(u16),
    /// 429 with `Retry-After` (whole seconds) when given.
    RateLimited { retry_after: Option<Duration> },
    /// A usage limit as each service reports it: Google's 403
    /// `userRateLimitExceeded`, Graph's 429 `ApplicationThrottled`.
    UsageLimit,
    /// A refusal with this status and the service's reason code (Google's
    /// `errors[].reason`, Graph's `error.code`), e.g. 403 `forbiddenForNonOrganizer`.
    Refused { status: u16, reason: &'static str },
}

/// Fault injection for one route.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Added before the request is handled (also before an injected failure).
    pub latency: Duration,
    pub failure: Option<Failure>,
    /// Chance that a request fails with `failure` (0 to 1).
    pub probability: f64,
    /// How many more failures to inject (`None`: no limit).
    pub remaining: Option<u32>,
    /// Handle the request first, then answer with the failure: the change takes
    /// effect but the caller never learns it (a lost response, a gateway timeout).
    pub after_apply: bool,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            latency: Duration::ZERO,
            failure: None,
            probability: 1.0,
            remaining: None,
            after_apply: false,
        }
    }
}

impl Fault {
    /// Only added latency.
    pub fn latency(latency: Duration) -> Fault {
        Fault {
            latency,
            ..Fault::default()
        }
    }

    /// Every request fails with `status` (see [`Fault::times`], [`Fault::with_probability`]).
    pub fn status(status: u16) -> Fault {
        Fault {
            failure: Some(Failure::Status(status)),
            ..Fault::default()
        }
    }

    /// Every request gets 429, with `Retry-After` if given.
    pub fn rate_limited(retry_after: Option<Duration>) -> Fault {
        Fault {
            failure: Some(Failure::RateLimited { retry_after }),
            ..Fault::default()
        }
    }

    /// Every request is refused with `status` and the reason code `reason`.
    pub fn refused(status: u16, reason: &'static str) -> Fault {
        Fault {
            failure: Some(Failure::Refused { status, reason }),
            ..Fault::default()
        }
    }

    /// Every request hits the service's usage limit.
    pub fn usage_limit() -> Fault {
        Fault {
            failure: Some(Failure::UsageLimit),
            ..Fault::default()
        }
    }

    /// Fails only the next `n` requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Fails each request with probability `p` (an error rate).
    pub fn with_probability(mut self, p: f64) -> Fault {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Fault {
        self.latency = latency;
        self
    }

    /// Applies the request before failing it (see [`Fault::after_apply`]).
    pub fn after_apply(mut self) -> Fault {
        self.after_apply = true;
        self
    }
}

/// Route key that applies to every route without a fault of its own.
pub const ANY_ROUTE: &str = "*";

// ---------------------------------------------------------------------------------
// Call log, notifications, duplicates

/// What a request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// A read.
    Read,
    /// A change was made.
    Applied,
    /// A repeated change was answered with the earlier result (Graph `transactionId`).
    Replayed,
    /// Refused by the service's rules (4xx).
    Refused,
    /// Failed by fault injection before it was handled. (An
    /// [`after_apply`](Fault::after_apply) fault keeps the disposition of what the
    /// request did, with the injected status.)
    Injected,
}

/// One request a stand-in received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub seq: u64,
    pub method: &'static str,
    /// The route template, e.g. `POST /calendars/{calendarId}/events/{eventId}/move`.
    pub route: &'static str,
    /// The calendar or user in the path.
    pub owner: Option<String>,
    /// The event in the path, or the event a create made.
    pub event_id: Option<String>,
    /// Google move's `destination`.
    pub destination: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Graph's `transactionId` on a create.
    pub transaction_id: Option<String>,
    pub status: u16,
    pub disposition: Disposition,
}

/// What kind of message the service sent attendees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    Invitation,
    /// The event changed (e.g. a new organizer after a Google move).
    Update,
    Cancellation,
}

/// A message the real service would have sent to attendees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub event_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub comment: Option<String>,
}

/// One thing that happened more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// e.g. `event moved more than once`, `same meeting created more than once`.
    pub what: &'static str,
    /// The event id, idempotency key or content digest concerned.
    pub key: String,
    pub times: usize,
}

/// Effects applied more than once; empty when every transfer took effect once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DuplicatesReport {
    pub duplicates: Vec<Duplicate>,
}

impl DuplicatesReport {
    pub fn is_empty(&self) -> bool {
        self.duplicates.is_empty()
    }

    pub(crate) fn count(&mut self, what: &'static str, keys: impl IntoIterator<Item = String>) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
        self.duplicates.extend(
            counts
                .into_iter()
                .filter(|(_, times)| *times > 1)
                .map(|(key, times)| Duplicate { what, key, times }),
        );
    }
}

/// The controls every calendar stand-in shares: clock, faults, call log,
/// notifications. Reach it with `standin.control()`.
#[derive(Debug, Default)]
pub struct StandinControl {
    /// How far the stand-in's clock runs ahead of the wall clock.
    clock_offset: Mutex<TimeDelta>,
    faults: Mutex<HashMap<String, Fault>>,
    calls: Mutex<Vec<CallRecord>>,
    notifications: Mutex<Vec<Notification>>,
    seq: AtomicU64,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StandinControl {
    /// Moves the stand-in's clock forward (tokens it issued expire by it).
    pub fn advance_clock(&self, by: Duration) {
        let mut offset = lock(&self.clock_offset);
        *offset += TimeDelta::from_std(by).unwrap_or_default();
    }

    /// The stand-in's time: the wall clock plus [`StandinControl::advance_clock`].
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.clock_offset)
    }

    /// Injects `fault` on `route` (a route template of the stand-in, or [`ANY_ROUTE`]).
    pub fn set_fault(&self, route: &str, fault: Fault) {
        lock(&self.faults).insert(route.to_string(), fault);
    }

    pub fn clear_fault(&self, route: &str) {
        lock(&self.faults).remove(route);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.calls).clone()
    }

    /// Requests to one route template.
    pub fn calls_to(&self, route: &str) -> Vec<CallRecord> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.route == route)
            .cloned()
            .collect()
    }

    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Messages sent to attendees so far.
    pub fn notifications(&self) -> Vec<Notification> {
        lock(&self.notifications).clone()
    }

    pub(crate) fn notify(&self, notification: Notification) {
        if !notification.recipients.is_empty() {
            lock(&self.notifications).push(notification);
        }
    }

    /// The latency to add and the failure to inject for one request to `route`.
    pub(crate) fn decide(&self, route: &str) -> Decision {
        let mut faults = lock(&self.faults);
        let key = if faults.contains_key(route) {
            route
        } else {
            ANY_ROUTE
        };
        let mut decision = Decision::default();
        let Some(fault) = faults.get_mut(key) else {
            return decision;
        };
        decision.latency = fault.latency;
        let Some(failure) = fault.failure else {
            return decision;
        };
        if fault.remaining == Some(0) || !rand::rng().random_bool(fault.probability) {
            return decision;
        }
        if let Some(remaining) = &mut fault.remaining {
            *remaining -= 1;
        }
        decision.failure = Some(failure);
        decision.after_apply = fault.after_apply;
        decision
    }

    pub(crate) fn record(&self, call: Call, status: u16, disposition: Disposition) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        lock(&self.calls).push(CallRecord {
            seq,
            method: call.method,
            route: call.route,
            owner: call.owner,
            event_id: call.event_id,
            destination: call.destination,
            idempotency_key: call.idempotency_key,
            transaction_id: call.transaction_id,
            status,
            disposition,
        });
    }

    /// Applied changes repeated under the same idempotency key or `transactionId`
    /// on the same route.
    pub(crate) fn repeated_keys(&self, report: &mut DuplicatesReport) {
        let calls = self.calls();
        let applied = calls
            .iter()
            .filter(|c| c.disposition == Disposition::Applied);
        report.count(
            "change applied twice under one idempotency key",
            applied.clone().filter_map(|c| {
                c.idempotency_key
                    .as_ref()
                    .map(|k| format!("{} {}", c.route, k))
            }),
        );
        report.count(
            "event created twice under one transactionId",
            applied.filter_map(|c| c.transaction_id.clone()),
        );
    }
}

/// What fault injection does to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub failure: Option<Failure>,
    pub after_apply: bool,
}

/// A request being handled, before its outcome is known.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub method: &'static str,
    pub route: &'static str,
    pub owner: Option<String>,
    pub event_id: Option<String>,
    pub destination: Option<String>,
    pub idempotency_key: Option<String>,
    pub transaction_id: Option<String>,
}

impl Call {
    pub(crate) fn new(method: &'static str, route: &'static str, headers: &HeaderMap) -> Call {
        Call {
            method,
            route,
            owner: None,
            event_id: None,
            destination: None,
            idempotency_key: headers
                .get(roster_connectors::calendar::IDEMPOTENCY_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            transaction_id: None,
        }
    }

    pub(crate) fn owner(mut self, owner: &str) -> Call {
        self.owner = Some(owner.to_string());
        self
    }

    pub(crate) fn event(mut self, event_id: &str) -> Call {
        self.event_id = Some(event_id.to_string());
        self
    }
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether a request whose method carries a body says how long it is: the front ends
/// of both services refuse a POST, PUT or PATCH with neither `Content-Length` nor
/// `Transfer-Encoding` (411 Length Required), before any API logic.
pub(crate) fn announces_length(method: &str, headers: &HeaderMap) -> bool {
    !matches!(method, "POST" | "PUT" | "PATCH")
        || headers.contains_key(axum::http::header::CONTENT_LENGTH)
        || headers.contains_key(axum::http::header::TRANSFER_ENCODING)
}

/// A response that refuses a request (boxed: responses are large).
pub(crate) type Refusal = Box<axum::response::Response>;

/// How one stand-in answers what its front end and its token check refuse.
pub(crate) struct Gate<'a> {
    /// The 411 page of the service's front end.
    pub length_required: fn() -> axum::response::Response,
    /// The token check for this request: `Err` is the refusal to send.
    pub authorize: Box<dyn FnOnce() -> Result<(), Refusal> + Send + 'a>,
    /// The service's answer to an injected failure.
    pub failure: fn(Failure) -> axum::response::Response,
}

/// Refuses a request without a length (411), checks the token and applies the route's
/// fault. `Err` carries the response to send (already recorded in the call log);
/// `Ok(Some(failure))` is a failure to answer with once the request has been handled
/// ([`Fault::after_apply`]).
pub(crate) async fn admit(
    control: &StandinControl,
    call: &Call,
    headers: &HeaderMap,
    gate: Gate<'_>,
) -> Result<Option<Failure>, axum::response::Response> {
    let refused = if announces_length(call.method, headers) {
        (gate.authorize)().err().map(|r| *r)
    } else {
        Some((gate.length_required)())
    };
    if let Some(response) = refused {
        control.record(
            call.clone(),
            response.status().as_u16(),
            Disposition::Refused,
        );
        return Err(response);
    }
    let failure = gate.failure;
    let decision = control.decide(call.route);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.failure {
        Some(injected) if !decision.after_apply => {
            let response = failure(injected);
            control.record(
                call.clone(),
                response.status().as_u16(),
                Disposition::Injected,
            );
            Err(response)
        }
        deferred => Ok(deferred),
    }
}

/// Fills in what the services fill in: a weekly series without days falls on its
/// start's weekday.
pub(crate) fn normalize(mut event: StandinEvent) -> StandinEvent {
    if let Some(recurrence) = &mut event.recurrence
        && recurrence.frequency == Frequency::Weekly
        && recurrence.days_of_week.is_empty()
    {
        recurrence.days_of_week = vec![event.start.date_part().weekday()];
    }
    event
}

/// `Retry-After` in whole seconds (rounded up).
pub(crate) fn retry_after_secs(after: Duration) -> String {
    after.as_secs_f64().ceil().max(0.0).to_string()
}

// ---------------------------------------------------------------------------------
// Serving

/// A running server; stops when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves `router` on `listener` until dropped.
    pub(crate) fn spawn(listener: tokio::net::TcpListener, router: axum::Router) -> Running {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Running {
            shutdown: Some(tx),
            task,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

/// Binds `addr` (use port 0 for any free port).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// The default address: loopback, any free port.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekly_series_expands_on_its_days_and_count() {
        let start = When::local(
            d("2030-01-07").and_hms_opt(9, 0, 0).unwrap(),
            "Europe/Berlin",
        )
        .unwrap();
        let recurrence = Recurrence {
            days_of_week: vec![Weekday::Mon, Weekday::Wed],
            ..Recurrence::weekly(3)
        };
        let dates: Vec<NaiveDate> = recurrence
            .occurrence_starts(&start)
            .iter()
            .map(When::date_part)
            .collect();
        assert_eq!(dates, [d("2030-01-07"), d("2030-01-09"), d("2030-01-14")]);
    }

    #[test]
    fn series_keeps_wall_clock_time_across_dst() {
        let start = When::local(
            d("2030-03-25").and_hms_opt(9, 0, 0).unwrap(),
            "Europe/Berlin",
        )
        .unwrap();
        // Berlin switches to summer time on 2030-03-31: 09:00 is 08:00Z, then 07:00Z.
        let starts = Recurrence::weekly(2).occurrence_starts(&start);
        assert_eq!(starts[0].instant().format("%H").to_string(), "08");
        assert_eq!(starts[1].instant().format("%H").to_string(), "07");
        let start = When::local(
            d("2030-03-25").and_hms_opt(9, 0, 0).unwrap(),
            "America/New_York",
        )
        .unwrap();
        let starts = Recurrence::daily(2).occurrence_starts(&start);
        assert_eq!(
            starts[1].instant() - starts[0].instant(),
            TimeDelta::days(1)
        );
    }

    #[test]
    fn monthly_skips_missing_days_and_until_bounds() {
        let start = When::AllDay(d("2030-01-31"));
        let recurrence = Recurrence {
            frequency: Frequency::Monthly,
            interval: 1,
            count: None,
            until: Some(d("2030-05-31")),
            days_of_week: vec![],
        };
        let dates: Vec<NaiveDate> = recurrence
            .occurrence_starts(&start)
            .iter()
            .map(When::date_part)
            .collect();
        assert_eq!(dates, [d("2030-01-31"), d("2030-03-31"), d("2030-05-31")]);
    }

    #[test]
    fn faults_count_down() {
        let control = StandinControl::default();
        control.set_fault("r", Fault::status(503).times(1));
        assert_eq!(control.decide("r").failure, Some(Failure::Status(503)));
        assert_eq!(control.decide("r").failure, None);
        assert_eq!(control.decide("other").failure, None);
        control.set_fault(ANY_ROUTE, Fault::latency(Duration::from_millis(5)));
        assert_eq!(control.decide("other").latency, Duration::from_millis(5));
        control.set_fault("r", Fault::status(504).after_apply());
        assert!(control.decide("r").after_apply);
    }

    #[test]
    fn example_seed_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/standins/calendar-seed.yaml"
        );
        let seed = CalendarSeed::from_yaml_file(path).unwrap();
        let events = seed.events().unwrap();
        assert!(events.iter().any(StandinEvent::is_recurring));
        assert!(events.iter().all(|e| e.organizer.ends_with("@example.com")));
    }
}
