//! Google Calendar API v3 client (the real request and response shapes).
//!
//! - List: `GET /calendars/{calendarId}/events?timeMin=…&eventTypes=default&maxResults=…`
//!   following `nextPageToken`. `singleEvents` stays unset, so a recurring event comes
//!   back as one series; items are kept only if `organizer.self` is true, they are not
//!   cancelled and they are not a modified occurrence (`recurringEventId` set: it moves
//!   with its series).
//! - Transfer: `POST /calendars/{src}/events/{eventId}/move?destination={dst}&sendUpdates=…`,
//!   which changes the organizer and keeps the event id. Then, if configured, a
//!   `PATCH /calendars/{dst}/events/{eventId}?sendUpdates=none` drops the previous
//!   owner from the attendees (the leaver's account is going away).
//! - Idempotency: Google has no idempotency header (the key is still sent, in
//!   [`IDEMPOTENCY_KEY_HEADER`](super::IDEMPOTENCY_KEY_HEADER), for the stand-in's call
//!   log). A move that fails with a 4xx is followed by a look into the destination
//!   calendar: the event there, organized by the new owner, means an earlier attempt
//!   succeeded.
//!
//! The primary calendar of a user is addressed by the user's email as `calendarId`;
//! the token must be allowed to act on both calendars (domain-wide delegation).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Attendee, CalendarConnector, CalendarError, CalendarEvent, EventKind, TokenSource,
    TransferOutcome, execute, http_client, parse_base_url, status_error, with_idempotency_key,
};
use crate::http::url_with;

/// The real service's base URL.
pub const GOOGLE_CALENDAR_BASE_URL: &str = "https://www.googleapis.com/calendar/v3";

/// Upper bound on pages followed in one listing (a guard against a looping server).
const MAX_PAGES: usize = 1_000;

/// Google's `sendUpdates`: who is told about the change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SendUpdates {
    /// Every attendee (the default: they see the new organizer).
    #[default]
    All,
    /// Only attendees outside the domain.
    ExternalOnly,
    /// Nobody.
    None,
}

impl SendUpdates {
    pub fn as_str(self) -> &'static str {
        match self {
            SendUpdates::All => "all",
            SendUpdates::ExternalOnly => "externalOnly",
            SendUpdates::None => "none",
        }
    }
}

/// Settings of [`GoogleCalendar`]. `Default` points at the real service.
#[derive(Clone, Debug)]
pub struct GoogleCalendarConfig {
    /// e.g. `https://www.googleapis.com/calendar/v3`, or a stand-in's base URL.
    pub base_url: String,
    /// Bound on each HTTP request, connection included.
    pub timeout: Duration,
    /// `maxResults` per page (Google allows up to 2500).
    pub page_size: u32,
    /// `sendUpdates` on the move.
    pub send_updates: SendUpdates,
    /// After the move, remove the previous owner from the attendees (without
    /// notifying anyone).
    pub remove_previous_owner: bool,
}

impl Default for GoogleCalendarConfig {
    fn default() -> Self {
        GoogleCalendarConfig {
            base_url: GOOGLE_CALENDAR_BASE_URL.to_string(),
            timeout: Duration::from_secs(30),
            page_size: 250,
            send_updates: SendUpdates::All,
            remove_previous_owner: true,
        }
    }
}

/// A Google Calendar v3 client.
#[derive(Clone)]
pub struct GoogleCalendar {
    base: url::Url,
    http: reqwest::Client,
    token: Arc<dyn TokenSource>,
    config: GoogleCalendarConfig,
}

impl std::fmt::Debug for GoogleCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleCalendar")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

// ---- wire shapes (only the fields roster reads) --------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsPage {
    #[serde(default)]
    items: Vec<GEvent>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GEvent {
    id: String,
    status: Option<String>,
    summary: Option<String>,
    organizer: Option<GPerson>,
    #[serde(default)]
    recurrence: Vec<String>,
    recurring_event_id: Option<String>,
    start: Option<GTime>,
    #[serde(default)]
    attendees: Vec<GAttendee>,
    event_type: Option<String>,
}

#[derive(Deserialize)]
struct GPerson {
    #[serde(rename = "self", default)]
    is_self: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GTime {
    date_time: Option<DateTime<chrono::FixedOffset>>,
    date: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct GAttendee {
    email: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    resource: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorInner>,
}

#[derive(Deserialize)]
struct ErrorInner {
    #[serde(default)]
    errors: Vec<ErrorItem>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorItem {
    reason: Option<String>,
}

/// Google's usage-limit reasons, which come with 403 as well as 429.
const RATE_LIMIT_REASONS: &[&str] = &[
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
];

/// The error for a Google failure response: the first `errors[].reason` (or the
/// gRPC-style `status`) is kept as the reason code; the message is dropped.
fn google_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CalendarError {
    let reason = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .and_then(|e| {
            e.errors
                .into_iter()
                .find_map(|item| item.reason)
                .or(e.status)
        });
    let usage_limit = reason
        .as_deref()
        .is_some_and(|r| RATE_LIMIT_REASONS.contains(&r));
    status_error(status.as_u16(), headers, reason.as_deref(), usage_limit)
}

fn to_calendar_event(item: GEvent) -> CalendarEvent {
    let (starts_at, all_day) = match item.start {
        Some(GTime {
            date_time: Some(at),
            ..
        }) => (Some(at.with_timezone(&Utc)), false),
        Some(GTime {
            date: Some(date), ..
        }) => (date.and_hms_opt(0, 0, 0).map(|d| d.and_utc()), true),
        _ => (None, false),
    };
    let kind = if item.recurring_event_id.is_some() {
        EventKind::Exception
    } else if item.recurrence.is_empty() {
        EventKind::Single
    } else {
        EventKind::SeriesMaster
    };
    CalendarEvent {
        id: item.id,
        kind,
        summary_present: item
            .summary
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty()),
        organizer_is_owner: item.organizer.as_ref().is_some_and(|o| o.is_self),
        starts_at,
        all_day,
        attendees: item
            .attendees
            .into_iter()
            .filter_map(|a| {
                Some(Attendee {
                    email: a.email?,
                    optional: a.optional,
                    resource: a.resource,
                })
            })
            .collect(),
    }
}

/// Whether a listed item is one roster transfers: organized by the calendar's owner,
/// not cancelled, a default event, and not a modified occurrence.
fn is_owned_transferable(item: &GEvent) -> bool {
    item.organizer.as_ref().is_some_and(|o| o.is_self)
        && item.status.as_deref() != Some("cancelled")
        && item.recurring_event_id.is_none()
        && item.event_type.as_deref().is_none_or(|t| t == "default")
}

fn organizer_is(event: &Value, email: &str) -> bool {
    event
        .pointer("/organizer/email")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case(email))
}

impl GoogleCalendar {
    pub fn new(
        config: GoogleCalendarConfig,
        token: Arc<dyn TokenSource>,
    ) -> Result<Self, CalendarError> {
        let base = parse_base_url(&config.base_url)?;
        let http = http_client(config.timeout)?;
        Ok(GoogleCalendar {
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
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CalendarError> {
        let token = self.token.bearer_token().await?;
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            request = with_idempotency_key(request, key)?;
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        execute(request).await
    }

    /// The event as `calendar_id` sees it, or `None` if it is not there.
    async fn get_event(
        &self,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<Option<Value>, CalendarError> {
        let url = url_with(&self.base, &["calendars", calendar_id, "events", event_id]);
        let (status, headers, body) = self.send(Method::GET, url, None, None).await?;
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| CalendarError::Decode { what: "event" }),
            404 | 410 => Ok(None),
            _ => Err(google_error(status, &headers, &body)),
        }
    }

    /// Drops the previous owner from the attendees of the moved event, if configured
    /// and present. Every other attendee is sent back unchanged (all their fields, so
    /// responses survive the PATCH, which replaces the whole list).
    async fn remove_previous_owner(
        &self,
        moved: &Value,
        event_id: &str,
        from_email: &str,
        to_email: &str,
        idempotency_key: &str,
    ) -> Result<(), CalendarError> {
        if !self.config.remove_previous_owner {
            return Ok(());
        }
        let Some(attendees) = moved.get("attendees").and_then(Value::as_array) else {
            return Ok(());
        };
        let is_previous_owner = |a: &Value| {
            a.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(from_email))
        };
        if !attendees.iter().any(is_previous_owner) {
            return Ok(());
        }
        let remaining: Vec<Value> = attendees
            .iter()
            .filter(|a| !is_previous_owner(a))
            .cloned()
            .collect();
        let mut url = url_with(&self.base, &["calendars", to_email, "events", event_id]);
        url.query_pairs_mut().append_pair("sendUpdates", "none");
        let body = serde_json::json!({ "attendees": remaining });
        let (status, headers, response) = self
            .send(Method::PATCH, url, Some(idempotency_key), Some(&body))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(google_error(status, &headers, &response))
        }
    }

    async fn list(
        &self,
        owner_email: &str,
        time_min: DateTime<Utc>,
    ) -> Result<Vec<CalendarEvent>, CalendarError> {
        let time_min = time_min.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let page_size = self.config.page_size.clamp(1, 2500).to_string();
        let mut events = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = url_with(&self.base, &["calendars", owner_email, "events"]);
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("timeMin", &time_min)
                    .append_pair("eventTypes", "default")
                    .append_pair("maxResults", &page_size);
                if let Some(token) = &page_token {
                    query.append_pair("pageToken", token);
                }
            }
            let (status, headers, body) = self.send(Method::GET, url, None, None).await?;
            if !status.is_success() {
                return Err(google_error(status, &headers, &body));
            }
            let page: EventsPage =
                serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                    what: "events page",
                })?;
            events.extend(
                page.items
                    .into_iter()
                    .filter(is_owned_transferable)
                    .map(to_calendar_event),
            );
            match page.next_page_token {
                Some(next) if Some(&next) == page_token.as_ref() => {
                    return Err(CalendarError::Decode {
                        what: "repeated page token",
                    });
                }
                Some(next) => page_token = Some(next),
                None => return Ok(events),
            }
        }
        Err(CalendarError::Decode {
            what: "too many pages",
        })
    }

    async fn move_event(
        &self,
        event: &CalendarEvent,
        from_email: &str,
        to_email: &str,
        idempotency_key: &str,
    ) -> Result<TransferOutcome, CalendarError> {
        let mut url = url_with(
            &self.base,
            &["calendars", from_email, "events", &event.id, "move"],
        );
        url.query_pairs_mut()
            .append_pair("destination", to_email)
            .append_pair("sendUpdates", self.config.send_updates.as_str());
        let (status, headers, body) = self
            .send(Method::POST, url, Some(idempotency_key), None)
            .await?;
        if status.is_success() {
            let moved: Value =
                serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                    what: "moved event",
                })?;
            let event_id = moved
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(&event.id)
                .to_string();
            self.remove_previous_owner(&moved, &event_id, from_email, to_email, idempotency_key)
                .await?;
            return Ok(TransferOutcome::Transferred { event_id });
        }
        let error = google_error(status, &headers, &body);
        if error.is_retryable() || matches!(error, CalendarError::Unauthorized { .. }) {
            return Err(error);
        }
        // A refusal may mean an earlier attempt already moved it: look in the destination.
        if let Some(found) = self.get_event(to_email, &event.id).await?
            && organizer_is(&found, to_email)
        {
            self.remove_previous_owner(&found, &event.id, from_email, to_email, idempotency_key)
                .await?;
            return Ok(TransferOutcome::AlreadyTransferred {
                event_id: event.id.clone(),
            });
        }
        if error == CalendarError::NotFound {
            // Either the event is gone, or the destination calendar does not exist.
            return match self.get_event(from_email, &event.id).await? {
                None => Ok(TransferOutcome::SourceGone),
                Some(_) => Err(CalendarError::NotFound),
            };
        }
        Err(error)
    }

    async fn check(&self, email: &str) -> Result<(), CalendarError> {
        let mut url = url_with(&self.base, &["calendars", email, "events"]);
        url.query_pairs_mut()
            .append_pair("maxResults", "1")
            .append_pair("eventTypes", "default");
        let (status, headers, body) = self.send(Method::GET, url, None, None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(google_error(status, &headers, &body))
        }
    }
}

impl CalendarConnector for GoogleCalendar {
    fn provider(&self) -> &'static str {
        "google"
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
        Box::pin(self.move_event(event, from_email, to_email, idempotency_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_limit_403_is_rate_limited_and_message_is_dropped() {
        let body = br#"{"error":{"code":403,"message":"User alice@example.com over limit","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"alice@example.com"}]}}"#;
        let error = google_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        assert_eq!(error.category(), "rate_limited");
        assert!(!error.to_string().contains('@'));
    }

    #[test]
    fn instance_refusal_keeps_the_reason() {
        let body = br#"{"error":{"code":400,"message":"x","errors":[{"domain":"calendar","reason":"cannotChangeOrganizerOfInstance"}]}}"#;
        let error = google_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(
            error,
            CalendarError::Rejected {
                status: 400,
                reason: "cannotChangeOrganizerOfInstance".into()
            }
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn listing_keeps_only_owned_default_series_and_singles() {
        let page: EventsPage = serde_json::from_str(
            r#"{"items":[
              {"id":"a","organizer":{"email":"o@example.com","self":true},"recurrence":["RRULE:FREQ=WEEKLY;COUNT=3"],"start":{"dateTime":"2030-01-07T09:00:00+01:00"}},
              {"id":"b","organizer":{"email":"x@example.com"}},
              {"id":"a_20300114T080000Z","recurringEventId":"a","status":"cancelled","organizer":{"email":"o@example.com","self":true}},
              {"id":"c","organizer":{"email":"o@example.com","self":true},"eventType":"focusTime"},
              {"id":"d","organizer":{"email":"o@example.com","self":true},"start":{"date":"2030-02-01"},"summary":"t"}
            ]}"#,
        )
        .unwrap();
        let events: Vec<CalendarEvent> = page
            .items
            .into_iter()
            .filter(is_owned_transferable)
            .map(to_calendar_event)
            .collect();
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "d"]);
        assert!(events[0].recurring());
        assert!(events[1].all_day && events[1].summary_present);
    }
}
