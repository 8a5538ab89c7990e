//! PATCH tables: what Okta, Entra ID (both flavours) and OneLogin send, the RFC's
//! operations, and what is refused (with nothing changed).
use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::resource::normalize_user;

const EXT: &str = ENTERPRISE_SCHEMA;

fn user(v: Value) -> Resource {
    let mut r = normalize_user(&v).unwrap();
    r.insert("id".into(), json!("u1"));
    r
}

fn base() -> Resource {
    user(json!({
        "userName": "jdoe@example.com",
        "externalId": "ext-1",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "active": true,
        "title": "Engineer",
        "emails": [{"value": "jdoe@example.com", "type": "work", "primary": true}],
        EXT: {"employeeNumber": "1001", "department": "R&D", "manager": {"value": "m-1"}}
    }))
}

fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

/// (what, operations, a function of the base user giving the expected user)
type Case = (&'static str, Value, fn(&mut Resource));

#[test]
fn applies_what_the_clients_send() {
    let cases: Vec<Case> = vec![
        (
            "Okta: path-less deactivation",
            json!([{"op": "replace", "value": {"active": false}}]),
            |u| {
                u["active"] = json!(false);
            },
        ),
        (
            "Okta: path-less replace echoing id and schemas",
            json!([{"op": "replace", "value": {"id": "u1", "schemas": [], "active": false}}]),
            |u| {
                u["active"] = json!(false);
            },
        ),
        (
            "Entra: capitalised op, boolean as a string",
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            |u| {
                u["active"] = json!(false);
            },
        ),
        (
            "Entra: reactivation with \"True\"",
            json!([{"op": "REPLACE", "path": "active", "value": "True"}]),
            |_| {},
        ),
        (
            "Entra (aadOptscim062020): boolean",
            json!([{"op": "replace", "path": "active", "value": false}]),
            |u| {
                u["active"] = json!(false);
            },
        ),
        (
            "Entra: work email by value filter",
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "jane@example.com"}]),
            |u| {
                u["emails"][0]["value"] = json!("jane@example.com");
            },
        ),
        (
            "Entra: Add to a work email that does not exist yet creates it",
            json!([{"op": "Add", "path": "emails[type eq \"home\"].value", "value": "j@home.example"}]),
            |u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "home", "value": "j@home.example"}));
            },
        ),
        (
            "Entra: dotted path",
            json!([{"op": "Replace", "path": "name.givenName", "value": "Janet"}]),
            |u| {
                u["name"]["givenName"] = json!("Janet");
            },
        ),
        (
            "Entra: full urn path",
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}]),
            |u| {
                u[EXT]["department"] = json!("Sales");
            },
        ),
        (
            "Entra: full urn path of a core attribute",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:title", "value": "Lead"}]),
            |u| {
                u["title"] = json!("Lead");
            },
        ),
        (
            "Entra (aadOptscim062020): merged path-less replace with dotted, urn and filtered keys",
            json!([{"op": "replace", "value": {
                "displayName": "Jane D",
                "name.familyName": "Dough",
                "emails[type eq \"work\"].value": "jd@example.com",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1002",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-2",
                "active": "False"
            }}]),
            |u| {
                u.insert("displayName".into(), json!("Jane D"));
                u["name"]["familyName"] = json!("Dough");
                u["emails"][0]["value"] = json!("jd@example.com");
                u[EXT]["employeeNumber"] = json!("1002");
                u[EXT]["manager"] = json!({"value": "m-2"});
                u["active"] = json!(false);
            },
        ),
        (
            "Entra: manager as a string",
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-3"}]),
            |u| {
                u[EXT]["manager"] = json!({"value": "m-3"});
            },
        ),
        (
            "Entra: manager as an object",
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m-3"}}]),
            |u| {
                u[EXT]["manager"] = json!({"value": "m-3"});
            },
        ),
        (
            "Entra: manager as an array",
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [{"value": "m-3"}]}]),
            |u| {
                u[EXT]["manager"] = json!({"value": "m-3"});
            },
        ),
        (
            "Entra: manager removed (with a value)",
            json!([{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [{"value": "m-1"}]}]),
            |u| {
                u[EXT].as_object_mut().unwrap().remove("manager");
            },
        ),
        (
            "Entra: null clears",
            json!([{"op": "Replace", "path": "title", "value": null}]),
            |u| {
                u.remove("title");
            },
        ),
        (
            "Entra: nulls in a path-less replace clear",
            json!([{"op": "replace", "value": {"title": null, "name.givenName": null}}]),
            |u| {
                u.remove("title");
                u["name"].as_object_mut().unwrap().remove("givenName");
            },
        ),
        (
            "enterprise extension object in a path-less replace",
            json!([{"op": "replace", "value": {EXT: {"department": "Ops"}}}]),
            |u| {
                u[EXT]["department"] = json!("Ops");
            },
        ),
        (
            "OneLogin-style emails object in an add",
            json!([{"op": "add", "path": "emails", "value": {"value": "alt@example.com", "type": "other"}}]),
            |u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "alt@example.com", "type": "other"}));
            },
        ),
        (
            "RFC: add a complex value merges sub-attributes",
            json!([{"op": "add", "path": "name", "value": {"middleName": "Q"}}]),
            |u| {
                u["name"]["middleName"] = json!("Q");
            },
        ),
        (
            "RFC: path-less add",
            json!([{"op": "add", "value": {"nickName": "JD", "emails": [{"value": "x@example.com", "type": "home"}]}}]),
            |u| {
                u.insert("nickName".into(), json!("JD"));
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "x@example.com", "type": "home"}));
            },
        ),
        (
            "RFC: replace a multi-valued attribute whole",
            json!([{"op": "replace", "path": "emails", "value": [{"value": "n@example.com", "type": "work"}]}]),
            |u| {
                u["emails"] = json!([{"value": "n@example.com", "type": "work"}]);
            },
        ),
        (
            "RFC: remove by value filter",
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
            |u| {
                u.remove("emails");
            },
        ),
        (
            "RFC: remove a sub-attribute of filtered values",
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
            |u| {
                u["emails"][0].as_object_mut().unwrap().remove("primary");
            },
        ),
        (
            "RFC: remove an attribute",
            json!([{"op": "remove", "path": "externalId"}]),
            |u| {
                u.remove("externalId");
            },
        ),
        (
            "RFC: remove a filter that matches nothing is no change",
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
            |_| {},
        ),
        (
            "a new primary demotes the old one",
            json!([{"op": "add", "path": "emails", "value": [{"value": "p@example.com", "primary": true}]}]),
            |u| {
                u["emails"][0].as_object_mut().unwrap().remove("primary");
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "p@example.com", "primary": true}));
            },
        ),
        (
            "attribute names in any case",
            json!([{"op": "replace", "path": "NAME.GIVENNAME", "value": "J"}, {"OP": "replace", "PATH": "Title", "VALUE": "T"}]),
            |u| {
                u["name"]["givenName"] = json!("J");
                u["title"] = json!("T");
            },
        ),
        (
            "password is never stored",
            json!([{"op": "replace", "path": "password", "value": "hunter2"}]),
            |_| {},
        ),
        (
            "several operations in order",
            json!([{"op": "replace", "path": "title", "value": "A"}, {"op": "replace", "path": "title", "value": "B"}]),
            |u| {
                u["title"] = json!("B");
            },
        ),
        (
            "the whole extension removed by its URN",
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]),
            |u| {
                u.remove(EXT);
            },
        ),
        (
            "the extension replaced by its URN",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"department": "Ops"}}]),
            |u| {
                u[EXT]["department"] = json!("Ops");
            },
        ),
        (
            "department removed leaves the rest of the extension",
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]),
            |u| {
                u[EXT].as_object_mut().unwrap().remove("department");
            },
        ),
    ];
    for (what, operations, expect) in cases {
        let start = base();
        let mut want = start.clone();
        expect(&mut want);
        resource::set_schemas(&mut want);
        let got = apply(&start, &ops(operations)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(Value::Object(got), Value::Object(want), "{what}");
    }
}

#[test]
fn the_extension_goes_when_it_empties() {
    let start = user(json!({"userName": "a", EXT: {"department": "D"}}));
    let got = apply(&start, &ops(json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]))).unwrap();
    assert!(got.get(EXT).is_none());
    assert_eq!(got["schemas"], json!([schema::USER_SCHEMA]));
}

#[test]
fn refuses_with_the_right_scim_type_and_changes_nothing() {
    let cases: Vec<(&str, Value, u16, Option<ScimType>)> = vec![
        (
            "not an object",
            json!([]),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "wrong schema",
            json!({"schemas": ["urn:x"], "Operations": [{"op": "remove", "path": "title"}]}),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "no operations",
            ops(json!([])),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "unknown op",
            ops(json!([{"op": "move", "path": "title"}])),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "remove without a path",
            ops(json!([{"op": "remove"}])),
            400,
            Some(ScimType::NoTarget),
        ),
        (
            "unknown attribute",
            ops(json!([{"op": "replace", "path": "shoeSize", "value": 1}])),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown attribute in a path-less value",
            ops(json!([{"op": "replace", "value": {"shoeSize": 1}}])),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown sub-attribute",
            ops(json!([{"op": "replace", "path": "name.nick", "value": "x"}])),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "bad filter in a path",
            ops(json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}])),
            400,
            Some(ScimType::InvalidFilter),
        ),
        (
            "filter on a single-valued attribute",
            ops(json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}])),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "read-only id",
            ops(json!([{"op": "replace", "path": "id", "value": "u2"}])),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "read-only meta",
            ops(
                json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            ),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "read-only groups",
            ops(json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}])),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "wrong type",
            ops(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "add without a value",
            ops(json!([{"op": "add", "path": "title"}])),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "path-less replace with a non-object",
            ops(json!([{"op": "replace", "value": false}])),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "removing userName",
            ops(json!([{"op": "remove", "path": "userName"}])),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "replace on a filter that matches nothing and describes nothing",
            ops(json!([{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "x"}])),
            400,
            Some(ScimType::NoTarget),
        ),
        (
            "path not a string",
            ops(json!([{"op": "replace", "path": 5, "value": "x"}])),
            400,
            Some(ScimType::InvalidPath),
        ),
    ];
    for (what, body, status, scim_type) in cases {
        let err = apply(&base(), &body).expect_err(what);
        assert_eq!(
            (err.status, err.scim_type),
            (status, scim_type),
            "{what}: {err}"
        );
    }
    // All or nothing: a good operation before a bad one is not applied either (apply
    // takes the user by reference and returns a new one only on success).
    let start = base();
    let body = ops(
        json!([{"op": "replace", "path": "active", "value": false}, {"op": "replace", "path": "shoeSize", "value": 1}]),
    );
    assert!(apply(&start, &body).is_err());
    assert_eq!(start, base());
    let too_many = ops(Value::Array(vec![
        json!({"op": "remove", "path": "title"});
        MAX_OPERATIONS + 1
    ]));
    let err = apply(&base(), &too_many).unwrap_err();
    assert_eq!(
        (err.status, err.scim_type),
        (400, Some(crate::ScimType::TooMany))
    );
}
