//! Calendar connectors: the provider-neutral interface the operator calls to hand a
//! leaver's calendar events to a new owner, and its two implementations on the real
//! wire contracts.
//!
//! - [`google::GoogleCalendar`]: Google Calendar API v3. The organizer changes with
//!   `events.move`, which keeps the event id, so a repeated transfer is recognised by
//!   finding the event already in the destination calendar.
//! - [`graph::GraphCalendar`]: Microsoft Graph. The organizer cannot change, so the
//!   event is re-created in the new owner's calendar (deduplicated by Graph's
//!   `transactionId`, derived from the idempotency key) and the original is cancelled.
//!
//! Pointing roster at the real services is configuration: a base URL and the
//! credentials the services issue ([`auth`]: a Google service-account key, an Entra
//! app's secret or certificate), from which tokens are minted per request target and
//! cached. Tests and the demo point the same code at the stand-ins in the
//! `roster-standins` crate, which mint and check tokens the same way.
//!
//! Contract of every implementation:
//! - only events the owner organizes are listed, one item per recurring series
//!   (occurrences and modified occurrences travel with their series);
//! - a transfer is idempotent: repeating it after success reports
//!   [`TransferOutcome::AlreadyTransferred`] (or [`TransferOutcome::SourceGone`] when
//!   that cannot be told apart from someone else removing the event), never a second copy;
//! - each HTTP request is bounded by the configured timeout; retrying is the caller's
//!   job, guided by [`CalendarError::is_retryable`] and [`CalendarError::retry_after`]
//!   (a request refused with 401 is repeated once with a freshly minted token);
//! - time is the caller's: every call takes `now` (token expiry, what "upcoming" and
//!   "from now on" mean), nothing reads a clock;
//! - a calendar the service will not serve (no such user, no mailbox, no licence) is
//!   [`CalendarError::MailboxUnavailable`]: events nobody can take over, never success;
//! - errors, `Debug` output and logs never contain names, email addresses or event
//!   titles: providers' free-text messages are dropped, only their machine reason
//!   codes are kept.

pub mod auth;
pub mod google;
pub mod graph;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;

use crate::http::{self, TransportFailure, sanitize_reason};

pub use auth::{
    GoogleDelegatedTokens, GoogleServiceAccount, GraphAppTokens, MicrosoftApp, StaticToken,
    TokenSource,
};
pub use google::{GoogleCalendar, GoogleCalendarConfig, SendUpdates};
pub use graph::{GraphCalendar, GraphCalendarConfig};

/// Header carrying the caller's idempotency key on every mutating request (the shared
/// [`crate::http::IDEMPOTENCY_KEY`]). Google has no such header (it ignores it);
/// Graph's own mechanism is `transactionId`. The stand-ins record it in their call logs.
pub use crate::http::IDEMPOTENCY_KEY as IDEMPOTENCY_KEY_HEADER;

/// What kind of item an event is within a recurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A one-off event.
    Single,
    /// A recurring series; transferring it transfers all its occurrences.
    SeriesMaster,
    /// One unmodified occurrence of a series. Never transferred on its own.
    Occurrence,
    /// A modified (or cancelled) occurrence of a series. Never transferred on its own.
    Exception,
}

/// One attendee of an event.
#[derive(Clone, PartialEq, Eq)]
pub struct Attendee {
    pub email: String,
    /// Optional rather than required attendance.
    pub optional: bool,
    /// A room or equipment rather than a person.
    pub resource: bool,
}

impl fmt::Debug for Attendee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attendee")
            .field("email", &"<redacted>")
            .field("optional", &self.optional)
            .field("resource", &self.resource)
            .finish()
    }
}

/// An event the owner organizes, as the connector listed it. Holds no title: only
/// whether there is one. `Debug` redacts the attendees' addresses.
#[derive(Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// The provider's event id (opaque; safe to log).
    pub id: String,
    pub kind: EventKind,
    /// Whether the event has a title (the title itself is never exposed).
    pub summary_present: bool,
    /// Whether the listed calendar's owner is the organizer (always true for items
    /// returned by [`CalendarConnector::list_owned_upcoming`]).
    pub organizer_is_owner: bool,
    /// Start of the event (of the first occurrence for a series). All-day events
    /// start at midnight UTC of their date.
    pub starts_at: Option<DateTime<Utc>>,
    pub all_day: bool,
    /// Attendees as listed (the organizer may be among them).
    pub attendees: Vec<Attendee>,
}

impl CalendarEvent {
    /// Whether this item stands for a recurring series.
    pub fn recurring(&self) -> bool {
        self.kind == EventKind::SeriesMaster
    }

    /// The attendees' addresses, in listed order.
    pub fn attendee_emails(&self) -> impl Iterator<Item = &str> {
        self.attendees.iter().map(|a| a.email.as_str())
    }
}

impl fmt::Debug for CalendarEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendarEvent")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("summary_present", &self.summary_present)
            .field("organizer_is_owner", &self.organizer_is_owner)
            .field("starts_at", &self.starts_at)
            .field("all_day", &self.all_day)
            .field("attendees", &self.attendees.len())
            .finish()
    }
}

/// How a transfer ended. Every variant is a success for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The new owner now organizes the event; `event_id` is its id there (Google keeps
    /// the id, Graph's copy has a new one).
    Transferred { event_id: String },
    /// An earlier attempt had already transferred it (found in the new owner's
    /// calendar, organized by them).
    AlreadyTransferred { event_id: String },
    /// The event is gone from the old owner's calendar and the connector cannot find
    /// a transferred copy: an earlier attempt completed (Graph) or someone deleted it.
    SourceGone,
}

impl TransferOutcome {
    /// A stable, PII-free label for summaries and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            TransferOutcome::Transferred { .. } => "transferred",
            TransferOutcome::AlreadyTransferred { .. } => "already_transferred",
            TransferOutcome::SourceGone => "source_gone",
        }
    }
}

/// A calendar service the operator hands leavers' events over with.
pub trait CalendarConnector: Send + Sync {
    /// `"google"` or `"microsoft"`: a label for logs and metrics.
    fn provider(&self) -> &'static str;

    /// Checks that the credentials work and that `email` has a calendar (e.g. the
    /// tenant's fallback owner). `NotFound` or `MailboxUnavailable` mean no usable
    /// calendar.
    fn check_calendar<'a>(
        &'a self,
        email: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), CalendarError>>;

    /// Events organized by `owner_email` that have not ended before `time_min`: single
    /// events and series masters with an occurrence still to come, following every
    /// page. `now` is the caller's time (for tokens).
    fn list_owned_upcoming<'a>(
        &'a self,
        owner_email: &'a str,
        time_min: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<CalendarEvent>, CalendarError>>;

    /// Makes `to_email` the organizer of `event` (listed from `from_email`'s
    /// calendar) from `now` on, with the same attendees, notifying them: what already
    /// happened stays as it was. `idempotency_key` must be the same on every retry of
    /// this item (per user, step and event).
    fn transfer<'a>(
        &'a self,
        event: &'a CalendarEvent,
        from_email: &'a str,
        to_email: &'a str,
        idempotency_key: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<TransferOutcome, CalendarError>>;
}

/// What went wrong calling a calendar service, sorted by what the caller should do.
/// `Display` carries status codes, the provider's machine reason code (sanitized) and
/// error kinds only: never a name, an address or a title.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// 429 (or Google's 403 usage-limit reasons): slow down; wait `retry_after`
    /// (from `Retry-After`) if given.
    #[error("calendar service rate-limited the request{}", fmt_after(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx or 408: the service could not handle the request now; retry with backoff
    /// (Graph's 503s may carry a `Retry-After`).
    #[error("calendar service unavailable (HTTP {status}){}", fmt_after(*.retry_after))]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No response within the configured timeout.
    #[error("calendar request timed out")]
    Timeout,
    /// The service refused the request and repeating it cannot help, e.g. Google's
    /// `cannotChangeOrganizerOfInstance` for one occurrence of a series.
    #[error("calendar service rejected the request (HTTP {status}: {reason})")]
    Rejected { status: u16, reason: String },
    /// The connector refused before calling: this item cannot be transferred on its
    /// own (an occurrence, a modified occurrence, an event the owner does not organize).
    #[error("calendar event cannot be transferred ({reason})")]
    NotTransferable { reason: &'static str },
    /// The calendar (user, mailbox) or the event does not exist.
    #[error("calendar or event not found")]
    NotFound,
    /// The service will not serve this user's calendar: the user is gone, has no
    /// mailbox or no licence for it (Graph's `ErrorInvalidUser`,
    /// `MailboxNotEnabledForRESTAPI`). Their events cannot be handed over through the
    /// API: report them as events nobody could take over.
    #[error("calendar unavailable for this user ({reason})")]
    MailboxUnavailable { reason: String },
    /// 401, or a 403 whose reason is about the token or the app's grants (Google's
    /// `insufficientPermissions`, Graph's `ErrorAccessDenied` from an application
    /// access policy): fix the credentials or their grants.
    #[error("calendar service refused the credentials (HTTP {status})")]
    Unauthorized { status: u16 },
    /// The token endpoint refused to mint a token (`invalid_grant`: a deleted or
    /// wrong key; `unauthorized_client`: domain-wide delegation not granted for the
    /// scope; `invalid_client.AADSTS7000215`: a wrong client secret…).
    #[error("calendar token endpoint refused the credentials (HTTP {status}: {reason})")]
    CredentialsRefused { status: u16, reason: String },
    /// No HTTP response (connection refused or reset, TLS, DNS).
    #[error("calendar transport error ({kind})")]
    Transport { kind: &'static str },
    /// A response that does not match the contract.
    #[error("calendar response could not be decoded ({what})")]
    Decode { what: &'static str },
    /// The connector's configuration is unusable (e.g. a malformed base URL).
    #[error("calendar connector misconfigured ({what})")]
    Config { what: &'static str },
}

fn fmt_after(after: Option<Duration>) -> String {
    match after {
        Some(after) => format!(" (retry after {}s)", after.as_secs_f64()),
        None => String::new(),
    }
}

impl CalendarError {
    /// How long the service asked the caller to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CalendarError::RateLimited { retry_after }
            | CalendarError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same request (same idempotency key) may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            CalendarError::RateLimited { .. }
            | CalendarError::Unavailable { .. }
            | CalendarError::Timeout
            | CalendarError::Transport { .. } => true,
            CalendarError::Rejected { .. }
            | CalendarError::NotTransferable { .. }
            | CalendarError::NotFound
            | CalendarError::MailboxUnavailable { .. }
            | CalendarError::Unauthorized { .. }
            | CalendarError::CredentialsRefused { .. }
            | CalendarError::Decode { .. }
            | CalendarError::Config { .. } => false,
        }
    }

    /// A stable, low-cardinality, PII-free label (metrics, status reasons).
    pub fn category(&self) -> &'static str {
        match self {
            CalendarError::RateLimited { .. } => "rate_limited",
            CalendarError::Unavailable { .. } => "unavailable",
            CalendarError::Timeout => "timeout",
            CalendarError::Rejected { .. } => "rejected",
            CalendarError::NotTransferable { .. } => "not_transferable",
            CalendarError::NotFound => "not_found",
            CalendarError::MailboxUnavailable { .. } => "mailbox_unavailable",
            CalendarError::Unauthorized { .. } => "unauthorized",
            CalendarError::CredentialsRefused { .. } => "credentials_refused",
            CalendarError::Transport { .. } => "transport",
            CalendarError::Decode { .. } => "decode",
            CalendarError::Config { .. } => "config",
        }
    }
}

/// The token source for a tenant's provider from the content of its credentials Secret
/// key: Google's service-account key file (JSON), or Microsoft app credentials (JSON
/// with `tenantId`, `clientId` and `clientSecret` or `clientCertificate`). `base_url`
/// is the tenant's `calendar.endpoint` (token endpoints must be the provider's own or
/// on that origin). `None` for [`roster_api::CalendarProvider::None`].
pub fn token_source_for(
    provider: roster_api::CalendarProvider,
    base_url: &str,
    credentials: &str,
    timeout: Duration,
) -> Result<Option<Arc<dyn TokenSource>>, CalendarError> {
    let base = parse_base_url(base_url)?;
    Ok(match provider {
        roster_api::CalendarProvider::None => None,
        roster_api::CalendarProvider::Google => {
            let account = GoogleServiceAccount::from_json(credentials, &base)?;
            Some(Arc::new(GoogleDelegatedTokens::new(account, timeout)?))
        }
        roster_api::CalendarProvider::Microsoft => {
            let app = MicrosoftApp::from_json(credentials, &base)?;
            Some(Arc::new(GraphAppTokens::new(app, timeout)?))
        }
    })
}

/// Builds the connector for a tenant's configured provider, or `None` for
/// [`roster_api::CalendarProvider::None`]. `base_url` is the tenant's
/// `calendar.endpoint`; `timeout` bounds each HTTP request.
pub fn connector_for(
    provider: roster_api::CalendarProvider,
    base_url: &str,
    token: Arc<dyn TokenSource>,
    timeout: Duration,
) -> Result<Option<Arc<dyn CalendarConnector>>, CalendarError> {
    Ok(match provider {
        roster_api::CalendarProvider::None => None,
        roster_api::CalendarProvider::Google => {
            let config = GoogleCalendarConfig {
                base_url: base_url.to_string(),
                timeout,
                ..GoogleCalendarConfig::default()
            };
            Some(Arc::new(GoogleCalendar::new(config, token)?))
        }
        roster_api::CalendarProvider::Microsoft => {
            let config = GraphCalendarConfig {
                base_url: base_url.to_string(),
                timeout,
                ..GraphCalendarConfig::default()
            };
            Some(Arc::new(GraphCalendar::new(config, token)?))
        }
    })
}

// ---------------------------------------------------------------------------------
// HTTP plumbing of both calendar clients: the shared `crate::http` module, mapped to
// `CalendarError`.

/// Parses and checks a configured base URL (http or https, no query).
pub(crate) fn parse_base_url(base: &str) -> Result<url::Url, CalendarError> {
    let url = url::Url::parse(base.trim_end_matches('/')).map_err(|_| CalendarError::Config {
        what: "base URL is not a URL",
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(CalendarError::Config {
            what: "base URL must be http(s)",
        });
    }
    if url.query().is_some() {
        return Err(CalendarError::Config {
            what: "base URL must not have a query",
        });
    }
    Ok(url)
}

/// The shared HTTP client ([`http::client`]) with the per-request timeout.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, CalendarError> {
    http::client(timeout).map_err(|_| CalendarError::Config {
        what: "cannot build the HTTP client",
    })
}

/// Maps a reqwest failure by its kind only (its text carries the URL, and so addresses).
pub(crate) fn transport_error(err: &reqwest::Error) -> CalendarError {
    match TransportFailure::of(err) {
        TransportFailure::Timeout => CalendarError::Timeout,
        failure => CalendarError::Transport {
            kind: failure.as_str(),
        },
    }
}

/// Adds the idempotency key ([`IDEMPOTENCY_KEY_HEADER`]) to a request. A key that cannot
/// be a header value fails as an unusable request, as reqwest itself would report it.
pub(crate) fn with_idempotency_key(
    request: reqwest::RequestBuilder,
    key: &str,
) -> Result<reqwest::RequestBuilder, CalendarError> {
    http::with_idempotency_key(request, key).map_err(|_| CalendarError::Transport {
        kind: TransportFailure::Request.as_str(),
    })
}

/// Sends a request to `service` ([`http::send`]: observed) and reads the whole body.
pub(crate) async fn execute(
    service: http::Service,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), CalendarError> {
    let response = http::send(service, request)
        .await
        .map_err(|e| transport_error(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport_error(&e))?;
    Ok((status, headers, body.to_vec()))
}

/// What a request sends.
pub(crate) enum Body<'a> {
    /// Nothing (a GET).
    None,
    /// Nothing, announced with `Content-Length: 0` (a bodiless POST;
    /// [`http::with_empty_body`]).
    Empty,
    Json(&'a serde_json::Value),
}

impl Body<'_> {
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Body::None => request,
            Body::Empty => http::with_empty_body(request),
            Body::Json(body) => request.json(body),
        }
    }
}

/// Sends the request `build` makes with a bearer token for `calendar` at `now`; on 401
/// the token is dropped and the request is made once more with a freshly minted one
/// (an expired, revoked or rotated-away token).
pub(crate) async fn send_authorized(
    service: http::Service,
    token: &dyn TokenSource,
    calendar: &str,
    now: DateTime<Utc>,
    build: impl Fn() -> Result<reqwest::RequestBuilder, CalendarError>,
) -> Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), CalendarError> {
    let bearer = token.bearer_token(calendar, now).await?;
    let response = execute(service, build()?.bearer_auth(&bearer)).await?;
    if response.0 != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    token.refused(calendar, &bearer);
    let fresh = token.bearer_token(calendar, now).await?;
    if fresh == bearer {
        return Ok(response);
    }
    execute(service, build()?.bearer_auth(&fresh)).await
}

/// The error for a non-success status, given the provider's reason code.
/// `rate_limit_reason` says whether a 403's reason is a usage limit (Google). A 403 is
/// [`CalendarError::Unauthorized`] only without a reason or with one in
/// [`CREDENTIAL_REASONS`]; any other 403 refuses this request, not the credentials
/// (Google's `forbiddenForNonOrganizer`, `requiredAccessLevel`…), and keeps its reason.
/// A `Retry-After` date is measured against the response's own `Date`
/// ([`http::retry_after_from_response`]).
pub(crate) fn status_error(
    status: u16,
    headers: &HeaderMap,
    reason: Option<&str>,
    rate_limit_reason: bool,
) -> CalendarError {
    let retry_after = || http::retry_after_from_response(headers);
    match status {
        429 => CalendarError::RateLimited {
            retry_after: retry_after(),
        },
        403 if rate_limit_reason => CalendarError::RateLimited {
            retry_after: retry_after(),
        },
        403 if reason.is_some_and(|r| !CREDENTIAL_REASONS.contains(&r)) => {
            CalendarError::Rejected {
                status,
                reason: sanitize_reason(reason),
            }
        }
        401 | 403 => CalendarError::Unauthorized { status },
        404 | 410 => CalendarError::NotFound,
        408 | 500..=599 => CalendarError::Unavailable {
            status,
            retry_after: retry_after(),
        },
        _ => CalendarError::Rejected {
            status,
            reason: sanitize_reason(reason),
        },
    }
}

/// Reason codes of a 403 that are about the credentials or their grants, not about the
/// request: Google's (`insufficientPermissions`, `accessNotConfigured`, `authError`…)
/// and Graph's (`ErrorAccessDenied` from an application access policy,
/// `Authorization_RequestDenied`, `AccessDenied`).
pub(crate) const CREDENTIAL_REASONS: &[&str] = &[
    "authError",
    "insufficientPermissions",
    "insufficientScopes",
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
    "PERMISSION_DENIED",
    "accessNotConfigured",
    "SERVICE_DISABLED",
    "domainPolicy",
    "ErrorAccessDenied",
    "Authorization_RequestDenied",
    "AccessDenied",
    "InvalidAuthenticationToken",
];

/// A stable 128-bit FNV-1a digest in hex (for deriving ids from keys; not for security).
pub fn stable_digest(parts: &[&str]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut hash = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash ^= 0x1f;
            hash = hash.wrapping_mul(PRIME);
        }
        for byte in part.bytes() {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_stable_and_separates_parts() {
        assert_eq!(stable_digest(&["a", "b"]), stable_digest(&["a", "b"]));
        assert_ne!(stable_digest(&["ab", ""]), stable_digest(&["a", "b"]));
        assert_eq!(stable_digest(&["x"]).len(), 32);
    }

    #[test]
    fn statuses_map_to_errors() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            status_error(429, &headers, None, false),
            CalendarError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            status_error(503, &headers, None, false).retry_after(),
            Some(Duration::from_secs(7))
        );
        assert!(status_error(502, &HeaderMap::new(), None, false).is_retryable());
        assert!(!status_error(400, &HeaderMap::new(), Some("x"), false).is_retryable());
        assert_eq!(
            status_error(403, &HeaderMap::new(), None, true).category(),
            "rate_limited"
        );
        assert_eq!(
            status_error(403, &HeaderMap::new(), None, false).category(),
            "unauthorized"
        );
    }

    #[test]
    fn only_credential_reasons_make_a_403_unauthorized() {
        let none = HeaderMap::new();
        assert_eq!(
            status_error(403, &none, Some("forbiddenForNonOrganizer"), false),
            CalendarError::Rejected {
                status: 403,
                reason: "forbiddenForNonOrganizer".into()
            }
        );
        assert_eq!(
            status_error(403, &none, Some("requiredAccessLevel"), false).category(),
            "rejected"
        );
        for reason in ["insufficientPermissions", "ErrorAccessDenied", "authError"] {
            assert_eq!(
                status_error(403, &none, Some(reason), false),
                CalendarError::Unauthorized { status: 403 },
                "{reason}"
            );
        }
        assert_eq!(
            status_error(401, &none, Some("anything"), false),
            CalendarError::Unauthorized { status: 401 }
        );
    }

    #[test]
    fn retry_after_dates_count_against_the_response_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 01 Jan 2025 00:00:30 GMT".parse().unwrap(),
        );
        // No `Date`: the date form is ignored (the connector reads no clock).
        assert_eq!(status_error(429, &headers, None, false).retry_after(), None);
        headers.insert(
            reqwest::header::DATE,
            "Wed, 01 Jan 2025 00:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            status_error(429, &headers, None, false),
            CalendarError::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            status_error(503, &headers, None, false).retry_after(),
            Some(Duration::from_secs(30))
        );
        headers.insert(reqwest::header::RETRY_AFTER, "2.5".parse().unwrap());
        assert_eq!(
            status_error(429, &headers, None, false).retry_after(),
            Some(Duration::from_millis(2500))
        );
    }

    #[tokio::test]
    async fn both_clients_read_retry_after_dates_and_map_transport_failures() {
        let headers = [
            "Retry-After: Wed, 01 Jan 2025 00:01:00 GMT",
            "Date: Wed, 01 Jan 2025 00:00:00 GMT",
        ];
        for provider in [
            roster_api::CalendarProvider::Google,
            roster_api::CalendarProvider::Microsoft,
        ] {
            let base = crate::http::testing::serve_once("503 Service Unavailable", &headers).await;
            let connector = connector_for(
                provider,
                base.as_str(),
                Arc::new(StaticToken::new("t")),
                Duration::from_secs(5),
            )
            .unwrap()
            .unwrap();
            let err = connector
                .check_calendar("ada@example.com", "2030-01-01T00:00:00Z".parse().unwrap())
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CalendarError::Unavailable {
                    status: 503,
                    retry_after: Some(Duration::from_secs(60))
                },
                "{provider:?}"
            );

            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let connector = connector_for(
                provider,
                &format!("http://127.0.0.1:{port}/v1"),
                Arc::new(StaticToken::new("t")),
                Duration::from_secs(5),
            )
            .unwrap()
            .unwrap();
            let err = connector
                .check_calendar("ada@example.com", "2030-01-01T00:00:00Z".parse().unwrap())
                .await
                .unwrap_err();
            assert_eq!(err, CalendarError::Transport { kind: "connect" });
        }
    }
}
