//! Group bodies and PATCHes as Okta, Entra ID and the RFC send them.
use std::collections::BTreeSet;

fn keys(m: &Members) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

use serde_json::json;

use super::*;

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn group() -> (Resource, Members) {
    normalize(&json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Engineering Team",
        "externalId": "okta-00g1",
        "members": [{"value": "e-1", "type": "User"}, {"value": "e-2"}]
    }))
    .unwrap()
}

fn ops(ops: serde_json::Value) -> serde_json::Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

#[test]
fn a_body_becomes_a_canonical_group_and_its_members() {
    let (res, members) = group();
    assert_eq!(res["displayName"], "Engineering Team");
    assert_eq!(res["externalId"], "okta-00g1");
    assert!(
        res.get("members").is_none(),
        "members are not stored with the Group"
    );
    assert_eq!(keys(&members), ids(&["e-1", "e-2"]));
    let refused: &[(&str, serde_json::Value, &str)] = &[
        ("no displayName", json!({"members": []}), "invalidValue"),
        (
            "unknown attribute",
            json!({"displayName": "x", "color": "red"}),
            "invalidSyntax",
        ),
        (
            "nested group",
            json!({"displayName": "x", "members": [{"value": "g-1", "type": "Group"}]}),
            "invalidValue",
        ),
        (
            "member without value",
            json!({"displayName": "x", "members": [{"display": "x"}]}),
            "invalidValue",
        ),
        (
            "displayName not a string",
            json!({"displayName": 5}),
            "invalidValue",
        ),
    ];
    for (what, body, scim_type) in refused {
        let e = normalize(body).unwrap_err();
        assert_eq!(e.scim_type.map(|t| t.as_str()), Some(*scim_type), "{what}");
    }
}

#[test]
fn patches_as_the_clients_send_them() {
    let (res, members) = group();
    type Case<'a> = (&'a str, serde_json::Value, &'a str, &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "RFC: add members",
            ops(json!([{"op": "add", "path": "members", "value": [{"value": "e-3"}]}])),
            "Engineering Team",
            &["e-1", "e-2", "e-3"],
        ),
        (
            "RFC: remove one by filter",
            ops(json!([{"op": "remove", "path": "members[value eq \"e-2\"]"}])),
            "Engineering Team",
            &["e-1"],
        ),
        (
            "RFC: remove all members",
            ops(json!([{"op": "remove", "path": "members"}])),
            "Engineering Team",
            &[],
        ),
        (
            "RFC: replace members",
            ops(json!([{"op": "replace", "path": "members", "value": [{"value": "e-9"}]}])),
            "Engineering Team",
            &["e-9"],
        ),
        (
            "Entra: Remove with a value list",
            ops(json!([{"op": "Remove", "path": "members", "value": [{"value": "e-1"}]}])),
            "Engineering Team",
            &["e-2"],
        ),
        (
            "Entra: Add with capital op",
            ops(json!([{"op": "Add", "path": "members", "value": [{"value": "e-4"}]}])),
            "Engineering Team",
            &["e-1", "e-2", "e-4"],
        ),
        (
            "Okta: path-less replace with id and displayName",
            ops(json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Eng"}}])),
            "Eng",
            &["e-1", "e-2"],
        ),
        (
            "rename by path",
            ops(json!([{"op": "replace", "path": "displayName", "value": "Platform"}])),
            "Platform",
            &["e-1", "e-2"],
        ),
        (
            "several at once",
            ops(
                json!([{"op": "add", "path": "members", "value": [{"value": "e-5"}]}, {"op": "remove", "path": "members[value eq \"e-1\"]"}]),
            ),
            "Engineering Team",
            &["e-2", "e-5"],
        ),
    ];
    for (what, body, name, want) in cases {
        let (got, m) = patch(&res, &members, body).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got["displayName"], *name, "{what}");
        assert_eq!(keys(&m), ids(want), "{what}");
    }
    let refused: &[(&str, serde_json::Value, &str)] = &[
        (
            "remove displayName",
            ops(json!([{"op": "remove", "path": "displayName"}])),
            "mutability",
        ),
        (
            "unknown path",
            ops(json!([{"op": "add", "path": "color", "value": "red"}])),
            "invalidPath",
        ),
        (
            "add to a filter path",
            ops(json!([{"op": "add", "path": "members[value eq \"e-1\"]", "value": "x"}])),
            "invalidPath",
        ),
        (
            "bad op",
            ops(json!([{"op": "merge", "path": "members"}])),
            "invalidSyntax",
        ),
        (
            "no Operations",
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            "invalidSyntax",
        ),
        (
            "all or nothing",
            ops(
                json!([{"op": "add", "path": "members", "value": [{"value": "e-7"}]}, {"op": "remove", "path": "displayName"}]),
            ),
            "mutability",
        ),
    ];
    for (what, body, scim_type) in refused {
        let e = patch(&res, &members, body).unwrap_err();
        assert_eq!(
            e.scim_type.map(|t| t.as_str()),
            Some(*scim_type),
            "{what}: {e}"
        );
    }
}

#[test]
fn the_version_changes_with_the_members() {
    let (res, _) = group();
    let a = version(&res, &["e-1".into()]);
    let b = version(&res, &["e-1".into(), "e-2".into()]);
    assert_ne!(a, b);
    assert_eq!(a, version(&res, &["e-1".into()]));
}
