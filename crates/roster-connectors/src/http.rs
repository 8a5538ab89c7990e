//! HTTP plumbing shared by every connector: building the client, classifying transport
//! failures without their URLs, reading `Retry-After` without a local clock, the
//! idempotency header, URL building, making text received from the network safe to
//! put in an error, and the [`Observer`] hook through which the operator times and
//! counts every request ([`send`]).
//!
//! Each connector maps what it gets from here to its own error enum; nothing here knows
//! about a particular service beyond its [`Service`] label.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::RequestBuilder;
use reqwest::header::{
    CONTENT_LENGTH, DATE, HeaderMap, HeaderValue, InvalidHeaderValue, RETRY_AFTER,
};
use url::Url;

/// Header carrying the caller's idempotency key on every mutating request (the learning
/// platform honours it; the calendar stand-ins record it in their call logs).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("roster/", env!("CARGO_PKG_VERSION"));

/// Upper bound on the connect timeout, whatever the per-request timeout.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest delay-seconds `Retry-After` accepted in its fractional form (one day,
/// exclusive); anything longer is taken as garbage rather than obeyed.
const MAX_FRACTIONAL_RETRY_AFTER_SECS: f64 = 86_400.0;

/// A reqwest client whose requests each take at most `timeout` (connection included),
/// whose connection attempts take at most `min(timeout, 10 s)`, and which identifies
/// itself as `roster/<version>`.
///
/// Redirects follow reqwest's default policy (up to 10 hops; reqwest drops the
/// `Authorization` header when a redirect leaves the original host).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        // Never a link-local or metadata address, also after DNS; redirects only to
        // the same host (crate::endpoint).
        .dns_resolver(crate::endpoint::guarded_resolver())
        .redirect(crate::endpoint::same_host_redirects())
        .build()
}

/// Why a request got no HTTP response (or lost it while reading the body), without any
/// of reqwest's text: that text carries the URL, and URLs carry identifiers and
/// addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportFailure {
    /// The client's timeout elapsed.
    Timeout,
    /// No connection (refused, reset, TLS, DNS).
    Connect,
    /// The response body could not be read or decoded.
    Body,
    /// The redirect policy refused to follow.
    Redirect,
    /// Anything else about sending the request (including an unusable request).
    Request,
}

impl TransportFailure {
    /// Classifies a reqwest failure.
    pub fn of(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            TransportFailure::Timeout
        } else if err.is_connect() {
            TransportFailure::Connect
        } else if err.is_body() || err.is_decode() {
            TransportFailure::Body
        } else if err.is_redirect() {
            TransportFailure::Redirect
        } else {
            TransportFailure::Request
        }
    }

    /// A stable, low-cardinality, PII-free name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportFailure::Timeout => "timeout",
            TransportFailure::Connect => "connect",
            TransportFailure::Body => "body",
            TransportFailure::Redirect => "redirect",
            TransportFailure::Request => "request",
        }
    }
}

impl From<&reqwest::Error> for TransportFailure {
    fn from(err: &reqwest::Error) -> Self {
        TransportFailure::of(err)
    }
}

/// The texts of the causes of a reqwest failure, each [`sanitize`]d and preceded by
/// `": "` (empty if there are none). The error's own text is left out: it names the URL.
pub fn sanitized_causes(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&sanitize(&cause.to_string()));
        source = cause.source();
    }
    text
}

/// How long a response's `Retry-After` asks the client to wait.
///
/// Accepts delay-seconds, as an integer or (as some services send) a fraction below one
/// day, and an HTTP-date, which is measured against `now`. Pass the response's own
/// `Date` as `now` (see [`response_date`] and [`retry_after_from_response`]): by RFC 9110
/// §10.2.3 an HTTP-date `Retry-After` is a point on the server's clock, so its distance
/// from the server's `Date` is the delay the server meant. That needs no local clock
/// (connectors never read one) and is immune to skew between the two clocks. With
/// `now` absent (no `Date` header), the date form is ignored. A date before `now` means
/// no wait. Anything else is ignored.
pub fn retry_after(headers: &HeaderMap, now: Option<DateTime<Utc>>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && (0.0..MAX_FRACTIONAL_RETRY_AFTER_SECS).contains(&seconds))
            .then(|| Duration::from_secs_f64(seconds));
    }
    let at = parse_http_date(value)?;
    Some((at - now?).to_std().unwrap_or(Duration::ZERO))
}

/// The response's own `Date` header: when the server produced it, on its clock.
pub fn response_date(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    parse_http_date(headers.get(DATE)?.to_str().ok()?.trim())
}

/// [`retry_after`] measured against the response's own `Date`, for clients that have
/// no `now` of their own (the HTTP-date form counts only when the response has a `Date`).
pub fn retry_after_from_response(headers: &HeaderMap) -> Option<Duration> {
    retry_after(headers, response_date(headers))
}

/// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms.
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        return Some(at.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|at| at.and_utc())
}

/// Adds the caller's idempotency key to a request, as [`IDEMPOTENCY_KEY`]. Fails if
/// the key cannot be a header value (the caller decides what that means).
pub fn with_idempotency_key(
    request: RequestBuilder,
    key: &str,
) -> Result<RequestBuilder, InvalidHeaderValue> {
    Ok(request.header(IDEMPOTENCY_KEY, HeaderValue::from_str(key)?))
}

/// A request without a body that says so with `Content-Length: 0`.
///
/// Over HTTP/1.1, hyper (under reqwest) sends no `Content-Length` at all for an empty
/// body, and some front ends refuse that: Google's answers a bodiless POST (such as
/// Calendar's `events.move`) with 411 Length Required. Use this for every request that
/// has no body but a method that usually carries one (POST, PUT, PATCH).
pub fn with_empty_body(request: RequestBuilder) -> RequestBuilder {
    request
        .header(CONTENT_LENGTH, HeaderValue::from_static("0"))
        .body(Vec::<u8>::new())
}

/// `base` with `segments` appended to its path, each percent-encoded as one segment
/// (so a `/` inside one stays inside it). The base's path is kept (a trailing empty
/// segment, from a trailing `/`, is dropped first); its query and fragment are dropped.
/// A base that cannot carry a path (`mailto:…`) comes back without one appended.
pub fn url_with(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Makes a free text received from the network safe to show: one line, at most 120
/// characters, and any word that looks like an email address replaced.
pub fn sanitize(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if word.contains('@') {
                "[redacted]".to_string()
            } else {
                word.chars().filter(|c| !c.is_control()).collect()
            }
        })
        .collect();
    let line = words.join(" ");
    if line.chars().count() > 120 {
        let mut short: String = line.chars().take(119).collect();
        short.push('…');
        short
    } else {
        line
    }
}

/// Keeps a service's machine reason code only if it looks like one (an identifier of at
/// most 64 ASCII letters, digits, `_`, `.` and `-`), else `"unrecognized"`: nothing
/// free-text reaches an error message.
pub fn sanitize_reason(reason: Option<&str>) -> String {
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

/// Every downstream service roster calls, as a metrics label (never a host or a path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// The learning platform's API (`lms`).
    LearningPlatform,
    /// Google Calendar v3.
    GoogleCalendar,
    /// Google's OAuth token endpoint (service-account JWT bearer grant).
    GoogleToken,
    /// Microsoft Graph.
    MicrosoftGraph,
    /// The Microsoft identity platform's token endpoint (client-credentials grant).
    MicrosoftToken,
    /// An HR JSON report API (and its token endpoint), fetched by the operator.
    HrApi,
    /// An SFTP server holding an HR CSV file (one fetch: connect, list, read).
    Sftp,
}

impl Service {
    /// A stable, low-cardinality name.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::LearningPlatform => "learning-platform",
            Service::GoogleCalendar => "google-calendar",
            Service::GoogleToken => "google-token",
            Service::MicrosoftGraph => "microsoft-graph",
            Service::MicrosoftToken => "microsoft-token",
            Service::HrApi => "hr-api",
            Service::Sftp => "sftp",
        }
    }
}

/// How one exchange with a downstream service ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// An HTTP response with this status (its headers; the body is read afterwards).
    Status(u16),
    /// Done without HTTP (an SFTP fetch).
    Done,
    /// No answer: a stable, PII-free category (a [`TransportFailure`] name for HTTP).
    Failed(&'static str),
}

impl Ending {
    /// Of a [`reqwest`] send.
    pub fn of(result: &Result<reqwest::Response, reqwest::Error>) -> Self {
        match result {
            Ok(response) => Ending::Status(response.status().as_u16()),
            Err(err) => Ending::Failed(TransportFailure::of(err).as_str()),
        }
    }

    /// `2xx`…`5xx` for a status, `ok` for [`Ending::Done`], `error` without an answer.
    pub fn class(self) -> &'static str {
        match self {
            Ending::Status(100..=199) => "1xx",
            Ending::Status(200..=299) => "2xx",
            Ending::Status(300..=399) => "3xx",
            Ending::Status(400..=499) => "4xx",
            Ending::Status(500..=599) => "5xx",
            Ending::Status(_) => "other",
            Ending::Done => "ok",
            Ending::Failed(_) => "error",
        }
    }

    /// Whether the service did what was asked (a 2xx, or a non-HTTP success).
    pub fn succeeded(self) -> bool {
        matches!(self, Ending::Status(200..=299) | Ending::Done)
    }
}

/// Told about every request a connector sends through [`send`] (and every call wrapped
/// in [`observe`]) while it is installed with [`observed`]. The connectors read no
/// clock: the observer takes the time when a request starts and when its closure is
/// called.
pub trait Observer: Send + Sync {
    /// A call to `service` starts now; the returned closure is called once, with how
    /// it ended. (A call whose future is dropped before it ends never calls it.)
    fn started(&self, service: Service) -> Box<dyn FnOnce(Ending) + Send>;
}

tokio::task_local! {
    /// The observer of the calls the current task makes (see [`observed`]).
    static OBSERVER: Arc<dyn Observer>;
}

/// Runs `future` with `observer` told about every call it makes through [`send`] or
/// [`observe`]. Scoped to the task: a task spawned inside gets it with [`inherit`].
pub async fn observed<F: Future>(observer: Arc<dyn Observer>, future: F) -> F::Output {
    OBSERVER.scope(observer, future).await
}

/// `future` with the current task's observer, if any (for `tokio::spawn`).
pub fn inherit<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let observer = OBSERVER.try_with(Arc::clone).ok();
    async move {
        match observer {
            Some(observer) => OBSERVER.scope(observer, future).await,
            None => future.await,
        }
    }
}

/// Runs one call to `service` and tells the task's observer (if any) how it ended.
pub async fn observe<T, F: Future<Output = T>>(
    service: Service,
    call: F,
    ending: impl FnOnce(&T) -> Ending,
) -> T {
    let finish = OBSERVER.try_with(|observer| observer.started(service)).ok();
    let result = call.await;
    if let Some(finish) = finish {
        finish(ending(&result));
    }
    result
}

/// Sends a request to `service`, observed (see [`Observer`]): its time is until the
/// response's headers arrive.
pub async fn send(
    service: Service,
    request: RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    observe(service, request.send(), Ending::of).await
}

/// A one-shot HTTP server on loopback for the clients' tests.
#[cfg(test)]
pub(crate) mod testing {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use url::Url;

    /// Answers the first request with `status_line` (e.g. `429 Too Many Requests`),
    /// `headers` (each `Name: value`) and an empty body, then stops. Returns the
    /// server's root URL.
    pub(crate) async fn serve_once(status_line: &str, headers: &[&str]) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut response = format!("HTTP/1.1 {status_line}\r\n");
        for header in headers {
            response.push_str(header);
            response.push_str("\r\n");
        }
        response.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.ok();
        });
        Url::parse(&format!("http://{address}/")).unwrap()
    }

    /// Like [`serve_once`], and hands over the request it received: the head (lower-cased
    /// header names as sent) and whatever body arrived with it.
    pub(crate) async fn serve_capturing(
        status_line: &str,
        headers: &[&str],
        body: &str,
    ) -> (Url, tokio::sync::oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut response = format!("HTTP/1.1 {status_line}\r\n");
        for header in headers {
            response.push_str(header);
            response.push_str("\r\n");
        }
        response.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let (seen, request) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..read]);
            }
            // A body announced by Content-Length: read it all.
            let text = String::from_utf8_lossy(&received).to_string();
            let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = rest.as_bytes().to_vec();
            while body.len() < length {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&buffer[..read]);
            }
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.ok();
            seen.send(format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body)))
                .ok();
        });
        (Url::parse(&format!("http://{address}/")).unwrap(), request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, None), Some(Duration::from_secs(7)));
        let now = at("2025-01-01T00:00:00Z");
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 01 Jan 2025 00:00:30 GMT"),
        );
        assert_eq!(
            retry_after(&headers, Some(now)),
            Some(Duration::from_secs(30))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, Some(now)), None);
    }

    #[test]
    fn retry_after_seconds_need_no_date() {
        let now = Some(at("2025-01-01T00:00:00Z"));
        for now in [None, now] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", " 120 ")]), now),
                Some(Duration::from_secs(120))
            );
            assert_eq!(
                retry_after(&headers(&[("retry-after", "0")]), now),
                Some(Duration::ZERO)
            );
        }
        assert_eq!(retry_after(&HeaderMap::new(), None), None);
    }

    #[test]
    fn retry_after_accepts_fractional_seconds_below_a_day() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), None),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.25")]), None),
            Some(Duration::from_millis(250))
        );
        for refused in ["86400.0", "1e9", "-1.5", "-3", "NaN", "inf"] {
            let mut map = HeaderMap::new();
            map.insert(RETRY_AFTER, HeaderValue::from_str(refused).unwrap());
            assert_eq!(retry_after(&map, None), None, "{refused}");
        }
    }

    #[test]
    fn retry_after_date_is_measured_against_the_response_date() {
        // The server's clock is what counts, whatever the local one says.
        let map = headers(&[
            ("retry-after", "Fri, 31 Dec 1999 23:59:59 GMT"),
            ("date", "Fri, 31 Dec 1999 23:58:59 GMT"),
        ]);
        assert_eq!(response_date(&map), Some(at("1999-12-31T23:58:59Z")));
        assert_eq!(
            retry_after_from_response(&map),
            Some(Duration::from_secs(60))
        );
        // A date already past on the server's clock: no wait.
        let map = headers(&[
            ("retry-after", "Fri, 31 Dec 1999 23:58:00 GMT"),
            ("date", "Fri, 31 Dec 1999 23:58:59 GMT"),
        ]);
        assert_eq!(retry_after_from_response(&map), Some(Duration::ZERO));
        // The obsolete forms are HTTP-dates too.
        let now = Some(at("1994-11-06T08:49:00Z"));
        for obsolete in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            let mut map = HeaderMap::new();
            map.insert(RETRY_AFTER, HeaderValue::from_str(obsolete).unwrap());
            assert_eq!(
                retry_after(&map, now),
                Some(Duration::from_secs(37)),
                "{obsolete}"
            );
        }
    }

    #[test]
    fn retry_after_date_without_a_date_header_is_ignored() {
        let map = headers(&[("retry-after", "Wed, 01 Jan 2025 00:00:30 GMT")]);
        assert_eq!(response_date(&map), None);
        assert_eq!(retry_after_from_response(&map), None);
        assert_eq!(retry_after(&map, None), None);
        let map = headers(&[
            ("retry-after", "Wed, 01 Jan 2025 00:00:30 GMT"),
            ("date", "yesterday"),
        ]);
        assert_eq!(retry_after_from_response(&map), None);
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        for garbage in [
            "soon",
            "",
            "5s",
            "1,5",
            "12:00",
            "Wed, 32 Jan 2025 00:00:30 GMT",
        ] {
            let mut map = HeaderMap::new();
            map.insert(RETRY_AFTER, HeaderValue::from_str(garbage).unwrap());
            map.insert(
                DATE,
                HeaderValue::from_static("Wed, 01 Jan 2025 00:00:00 GMT"),
            );
            assert_eq!(retry_after_from_response(&map), None, "{garbage:?}");
        }
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff7").unwrap());
        assert_eq!(retry_after(&map, None), None);
    }

    #[test]
    fn sanitize_redacts_addresses_and_bounds_length() {
        assert_eq!(
            sanitize("Hello ada@example.com\nbye"),
            "Hello [redacted] bye"
        );
        assert_eq!(sanitize(&"x".repeat(500)).chars().count(), 120);
    }

    #[test]
    fn sanitize_makes_one_line_without_controls() {
        assert_eq!(sanitize("  a\r\n\tb\u{7}c  "), "a bc");
        assert_eq!(sanitize(""), "");
        let long = sanitize(&"word ".repeat(100));
        assert!(long.ends_with('…') && long.chars().count() == 120);
        assert_eq!(sanitize(&"y".repeat(120)), "y".repeat(120));
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
    fn reasons_are_bounded_identifiers() {
        assert_eq!(sanitize_reason(Some("a.b-c_9")), "a.b-c_9");
        assert_eq!(sanitize_reason(Some("")), "unrecognized");
        assert_eq!(sanitize_reason(Some(&"r".repeat(64))), "r".repeat(64));
        assert_eq!(sanitize_reason(Some(&"r".repeat(65))), "unrecognized");
        assert_eq!(sanitize_reason(Some("naïve")), "unrecognized");
    }

    #[test]
    fn urls_encode_segments_and_keep_the_base_path() {
        let base = Url::parse("https://example.com/calendar/v3").unwrap();
        assert_eq!(
            url_with(&base, &["calendars", "a@example.com", "events", "x/y z"]).as_str(),
            "https://example.com/calendar/v3/calendars/a@example.com/events/x%2Fy%20z"
        );
        let base = Url::parse("https://example.com/v1.0/").unwrap();
        assert_eq!(
            url_with(&base, &["users"]).as_str(),
            "https://example.com/v1.0/users"
        );
        let base = Url::parse("https://example.com").unwrap();
        assert_eq!(
            url_with(&base, &["a", "?#%"]).as_str(),
            "https://example.com/a/%3F%23%25"
        );
        let base = Url::parse("https://example.com/api?x=1#f").unwrap();
        assert_eq!(
            url_with(&base, &["b"]).as_str(),
            "https://example.com/api/b"
        );
        assert_eq!(url_with(&base, &[]).as_str(), "https://example.com/api");
    }

    #[test]
    fn idempotency_key_is_a_header_or_refused() {
        let http = reqwest::Client::new();
        let request = with_idempotency_key(http.get("http://127.0.0.1:1/"), "k-1")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(request.headers()[IDEMPOTENCY_KEY], "k-1");
        assert!(with_idempotency_key(http.get("http://127.0.0.1:1/"), "a\nb").is_err());
    }

    #[test]
    fn transport_failures_carry_no_url() {
        assert_eq!(TransportFailure::Connect.as_str(), "connect");
        assert_eq!(TransportFailure::Redirect.as_str(), "redirect");
        // An unusable request (a header value reqwest refuses) is a `Request` failure.
        let err = reqwest::Client::new()
            .get("http://127.0.0.1:1/users/ada@example.com")
            .header("x", "a\nb")
            .build()
            .unwrap_err();
        assert_eq!(TransportFailure::of(&err), TransportFailure::Request);
        assert!(!sanitized_causes(&err).contains("example.com"));
    }

    #[tokio::test]
    async fn bodiless_posts_announce_an_empty_body() {
        // Without help, reqwest over HTTP/1.1 sends no Content-Length for an empty body
        // (Google's front end answers that POST with 411)...
        let (base, request) = testing::serve_capturing("200 OK", &[], "").await;
        client(Duration::from_secs(5))
            .unwrap()
            .post(base.clone())
            .send()
            .await
            .unwrap();
        let head = request.await.unwrap().to_ascii_lowercase();
        assert!(!head.contains("content-length"), "{head}");
        // ...and with it, it says `Content-Length: 0`, once, and sends nothing more.
        let (base, request) = testing::serve_capturing("200 OK", &[], "").await;
        with_empty_body(client(Duration::from_secs(5)).unwrap().post(base))
            .send()
            .await
            .unwrap();
        let head = request.await.unwrap().to_ascii_lowercase();
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
        assert!(head.contains("content-length: 0\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }

    #[tokio::test]
    async fn refused_connections_are_connect_failures() {
        // Bind, then drop, a listener: its port then refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = client(Duration::from_secs(5))
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/users/ada@example.com"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(TransportFailure::from(&err), TransportFailure::Connect);
        assert!(!sanitized_causes(&err).contains("example.com"));
    }

    #[tokio::test]
    async fn client_sends_the_user_agent_and_honours_the_timeout() {
        // A server that reads the request, hands it over, and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (seen, request) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let read = stream.read(&mut buffer).await.unwrap();
            seen.send(String::from_utf8_lossy(&buffer[..read]).to_lowercase())
                .ok();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let err = client(Duration::from_millis(300))
            .unwrap()
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(TransportFailure::of(&err), TransportFailure::Timeout);
        let request = request.await.unwrap();
        assert!(
            request.contains(&format!("user-agent: {}\r\n", USER_AGENT.to_lowercase())),
            "{request}"
        );
        assert!(USER_AGENT.starts_with("roster/"));
        server.abort();
    }
}

#[cfg(test)]
mod observer_tests {
    use std::sync::Mutex;

    use super::*;

    /// Keeps what it is told.
    #[derive(Default)]
    struct Seen(Arc<Mutex<Vec<(Service, Ending)>>>);

    impl Observer for Seen {
        fn started(&self, service: Service) -> Box<dyn FnOnce(Ending) + Send> {
            let seen = self.0.clone();
            Box::new(move |ending| seen.lock().unwrap().push((service, ending)))
        }
    }

    #[tokio::test]
    async fn sends_are_told_to_the_observer_in_scope_and_its_spawned_tasks() {
        let seen = Seen::default();
        let log = seen.0.clone();
        let base = testing::serve_once("204 No Content", &[]).await;
        let refused = {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            format!("http://127.0.0.1:{port}/")
        };
        let http = client(Duration::from_secs(5)).unwrap();
        let (one, two) = (http.clone(), http.clone());
        observed(Arc::new(seen), async move {
            send(Service::LearningPlatform, one.get(base))
                .await
                .unwrap();
            // A task spawned with `inherit` reports to the same observer.
            tokio::spawn(inherit(async move {
                send(Service::GoogleCalendar, two.get(refused))
                    .await
                    .unwrap_err();
            }))
            .await
            .unwrap();
        })
        .await;
        // Outside the scope nobody is told.
        let outside = testing::serve_once("200 OK", &[]).await;
        send(Service::HrApi, http.get(outside)).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                (Service::LearningPlatform, Ending::Status(204)),
                (Service::GoogleCalendar, Ending::Failed("connect")),
            ]
        );
    }

    #[test]
    fn endings_have_classes_and_services_stable_names() {
        for (ending, class, ok) in [
            (Ending::Status(200), "2xx", true),
            (Ending::Status(302), "3xx", false),
            (Ending::Status(429), "4xx", false),
            (Ending::Status(503), "5xx", false),
            (Ending::Done, "ok", true),
            (Ending::Failed("timeout"), "error", false),
        ] {
            assert_eq!(
                (ending.class(), ending.succeeded()),
                (class, ok),
                "{ending:?}"
            );
        }
        assert_eq!(Service::LearningPlatform.as_str(), "learning-platform");
        assert_eq!(Service::MicrosoftToken.as_str(), "microsoft-token");
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::testing::serve_once;
    use super::*;

    /// A redirect to another host is not followed: the caller sees the 3xx, and the
    /// other host never sees roster's request (or its bearer token).
    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed() {
        let elsewhere = serve_once("200 OK", &[]).await;
        // Same address, other host name: "localhost" instead of "127.0.0.1".
        let target = format!("http://localhost:{}/stolen", elsewhere.port().unwrap());
        let location = format!("Location: {target}");
        let redirecting = serve_once("302 Found", &[location.as_str()]).await;
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(redirecting)
            .bearer_auth("secret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302, "not followed");
    }

    /// Another port is another origin: not followed either.
    #[tokio::test]
    async fn a_redirect_to_another_port_is_not_followed() {
        let target = serve_once("204 No Content", &[]).await;
        let location = format!("Location: {target}");
        let redirecting = serve_once("307 Temporary Redirect", &[location.as_str()]).await;
        // Both listen on 127.0.0.1, on different ports.
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(redirecting)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            307,
            "another port is another origin"
        );
    }
}
