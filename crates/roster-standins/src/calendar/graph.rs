//! Stand-in for Microsoft Graph calendars: the routes roster's Graph connector uses,
//! under `/v1.0`, with the real JSON shapes and error bodies
//! (`{"error":{"code","message","innerError"}}`).
//!
//! - `GET /users/{id}/events`: series masters and single instances in the user's
//!   calendar (the ones they organize, `isOrganizer: true`, and attendee copies, which
//!   have their own ids as in Exchange). `$filter` supports `eq ne gt ge lt le`,
//!   `and`, `or` and parentheses on `start/dateTime`, `end/dateTime`, `type`,
//!   `subject`, `isOrganizer`, `isCancelled`, `isAllDay`; `$select`, `$top` (default
//!   10, as Graph) and `$skip`, with an absolute `@odata.nextLink`.
//! - `GET /users/{id}/calendarView?startDateTime=…&endDateTime=…`: occurrences,
//!   exceptions and single instances in the window (`seriesMasterId` on occurrences).
//! - `GET /users/{id}/events/{eventId}`: an event or an occurrence.
//! - `POST /users/{id}/events`: creates an event organized by the user, invites the
//!   attendees. A `transactionId` already used in that mailbox returns the event it
//!   created (201, recorded as replayed) instead of a duplicate.
//! - `GET /users/{id}/events/{eventId}/instances?startDateTime=…&endDateTime=…`: the
//!   occurrences and exceptions of a series in the window (`originalStart` on each);
//!   cancelled occurrences are left out, as Graph leaves them out.
//! - `POST /users/{id}/events/{eventId}/cancel`: the organizer cancels (a series, a
//!   single event, or one occurrence); attendees get the comment; the event leaves
//!   every calendar. 202 Accepted; 404 `ErrorItemNotFound` once gone; 400 for a
//!   non-organizer.
//! - `PATCH /users/{id}/events/{eventId}`: the organizer changes a series or single
//!   event (`subject`, `body`, `location`, `start`, `end`, `recurrence`, `attendees`,
//!   `singleValueExtendedProperties`) or one occurrence (`subject`, `start`, `end`,
//!   `location`, `attendees`: it becomes an exception). Shortening a series' range
//!   drops the occurrences beyond it; its exceptions before the new end stay.
//! - `GET …/events/{eventId}?$expand=singleValueExtendedProperties($filter=id eq '…')`
//!   returns that extended property when the event has it.
//! - Online meetings: an event created with `isOnlineMeeting: true` gets a Teams
//!   meeting of its own (`onlineMeeting.joinUrl`), and its join information is
//!   appended to the body, as Exchange writes it.
//! - `POST /{tenant}/oauth2/v2.0/token`: the Microsoft identity platform's
//!   client-credentials grant (`client_secret`, or a `client_assertion` signed PS256
//!   or RS256 with a registered certificate's key, named by `x5t#S256`, `aud` this
//!   endpoint, `iss` = `sub` = the client id, within its `nbf`/`exp`), scope
//!   `https://graph.microsoft.com/.default`, with Entra's error bodies (`AADSTS…`
//!   codes). The calendar routes accept only the tokens it issued, until they expire,
//!   and only for mailboxes the app's application access policy allows (403
//!   `ErrorAccessDenied` otherwise). A mailbox without a licence answers 404
//!   `MailboxNotEnabledForRESTAPI`; a removed user 404 `ErrorInvalidUser`.
//!
//! A POST, PUT or PATCH without `Content-Length` gets 411.
//! `Prefer: outlook.timezone="…"` (UTC or an IANA name) sets the zone of returned
//! times; the default is UTC. Unknown users get 404 `ErrorInvalidUser` (whose message
//! names the user, as Graph's does). Recurrence patterns: `daily`, `weekly`,
//! `absoluteMonthly`; ranges `numbered`, `endDate`, `noEnd`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc, Weekday,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::tokens::{Issued, IssuedKey, rsa_key, verified_claims};
use super::{
    CalendarSeed, Call, Disposition, DuplicatesReport, Exception, Failure, Frequency, Gate,
    Instance, Notification, NotificationKind, Recurrence, Refusal, Response as AttendeeResponse,
    Running, SeedError, StandinAttendee, StandinControl, StandinEvent, When, admit, bearer, bind,
    lock, looks_like_email, loopback, normalize, parse_zone, random_id, retry_after_secs,
    teams_join_url, validate_event,
};
use roster_connectors::calendar::auth::{GRAPH_DEFAULT_SCOPE, JWT_BEARER_ASSERTION};
use roster_connectors::calendar::stable_digest;

/// Route templates, as recorded in the call log and used to set faults.
pub mod routes {
    pub const LIST_EVENTS: &str = "GET /users/{userId}/events";
    pub const CREATE_EVENT: &str = "POST /users/{userId}/events";
    pub const GET_EVENT: &str = "GET /users/{userId}/events/{eventId}";
    pub const PATCH_EVENT: &str = "PATCH /users/{userId}/events/{eventId}";
    pub const INSTANCES: &str = "GET /users/{userId}/events/{eventId}/instances";
    pub const CANCEL_EVENT: &str = "POST /users/{userId}/events/{eventId}/cancel";
    pub const CALENDAR_VIEW: &str = "GET /users/{userId}/calendarView";
    /// The token endpoint; the call log's `owner` is the client id.
    pub const TOKEN: &str = "POST /{tenant}/oauth2/v2.0/token";
}

/// Path prefix of the API (the part of the base URL after the host).
pub const BASE_PATH: &str = "/v1.0";

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug)]
struct Stored {
    event: StandinEvent,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    change: u32,
    transaction_id: Option<String>,
    /// Single-value extended properties by id.
    extended: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Store {
    users: BTreeSet<String>,
    /// Users removed from the directory (lower-cased): `ErrorInvalidUser`.
    removed: BTreeSet<String>,
    /// Users without a mailbox licence (lower-cased): `MailboxNotEnabledForRESTAPI`.
    unlicensed: BTreeSet<String>,
    events: BTreeMap<String, Stored>,
    /// (mailbox, transactionId) → event id.
    transactions: HashMap<(String, String), String>,
    cancelled: Vec<StandinEvent>,
    /// Content digests of events created through the API (not seeded).
    created: Vec<String>,
}

/// How a mailbox sees an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Perspective {
    Organizer,
    Attendee,
}

/// The id an event has in `mailbox`: the organizer's copy has the event's id,
/// an attendee's copy its own.
fn view_id(event: &StandinEvent, mailbox: &str) -> Option<(String, Perspective)> {
    if event.organized_by(mailbox) {
        Some((event.id.clone(), Perspective::Organizer))
    } else if event.has_attendee(mailbox) {
        let suffix = &stable_digest(&[&mailbox.to_ascii_lowercase(), &event.id])[..12];
        Some((format!("{}-{suffix}", event.id), Perspective::Attendee))
    } else {
        None
    }
}

fn occurrence_suffix(original_start: &When) -> String {
    original_start.instant().format("%Y%m%dT%H%M%S").to_string()
}

impl Store {
    fn has_user(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        !self.removed.contains(&email)
            && (self.users.contains(&email)
                || self.events.values().any(|s| s.event.organized_by(&email)))
    }

    /// The stored event behind `id` in `mailbox`, with the occurrence for an
    /// occurrence id.
    fn resolve(&self, mailbox: &str, id: &str) -> Option<Resolved<'_>> {
        let (base, occurrence) = match id.rsplit_once('_') {
            Some((base, suffix)) => (base, Some(suffix)),
            None => (id, None),
        };
        let (key, stored, view, perspective) = self.events.iter().find_map(|(key, stored)| {
            let (view, perspective) = view_id(&stored.event, mailbox)?;
            (view == base).then_some((key.clone(), stored, view, perspective))
        })?;
        let instance =
            match occurrence {
                None => None,
                Some(suffix) => {
                    stored.event.recurrence.as_ref()?;
                    Some(
                        stored.event.instances().into_iter().find(|i| {
                            !i.cancelled && occurrence_suffix(&i.original_start) == suffix
                        })?,
                    )
                }
            };
        Some(Resolved {
            key,
            stored,
            view,
            perspective,
            instance,
        })
    }
}

struct Resolved<'a> {
    key: String,
    stored: &'a Stored,
    view: String,
    perspective: Perspective,
    instance: Option<Instance>,
}

/// An app registered in the stand-in's tenant.
#[derive(Debug, Default)]
struct App {
    secrets: Vec<String>,
    /// Public keys of the registered certificates, by `x5t#S256` thumbprint.
    certificates: BTreeMap<String, String>,
    /// The application access policy: the mailboxes (lower-cased) the app may reach
    /// (`None`: every mailbox, as without a policy).
    allowed_mailboxes: Option<BTreeSet<String>>,
}

/// What a token grants: the app it was issued to.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
}

#[derive(Debug)]
struct GraphState {
    control: StandinControl,
    store: Mutex<Store>,
    base_url: String,
    /// Where the token endpoint lives (the stand-in's root): the `authorityHost`.
    authority: String,
    tenant_id: String,
    apps: Mutex<BTreeMap<String, App>>,
    tokens: Issued<Grant>,
}

/// A running Microsoft Graph calendar stand-in. Stops when dropped.
#[derive(Debug)]
pub struct GraphCalendarStandin {
    state: Arc<GraphState>,
    _running: Running,
}

impl GraphCalendarStandin {
    /// Starts on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(loopback()).await
    }

    /// Starts on `addr` (e.g. a fixed port for the demo).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = bind(addr).await?;
        let local = listener.local_addr()?;
        let state = Arc::new(GraphState {
            control: StandinControl::default(),
            store: Mutex::new(Store::default()),
            base_url: format!("http://{local}{BASE_PATH}"),
            authority: format!("http://{local}"),
            tenant_id: format!(
                "{}-{}-4{}-a{}-{}",
                random_id(b"0123456789abcdef", 8),
                random_id(b"0123456789abcdef", 4),
                random_id(b"0123456789abcdef", 3),
                random_id(b"0123456789abcdef", 3),
                random_id(b"0123456789abcdef", 12)
            ),
            apps: Mutex::default(),
            tokens: Issued::default(),
        });
        let router = Router::new()
            .route(
                &format!("{BASE_PATH}/users/{{userId}}/events"),
                get(list_events).post(create_event),
            )
            .route(
                &format!("{BASE_PATH}/users/{{userId}}/events/{{eventId}}"),
                get(get_event).patch(patch_event),
            )
            .route(
                &format!("{BASE_PATH}/users/{{userId}}/events/{{eventId}}/instances"),
                get(list_instances),
            )
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
            .route(
                &format!("{BASE_PATH}/users/{{userId}}/events/{{eventId}}/cancel"),
                axum::routing::post(cancel_event),
            )
            .route(
                &format!("{BASE_PATH}/users/{{userId}}/calendarView"),
                get(calendar_view),
            )
            .fallback(|| async {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Resource not found for the segment.",
                )
            })
            .with_state(state.clone());
        Ok(GraphCalendarStandin {
            state,
            _running: Running::spawn(listener, router),
        })
    }

    /// The URL to configure as the connector's base URL.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// Clock, faults, call log and notifications.
    pub fn control(&self) -> &StandinControl {
        &self.state.control
    }

    /// The stand-in's directory (tenant) id.
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant_id
    }

    /// The `authorityHost` of the stand-in's token endpoint.
    pub fn authority_host(&self) -> &str {
        &self.state.authority
    }

    /// Registers an app with the `Calendars.ReadWrite` application permission
    /// (admin-consented) and a client secret; returns the credentials as roster's
    /// Secret holds them (`tenantId`, `clientId`, `clientSecret`, `authorityHost`).
    pub fn register_app(&self) -> String {
        let client_id = new_guid();
        let secret = format!(
            "{}~{}",
            random_id(ID_ALPHABET, 3),
            random_id(ID_ALPHABET, 36)
        );
        lock(&self.state.apps).insert(
            client_id.clone(),
            App {
                secrets: vec![secret.clone()],
                ..App::default()
            },
        );
        json!({
            "tenantId": self.state.tenant_id,
            "clientId": client_id,
            "clientSecret": secret,
            "authorityHost": self.state.authority,
        })
        .to_string()
    }

    /// Registers an app authenticated by a certificate (a self-signed one, whose key
    /// the caller receives); returns the credentials with `clientCertificate` (the
    /// certificate and its private key, PEM).
    pub fn register_app_with_certificate(&self) -> String {
        let client_id = new_guid();
        let IssuedKey {
            private_pem,
            public_pem,
        } = rsa_key();
        let key_pair = rcgen::KeyPair::from_pem(&private_pem).expect("an RSA key rcgen reads");
        let certificate = rcgen::CertificateParams::new(vec!["roster-standin-app".into()])
            .expect("certificate parameters")
            .self_signed(&key_pair)
            .expect("a self-signed certificate");
        let thumbprint =
            roster_connectors::calendar::auth::certificate_thumbprint(certificate.der());
        lock(&self.state.apps).insert(
            client_id.clone(),
            App {
                certificates: BTreeMap::from([(thumbprint, public_pem)]),
                ..App::default()
            },
        );
        json!({
            "tenantId": self.state.tenant_id,
            "clientId": client_id,
            "clientCertificate": format!("{}{}", certificate.pem(), private_pem),
            "authorityHost": self.state.authority,
        })
        .to_string()
    }

    /// Replaces an app's client secrets (a rotation: the old one stops working).
    pub fn rotate_secret(&self, client_id: &str) -> Option<String> {
        let secret = format!(
            "{}~{}",
            random_id(ID_ALPHABET, 3),
            random_id(ID_ALPHABET, 36)
        );
        let mut apps = lock(&self.state.apps);
        let app = apps.get_mut(client_id)?;
        app.secrets = vec![secret.clone()];
        Some(secret)
    }

    /// An application access policy for the app: only these mailboxes.
    pub fn restrict_app_to(&self, client_id: &str, mailboxes: &[&str]) {
        if let Some(app) = lock(&self.state.apps).get_mut(client_id) {
            app.allowed_mailboxes =
                Some(mailboxes.iter().map(|m| m.to_ascii_lowercase()).collect());
        }
    }

    /// Takes the mailbox licence away from `email` (the user stays in the directory).
    pub fn unlicense(&self, email: &str) {
        lock(&self.state.store)
            .unlicensed
            .insert(email.to_ascii_lowercase());
    }

    /// Removes `email` from the directory.
    pub fn remove_user(&self, email: &str) {
        lock(&self.state.store)
            .removed
            .insert(email.to_ascii_lowercase());
    }

    /// How long the tokens issued from now on live.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.state.tokens.set_lifetime(lifetime);
    }

    /// Revokes every token issued so far.
    pub fn revoke_tokens(&self) {
        self.state.tokens.revoke_all();
    }

    /// The extended property `id` of an event, if it has one.
    pub fn extended_property(&self, event_id: &str, id: &str) -> Option<String> {
        lock(&self.state.store)
            .events
            .get(event_id)
            .and_then(|s| s.extended.get(id).cloned())
    }

    /// Gives `email` a mailbox.
    pub fn add_user(&self, email: &str) {
        lock(&self.state.store)
            .users
            .insert(email.to_ascii_lowercase());
    }

    /// Stores an event in its organizer's calendar and returns its id (assigned if
    /// empty). An online meeting gets its join information in the body.
    pub fn insert(&self, event: StandinEvent) -> Result<String, SeedError> {
        validate_event(&event)?;
        let mut event = normalize(event);
        if let Some(url) = &event.online_meeting
            && !event
                .description
                .as_deref()
                .unwrap_or("")
                .contains(url.as_str())
        {
            let body = event.description.take().unwrap_or_default();
            event.description = Some(format!("{body}{}", teams_block(url)));
        }
        let mut store = lock(&self.state.store);
        store_event(&mut store, event, None)
    }

    /// Adds a seed's users and events; returns the events' ids in seed order.
    pub fn seed(&self, seed: &CalendarSeed) -> Result<Vec<String>, SeedError> {
        let events = seed.events()?;
        for user in &seed.users {
            self.add_user(user);
        }
        events.into_iter().map(|e| self.insert(e)).collect()
    }

    /// The stored event (organizer's copy).
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

    /// Events cancelled as a whole, in order.
    pub fn cancelled(&self) -> Vec<StandinEvent> {
        lock(&self.state.store).cancelled.clone()
    }

    /// The `transactionId` an event was created with, if any.
    pub fn transaction_id(&self, id: &str) -> Option<String> {
        lock(&self.state.store)
            .events
            .get(id)
            .and_then(|s| s.transaction_id.clone())
    }

    /// Meetings created more than once (same organizer, title, times, attendees and
    /// recurrence), and changes applied twice under one key or `transactionId`.
    pub fn duplicates(&self) -> DuplicatesReport {
        let mut report = DuplicatesReport::default();
        let created = lock(&self.state.store).created.clone();
        report.count("same meeting created more than once", created);
        self.state.control.repeated_keys(&mut report);
        report
    }
}

fn store_event(
    store: &mut Store,
    mut event: StandinEvent,
    transaction_id: Option<String>,
) -> Result<String, SeedError> {
    if event.id.is_empty() {
        event.id = format!("AAMkA{}", random_id(ID_ALPHABET, 46));
    }
    if store.events.contains_key(&event.id) {
        return Err(SeedError::invalid("duplicate event id", event.id));
    }
    let now = Utc::now();
    let id = event.id.clone();
    store.events.insert(
        id.clone(),
        Stored {
            event,
            created: now,
            modified: now,
            change: 0,
            transaction_id,
            extended: BTreeMap::new(),
        },
    );
    Ok(id)
}

/// A GUID (random).
fn new_guid() -> String {
    let hex = b"0123456789abcdef";
    format!(
        "{}-{}-4{}-8{}-{}",
        random_id(hex, 8),
        random_id(hex, 4),
        random_id(hex, 3),
        random_id(hex, 3),
        random_id(hex, 12)
    )
}

/// The join information Exchange writes into the body of a Teams meeting.
fn teams_block(join_url: &str) -> String {
    let line = "________________________________________________________________________________";
    format!(
        "<div style=\"width:100%\"><span style=\"white-space:nowrap;color:#5F5F5F;opacity:.36\">{line}</span></div>\
         <div class=\"me-email-text\" lang=\"en-US\" style=\"color:#252424;font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif\">\
         <div style=\"margin-top:24px;margin-bottom:20px\"><span style=\"font-size:24px;color:#252424\">Microsoft Teams meeting</span></div>\
         <div style=\"margin-bottom:20px\"><div style=\"margin-top:0px;margin-bottom:0px;font-weight:bold\"><span style=\"font-size:14px;color:#252424\">Join on your computer, mobile app or room device</span></div>\
         <a href=\"{join_url}\" class=\"me-email-headline\" style=\"font-size:14px;text-decoration:underline;color:#6264a7\" target=\"_blank\" rel=\"noreferrer noopener\">Click here to join the meeting</a></div>\
         <div style=\"margin-bottom:20px;margin-top:20px\"><div style=\"margin-bottom:4px\"><span style=\"font-size:14px;color:#252424\">Meeting ID: </span><span style=\"font-size:16px;color:#252424\">{} {} {} {}</span></div></div></div>\
         <div style=\"width:100%\"><span style=\"white-space:nowrap;color:#5F5F5F;opacity:.36\">{line}</span></div>",
        random_id(b"0123456789", 3),
        random_id(b"0123456789", 3),
        random_id(b"0123456789", 3),
        random_id(b"0123456789", 3),
    )
}

// ---- rendering -------------------------------------------------------------------

/// The zone asked for with `Prefer: outlook.timezone="…"`, or UTC.
fn preferred_zone(headers: &HeaderMap) -> String {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let value = p.trim().strip_prefix("outlook.timezone=")?;
            let zone = value.trim().trim_matches('"');
            parse_zone(zone).map(|_| zone.to_string())
        })
        .unwrap_or_else(|| "UTC".to_string())
}

fn graph_date_time(local: NaiveDateTime) -> String {
    format!("{}.0000000", local.format("%Y-%m-%dT%H:%M:%S"))
}

fn time_json(when: &When, zone: &str) -> Value {
    json!({ "dateTime": graph_date_time(when.local_in(zone)), "timeZone": zone })
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

fn recurrence_json(recurrence: &Recurrence, start: &When) -> Value {
    let start_date = start.local_in(start.zone()).date();
    let (kind, days, day_of_month) = match recurrence.frequency {
        Frequency::Daily => ("daily", Vec::new(), 0),
        Frequency::Weekly => (
            "weekly",
            recurrence
                .weekly_days(start_date)
                .into_iter()
                .map(weekday_name)
                .collect(),
            0,
        ),
        Frequency::Monthly => ("absoluteMonthly", Vec::new(), start_date.day()),
    };
    let (range, end_date, count) = match (recurrence.count, recurrence.until) {
        (Some(count), _) => ("numbered", "0001-01-01".to_string(), count),
        (None, Some(until)) => ("endDate", until.to_string(), 0),
        (None, None) => ("noEnd", "0001-01-01".to_string(), 0),
    };
    json!({
        "pattern": {
            "type": kind,
            "interval": recurrence.interval,
            "month": 0,
            "dayOfMonth": day_of_month,
            "daysOfWeek": days,
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": range,
            "startDate": start_date.to_string(),
            "endDate": end_date,
            "recurrenceTimeZone": start.zone(),
            "numberOfOccurrences": count,
        },
    })
}

fn response_name(response: AttendeeResponse) -> &'static str {
    match response {
        AttendeeResponse::NeedsAction => "none",
        AttendeeResponse::Accepted => "accepted",
        AttendeeResponse::Declined => "declined",
        AttendeeResponse::Tentative => "tentativelyAccepted",
    }
}

fn attendee_type(attendee: &StandinAttendee) -> &'static str {
    if attendee.resource {
        "resource"
    } else if attendee.optional {
        "optional"
    } else {
        "required"
    }
}

fn email_json(address: &str) -> Value {
    json!({ "name": address, "address": address })
}

const NEVER: &str = "0001-01-01T00:00:00Z";

struct View<'a> {
    stored: &'a Stored,
    id: String,
    perspective: Perspective,
    mailbox: &'a str,
    /// The master's view id, for an occurrence.
    series_master: Option<String>,
    instance: Option<&'a Instance>,
}

fn render(view: &View<'_>, zone: &str) -> Value {
    let stored = view.stored;
    let event = &stored.event;
    let (start, end, summary, kind) = match view.instance {
        None if event.is_recurring() => (&event.start, &event.end, &event.summary, "seriesMaster"),
        None => (&event.start, &event.end, &event.summary, "singleInstance"),
        Some(instance) => (
            &instance.start,
            &instance.end,
            &instance.summary,
            if instance.modified {
                "exception"
            } else {
                "occurrence"
            },
        ),
    };
    let organizer = view.perspective == Perspective::Organizer;
    let response = if organizer {
        json!({ "response": "organizer", "time": NEVER })
    } else {
        let answer = event
            .attendees
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(view.mailbox))
            .map_or(AttendeeResponse::NeedsAction, |a| a.response);
        json!({ "response": response_name(answer), "time": NEVER })
    };
    let description = event.description.clone().unwrap_or_default();
    let location = view
        .instance
        .map_or(&event.location, |i| &i.location)
        .clone()
        .unwrap_or_default();
    let attendees = view.instance.map_or(&event.attendees, |i| &i.attendees);
    let mut head = json!({
        "@odata.etag": format!("W/\"{}\"", stable_digest(&[&event.id, &stored.change.to_string()])),
        "id": view.id,
        "createdDateTime": stored.created.to_rfc3339_opts(SecondsFormat::Micros, true),
        "lastModifiedDateTime": stored.modified.to_rfc3339_opts(SecondsFormat::Micros, true),
        "changeKey": stable_digest(&[&event.id, &stored.change.to_string(), "ck"]),
        "categories": [],
        "transactionId": if organizer { json!(stored.transaction_id) } else { Value::Null },
        "originalStartTimeZone": event.start.zone(),
        "originalEndTimeZone": event.end.zone(),
        "iCalUId": format!("040000008200E00074C5B7101A82E008{}", stable_digest(&[&event.id]).to_uppercase()),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": true,
        "hasAttachments": false,
        "subject": summary.clone().unwrap_or_default(),
        "bodyPreview": description.chars().take(255).collect::<String>(),
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": start.is_all_day(),
        "isCancelled": false,
        "isOrganizer": organizer,
        "responseRequested": true,
        "seriesMasterId": view.series_master,
        "showAs": "busy",
        "type": kind,
        "webLink": format!("https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item", view.id),
        "onlineMeetingUrl": null,
        "isOnlineMeeting": event.online_meeting.is_some(),
        "onlineMeetingProvider": if event.online_meeting.is_some() { "teamsForBusiness" } else { "unknown" },
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
    });
    let rest = json!({
        "responseStatus": response,
        "body": { "contentType": "html", "content": description },
        "start": time_json(start, zone),
        "end": time_json(end, zone),
        "location": {
            "displayName": location,
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
        },
        "locations": if location.is_empty() { json!([]) } else { json!([{ "displayName": location, "locationType": "default" }]) },
        "recurrence": match (&event.recurrence, view.instance) {
            (Some(recurrence), None) => recurrence_json(recurrence, &event.start),
            _ => Value::Null,
        },
        "attendees": attendees.iter().map(|a| json!({
            "type": attendee_type(a),
            "status": { "response": response_name(a.response), "time": NEVER },
            "emailAddress": email_json(&a.email),
        })).collect::<Vec<_>>(),
        "organizer": { "emailAddress": email_json(&event.organizer) },
        "onlineMeeting": event.online_meeting.as_ref().map(|url| json!({ "joinUrl": url })),
    });
    if let (Some(head), Value::Object(rest)) = (head.as_object_mut(), rest) {
        head.extend(rest);
        if let Some(instance) = view.instance {
            head.insert(
                "originalStart".into(),
                json!(
                    instance
                        .original_start
                        .instant()
                        .to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            );
        }
    }
    head
}

/// Keeps only `$select`ed properties (plus `id` and `@odata.etag`, as Graph does).
fn select(mut item: Value, fields: Option<&[String]>) -> Value {
    if let (Some(fields), Some(object)) = (fields, item.as_object_mut()) {
        object.retain(|k, _| k == "id" || k == "@odata.etag" || fields.iter().any(|f| f == k));
    }
    item
}

// ---- errors ----------------------------------------------------------------------

/// A refusal in Graph's shape.
#[derive(Debug)]
struct GError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> GError {
        GError {
            status,
            code,
            message: message.into(),
        }
    }

    fn item_not_found() -> GError {
        GError::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    fn invalid_user(user: &str) -> GError {
        GError::new(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{user}' is invalid."),
        )
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> GError {
        GError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = stable_digest(&[&Utc::now().to_rfc3339(), &random_id(ID_ALPHABET, 8)]);
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    });
    (status, axum::Json(body)).into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"\", error=\"invalid_token\""),
    );
    response
}

fn injected(failure: Failure) -> Response {
    let (status, code, message, retry_after) = match failure {
        Failure::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let code = match status.as_u16() {
                500 => "InternalServerError",
                502 => "BadGateway",
                503 => "ServiceUnavailable",
                504 => "GatewayTimeout",
                _ => "UnknownError",
            };
            (status, code, "The service is currently unavailable.", None)
        }
        Failure::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
            retry_after,
        ),
        Failure::UsageLimit => (
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            Some(std::time::Duration::from_secs(1)),
        ),
        Failure::Refused { status, reason } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            reason,
            "Refused (injected).",
            None,
        ),
    };
    let mut response = error(status, code, message);
    if let Some(after) = retry_after
        && let Ok(value) = HeaderValue::from_str(&retry_after_secs(after))
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The front end refusing a POST, PUT or PATCH without a length.
fn length_required() -> Response {
    (
        StatusCode::LENGTH_REQUIRED,
        [(header::CONTENT_TYPE, "text/html; charset=us-ascii")],
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n\
         <HTML><HEAD><TITLE>Length Required</TITLE></HEAD>\r\n\
         <BODY><h2>Length Required</h2><hr><p>HTTP Error 411. The request must be chunked or have a content length.</p></BODY></HTML>\r\n",
    )
        .into_response()
}

/// The token check of a calendar route: a token this stand-in issued, unexpired, to an
/// app whose access policy (if any) includes the mailbox in the path; and a mailbox
/// with a licence.
fn authorize(state: &GraphState, headers: &HeaderMap, mailbox: &str) -> Result<(), Refusal> {
    let Some(token) = bearer(headers) else {
        return Err(Box::new(unauthorized("Access token is empty.")));
    };
    let grant = state
        .tokens
        .grant(token, state.control.now())
        .ok_or_else(|| unauthorized("Access token has expired or is not yet valid."))?;
    let mailbox = mailbox.to_ascii_lowercase();
    let store = lock(&state.store);
    if !store.has_user(&mailbox) {
        // The handler answers ErrorInvalidUser.
        return Ok(());
    }
    if store.unlicensed.contains(&mailbox) {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )));
    }
    drop(store);
    let allowed = lock(&state.apps).get(&grant.client_id).is_some_and(|app| {
        app.allowed_mailboxes
            .as_ref()
            .is_none_or(|m| m.contains(&mailbox))
    });
    if !allowed {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
        )));
    }
    Ok(())
}

fn gate<'a>(state: &'a GraphState, headers: &'a HeaderMap, mailbox: &'a str) -> Gate<'a> {
    Gate {
        length_required,
        authorize: Box::new(move || authorize(state, headers, mailbox)),
        failure: injected,
    }
}

/// Records the call and turns the outcome into a response (or into the deferred
/// injected failure, once the request took effect).
/// The gate every API request passes (faults, length, token, rate limit), for
/// `owner`'s mailbox; `Err` is the response that refuses it.
async fn admitted(
    state: &GraphState,
    call: &Call,
    headers: &HeaderMap,
    owner: &str,
) -> Result<Option<Failure>, Response> {
    admit(&state.control, call, headers, gate(state, headers, owner)).await
}

fn finish(
    state: &GraphState,
    call: Call,
    outcome: Result<(StatusCode, Option<Value>, Disposition), GError>,
    deferred: Option<Failure>,
) -> Response {
    let (response, disposition) = match outcome {
        Ok((status, Some(body), disposition)) => {
            ((status, axum::Json(body)).into_response(), disposition)
        }
        Ok((status, None, disposition)) => (status.into_response(), disposition),
        Err(refusal) => (
            error(refusal.status, refusal.code, &refusal.message),
            Disposition::Refused,
        ),
    };
    let response = deferred.map_or(response, injected);
    state
        .control
        .record(call, response.status().as_u16(), disposition);
    response
}

// ---- $filter ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Text(String),
}

#[derive(Debug)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Compare {
        field: String,
        op: String,
        value: Token,
    },
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return Err("unterminated string literal".into()),
                    }
                }
                tokens.push(Token::Text(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '\'' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.primary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("')' expected".into()),
                }
            }
            Some(Token::Word(field)) => {
                let op = match self.next() {
                    Some(Token::Word(op))
                        if ["eq", "ne", "gt", "ge", "lt", "le"]
                            .contains(&op.to_ascii_lowercase().as_str()) =>
                    {
                        op.to_ascii_lowercase()
                    }
                    _ => return Err("comparison operator expected".into()),
                };
                let value = match self.next() {
                    Some(value @ (Token::Text(_) | Token::Word(_))) => value,
                    _ => return Err("value expected".into()),
                };
                Ok(Filter::Compare { field, op, value })
            }
            _ => Err("expression expected".into()),
        }
    }
}

fn parse_filter(input: &str) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        at: 0,
    };
    let filter = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err("unexpected token".into());
    }
    Ok(filter)
}

/// What `$filter` can test on one item.
struct Facts<'a> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    kind: &'a str,
    subject: &'a str,
    is_organizer: bool,
    is_all_day: bool,
}

fn compare<T: PartialOrd>(a: T, op: &str, b: T) -> bool {
    match op {
        "eq" => a == b,
        "ne" => a != b,
        "gt" => a > b,
        "ge" => a >= b,
        "lt" => a < b,
        _ => a <= b,
    }
}

/// `startDateTime` and `endDateTime`, both required (calendarView and instances).
fn time_window(params: &[(String, String)]) -> Result<(DateTime<Utc>, DateTime<Utc>), GError> {
    let window = |name: &str| param(params, name).and_then(parse_instant);
    match (window("startDateTime"), window("endDateTime")) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(GError::bad_request(
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters \
             StartDateTime and EndDateTime.",
        )),
    }
}

fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M"))
                .ok()
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        })
}

fn evaluate(filter: &Filter, facts: &Facts<'_>) -> Result<bool, String> {
    Ok(match filter {
        Filter::Or(a, b) => evaluate(a, facts)? || evaluate(b, facts)?,
        Filter::And(a, b) => evaluate(a, facts)? && evaluate(b, facts)?,
        Filter::Compare { field, op, value } => {
            let text = match value {
                Token::Text(t) => Some(t.as_str()),
                _ => None,
            };
            let boolean = match value {
                Token::Word(w) if w == "true" => Some(true),
                Token::Word(w) if w == "false" => Some(false),
                _ => None,
            };
            let mismatch = || format!("The value for property '{field}' has the wrong type.");
            match field.as_str() {
                "start/dateTime" | "end/dateTime" => {
                    let at = text.and_then(parse_instant).ok_or_else(mismatch)?;
                    let own = if field == "start/dateTime" {
                        facts.start
                    } else {
                        facts.end
                    };
                    compare(own, op, at)
                }
                "type" => compare(facts.kind, op, text.ok_or_else(mismatch)?),
                "subject" => compare(facts.subject, op, text.ok_or_else(mismatch)?),
                "isOrganizer" => compare(facts.is_organizer, op, boolean.ok_or_else(mismatch)?),
                "isCancelled" => compare(false, op, boolean.ok_or_else(mismatch)?),
                "isAllDay" => compare(facts.is_all_day, op, boolean.ok_or_else(mismatch)?),
                _ => {
                    return Err(format!(
                        "Could not find a property named '{field}' on type 'microsoft.graph.event'."
                    ));
                }
            }
        }
    })
}

// ---- handlers --------------------------------------------------------------------

type Params = Query<Vec<(String, String)>>;

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `$top`, `$skip` and `$select`.
struct Paging {
    top: usize,
    skip: usize,
    select: Option<Vec<String>>,
}

fn paging(params: &[(String, String)]) -> Result<Paging, GError> {
    let number = |name: &str, default: usize| -> Result<usize, GError> {
        match param(params, name) {
            None => Ok(default),
            Some(value) => value.parse::<usize>().map_err(|_| {
                GError::bad_request("BadRequest", format!("Invalid value for {name}."))
            }),
        }
    };
    Ok(Paging {
        top: number("$top", 10)?.clamp(1, 1000),
        skip: number("$skip", 0)?,
        select: param(params, "$select").map(|s| {
            s.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        }),
    })
}

/// A page of `items` with Graph's `@odata.context` and `@odata.nextLink`.
fn page(
    state: &GraphState,
    path: &str,
    params: &[(String, String)],
    paging: &Paging,
    items: Vec<Value>,
) -> Value {
    let total = items.len();
    let value: Vec<Value> = items
        .into_iter()
        .skip(paging.skip)
        .take(paging.top)
        .map(|item| select(item, paging.select.as_deref()))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/v1.0/$metadata#users('{}')/events",
            path.split('/').nth(2).unwrap_or("")
        )),
    );
    body.insert("value".into(), json!(value));
    if paging.skip + paging.top < total
        && let Ok(mut next) = url::Url::parse(&format!("{}{path}", state.base_url))
    {
        {
            let mut query = next.query_pairs_mut();
            for (key, value) in params.iter().filter(|(k, _)| k != "$skip") {
                query.append_pair(key, value);
            }
            query.append_pair("$skip", &(paging.skip + paging.top).to_string());
        }
        body.insert("@odata.nextLink".into(), json!(next.as_str()));
    }
    Value::Object(body)
}

fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn list_events(
    State(state): State<Arc<GraphState>>,
    Path(user): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::LIST_EVENTS, &headers).owner(&user);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = list(&state, &user, &params, &zone)
        .map(|body| (StatusCode::OK, Some(body), Disposition::Read));
    Ok(finish(&state, call, outcome, deferred))
}

fn list(
    state: &GraphState,
    user: &str,
    params: &[(String, String)],
    zone: &str,
) -> Result<Value, GError> {
    let paging = paging(params)?;
    let filter = param(params, "$filter")
        .map(parse_filter)
        .transpose()
        .map_err(|e| GError::bad_request("BadRequest", format!("Invalid filter clause: {e}")))?;
    let store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let mut items = Vec::new();
    for stored in store.events.values() {
        let Some((id, perspective)) = view_id(&stored.event, user) else {
            continue;
        };
        let event = &stored.event;
        if let Some(filter) = &filter {
            let facts = Facts {
                start: event.start.instant(),
                end: event.end.instant(),
                kind: if event.is_recurring() {
                    "seriesMaster"
                } else {
                    "singleInstance"
                },
                subject: event.summary.as_deref().unwrap_or(""),
                is_organizer: perspective == Perspective::Organizer,
                is_all_day: event.start.is_all_day(),
            };
            if !evaluate(filter, &facts).map_err(|e| GError::bad_request("BadRequest", e))? {
                continue;
            }
        }
        let view = View {
            stored,
            id,
            perspective,
            mailbox: user,
            series_master: None,
            instance: None,
        };
        items.push((event.start.instant(), view.id.clone(), render(&view, zone)));
    }
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let items = items.into_iter().map(|(_, _, item)| item).collect();
    let path = format!("/users/{}/events", encode_segment(user));
    Ok(page(state, &path, params, &paging, items))
}

async fn calendar_view(
    State(state): State<Arc<GraphState>>,
    Path(user): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::CALENDAR_VIEW, &headers).owner(&user);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = view_window(&state, &user, &params, &zone)
        .map(|body| (StatusCode::OK, Some(body), Disposition::Read));
    Ok(finish(&state, call, outcome, deferred))
}

fn view_window(
    state: &GraphState,
    user: &str,
    params: &[(String, String)],
    zone: &str,
) -> Result<Value, GError> {
    let (from, to) = time_window(params)?;
    let paging = paging(params)?;
    let store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let overlaps = |start: &When, end: &When| start.instant() < to && end.instant() > from;
    let mut items = Vec::new();
    for stored in store.events.values() {
        let Some((id, perspective)) = view_id(&stored.event, user) else {
            continue;
        };
        let event = &stored.event;
        if !event.is_recurring() {
            if overlaps(&event.start, &event.end) {
                let view = View {
                    stored,
                    id,
                    perspective,
                    mailbox: user,
                    series_master: None,
                    instance: None,
                };
                items.push((event.start.instant(), view.id.clone(), render(&view, zone)));
            }
            continue;
        }
        let instances = event.instances();
        for instance in instances
            .iter()
            .filter(|i| !i.cancelled && overlaps(&i.start, &i.end))
        {
            let view = View {
                stored,
                id: format!("{id}_{}", occurrence_suffix(&instance.original_start)),
                perspective,
                mailbox: user,
                series_master: Some(id.clone()),
                instance: Some(instance),
            };
            items.push((
                instance.start.instant(),
                view.id.clone(),
                render(&view, zone),
            ));
        }
    }
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let items = items.into_iter().map(|(_, _, item)| item).collect();
    let path = format!("/users/{}/calendarView", encode_segment(user));
    Ok(page(state, &path, params, &paging, items))
}

async fn get_event(
    State(state): State<Arc<GraphState>>,
    Path((user, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::GET_EVENT, &headers)
        .owner(&user)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = (|| {
        let paging = paging(&params)?;
        let store = lock(&state.store);
        if !store.has_user(&user) {
            return Err(GError::invalid_user(&user));
        }
        let resolved = store
            .resolve(&user, &event_id)
            .ok_or_else(GError::item_not_found)?;
        let series_master = resolved.instance.as_ref().map(|_| resolved.view.clone());
        let view = View {
            stored: resolved.stored,
            id: event_id.clone(),
            perspective: resolved.perspective,
            mailbox: &user,
            series_master,
            instance: resolved.instance.as_ref(),
        };
        let mut body = select(render(&view, &zone), paging.select.as_deref());
        if let Some(wanted) = param(&params, "$expand").and_then(expanded_property)
            && let Some(object) = body.as_object_mut()
        {
            let properties: Vec<Value> = resolved
                .stored
                .extended
                .iter()
                .filter(|(id, _)| id.eq_ignore_ascii_case(&wanted))
                .map(|(id, value)| json!({ "id": id, "value": value }))
                .collect();
            if !properties.is_empty() {
                object.insert("singleValueExtendedProperties".into(), json!(properties));
            }
        }
        Ok((StatusCode::OK, Some(body), Disposition::Read))
    })();
    Ok(finish(&state, call, outcome, deferred))
}

async fn create_event(
    State(state): State<Arc<GraphState>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let mut call = Call::new("POST", routes::CREATE_EVENT, &headers).owner(&user);
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    call.transaction_id = parsed
        .as_ref()
        .ok()
        .and_then(|b| b.get("transactionId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = match parsed {
        Err(_) => Err(GError::bad_request(
            "RequestBodyRead",
            "Invalid JSON in the request body.",
        )),
        Ok(body) => create(&state, &user, &body, &zone),
    };
    if let Ok((_, Some(created), _)) = &outcome {
        call.event_id = created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    Ok(finish(&state, call, outcome, deferred))
}

fn text<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

fn parse_time(body: &Value, field: &str, all_day: bool) -> Result<When, GError> {
    let invalid = || {
        GError::bad_request(
            "ErrorInvalidRequest",
            format!("The {field} of the event is missing or invalid."),
        )
    };
    let date_time = text(body, &format!("/{field}/dateTime")).ok_or_else(invalid)?;
    let zone = text(body, &format!("/{field}/timeZone")).unwrap_or("UTC");
    if parse_zone(zone).is_none() {
        return Err(GError::bad_request(
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not \
             supported by the stand-in (use UTC or an IANA name).",
        ));
    }
    let local =
        NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| invalid())?;
    if all_day {
        if local.time() != NaiveTime::MIN {
            return Err(GError::bad_request(
                "ErrorPropertyValidationFailure",
                "An all-day event must start and end at midnight.",
            ));
        }
        return Ok(When::AllDay(local.date()));
    }
    Ok(When::Timed {
        local,
        zone: zone.to_string(),
    })
}

fn parse_recurrence(value: &Value) -> Result<Option<Recurrence>, GError> {
    if value.is_null() {
        return Ok(None);
    }
    let invalid = |what: &str| {
        GError::bad_request(
            "ErrorInvalidRequest",
            format!("The recurrence is invalid or not supported by the stand-in: {what}."),
        )
    };
    let frequency = match text(value, "/pattern/type") {
        Some("daily") => Frequency::Daily,
        Some("weekly") => Frequency::Weekly,
        Some("absoluteMonthly") => Frequency::Monthly,
        _ => return Err(invalid("pattern type")),
    };
    let interval = value
        .pointer("/pattern/interval")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 99) as u32;
    let days_of_week = value
        .pointer("/pattern/daysOfWeek")
        .and_then(Value::as_array)
        .map(|days| {
            days.iter()
                .map(|d| {
                    d.as_str()
                        .and_then(|d| d.parse::<Weekday>().ok())
                        .ok_or_else(|| invalid("daysOfWeek"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    if frequency == Frequency::Weekly && days_of_week.is_empty() {
        return Err(invalid("weekly needs daysOfWeek"));
    }
    let (count, until) = match text(value, "/range/type") {
        Some("numbered") => {
            let count = value
                .pointer("/range/numberOfOccurrences")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("numberOfOccurrences"))?;
            (Some(count.min(u64::from(u32::MAX)) as u32), None)
        }
        Some("endDate") => {
            let end = text(value, "/range/endDate")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| invalid("endDate"))?;
            (None, Some(end))
        }
        Some("noEnd") => (None, None),
        _ => return Err(invalid("range type")),
    };
    Ok(Some(Recurrence {
        frequency,
        interval,
        count,
        until,
        days_of_week: if frequency == Frequency::Weekly {
            days_of_week
        } else {
            Vec::new()
        },
    }))
}

fn parse_attendees(value: Option<&Value>) -> Result<Vec<StandinAttendee>, GError> {
    let Some(list) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| {
        GError::bad_request("ErrorInvalidRequest", "The attendees property is invalid.")
    })?;
    list.iter()
        .map(|a| {
            let address = text(a, "/emailAddress/address")
                .filter(|e| looks_like_email(e))
                .ok_or_else(|| {
                    GError::bad_request(
                        "ErrorInvalidRecipients",
                        "At least one recipient isn't valid.",
                    )
                })?;
            let kind = text(a, "/type").unwrap_or("required");
            Ok(StandinAttendee {
                email: address.to_string(),
                optional: kind == "optional",
                resource: kind == "resource",
                response: AttendeeResponse::NeedsAction,
            })
        })
        .collect()
}

fn create(
    state: &GraphState,
    user: &str,
    body: &Value,
    zone: &str,
) -> Result<(StatusCode, Option<Value>, Disposition), GError> {
    let mut store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let transaction_id = text(body, "/transactionId").map(str::to_string);
    if let Some(tx) = &transaction_id {
        let key = (user.to_ascii_lowercase(), tx.clone());
        if let Some(id) = store.transactions.get(&key)
            && let Some(stored) = store.events.get(id)
        {
            let view = View {
                stored,
                id: id.clone(),
                perspective: Perspective::Organizer,
                mailbox: user,
                series_master: None,
                instance: None,
            };
            return Ok((
                StatusCode::CREATED,
                Some(render(&view, zone)),
                Disposition::Replayed,
            ));
        }
    }
    let all_day = body.get("isAllDay").and_then(Value::as_bool) == Some(true);
    let start = parse_time(body, "start", all_day)?;
    let end = parse_time(body, "end", all_day)?;
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let event = StandinEvent {
        id: String::new(),
        organizer: user.to_string(),
        summary: non_empty(text(body, "/subject")),
        description: non_empty(text(body, "/body/content")),
        location: non_empty(text(body, "/location/displayName")),
        start,
        end,
        recurrence: parse_recurrence(body.get("recurrence").unwrap_or(&Value::Null))?,
        exceptions: Vec::<Exception>::new(),
        attendees: parse_attendees(body.get("attendees"))?,
        event_type: "default".into(),
        online_meeting: (body.get("isOnlineMeeting").and_then(Value::as_bool) == Some(true))
            .then(teams_join_url),
    };
    let mut event = event;
    if let Some(url) = &event.online_meeting {
        // Exchange appends the new meeting's join information to whatever body came.
        let body = event.description.take().unwrap_or_default();
        event.description = Some(format!("{body}{}", teams_block(url)));
    }
    validate_event(&event)
        .map_err(|e| GError::bad_request("ErrorInvalidRequest", e.to_string()))?;
    let event = normalize(event);
    let fingerprint = event.fingerprint();
    let invited: Vec<String> = event.attendees.iter().map(|a| a.email.clone()).collect();
    let id = store_event(&mut store, event, transaction_id.clone())
        .map_err(|e| GError::bad_request("ErrorInvalidRequest", e.to_string()))?;
    if let Some(tx) = transaction_id {
        store
            .transactions
            .insert((user.to_ascii_lowercase(), tx), id.clone());
    }
    store.created.push(fingerprint);
    let stored = &store.events[&id];
    let view = View {
        stored,
        id: id.clone(),
        perspective: Perspective::Organizer,
        mailbox: user,
        series_master: None,
        instance: None,
    };
    let rendered = render(&view, zone);
    drop(store);
    state.control.notify(Notification {
        kind: NotificationKind::Invitation,
        event_id: id,
        sender: user.to_string(),
        recipients: invited,
        comment: None,
    });
    Ok((StatusCode::CREATED, Some(rendered), Disposition::Applied))
}

async fn cancel_event(
    State(state): State<Arc<GraphState>>,
    Path((user, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let call = Call::new("POST", routes::CANCEL_EVENT, &headers)
        .owner(&user)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let comment = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("comment").and_then(Value::as_str).map(str::to_string))
        .filter(|c| !c.is_empty());
    let outcome = cancel(&state, &user, &event_id, comment);
    Ok(finish(&state, call, outcome, deferred))
}

fn cancel(
    state: &GraphState,
    user: &str,
    event_id: &str,
    comment: Option<String>,
) -> Result<(StatusCode, Option<Value>, Disposition), GError> {
    let mut store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let resolved = store
        .resolve(user, event_id)
        .ok_or_else(GError::item_not_found)?;
    if resolved.perspective != Perspective::Organizer {
        return Err(GError::bad_request(
            "ErrorInvalidRequest",
            "Your request can't be completed. You need to be an organizer to cancel a meeting.",
        ));
    }
    let key = resolved.key.clone();
    let occurrence = resolved.instance.map(|i| i.original_start);
    let recipients: Vec<String> = resolved
        .stored
        .event
        .attendees
        .iter()
        .map(|a| a.email.clone())
        .collect();
    match occurrence {
        Some(original_start) => {
            let stored = store
                .events
                .get_mut(&key)
                .ok_or_else(GError::item_not_found)?;
            stored
                .event
                .exceptions
                .retain(|e| e.original_start != original_start);
            stored
                .event
                .exceptions
                .push(Exception::cancelled(original_start));
            stored.change += 1;
            stored.modified = Utc::now();
        }
        None => {
            let stored = store
                .events
                .remove(&key)
                .ok_or_else(GError::item_not_found)?;
            store.cancelled.push(stored.event);
        }
    }
    drop(store);
    state.control.notify(Notification {
        kind: NotificationKind::Cancellation,
        event_id: event_id.to_string(),
        sender: user.to_string(),
        recipients,
        comment,
    });
    Ok((StatusCode::ACCEPTED, None, Disposition::Applied))
}

/// The property id in `$expand=singleValueExtendedProperties($filter=id eq '…')`.
fn expanded_property(expand: &str) -> Option<String> {
    let inner = expand
        .trim()
        .strip_prefix("singleValueExtendedProperties(")?
        .strip_suffix(')')?;
    let filter = inner.trim().strip_prefix("$filter=")?;
    let value = filter.trim().strip_prefix("id eq ")?.trim();
    let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(value.replace("''", "'"))
}

async fn list_instances(
    State(state): State<Arc<GraphState>>,
    Path((user, event_id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let call = Call::new("GET", routes::INSTANCES, &headers)
        .owner(&user)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = instances(&state, &user, &event_id, &params, &zone)
        .map(|body| (StatusCode::OK, Some(body), Disposition::Read));
    Ok(finish(&state, call, outcome, deferred))
}

fn instances(
    state: &GraphState,
    user: &str,
    event_id: &str,
    params: &[(String, String)],
    zone: &str,
) -> Result<Value, GError> {
    let (from, to) = time_window(params)?;
    let paging = paging(params)?;
    let store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let resolved = store
        .resolve(user, event_id)
        .ok_or_else(GError::item_not_found)?;
    if resolved.instance.is_some() || !resolved.stored.event.is_recurring() {
        return Err(GError::bad_request(
            "ErrorInvalidRequest",
            "The specified event is not a series master.",
        ));
    }
    let instances = resolved.stored.event.instances();
    let items: Vec<Value> = instances
        .iter()
        .filter(|i| !i.cancelled && i.start.instant() < to && i.end.instant() > from)
        .map(|instance| {
            let view = View {
                stored: resolved.stored,
                id: format!(
                    "{}_{}",
                    resolved.view,
                    occurrence_suffix(&instance.original_start)
                ),
                perspective: resolved.perspective,
                mailbox: user,
                series_master: Some(resolved.view.clone()),
                instance: Some(instance),
            };
            render(&view, zone)
        })
        .collect();
    let path = format!(
        "/users/{}/events/{}/instances",
        encode_segment(user),
        encode_segment(event_id)
    );
    Ok(page(state, &path, params, &paging, items))
}

async fn patch_event(
    State(state): State<Arc<GraphState>>,
    Path((user, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let call = Call::new("PATCH", routes::PATCH_EVENT, &headers)
        .owner(&user)
        .event(&event_id);
    let deferred = admitted(&state, &call, &headers, &user).await?;
    let zone = preferred_zone(&headers);
    let outcome = match serde_json::from_slice::<Value>(&body) {
        Ok(patch) if patch.is_object() => update(&state, &user, &event_id, &patch, &zone),
        _ => Err(GError::bad_request(
            "RequestBodyRead",
            "Invalid JSON in the request body.",
        )),
    };
    Ok(finish(&state, call, outcome, deferred))
}

fn update(
    state: &GraphState,
    user: &str,
    event_id: &str,
    patch: &Value,
    zone: &str,
) -> Result<(StatusCode, Option<Value>, Disposition), GError> {
    let mut store = lock(&state.store);
    if !store.has_user(user) {
        return Err(GError::invalid_user(user));
    }
    let resolved = store
        .resolve(user, event_id)
        .ok_or_else(GError::item_not_found)?;
    if resolved.perspective != Perspective::Organizer {
        return Err(GError::new(
            StatusCode::FORBIDDEN,
            "ErrorInvalidRequest",
            "Your request can't be completed. Only the organizer can change this meeting.",
        ));
    }
    let key = resolved.key.clone();
    let view_id = resolved.view.clone();
    let original_start = resolved.instance.map(|i| i.original_start);
    let all_day = resolved.stored.event.start.is_all_day();
    let time = |field: &str| -> Result<Option<When>, GError> {
        patch
            .get(field)
            .filter(|v| !v.is_null())
            .map(|_| parse_time(patch, field, all_day))
            .transpose()
    };
    let (start, end) = (time("start")?, time("end")?);
    let attendees = patch
        .get("attendees")
        .map(|a| parse_attendees(Some(a)))
        .transpose()?;
    let text_at = |pointer: &str| {
        patch
            .pointer(pointer)
            .map(|v| v.as_str().unwrap_or("").to_string())
    };
    let subject = text_at("/subject");
    let location = text_at("/location/displayName");
    let content = text_at("/body/content");
    let recurrence = patch.get("recurrence").map(parse_recurrence).transpose()?;
    let extended: Vec<(String, String)> = patch
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    Some((
                        p.get("id")?.as_str()?.to_string(),
                        p.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let stored = store
        .events
        .get_mut(&key)
        .ok_or_else(GError::item_not_found)?;
    let event = &mut stored.event;
    let changed = match &original_start {
        None => {
            let mut changed = false;
            if let Some(subject) = subject {
                event.summary = Some(subject).filter(|s| !s.is_empty());
                changed = true;
            }
            if let Some(location) = location {
                event.location = Some(location).filter(|s| !s.is_empty());
                changed = true;
            }
            if let Some(content) = content {
                event.description = Some(content).filter(|s| !s.is_empty());
                changed = true;
            }
            if let Some(start) = start {
                event.start = start;
                changed = true;
            }
            if let Some(end) = end {
                event.end = end;
                changed = true;
            }
            if let Some(attendees) = attendees {
                event.attendees = attendees;
                changed = true;
            }
            if let Some(recurrence) = recurrence {
                if event.recurrence.is_none() || recurrence.is_none() {
                    return Err(GError::bad_request(
                        "ErrorInvalidRequest",
                        "The stand-in only changes the recurrence of a series.",
                    ));
                }
                event.recurrence = recurrence;
                changed = true;
            }
            changed
        }
        Some(original_start) => {
            let exceptions = &mut event.exceptions;
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
            if let Some(subject) = subject {
                exception.summary = Some(subject);
            }
            if let Some(location) = location {
                exception.location = Some(location);
            }
            if start.is_some() {
                exception.start = start;
            }
            if end.is_some() {
                exception.end = end;
            }
            if let Some(attendees) = attendees {
                exception.attendees = Some(attendees);
            }
            true
        }
    };
    let event = normalize(event.clone());
    validate_event(&event)
        .map_err(|e| GError::bad_request("ErrorInvalidRequest", e.to_string()))?;
    stored.event = event;
    for (id, value) in extended {
        stored.extended.insert(id, value);
    }
    stored.change += 1;
    stored.modified = Utc::now();
    let instance = original_start.as_ref().and_then(|original| {
        stored
            .event
            .instances()
            .into_iter()
            .find(|i| &i.original_start == original && !i.cancelled)
    });
    let recipients: Vec<String> = instance
        .as_ref()
        .map_or(&stored.event.attendees, |i| &i.attendees)
        .iter()
        .map(|a| a.email.clone())
        .collect();
    let view = View {
        stored,
        id: event_id.to_string(),
        perspective: Perspective::Organizer,
        mailbox: user,
        series_master: instance.as_ref().map(|_| view_id.clone()),
        instance: instance.as_ref(),
    };
    let rendered = render(&view, zone);
    drop(store);
    if changed {
        state.control.notify(Notification {
            kind: NotificationKind::Update,
            event_id: event_id.to_string(),
            sender: user.to_string(),
            recipients,
            comment: None,
        });
    }
    Ok((StatusCode::OK, Some(rendered), Disposition::Applied))
}

// ---- the token endpoint ----------------------------------------------------------

/// The claims of a client assertion, as the endpoint reads them.
#[derive(Deserialize)]
struct AssertionClaims {
    aud: Option<String>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

/// An error of the Microsoft identity platform, as Entra sends it.
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace = new_guid();
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {trace} Timestamp: {now}"),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        })),
    )
        .into_response()
}

async fn token(
    State(state): State<Arc<GraphState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut call = Call::new("POST", routes::TOKEN, &headers);
    call.owner = param(&form, "client_id").map(str::to_string);
    let outcome = if !super::announces_length(call.method, &headers) {
        Err(Box::new(length_required()))
    } else {
        mint(&state, &tenant, &form)
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

fn mint(state: &GraphState, tenant: &str, form: &[(String, String)]) -> Result<Response, Refusal> {
    let field = |name: &str| param(form, name);
    if !tenant.eq_ignore_ascii_case(&state.tenant_id) {
        return Err(Box::new(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            "Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
        )));
    }
    if field("grant_type") != Some("client_credentials") {
        return Err(Box::new(aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )));
    }
    let client_id = field("client_id").unwrap_or("").to_string();
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", state.authority);
    {
        let apps = lock(&state.apps);
        let Some(app) = apps.get(&client_id) else {
            return Err(Box::new(aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                "Application with the given identifier was not found in the directory.",
            )));
        };
        match (field("client_secret"), field("client_assertion")) {
            (Some(secret), None) => {
                if !app.secrets.iter().any(|s| s == secret) {
                    return Err(Box::new(aad_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    )));
                }
            }
            (None, Some(assertion)) => {
                if field("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
                    return Err(Box::new(aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        700010,
                        "Invalid client assertion type.",
                    )));
                }
                check_assertion(state, app, assertion, &client_id, &endpoint)?;
            }
            _ => {
                return Err(Box::new(aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )));
            }
        }
    }
    if field("scope") != Some(GRAPH_DEFAULT_SCOPE) {
        return Err(Box::new(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        )));
    }
    let (token, lifetime) = state.tokens.issue(
        "eyJ0eXAiOiJKV1Qi.",
        Grant { client_id },
        state.control.now(),
    );
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        })),
    )
        .into_response())
}

fn check_assertion(
    state: &GraphState,
    app: &App,
    assertion: &str,
    client_id: &str,
    endpoint: &str,
) -> Result<(), Refusal> {
    let refused = |code: u32, description: &str| {
        aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    };
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| refused(50027, "JWT token is invalid or malformed."))?;
    let public = header
        .x5t_s256
        .as_deref()
        .and_then(|thumbprint| app.certificates.get(thumbprint))
        .ok_or_else(|| {
            refused(
                700027,
                "The certificate with the identifier used to sign the client assertion is not registered on the application.",
            )
        })?;
    let claims: AssertionClaims = verified_claims(
        assertion,
        public,
        &[
            jsonwebtoken::Algorithm::PS256,
            jsonwebtoken::Algorithm::RS256,
        ],
    )
    .ok_or_else(|| refused(700027, "Client assertion failed signature validation."))?;
    if claims.aud.as_deref() != Some(endpoint)
        || claims.iss.as_deref() != Some(client_id)
        || claims.sub.as_deref() != Some(client_id)
        || claims.jti.as_deref().is_none_or(str::is_empty)
    {
        return Err(Box::new(refused(
            700023,
            "Client assertion audience, issuer or subject is invalid.",
        )));
    }
    let now = state.control.now().timestamp();
    let in_time =
        claims.exp.is_some_and(|exp| exp > now) && claims.nbf.is_none_or(|nbf| nbf <= now + 300);
    if !in_time {
        return Err(Box::new(refused(
            700024,
            "Client assertion is not within its valid time range.",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            start: parse_instant("2030-01-07T09:00:00").unwrap(),
            end: parse_instant("2030-01-07T10:00:00").unwrap(),
            kind: "singleInstance",
            subject: "s",
            is_organizer: true,
            is_all_day: false,
        }
    }

    #[test]
    fn filters_parse_and_evaluate() {
        let f = parse_filter("end/dateTime ge '2030-01-07T09:30:00' or type eq 'seriesMaster'")
            .unwrap();
        assert!(evaluate(&f, &facts()).unwrap());
        let f = parse_filter("(start/dateTime ge '2030-01-08T00:00:00') and isOrganizer eq true")
            .unwrap();
        assert!(!evaluate(&f, &facts()).unwrap());
        let f = parse_filter("nope eq 'x'").unwrap();
        assert!(evaluate(&f, &facts()).is_err());
        assert!(parse_filter("type eq").is_err());
        assert!(parse_filter("(type eq 'a'").is_err());
    }

    #[test]
    fn recurrence_round_trips_through_graph_json() {
        let start = When::local(
            NaiveDate::from_ymd_opt(2030, 1, 7)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            "Europe/Berlin",
        )
        .unwrap();
        let recurrence = Recurrence {
            days_of_week: vec![Weekday::Mon, Weekday::Thu],
            interval: 2,
            ..Recurrence::weekly(6)
        };
        let value = recurrence_json(&recurrence, &start);
        assert_eq!(parse_recurrence(&value).unwrap(), Some(recurrence));
    }
}
