//! The stand-in's HTTP surface: the contract's routes under `/api/v1`, the gate every
//! API request passes (faults, bearer token, rate limit, idempotency, call log), and
//! the admin routes under `/_standin`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{MatchedPath, Path, RawPathParams, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::calls::Call;
use super::faults::{Fault, NOMINAL_LIMIT, RateLimit};
use super::seed::LmsSeed;
use super::state::{Begin, Fail, LmsState, Outcome, Reply, Stored};
use roster_connectors::lms::{
    IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MERGE_PATCH, PROBLEM_TYPE_BASE,
};

/// Where the contract's API is mounted (the base URL's path).
pub const API_PREFIX: &str = "/api/v1";

/// Where the stand-in's own admin routes are mounted.
pub const ADMIN_PREFIX: &str = "/_standin";

/// Largest accepted request body.
const MAX_BODY: usize = 1 << 20;

/// One operation of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub method: &'static str,
    /// Route template below [`API_PREFIX`], as in the OpenAPI document.
    pub template: &'static str,
    /// The OpenAPI `operationId`.
    pub id: &'static str,
    /// Takes an `Idempotency-Key` and changes state.
    pub mutating: bool,
}

const fn op(
    method: &'static str,
    template: &'static str,
    id: &'static str,
    mutating: bool,
) -> Operation {
    Operation {
        method,
        template,
        id,
        mutating,
    }
}

/// Every operation the stand-in serves (the contract of
/// `docs/learning-platform.openapi.yaml`).
pub const OPERATIONS: &[Operation] = &[
    op("POST", "/users", "createUser", true),
    op("GET", "/users/{employeeId}", "getUser", false),
    op("PUT", "/users/{employeeId}", "upsertUser", true),
    op("PATCH", "/users/{employeeId}", "updateUser", true),
    op(
        "POST",
        "/users/{employeeId}/access/revoke",
        "revokeAccess",
        true,
    ),
    op(
        "POST",
        "/users/{employeeId}/access/restore",
        "restoreAccess",
        true,
    ),
    op(
        "GET",
        "/users/{employeeId}/involvements",
        "listInvolvements",
        false,
    ),
    op(
        "DELETE",
        "/events/{eventId}/attendees/{employeeId}",
        "removeEventAttendee",
        true,
    ),
    op(
        "DELETE",
        "/events/{eventId}/roles/{role}/{employeeId}",
        "removeEventRole",
        true,
    ),
    op(
        "PUT",
        "/events/{eventId}/calendar-link",
        "setEventCalendarLink",
        true,
    ),
    op("DELETE", "/sessions/{sessionId}", "deleteSession", true),
    op(
        "DELETE",
        "/sessions/{sessionId}/attendees/{employeeId}",
        "removeSessionAttendee",
        true,
    ),
    op(
        "PUT",
        "/sessions/{sessionId}/calendar-link",
        "setSessionCalendarLink",
        true,
    ),
    op("GET", "/users/{employeeId}/rules", "listUserRules", false),
    op("POST", "/rules/{ruleId}/transfer", "transferRule", true),
    op("GET", "/users/{employeeId}/groups", "listUserGroups", false),
    op(
        "PUT",
        "/groups/{group}/members/{employeeId}",
        "addGroupMember",
        true,
    ),
    op(
        "DELETE",
        "/groups/{group}/members/{employeeId}",
        "removeGroupMember",
        true,
    ),
    op(
        "GET",
        "/users/{employeeId}/assignments",
        "listUserAssignments",
        false,
    ),
    op(
        "DELETE",
        "/assignments/{assignmentId}",
        "deleteAssignment",
        true,
    ),
    op(
        "POST",
        "/users/{employeeId}/anonymize",
        "anonymizeUser",
        true,
    ),
    op("POST", "/users/{employeeId}/purge", "purgeUser", true),
    op("GET", "/engagement", "listEngagement", false),
    op("DELETE", "/tenant", "deleteTenant", true),
];

/// The stand-in's routes over `state`: the API under `/api/v1`, admin under `/_standin`.
pub fn router(state: LmsState) -> Router {
    let api = Router::new()
        .route("/users", post(create_user))
        .route(
            "/users/{employeeId}",
            get(get_user).put(upsert_user).patch(update_user),
        )
        .route("/users/{employeeId}/access/revoke", post(revoke_access))
        .route("/users/{employeeId}/access/restore", post(restore_access))
        .route("/users/{employeeId}/involvements", get(involvements))
        .route(
            "/events/{eventId}/attendees/{employeeId}",
            delete(remove_event_attendee),
        )
        .route(
            "/events/{eventId}/roles/{role}/{employeeId}",
            delete(remove_event_role),
        )
        .route(
            "/events/{eventId}/calendar-link",
            put(set_event_calendar_link),
        )
        .route("/sessions/{sessionId}", delete(delete_session))
        .route(
            "/sessions/{sessionId}/attendees/{employeeId}",
            delete(remove_session_attendee),
        )
        .route(
            "/sessions/{sessionId}/calendar-link",
            put(set_session_calendar_link),
        )
        .route("/users/{employeeId}/rules", get(user_rules))
        .route("/rules/{ruleId}/transfer", post(transfer_rule))
        .route("/users/{employeeId}/groups", get(user_groups))
        .route(
            "/groups/{group}/members/{employeeId}",
            put(add_group_member).delete(remove_group_member),
        )
        .route("/users/{employeeId}/assignments", get(user_assignments))
        .route("/assignments/{assignmentId}", delete(delete_assignment))
        .route("/users/{employeeId}/anonymize", post(anonymize))
        .route("/users/{employeeId}/purge", post(purge))
        .route("/engagement", get(engagement))
        .route("/tenant", delete(delete_tenant))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), gate));
    let admin = Router::new()
        .route("/calls", get(admin_calls).delete(admin_clear_calls))
        .route("/duplicates", get(admin_duplicates))
        .route(
            "/faults",
            get(admin_faults)
                .post(admin_add_faults)
                .delete(admin_clear_faults),
        )
        .route("/faults/{id}", delete(admin_remove_fault))
        .route("/rate-limit", put(admin_rate_limit))
        .route("/state", get(admin_state))
        .route("/seed", post(admin_seed))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_gate));
    Router::new()
        .nest(API_PREFIX, api)
        .nest(ADMIN_PREFIX, admin)
        .fallback(fallback)
        .with_state(state)
}

// ---- responses ----------------------------------------------------------------

fn problem(fail: Fail) -> Response {
    let status = StatusCode::from_u16(fail.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "type": format!("{PROBLEM_TYPE_BASE}{}", fail.slug),
        "title": fail.title,
        "status": fail.status,
        "detail": fail.detail,
    });
    (
        status,
        [(CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok(Reply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Ok(Reply::Created { location }) => (
            StatusCode::CREATED,
            [(LOCATION, format!("{API_PREFIX}{location}"))],
        )
            .into_response(),
        Ok(Reply::Json(value)) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Err(fail) => problem(fail),
    }
}

fn unauthorized() -> Response {
    let mut response = problem(Fail::new(
        401,
        "unauthorized",
        "Unauthorized",
        "A valid bearer token is required.",
    ));
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn too_many_requests(limit: u32, retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut response = problem(Fail::new(
        429,
        "rate-limited",
        "Too many requests",
        format!("Retry after {seconds} seconds."),
    ));
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    headers.insert(
        HeaderName::from_static("ratelimit-limit"),
        HeaderValue::from(limit),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-remaining"),
        HeaderValue::from(0u32),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-reset"),
        HeaderValue::from(seconds),
    );
    response
}

fn injected_error(status: u16) -> Response {
    problem(if status == 503 {
        Fail::new(
            503,
            "unavailable",
            "Service unavailable",
            "The service is temporarily unavailable.",
        )
    } else {
        Fail::new(
            status,
            "internal-error",
            "Internal server error",
            "The request could not be handled.",
        )
    })
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Fail> {
    serde_json::from_slice(body).map_err(|err| {
        // serde's messages can quote the value sent: report the position only.
        Fail::new(
            400,
            "invalid-body",
            "Invalid request body",
            format!(
                "The body does not match the operation's schema (line {}, column {}).",
                err.line(),
                err.column()
            ),
        )
    })
}

fn query_param(query: &Option<String>, name: &str) -> Option<String> {
    let query = query.as_deref()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

// ---- the gate -------------------------------------------------------------------

/// Everything the call log needs, gathered while the request passes the gate.
struct Draft {
    at: chrono::DateTime<Utc>,
    method: String,
    route: String,
    operation: String,
    path: String,
    employee_id: Option<String>,
    idempotency_key: Option<String>,
    fault: Option<String>,
    fingerprint: Option<String>,
    applied: bool,
    replayed: bool,
}

fn finish(state: &LmsState, draft: Draft, response: Response) -> Response {
    let mut inner = state.lock();
    let seq = inner.next_seq();
    inner.calls.push(Call {
        seq,
        at: draft.at,
        method: draft.method,
        route: draft.route,
        operation: draft.operation,
        path: draft.path,
        employee_id: draft.employee_id,
        idempotency_key: draft.idempotency_key,
        status: response.status().as_u16(),
        applied: draft.applied,
        replayed: draft.replayed,
        fault: draft.fault,
        fingerprint: draft.fingerprint,
    });
    response
}

fn header(request: &Request, name: impl axum::http::header::AsHeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    method.hash(&mut hasher);
    path_and_query.hash(&mut hasher);
    body.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Runs around every matched API route: faults, authentication, rate limit,
/// idempotency, call log — in that order.
async fn gate(
    State(state): State<LmsState>,
    matched: MatchedPath,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let lookup_method = if request.method() == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let template = matched
        .as_str()
        .strip_prefix(API_PREFIX)
        .unwrap_or(matched.as_str())
        .to_string();
    let operation = OPERATIONS
        .iter()
        .find(|o| o.method == lookup_method && o.template == template)
        .copied();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("", |pq| pq.as_str())
        .to_string();
    let mut draft = Draft {
        at: Utc::now(),
        method: method.clone(),
        route: template.clone(),
        operation: operation.map_or("unknown", |o| o.id).to_string(),
        path: request
            .uri()
            .path()
            .strip_prefix(API_PREFIX)
            .unwrap_or(request.uri().path())
            .to_string(),
        employee_id: params
            .iter()
            .find(|(name, _)| *name == "employeeId")
            .map(|(_, value)| value.to_string())
            .or_else(|| query_param(&request.uri().query().map(str::to_string), "employeeId")),
        idempotency_key: header(&request, IDEMPOTENCY_KEY),
        fault: None,
        fingerprint: None,
        applied: false,
        replayed: false,
    };

    let fired = state
        .lock()
        .faults
        .fire(&method, &template, &draft.operation);
    draft.fault = fired.label();
    if !fired.latency.is_zero() {
        tokio::time::sleep(fired.latency).await;
    }

    let authorized = state
        .lock()
        .authorized(header(&request, AUTHORIZATION).as_deref());
    if !authorized {
        return finish(&state, draft, unauthorized());
    }
    let quota = state.lock().limiter.take(Instant::now());
    if let Some(quota) = quota
        && !quota.allowed
    {
        return finish(&state, draft, too_many_requests(quota.limit, quota.reset));
    }
    if let Some(retry_after) = fired.throttle {
        let limit = quota.map_or(NOMINAL_LIMIT, |q| q.limit);
        return finish(&state, draft, too_many_requests(limit, retry_after));
    }
    if let Some(status) = fired.error
        && !fired.error_after_apply
    {
        return finish(&state, draft, injected_error(status));
    }
    let Some(operation) = operation else {
        // A method the route does not serve: axum answers (405).
        let response = next.run(request).await;
        return finish(&state, draft, response);
    };

    let mut request = request;
    let mut claimed: Option<(String, String)> = None;
    if operation.mutating {
        let key = match draft.idempotency_key.clone() {
            Some(key) if !key.trim().is_empty() && key.len() <= 255 => key,
            _ => {
                let fail = Fail::new(
                    400,
                    "idempotency-key-required",
                    "Idempotency key required",
                    "Every mutating request needs an Idempotency-Key header of 1-255 characters.",
                );
                return finish(&state, draft, problem(fail));
            }
        };
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
            let fail = Fail::new(
                413,
                "body-too-large",
                "Request body too large",
                "The body must be at most 1 MiB.",
            );
            return finish(&state, draft, problem(fail));
        };
        let print = fingerprint(&method, &path_and_query, &bytes);
        draft.fingerprint = Some(print.clone());
        let begin = state.lock().begin(&key, &print);
        match begin {
            Begin::Fresh => {}
            Begin::Replay(stored) => {
                draft.replayed = true;
                return finish(&state, draft, replay(stored));
            }
            Begin::InFlight => {
                let mut response = problem(Fail::new(
                    409,
                    "idempotency-in-progress",
                    "Request in progress",
                    "A request with this idempotency key is still being processed; retry later.",
                ));
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(1u32));
                return finish(&state, draft, response);
            }
            Begin::Mismatch => {
                let fail = Fail::new(
                    422,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "This idempotency key was used for a different request.",
                );
                return finish(&state, draft, problem(fail));
            }
        }
        request = Request::from_parts(parts, Body::from(bytes));
        claimed = Some((key, print));
    }

    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    if let Some((key, print)) = claimed {
        let status = parts.status.as_u16();
        let stored = (status < 500).then(|| Stored {
            fingerprint: print,
            status,
            headers: [CONTENT_TYPE, LOCATION]
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(name)?.to_str().ok()?;
                    Some((name.as_str().to_string(), value.to_string()))
                })
                .collect(),
            body: bytes.to_vec(),
        });
        state.lock().finish(&key, stored);
        draft.applied = parts.status.is_success();
    }
    let mut response = Response::from_parts(parts, Body::from(bytes));
    if let Some(status) = fired.error
        && fired.error_after_apply
    {
        response = injected_error(status);
    }
    if let Some(quota) = quota {
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(quota.limit),
        );
        headers.insert(
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(quota.remaining),
        );
        headers.insert(
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(quota.reset.as_secs() + u64::from(quota.reset.subsec_nanos() > 0)),
        );
    }
    finish(&state, draft, response)
}

fn replay(stored: Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    debug_assert!(IDEMPOTENT_REPLAYED.eq_ignore_ascii_case("idempotent-replayed"));
    response
}

/// Unknown routes: logged; 401 without the token, 404 with it.
async fn fallback(State(state): State<LmsState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with(ADMIN_PREFIX) {
        return problem(Fail::new(
            404,
            "route-not-found",
            "Not found",
            "No such admin route.",
        ));
    }
    let draft = Draft {
        at: Utc::now(),
        method: request.method().as_str().to_string(),
        route: "<unmatched>".into(),
        operation: "unknown".into(),
        path: path.strip_prefix(API_PREFIX).unwrap_or(&path).to_string(),
        employee_id: None,
        idempotency_key: header(&request, IDEMPOTENCY_KEY),
        fault: None,
        fingerprint: None,
        applied: false,
        replayed: false,
    };
    let authorized = state
        .lock()
        .authorized(header(&request, AUTHORIZATION).as_deref());
    let response = if authorized {
        problem(Fail::new(
            404,
            "route-not-found",
            "Not found",
            "No operation of the contract has this path.",
        ))
    } else {
        unauthorized()
    };
    finish(&state, draft, response)
}

async fn method_not_allowed() -> Response {
    problem(Fail::new(
        405,
        "method-not-allowed",
        "Method not allowed",
        "This path does not support this method.",
    ))
}

// ---- API handlers -------------------------------------------------------------------

async fn get_user(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().get_user(&id))
}

async fn create_user(State(s): State<LmsState>, body: Bytes) -> Response {
    respond(parse(&body).and_then(|body| s.lock().create_user(body)))
}

async fn update_user(
    State(s): State<LmsState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let merge_patch = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(MERGE_PATCH));
    if !merge_patch {
        return problem(Fail::new(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "A profile update is a JSON merge patch: send Content-Type: application/merge-patch+json.",
        ));
    }
    respond(parse(&body).and_then(|patch| s.lock().update_user(&id, patch)))
}

async fn upsert_user(State(s): State<LmsState>, Path(id): Path<String>, body: Bytes) -> Response {
    respond(parse(&body).and_then(|profile| s.lock().upsert_user(&id, profile)))
}

async fn revoke_access(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().revoke_access(&id))
}

async fn restore_access(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().restore_access(&id))
}

async fn involvements(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().involvements(&id, Utc::now()))
}

async fn remove_event_attendee(
    State(s): State<LmsState>,
    Path((event, id)): Path<(String, String)>,
) -> Response {
    respond(s.lock().remove_event_attendee(&event, &id, Utc::now()))
}

async fn remove_event_role(
    State(s): State<LmsState>,
    Path((event, role, id)): Path<(String, String, String)>,
) -> Response {
    respond(s.lock().remove_event_role(&event, &role, &id, Utc::now()))
}

async fn set_event_calendar_link(
    State(s): State<LmsState>,
    Path(event): Path<String>,
    body: Bytes,
) -> Response {
    respond(parse(&body).and_then(|link| s.lock().set_event_calendar_link(&event, link)))
}

async fn delete_session(State(s): State<LmsState>, Path(session): Path<String>) -> Response {
    respond(s.lock().delete_session(&session, Utc::now()))
}

async fn remove_session_attendee(
    State(s): State<LmsState>,
    Path((session, id)): Path<(String, String)>,
) -> Response {
    respond(s.lock().remove_session_attendee(&session, &id, Utc::now()))
}

async fn set_session_calendar_link(
    State(s): State<LmsState>,
    Path(session): Path<String>,
    body: Bytes,
) -> Response {
    respond(parse(&body).and_then(|link| s.lock().set_session_calendar_link(&session, link)))
}

async fn user_rules(
    State(s): State<LmsState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let role = query_param(&query, "role");
    respond(s.lock().user_rules(&id, role.as_deref()))
}

async fn transfer_rule(
    State(s): State<LmsState>,
    Path(rule): Path<String>,
    body: Bytes,
) -> Response {
    respond(parse(&body).and_then(|transfer| s.lock().transfer_rule(&rule, transfer)))
}

async fn user_groups(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().user_groups(&id))
}

async fn add_group_member(
    State(s): State<LmsState>,
    Path((group, id)): Path<(String, String)>,
) -> Response {
    respond(s.lock().add_group_member(&group, &id))
}

async fn remove_group_member(
    State(s): State<LmsState>,
    Path((group, id)): Path<(String, String)>,
) -> Response {
    respond(s.lock().remove_group_member(&group, &id))
}

async fn user_assignments(
    State(s): State<LmsState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let status = query_param(&query, "status");
    respond(s.lock().user_assignments(&id, status.as_deref()))
}

async fn delete_assignment(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().delete_assignment(&id))
}

async fn anonymize(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().anonymize(&id))
}

async fn purge(State(s): State<LmsState>, Path(id): Path<String>) -> Response {
    respond(s.lock().purge(&id))
}

async fn engagement(State(s): State<LmsState>, RawQuery(query): RawQuery) -> Response {
    let employee_id = query_param(&query, "employeeId");
    respond(s.lock().engagement(employee_id.as_deref()))
}

async fn delete_tenant(State(s): State<LmsState>) -> Response {
    respond(s.lock().delete_tenant())
}

// ---- admin ------------------------------------------------------------------------

/// Admin routes take the same bearer token as the API (the state export holds PII).
async fn admin_gate(State(state): State<LmsState>, request: Request, next: Next) -> Response {
    let authorized = state
        .lock()
        .authorized(header(&request, AUTHORIZATION).as_deref());
    if authorized {
        next.run(request).await
    } else {
        unauthorized()
    }
}

fn json_ok(value: serde_json::Value) -> Response {
    respond(Ok(Reply::Json(value)))
}

async fn admin_calls(State(s): State<LmsState>) -> Response {
    json_ok(json!({ "items": s.calls() }))
}

async fn admin_clear_calls(State(s): State<LmsState>) -> Response {
    s.clear_calls();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_duplicates(State(s): State<LmsState>) -> Response {
    json_ok(json!({ "items": s.duplicates() }))
}

async fn admin_faults(State(s): State<LmsState>) -> Response {
    let items: Vec<_> = s
        .faults()
        .into_iter()
        .map(|(id, fault)| json!({ "id": id, "fault": fault }))
        .collect();
    json_ok(json!({ "items": items }))
}

/// Body: one fault or an array of faults. Answers 201 `{"ids": [...]}`.
async fn admin_add_faults(State(s): State<LmsState>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Fault),
        Many(Vec<Fault>),
    }
    let faults = match parse::<OneOrMany>(&body) {
        Ok(OneOrMany::One(fault)) => vec![fault],
        Ok(OneOrMany::Many(faults)) => faults,
        Err(fail) => return problem(fail),
    };
    if let Some(why) = faults.iter().find_map(|f| f.check().err()) {
        return problem(Fail::new(400, "invalid-fault", "Invalid fault", why));
    }
    let ids: Vec<u64> = faults.into_iter().map(|f| s.add_fault(f)).collect();
    (
        StatusCode::CREATED,
        [(CONTENT_TYPE, "application/json")],
        json!({ "ids": ids }).to_string(),
    )
        .into_response()
}

async fn admin_clear_faults(State(s): State<LmsState>) -> Response {
    s.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_remove_fault(State(s): State<LmsState>, Path(id): Path<u64>) -> Response {
    if s.remove_fault(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(Fail::new(
            404,
            "fault-not-found",
            "Fault not found",
            "No installed fault has this ID.",
        ))
    }
}

/// Body: `{"limit": 25, "windowMs": 1000}`, or `null` to remove the limit.
async fn admin_rate_limit(State(s): State<LmsState>, body: Bytes) -> Response {
    match parse::<Option<RateLimit>>(&body) {
        Ok(limit) => {
            s.set_rate_limit(limit);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(fail) => problem(fail),
    }
}

async fn admin_state(State(s): State<LmsState>) -> Response {
    json_ok(json!(s.export()))
}

async fn admin_seed(State(s): State<LmsState>, body: Bytes) -> Response {
    let seed = match parse::<LmsSeed>(&body) {
        Ok(seed) => seed,
        Err(fail) => return problem(fail),
    };
    match s.seed(seed) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => problem(Fail::new(
            400,
            "invalid-seed",
            "Invalid seed",
            err.to_string(),
        )),
    }
}
