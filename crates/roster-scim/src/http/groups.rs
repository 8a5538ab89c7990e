//! `/Groups`: the Group endpoints. A write stores the Group, then the Users whose
//! membership changed (each an idempotent write of that User's `groups`), so a retry
//! of a request that failed half-way completes it.
use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{App, Result, authorize, base, query, read_json, scim};
use crate::error::ScimError;
use crate::filter::Filter;
use crate::group::{self, GroupRecord, Members};
use crate::list::{Page, list_response};
use crate::resource::{self, Resource};
use crate::schema::{GROUP_SCHEMA, Kind};
use crate::store::{Index, Scope, Store};

/// The member ids of a Group, sorted.
fn members_of<S: Store>(app: &App<S>, scope: &Scope, display_name: &str) -> Vec<String> {
    app.store
        .lookup(scope, Index::Group, display_name)
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn respond<S: Store>(
    app: &App<S>,
    scope: &Scope,
    status: StatusCode,
    record: &GroupRecord,
    headers: &HeaderMap,
    q: &[(String, String)],
) -> Result<Response> {
    let base = base(app, &scope.namespace, headers);
    let members = members_of(app, scope, record.display_name());
    let rendered = group::render(record, &members, &base);
    let body = resource::project_in(
        Kind::Group,
        &rendered,
        query(q, "attributes"),
        query(q, "excludedAttributes"),
    )?;
    let mut response = scim(status, Value::Object(body));
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&group::version(&record.resource, &members)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/Groups/{}", record.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok(response)
}

fn existing<S: Store>(app: &App<S>, scope: &Scope, id: &str) -> Result<GroupRecord> {
    app.store
        .get_group(scope, id)
        .ok_or_else(|| ScimError::not_found("no such Group").into())
}

fn check_if_match<S: Store>(
    app: &App<S>,
    scope: &Scope,
    headers: &HeaderMap,
    current: &GroupRecord,
) -> Result<()> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let v = v.to_str().map_err(|_| {
            ScimError::bad(crate::ScimType::InvalidVers, "If-Match is not readable")
        })?;
        let members = members_of(app, scope, current.display_name());
        if !resource::if_match(v, &group::version(&current.resource, &members)) {
            return Err(ScimError::precondition_failed().into());
        }
    }
    Ok(())
}

/// displayName is unique in the tenant, without regard to case (it is what members'
/// `groups` and the group rules name).
fn check_unique<S: Store>(
    app: &App<S>,
    scope: &Scope,
    res: &Resource,
    id: Option<&str>,
) -> Result<()> {
    let name = res
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if app
        .store
        .groups(scope)
        .iter()
        .any(|g| Some(g.id.as_str()) != id && g.display_name().eq_ignore_ascii_case(name))
    {
        return Err(ScimError::uniqueness("a Group with this displayName exists").into());
    }
    Ok(())
}

/// Every member of a Group: its Users and its pending members.
fn all_members<S: Store>(app: &App<S>, scope: &Scope, record: &GroupRecord) -> Members {
    let base = ""; // only `value` and `type` matter to a PATCH
    let mut all = group::pending(&record.resource);
    for id in members_of(app, scope, record.display_name()) {
        all.insert(id.clone(), group::user_member(&id, base));
    }
    all
}

/// Splits members into the Users of this tenant and the pending ids.
fn split<S: Store>(app: &App<S>, scope: &Scope, members: &Members) -> (BTreeSet<String>, Members) {
    let mut users = BTreeSet::new();
    let mut pending = Members::new();
    for (id, element) in members {
        if app.store.get(scope, id).is_some() {
            users.insert(id.clone());
        } else {
            pending.insert(id.clone(), element.clone());
        }
    }
    (users, pending)
}

/// A User that was a pending member of Groups joins them (called when it is created).
pub(super) async fn join_pending<S: Store>(app: &App<S>, scope: &Scope, user: &str) -> Result<()> {
    for g in app.store.groups(scope) {
        let mut pending = group::pending(&g.resource);
        if pending.remove(user).is_none() {
            continue;
        }
        let name = g.display_name().to_string();
        let joined = BTreeSet::from([user.to_string()]);
        set_memberships(app, scope, None, Some(&name), &BTreeSet::new(), &joined).await?;
        let version = resource::version(&g.resource);
        let mut res = g.resource.clone();
        group::set_pending(&mut res, &pending);
        app.store
            .replace_group(
                scope,
                GroupRecord {
                    id: g.id.clone(),
                    resource: res,
                },
                &version,
            )
            .await?;
    }
    Ok(())
}

fn stamp(res: &mut Resource, id: &str, created: Option<Value>, now: chrono::DateTime<chrono::Utc>) {
    let now = Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    res.insert("id".into(), Value::String(id.to_string()));
    res.insert("schemas".into(), json!([GROUP_SCHEMA]));
    res.insert(
        "meta".into(),
        json!({"resourceType": "Group", "created": created.unwrap_or_else(|| now.clone()), "lastModified": now}),
    );
}

/// Writes the Users whose membership changes: `old` → `new` names the Group before
/// and after (a rename moves every member), `before` → `after` its members.
async fn set_memberships<S: Store>(
    app: &App<S>,
    scope: &Scope,
    old: Option<&str>,
    new: Option<&str>,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> Result<()> {
    for id in before.union(after) {
        let Some(mut user) = app.store.get(scope, id) else {
            continue;
        };
        let mut groups: Vec<String> = user
            .spec
            .groups
            .iter()
            .filter(|g| Some(g.as_str()) != old && Some(g.as_str()) != new)
            .cloned()
            .collect();
        if let Some(new) = new
            && after.contains(id)
        {
            groups.push(new.to_string());
        }
        groups.sort();
        groups.dedup();
        if groups != user.spec.groups {
            let version = resource::version(&user.resource);
            user.spec.groups = groups;
            app.store.replace(scope, user, &version).await?;
        }
    }
    Ok(())
}

/// The tenant's Groups that match, rendered, ordered by id.
pub(super) fn matching<S: Store>(
    app: &App<S>,
    scope: &Scope,
    filter: Option<&Filter>,
    base: &str,
) -> Vec<Resource> {
    let mut matches = Vec::new();
    for g in app.store.groups(scope) {
        let members = members_of(app, scope, g.display_name());
        let rendered = group::render(&g, &members, base);
        if filter.is_none_or(|f| f.matches_in(Kind::Group, &rendered)) {
            matches.push(rendered);
        }
    }
    matches
}

pub(super) async fn list<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    respond_list(&app, &scope, &headers, &q)
}

/// `POST /Groups/.search`.
pub(super) async fn search<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let q = super::search_request(&app, body).await?;
    respond_list(&app, &scope, &headers, &q)
}

fn respond_list<S: Store>(
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
        .map(|f| Filter::parse_for(Kind::Group, f))
        .transpose()?;
    let base = base(app, &scope.namespace, headers);
    let matches = matching(app, scope, filter.as_ref(), &base);
    let mut resources = Vec::new();
    for r in &matches[page.range(matches.len())] {
        resources.push(Value::Object(resource::project_in(
            Kind::Group,
            r,
            query(q, "attributes"),
            query(q, "excludedAttributes"),
        )?));
    }
    Ok(scim(
        StatusCode::OK,
        list_response(matches.len(), page, resources),
    ))
}

pub(super) async fn get<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let record = existing(&app, &scope, &id)?;
    respond(&app, &scope, StatusCode::OK, &record, &headers, &q)
}

pub(super) async fn create<S: Store>(
    State(app): State<App<S>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let (mut res, members) = group::normalize(&body)?;
    check_unique(&app, &scope, &res, None)?;
    let (users, pending) = split(&app, &scope, &members);
    group::set_pending(&mut res, &pending);
    // Named from a digest of an unguessable seed: never from the group's name.
    let digest = Sha256::digest(app.store.new_seed().as_bytes());
    let id: String = format!(
        "g-{}",
        digest
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    stamp(&mut res, &id, None, app.store.now());
    let record = app
        .store
        .create_group(&scope, GroupRecord { id, resource: res })
        .await?;
    let name = record.display_name().to_string();
    set_memberships(&app, &scope, None, Some(&name), &BTreeSet::new(), &users).await?;
    respond(&app, &scope, StatusCode::CREATED, &record, &headers, &q)
}

/// Stores a Group's new content and members (PUT and PATCH).
async fn update<S: Store>(
    app: &App<S>,
    scope: &Scope,
    current: GroupRecord,
    mut res: Resource,
    members: Members,
) -> Result<GroupRecord> {
    check_unique(app, scope, &res, Some(&current.id))?;
    let before: BTreeSet<String> = members_of(app, scope, current.display_name())
        .into_iter()
        .collect();
    let (users, pending) = split(app, scope, &members);
    group::set_pending(&mut res, &pending);
    let created = current
        .resource
        .get("meta")
        .and_then(|m| m.get("created"))
        .cloned();
    let old = current.display_name().to_string();
    let mut unchanged = current.resource.clone();
    unchanged.remove("meta");
    let mut candidate = res.clone();
    candidate.remove("meta");
    candidate.insert("id".into(), Value::String(current.id.clone()));
    candidate.insert("schemas".into(), json!([GROUP_SCHEMA]));
    let record = if candidate == unchanged && users == before {
        current
    } else {
        stamp(&mut res, &current.id, created, app.store.now());
        let version = resource::version(&current.resource);
        app.store
            .replace_group(
                scope,
                GroupRecord {
                    id: current.id.clone(),
                    resource: res,
                },
                &version,
            )
            .await?
    };
    let new = record.display_name().to_string();
    set_memberships(app, scope, Some(&old), Some(&new), &before, &users).await?;
    Ok(record)
}

pub(super) async fn replace<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let current = existing(&app, &scope, &id)?;
    check_if_match(&app, &scope, &headers, &current)?;
    let (res, members) = group::normalize(&body)?;
    let record = update(&app, &scope, current, res, members).await?;
    respond(&app, &scope, StatusCode::OK, &record, &headers, &q)
}

pub(super) async fn patch<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let body = read_json(&app, body).await?;
    let current = existing(&app, &scope, &id)?;
    check_if_match(&app, &scope, &headers, &current)?;
    let before = all_members(&app, &scope, &current);
    let (res, members) = group::patch(&current.resource, &before, &body)?;
    let record = update(&app, &scope, current, res, members).await?;
    respond(&app, &scope, StatusCode::OK, &record, &headers, &q)
}

pub(super) async fn delete<S: Store>(
    State(app): State<App<S>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let scope = authorize(&app, &tenant, &headers)?;
    let current = existing(&app, &scope, &id)?;
    check_if_match(&app, &scope, &headers, &current)?;
    let name = current.display_name().to_string();
    let members: BTreeSet<String> = members_of(&app, &scope, &name).into_iter().collect();
    app.store.delete_group(&scope, &id).await?;
    set_memberships(&app, &scope, Some(&name), None, &members, &BTreeSet::new()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
