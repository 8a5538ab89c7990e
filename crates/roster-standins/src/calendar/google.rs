//! Stand-in for Google Calendar API v3: the routes roster's Google connector uses,
//! under `/calendar/v3`, with the real JSON shapes and error bodies
//! (`{"error":{"code","message","errors":[{"domain","reason","message"}]}}`).
//!
//! - `GET /calendars/{calendarId}/events`: the calendar's events (the ones it
//!   organizes, with `organizer.self: true`, and the ones it is invited to).
//!   `timeMin` filters on the end (exclusive), `timeMax` on the start; `eventTypes`
//!   (repeatable) filters on `eventType`. Without `singleEvents` a series is one item
//!   with `recurrence`, and its modified or cancelled occurrences come as extra items
//!   with `recurringEventId` (as Google does when `showDeleted` and `singleEvents`
//!   are both false); with `singleEvents=true` series are expanded into instances
//!   (ids `{seriesId}_{YYYYMMDDTHHMMSSZ}`). `orderBy=startTime` requires
//!   `singleEvents=true`. Paging by `maxResults` (default 250, at most 2500) and
//!   `pageToken`/`nextPageToken`.
//! - `GET /calendars/{calendarId}/events/{eventId}`: an event or one instance. As
//!   Google does, a deleted event, and an event moved out of this calendar, still come
//!   back, with `status: cancelled`.
//! - `GET /calendars/{calendarId}/events/{eventId}/instances`: the instances of a
//!   series (`timeMin`, `timeMax`, `showDeleted`, paging); cancelled ones only with
//!   `showDeleted=true`.
//! - `POST /calendars/{calendarId}/events/{eventId}/move?destination=…&sendUpdates=…`:
//!   changes the organizer and calendar, keeps the id. Refuses one instance of a
//!   series (400 `cannotChangeOrganizerOfInstance`), an event the calendar does not
//!   organize (400 `cannotChangeOrganizer`), non-default event types (400 `invalid`),
//!   a deleted event (410 `deleted`); 404 `notFound` for an unknown event or
//!   destination calendar.
//! - `PATCH /calendars/{calendarId}/events/{eventId}`: `attendees`, `summary`,
//!   `description`, `location`; on an instance (`{seriesId}_{start}`), `attendees`,
//!   `summary` and `location` make it a modified instance; only the organizer may
//!   (403 `forbiddenForNonOrganizer`).
//! - `DELETE /calendars/{calendarId}/events/{eventId}`: the organizer deletes the
//!   event (it stays readable as `cancelled`); 410 `deleted` the second time.
//! - `POST /token`: Google's OAuth 2.0 token endpoint for service accounts
//!   (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`). The JWT
//!   must be RS256-signed with a key of the service account named by `iss` (the
//!   header's `kid` picks it), `aud` must be this endpoint, `exp` at most an hour after
//!   `iat` and not past, every `scope` must be granted to the account's client id by
//!   domain-wide delegation (else 401 `unauthorized_client`), and `sub` must be a user
//!   with a calendar (else 400 `invalid_grant` "Invalid email or User ID"). The token
//!   it issues works only on `sub`'s own calendar: any other `calendarId` is 404
//!   `notFound`, as a calendar nobody shared with the user. Simplification: the
//!   move's destination calendar is not checked for the caller's access.
//!
//! A POST, PUT or PATCH without `Content-Length` gets Google's front end's 411 page.
//! Calendars exist for the seeded users and every organizer. Notifications follow
//! `sendUpdates` (default `none`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::tokens::{Issued, rsa_key, verified_claims};
use super::{
    CalendarSeed, Call, Disposition, DuplicatesReport, Exception, Failure, Gate, Instance,
    Notification, NotificationKind, Refusal, Response as AttendeeResponse, Running, SeedError,
    StandinAttendee, StandinControl, StandinEvent, When, admit, bearer, bind, lock, loopback,
    normalize, parse_zone, random_id, retry_after_secs, validate_event,
};
use roster_connectors::calendar::auth::{GOOGLE_CALENDAR_SCOPE, JWT_BEARER_GRANT};

/// Route templates, as recorded in the call log and used to set faults.
pub mod routes {
    pub const LIST_EVENTS: &str = "GET /calendars/{calendarId}/events";
    pub const GET_EVENT: &str = "GET /calendars/{calendarId}/events/{eventId}";
    pub const INSTANCES: &str = "GET /calendars/{calendarId}/events/{eventId}/instances";
    pub const PATCH_EVENT: &str = "PATCH /calendars/{calendarId}/events/{eventId}";
    pub const DELETE_EVENT: &str = "DELETE /calendars/{calendarId}/events/{eventId}";
    pub const MOVE_EVENT: &str = "POST /calendars/{calendarId}/events/{eventId}/move";
    /// The token endpoint; the call log's `owner` is the impersonated user (`sub`).
    pub const TOKEN: &str = "POST /token";
}

/// Scopes that let a token read and change events.
const EVENT_SCOPES: &[&str] = &[
    GOOGLE_CALENDAR_SCOPE,
    "https://www.googleapis.com/auth/calendar.events",
];

/// Path prefix of the API (the part of the base URL after the host).
pub const BASE_PATH: &str = "/calendar/v3";

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuv0123456789";

#[derive(Debug)]
struct Stored {
    event: StandinEvent,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    sequence: u32,
    creator: String,
    /// Deleted by its organizer: still readable, as `cancelled`.
    deleted: bool,
    /// Calendars (lower-cased) the event was moved out of: they read it as `cancelled`.
    left: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Store {
    users: BTreeSet<String>,
    events: BTreeMap<String, Stored>,
    /// Event ids of applied moves, in order.
    moves: Vec<String>,
}

impl Store {
    fn has_calendar(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        self.users.contains(&email)
            || self
                .events
                .values()
                .any(|s| s.event.organizer.eq_ignore_ascii_case(&email))
    }

    /// The event (and the instance, for an instance id) as `calendar` sees it, and
    /// whether it is cancelled for that calendar (deleted, or moved out of it).
    fn lookup(&self, calendar: &str, id: &str) -> Option<(&Stored, Option<Instance>, bool)> {
        if let Some((stored, instance)) = self.resolve(calendar, id) {
            return Some((stored, instance, stored.deleted));
        }
        let stored = self.events.get(id)?;
        stored
            .left
            .contains(&calendar.to_ascii_lowercase())
            .then_some((stored, None, true))
    }

    /// The live event (and the instance, for an instance id) as `calendar` sees it.
    fn resolve(&self, calendar: &str, id: &str) -> Option<(&Stored, Option<Instance>)> {
        let (stored, instance) = match self.events.get(id) {
            Some(stored) => (stored, None),
            None => {
                let (series, suffix) = id.rsplit_once('_')?;
                let stored = self.events.get(series)?;
                stored.event.recurrence.as_ref()?;
                let instance = stored
                    .event
                    .instances()
                    .into_iter()
                    .find(|i| instance_suffix(&i.original_start) == suffix)?;
                (stored, Some(instance))
            }
        };
        visible(&stored.event, calendar).then_some((stored, instance))
    }
}

fn visible(event: &StandinEvent, calendar: &str) -> bool {
    event.organized_by(calendar) || event.has_attendee(calendar)
}

/// What a token grants: the impersonated user (none: the service account itself) and
/// the scopes.
#[derive(Clone, Debug)]
struct Grant {
    subject: Option<String>,
    scopes: Vec<String>,
}

/// A service account: its client id (what domain-wide delegation is granted to), its
/// keys' public halves by key id, and the delegated scopes.
#[derive(Debug, Default)]
struct Account {
    client_id: String,
    keys: BTreeMap<String, String>,
    delegated_scopes: Vec<String>,
}

#[derive(Debug)]
struct GoogleState {
    control: StandinControl,
    store: Mutex<Store>,
    accounts: Mutex<BTreeMap<String, Account>>,
    tokens: Issued<Grant>,
    token_uri: String,
}

/// A running Google Calendar v3 stand-in. Stops when dropped.
#[derive(Debug)]
pub struct GoogleCalendarStandin {
    state: Arc<GoogleState>,
    base_url: String,
    _running: Running,
}

impl GoogleCalendarStandin {
    /// Starts on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(loopback()).await
    }

    /// Starts on `addr` (e.g. a fixed port for the demo).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = bind(addr).await?;
        let local = listener.local_addr()?;
        let state = Arc::new(GoogleState {
            control: StandinControl::default(),
            store: Mutex::new(Store::default()),
            accounts: Mutex::default(),
            tokens: Issued::default(),
            token_uri: format!("http://{local}/token"),
        });
        let router = Router::new()
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events"),
                get(list_events),
            )
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events/{{eventId}}"),
                get(get_event).patch(patch_event).delete(delete_event),
            )
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events/{{eventId}}/instances"),
                get(list_instances),
            )
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events/{{eventId}}/move"),
                post(move_event),
            )
            .route("/token", post(token))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "notFound", "Not Found") })
            .with_state(state.clone());
        Ok(GoogleCalendarStandin {
            state,
            base_url: format!("http://{local}{BASE_PATH}"),
            _running: Running::spawn(listener, router),
        })
    }

    /// The URL to configure as the connector's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Clock, faults, call log and notifications.
    pub fn control(&self) -> &StandinControl {
        &self.state.control
    }

    /// The token endpoint (the `token_uri` of the keys this stand-in issues).
    pub fn token_uri(&self) -> &str {
        &self.state.token_uri
    }

    /// Issues a new key for the service account `name` (created on first use, with
    /// domain-wide delegation of the calendar scope, as a Workspace administrator
    /// grants it) and returns the JSON key file, as Google's console downloads it.
    pub fn issue_service_account_key(&self, name: &str) -> String {
        let key = rsa_key();
        let client_email = format!("{name}@roster-standin.iam.gserviceaccount.com");
        let key_id = random_id(b"0123456789abcdef", 40);
        let mut accounts = lock(&self.state.accounts);
        let account = accounts
            .entry(client_email.clone())
            .or_insert_with(|| Account {
                client_id: random_id(b"0123456789", 21),
                keys: BTreeMap::new(),
                delegated_scopes: vec![GOOGLE_CALENDAR_SCOPE.to_string()],
            });
        account.keys.insert(key_id.clone(), key.public_pem);
        json!({
            "type": "service_account",
            "project_id": "roster-standin",
            "private_key_id": key_id,
            "private_key": key.private_pem,
            "client_email": client_email,
            "client_id": account.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.state.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{name}%40roster-standin.iam.gserviceaccount.com"
            ),
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }

    /// Deletes a key of a service account (by its `private_key_id`): assertions signed
    /// with it are refused from now on (tokens already issued live on).
    pub fn delete_service_account_key(&self, key_id: &str) {
        for account in lock(&self.state.accounts).values_mut() {
            account.keys.remove(key_id);
        }
    }

    /// Sets the scopes domain-wide delegation grants to service account `name`.
    pub fn set_delegated_scopes(&self, name: &str, scopes: &[&str]) {
        let client_email = format!("{name}@roster-standin.iam.gserviceaccount.com");
        if let Some(account) = lock(&self.state.accounts).get_mut(&client_email) {
            account.delegated_scopes = scopes.iter().map(|s| s.to_string()).collect();
        }
    }

    /// How long the tokens issued from now on live.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.state.tokens.set_lifetime(lifetime);
    }

    /// Revokes every token issued so far.
    pub fn revoke_tokens(&self) {
        self.state.tokens.revoke_all();
    }

    /// The organizer deletes an event (it stays readable as `cancelled`).
    pub fn delete(&self, id: &str) -> bool {
        let mut store = lock(&self.state.store);
        match store.events.get_mut(id) {
            Some(stored) if !stored.deleted => {
                stored.deleted = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the event was deleted.
    pub fn is_deleted(&self, id: &str) -> bool {
        lock(&self.state.store)
            .events
            .get(id)
            .is_some_and(|s| s.deleted)
    }

    /// Gives `email` a calendar.
    pub fn add_user(&self, email: &str) {
        lock(&self.state.store)
            .users
            .insert(email.to_ascii_lowercase());
    }

    /// Stores an event in its organizer's calendar and returns its id (assigned if
    /// empty).
    pub fn insert(&self, event: StandinEvent) -> Result<String, SeedError> {
        validate_event(&event)?;
        let mut event = normalize(event);
        let mut store = lock(&self.state.store);
        if event.id.is_empty() {
            event.id = random_id(ID_ALPHABET, 26);
        }
        if store.events.contains_key(&event.id) {
            return Err(SeedError::invalid("duplicate event id", event.id));
        }
        let now = Utc::now();
        let id = event.id.clone();
        store.events.insert(
            id.clone(),
            Stored {
                creator: event.organizer.clone(),
                event,
                created: now,
                updated: now,
                sequence: 0,
                deleted: false,
                left: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    /// Adds a seed's users and events; returns the events' ids in seed order.
    pub fn seed(&self, seed: &CalendarSeed) -> Result<Vec<String>, SeedError> {
        let events = seed.events()?;
        for user in &seed.users {
            self.add_user(user);
        }
        events.into_iter().map(|e| self.insert(e)).collect()
    }

    /// The stored event (its organizer is its calendar).
    pub fn event(&self, id: &str) -> Option<StandinEvent> {
        lock(&self.state.store)
            .events
            .get(id)
            .map(|s| s.event.clone())
    }

    /// Events `email` organizes.
    pub fn events_organized_by(&self, email: &str) -> Vec<StandinEvent> {
        lock(&self.state.store)
            .events
            .values()
            .filter(|s| s.event.organized_by(email))
            .map(|s| s.event.clone())
            .collect()
    }

    /// The instance ids of a series, in order (empty for an unknown or one-off event).
    pub fn instance_ids(&self, id: &str) -> Vec<String> {
        let store = lock(&self.state.store);
        match store.events.get(id) {
            Some(stored) if stored.event.is_recurring() => stored
                .event
                .instances()
                .iter()
                .map(|i| instance_id(id, &i.original_start))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Moves applied more than once to one event, and changes applied twice under one
    /// idempotency key.
    pub fn duplicates(&self) -> DuplicatesReport {
        let mut report = DuplicatesReport::default();
        let moves = lock(&self.state.store).moves.clone();
        report.count("event moved more than once", moves);
        self.state.control.repeated_keys(&mut report);
        report
    }
}

// ---- rendering -------------------------------------------------------------------

fn instance_suffix(original_start: &When) -> String {
    match original_start {
        When::AllDay(date) => date.format("%Y%m%d").to_string(),
        When::Timed { .. } => original_start
            .instant()
            .format("%Y%m%dT%H%M%SZ")
            .to_string(),
    }
}

fn instance_id(series: &str, original_start: &When) -> String {
    format!("{series}_{}", instance_suffix(original_start))
}

fn time_json(when: &When) -> Value {
    match when {
        When::AllDay(date) => json!({ "date": date.format("%Y-%m-%d").to_string() }),
        When::Timed { zone, .. } => {
            let instant = when.instant();
            let date_time = match parse_zone(zone) {
                Some(tz) => instant
                    .with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                None => instant.to_rfc3339_opts(SecondsFormat::Secs, true),
            };
            json!({ "dateTime": date_time, "timeZone": zone })
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rrule(event: &StandinEvent) -> Option<String> {
    let recurrence = event.recurrence.as_ref()?;
    let mut rule = format!(
        "RRULE:FREQ={}",
        match recurrence.frequency {
            super::Frequency::Daily => "DAILY",
            super::Frequency::Weekly => "WEEKLY",
            super::Frequency::Monthly => "MONTHLY",
        }
    );
    if recurrence.interval > 1 {
        rule.push_str(&format!(";INTERVAL={}", recurrence.interval));
    }
    if let Some(count) = recurrence.count {
        rule.push_str(&format!(";COUNT={count}"));
    }
    if let Some(until) = recurrence.until {
        match event.start {
            When::AllDay(_) => rule.push_str(&format!(";UNTIL={}", until.format("%Y%m%d"))),
            When::Timed { .. } => {
                rule.push_str(&format!(";UNTIL={}T235959Z", until.format("%Y%m%d")))
            }
        }
    }
    if recurrence.frequency == super::Frequency::Weekly && !recurrence.days_of_week.is_empty() {
        let days: Vec<&str> = recurrence
            .days_of_week
            .iter()
            .map(|d| match d {
                chrono::Weekday::Mon => "MO",
                chrono::Weekday::Tue => "TU",
                chrono::Weekday::Wed => "WE",
                chrono::Weekday::Thu => "TH",
                chrono::Weekday::Fri => "FR",
                chrono::Weekday::Sat => "SA",
                chrono::Weekday::Sun => "SU",
            })
            .collect();
        rule.push_str(&format!(";BYDAY={}", days.join(",")));
    }
    Some(rule)
}

fn response_status(response: AttendeeResponse) -> &'static str {
    match response {
        AttendeeResponse::NeedsAction => "needsAction",
        AttendeeResponse::Accepted => "accepted",
        AttendeeResponse::Declined => "declined",
        AttendeeResponse::Tentative => "tentative",
    }
}

fn attendees_json(event: &StandinEvent, viewer: &str) -> Vec<Value> {
    event
        .attendees
        .iter()
        .map(|a| {
            let mut entry = json!({
                "email": a.email,
                "responseStatus": response_status(a.response),
            });
            if a.optional {
                entry["optional"] = json!(true);
            }
            if a.resource {
                entry["resource"] = json!(true);
            }
            if event.organized_by(&a.email) {
                entry["organizer"] = json!(true);
            }
            if a.email.eq_ignore_ascii_case(viewer) {
                entry["self"] = json!(true);
            }
            entry
        })
        .collect()
}

fn organizer_json(event: &StandinEvent, viewer: &str) -> Value {
    let mut organizer = json!({ "email": event.organizer });
    if event.organized_by(viewer) {
        organizer["self"] = json!(true);
    }
    organizer
}

fn render_event(stored: &Stored, viewer: &str) -> Value {
    render_as(stored, viewer, stored.deleted)
}

/// The event as `viewer` reads it; a cancelled one keeps its other fields, as Google's
/// `events.get` returns deleted events.
fn render_as(stored: &Stored, viewer: &str, cancelled: bool) -> Value {
    let event = &stored.event;
    let mut body = json!({
        "kind": "calendar#event",
        "etag": format!("\"{}{:04}\"", stored.updated.timestamp_millis(), stored.sequence),
        "id": event.id,
        "status": if cancelled { "cancelled" } else { "confirmed" },
        "htmlLink": format!("https://www.google.com/calendar/event?eid={}", event.id),
        "created": rfc3339(stored.created),
        "updated": rfc3339(stored.updated),
        "creator": { "email": stored.creator },
        "organizer": organizer_json(event, viewer),
        "start": time_json(&event.start),
        "end": time_json(&event.end),
        "iCalUID": format!("{}@google.com", event.id),
        "sequence": stored.sequence,
        "reminders": { "useDefault": true },
        "eventType": event.event_type,
    });
    if let Some(summary) = &event.summary {
        body["summary"] = json!(summary);
    }
    if let Some(description) = &event.description {
        body["description"] = json!(description);
    }
    if let Some(location) = &event.location {
        body["location"] = json!(location);
    }
    if let Some(rule) = rrule(event) {
        body["recurrence"] = json!([rule]);
    }
    if !event.attendees.is_empty() {
        body["attendees"] = json!(attendees_json(event, viewer));
    }
    body
}

fn render_instance(stored: &Stored, instance: &Instance, viewer: &str) -> Value {
    let event = &stored.event;
    let id = instance_id(&event.id, &instance.original_start);
    if instance.cancelled {
        // Google gives cancelled occurrences with only these fields.
        return json!({
            "kind": "calendar#event",
            "etag": format!("\"{}{:04}\"", stored.updated.timestamp_millis(), stored.sequence),
            "id": id,
            "status": "cancelled",
            "recurringEventId": event.id,
            "originalStartTime": time_json(&instance.original_start),
        });
    }
    let mut body = render_event(stored, viewer);
    let object = body.as_object_mut().expect("an event renders as an object");
    object.remove("recurrence");
    object.insert("id".into(), json!(id));
    object.insert("recurringEventId".into(), json!(event.id));
    object.insert(
        "originalStartTime".into(),
        time_json(&instance.original_start),
    );
    object.insert("start".into(), time_json(&instance.start));
    object.insert("end".into(), time_json(&instance.end));
    match &instance.summary {
        Some(summary) => object.insert("summary".into(), json!(summary)),
        None => object.remove("summary"),
    };
    match &instance.location {
        Some(location) => object.insert("location".into(), json!(location)),
        None => object.remove("location"),
    };
    let attendees = StandinEvent {
        attendees: instance.attendees.clone(),
        ..event.clone()
    };
    if instance.attendees.is_empty() {
        object.remove("attendees");
    } else {
        object.insert(
            "attendees".into(),
            json!(attendees_json(&attendees, viewer)),
        );
    }
    body
}

// ---- errors ----------------------------------------------------------------------

/// A refusal in Google's shape.
#[derive(Debug)]
struct GError {
    status: StatusCode,
    reason: &'static str,
    message: String,
}

impl GError {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> GError {
        GError {
            status,
            reason,
            message: message.into(),
        }
    }

    fn not_found() -> GError {
        GError::new(StatusCode::NOT_FOUND, "notFound", "Not Found")
    }

    fn bad_request(message: impl Into<String>) -> GError {
        GError::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }

    fn deleted() -> GError {
        GError::new(StatusCode::GONE, "deleted", "Resource has been deleted")
    }
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    let domain = match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded" => "usageLimits",
        "cannotChangeOrganizer"
        | "cannotChangeOrganizerOfInstance"
        | "forbiddenForNonOrganizer" => "calendar",
        _ => "global",
    };
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{ "domain": domain, "reason": reason, "message": message }],
        }
    });
    (status, axum::Json(body)).into_response()
}

fn unauthorized() -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

fn injected(failure: Failure) -> Response {
    match failure {
        Failure::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            error(status, "backendError", "Backend Error")
        }
        Failure::RateLimited { retry_after } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
            );
            if let Some(after) = retry_after
                && let Ok(value) = HeaderValue::from_str(&retry_after_secs(after))
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Failure::UsageLimit => error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "Rate Limit Exceeded",
        ),
        Failure::Refused { status, reason } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            error(status, reason, "Refused (injected).")
        }
    }
}

/// Google's front end refusing a POST without `Content-Length` (its HTML page).
fn length_required() -> Response {
    let page = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  \
                <title>Error 411 (Length Required)!!1</title>\n  \
                <p><b>411.</b> <ins>That\u{2019}s an error.</ins>\n  \
                <p>POST requests require a <code>Content-length</code> header.  \
                <ins>That\u{2019}s all we know.</ins>\n";
    (
        StatusCode::LENGTH_REQUIRED,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}

/// The token check of a calendar route: a token this stand-in issued, unexpired, with
/// an event scope, for the user whose calendar is in the path.
fn authorize(state: &GoogleState, headers: &HeaderMap, calendar: &str) -> Result<(), Refusal> {
    let grant = bearer(headers)
        .and_then(|token| state.tokens.grant(token, state.control.now()))
        .ok_or_else(unauthorized)?;
    if !grant
        .scopes
        .iter()
        .any(|s| EVENT_SCOPES.contains(&s.as_str()))
    {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )));
    }
    match grant.subject {
        Some(subject) if subject.eq_ignore_ascii_case(calendar) => Ok(()),
        // Another user's calendar, shared with nobody: Google does not reveal it.
        _ => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Not Found",
        ))),
    }
}

fn gate<'a>(state: &'a GoogleState, headers: &'a HeaderMap, calendar: &'a str) -> Gate<'a> {
    Gate {
        length_required,
        authorize: Box::new(move || authorize(state, headers, calendar)),
        failure: injected,
    }
}

/// Records the call and turns the outcome into a response (or into the deferred
/// injected failure, once the request took effect).
/// The gate every API request passes (faults, length, token, rate limit), for
/// `owner`'s mailbox; `Err` is the response that refuses it.
async fn admitted(
    state: &GoogleState,
    call: &Call,
    headers: &HeaderMap,
    owner: &str,
) -> Result<Option<Failure>, Response> {
    admit(&state.control, call, headers, gate(state, headers, owner)).await
}

fn finish(
    state: &GoogleState,
    call: Call,
    outcome: Result<(Value, Disposition), GError>,
    deferred: Option<Failure>,
) -> Response {
    let (response, disposition) = match outcome {
        Ok((body, disposition)) => (
            (StatusCode::OK, axum::Json(body)).into_response(),
            disposition,
        ),
        Err(refusal) => (
            error(refusal.status, refusal.reason, &refusal.message),
            Disposition::Refused,
        ),
    };
    let response = deferred.map_or(response, injected);
    state
        .control
        .record(call, response.status().as_u16(), disposition);
    response
}

// ---- handlers --------------------------------------------------------------------

type Params = Query<Vec<(String, String)>>;

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_time_param(value: &str, name: &str) -> Result<DateTime<Utc>, GError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| GError::bad_request(format!("Bad Request: invalid {name}")))
}

fn parse_bool(value: &str, name: &str) -> Result<bool, GError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(GError::new(
            StatusCode::BAD_REQUEST,
            "invalidParameter",
            format!("Invalid boolean value for {name}"),
        )),
    }
}

async fn list_events(
    State(state): State<Arc<GoogleState>>,
    Path(calendar): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::LIST_EVENTS, &headers).owner(&calendar);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome = list(&state, &calendar, &params).map(|body| (body, Disposition::Read));
    Ok(finish(&state, call, outcome, deferred))
}

fn list(state: &GoogleState, calendar: &str, params: &[(String, String)]) -> Result<Value, GError> {
    let mut time_min = None;
    let mut time_max = None;
    let mut event_types = Vec::new();
    let mut single_events = false;
    let mut page_token = None;
    let mut max_results = 250usize;
    let mut order_by = None;
    for (key, value) in params {
        match key.as_str() {
            "timeMin" => time_min = Some(parse_time_param(value, "timeMin")?),
            "timeMax" => time_max = Some(parse_time_param(value, "timeMax")?),
            "eventTypes" => event_types.push(value.clone()),
            "singleEvents" => single_events = parse_bool(value, "singleEvents")?,
            "pageToken" => page_token = Some(value.clone()),
            "maxResults" => {
                max_results = value
                    .parse::<usize>()
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| {
                        GError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid",
                            "Invalid value for maxResults",
                        )
                    })?
                    .min(2500);
            }
            "orderBy" => match value.as_str() {
                "startTime" | "updated" => order_by = Some(value.clone()),
                _ => return Err(GError::bad_request("Invalid value for orderBy")),
            },
            _ => {}
        }
    }
    if order_by.as_deref() == Some("startTime") && !single_events {
        return Err(GError::bad_request(
            "The requested ordering is not available for the particular query.",
        ));
    }
    let offset = match &page_token {
        None => 0,
        Some(token) => token
            .strip_prefix("CgY")
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| GError::new(StatusCode::BAD_REQUEST, "invalid", "Invalid page token"))?,
    };

    let store = lock(&state.store);
    if !store.has_calendar(calendar) {
        return Err(GError::not_found());
    }
    let in_window = |start: &When, end: &When| {
        time_min.is_none_or(|t| end.instant() > t) && time_max.is_none_or(|t| start.instant() < t)
    };
    let mut items: Vec<(DateTime<Utc>, String, Value)> = Vec::new();
    for stored in store.events.values() {
        let event = &stored.event;
        if stored.deleted
            || !visible(event, calendar)
            || (!event_types.is_empty() && !event_types.contains(&event.event_type))
        {
            continue;
        }
        if !event.is_recurring() {
            if in_window(&event.start, &event.end) {
                items.push((
                    event.start.instant(),
                    event.id.clone(),
                    render_event(stored, calendar),
                ));
            }
            continue;
        }
        let instances = event.instances();
        if single_events {
            for instance in instances
                .iter()
                .filter(|i| !i.cancelled && in_window(&i.start, &i.end))
            {
                items.push((
                    instance.start.instant(),
                    instance_id(&event.id, &instance.original_start),
                    render_instance(stored, instance, calendar),
                ));
            }
            continue;
        }
        if instances
            .iter()
            .any(|i| !i.cancelled && in_window(&i.start, &i.end))
        {
            items.push((
                event.start.instant(),
                event.id.clone(),
                render_event(stored, calendar),
            ));
        }
        for instance in instances
            .iter()
            .filter(|i| i.modified && in_window(&i.start, &i.end))
        {
            items.push((
                instance.start.instant(),
                instance_id(&event.id, &instance.original_start),
                render_instance(stored, instance, calendar),
            ));
        }
    }
    if order_by.as_deref() == Some("updated") {
        items.sort_by(|a, b| a.1.cmp(&b.1));
    } else {
        items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(offset)
        .take(max_results)
        .map(|(_, _, item)| item)
        .collect();
    let organizes = store
        .events
        .values()
        .any(|s| s.event.organized_by(calendar))
        || store.users.contains(&calendar.to_ascii_lowercase());
    let mut body = json!({
        "kind": "calendar#events",
        "etag": format!("\"p{total:x}\""),
        "summary": calendar,
        "updated": rfc3339(Utc::now()),
        "timeZone": "UTC",
        "accessRole": if organizes { "owner" } else { "reader" },
        "defaultReminders": [],
        "items": page,
    });
    if offset + max_results < total {
        body["nextPageToken"] = json!(format!("CgY{:x}", offset + max_results));
    } else {
        body["nextSyncToken"] = json!(format!("CPj{}", random_id(b"0123456789", 12)));
    }
    Ok(body)
}

async fn get_event(
    State(state): State<Arc<GoogleState>>,
    Path((calendar, event_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::GET_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome = {
        let store = lock(&state.store);
        match store.lookup(&calendar, &event_id) {
            None => Err(GError::not_found()),
            Some((stored, None, cancelled)) => {
                Ok((render_as(stored, &calendar, cancelled), Disposition::Read))
            }
            Some((stored, Some(instance), _)) => Ok((
                render_instance(stored, &instance, &calendar),
                Disposition::Read,
            )),
        }
    };
    Ok(finish(&state, call, outcome, deferred))
}

fn send_updates(params: &[(String, String)]) -> Result<&str, GError> {
    match param(params, "sendUpdates").unwrap_or("none") {
        value @ ("all" | "externalOnly" | "none") => Ok(value),
        _ => Err(GError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid value for: sendUpdates",
        )),
    }
}

fn domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The attendees `sendUpdates` reaches, the organizer excluded.
fn recipients(event: &StandinEvent, send: &str, emails: &[String]) -> Vec<String> {
    let organizer_domain = domain(&event.organizer).to_ascii_lowercase();
    emails
        .iter()
        .filter(|e| !event.organized_by(e))
        .filter(|e| match send {
            "all" => true,
            "externalOnly" => !domain(e).eq_ignore_ascii_case(&organizer_domain),
            _ => false,
        })
        .cloned()
        .collect()
}

async fn move_event(
    State(state): State<Arc<GoogleState>>,
    Path((calendar, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let mut call = Call::new("POST", routes::MOVE_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    call.destination = param(&params, "destination").map(str::to_string);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome = move_in_store(&state, &calendar, &event_id, &params);
    Ok(finish(&state, call, outcome, deferred))
}

fn move_in_store(
    state: &GoogleState,
    calendar: &str,
    event_id: &str,
    params: &[(String, String)],
) -> Result<(Value, Disposition), GError> {
    let destination = param(params, "destination")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            GError::new(
                StatusCode::BAD_REQUEST,
                "required",
                "Required parameter: destination",
            )
        })?;
    let send = send_updates(params)?;
    let mut store = lock(&state.store);
    let (stored, instance) = store
        .resolve(calendar, event_id)
        .ok_or_else(GError::not_found)?;
    if stored.deleted {
        return Err(GError::deleted());
    }
    if instance.is_some() {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "cannotChangeOrganizerOfInstance",
            "Cannot change the organizer of an instance.",
        ));
    }
    if !stored.event.organized_by(calendar) {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "cannotChangeOrganizer",
            "Cannot change the organizer of an event the calendar does not organize.",
        ));
    }
    if stored.event.event_type != "default" {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Only default events can be moved.",
        ));
    }
    let id = stored.event.id.clone();
    if destination.eq_ignore_ascii_case(calendar) {
        let stored = &store.events[&id];
        return Ok((render_event(stored, destination), Disposition::Replayed));
    }
    if !store.has_calendar(destination) {
        return Err(GError::not_found());
    }
    let stored = store.events.get_mut(&id).ok_or_else(GError::not_found)?;
    stored.left.insert(calendar.to_ascii_lowercase());
    stored.left.remove(&destination.to_ascii_lowercase());
    stored.event.organizer = destination.to_string();
    stored.sequence += 1;
    stored.updated = Utc::now();
    let emails: Vec<String> = stored
        .event
        .attendees
        .iter()
        .map(|a| a.email.clone())
        .collect();
    let notification = Notification {
        kind: NotificationKind::Update,
        event_id: id.clone(),
        sender: destination.to_string(),
        recipients: recipients(&stored.event, send, &emails),
        comment: None,
    };
    let body = render_event(stored, destination);
    store.moves.push(id);
    drop(store);
    state.control.notify(notification);
    Ok((body, Disposition::Applied))
}

async fn patch_event(
    State(state): State<Arc<GoogleState>>,
    Path((calendar, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let call = Call::new("PATCH", routes::PATCH_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome = patch_in_store(&state, &calendar, &event_id, &params, &body);
    Ok(finish(&state, call, outcome, deferred))
}

fn parse_attendees(value: &Value) -> Result<Vec<StandinAttendee>, GError> {
    let list = value
        .as_array()
        .ok_or_else(|| GError::new(StatusCode::BAD_REQUEST, "invalid", "Invalid attendees"))?;
    list.iter()
        .map(|a| {
            let email = a
                .get("email")
                .and_then(Value::as_str)
                .filter(|e| super::looks_like_email(e))
                .ok_or_else(|| {
                    GError::new(
                        StatusCode::BAD_REQUEST,
                        "required",
                        "Missing attendee email.",
                    )
                })?;
            let response = match a.get("responseStatus").and_then(Value::as_str) {
                Some("accepted") => AttendeeResponse::Accepted,
                Some("declined") => AttendeeResponse::Declined,
                Some("tentative") => AttendeeResponse::Tentative,
                _ => AttendeeResponse::NeedsAction,
            };
            Ok(StandinAttendee {
                email: email.to_string(),
                optional: a.get("optional").and_then(Value::as_bool) == Some(true),
                resource: a.get("resource").and_then(Value::as_bool) == Some(true),
                response,
            })
        })
        .collect()
}

fn optional_text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

fn patch_in_store(
    state: &GoogleState,
    calendar: &str,
    event_id: &str,
    params: &[(String, String)],
    body: &[u8],
) -> Result<(Value, Disposition), GError> {
    let send = send_updates(params)?;
    let patch: Value = serde_json::from_slice(body)
        .map_err(|_| GError::new(StatusCode::BAD_REQUEST, "parseError", "Parse Error"))?;
    let patch = patch
        .as_object()
        .ok_or_else(|| GError::new(StatusCode::BAD_REQUEST, "parseError", "Parse Error"))?;
    let mut store = lock(&state.store);
    let (stored, instance) = store
        .resolve(calendar, event_id)
        .ok_or_else(GError::not_found)?;
    if stored.deleted {
        return Err(GError::deleted());
    }
    if !stored.event.organized_by(calendar) {
        return Err(GError::new(
            StatusCode::FORBIDDEN,
            "forbiddenForNonOrganizer",
            "Shared properties can only be changed by the organizer of the event.",
        ));
    }
    let id = stored.event.id.clone();
    let emails = |list: &[StandinAttendee]| -> Vec<String> {
        list.iter().map(|a| a.email.clone()).collect()
    };
    let before = emails(
        instance
            .as_ref()
            .map_or(&stored.event.attendees, |i| &i.attendees),
    );
    let original_start = instance.map(|i| i.original_start);
    let new_attendees = patch.get("attendees").map(parse_attendees).transpose()?;
    let stored = store.events.get_mut(&id).ok_or_else(GError::not_found)?;
    match &original_start {
        None => {
            if let Some(attendees) = new_attendees {
                stored.event.attendees = attendees;
            }
            if let Some(value) = patch.get("summary") {
                stored.event.summary = optional_text(value);
            }
            if let Some(value) = patch.get("description") {
                stored.event.description = optional_text(value);
            }
            if let Some(value) = patch.get("location") {
                stored.event.location = optional_text(value);
            }
        }
        Some(original_start) => {
            // An instance: the change makes (or extends) its exception.
            let exceptions = &mut stored.event.exceptions;
            let index = match exceptions
                .iter()
                .position(|e| &e.original_start == original_start)
            {
                Some(index) => index,
                None => {
                    exceptions.push(Exception::of(original_start.clone()));
                    exceptions.len() - 1
                }
            };
            let exception = &mut exceptions[index];
            if let Some(attendees) = new_attendees {
                exception.attendees = Some(attendees);
            }
            if let Some(value) = patch.get("summary") {
                exception.summary = optional_text(value);
            }
            if let Some(value) = patch.get("location") {
                exception.location = optional_text(value);
            }
        }
    }
    stored.sequence += 1;
    stored.updated = Utc::now();
    let instance = original_start.as_ref().and_then(|original| {
        stored
            .event
            .instances()
            .into_iter()
            .find(|i| &i.original_start == original)
    });
    let after = emails(
        instance
            .as_ref()
            .map_or(&stored.event.attendees, |i| &i.attendees),
    );
    let contains = |list: &[String], e: &String| list.iter().any(|x| x.eq_ignore_ascii_case(e));
    let removed: Vec<String> = before
        .iter()
        .filter(|e| !contains(&after, e))
        .cloned()
        .collect();
    let added: Vec<String> = after
        .iter()
        .filter(|e| !contains(&before, e))
        .cloned()
        .collect();
    let kept: Vec<String> = after
        .iter()
        .filter(|e| contains(&before, e))
        .cloned()
        .collect();
    let event = &stored.event;
    let notifications = [
        (NotificationKind::Cancellation, removed),
        (NotificationKind::Invitation, added),
        (NotificationKind::Update, kept),
    ]
    .map(|(kind, emails)| Notification {
        kind,
        event_id: event_id.to_string(),
        sender: event.organizer.clone(),
        recipients: recipients(event, send, &emails),
        comment: None,
    });
    let body = match &instance {
        Some(instance) => render_instance(stored, instance, calendar),
        None => render_event(stored, calendar),
    };
    drop(store);
    for notification in notifications {
        state.control.notify(notification);
    }
    Ok((body, Disposition::Applied))
}

async fn delete_event(
    State(state): State<Arc<GoogleState>>,
    Path((calendar, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("DELETE", routes::DELETE_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome = delete_in_store(&state, &calendar, &event_id, &params);
    let (response, disposition) = match outcome {
        Ok(()) => (StatusCode::NO_CONTENT.into_response(), Disposition::Applied),
        Err(refusal) => (
            error(refusal.status, refusal.reason, &refusal.message),
            Disposition::Refused,
        ),
    };
    let response = deferred.map_or(response, injected);
    state
        .control
        .record(call, response.status().as_u16(), disposition);
    Ok(response)
}

fn delete_in_store(
    state: &GoogleState,
    calendar: &str,
    event_id: &str,
    params: &[(String, String)],
) -> Result<(), GError> {
    let send = send_updates(params)?;
    let mut store = lock(&state.store);
    let (stored, instance, cancelled) = store
        .lookup(calendar, event_id)
        .ok_or_else(GError::not_found)?;
    if cancelled {
        return Err(GError::deleted());
    }
    if instance.is_some() || !stored.event.organized_by(calendar) {
        return Err(GError::new(
            StatusCode::FORBIDDEN,
            "forbiddenForNonOrganizer",
            "The stand-in only deletes whole events, for their organizer.",
        ));
    }
    let id = stored.event.id.clone();
    let stored = store.events.get_mut(&id).ok_or_else(GError::not_found)?;
    stored.deleted = true;
    stored.sequence += 1;
    stored.updated = Utc::now();
    let emails: Vec<String> = stored
        .event
        .attendees
        .iter()
        .map(|a| a.email.clone())
        .collect();
    let notification = Notification {
        kind: NotificationKind::Cancellation,
        event_id: id,
        sender: stored.event.organizer.clone(),
        recipients: recipients(&stored.event, send, &emails),
        comment: None,
    };
    drop(store);
    state.control.notify(notification);
    Ok(())
}

async fn list_instances(
    State(state): State<Arc<GoogleState>>,
    Path((calendar, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::INSTANCES, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &calendar).await?;
    let outcome =
        instances(&state, &calendar, &event_id, &params).map(|body| (body, Disposition::Read));
    Ok(finish(&state, call, outcome, deferred))
}

fn instances(
    state: &GoogleState,
    calendar: &str,
    event_id: &str,
    params: &[(String, String)],
) -> Result<Value, GError> {
    let time = |name: &str| {
        param(params, name)
            .map(|v| parse_time_param(v, name))
            .transpose()
    };
    let (time_min, time_max) = (time("timeMin")?, time("timeMax")?);
    let show_deleted = param(params, "showDeleted")
        .map(|v| parse_bool(v, "showDeleted"))
        .transpose()?
        .unwrap_or(false);
    let max_results = param(params, "maxResults")
        .map(|v| v.parse::<usize>().ok().filter(|m| *m > 0))
        .map(|m| {
            m.ok_or_else(|| {
                GError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid value for maxResults",
                )
            })
        })
        .transpose()?
        .unwrap_or(250)
        .min(2500);
    let offset = match param(params, "pageToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("CgI")
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| GError::new(StatusCode::BAD_REQUEST, "invalid", "Invalid page token"))?,
    };
    let store = lock(&state.store);
    let (stored, instance) = store
        .resolve(calendar, event_id)
        .ok_or_else(GError::not_found)?;
    if stored.deleted || instance.is_some() {
        return Err(GError::not_found());
    }
    let items: Vec<Value> = stored
        .event
        .instances()
        .iter()
        .filter(|i| show_deleted || !i.cancelled)
        .filter(|i| {
            time_min.is_none_or(|t| i.end.instant() > t)
                && time_max.is_none_or(|t| i.start.instant() < t)
        })
        .map(|i| render_instance(stored, i, calendar))
        .collect();
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(max_results).collect();
    let mut body = json!({
        "kind": "calendar#events",
        "summary": calendar,
        "updated": rfc3339(Utc::now()),
        "timeZone": "UTC",
        "accessRole": "owner",
        "items": page,
    });
    if offset + max_results < total {
        body["nextPageToken"] = json!(format!("CgI{:x}", offset + max_results));
    }
    Ok(body)
}

// ---- the token endpoint ----------------------------------------------------------

/// The claims of a service account's assertion, as the endpoint reads them.
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    scope: Option<String>,
    aud: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// An OAuth 2.0 error, as Google's token endpoint sends it.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(state): State<Arc<GoogleState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut call = Call::new("POST", routes::TOKEN, &headers);
    let claims = field("assertion").and_then(|jwt| {
        let payload = jwt.split('.').nth(1)?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice::<AssertionClaims>(&bytes).ok()
    });
    call.owner = claims.as_ref().and_then(|c| c.sub.clone());
    let outcome = if !super::announces_length(call.method, &headers) {
        Err(Box::new(length_required()))
    } else {
        mint(&state, field("grant_type"), field("assertion"))
    };
    let (response, disposition) = match outcome {
        Ok(response) => (response, Disposition::Applied),
        Err(response) => (*response, Disposition::Refused),
    };
    state
        .control
        .record(call, response.status().as_u16(), disposition);
    response
}

fn mint(
    state: &GoogleState,
    grant_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<Response, Refusal> {
    let invalid_grant =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    if grant_type != Some(JWT_BEARER_GRANT) {
        return Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type.",
        )));
    }
    let jwt = assertion.ok_or_else(|| invalid_grant("Invalid JWT: missing assertion."))?;
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|_| invalid_grant("Invalid JWT Signature."))?;
    let unverified: AssertionClaims = {
        use base64::Engine;
        jwt.split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid_grant("Invalid JWT Signature."))?
    };
    let issuer = unverified.iss.unwrap_or_default();
    let (client_id, delegated, claims) = {
        let accounts = lock(&state.accounts);
        let account = accounts
            .get(&issuer)
            .ok_or_else(|| invalid_grant("Invalid JWT Signature."))?;
        // The key the header names, else any key of the account.
        let keys: Vec<&String> = match header.kid.as_deref().and_then(|k| account.keys.get(k)) {
            Some(key) => vec![key],
            None => account.keys.values().collect(),
        };
        let claims: AssertionClaims = keys
            .into_iter()
            .find_map(|public| verified_claims(jwt, public, &[jsonwebtoken::Algorithm::RS256]))
            .ok_or_else(|| invalid_grant("Invalid JWT Signature."))?;
        (
            account.client_id.clone(),
            account.delegated_scopes.clone(),
            claims,
        )
    };
    if claims.aud.as_deref() != Some(state.token_uri.as_str()) {
        return Err(Box::new(invalid_grant(&format!(
            "Invalid JWT: Failed audience check. The right audience is {}",
            state.token_uri
        ))));
    }
    let now = state.control.now().timestamp();
    let timely = match (claims.iat, claims.exp) {
        (Some(iat), Some(exp)) => exp > now && exp > iat && exp - iat <= 3600 && iat <= now + 300,
        _ => false,
    };
    if !timely {
        return Err(Box::new(invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        )));
    }
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        )));
    }
    let subject = claims.sub.filter(|s| !s.is_empty());
    if subject.is_some() && !scopes.iter().all(|s| delegated.contains(s)) {
        // Domain-wide delegation does not cover every scope asked for.
        let _ = client_id;
        return Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        )));
    }
    if let Some(subject) = &subject
        && !lock(&state.store).has_calendar(subject)
    {
        return Err(Box::new(invalid_grant("Invalid email or User ID")));
    }
    let (token, lifetime) =
        state
            .tokens
            .issue("ya29.", Grant { subject, scopes }, state.control.now());
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "access_token": token,
            "expires_in": lifetime.as_secs(),
            "token_type": "Bearer",
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_and_moved_out_events_read_as_cancelled() {
        let mut store = Store::default();
        let event = StandinEvent::at(
            "a@example.com",
            "2030-01-01T09:00:00Z".parse().unwrap(),
            "2030-01-01T10:00:00Z".parse().unwrap(),
        )
        .with_id("e1");
        store.events.insert(
            "e1".into(),
            Stored {
                creator: "a@example.com".into(),
                event,
                created: Utc::now(),
                updated: Utc::now(),
                sequence: 0,
                deleted: false,
                left: BTreeSet::from(["old@example.com".to_string()]),
            },
        );
        let (_, _, cancelled) = store.lookup("a@example.com", "e1").unwrap();
        assert!(!cancelled);
        let (stored, _, cancelled) = store.lookup("OLD@example.com", "e1").unwrap();
        assert!(cancelled);
        assert_eq!(
            render_as(stored, "old@example.com", true)["status"],
            "cancelled"
        );
        assert!(store.lookup("nobody@example.com", "e1").is_none());
        store.events.get_mut("e1").unwrap().deleted = true;
        let (stored, _, cancelled) = store.lookup("a@example.com", "e1").unwrap();
        assert!(cancelled);
        assert_eq!(render_event(stored, "a@example.com")["status"], "cancelled");
    }
}
