//! The HTTP surface on the in-memory store: request sequences as Okta, Entra ID and
//! OneLogin send them, the discovery endpoints, and a negative table (status,
//! `scimType`, nothing written).
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::store::{MemoryStore, Scope};

fn scope_a() -> Scope {
    Scope {
        namespace: "tenant-a".into(),
        tenant: "tenant-a".into(),
    }
}

const A: &str = "/scim/v2/tenant-a";
const TOKEN_A: &str = "token-of-tenant-a";
const TOKEN_B: &str = "token-of-tenant-b";
const EXT: &str = schema::ENTERPRISE_SCHEMA;

struct Harness {
    store: MemoryStore,
    router: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn harness() -> Harness {
    let store = MemoryStore::new(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap())
        .with_tenant("tenant-a", TOKEN_A)
        .with_tenant("tenant-b", TOKEN_B);
    let config = Config {
        max_body: 4096,
        max_results: 50,
        public_origin: Some("https://scim.example.com".into()),
    };
    Harness {
        router: router(Arc::new(store.clone()), config),
        store,
    }
}

impl Harness {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri.replace(' ', "%20").replace('"', "%22"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", SCIM_JSON);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if !body.is_null() {
            assert_eq!(headers[header::CONTENT_TYPE], SCIM_JSON, "{method} {uri}");
        }
        Reply {
            status,
            headers,
            body,
        }
    }
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        self.send(method, uri, Some(TOKEN_A), body.map(|b| b.to_string()), &[])
            .await
    }
}

fn jane() -> Value {
    json!({
        "schemas": [schema::USER_SCHEMA, EXT],
        "userName": "jane.doe@example.com",
        "externalId": "00u1abcd",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": true}],
        "title": "Engineer",
        "active": true,
        EXT: {"employeeNumber": "1001", "department": "R&D"}
    })
}

#[tokio::test]
async fn okta_creates_finds_updates_and_deactivates() {
    let h = harness();
    // Okta's probe and lookup on an empty tenant.
    let r = h
        .call("GET", &format!("{A}/Users?startIndex=1&count=2"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    let r = h
        .call(
            "GET",
            &format!(
                r#"{A}/Users?filter=userName eq "jane.doe@example.com"&startIndex=1&count=100"#
            ),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);

    let r = h.call("POST", &format!("{A}/Users"), Some(jane())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(id, "e-1001", "named from the employee number");
    assert_eq!(
        r.headers[header::LOCATION],
        format!("https://scim.example.com{A}/Users/{id}")
    );
    assert_eq!(
        r.body["meta"]["location"],
        format!("https://scim.example.com{A}/Users/{id}")
    );
    assert_eq!(
        r.headers[header::ETAG].to_str().unwrap(),
        r.body["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["created"], "2026-12-01T12:00:00.000Z");
    let spec = &h.store.records(&scope_a())[0].spec;
    assert_eq!(
        (
            spec.employee_id.as_str(),
            spec.full_name.as_str(),
            spec.email.as_str()
        ),
        ("1001", "Jane Doe", "jane.doe@example.com")
    );
    assert_eq!(spec.source, roster_api::RecordSource::Scim);

    // A duplicate userName, in another case: 409 uniqueness.
    let mut dup = jane();
    dup["userName"] = json!("JANE.DOE@EXAMPLE.COM");
    dup[EXT]["employeeNumber"] = json!("1002");
    let r = h.call("POST", &format!("{A}/Users"), Some(dup)).await;
    assert_eq!(
        (r.status, r.body["scimType"].as_str()),
        (StatusCode::CONFLICT, Some("uniqueness"))
    );
    assert_eq!(r.body["status"], "409");

    // Lookup is case-insensitive on userName.
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Users?filter=userName eq "Jane.Doe@Example.com""#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());

    // A full PUT with active:false clears what it omits (title).
    let mut put = jane();
    put["active"] = json!(false);
    put.as_object_mut().unwrap().remove("title");
    let r = h.call("PUT", &format!("{A}/Users/{id}"), Some(put)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert!(r.body.get("title").is_none());
    assert_eq!(r.body["meta"]["created"], "2026-12-01T12:00:00.000Z");
    let spec = &h.store.records(&scope_a())[0].spec;
    assert!(!spec.active);
    assert_eq!(spec.title, None);

    // Reactivate with a path-less PATCH, then deactivate again the same way.
    for active in [true, false] {
        let r = h
            .call("PATCH", &format!("{A}/Users/{id}"), Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "value": {"active": active}}]})))
            .await;
        assert_eq!(
            (r.status, &r.body["active"]),
            (StatusCode::OK, &json!(active))
        );
    }
    // A deactivated user stays readable.
    let r = h.call("GET", &format!("{A}/Users/{id}"), None).await;
    assert_eq!(
        (r.status, &r.body["active"]),
        (StatusCode::OK, &json!(false))
    );
}

#[tokio::test]
async fn entra_tests_the_connection_patches_and_deletes() {
    let h = harness();
    // The connection test: a random GUID, 200 and an empty list.
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Users?filter=userName eq "8f3c2e0a-0b6a-4a4e-9f61-2d5d1f3c9a77""#),
            None,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["totalResults"]),
        (StatusCode::OK, &json!(0))
    );

    // A report arrives before their manager; Entra names the manager by SCIM id.
    let report = json!({
        "schemas": [schema::USER_SCHEMA, EXT], "userName": "rep@example.com", "externalId": "rep",
        "displayName": "Rep", "active": "True",
        "emails": [{"value": "rep@example.com", "type": "work", "primary": "true"}],
        EXT: {"employeeNumber": "2001", "manager": "e-2000"}
    });
    let r = h.call("POST", &format!("{A}/Users"), Some(report)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[EXT]["manager"], json!({"value": "e-2000"}));
    let rep_id = r.body["id"].as_str().unwrap().to_string();
    let manager = json!({"userName": "boss@example.com", "displayName": "Boss", "emails": [{"value": "boss@example.com", "primary": true}], EXT: {"employeeNumber": "2000"}});
    assert_eq!(
        h.call("POST", &format!("{A}/Users"), Some(manager))
            .await
            .status,
        StatusCode::CREATED
    );
    let rep = h
        .store
        .records(&scope_a())
        .into_iter()
        .find(|r| r.id == rep_id)
        .unwrap();
    assert_eq!(
        rep.spec.manager_email.as_deref(),
        Some("boss@example.com"),
        "resolved when the manager arrived"
    );

    // Entra's lookups: externalId, and the work email by value filter.
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Users?filter=externalId eq "rep""#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Users?filter=emails[type eq "work"].value eq "rep@example.com""#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);

    // Default flavour: capitalised ops and strings for booleans.
    let r = h
        .call(
            "PATCH",
            &format!("{A}/Users/{rep_id}"),
            Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "title", "value": "Analyst"}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (&r.body["active"], &r.body["title"]),
        (&json!(false), &json!("Analyst"))
    );
    // aadOptscim062020: one path-less replace with dotted and urn keys.
    let r = h
        .call("PATCH", &format!("{A}/Users/{rep_id}"), Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [
            {"op": "replace", "value": {
                "active": true,
                "name.givenName": "Re",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
                "title": null
            }}
        ]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Re");
    assert_eq!(r.body[EXT]["department"], "Finance");
    assert!(r.body.get("title").is_none());
    let rep = h
        .store
        .records(&scope_a())
        .into_iter()
        .find(|r| r.id == rep_id)
        .unwrap();
    assert_eq!(
        (
            rep.spec.active,
            rep.spec.department.as_deref(),
            rep.spec.title.as_deref()
        ),
        (true, Some("Finance"), None)
    );

    // Hard delete: 204, then 404 on reads, and gone from lists.
    let r = h.call("DELETE", &format!("{A}/Users/{rep_id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.call("GET", &format!("{A}/Users/{rep_id}"), None).await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (StatusCode::NOT_FOUND, &json!("404"))
    );
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Users?filter=externalId eq "rep""#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(
        h.call("DELETE", &format!("{A}/Users/{rep_id}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn onelogin_puts_emails_as_an_object() {
    let h = harness();
    let r = h.call("POST", &format!("{A}/Users"), Some(json!({"userName": "ol@example.com", "emails": {"value": "ol@example.com", "primary": true}, EXT: {"employeeNumber": "3001"}}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["emails"],
        json!([{"value": "ol@example.com", "primary": true}])
    );
    let r = h
        .call("PUT", "/scim/v2/tenant-a/Users/e-3001", Some(json!({"userName": "ol@example.com", "name": {"formatted": "O L"}, "emails": {"value": "ol2@example.com"}, EXT: {"employeeNumber": "3001"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.store.records(&scope_a())[0].spec.email, "ol2@example.com");
    assert_eq!(
        h.call("DELETE", "/scim/v2/tenant-a/Users/e-3001", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn etags_pages_projection_and_discovery() {
    let h = harness();
    for n in 1..=5 {
        let body = json!({"userName": format!("u{n}@example.com"), EXT: {"employeeNumber": format!("{n}")}});
        assert_eq!(
            h.call("POST", &format!("{A}/Users"), Some(body))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let r = h.call("GET", &format!("{A}/Users/e-1"), None).await;
    let etag = r.headers[header::ETAG].to_str().unwrap().to_string();
    let patch = json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "title", "value": "T"}]}).to_string();
    let r = h
        .send(
            "PATCH",
            &format!("{A}/Users/e-1"),
            Some(TOKEN_A),
            Some(patch.clone()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.headers[header::ETAG].to_str().unwrap(), etag);
    let r = h
        .send(
            "PATCH",
            &format!("{A}/Users/e-1"),
            Some(TOKEN_A),
            Some(patch),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (StatusCode::PRECONDITION_FAILED, &json!("412"))
    );
    let r = h
        .send(
            "DELETE",
            &format!("{A}/Users/e-1"),
            Some(TOKEN_A),
            None,
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    let r = h
        .call("GET", &format!("{A}/Users?startIndex=2&count=2"), None)
        .await;
    assert_eq!(
        (
            &r.body["totalResults"],
            &r.body["startIndex"],
            &r.body["itemsPerPage"]
        ),
        (&json!(5), &json!(2), &json!(2))
    );
    assert_eq!(r.body["Resources"][0]["id"], "e-2");
    let r = h.call("GET", &format!("{A}/Users?count=0"), None).await;
    assert_eq!(
        r.body,
        json!({"schemas": [schema::LIST_RESPONSE_SCHEMA], "totalResults": 5, "Resources": []})
    );
    let r = h
        .call(
            "GET",
            &format!("{A}/Users?attributes=userName&count=1"),
            None,
        )
        .await;
    let first = r.body["Resources"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    let r = h
        .call(
            "GET",
            &format!("{A}/Users/e-2?excludedAttributes=meta"),
            None,
        )
        .await;
    assert!(r.body.get("meta").is_none());

    let r = h
        .call("GET", &format!("{A}/ServiceProviderConfig"), None)
        .await;
    assert_eq!(
        (
            &r.body["patch"]["supported"],
            &r.body["filter"]["maxResults"],
            &r.body["etag"]["supported"]
        ),
        (&json!(true), &json!(50), &json!(true))
    );
    let r = h.call("GET", &format!("{A}/Schemas"), None).await;
    assert_eq!(r.body["totalResults"], 3);
    let r = h
        .call(
            "GET",
            &format!("{A}/Schemas/{}", schema::ENTERPRISE_SCHEMA),
            None,
        )
        .await;
    assert_eq!(r.body["name"], "EnterpriseUser");
    let r = h
        .call("GET", &format!("{A}/ResourceTypes/User"), None)
        .await;
    assert_eq!(r.body["endpoint"], "/Users");
}

#[tokio::test]
async fn a_token_only_ever_reaches_its_own_tenant() {
    let h = harness();
    assert_eq!(
        h.call("POST", &format!("{A}/Users"), Some(jane()))
            .await
            .status,
        StatusCode::CREATED
    );
    // B's token on A's path: 401, for every kind of request.
    for (method, uri) in [
        ("GET", format!("{A}/Users/e-1001")),
        (
            "GET",
            format!(r#"{A}/Users?filter=userName eq "jane.doe@example.com""#),
        ),
        ("DELETE", format!("{A}/Users/e-1001")),
    ] {
        let r = h.send(method, &uri, Some(TOKEN_B), None, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    // On its own path, B sees nothing of A.
    let r = h
        .send(
            "GET",
            "/scim/v2/tenant-b/Users/e-1001",
            Some(TOKEN_B),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .send(
            "GET",
            r#"/scim/v2/tenant-b/Users?filter=userName eq "jane.doe@example.com""#,
            Some(TOKEN_B),
            None,
            &[],
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = h
        .send("GET", "/scim/v2/tenant-b/Users", Some(TOKEN_B), None, &[])
        .await;
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(h.store.records(&scope_a()).len(), 1);
}

/// (what, method, uri, token, body, status, scimType)
type Refusal<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    StatusCode,
    Option<&'a str>,
);

#[tokio::test]
async fn refusals_say_why_and_write_nothing() {
    let h = harness();
    assert_eq!(
        h.call("POST", &format!("{A}/Users"), Some(jane()))
            .await
            .status,
        StatusCode::CREATED
    );
    let before = h.store.records(&scope_a());
    let patch_ops = |ops: Value| {
        Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": ops}).to_string())
    };
    let user = format!("{A}/Users/e-1001");
    let users = format!("{A}/Users");
    let bad_filter = format!(r#"{A}/Users?filter=userName eq"#);
    let unknown_filter = format!(r#"{A}/Users?filter=shoeSize eq "44""#);
    let bad_start = format!("{A}/Users?startIndex=x");
    let unknown_id = format!("{A}/Users/nobody");
    let groups = format!("{A}/Groups");
    let group_filter = format!(r#"{A}/Groups?filter=color eq "red""#);
    let big = json!({"userName": "x@example.com", "displayName": "x".repeat(5000)}).to_string();
    let cases: Vec<Refusal> = vec![
        (
            "malformed JSON",
            "POST",
            &users,
            Some(TOKEN_A),
            Some("{\"userName\":".into()),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            "malformed JSON in a PATCH",
            "PATCH",
            &user,
            Some(TOKEN_A),
            Some("[".into()),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            "bad filter",
            "GET",
            &bad_filter,
            Some(TOKEN_A),
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            "unknown attribute in a filter",
            "GET",
            &unknown_filter,
            Some(TOKEN_A),
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            "wrong type",
            "POST",
            &users,
            Some(TOKEN_A),
            Some(json!({"userName": "y@example.com", "active": "maybe"}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "wrong type in a PATCH",
            "PATCH",
            &user,
            Some(TOKEN_A),
            patch_ops(json!([{"op": "replace", "path": "active", "value": 3}])),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "unknown attribute",
            "POST",
            &users,
            Some(TOKEN_A),
            Some(json!({"userName": "y@example.com", "shoeSize": 44}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            "unknown attribute in a PUT",
            "PUT",
            &user,
            Some(TOKEN_A),
            Some(json!({"userName": "jane.doe@example.com", "shoeSize": 44}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            "no userName",
            "POST",
            &users,
            Some(TOKEN_A),
            Some(json!({"displayName": "Y"}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "no email",
            "POST",
            &users,
            Some(TOKEN_A),
            Some(json!({"userName": "yname"}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "employeeNumber changed",
            "PATCH",
            &user,
            Some(TOKEN_A),
            patch_ops(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "9"}]),
            ),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            "read-only id",
            "PATCH",
            &user,
            Some(TOKEN_A),
            patch_ops(json!([{"op": "replace", "path": "id", "value": "x"}])),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            "all or nothing",
            "PATCH",
            &user,
            Some(TOKEN_A),
            patch_ops(
                json!([{"op": "replace", "path": "active", "value": false}, {"op": "bogus"}]),
            ),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            "oversized body",
            "POST",
            &users,
            Some(TOKEN_A),
            Some(big),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "stale ETag",
            "PUT",
            &user,
            Some(TOKEN_A),
            Some(jane().to_string()),
            StatusCode::PRECONDITION_FAILED,
            None,
        ),
        (
            "missing token",
            "GET",
            &users,
            None,
            None,
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "missing token on a write",
            "POST",
            &users,
            None,
            Some(json!({"userName": "z@example.com"}).to_string()),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "wrong token",
            "GET",
            &user,
            Some("nope"),
            None,
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "another tenant's token",
            "PATCH",
            &user,
            Some(TOKEN_B),
            patch_ops(json!([{"op": "replace", "path": "active", "value": false}])),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "a tenant without SCIM",
            "GET",
            "/scim/v2/tenant-c/Users",
            Some(TOKEN_A),
            None,
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "non-integer startIndex",
            "GET",
            &bad_start,
            Some(TOKEN_A),
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "unknown id",
            "GET",
            &unknown_id,
            Some(TOKEN_A),
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "a Group without displayName",
            "POST",
            &groups,
            Some(TOKEN_A),
            Some(json!({"members": []}).to_string()),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "a Group with a Group as member",
            "POST",
            &groups,
            Some(TOKEN_A),
            Some(
                json!({"displayName": "G", "members": [{"value": "g-1", "type": "Group"}]})
                    .to_string(),
            ),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            "a Group filter on an unknown attribute",
            "GET",
            &group_filter,
            Some(TOKEN_A),
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            "method not allowed",
            "DELETE",
            &users,
            Some(TOKEN_A),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
    ];
    for (what, method, uri, token, body, status, scim_type) in cases {
        let extra: &[(&str, &str)] = if what == "stale ETag" {
            &[("if-match", "W/\"0000\"")]
        } else {
            &[]
        };
        let r = h.send(method, uri, token, body, extra).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(
            r.body["schemas"],
            json!([crate::error::ERROR_SCHEMA]),
            "{what}"
        );
        assert_eq!(
            r.body["status"],
            json!(status.as_u16().to_string()),
            "{what}"
        );
        assert_eq!(r.body["scimType"].as_str(), scim_type, "{what}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("example.com") && !detail.contains("Jane"),
            "{what}: PII in {detail}"
        );
        assert_eq!(
            h.store.records(&scope_a()),
            before,
            "{what}: something was written"
        );
    }
}

#[tokio::test]
async fn two_tenants_of_one_namespace_are_apart() {
    let store = MemoryStore::new(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap())
        .with_named_tenant("shared", "x", "token-x")
        .with_named_tenant("shared", "y", "token-y");
    let h = Harness {
        router: router(Arc::new(store.clone()), Config::default()),
        store,
    };
    let body = json!({"userName": "x1@example.com", EXT: {"employeeNumber": "77"}}).to_string();
    let r = h
        .send(
            "POST",
            "/scim/v2/shared/Users",
            Some("token-x"),
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let x = Scope {
        namespace: "shared".into(),
        tenant: "x".into(),
    };
    assert_eq!(
        h.store.records(&x)[0].spec.tenant_ref.name,
        "x",
        "the token decided the Tenant"
    );
    let r = h
        .send(
            "GET",
            "/scim/v2/shared/Users/e-77",
            Some("token-y"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .send("GET", "/scim/v2/shared/Users", Some("token-y"), None, &[])
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // The same employee number in the other Tenant is another person.
    let body = json!({"userName": "y1@example.com", EXT: {"employeeNumber": "77"}}).to_string();
    let r = h
        .send(
            "POST",
            "/scim/v2/shared/Users",
            Some("token-y"),
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn groups_as_okta_and_entra_push_them() {
    let h = harness();
    for n in 1..=3 {
        let body = json!({"userName": format!("u{n}@example.com"), EXT: {"employeeNumber": format!("{n}")}});
        assert_eq!(
            h.call("POST", &format!("{A}/Users"), Some(body))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let groups_of = |id: &str| {
        h.store
            .records(&scope_a())
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
            .spec
            .groups
    };
    // Okta's Push Groups: look up by displayName, create with members.
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Groups?filter=displayName eq "Engineering""#),
            None,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["totalResults"]),
        (StatusCode::OK, &json!(0))
    );
    let r = h
        .call(
            "POST",
            &format!("{A}/Groups"),
            Some(json!({
                "schemas": [schema::GROUP_SCHEMA], "displayName": "Engineering",
                "members": [{"value": "e-1"}, {"value": "e-2"}]
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert!(gid.starts_with("g-"), "{gid}");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(groups_of("e-1"), vec!["Engineering"]);
    assert_eq!(
        r.headers[header::LOCATION].to_str().unwrap(),
        format!("https://scim.example.com{A}/Groups/{gid}")
    );
    // Found by displayName (without regard to case) and by member.
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Groups?filter=displayName eq "engineering""#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = h
        .call(
            "GET",
            &format!(r#"{A}/Groups?filter=members.value eq "e-2"&excludedAttributes=members"#),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    // A duplicate displayName is 409.
    let r = h
        .call(
            "POST",
            &format!("{A}/Groups"),
            Some(json!({"displayName": "ENGINEERING"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["scimType"].as_str()),
        (StatusCode::CONFLICT, Some("uniqueness"))
    );

    // Entra: Add and Remove members.
    let r = h
        .call(
            "PATCH",
            &format!("{A}/Groups/{gid}"),
            Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": "e-3"}]},
                {"op": "Remove", "path": "members", "value": [{"value": "e-1"}]}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (groups_of("e-1"), groups_of("e-3")),
        (vec![], vec!["Engineering".to_string()])
    );
    // Okta renames with a path-less replace: every member follows.
    let r = h
        .call(
            "PATCH",
            &format!("{A}/Groups/{gid}"),
            Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [
                {"op": "replace", "value": {"id": gid, "displayName": "Platform"}}
            ]})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["displayName"]),
        (StatusCode::OK, &json!("Platform"))
    );
    assert_eq!(groups_of("e-2"), vec!["Platform"]);
    // A User's PUT keeps its memberships.
    let r = h
        .call(
            "PUT",
            &format!("{A}/Users/e-2"),
            Some(json!({"userName": "u2@example.com", "title": "T", EXT: {"employeeNumber": "2"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(groups_of("e-2"), vec!["Platform"]);
    // ETags move with the members; a stale one is 412.
    let etag = h
        .call("GET", &format!("{A}/Groups/{gid}"), None)
        .await
        .headers[header::ETAG]
        .to_str()
        .unwrap()
        .to_string();
    let remove = json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "members[value eq \"e-3\"]"}]}).to_string();
    let r = h
        .send(
            "PATCH",
            &format!("{A}/Groups/{gid}"),
            Some(TOKEN_A),
            Some(remove.clone()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.headers[header::ETAG].to_str().unwrap(), etag);
    let r = h
        .send(
            "PATCH",
            &format!("{A}/Groups/{gid}"),
            Some(TOKEN_A),
            Some(remove),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // Another tenant cannot see it.
    let r = h
        .send(
            "GET",
            &format!("{A}/Groups/{gid}"),
            Some(TOKEN_B),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            "GET",
            &format!("/scim/v2/tenant-b/Groups/{gid}"),
            Some(TOKEN_B),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A member the identity provider adds before it creates the User is pending, and
    // joins when the User arrives.
    let r = h
        .call(
            "PATCH",
            &format!("{A}/Groups/{gid}"),
            Some(json!({"schemas": [schema::PATCH_OP_SCHEMA], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "e-4"}]}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["value"] == "e-4")
    );
    let body = json!({"userName": "u4@example.com", EXT: {"employeeNumber": "4"}});
    assert_eq!(
        h.call("POST", &format!("{A}/Users"), Some(body))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(groups_of("e-4"), vec!["Platform"]);
    let r = h.call("GET", &format!("{A}/Groups/{gid}"), None).await;
    let members: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(members, ["e-2", "e-4"]);
    // DELETE takes the memberships with it.
    assert_eq!(
        h.call("DELETE", &format!("{A}/Groups/{gid}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(groups_of("e-2"), Vec::<String>::new());
    assert_eq!(
        h.call("GET", &format!("{A}/Groups/{gid}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

mod hostile;
