//! Normalization tables: each tolerance of PRODUCT.md's "Interop notes", and what is
//! refused.
use serde_json::json;

use super::*;
use crate::error::ScimType;

#[test]
fn tolerances_become_one_canonical_shape() {
    let cases = vec![
        (
            "attribute names in any case",
            json!({"USERNAME": "a@example.com", "Name": {"GIVENNAME": "A"}, "emails": [{"VALUE": "a@example.com", "Primary": true}]}),
            json!({"userName": "a@example.com", "name": {"givenName": "A"}, "emails": [{"value": "a@example.com", "primary": true}]}),
        ),
        (
            "Entra: booleans as strings",
            json!({"userName": "a", "active": "False", "emails": [{"value": "a@example.com", "primary": "True"}]}),
            json!({"userName": "a", "active": false, "emails": [{"value": "a@example.com", "primary": true}]}),
        ),
        (
            "OneLogin: emails as an object",
            json!({"userName": "a", "emails": {"value": "a@example.com", "type": "work", "primary": true}}),
            json!({"userName": "a", "emails": [{"value": "a@example.com", "type": "work", "primary": true}]}),
        ),
        (
            "emails as plain strings",
            json!({"userName": "a", "emails": ["a@example.com"]}),
            json!({"userName": "a", "emails": [{"value": "a@example.com"}]}),
        ),
        (
            "Entra: manager as a string",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": "m-1"}}),
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": {"value": "m-1"}}}),
        ),
        (
            "Entra: manager as an object",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": {"value": "m-1"}}}),
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": {"value": "m-1"}}}),
        ),
        (
            "Entra: manager as an array",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": [{"value": "m-1"}]}}),
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": {"value": "m-1"}}}),
        ),
        (
            "Entra: nulls, empty strings and empty lists are no value",
            json!({"userName": "a", "title": null, "nickName": "", "phoneNumbers": [], "name": {"givenName": null},
                   ENTERPRISE_SCHEMA: {"department": null}}),
            json!({"userName": "a"}),
        ),
        (
            "employeeNumber as a number",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"employeeNumber": 701984}}),
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"employeeNumber": "701984"}}),
        ),
        (
            "read-only attributes and the password are ignored",
            json!({"userName": "a", "id": "client-chosen", "meta": {"version": "x"}, "groups": [{"value": "g"}],
                   "password": "hunter2", "schemas": ["urn:whatever"]}),
            json!({"userName": "a"}),
        ),
        (
            "duplicates in a multi-valued attribute collapse",
            json!({"userName": "a", "emails": [{"value": "a@example.com"}, {"value": "a@example.com"}]}),
            json!({"userName": "a", "emails": [{"value": "a@example.com"}]}),
        ),
    ];
    for (what, input, mut want) in cases {
        let mut want_res = want.as_object_mut().unwrap().clone();
        set_schemas(&mut want_res);
        let got = normalize_user(&input).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, want_res, "{what}");
    }
}

#[test]
fn refuses_what_cannot_be_made_canonical() {
    let cases = vec![
        (
            "not an object",
            json!(["userName"]),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown attribute",
            json!({"userName": "a", "shoeSize": 44}),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown sub-attribute",
            json!({"userName": "a", "name": {"nick": "x"}}),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown extension",
            json!({"userName": "a", "urn:example:custom:1.0:User": {"x": 1}}),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown enterprise attribute",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"shoeSize": 44}}),
            ScimType::InvalidSyntax,
        ),
        (
            "active as a word",
            json!({"userName": "a", "active": "yes"}),
            ScimType::InvalidValue,
        ),
        (
            "active as a number",
            json!({"userName": "a", "active": 1}),
            ScimType::InvalidValue,
        ),
        (
            "userName as an object",
            json!({"userName": {"x": 1}}),
            ScimType::InvalidValue,
        ),
        (
            "name as a string",
            json!({"userName": "a", "name": 5}),
            ScimType::InvalidValue,
        ),
        (
            "two managers",
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": [{"value": "1"}, {"value": "2"}]}}),
            ScimType::InvalidValue,
        ),
        (
            "extension not an object",
            json!({"userName": "a", ENTERPRISE_SCHEMA: "x"}),
            ScimType::InvalidValue,
        ),
    ];
    for (what, input, want) in cases {
        let err = normalize_user(&input).expect_err(what);
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(want)),
            "{what}: {err}"
        );
    }
    let err = validate_user(&normalize_user(&json!({"displayName": "A"})).unwrap()).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn versions_follow_content_not_key_order_or_meta() {
    let a = normalize_user(&json!({"userName": "a", "title": "t"})).unwrap();
    let b = normalize_user(&json!({"title": "t", "userName": "a"})).unwrap();
    assert_eq!(version(&a), version(&b));
    let mut c = a.clone();
    c.insert(
        "meta".into(),
        json!({"lastModified": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(version(&a), version(&c));
    let d = normalize_user(&json!({"userName": "a", "title": "u"})).unwrap();
    assert_ne!(version(&a), version(&d));
    assert!(version(&a).starts_with("W/\""));
    assert!(if_match(&version(&a), &version(&a)));
    assert!(if_match("*", &version(&a)));
    assert!(if_match(&format!("\"x\", {}", version(&a)), &version(&a)));
    assert!(!if_match(&version(&d), &version(&a)));
}

#[test]
fn projects_attributes_and_excluded_attributes() {
    let mut res = normalize_user(&json!({
        "userName": "a", "title": "t",
        "emails": [{"value": "a@example.com", "type": "work"}, {"value": "b@example.com"}],
        "name": {"givenName": "A", "familyName": "B"},
        ENTERPRISE_SCHEMA: {"department": "D", "employeeNumber": "1"}
    }))
    .unwrap();
    res.insert("id".into(), json!("u1"));
    let got = project(&res, Some("userName,emails.type,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None).unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"id": "u1", "schemas": res["schemas"], "userName": "a", "emails": [{"type": "work"}],
               "name": {"givenName": "A"}, ENTERPRISE_SCHEMA: {"department": "D"}})
    );
    let got = project(&res, None, Some("emails,id,name.familyName,employeeNumber")).unwrap();
    assert!(got.get("emails").is_none());
    assert_eq!(got["id"], "u1");
    assert_eq!(got["name"], json!({"givenName": "A"}));
    assert_eq!(got[ENTERPRISE_SCHEMA], json!({"department": "D"}));
    let err = project(&res, Some("shoeSize"), None).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
}
