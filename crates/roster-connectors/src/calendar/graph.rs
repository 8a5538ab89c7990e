//! Microsoft Graph calendar client (the real request and response shapes).
//!
//! - List: `GET /users/{id}/events?$filter=end/dateTime ge '…' or type eq 'seriesMaster'
//!   &$top=…&$select=…` with `Prefer: outlook.timezone="UTC"`, following
//!   `@odata.nextLink`. `/events` returns single instances and series masters (never
//!   occurrences); the filter is on the end, like Google's `timeMin`, and lets every
//!   series master through because a series that began in the past may still have
//!   occurrences ahead. A series is kept only if it has one: an `endDate` range must
//!   not be over, and a `numbered` one is asked for an instance after `time_min`
//!   (`GET /users/{id}/events/{id}/instances`). Items are kept only if `isOrganizer`
//!   and not `isCancelled`.
//! - Transfer of a single event: Graph cannot change `organizer`. The event is read in
//!   full (in its original time zone), re-created with `POST /users/{newOwner}/events`
//!   (same subject, body, start/end, location and attendees, less the two owners)
//!   carrying a `transactionId` derived from the idempotency key and the original's
//!   id, then the original is cancelled with `POST /users/{oldOwner}/events/{id}/cancel`
//!   (attendees get the comment). Graph answers a create that repeats a
//!   `transactionId` with the event it already made, so a retry after a lost response
//!   or a failed cancel never duplicates the copy; a cancel of an event already gone
//!   counts as done.
//! - Transfer of a series, from `now` on: the past stays as it happened. The first
//!   occurrence that has not started yet is the split. The copy is a series with the
//!   same pattern whose range starts on the split's date (a `numbered` range becomes an
//!   `endDate` one ending on the last occurrence); then every occurrence of the copy is
//!   matched, by its original start, with the original's
//!   (`GET …/events/{id}/instances`, which lists occurrences and exceptions but not
//!   cancelled occurrences): an exception is re-applied with
//!   `PATCH /users/{newOwner}/events/{occurrenceId}` (subject, start, end, location,
//!   attendees), an occurrence the original does not have any more was cancelled and
//!   is cancelled in the copy too. Last, the original series ends the day before the
//!   split (`PATCH` of its `recurrence.range`), marked with an extended property that
//!   names the copy, so a retry after that step finds the copy again; a series that has
//!   not begun is cancelled as a whole instead. The split is read back from the copy
//!   Graph returns, so a retry made after an occurrence went by still completes the
//!   transfer it began.
//! - Online meetings: a meeting with `isOnlineMeeting` is re-created with
//!   `isOnlineMeeting: true` and its provider, so the new organizer gets a meeting of
//!   their own; the original's join information is cut from the copied body and
//!   `onlineMeeting` is never sent (the old join link would outlive its organizer).
//! - A mailbox the service will not serve (`ErrorInvalidUser`,
//!   `MailboxNotEnabledForRESTAPI`) is [`CalendarError::MailboxUnavailable`]: nobody
//!   could take those events over, which is not a success.
//! - Only series masters and single instances are transferred; occurrences and
//!   exceptions travel with their series ([`CalendarError::NotTransferable`]).
//!
//! The token is the app's (client-credentials grant,
//! [`super::auth::GraphAppTokens`]); an application access policy decides which
//! mailboxes it reaches (403 `ErrorAccessDenied` otherwise: [`CalendarError::Unauthorized`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    Attendee, Body, CalendarConnector, CalendarError, CalendarEvent, EventKind, TokenSource,
    TransferOutcome, http_client, parse_base_url, send_authorized, stable_digest, status_error,
    with_idempotency_key,
};
use crate::http::{Service, sanitize_reason, url_with};

/// The real service's base URL.
pub const GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// Upper bound on pages followed in one listing (a guard against a looping server).
const MAX_PAGES: usize = 1_000;

/// Fields the listing asks for.
const LIST_SELECT: &str = "id,subject,isOrganizer,isCancelled,type,seriesMasterId,start,end,isAllDay,attendees,recurrence";

/// Fields read from the instances of a series.
const INSTANCE_SELECT: &str = "id,type,start,end,originalStart,subject,location,attendees,isAllDay";

/// Writable event fields copied from the original to the new owner's copy (online
/// meetings are handled apart: see [`copy_body`]).
const COPIED_FIELDS: &[&str] = &[
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "recurrence",
    "location",
    "locations",
    "showAs",
    "sensitivity",
    "importance",
    "categories",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "allowNewTimeProposals",
    "hideAttendees",
];

/// Graph error codes that mean "no such item", whatever the status.
const NOT_FOUND_CODES: &[&str] = &["ErrorItemNotFound", "ResourceNotFound"];

/// Graph error codes that mean "this user's calendar cannot be served": the user does
/// not exist, or has no (licensed, online) mailbox.
const MAILBOX_UNAVAILABLE_CODES: &[&str] = &["ErrorInvalidUser", "MailboxNotEnabledForRESTAPI"];

/// The extended property that marks a series ended by a transfer with the copy that
/// continues it (`"<transactionId> <copy id>"`): opaque ids only.
pub const TRANSFER_MARKER: &str =
    "String {6d5b3c1e-5a38-4a8f-9a52-7f3d2c1b0e9a} Name roster.transferredTo";

/// Settings of [`GraphCalendar`]. `Default` points at the real service.
#[derive(Clone, Debug)]
pub struct GraphCalendarConfig {
    /// e.g. `https://graph.microsoft.com/v1.0`, or a stand-in's base URL.
    pub base_url: String,
    /// Bound on each HTTP request, connection included.
    pub timeout: Duration,
    /// `$top` per page.
    pub page_size: u32,
    /// The comment attendees receive with the original's cancellation. Keep it free
    /// of personal data: it is sent for every transferred event.
    pub cancel_comment: String,
    /// How far ahead an open-ended (`noEnd`) series is compared occurrence by
    /// occurrence; exceptions and cancellations beyond are not carried over.
    pub series_horizon: Duration,
}

impl Default for GraphCalendarConfig {
    fn default() -> Self {
        GraphCalendarConfig {
            base_url: GRAPH_BASE_URL.to_string(),
            timeout: Duration::from_secs(30),
            page_size: 50,
            cancel_comment: "This meeting has a new organizer. An updated invitation \
                             from them replaces this one."
                .to_string(),
            series_horizon: Duration::from_secs(2 * 366 * 86_400),
        }
    }
}

/// A Microsoft Graph calendar client.
#[derive(Clone)]
pub struct GraphCalendar {
    base: url::Url,
    http: reqwest::Client,
    token: Arc<dyn TokenSource>,
    config: GraphCalendarConfig,
}

impl std::fmt::Debug for GraphCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphCalendar")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

// ---- wire shapes (only the fields roster reads) --------------------------------

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MEvent {
    id: String,
    subject: Option<String>,
    #[serde(default)]
    is_organizer: bool,
    #[serde(default)]
    is_cancelled: bool,
    #[serde(rename = "type")]
    kind: Option<String>,
    start: Option<MTime>,
    #[serde(default)]
    is_all_day: bool,
    #[serde(default)]
    attendees: Vec<MAttendee>,
    recurrence: Option<MRecurrence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MTime {
    date_time: String,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MAttendee {
    email_address: Option<MEmail>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct MEmail {
    address: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct MRecurrence {
    pattern: Option<MPattern>,
    range: Option<MRange>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct MPattern {
    #[serde(rename = "type")]
    kind: Option<String>,
    interval: Option<u32>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct MRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    number_of_occurrences: Option<u32>,
}

/// One occurrence or exception of a series, as `/instances` lists it (read in UTC).
#[derive(Clone, Debug)]
struct Instance {
    id: String,
    exception: bool,
    start: DateTime<Utc>,
    original_start: DateTime<Utc>,
    raw: Value,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorInner>,
}

#[derive(Deserialize)]
struct ErrorInner {
    code: Option<String>,
}

/// The error for a Graph failure response: `error.code` is kept as the reason; the
/// message (which often names the user) is dropped.
fn graph_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CalendarError {
    let code = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .and_then(|e| e.code);
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        match code.as_deref() {
            Some(c) if NOT_FOUND_CODES.contains(&c) => return CalendarError::NotFound,
            Some(c) if MAILBOX_UNAVAILABLE_CODES.contains(&c) => {
                return CalendarError::MailboxUnavailable {
                    reason: sanitize_reason(Some(c)),
                };
            }
            _ => {}
        }
    }
    status_error(status.as_u16(), headers, code.as_deref(), false)
}

/// Graph's `dateTime` (no offset, up to 7 fractional digits).
fn parse_local(date_time: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// Graph's `dateTime` in UTC (only for values Graph reported in UTC).
fn parse_graph_utc(time: &MTime) -> Option<DateTime<Utc>> {
    let zone = time.time_zone.as_deref().unwrap_or("UTC");
    if !zone.eq_ignore_ascii_case("UTC") {
        return None;
    }
    parse_local(&time.date_time).map(|t| t.and_utc())
}

/// A `{dateTime, timeZone}` value of an event as a wall-clock time.
fn local_of(event: &Value, field: &str) -> Option<NaiveDateTime> {
    event
        .pointer(&format!("/{field}/dateTime"))
        .and_then(Value::as_str)
        .and_then(parse_local)
}

/// An ISO 8601 instant (`originalStart`: `2030-01-07T08:00:00Z`), or a UTC `dateTime`.
fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| parse_local(value).map(|t| t.and_utc()))
}

fn graph_date_time(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn to_calendar_event(item: MEvent) -> CalendarEvent {
    let kind = match item.kind.as_deref() {
        Some("seriesMaster") => EventKind::SeriesMaster,
        Some("occurrence") => EventKind::Occurrence,
        Some("exception") => EventKind::Exception,
        _ => EventKind::Single,
    };
    CalendarEvent {
        id: item.id,
        kind,
        summary_present: item
            .subject
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty()),
        organizer_is_owner: item.is_organizer,
        starts_at: item.start.as_ref().and_then(parse_graph_utc),
        all_day: item.is_all_day,
        attendees: item
            .attendees
            .into_iter()
            .filter_map(|a| {
                let email = a.email_address?.address?;
                let kind = a.kind.as_deref().unwrap_or("required");
                Some(Attendee {
                    email,
                    optional: kind == "optional",
                    resource: kind == "resource",
                })
            })
            .collect(),
    }
}

/// What the listing does with an item it got.
#[derive(Debug, PartialEq, Eq)]
enum Keep {
    Yes,
    No,
    /// A series whose range cannot tell: ask for an instance after `time_min`, up to
    /// this instant.
    IfAnInstanceBefore(DateTime<Utc>),
}

/// Whether a listed item is one roster transfers (see the module docs).
fn keep(item: &MEvent, time_min: DateTime<Utc>) -> Keep {
    if !item.is_organizer || item.is_cancelled {
        return Keep::No;
    }
    match item.kind.as_deref() {
        None | Some("singleInstance") => Keep::Yes,
        Some("seriesMaster") => {
            let Some(recurrence) = &item.recurrence else {
                return Keep::Yes;
            };
            match series_end(recurrence) {
                SeriesEnd::Open => Keep::Yes,
                SeriesEnd::OnDate(end) if end < time_min.date_naive() => Keep::No,
                SeriesEnd::OnDate(_) => Keep::Yes,
                SeriesEnd::Within(bound) if bound <= time_min => Keep::No,
                SeriesEnd::Within(bound) => Keep::IfAnInstanceBefore(bound),
            }
        }
        _ => Keep::No,
    }
}

/// When a series' range ends.
#[derive(Debug, PartialEq, Eq)]
enum SeriesEnd {
    /// `noEnd`, or a range roster cannot read.
    Open,
    /// `endDate`: the last date (in the recurrence's zone).
    OnDate(NaiveDate),
    /// `numbered`: somewhere before this instant (its pattern repeats at most this
    /// often).
    Within(DateTime<Utc>),
}

fn series_end(recurrence: &MRecurrence) -> SeriesEnd {
    let Some(range) = &recurrence.range else {
        return SeriesEnd::Open;
    };
    match (
        range.kind.as_deref(),
        range.end_date,
        range.number_of_occurrences,
    ) {
        (Some("endDate"), Some(end), _) => SeriesEnd::OnDate(end),
        (Some("numbered"), _, Some(count)) => {
            let Some(start) = range.start_date else {
                return SeriesEnd::Open;
            };
            let pattern = recurrence.pattern.as_ref();
            let period = match pattern.and_then(|p| p.kind.as_deref()) {
                Some("daily") => 1,
                Some("weekly") => 7,
                Some("absoluteMonthly" | "relativeMonthly") => 31,
                Some("absoluteYearly" | "relativeYearly") => 366,
                _ => return SeriesEnd::Open,
            };
            let interval = u64::from(pattern.and_then(|p| p.interval).unwrap_or(1).max(1));
            let days = u64::from(count) * interval * period + 2;
            start
                .checked_add_days(Days::new(days))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(SeriesEnd::Open, |d| SeriesEnd::Within(d.and_utc()))
        }
        _ => SeriesEnd::Open,
    }
}

/// The `Prefer` time zone to read an event in: its original start zone when Graph
/// reports a usable one, else UTC.
fn read_zone(original: Option<&str>) -> String {
    match original {
        Some(zone)
            if !zone.is_empty()
                && !zone.starts_with("tzone://")
                && zone.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                && !zone.contains('"') =>
        {
            zone.to_string()
        }
        _ => "UTC".to_string(),
    }
}

/// The attendees of `event` for a copy organized by `to_email`: everyone but the two
/// owners, with their address and type only (responses start over).
fn copied_attendees(event: &Value, from_email: &str, to_email: &str) -> Vec<Value> {
    event
        .get("attendees")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|a| {
                    a.pointer("/emailAddress/address")
                        .and_then(Value::as_str)
                        .is_some_and(|e| {
                            !e.eq_ignore_ascii_case(from_email) && !e.eq_ignore_ascii_case(to_email)
                        })
                })
                .map(|a| {
                    let mut copy = Map::new();
                    if let Some(email) = a.get("emailAddress") {
                        copy.insert("emailAddress".into(), email.clone());
                    }
                    copy.insert(
                        "type".into(),
                        a.get("type").cloned().unwrap_or_else(|| "required".into()),
                    );
                    Value::Object(copy)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The join links an online meeting carries (never copied).
fn join_links(original: &Value) -> Vec<String> {
    let mut links: Vec<String> = ["/onlineMeeting/joinUrl", "/onlineMeetingUrl"]
        .iter()
        .filter_map(|p| original.pointer(p).and_then(Value::as_str))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    links.sort();
    links.dedup();
    links
}

/// Join links Teams writes into meeting bodies, whatever meeting they belong to.
const TEAMS_JOIN_PREFIX: &str = "https://teams.microsoft.com/l/meetup-join/";

/// A run of at least this many underscores delimits the join block Teams (and Skype
/// for Business) write into a meeting's body.
const SEPARATOR_RUN: usize = 20;

/// Byte ranges of the underscore runs in `text`.
fn separator_runs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'_' {
                i += 1;
            }
            if i - start >= SEPARATOR_RUN {
                runs.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    runs
}

/// `content` without the original meeting's join information: the block between the
/// separator lines around a join link (with the `<div>`s that hold those lines), and
/// any join link still left after that.
pub fn strip_join_information(content: &str, links: &[String]) -> String {
    let mut text = content.to_string();
    let first_link = |text: &str| {
        links
            .iter()
            .map(String::as_str)
            .chain([TEAMS_JOIN_PREFIX])
            .filter_map(|l| text.find(l))
            .min()
    };
    for _ in 0..8 {
        let Some(at) = first_link(&text) else {
            break;
        };
        let runs = separator_runs(&text);
        let before = runs.iter().rev().find(|(_, end)| *end <= at);
        let after = runs.iter().find(|(start, _)| *start >= at);
        let (Some(&(open, _)), Some(&(_, close))) = (before, after) else {
            break;
        };
        // Widen to the elements that hold the separator lines.
        let start = text[..open]
            .rfind("<div")
            .filter(|d| open - d < 300)
            .unwrap_or(open);
        let end = text[close..]
            .find("</div>")
            .filter(|d| *d < 300)
            .map_or(close, |d| close + d + "</div>".len());
        text.replace_range(start..end, "");
    }
    // Whatever is left of a join link goes too.
    for link in links.iter().map(String::as_str).chain([TEAMS_JOIN_PREFIX]) {
        while let Some(at) = text.find(link) {
            let end = text[at..]
                .find(|c: char| c == '"' || c == '\'' || c == '<' || c.is_whitespace())
                .map_or(text.len(), |e| at + e);
            text.replace_range(at..end, "");
        }
    }
    text
}

/// The body that re-creates `original` in the new owner's calendar.
fn copy_body(original: &Value, from_email: &str, to_email: &str, transaction_id: &str) -> Value {
    let mut body = Map::new();
    for field in COPIED_FIELDS {
        if let Some(value) = original.get(*field).filter(|v| !v.is_null()) {
            body.insert((*field).to_string(), value.clone());
        }
    }
    if original.get("isOnlineMeeting").and_then(Value::as_bool) == Some(true) {
        // A meeting of the new organizer's own; the old one's link is not copied.
        body.insert("isOnlineMeeting".into(), true.into());
        let provider = original
            .get("onlineMeetingProvider")
            .and_then(Value::as_str)
            .filter(|p| *p != "unknown")
            .unwrap_or("teamsForBusiness");
        body.insert("onlineMeetingProvider".into(), provider.into());
        let links = join_links(original);
        if let Some(content) = body.get_mut("body").and_then(|b| b.get_mut("content")) {
            let stripped = content
                .as_str()
                .map(|text| strip_join_information(text, &links));
            if let Some(stripped) = stripped {
                *content = Value::String(stripped);
            }
        }
    }
    body.insert(
        "attendees".into(),
        Value::Array(copied_attendees(original, from_email, to_email)),
    );
    body.insert("transactionId".into(), transaction_id.into());
    Value::Object(body)
}

/// Graph's `transactionId` for the copy of `event_id` made under `idempotency_key`:
/// the same on every retry, different for every event and key.
pub fn transaction_id(idempotency_key: &str, event_id: &str) -> String {
    format!(
        "roster-{}",
        stable_digest(&["calendar-transfer", idempotency_key, event_id])
    )
}

/// The local (recurrence-zone) date of an occurrence whose original start is `at`, for
/// a series whose occurrences start at `time_of_day` local time with an offset near
/// `offset` (the master's). No time-zone database is needed: the candidate whose
/// implied offset is closest to the master's wins.
fn local_date(at: DateTime<Utc>, time_of_day: chrono::NaiveTime, offset: TimeDelta) -> NaiveDate {
    let guess = (at.naive_utc() + offset).date();
    [guess.pred_opt(), Some(guess), guess.succ_opt()]
        .into_iter()
        .flatten()
        .min_by_key(|d| {
            let implied = d.and_time(time_of_day) - at.naive_utc();
            (implied - offset).num_seconds().abs()
        })
        .unwrap_or(guess)
}

/// What roster needs of a series master to split it.
struct Series {
    recurrence: Value,
    range_start: NaiveDate,
    end: SeriesEnd,
    /// The master's start and end, wall clock in the series' zone.
    start_local: NaiveDateTime,
    end_local: NaiveDateTime,
    /// Local minus UTC at the master's start.
    offset: TimeDelta,
}

impl Series {
    fn read(original: &Value, head: &Value) -> Result<Series, CalendarError> {
        let decode = |what| CalendarError::Decode { what };
        let recurrence = original
            .get("recurrence")
            .filter(|r| !r.is_null())
            .cloned()
            .ok_or(decode("series master without recurrence"))?;
        let parsed: MRecurrence =
            serde_json::from_value(recurrence.clone()).map_err(|_| decode("recurrence"))?;
        let range_start = parsed
            .range
            .as_ref()
            .and_then(|r| r.start_date)
            .ok_or(decode("recurrence range without startDate"))?;
        let start_local = local_of(original, "start").ok_or(decode("series start"))?;
        let end_local = local_of(original, "end").ok_or(decode("series end"))?;
        let start_utc = local_of(head, "start").ok_or(decode("series start (UTC)"))?;
        Ok(Series {
            end: series_end(&parsed),
            recurrence,
            range_start,
            start_local,
            end_local,
            offset: start_local - start_utc,
        })
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        local_date(at, self.start_local.time(), self.offset)
    }

    /// The recurrence with its range changed to end on `end` (inclusive).
    fn ending_on(&self, range_start: NaiveDate, end: NaiveDate) -> Value {
        let mut recurrence = self.recurrence.clone();
        if let Some(range) = recurrence.get_mut("range").and_then(Value::as_object_mut) {
            range.insert("type".into(), "endDate".into());
            range.insert("startDate".into(), range_start.to_string().into());
            range.insert("endDate".into(), end.to_string().into());
            range.remove("numberOfOccurrences");
        }
        recurrence
    }

    /// The recurrence of the copy: from `split` on, to where the original ends.
    fn from(&self, split: NaiveDate, last: Option<NaiveDate>) -> Value {
        match (&self.end, last) {
            (SeriesEnd::Within(_), Some(last)) => self.ending_on(split, last),
            _ => {
                let mut recurrence = self.recurrence.clone();
                if let Some(range) = recurrence.get_mut("range").and_then(Value::as_object_mut) {
                    range.insert("startDate".into(), split.to_string().into());
                }
                recurrence
            }
        }
    }
}

impl GraphCalendar {
    pub fn new(
        config: GraphCalendarConfig,
        token: Arc<dyn TokenSource>,
    ) -> Result<Self, CalendarError> {
        let base = parse_base_url(&config.base_url)?;
        let http = http_client(config.timeout)?;
        Ok(GraphCalendar {
            base,
            http,
            token,
            config,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        mailbox: &str,
        now: DateTime<Utc>,
        zone: Option<&str>,
        idempotency_key: Option<&str>,
        body: Body<'_>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CalendarError> {
        send_authorized(
            Service::MicrosoftGraph,
            self.token.as_ref(),
            mailbox,
            now,
            || {
                let mut request = self
                    .http
                    .request(method.clone(), url.clone())
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(zone) = zone {
                    request = request.header("Prefer", format!("outlook.timezone=\"{zone}\""));
                }
                if let Some(key) = idempotency_key {
                    request = with_idempotency_key(request, key)?;
                }
                Ok(body.apply(request))
            },
        )
        .await
    }

    /// Whether `link` (an `@odata.nextLink`) points at the configured service; the
    /// token is never sent anywhere else.
    fn same_origin(&self, link: &url::Url) -> bool {
        link.scheme() == self.base.scheme()
            && link.host_str() == self.base.host_str()
            && link.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Every item of a collection, following `@odata.nextLink`.
    async fn collect<T: serde::de::DeserializeOwned>(
        &self,
        first: url::Url,
        mailbox: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<T>, CalendarError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let (status, headers, body) = self
                .send(
                    Method::GET,
                    url.clone(),
                    mailbox,
                    now,
                    Some("UTC"),
                    None,
                    Body::None,
                )
                .await?;
            if !status.is_success() {
                return Err(graph_error(status, &headers, &body));
            }
            let page: Page<T> =
                serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                    what: "events page",
                })?;
            items.extend(page.value);
            if let Some(link) = page.next_link {
                let link = url::Url::parse(&link).map_err(|_| CalendarError::Decode {
                    what: "nextLink is not a URL",
                })?;
                if !self.same_origin(&link) {
                    return Err(CalendarError::Decode {
                        what: "nextLink points at another host",
                    });
                }
                if link == url {
                    return Err(CalendarError::Decode {
                        what: "repeated nextLink",
                    });
                }
                next = Some(link);
            }
        }
        Err(CalendarError::Decode {
            what: "too many pages",
        })
    }

    async fn list(
        &self,
        owner_email: &str,
        time_min: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CalendarEvent>, CalendarError> {
        let mut url = url_with(&self.base, &["users", owner_email, "events"]);
        let since = graph_date_time(time_min.naive_utc());
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("end/dateTime ge '{since}' or type eq 'seriesMaster'"),
            )
            .append_pair("$top", &self.config.page_size.clamp(1, 1000).to_string())
            .append_pair("$select", LIST_SELECT);
        let items: Vec<MEvent> = self.collect(url, owner_email, now).await?;
        let mut events = Vec::new();
        for item in items {
            match keep(&item, time_min) {
                Keep::No => {}
                Keep::Yes => events.push(to_calendar_event(item)),
                Keep::IfAnInstanceBefore(bound) => {
                    if self
                        .has_instance(owner_email, &item.id, time_min, bound, now)
                        .await?
                    {
                        events.push(to_calendar_event(item));
                    }
                }
            }
        }
        Ok(events)
    }

    /// Whether series `id` has an occurrence (or exception) between `from` and `to`.
    async fn has_instance(
        &self,
        user: &str,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, CalendarError> {
        let mut url = url_with(&self.base, &["users", user, "events", id, "instances"]);
        url.query_pairs_mut()
            .append_pair("startDateTime", &graph_date_time(from.naive_utc()))
            .append_pair("endDateTime", &graph_date_time(to.naive_utc()))
            .append_pair("$top", "1")
            .append_pair("$select", "id");
        let (status, headers, body) = self
            .send(Method::GET, url, user, now, Some("UTC"), None, Body::None)
            .await?;
        if !status.is_success() {
            return Err(graph_error(status, &headers, &body));
        }
        let page: Page<Value> =
            serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                what: "instances page",
            })?;
        Ok(!page.value.is_empty())
    }

    /// The occurrences and exceptions of series `id` between `from` and `to`, in UTC,
    /// by original start (Graph leaves cancelled occurrences out).
    async fn instances(
        &self,
        user: &str,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<DateTime<Utc>, Instance>, CalendarError> {
        let mut url = url_with(&self.base, &["users", user, "events", id, "instances"]);
        url.query_pairs_mut()
            .append_pair("startDateTime", &graph_date_time(from.naive_utc()))
            .append_pair("endDateTime", &graph_date_time(to.naive_utc()))
            .append_pair("$top", "100")
            .append_pair("$select", INSTANCE_SELECT);
        let raw: Vec<Value> = self.collect(url, user, now).await?;
        let mut instances = BTreeMap::new();
        for item in raw {
            let decode = |what| CalendarError::Decode { what };
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .ok_or(decode("instance without id"))?
                .to_string();
            let start = local_of(&item, "start")
                .ok_or(decode("instance start"))?
                .and_utc();
            let original_start = item
                .get("originalStart")
                .and_then(Value::as_str)
                .and_then(parse_instant)
                .unwrap_or(start);
            let exception = item.get("type").and_then(Value::as_str) == Some("exception");
            instances.insert(
                original_start,
                Instance {
                    id,
                    exception,
                    start,
                    original_start,
                    raw: item,
                },
            );
        }
        Ok(instances)
    }

    /// The event in `user`'s calendar, read in `zone`, or `None` if it is not there.
    async fn get_event(
        &self,
        user: &str,
        event_id: &str,
        zone: &str,
        query: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<Option<Value>, CalendarError> {
        let mut url = url_with(&self.base, &["users", user, "events", event_id]);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let (status, headers, body) = self
            .send(Method::GET, url, user, now, Some(zone), None, Body::None)
            .await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| CalendarError::Decode { what: "event" });
        }
        match graph_error(status, &headers, &body) {
            CalendarError::NotFound => Ok(None),
            error => Err(error),
        }
    }

    /// A request that must succeed; "already gone" is done when `gone_is_done`.
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &self,
        method: Method,
        url: url::Url,
        user: &str,
        now: DateTime<Utc>,
        zone: Option<&str>,
        idempotency_key: &str,
        body: &Value,
        gone_is_done: bool,
    ) -> Result<Option<Value>, CalendarError> {
        let (status, headers, response) = self
            .send(
                method,
                url,
                user,
                now,
                zone,
                Some(idempotency_key),
                Body::Json(body),
            )
            .await?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&response).ok());
        }
        match graph_error(status, &headers, &response) {
            CalendarError::NotFound if gone_is_done => Ok(None),
            error => Err(error),
        }
    }

    async fn cancel(
        &self,
        user: &str,
        event_id: &str,
        comment: Option<&str>,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CalendarError> {
        let url = url_with(&self.base, &["users", user, "events", event_id, "cancel"]);
        let body = match comment {
            Some(comment) => json!({ "comment": comment }),
            None => json!({}),
        };
        self.change(
            Method::POST,
            url,
            user,
            now,
            None,
            idempotency_key,
            &body,
            true,
        )
        .await
        .map(|_| ())
    }

    /// Creates the copy (deduplicated by `transactionId`); returns it as Graph does.
    async fn create_copy(
        &self,
        to_email: &str,
        body: &Value,
        zone: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, CalendarError> {
        let url = url_with(&self.base, &["users", to_email, "events"]);
        let created = self
            .change(
                Method::POST,
                url,
                to_email,
                now,
                Some(zone),
                idempotency_key,
                body,
                false,
            )
            .await?
            .ok_or(CalendarError::Decode {
                what: "created event",
            })?;
        if created.get("id").and_then(Value::as_str).is_none() {
            return Err(CalendarError::Decode {
                what: "created event has no id",
            });
        }
        Ok(created)
    }

    async fn recreate(
        &self,
        event: &CalendarEvent,
        from_email: &str,
        to_email: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<TransferOutcome, CalendarError> {
        if matches!(event.kind, EventKind::Occurrence | EventKind::Exception) {
            return Err(CalendarError::NotTransferable {
                reason: "an occurrence moves with its series",
            });
        }
        let transaction = transaction_id(idempotency_key, &event.id);
        // 1. What the original is now (it may be gone after an earlier attempt).
        let expand = format!("singleValueExtendedProperties($filter=id eq '{TRANSFER_MARKER}')");
        let Some(head) = self
            .get_event(
                from_email,
                &event.id,
                "UTC",
                &[
                    (
                        "$select",
                        "id,type,isOrganizer,isCancelled,originalStartTimeZone,start",
                    ),
                    ("$expand", &expand),
                ],
                now,
            )
            .await?
        else {
            return Ok(TransferOutcome::SourceGone);
        };
        if head.get("isCancelled").and_then(Value::as_bool) == Some(true) {
            return Ok(TransferOutcome::SourceGone);
        }
        match head.get("type").and_then(Value::as_str) {
            Some("occurrence" | "exception") => {
                return Err(CalendarError::NotTransferable {
                    reason: "an occurrence moves with its series",
                });
            }
            _ if head.get("isOrganizer").and_then(Value::as_bool) != Some(true) => {
                return Err(CalendarError::NotTransferable {
                    reason: "the owner does not organize the event",
                });
            }
            _ => {}
        }
        if let Some(copy) = transferred_to(&head, &transaction) {
            return Ok(TransferOutcome::AlreadyTransferred { event_id: copy });
        }
        // 2. The full original, in its own time zone.
        let zone = read_zone(head.get("originalStartTimeZone").and_then(Value::as_str));
        let Some(original) = self
            .get_event(from_email, &event.id, &zone, &[], now)
            .await?
        else {
            return Ok(TransferOutcome::SourceGone);
        };
        let body = copy_body(&original, from_email, to_email, &transaction);
        if head.get("type").and_then(Value::as_str) == Some("seriesMaster") {
            let series = Series::read(&original, &head)?;
            return self
                .transfer_series(
                    event,
                    &series,
                    body,
                    &zone,
                    (from_email, to_email),
                    (idempotency_key, &transaction),
                    now,
                )
                .await;
        }
        // 3. The copy, deduplicated by transactionId; 4. the original cancelled.
        let created = self
            .create_copy(to_email, &body, &zone, idempotency_key, now)
            .await?;
        let event_id = created["id"].as_str().unwrap_or_default().to_string();
        self.cancel(
            from_email,
            &event.id,
            Some(&self.config.cancel_comment),
            idempotency_key,
            now,
        )
        .await?;
        Ok(TransferOutcome::Transferred { event_id })
    }

    /// How far to compare a series occurrence by occurrence.
    fn window_end(&self, series: &Series, now: DateTime<Utc>) -> DateTime<Utc> {
        let horizon = now + TimeDelta::from_std(self.config.series_horizon).unwrap_or_default();
        match series.end {
            SeriesEnd::Within(bound) => bound,
            SeriesEnd::OnDate(end) => end
                .checked_add_days(Days::new(2))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(horizon, |d| d.and_utc()),
            SeriesEnd::Open => horizon,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn transfer_series(
        &self,
        event: &CalendarEvent,
        series: &Series,
        mut body: Value,
        zone: &str,
        (from_email, to_email): (&str, &str),
        (idempotency_key, transaction): (&str, &str),
        now: DateTime<Utc>,
    ) -> Result<TransferOutcome, CalendarError> {
        let window_end = self.window_end(series, now);
        let mut originals = self
            .instances(from_email, &event.id, now, window_end, now)
            .await?;
        // The split: the first occurrence that has not started yet.
        let Some(next) = originals
            .values()
            .filter(|i| i.start >= now)
            .map(|i| i.original_start)
            .min()
        else {
            // Nothing ahead: the series is over (or every occurrence left is cancelled).
            return Ok(TransferOutcome::SourceGone);
        };
        let split = series.local_date(next).max(series.range_start);
        let last = originals
            .keys()
            .next_back()
            .map(|at| series.local_date(*at));
        // A series that has not begun is copied as it is; one under way from the split.
        if split > series.range_start
            && let Some(object) = body.as_object_mut()
        {
            let start = split.and_time(series.start_local.time());
            let end = start + (series.end_local - series.start_local);
            object.insert("recurrence".into(), series.from(split, last));
            object.insert(
                "start".into(),
                json!({ "dateTime": graph_date_time(start), "timeZone": zone }),
            );
            object.insert(
                "end".into(),
                json!({ "dateTime": graph_date_time(end), "timeZone": zone }),
            );
        }
        let created = self
            .create_copy(to_email, &body, zone, idempotency_key, now)
            .await?;
        let copy_id = created["id"].as_str().unwrap_or_default().to_string();
        // The split the copy was made with (an earlier attempt's, on a retry).
        let split = created
            .pointer("/recurrence/range/startDate")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<NaiveDate>().ok())
            .unwrap_or(split);
        let split_instant = split
            .pred_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(now, |d| d.and_utc());
        if split_instant < now {
            originals = self
                .instances(from_email, &event.id, split_instant, window_end, now)
                .await?;
        }
        originals.retain(|at, _| series.local_date(*at) >= split);
        // Exceptions and cancelled occurrences, carried over occurrence by occurrence.
        let copies = self
            .instances(to_email, &copy_id, split_instant.min(now), window_end, now)
            .await?;
        for (at, copy) in &copies {
            let key = format!("{idempotency_key}/{}", at.timestamp());
            match originals.get(at) {
                None => {
                    self.cancel(to_email, &copy.id, None, &key, now).await?;
                }
                Some(original) if original.exception && !copy.exception => {
                    let patch = exception_patch(&original.raw, from_email, to_email);
                    let url = url_with(&self.base, &["users", to_email, "events", &copy.id]);
                    self.change(
                        Method::PATCH,
                        url,
                        to_email,
                        now,
                        Some("UTC"),
                        &key,
                        &patch,
                        false,
                    )
                    .await?;
                }
                Some(_) => {}
            }
        }
        // The original: ended before the split, or cancelled if it never began.
        if split <= series.range_start {
            self.cancel(
                from_email,
                &event.id,
                Some(&self.config.cancel_comment),
                idempotency_key,
                now,
            )
            .await?;
        } else {
            let last_kept = split.pred_opt().unwrap_or(split);
            let patch = json!({
                "recurrence": series.ending_on(series.range_start, last_kept),
                "singleValueExtendedProperties": [
                    { "id": TRANSFER_MARKER, "value": format!("{transaction} {copy_id}") }
                ],
            });
            let url = url_with(&self.base, &["users", from_email, "events", &event.id]);
            self.change(
                Method::PATCH,
                url,
                from_email,
                now,
                Some(zone),
                idempotency_key,
                &patch,
                false,
            )
            .await?;
        }
        Ok(TransferOutcome::Transferred { event_id: copy_id })
    }

    async fn check(&self, email: &str, now: DateTime<Utc>) -> Result<(), CalendarError> {
        let mut url = url_with(&self.base, &["users", email, "events"]);
        url.query_pairs_mut()
            .append_pair("$top", "1")
            .append_pair("$select", "id");
        let (status, headers, body) = self
            .send(Method::GET, url, email, now, None, None, Body::None)
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(graph_error(status, &headers, &body))
        }
    }
}

/// The copy a series was continued in, if the marker names this transfer.
fn transferred_to(head: &Value, transaction: &str) -> Option<String> {
    head.get("singleValueExtendedProperties")?
        .as_array()?
        .iter()
        .filter(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.eq_ignore_ascii_case(TRANSFER_MARKER))
        })
        .find_map(|p| {
            let (tx, copy) = p.get("value")?.as_str()?.split_once(' ')?;
            (tx == transaction && !copy.is_empty()).then(|| copy.to_string())
        })
}

/// The PATCH that makes an occurrence of the copy look like the original's exception.
fn exception_patch(exception: &Value, from_email: &str, to_email: &str) -> Value {
    let mut patch = Map::new();
    for field in ["subject", "start", "end", "location"] {
        if let Some(value) = exception.get(field).filter(|v| !v.is_null()) {
            patch.insert(field.to_string(), value.clone());
        }
    }
    if exception.get("attendees").is_some() {
        patch.insert(
            "attendees".into(),
            Value::Array(copied_attendees(exception, from_email, to_email)),
        );
    }
    Value::Object(patch)
}

impl CalendarConnector for GraphCalendar {
    fn provider(&self) -> &'static str {
        "microsoft"
    }

    fn check_calendar<'a>(
        &'a self,
        email: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), CalendarError>> {
        Box::pin(self.check(email, now))
    }

    fn list_owned_upcoming<'a>(
        &'a self,
        owner_email: &'a str,
        time_min: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<CalendarEvent>, CalendarError>> {
        Box::pin(self.list(owner_email, time_min, now))
    }

    fn transfer<'a>(
        &'a self,
        event: &'a CalendarEvent,
        from_email: &'a str,
        to_email: &'a str,
        idempotency_key: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<TransferOutcome, CalendarError>> {
        Box::pin(self.recreate(event, from_email, to_email, idempotency_key, now))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// What the listing does with each item of a page.
    fn kept(page: &str, time_min: DateTime<Utc>) -> HashMap<String, Keep> {
        let page: Page<MEvent> = serde_json::from_str(page).unwrap();
        page.value
            .into_iter()
            .map(|e| {
                let k = keep(&e, time_min);
                (e.id, k)
            })
            .collect()
    }

    #[test]
    fn missing_and_unlicensed_mailboxes_are_unavailable_without_the_address() {
        let body = br#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'bob@example.com' is invalid."}}"#;
        let error = graph_error(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
        assert_eq!(
            error,
            CalendarError::MailboxUnavailable {
                reason: "ErrorInvalidUser".into()
            }
        );
        assert!(!error.to_string().contains("example.com"));
        assert!(!error.is_retryable());
        let body = br#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}"#;
        let error = graph_error(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
        assert_eq!(error.category(), "mailbox_unavailable");
        let body = br#"{"error":{"code":"ErrorItemNotFound","message":"x"}}"#;
        assert_eq!(
            graph_error(StatusCode::NOT_FOUND, &HeaderMap::new(), body),
            CalendarError::NotFound
        );
        let body = br#"{"error":{"code":"ErrorInvalidRequest","message":"bob@example.com"}}"#;
        let error = graph_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert!(!error.to_string().contains("example.com"));
    }

    #[test]
    fn an_application_access_policy_refusal_is_unauthorized() {
        let body = br#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."}}"#;
        assert_eq!(
            graph_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body),
            CalendarError::Unauthorized { status: 403 }
        );
    }

    #[test]
    fn transaction_ids_are_stable_per_key_and_event() {
        assert_eq!(transaction_id("k", "e1"), transaction_id("k", "e1"));
        assert_ne!(transaction_id("k", "e1"), transaction_id("k", "e2"));
        assert_ne!(transaction_id("k", "e1"), transaction_id("k2", "e1"));
    }

    #[test]
    fn copy_keeps_content_and_drops_the_owners_from_attendees() {
        let original = serde_json::json!({
            "id": "X", "subject": "s", "body": {"contentType": "html", "content": "c"},
            "start": {"dateTime": "2030-01-07T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "UTC"},
            "recurrence": null, "webLink": "https://example.com",
            "isOnlineMeeting": false, "onlineMeetingProvider": "unknown",
            "attendees": [
                {"type": "required", "status": {"response": "accepted"}, "emailAddress": {"address": "a@example.com"}},
                {"type": "optional", "emailAddress": {"address": "NEW@example.com"}},
                {"type": "required", "emailAddress": {"address": "old@example.com"}}
            ]
        });
        let body = copy_body(&original, "old@example.com", "new@example.com", "t");
        assert_eq!(body["subject"], "s");
        assert!(body.get("recurrence").is_none() && body.get("webLink").is_none());
        assert!(body.get("isOnlineMeeting").is_none());
        assert_eq!(body["attendees"].as_array().unwrap().len(), 1);
        assert!(body["attendees"][0].get("status").is_none());
        assert_eq!(body["transactionId"], "t");
    }

    const TEAMS_BODY: &str = concat!(
        "<html><body><p>Agenda: quarterly review</p>",
        r#"<div style="width:100%"><span style="white-space:nowrap;color:#5F5F5F;opacity:.36">________________________________________________________________________________</span></div>"#,
        r#"<div class="me-email-text"><div><span>Microsoft Teams meeting</span></div>"#,
        r#"<a href="https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0?context=%7b%7d" target="_blank">Click here to join the meeting</a>"#,
        "<div><span>Meeting ID: 123 456 789</span></div></div>",
        r#"<div style="width:100%"><span style="white-space:nowrap;color:#5F5F5F;opacity:.36">________________________________________________________________________________</span></div>"#,
        "<p>Bring the numbers.</p></body></html>"
    );

    #[test]
    fn an_online_meeting_is_recreated_without_its_join_link() {
        let original = serde_json::json!({
            "subject": "s",
            "body": {"contentType": "html", "content": TEAMS_BODY},
            "isOnlineMeeting": true,
            "onlineMeetingProvider": "teamsForBusiness",
            "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0?context=%7b%7d"},
            "attendees": []
        });
        let body = copy_body(&original, "old@example.com", "new@example.com", "t");
        assert_eq!(body["isOnlineMeeting"], true);
        assert_eq!(body["onlineMeetingProvider"], "teamsForBusiness");
        assert!(body.get("onlineMeeting").is_none());
        let content = body["body"]["content"].as_str().unwrap();
        assert!(!content.contains("meetup-join"), "{content}");
        assert!(!content.contains("Meeting ID"), "{content}");
        assert!(!content.contains("____"), "{content}");
        assert!(content.contains("Agenda: quarterly review"));
        assert!(content.contains("Bring the numbers."));
    }

    #[test]
    fn join_links_without_separators_are_still_removed() {
        let link = "https://teams.microsoft.com/l/meetup-join/abc".to_string();
        let text = format!("Join here: {link} and see you");
        let stripped = strip_join_information(&text, std::slice::from_ref(&link));
        assert_eq!(stripped, "Join here:  and see you");
        assert_eq!(strip_join_information("plain", &[]), "plain");
    }

    #[test]
    fn finished_series_are_not_listed() {
        let page = r#"{"value":[
          {"id":"done","isOrganizer":true,"type":"seriesMaster","recurrence":{"pattern":{"type":"weekly","interval":1},"range":{"type":"numbered","startDate":"2029-01-07","numberOfOccurrences":3}}},
          {"id":"maybe","isOrganizer":true,"type":"seriesMaster","recurrence":{"pattern":{"type":"weekly","interval":1},"range":{"type":"numbered","startDate":"2029-12-03","numberOfOccurrences":10}}},
          {"id":"ended","isOrganizer":true,"type":"seriesMaster","recurrence":{"pattern":{"type":"daily","interval":1},"range":{"type":"endDate","startDate":"2029-01-01","endDate":"2029-06-30"}}},
          {"id":"open","isOrganizer":true,"type":"seriesMaster","recurrence":{"pattern":{"type":"daily","interval":1},"range":{"type":"noEnd","startDate":"2020-01-01"}}},
          {"id":"single","isOrganizer":true,"type":"singleInstance"},
          {"id":"guest","isOrganizer":false,"type":"singleInstance"},
          {"id":"gone","isOrganizer":true,"isCancelled":true,"type":"singleInstance"}
        ]}"#;
        let kept = kept(page, at("2030-01-01T00:00:00Z"));
        assert_eq!(kept["done"], Keep::No);
        assert!(matches!(kept["maybe"], Keep::IfAnInstanceBefore(_)));
        assert_eq!(kept["ended"], Keep::No);
        assert_eq!(kept["open"], Keep::Yes);
        assert_eq!(kept["single"], Keep::Yes);
        assert_eq!(kept["guest"], Keep::No);
        assert_eq!(kept["gone"], Keep::No);
    }

    #[test]
    fn local_dates_follow_the_series_offset() {
        let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        // Berlin in winter (+1) and summer (+2): 09:00 local on the same date.
        assert_eq!(
            local_date(at("2030-01-07T08:00:00Z"), nine, TimeDelta::hours(1)),
            "2030-01-07".parse::<NaiveDate>().unwrap()
        );
        assert_eq!(
            local_date(at("2030-07-08T07:00:00Z"), nine, TimeDelta::hours(1)),
            "2030-07-08".parse::<NaiveDate>().unwrap()
        );
        // Auckland (+13): 09:00 local is 20:00Z the day before.
        assert_eq!(
            local_date(at("2030-01-06T20:00:00Z"), nine, TimeDelta::hours(13)),
            "2030-01-07".parse::<NaiveDate>().unwrap()
        );
        // Honolulu (-10): 23:00 local is 09:00Z the next day.
        let eleven_pm = chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap();
        assert_eq!(
            local_date(at("2030-01-08T09:00:00Z"), eleven_pm, TimeDelta::hours(-10)),
            "2030-01-07".parse::<NaiveDate>().unwrap()
        );
    }

    #[test]
    fn the_transfer_marker_names_the_copy_of_this_transfer_only() {
        let head = serde_json::json!({
            "singleValueExtendedProperties": [{ "id": TRANSFER_MARKER, "value": "roster-abc COPY1" }]
        });
        assert_eq!(
            transferred_to(&head, "roster-abc").as_deref(),
            Some("COPY1")
        );
        assert_eq!(transferred_to(&head, "roster-other"), None);
        assert_eq!(transferred_to(&serde_json::json!({}), "roster-abc"), None);
    }
}
