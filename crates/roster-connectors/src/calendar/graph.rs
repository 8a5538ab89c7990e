//! Microsoft Graph calendar client (the real request and response shapes).
//!
//! - List: `GET /users/{id}/events?$filter=end/dateTime ge '…' or type eq 'seriesMaster'
//!   &$top=…&$select=…` with `Prefer: outlook.timezone="UTC"`, following
//!   `@odata.nextLink`. `/events` returns single instances and series masters (never
//!   occurrences); the filter is on the end, like Google's `timeMin`, and lets every
//!   series master through because a series that began in the past may still have
//!   occurrences ahead (series whose `endDate` range is over are dropped here). Items
//!   are kept only if `isOrganizer` and not `isCancelled`.
//! - Transfer: Graph cannot change `organizer`. The event is read in full (in its
//!   original time zone, so a recurring series keeps its wall-clock time across DST),
//!   re-created with `POST /users/{newOwner}/events` (same subject, body, start/end,
//!   recurrence, location and attendees, less the two owners) carrying a
//!   `transactionId` derived from the idempotency key and the original's id, then the
//!   original is cancelled with `POST /users/{oldOwner}/events/{id}/cancel` (attendees
//!   get the comment). Graph answers a create that repeats a `transactionId` with the
//!   event it already made, so a retry after a lost response or a failed cancel never
//!   duplicates the copy; a cancel of an event already gone counts as done.
//! - Only series masters and single instances are transferred; occurrences and
//!   exceptions travel with their series ([`CalendarError::NotTransferable`]).
//!   Modified occurrences of a series are not carried over to the copy (Graph would
//!   need one PATCH per exception); the copy has the series' regular pattern.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Attendee, CalendarConnector, CalendarError, CalendarEvent, EventKind, TokenSource,
    TransferOutcome, execute, http_client, parse_base_url, stable_digest, status_error,
    with_idempotency_key,
};
use crate::http::url_with;

/// The real service's base URL.
pub const GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// Upper bound on pages followed in one listing (a guard against a looping server).
const MAX_PAGES: usize = 1_000;

/// Fields the listing asks for.
const LIST_SELECT: &str = "id,subject,isOrganizer,isCancelled,type,seriesMasterId,start,end,isAllDay,attendees,recurrence";

/// Writable event fields copied from the original to the new owner's copy.
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
    "isOnlineMeeting",
    "onlineMeetingProvider",
];

/// Graph error codes that mean "no such user, mailbox or item", whatever the status.
const NOT_FOUND_CODES: &[&str] = &[
    "ErrorItemNotFound",
    "ErrorInvalidUser",
    "ResourceNotFound",
    "MailboxNotEnabledForRESTAPI",
];

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
struct Page {
    #[serde(default)]
    value: Vec<MEvent>,
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

#[derive(Deserialize)]
struct MRecurrence {
    range: Option<MRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    end_date: Option<NaiveDate>,
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
    if status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && code
            .as_deref()
            .is_some_and(|c| NOT_FOUND_CODES.contains(&c))
    {
        return CalendarError::NotFound;
    }
    status_error(status.as_u16(), headers, code.as_deref(), false)
}

/// Graph's `dateTime` (no offset, up to 7 fractional digits) in UTC.
fn parse_graph_utc(time: &MTime) -> Option<DateTime<Utc>> {
    let zone = time.time_zone.as_deref().unwrap_or("UTC");
    if !zone.eq_ignore_ascii_case("UTC") {
        return None;
    }
    NaiveDateTime::parse_from_str(&time.date_time, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
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

/// Whether a listed item is one roster transfers (see the module docs).
fn is_owned_transferable(item: &MEvent, time_min: DateTime<Utc>) -> bool {
    if !item.is_organizer || item.is_cancelled {
        return false;
    }
    match item.kind.as_deref() {
        None | Some("singleInstance") => true,
        Some("seriesMaster") => {
            let range = item.recurrence.as_ref().and_then(|r| r.range.as_ref());
            match range {
                Some(MRange {
                    kind: Some(kind),
                    end_date: Some(end),
                }) if kind == "endDate" => *end >= time_min.date_naive(),
                _ => true,
            }
        }
        _ => false,
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

/// The body that re-creates `original` in the new owner's calendar.
fn copy_body(original: &Value, from_email: &str, to_email: &str, transaction_id: &str) -> Value {
    let mut body = Map::new();
    for field in COPIED_FIELDS {
        if let Some(value) = original.get(*field).filter(|v| !v.is_null()) {
            body.insert((*field).to_string(), value.clone());
        }
    }
    let attendees: Vec<Value> = original
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
        .unwrap_or_default();
    body.insert("attendees".into(), Value::Array(attendees));
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

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        zone: Option<&str>,
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CalendarError> {
        let token = self.token.bearer_token().await?;
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(zone) = zone {
            request = request.header("Prefer", format!("outlook.timezone=\"{zone}\""));
        }
        if let Some(key) = idempotency_key {
            request = with_idempotency_key(request, key)?;
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        execute(request).await
    }

    /// Whether `link` (an `@odata.nextLink`) points at the configured service; the
    /// token is never sent anywhere else.
    fn same_origin(&self, link: &url::Url) -> bool {
        link.scheme() == self.base.scheme()
            && link.host_str() == self.base.host_str()
            && link.port_or_known_default() == self.base.port_or_known_default()
    }

    async fn list(
        &self,
        owner_email: &str,
        time_min: DateTime<Utc>,
    ) -> Result<Vec<CalendarEvent>, CalendarError> {
        let mut url = url_with(&self.base, &["users", owner_email, "events"]);
        let since = time_min.format("%Y-%m-%dT%H:%M:%S").to_string();
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("end/dateTime ge '{since}' or type eq 'seriesMaster'"),
            )
            .append_pair("$top", &self.config.page_size.clamp(1, 1000).to_string())
            .append_pair("$select", LIST_SELECT);
        let mut events = Vec::new();
        let mut next = Some(url);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(events);
            };
            let (status, headers, body) = self
                .send(Method::GET, url.clone(), Some("UTC"), None, None)
                .await?;
            if !status.is_success() {
                return Err(graph_error(status, &headers, &body));
            }
            let page: Page = serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                what: "events page",
            })?;
            events.extend(
                page.value
                    .into_iter()
                    .filter(|item| is_owned_transferable(item, time_min))
                    .map(to_calendar_event),
            );
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

    /// The event in `user`'s calendar, read in `zone`, or `None` if it is not there.
    async fn get_event(
        &self,
        user: &str,
        event_id: &str,
        zone: &str,
        select: Option<&str>,
    ) -> Result<Option<Value>, CalendarError> {
        let mut url = url_with(&self.base, &["users", user, "events", event_id]);
        if let Some(select) = select {
            url.query_pairs_mut().append_pair("$select", select);
        }
        let (status, headers, body) = self.send(Method::GET, url, Some(zone), None, None).await?;
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

    async fn recreate(
        &self,
        event: &CalendarEvent,
        from_email: &str,
        to_email: &str,
        idempotency_key: &str,
    ) -> Result<TransferOutcome, CalendarError> {
        if matches!(event.kind, EventKind::Occurrence | EventKind::Exception) {
            return Err(CalendarError::NotTransferable {
                reason: "an occurrence moves with its series",
            });
        }
        // 1. What the original is now (it may be gone after an earlier attempt).
        let Some(head) = self
            .get_event(
                from_email,
                &event.id,
                "UTC",
                Some("id,type,isOrganizer,isCancelled,originalStartTimeZone"),
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
        // 2. The full original, in its own time zone.
        let zone = read_zone(head.get("originalStartTimeZone").and_then(Value::as_str));
        let Some(original) = self.get_event(from_email, &event.id, &zone, None).await? else {
            return Ok(TransferOutcome::SourceGone);
        };
        // 3. The copy, deduplicated by transactionId.
        let body = copy_body(
            &original,
            from_email,
            to_email,
            &transaction_id(idempotency_key, &event.id),
        );
        let url = url_with(&self.base, &["users", to_email, "events"]);
        let (status, headers, response) = self
            .send(
                Method::POST,
                url,
                Some(&zone),
                Some(idempotency_key),
                Some(&body),
            )
            .await?;
        if !status.is_success() {
            return Err(graph_error(status, &headers, &response));
        }
        let created: Value =
            serde_json::from_slice(&response).map_err(|_| CalendarError::Decode {
                what: "created event",
            })?;
        let event_id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or(CalendarError::Decode {
                what: "created event has no id",
            })?
            .to_string();
        // 4. Cancel the original; already gone is done.
        let url = url_with(
            &self.base,
            &["users", from_email, "events", &event.id, "cancel"],
        );
        let comment = serde_json::json!({ "comment": self.config.cancel_comment });
        let (status, headers, response) = self
            .send(
                Method::POST,
                url,
                None,
                Some(idempotency_key),
                Some(&comment),
            )
            .await?;
        if !status.is_success() {
            match graph_error(status, &headers, &response) {
                CalendarError::NotFound => {}
                error => return Err(error),
            }
        }
        Ok(TransferOutcome::Transferred { event_id })
    }

    async fn check(&self, email: &str) -> Result<(), CalendarError> {
        let mut url = url_with(&self.base, &["users", email, "events"]);
        url.query_pairs_mut()
            .append_pair("$top", "1")
            .append_pair("$select", "id");
        let (status, headers, body) = self.send(Method::GET, url, None, None, None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(graph_error(status, &headers, &body))
        }
    }
}

impl CalendarConnector for GraphCalendar {
    fn provider(&self) -> &'static str {
        "microsoft"
    }

    fn check_calendar<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<(), CalendarError>> {
        Box::pin(self.check(email))
    }

    fn list_owned_upcoming<'a>(
        &'a self,
        owner_email: &'a str,
        time_min: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<CalendarEvent>, CalendarError>> {
        Box::pin(self.list(owner_email, time_min))
    }

    fn transfer<'a>(
        &'a self,
        event: &'a CalendarEvent,
        from_email: &'a str,
        to_email: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<TransferOutcome, CalendarError>> {
        Box::pin(self.recreate(event, from_email, to_email, idempotency_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_user_is_not_found_without_the_address() {
        let body = br#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'bob@example.com' is invalid."}}"#;
        let error = graph_error(StatusCode::NOT_FOUND, &HeaderMap::new(), body);
        assert_eq!(error, CalendarError::NotFound);
        let body = br#"{"error":{"code":"ErrorInvalidRequest","message":"bob@example.com"}}"#;
        let error = graph_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert!(!error.to_string().contains("example.com"));
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
            "attendees": [
                {"type": "required", "status": {"response": "accepted"}, "emailAddress": {"address": "a@example.com"}},
                {"type": "optional", "emailAddress": {"address": "NEW@example.com"}},
                {"type": "required", "emailAddress": {"address": "old@example.com"}}
            ]
        });
        let body = copy_body(&original, "old@example.com", "new@example.com", "t");
        assert_eq!(body["subject"], "s");
        assert!(body.get("recurrence").is_none() && body.get("webLink").is_none());
        assert_eq!(body["attendees"].as_array().unwrap().len(), 1);
        assert!(body["attendees"][0].get("status").is_none());
        assert_eq!(body["transactionId"], "t");
    }
}
