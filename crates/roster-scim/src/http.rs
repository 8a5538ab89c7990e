//! The SCIM HTTP surface: an axum [`Router`] over a [`Store`].
//!
//! Base path: `/scim/v2/{tenant}/…`, where `{tenant}` is the Tenant's namespace. The
//! identity provider is configured with that URL and the tenant's bearer token; the
//! token is checked against the token of *that* namespace only (a digest comparison in
//! constant time), so a token of tenant A on B's path is a 401 like any wrong token,
//! and a request never reaches another tenant's Users. A path-based tenant works
//! behind one Service, one Ingress host and one certificate; host-based routing can be
//! layered on by an Ingress that rewrites to this path.
//!
//! Every failure is an RFC 7644 §3.12 error body with `application/scim+json`.
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ScimError;
use crate::filter::Filter;
use crate::list::{Page, list_response};
use crate::mapping;
use crate::patch;
use crate::resource::{self, Resource};
use crate::schema;
use crate::store::{Index, Record, Scope, Store};

/// The media type of every SCIM body (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// Limits and addressing of the surface.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest request body, in bytes (larger: 413).
    pub max_body: usize,
    /// Largest page (`filter.maxResults`).
    pub max_results: usize,
    /// The externally visible origin (`https://scim.example.com`) for `meta.location`
    /// and `Location`; without it, the request's `Host` and `X-Forwarded-Proto`.
    pub public_origin: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body: 256 * 1024,
            max_results: 200,
            public_origin: None,
        }
    }
}

struct App<S> {
    store: Arc<S>,
    config: Config,
}

impl<S> Clone for App<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            config: self.config.clone(),
        }
    }
}

/// The router, to be served on the SCIM port.
pub fn router<S: Store>(store: Arc<S>, config: Config) -> Router {
    let app = App { store, config };
    Router::new()
        .route(
            "/scim/v2/{tenant}/ServiceProviderConfig",
            get(service_provider_config::<S>),
        )
        .route("/scim/v2/{tenant}/Schemas", get(schemas::<S>))
        .route("/scim/v2/{tenant}/Schemas/{id}", get(schema_by_id::<S>))
        .route("/scim/v2/{tenant}/ResourceTypes", get(resource_types::<S>))
        .route(
            "/scim/v2/{tenant}/ResourceTypes/{id}",
            get(resource_type_by_id::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Users",
            get(list_users::<S>).post(create_user::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Users/.search",
            axum::routing::post(search_users::<S>),
        )
        .route(
            "/scim/v2/{tenant}/.search",
            axum::routing::post(search_all::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Groups/.search",
            axum::routing::post(groups::search::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Users/{id}",
            get(get_user::<S>)
                .put(replace_user::<S>)
                .patch(patch_user::<S>)
                .delete(delete_user::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Groups",
            get(groups::list::<S>).post(groups::create::<S>),
        )
        .route(
            "/scim/v2/{tenant}/Groups/{id}",
            get(groups::get::<S>)
                .put(groups::replace::<S>)
                .patch(groups::patch::<S>)
                .delete(groups::delete::<S>),
        )
        .fallback(|| async { Failure(ScimError::not_found("no such endpoint")) })
        .method_not_allowed_fallback(|| async {
            Failure(ScimError::new(
                405,
                None,
                "method not allowed on this endpoint",
            ))
        })
        .layer(axum::middleware::map_response(scim_errors))
        .with_state(app)
}

/// What axum's extractors refuse (a path segment or query that is not UTF-8 when
/// decoded, say) comes back as plain text that echoes the input: made an RFC 7644
/// error body like every other failure, with a detail that echoes nothing.
async fn scim_errors(response: Response) -> Response {
    let status = response.status();
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == SCIM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_scim {
        return response;
    }
    let error = if status == StatusCode::BAD_REQUEST {
        ScimError::invalid_syntax("the request's path or query cannot be read")
    } else {
        ScimError::new(
            status.as_u16(),
            None,
            "the request cannot be served as it was sent",
        )
    };
    Failure(error).into_response()
}

/// A SCIM error as a response.
struct Failure(ScimError);

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, SCIM_JSON)],
            self.0.body().to_string(),
        )
            .into_response();
        if let Some(seconds) = self.0.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type Result<T> = std::result::Result<T, Failure>;

fn scim(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// Finds the Tenant of the namespace whose token was presented. Each candidate's
/// token is compared in constant time (digests of both, so not even the length is
/// compared in variable time), and all candidates are compared.
fn authorize<S: Store>(app: &App<S>, namespace: &str, headers: &HeaderMap) -> Result<Scope> {
    app.store.serving()?;
    let unauthorized = || {
        Failure(ScimError::new(
            401,
            None,
            "a valid bearer token for this tenant is required",
        ))
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for tenant in app.store.tenants(namespace) {
        let expected = Sha256::digest(&tenant.token);
        if bool::from(presented.ct_eq(&expected)) && !tenant.token.is_empty() {
            found = Some(tenant.name);
        }
    }
    let scope = found
        .map(|tenant| Scope {
            namespace: namespace.to_string(),
            tenant,
        })
        .ok_or_else(unauthorized)?;
    app.store.admit(&scope)?;
    Ok(scope)
}

fn base<S: Store>(app: &App<S>, tenant: &str, headers: &HeaderMap) -> String {
    let origin = app.config.public_origin.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        format!("{proto}://{host}")
    });
    format!("{}/scim/v2/{tenant}", origin.trim_end_matches('/'))
}

fn query<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn read_json<S: Store>(app: &App<S>, body: Body) -> Result<Value> {
    let bytes = axum::body::to_bytes(body, app.config.max_body)
        .await
        .map_err(|_| {
            ScimError::new(
                413,
                None,
                format!(
                    "the request body is larger than {} bytes",
                    app.config.max_body
                ),
            )
        })?;
    Ok(crate::json::read(&bytes)?)
}

/// The User as returned: `meta.location` and `meta.version` filled in.
fn render(record: &Record, base: &str) -> Resource {
    let mut res = record.resource.clone();
    let version = resource::version(&res);
    if let Some(Value::Object(meta)) = res.get_mut("meta") {
        meta.insert(
            "location".into(),
            Value::String(format!("{base}/Users/{}", record.id)),
        );
        meta.insert("version".into(), Value::String(version));
    }
    res
}

fn user_response(
    status: StatusCode,
    record: &Record,
    base: &str,
    q: &[(String, String)],
) -> Result<Response> {
    let res = render(record, base);
    let etag = resource::version(&record.resource);
    let body = resource::project(&res, query(q, "attributes"), query(q, "excludedAttributes"))?;
    let mut response = scim(status, Value::Object(body));
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/Users/{}", record.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok(response)
}

fn check_if_match(headers: &HeaderMap, current: &Record) -> Result<()> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let v = v.to_str().map_err(|_| {
            ScimError::bad(crate::ScimType::InvalidVers, "If-Match is not readable")
        })?;
        if !resource::if_match(v, &resource::version(&current.resource)) {
            return Err(ScimError::precondition_failed().into());
        }
    }
    Ok(())
}

async fn service_provider_config<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&app, &tenant, &headers)?;
    let base = base(&app, &tenant, &headers);
    Ok(scim(
        StatusCode::OK,
        schema::service_provider_config(&base, app.config.max_results),
    ))
}

fn listing(items: Vec<Value>) -> Value {
    let total = items.len();
    list_response(
        total,
        Page {
            start_index: 1,
            count: total.max(1),
        },
        items,
    )
}

async fn schemas<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&app, &tenant, &headers)?;
    Ok(scim(
        StatusCode::OK,
        listing(schema::schemas(&base(&app, &tenant, &headers))),
    ))
}

async fn schema_by_id<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&app, &tenant, &headers)?;
    schema::schemas(&base(&app, &tenant, &headers))
        .into_iter()
        .find(|s| s["id"] == id.as_str())
        .map(|s| scim(StatusCode::OK, s))
        .ok_or_else(|| ScimError::not_found("no such schema").into())
}

async fn resource_types<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&app, &tenant, &headers)?;
    Ok(scim(
        StatusCode::OK,
        listing(schema::resource_types(&base(&app, &tenant, &headers))),
    ))
}

async fn resource_type_by_id<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&app, &tenant, &headers)?;
    schema::resource_types(&base(&app, &tenant, &headers))
        .into_iter()
        .find(|s| s["id"] == id.as_str())
        .map(|s| scim(StatusCode::OK, s))
        .ok_or_else(|| ScimError::not_found("no such resource type").into())
}

async fn list_users<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    search(&app, &scope, &headers, &q)
}

/// `POST /Users/.search` (RFC 7644 §3.4.3): the query parameters in a SearchRequest.
async fn search_users<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let q = search_request(&app, body).await?;
    search(&app, &scope, &headers, &q)
}

/// A SearchRequest's members as query parameters. `sortBy` is ignored, as for GET
/// (ServiceProviderConfig: sort not supported).
async fn search_request<S: Store>(app: &App<S>, body: Body) -> Result<Vec<(String, String)>> {
    let Value::Object(request) = read_json(app, body).await? else {
        return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object").into());
    };
    let mut q = Vec::new();
    for (key, value) in request {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        q.push((key, text));
    }
    Ok(q)
}

/// `POST /.search` (RFC 7644 §3.4.3): Users, then Groups. A filter that names an
/// attribute one resource type lacks matches none of that type.
async fn search_all<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let q = search_request(&app, body).await?;
    let page = Page::parse(
        query(&q, "startIndex"),
        query(&q, "count"),
        app.config.max_results,
    )?;
    let text = query(&q, "filter").filter(|f| !f.trim().is_empty());
    let (user_filter, group_filter) = match text {
        None => (Ok(None), Ok(None)),
        Some(t) => (
            Filter::parse_for(schema::Kind::User, t).map(Some),
            Filter::parse_for(schema::Kind::Group, t).map(Some),
        ),
    };
    if let (Err(e), Err(_)) = (&user_filter, &group_filter) {
        return Err(e.clone().into());
    }
    let base = base(&app, &scope.namespace, &headers);
    let mut found: Vec<(schema::Kind, Resource)> = Vec::new();
    if let Ok(filter) = &user_filter {
        for r in user_matches(&app, &scope, filter.as_ref()) {
            found.push((schema::Kind::User, render(&r, &base)));
        }
    }
    if let Ok(filter) = &group_filter {
        for g in groups::matching(&app, &scope, filter.as_ref(), &base) {
            found.push((schema::Kind::Group, g));
        }
    }
    let mut resources = Vec::new();
    for (kind, r) in &found[page.range(found.len())] {
        let projected = resource::project_in(
            *kind,
            r,
            query(&q, "attributes"),
            query(&q, "excludedAttributes"),
        )
        .unwrap_or_else(|_| {
            // Attributes the other resource type does not have: its id and schemas.
            r.iter()
                .filter(|(k, _)| matches!(k.as_str(), "id" | "schemas"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        resources.push(Value::Object(projected));
    }
    Ok(scim(
        StatusCode::OK,
        list_response(found.len(), page, resources),
    ))
}

/// A filtered, paged, projected list of the tenant's Users.
fn search<S: Store>(
    app: &App<S>,
    scope: &Scope,
    headers: &HeaderMap,
    q: &[(String, String)],
) -> Result<Response> {
    let page = Page::parse(
        query(q, "startIndex"),
        query(q, "count"),
        app.config.max_results,
    )?;
    let filter = query(q, "filter")
        .filter(|f| !f.trim().is_empty())
        .map(Filter::parse_user)
        .transpose()?;
    let candidates = user_matches(app, scope, filter.as_ref());
    let base = base(app, &scope.namespace, headers);
    let mut resources = Vec::new();
    for r in &candidates[page.range(candidates.len())] {
        resources.push(Value::Object(resource::project(
            &render(r, &base),
            query(q, "attributes"),
            query(q, "excludedAttributes"),
        )?));
    }
    Ok(scim(
        StatusCode::OK,
        list_response(candidates.len(), page, resources),
    ))
}

/// The tenant's Users that match, ordered by id.
fn user_matches<S: Store>(app: &App<S>, scope: &Scope, filter: Option<&Filter>) -> Vec<Record> {
    // The lookups identity providers make are answered from the store's indexes.
    let mut candidates = match filter {
        Some(f) if f.eq_lookup("userName").is_some() => app.store.lookup(
            scope,
            Index::UserName,
            f.eq_lookup("userName").unwrap_or_default(),
        ),
        Some(f) if f.eq_lookup("externalId").is_some() => app.store.lookup(
            scope,
            Index::ExternalId,
            f.eq_lookup("externalId").unwrap_or_default(),
        ),
        Some(f) if f.eq_lookup("id").is_some() => app
            .store
            .get(scope, f.eq_lookup("id").unwrap_or_default())
            .into_iter()
            .collect(),
        _ => app.store.all(scope),
    };
    if let Some(f) = filter {
        candidates.retain(|r| f.matches(&r.resource));
    }
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    candidates
}

async fn get_user<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let record = app
        .store
        .get(&scope, &id)
        .ok_or_else(|| ScimError::not_found("no such User"))?;
    user_response(StatusCode::OK, &record, &base(&app, &tenant, &headers), &q)
}

/// userName is unique in the tenant, without regard to case.
fn check_unique<S: Store>(
    app: &App<S>,
    scope: &Scope,
    res: &Resource,
    id: Option<&str>,
) -> Result<()> {
    let user_name = res
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if app
        .store
        .lookup(scope, Index::UserName, user_name)
        .iter()
        .any(|r| Some(r.id.as_str()) != id)
    {
        return Err(ScimError::uniqueness("a User with this userName exists").into());
    }
    Ok(())
}

/// Builds the record to store: the DirectoryUser spec from the resource, with the
/// manager's email when the manager is known.
fn build<S: Store>(
    app: &App<S>,
    scope: &Scope,
    id: &str,
    res: Resource,
    employee_id: String,
) -> Result<Record> {
    let mapped = mapping::to_directory_user(&res, &scope.tenant, employee_id, |mid| {
        app.store.get(scope, mid).map(|m| m.spec.email)
    })?;
    Ok(Record {
        id: id.to_string(),
        resource: res,
        spec: mapped.spec,
        manager_id: mapped.manager_id,
    })
}

/// The reports of a User whose email is (now) known get it as their managerEmail (the
/// manager arrived after them, or their email changed).
async fn update_reports<S: Store>(app: &App<S>, scope: &Scope, manager: &Record) {
    for mut report in app.store.lookup(scope, Index::ManagerId, &manager.id) {
        if report.spec.manager_email.as_deref() != Some(manager.spec.email.as_str()) {
            let version = resource::version(&report.resource);
            report.spec.manager_email = Some(manager.spec.email.clone());
            // A concurrent change of the report wins; it resolves the manager itself.
            let _ = app.store.replace(scope, report, &version).await;
        }
    }
}

fn stamp(res: &mut Resource, id: &str, created: Option<Value>, now: chrono::DateTime<chrono::Utc>) {
    let now = Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    res.insert("id".into(), Value::String(id.to_string()));
    res.insert("meta".into(), json!({"resourceType": "User", "created": created.unwrap_or_else(|| now.clone()), "lastModified": now}));
    resource::set_schemas(res);
}

async fn create_user<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let mut res = resource::normalize_user(&body)?;
    resource::validate_user(&res)?;
    check_unique(&app, &scope, &res, None)?;
    let employee_id = mapping::employee_id(&res, &app.store.new_seed(), None)?;
    let id = mapping::object_name(&employee_id);
    if app.store.get(&scope, &id).is_some() {
        return Err(ScimError::uniqueness("a User with this employeeNumber exists").into());
    }
    stamp(&mut res, &id, None, app.store.now());
    let record = build(&app, &scope, &id, res, employee_id)?;
    let record = app.store.create(&scope, record).await?;
    update_reports(&app, &scope, &record).await;
    groups::join_pending(&app, &scope, &record.id).await?;
    user_response(
        StatusCode::CREATED,
        &record,
        &base(&app, &tenant, &headers),
        &q,
    )
}

/// Stores a new version of an existing User (PUT and PATCH); no write when nothing
/// changed.
async fn store_update<S: Store>(
    app: &App<S>,
    scope: &Scope,
    existing: Record,
    mut res: Resource,
) -> Result<Record> {
    resource::validate_user(&res)?;
    check_unique(app, scope, &res, Some(&existing.id))?;
    let employee_id = mapping::employee_id(
        &res,
        &existing.id,
        Some(mapping::Existing {
            employee_id: &existing.spec.employee_id,
            employee_number: mapping::employee_number(&existing.resource),
        }),
    )?;
    let created = existing
        .resource
        .get("meta")
        .and_then(|m| m.get("created"))
        .cloned();
    let mut unchanged = existing.resource.clone();
    unchanged.remove("meta");
    let mut candidate = res.clone();
    candidate.remove("meta");
    candidate.insert("id".into(), Value::String(existing.id.clone()));
    resource::set_schemas(&mut candidate);
    if candidate == unchanged {
        return Ok(existing);
    }
    stamp(&mut res, &existing.id, created, app.store.now());
    let mut record = build(app, scope, &existing.id, res, employee_id)?;
    // Memberships are the Groups' to change, never a User's PUT or PATCH.
    record.spec.groups = existing.spec.groups.clone();
    let version = resource::version(&existing.resource);
    let record = app.store.replace(scope, record, &version).await?;
    if record.spec.email != existing.spec.email {
        update_reports(app, scope, &record).await;
    }
    Ok(record)
}

async fn replace_user<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let existing = app
        .store
        .get(&scope, &id)
        .ok_or_else(|| ScimError::not_found("no such User"))?;
    check_if_match(&headers, &existing)?;
    // PUT replaces: what the body omits is cleared (RFC 7644 §3.5.1).
    let res = resource::normalize_user(&body)?;
    let record = store_update(&app, &scope, existing, res).await?;
    user_response(StatusCode::OK, &record, &base(&app, &tenant, &headers), &q)
}

async fn patch_user<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let existing = app
        .store
        .get(&scope, &id)
        .ok_or_else(|| ScimError::not_found("no such User"))?;
    check_if_match(&headers, &existing)?;
    let res = patch::apply(&existing.resource, &body)?;
    let record = store_update(&app, &scope, existing, res).await?;
    user_response(StatusCode::OK, &record, &base(&app, &tenant, &headers), &q)
}

async fn delete_user<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let existing = app
        .store
        .get(&scope, &id)
        .ok_or_else(|| ScimError::not_found("no such User"))?;
    check_if_match(&headers, &existing)?;
    app.store.delete(&scope, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

mod groups;
#[cfg(test)]
mod tests;
