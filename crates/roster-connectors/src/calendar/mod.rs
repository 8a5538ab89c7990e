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
//! Pointing roster at the real services is configuration: a base URL and a bearer
//! token source. Tests and the demo point the same code at the stand-ins in
//! the `roster-standins` crate.
//!
//! Contract of every implementation:
//! - only events the owner organizes are listed, one item per recurring series
//!   (occurrences and modified occurrences travel with their series);
//! - a transfer is idempotent: repeating it after success reports
//!   [`TransferOutcome::AlreadyTransferred`] (or [`TransferOutcome::SourceGone`] when
//!   that cannot be told apart from someone else removing the event), never a second copy;
//! - each HTTP request is bounded by the configured timeout; retrying is the caller's
//!   job, guided by [`CalendarError::is_retryable`] and [`CalendarError::retry_after`];
//! - errors, `Debug` output and logs never contain names, email addresses or event
//!   titles: providers' free-text messages are dropped, only their machine reason
//!   codes are kept.

pub mod google;
pub mod graph;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;

pub use google::{GoogleCalendar, GoogleCalendarConfig, SendUpdates};
pub use graph::{GraphCalendar, GraphCalendarConfig};

/// Header carrying the caller's idempotency key on every mutating request. Google has
/// no such header (it ignores it); Graph's own mechanism is `transactionId`. The
/// stand-ins record it in their call logs.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

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
    /// tenant's fallback owner). `NotFound` means no such calendar.
    fn check_calendar<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<(), CalendarError>>;

    /// Events organized by `owner_email` that have not ended before `time_min`: single
    /// events and series masters only, following every page.
    fn list_owned_upcoming<'a>(
        &'a self,
        owner_email: &'a str,
        time_min: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<CalendarEvent>, CalendarError>>;

    /// Makes `to_email` the organizer of `event` (listed from `from_email`'s
    /// calendar), with the same attendees, notifying them. `idempotency_key` must be
    /// the same on every retry of this item (per user, step and event).
    fn transfer<'a>(
        &'a self,
        event: &'a CalendarEvent,
        from_email: &'a str,
        to_email: &'a str,
        idempotency_key: &'a str,
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
    /// 401/403 for the credentials: fix the token or its grants.
    #[error("calendar service refused the credentials (HTTP {status})")]
    Unauthorized { status: u16 },
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
            | CalendarError::Unauthorized { .. }
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
            CalendarError::Unauthorized { .. } => "unauthorized",
            CalendarError::Transport { .. } => "transport",
            CalendarError::Decode { .. } => "decode",
            CalendarError::Config { .. } => "config",
        }
    }
}

/// Supplies the bearer token for each request. Real deployments mint short-lived
/// tokens (a Google service account with domain-wide delegation, an Entra app's
/// client-credentials grant); [`StaticToken`] serves a token read from a Secret.
pub trait TokenSource: Send + Sync {
    fn bearer_token(&self) -> BoxFuture<'_, Result<String, CalendarError>>;
}

/// A fixed bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken(token.into())
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn bearer_token(&self) -> BoxFuture<'_, Result<String, CalendarError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
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
// Shared HTTP plumbing for both clients.

/// A base URL with the path segments appended (each percent-encoded as needed).
pub(crate) fn url_with(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

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

/// A reqwest client with the per-request timeout.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, CalendarError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| CalendarError::Config {
            what: "cannot build the HTTP client",
        })
}

/// Maps a reqwest failure without its text (which carries the URL, and so addresses).
pub(crate) fn transport_error(err: &reqwest::Error) -> CalendarError {
    if err.is_timeout() {
        CalendarError::Timeout
    } else if err.is_connect() {
        CalendarError::Transport { kind: "connect" }
    } else if err.is_body() || err.is_decode() {
        CalendarError::Transport { kind: "body" }
    } else if err.is_redirect() {
        CalendarError::Transport { kind: "redirect" }
    } else {
        CalendarError::Transport { kind: "request" }
    }
}

/// Sends a request and reads the whole body.
pub(crate) async fn execute(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), CalendarError> {
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport_error(&e))?;
    Ok((status, headers, body.to_vec()))
}

/// `Retry-After` in seconds (the form both services send). An HTTP-date is ignored:
/// the connector does not read the clock.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// Keeps a provider's reason code only if it looks like one (an identifier), so that
/// nothing free-text reaches an error message.
pub(crate) fn sanitize_reason(reason: Option<&str>) -> String {
    match reason {
        Some(reason)
            if !reason.is_empty()
                && reason.len() <= 64
                && reason
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            reason.to_string()
        }
        _ => "unrecognized".to_string(),
    }
}

/// The error for a non-success status, given the provider's reason code.
/// `rate_limit_reason` says whether a 403's reason is a usage limit (Google).
pub(crate) fn status_error(
    status: u16,
    headers: &HeaderMap,
    reason: Option<&str>,
    rate_limit_reason: bool,
) -> CalendarError {
    match status {
        429 => CalendarError::RateLimited {
            retry_after: retry_after(headers),
        },
        403 if rate_limit_reason => CalendarError::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => CalendarError::Unauthorized { status },
        404 | 410 => CalendarError::NotFound,
        408 | 500..=599 => CalendarError::Unavailable {
            status,
            retry_after: retry_after(headers),
        },
        _ => CalendarError::Rejected {
            status,
            reason: sanitize_reason(reason),
        },
    }
}

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
    fn reasons_are_sanitized() {
        assert_eq!(
            sanitize_reason(Some("rateLimitExceeded")),
            "rateLimitExceeded"
        );
        assert_eq!(
            sanitize_reason(Some("user alice@example.com missing")),
            "unrecognized"
        );
        assert_eq!(sanitize_reason(None), "unrecognized");
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
}
