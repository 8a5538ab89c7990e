//! Google Calendar API v3 client (the real request and response shapes).
//!
//! - List: `GET /calendars/{calendarId}/events?timeMin=…&eventTypes=default&maxResults=…`
//!   following `nextPageToken`. `singleEvents` stays unset, so a recurring event comes
//!   back as one series; items are kept only if `organizer.self` is true, they are not
//!   cancelled and they are not a modified occurrence (`recurringEventId` set: it moves
//!   with its series).
//! - Transfer: `POST /calendars/{src}/events/{eventId}/move?destination={dst}&sendUpdates=…`,
//!   which changes the organizer and keeps the event id. It has no body, and says so
//!   with `Content-Length: 0` (Google's front end answers a POST without one with 411).
//!   Then, if configured, `PATCH /calendars/{dst}/events/{eventId}?sendUpdates=none`
//!   drops the previous owner from the attendees (the leaver's account is going away),
//!   and so does one PATCH per modified instance of a series that still lists them
//!   (`GET /calendars/{dst}/events/{eventId}/instances?timeMin=now`: an exception keeps
//!   its own attendee list when the series' list changes).
//! - Idempotency: Google has no idempotency header (the key is still sent, in
//!   [`IDEMPOTENCY_KEY_HEADER`](super::IDEMPOTENCY_KEY_HEADER), for the stand-in's call
//!   log). A move that fails with a 4xx is followed by a look into the destination
//!   calendar: the event there, organized by the new owner and not cancelled, means an
//!   earlier attempt succeeded. Otherwise a source that is gone or `cancelled` (Google's
//!   `events.get` keeps returning deleted events, with `status: cancelled`, and so does
//!   the calendar an event was moved out of) is [`TransferOutcome::SourceGone`].
//! - Credentials: each request carries the token of the user whose calendar is in the
//!   path (domain-wide delegation, [`super::auth::GoogleDelegatedTokens`]): the move
//!   acts as the previous owner, the clean-up as the new one.
//! - Refusals: 403 usage limits are [`CalendarError::RateLimited`]; other 403 reasons
//!   (`forbiddenForNonOrganizer`, `requiredAccessLevel`…) are
//!   [`CalendarError::Rejected`] with the reason; only credential reasons are
//!   [`CalendarError::Unauthorized`].
//!
//! The primary calendar of a user is addressed by the user's email as `calendarId`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Attendee, Body, CalendarConnector, CalendarError, CalendarEvent, EventKind, TokenSource,
    TransferOutcome, http_client, parse_base_url, send_authorized, status_error,
    with_idempotency_key,
};
use crate::http::{Service, url_with};

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
    "calendarUsageLimitsExceeded",
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

/// A deleted event (or one moved out of this calendar), as `events.get` returns it.
fn is_cancelled(event: &Value) -> bool {
    event.get("status").and_then(Value::as_str) == Some("cancelled")
}

fn lists_attendee(event: &Value, email: &str) -> bool {
    event
        .get("attendees")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|a| is_attendee(a, email)))
}

fn is_attendee(attendee: &Value, email: &str) -> bool {
    attendee
        .get("email")
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

    /// Sends a request on `calendar`'s data, as that user (their delegated token).
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        calendar: &str,
        now: DateTime<Utc>,
        idempotency_key: Option<&str>,
        body: Body<'_>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CalendarError> {
        send_authorized(
            Service::GoogleCalendar,
            self.token.as_ref(),
            calendar,
            now,
            || {
                let mut request = self
                    .http
                    .request(method.clone(), url.clone())
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(key) = idempotency_key {
                    request = with_idempotency_key(request, key)?;
                }
                Ok(body.apply(request))
            },
        )
        .await
    }

    /// The event as `calendar_id` sees it (cancelled ones included, as Google returns
    /// them), or `None` if it is not there or the calendar does not exist.
    async fn get_event(
        &self,
        calendar_id: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Value>, CalendarError> {
        let url = url_with(&self.base, &["calendars", calendar_id, "events", event_id]);
        let (status, headers, body) = match self
            .send(Method::GET, url, calendar_id, now, None, Body::None)
            .await
        {
            Err(CalendarError::NotFound) => return Ok(None),
            other => other?,
        };
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| CalendarError::Decode { what: "event" }),
            404 | 410 => Ok(None),
            _ => Err(google_error(status, &headers, &body)),
        }
    }

    /// PATCHes `event_id` in `calendar` with `body`, telling nobody.
    async fn patch_quietly(
        &self,
        calendar: &str,
        event_id: &str,
        body: &Value,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CalendarError> {
        let mut url = url_with(&self.base, &["calendars", calendar, "events", event_id]);
        url.query_pairs_mut().append_pair("sendUpdates", "none");
        let (status, headers, response) = self
            .send(
                Method::PATCH,
                url,
                calendar,
                now,
                Some(idempotency_key),
                Body::Json(body),
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(google_error(status, &headers, &response))
        }
    }

    /// The modified instances of series `event_id` in `calendar` from `now` on that
    /// still list `email` (unmodified ones follow the series' attendee list).
    async fn instances_listing(
        &self,
        calendar: &str,
        event_id: &str,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, CalendarError> {
        let time_min = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut found = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = url_with(
                &self.base,
                &["calendars", calendar, "events", event_id, "instances"],
            );
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("timeMin", &time_min)
                    .append_pair("maxResults", "2500");
                if let Some(token) = &page_token {
                    query.append_pair("pageToken", token);
                }
            }
            let (status, headers, body) = self
                .send(Method::GET, url, calendar, now, None, Body::None)
                .await?;
            if !status.is_success() {
                return Err(google_error(status, &headers, &body));
            }
            let page: Value = serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                what: "instances page",
            })?;
            found.extend(
                page.get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|i| !is_cancelled(i) && lists_attendee(i, email))
                    .cloned(),
            );
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(next) if Some(next) == page_token.as_deref() => {
                    return Err(CalendarError::Decode {
                        what: "repeated page token",
                    });
                }
                Some(next) => page_token = Some(next.to_string()),
                None => return Ok(found),
            }
        }
        Err(CalendarError::Decode {
            what: "too many pages",
        })
    }

    /// Drops the previous owner from the attendees of the moved event, if configured:
    /// from the event (or series) and from every modified instance of a series that
    /// still lists them. Every other attendee is sent back unchanged (all their fields,
    /// so responses survive the PATCH, which replaces the whole list).
    async fn remove_previous_owner(
        &self,
        moved: &Value,
        event_id: &str,
        from_email: &str,
        to_email: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CalendarError> {
        if !self.config.remove_previous_owner {
            return Ok(());
        }
        let without_previous_owner = |event: &Value| -> Value {
            let remaining: Vec<Value> = event
                .get("attendees")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| !is_attendee(a, from_email))
                .cloned()
                .collect();
            serde_json::json!({ "attendees": remaining })
        };
        if lists_attendee(moved, from_email) {
            self.patch_quietly(
                to_email,
                event_id,
                &without_previous_owner(moved),
                idempotency_key,
                now,
            )
            .await?;
        }
        let recurring = moved
            .get("recurrence")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        if !recurring {
            return Ok(());
        }
        for instance in self
            .instances_listing(to_email, event_id, from_email, now)
            .await?
        {
            let Some(instance_id) = instance.get("id").and_then(Value::as_str) else {
                continue;
            };
            self.patch_quietly(
                to_email,
                instance_id,
                &without_previous_owner(&instance),
                &format!("{idempotency_key}/{instance_id}"),
                now,
            )
            .await?;
        }
        Ok(())
    }

    async fn list(
        &self,
        owner_email: &str,
        time_min: DateTime<Utc>,
        now: DateTime<Utc>,
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
            let (status, headers, body) = self
                .send(Method::GET, url, owner_email, now, None, Body::None)
                .await?;
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
        now: DateTime<Utc>,
    ) -> Result<TransferOutcome, CalendarError> {
        let mut url = url_with(
            &self.base,
            &["calendars", from_email, "events", &event.id, "move"],
        );
        url.query_pairs_mut()
            .append_pair("destination", to_email)
            .append_pair("sendUpdates", self.config.send_updates.as_str());
        let (status, headers, body) = self
            .send(
                Method::POST,
                url,
                from_email,
                now,
                Some(idempotency_key),
                Body::Empty,
            )
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
            self.remove_previous_owner(
                &moved,
                &event_id,
                from_email,
                to_email,
                idempotency_key,
                now,
            )
            .await?;
            return Ok(TransferOutcome::Transferred { event_id });
        }
        let error = google_error(status, &headers, &body);
        if error.is_retryable()
            || matches!(
                error,
                CalendarError::Unauthorized { .. } | CalendarError::CredentialsRefused { .. }
            )
        {
            return Err(error);
        }
        // A refusal may mean an earlier attempt already moved it: look in the
        // destination. A cancelled copy there (the new owner deleted it) does not count.
        if let Some(found) = self.get_event(to_email, &event.id, now).await?
            && !is_cancelled(&found)
            && organizer_is(&found, to_email)
        {
            self.remove_previous_owner(
                &found,
                &event.id,
                from_email,
                to_email,
                idempotency_key,
                now,
            )
            .await?;
            return Ok(TransferOutcome::AlreadyTransferred {
                event_id: event.id.clone(),
            });
        }
        // Nothing left to move: the event is gone from the source, or deleted there (a
        // cancelled instance of a live series is not: the refusal stands).
        match self.get_event(from_email, &event.id, now).await? {
            None => Ok(TransferOutcome::SourceGone),
            Some(source) if is_cancelled(&source) && source.get("recurringEventId").is_none() => {
                Ok(TransferOutcome::SourceGone)
            }
            Some(_) => Err(error),
        }
    }

    async fn check(&self, email: &str, now: DateTime<Utc>) -> Result<(), CalendarError> {
        let mut url = url_with(&self.base, &["calendars", email, "events"]);
        url.query_pairs_mut()
            .append_pair("maxResults", "1")
            .append_pair("eventTypes", "default");
        let (status, headers, body) = self
            .send(Method::GET, url, email, now, None, Body::None)
            .await?;
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
        Box::pin(self.move_event(event, from_email, to_email, idempotency_key, now))
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
    fn non_credential_403s_are_rejections_with_their_reason() {
        let body = br#"{"error":{"code":403,"message":"Shared properties can only be changed by the organizer of the event.","errors":[{"domain":"calendar","reason":"forbiddenForNonOrganizer","message":"x"}]}}"#;
        let error = google_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        assert_eq!(
            error,
            CalendarError::Rejected {
                status: 403,
                reason: "forbiddenForNonOrganizer".into()
            }
        );
        let body = br#"{"error":{"code":403,"message":"The user has reached the limit","errors":[{"domain":"usageLimits","reason":"calendarUsageLimitsExceeded"}]}}"#;
        let error = google_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        assert_eq!(error.category(), "rate_limited");
        let body = br#"{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}"#;
        let error = google_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        assert_eq!(error, CalendarError::Unauthorized { status: 403 });
    }

    #[test]
    fn cancelled_events_are_recognised() {
        assert!(is_cancelled(
            &serde_json::json!({"id": "a", "status": "cancelled"})
        ));
        assert!(!is_cancelled(
            &serde_json::json!({"id": "a", "status": "confirmed"})
        ));
        assert!(!is_cancelled(&serde_json::json!({"id": "a"})));
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
