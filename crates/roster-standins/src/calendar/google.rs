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
//! - `GET /calendars/{calendarId}/events/{eventId}`: an event or one instance.
//! - `POST /calendars/{calendarId}/events/{eventId}/move?destination=…&sendUpdates=…`:
//!   changes the organizer and calendar, keeps the id. Refuses one instance of a
//!   series (400 `cannotChangeOrganizerOfInstance`), an event the calendar does not
//!   organize (400 `cannotChangeOrganizer`), non-default event types (400 `invalid`);
//!   404 `notFound` for an unknown event or destination calendar.
//! - `PATCH /calendars/{calendarId}/events/{eventId}`: `attendees`, `summary`,
//!   `description`, `location` (other fields are ignored; instances are not
//!   patchable here); only the organizer may (403 `forbiddenForNonOrganizer`).
//!
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
use serde_json::{Value, json};

use super::{
    CalendarSeed, Call, Disposition, DuplicatesReport, Failure, Instance, Notification,
    NotificationKind, Response as AttendeeResponse, Running, SeedError, StandinAttendee,
    StandinControl, StandinEvent, When, admit, bind, lock, loopback, normalize, parse_zone,
    random_id, retry_after_secs, validate_event,
};

/// Route templates, as recorded in the call log and used to set faults.
pub mod routes {
    pub const LIST_EVENTS: &str = "GET /calendars/{calendarId}/events";
    pub const GET_EVENT: &str = "GET /calendars/{calendarId}/events/{eventId}";
    pub const PATCH_EVENT: &str = "PATCH /calendars/{calendarId}/events/{eventId}";
    pub const MOVE_EVENT: &str = "POST /calendars/{calendarId}/events/{eventId}/move";
}

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

    /// The event (and the instance, for an instance id) as `calendar` sees it.
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

#[derive(Debug)]
struct GoogleState {
    control: StandinControl,
    store: Mutex<Store>,
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
        });
        let router = Router::new()
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events"),
                get(list_events),
            )
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events/{{eventId}}"),
                get(get_event).patch(patch_event),
            )
            .route(
                &format!("{BASE_PATH}/calendars/{{calendarId}}/events/{{eventId}}/move"),
                post(move_event),
            )
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

    /// Token, faults, call log and notifications.
    pub fn control(&self) -> &StandinControl {
        &self.state.control
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
    let event = &stored.event;
    let mut body = json!({
        "kind": "calendar#event",
        "etag": format!("\"{}{:04}\"", stored.updated.timestamp_millis(), stored.sequence),
        "id": event.id,
        "status": "confirmed",
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
    }
}

/// Records the call and turns the outcome into a response (or into the deferred
/// injected failure, once the request took effect).
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
) -> Response {
    let call = Call::new("GET", routes::LIST_EVENTS, &headers).owner(&calendar);
    let deferred = match admit(&state.control, &call, &headers, unauthorized, injected).await {
        Ok(deferred) => deferred,
        Err(response) => return response,
    };
    let outcome = list(&state, &calendar, &params).map(|body| (body, Disposition::Read));
    finish(&state, call, outcome, deferred)
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
        if !visible(event, calendar)
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
) -> Response {
    let call = Call::new("GET", routes::GET_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = match admit(&state.control, &call, &headers, unauthorized, injected).await {
        Ok(deferred) => deferred,
        Err(response) => return response,
    };
    let outcome = {
        let store = lock(&state.store);
        match store.resolve(&calendar, &event_id) {
            None => Err(GError::not_found()),
            Some((stored, None)) => Ok((render_event(stored, &calendar), Disposition::Read)),
            Some((stored, Some(instance))) => Ok((
                render_instance(stored, &instance, &calendar),
                Disposition::Read,
            )),
        }
    };
    finish(&state, call, outcome, deferred)
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
) -> Response {
    let mut call = Call::new("POST", routes::MOVE_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    call.destination = param(&params, "destination").map(str::to_string);
    let deferred = match admit(&state.control, &call, &headers, unauthorized, injected).await {
        Ok(deferred) => deferred,
        Err(response) => return response,
    };
    let outcome = move_in_store(&state, &calendar, &event_id, &params);
    finish(&state, call, outcome, deferred)
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
) -> Response {
    let call = Call::new("PATCH", routes::PATCH_EVENT, &headers)
        .owner(&calendar)
        .event(&event_id);
    let deferred = match admit(&state.control, &call, &headers, unauthorized, injected).await {
        Ok(deferred) => deferred,
        Err(response) => return response,
    };
    let outcome = patch_in_store(&state, &calendar, &event_id, &params, &body);
    finish(&state, call, outcome, deferred)
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
    if instance.is_some() {
        return Err(GError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "The stand-in does not patch single instances.",
        ));
    }
    if !stored.event.organized_by(calendar) {
        return Err(GError::new(
            StatusCode::FORBIDDEN,
            "forbiddenForNonOrganizer",
            "Shared properties can only be changed by the organizer of the event.",
        ));
    }
    let id = stored.event.id.clone();
    let new_attendees = patch.get("attendees").map(parse_attendees).transpose()?;
    let stored = store.events.get_mut(&id).ok_or_else(GError::not_found)?;
    let before: Vec<String> = stored
        .event
        .attendees
        .iter()
        .map(|a| a.email.clone())
        .collect();
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
    stored.sequence += 1;
    stored.updated = Utc::now();
    let after: Vec<String> = stored
        .event
        .attendees
        .iter()
        .map(|a| a.email.clone())
        .collect();
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
        event_id: id.clone(),
        sender: event.organizer.clone(),
        recipients: recipients(event, send, &emails),
        comment: None,
    });
    let body = render_event(stored, calendar);
    drop(store);
    for notification in notifications {
        state.control.notify(notification);
    }
    Ok((body, Disposition::Applied))
}
