//! The HTTP client of the learning platform's contract.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::LmsError;
use super::model::{
    Assignment, AssignmentStatus, CalendarLink, CreateOutcome, EngagementRecord, EventRole, Group,
    Involvement, List, NewUser, Problem, ProfilePatch, Rule, RuleTransfer, UpsertOutcome, User,
    UserProfile,
};
use super::{MERGE_PATCH, PROBLEM_TYPE_BASE};
use crate::http::{self, TransportFailure, sanitize};

/// A client of one tenant's learning-platform API.
///
/// Every call is bounded by the timeout given to [`LmsClient::new`]; nothing is
/// retried here (the caller owns retries and backoff, helped by
/// [`LmsError::is_retryable`] and [`LmsError::retry_after`]). Every mutating call
/// carries the caller's idempotency key, so repeating it with the same key takes
/// effect once. Removing something already gone succeeds.
#[derive(Clone, Debug)]
pub struct LmsClient {
    http: reqwest::Client,
    base_url: Url,
    token: String,
}

impl LmsClient {
    /// A client for the API rooted at `base_url` (e.g. `https://lms.example.com/api/v1`),
    /// authenticating with the bearer `token`; each request may take at most `timeout`
    /// (see [`http::client`]).
    pub fn new(base_url: Url, token: String, timeout: Duration) -> Self {
        let http = http::client(timeout).unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base_url,
            token,
        }
    }

    /// The API root this client talks to.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    // ---- profile and access -------------------------------------------------

    /// `POST /users`: creates the person's account with their whole profile. An account
    /// with this employee ID existing already is [`CreateOutcome::Exists`], not an error:
    /// the caller adopts it.
    pub async fn create_user(
        &self,
        employee_id: &str,
        profile: &UserProfile,
        idempotency_key: &str,
    ) -> Result<CreateOutcome, LmsError> {
        let url = self.url(&["users"], &[])?;
        let body = NewUser {
            employee_id,
            profile,
        };
        match self
            .send(Method::POST, url, Some(idempotency_key), Some(&body))
            .await
        {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(LmsError::AlreadyExists) => Ok(CreateOutcome::Exists),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /users/{employeeId}` with a JSON merge patch: changes exactly the fields
    /// the patch carries.
    pub async fn update_user(
        &self,
        employee_id: &str,
        patch: &ProfilePatch,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["users", employee_id], &[])?;
        let body = serde_json::to_vec(patch)
            .map_err(|e| LmsError::Transport(format!("encode the patch: {:?}", e.classify())))?;
        let request = self
            .authorized(Method::PATCH, url)
            .header(CONTENT_TYPE, MERGE_PATCH)
            .body(body);
        let request = http::with_idempotency_key(request, idempotency_key).map_err(|_| {
            LmsError::Rejected {
                status: 400,
                title: "Idempotency key is not a valid header value".into(),
            }
        })?;
        let response = http::send(http::Service::LearningPlatform, request)
            .await
            .map_err(transport)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_from(response).await)
    }

    /// `PUT /users/{employeeId}`: creates or fully replaces the person's profile.
    pub async fn upsert_user(
        &self,
        employee_id: &str,
        profile: &UserProfile,
        idempotency_key: &str,
    ) -> Result<UpsertOutcome, LmsError> {
        let url = self.url(&["users", employee_id], &[])?;
        let response = self
            .send(Method::PUT, url, Some(idempotency_key), Some(profile))
            .await?;
        Ok(match response.status() {
            StatusCode::CREATED => UpsertOutcome::Created,
            _ => UpsertOutcome::Updated,
        })
    }

    /// `GET /users/{employeeId}`.
    pub async fn get_user(&self, employee_id: &str) -> Result<User, LmsError> {
        let url = self.url(&["users", employee_id], &[])?;
        self.get_json(url).await
    }

    /// `POST /users/{employeeId}/access/revoke`: the person can no longer sign in.
    pub async fn revoke_access(
        &self,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["users", employee_id, "access", "revoke"], &[])?;
        self.mutate(Method::POST, url, idempotency_key).await
    }

    /// `POST /users/{employeeId}/access/restore`: undoes a revocation.
    pub async fn restore_access(
        &self,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["users", employee_id, "access", "restore"], &[])?;
        self.mutate(Method::POST, url, idempotency_key).await
    }

    // ---- events and sessions ------------------------------------------------

    /// `GET /users/{employeeId}/involvements`: the person's upcoming events and sessions.
    pub async fn involvements(&self, employee_id: &str) -> Result<Vec<Involvement>, LmsError> {
        let url = self.url(&["users", employee_id, "involvements"], &[])?;
        self.get_list(url).await
    }

    /// `DELETE /events/{eventId}/attendees/{employeeId}`: unenrolls; the seat is freed.
    pub async fn remove_event_attendee(
        &self,
        event_id: &str,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["events", event_id, "attendees", employee_id], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    /// `DELETE /events/{eventId}/roles/{role}/{employeeId}`.
    pub async fn remove_event_role(
        &self,
        event_id: &str,
        role: EventRole,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(
            &["events", event_id, "roles", role.as_str(), employee_id],
            &[],
        )?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    /// `PUT /events/{eventId}/calendar-link`: records where the synced calendar event
    /// lives after its ownership moved.
    pub async fn set_event_calendar_link(
        &self,
        event_id: &str,
        link: &CalendarLink,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["events", event_id, "calendar-link"], &[])?;
        self.send(Method::PUT, url, Some(idempotency_key), Some(link))
            .await
            .map(drop)
    }

    /// `DELETE /sessions/{sessionId}`: deletes a session (its attendees are unenrolled
    /// and notified).
    pub async fn delete_session(
        &self,
        session_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["sessions", session_id], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    /// `DELETE /sessions/{sessionId}/attendees/{employeeId}`: unenrolls; the seat is freed.
    pub async fn remove_session_attendee(
        &self,
        session_id: &str,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["sessions", session_id, "attendees", employee_id], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    /// `PUT /sessions/{sessionId}/calendar-link`.
    pub async fn set_session_calendar_link(
        &self,
        session_id: &str,
        link: &CalendarLink,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["sessions", session_id, "calendar-link"], &[])?;
        self.send(Method::PUT, url, Some(idempotency_key), Some(link))
            .await
            .map(drop)
    }

    // ---- rules ----------------------------------------------------------------

    /// `GET /users/{employeeId}/rules?role=assigner`: automated rules the person assigns.
    pub async fn assigner_rules(&self, employee_id: &str) -> Result<Vec<Rule>, LmsError> {
        let url = self.url(&["users", employee_id, "rules"], &[("role", "assigner")])?;
        self.get_list(url).await
    }

    /// `POST /rules/{ruleId}/transfer`: makes another person the rule's assigner.
    pub async fn transfer_rule(
        &self,
        rule_id: &str,
        new_assigner_employee_id: &str,
        idempotency_key: &str,
    ) -> Result<Rule, LmsError> {
        let url = self.url(&["rules", rule_id, "transfer"], &[])?;
        let body = RuleTransfer {
            new_assigner_employee_id: new_assigner_employee_id.to_string(),
        };
        let response = self
            .send(Method::POST, url, Some(idempotency_key), Some(&body))
            .await?;
        decode(response).await
    }

    // ---- groups ---------------------------------------------------------------

    /// `GET /users/{employeeId}/groups`.
    pub async fn groups(&self, employee_id: &str) -> Result<Vec<Group>, LmsError> {
        let url = self.url(&["users", employee_id, "groups"], &[])?;
        self.get_list(url).await
    }

    /// `PUT /groups/{group}/members/{employeeId}` (the group is created on first member).
    pub async fn add_group_member(
        &self,
        group: &str,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["groups", group, "members", employee_id], &[])?;
        self.mutate(Method::PUT, url, idempotency_key).await
    }

    /// `DELETE /groups/{group}/members/{employeeId}`.
    pub async fn remove_group_member(
        &self,
        group: &str,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["groups", group, "members", employee_id], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    // ---- assignments ----------------------------------------------------------

    /// `GET /users/{employeeId}/assignments[?status=…]`.
    pub async fn assignments(
        &self,
        employee_id: &str,
        status: Option<AssignmentStatus>,
    ) -> Result<Vec<Assignment>, LmsError> {
        let query: Vec<(&str, &str)> = status.map(|s| ("status", s.as_str())).into_iter().collect();
        let url = self.url(&["users", employee_id, "assignments"], &query)?;
        self.get_list(url).await
    }

    /// `GET /users/{employeeId}/assignments?status=outstanding`.
    pub async fn outstanding_assignments(
        &self,
        employee_id: &str,
    ) -> Result<Vec<Assignment>, LmsError> {
        self.assignments(employee_id, Some(AssignmentStatus::Outstanding))
            .await
    }

    /// `DELETE /assignments/{assignmentId}` (outstanding assignments only; a completed
    /// one is engagement history and is refused with 409).
    pub async fn delete_assignment(
        &self,
        assignment_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["assignments", assignment_id], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    // ---- personal data ------------------------------------------------------

    /// `POST /users/{employeeId}/anonymize`: strips direct identifiers, revokes access,
    /// keeps engagement records reachable by employee ID.
    pub async fn anonymize(
        &self,
        employee_id: &str,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        let url = self.url(&["users", employee_id, "anonymize"], &[])?;
        self.mutate(Method::POST, url, idempotency_key).await
    }

    /// `POST /users/{employeeId}/purge`: removes every remaining personal field.
    pub async fn purge(&self, employee_id: &str, idempotency_key: &str) -> Result<(), LmsError> {
        let url = self.url(&["users", employee_id, "purge"], &[])?;
        self.mutate(Method::POST, url, idempotency_key).await
    }

    /// `GET /engagement?employeeId=…`: the person's completions, attendance and scores.
    pub async fn engagement(&self, employee_id: &str) -> Result<Vec<EngagementRecord>, LmsError> {
        let url = self.url(&["engagement"], &[("employeeId", employee_id)])?;
        self.get_list(url).await
    }

    /// `DELETE /tenant`: full deletion for a customer's exit — every user and every
    /// engagement record.
    pub async fn delete_tenant(&self, idempotency_key: &str) -> Result<(), LmsError> {
        let url = self.url(&["tenant"], &[])?;
        self.mutate(Method::DELETE, url, idempotency_key).await
    }

    // ---- plumbing -------------------------------------------------------------

    /// The URL of `segments` (each percent-encoded as one segment) under the base URL
    /// (see [`http::url_with`]), with the `query` pairs.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, LmsError> {
        if self.base_url.cannot_be_a_base() {
            return Err(LmsError::Transport(
                "the base URL cannot carry a path".into(),
            ));
        }
        let mut url = http::url_with(&self.base_url, segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, LmsError> {
        let response = self.send::<()>(Method::GET, url, None, None).await?;
        decode(response).await
    }

    async fn get_list<T: DeserializeOwned>(&self, url: Url) -> Result<Vec<T>, LmsError> {
        self.get_json::<List<T>>(url).await.map(|list| list.items)
    }

    async fn mutate(
        &self,
        method: Method,
        url: Url,
        idempotency_key: &str,
    ) -> Result<(), LmsError> {
        self.send::<()>(method, url, Some(idempotency_key), None)
            .await
            .map(drop)
    }

    /// Sends one request; returns the response if its status is a success.
    fn authorized(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(ACCEPT, "application/json, application/problem+json")
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        idempotency_key: Option<&str>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, LmsError> {
        let mut request = self.authorized(method, url);
        if let Some(key) = idempotency_key {
            request = http::with_idempotency_key(request, key).map_err(|_| LmsError::Rejected {
                status: 400,
                title: "Idempotency key is not a valid header value".into(),
            })?;
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = http::send(http::Service::LearningPlatform, request)
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(error_from(response).await)
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, LmsError> {
    let bytes = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes).map_err(|err| {
        // serde_json's messages can quote values; keep only the position and class.
        LmsError::Decode(format!(
            "{:?} error at line {} column {}",
            err.classify(),
            err.line(),
            err.column()
        ))
    })
}

/// Maps a reqwest failure (no HTTP status) to an error without the URL, which carries
/// identifiers: the failure's kind and the sanitized texts of its causes.
fn transport(err: reqwest::Error) -> LmsError {
    match TransportFailure::of(&err) {
        TransportFailure::Timeout => LmsError::Timeout,
        failure => LmsError::Transport(format!(
            "{}{}",
            failure.as_str(),
            http::sanitized_causes(&err)
        )),
    }
}

/// Maps a non-success response to an error.
async fn error_from(response: reqwest::Response) -> LmsError {
    let status = response.status();
    // An HTTP-date is measured against the response's own `Date`: no local clock.
    let retry_after = http::retry_after_from_response(response.headers());
    let problem: Option<Problem> = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match status.as_u16() {
        404 => LmsError::NotFound,
        429 => LmsError::RateLimited { retry_after },
        408 => LmsError::Timeout,
        409 if problem
            .as_ref()
            .is_some_and(|p| p.type_ == format!("{PROBLEM_TYPE_BASE}user-exists")) =>
        {
            LmsError::AlreadyExists
        }
        409 if problem
            .as_ref()
            .is_some_and(|p| p.type_ == format!("{PROBLEM_TYPE_BASE}idempotency-in-progress")) =>
        {
            LmsError::Unavailable { status: 409 }
        }
        code @ 500..=599 => LmsError::Unavailable { status: code },
        code => {
            let title = problem
                .map(|p| sanitize(&p.title))
                .filter(|title| !title.is_empty())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
            LmsError::Rejected {
                status: code,
                title,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> LmsClient {
        LmsClient::new(
            Url::parse(base).unwrap(),
            "t".into(),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn urls_encode_segments_and_keep_the_base_path() {
        let c = client("http://127.0.0.1:1/api/v1");
        let url = c
            .url(&["groups", "new hires/2025", "members", "0042"], &[])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/api/v1/groups/new%20hires%2F2025/members/0042"
        );
        let c = client("http://127.0.0.1:1/api/v1/");
        let url = c.url(&["engagement"], &[("employeeId", "E 1")]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/api/v1/engagement?employeeId=E+1"
        );
    }

    #[tokio::test]
    async fn rate_limit_dates_are_measured_against_the_response_date() {
        let base = crate::http::testing::serve_once(
            "429 Too Many Requests",
            &[
                "Retry-After: Wed, 01 Jan 2025 00:00:30 GMT",
                "Date: Wed, 01 Jan 2025 00:00:00 GMT",
            ],
        )
        .await;
        let err = client(base.as_str()).get_user("E1").await.unwrap_err();
        assert_eq!(
            err,
            LmsError::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
        );
        // Without the response's `Date` the date form is ignored (no local clock).
        let base = crate::http::testing::serve_once(
            "429 Too Many Requests",
            &["Retry-After: Wed, 01 Jan 2025 00:00:30 GMT"],
        )
        .await;
        let err = client(base.as_str()).get_user("E1").await.unwrap_err();
        assert_eq!(err, LmsError::RateLimited { retry_after: None });
    }

    #[tokio::test]
    async fn transport_errors_name_the_kind_not_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = client(&format!("http://127.0.0.1:{port}/api/v1"))
            .get_user("ada@example.com")
            .await
            .unwrap_err();
        let LmsError::Transport(text) = &err else {
            panic!("{err:?}");
        };
        assert!(text.starts_with("connect"), "{text}");
        assert!(!err.to_string().contains("example.com"), "{err}");
        assert!(!err.to_string().contains("127.0.0.1"), "{err}");
    }
}
