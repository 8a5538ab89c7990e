//! Property tests of what an identity provider (or anyone holding a token) can send:
//! every reader either answers or refuses with a 400 and its `scimType`, never
//! panics, and refuses the pathological cases (deep nesting, 10,000 clauses, huge
//! lists) at a bounded cost. `fuzz/` runs the same readers under libFuzzer.
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, Filter, MAX_CLAUSES, MAX_DEPTH, MAX_LEN};
use crate::resource::{self, MAX_VALUES, normalize_user};
use crate::schema::{ENTERPRISE_SCHEMA, Kind, PATCH_OP_SCHEMA};
use crate::{group, json, patch};

/// A refusal is a client error with a SCIM type, and its detail is short (it names
/// attributes and positions, not what was sent).
fn assert_refusal(err: &ScimError, allowed: &[ScimType]) {
    assert_eq!(err.status, 400, "{err}");
    let t = err.scim_type.expect("a scimType");
    assert!(allowed.contains(&t), "{err}");
    assert!(err.detail.len() <= 200, "a long detail: {err}");
}

fn sample_user() -> Map<String, Value> {
    let mut u = normalize_user(&json!({
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@example.org", "type": "home"}],
        "active": true,
        "title": "Tour Guide",
        ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "m-1"}}
    }))
    .unwrap();
    u.insert("id".into(), json!("e-701984"));
    u.insert(
        "meta".into(),
        json!({"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-02T00:00:00Z"}),
    );
    u
}

/// Words a filter or path is made of: real attribute names, operators, keywords and
/// punctuation, so that generated input gets past the lexer often.
fn filter_word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userName".to_string()),
        Just("emails".to_string()),
        Just("emails.value".to_string()),
        Just("name.givenName".to_string()),
        Just("meta.lastModified".to_string()),
        Just("active".to_string()),
        Just("members".to_string()),
        Just(format!("{ENTERPRISE_SCHEMA}:employeeNumber")),
        Just("urn:ietf:params:scim:schemas:core:2.0:User:userName".to_string()),
        Just("eq".to_string()),
        Just("co".to_string()),
        Just("gt".to_string()),
        Just("pr".to_string()),
        Just("and".to_string()),
        Just("or".to_string()),
        Just("not".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("].value".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("\"bjensen@example.com\"".to_string()),
        Just("\"2026-01-01T00:00:00Z\"".to_string()),
        Just("\"\\u00e9\\\"\"".to_string()),
        Just("1e308".to_string()),
        Just("-0.5e-400".to_string()),
        Just("123456789012345678901234567890".to_string()),
        "[a-zA-Z$][a-zA-Z0-9._:$-]{0,12}",
        "\\PC{0,4}",
    ]
}

fn filter_text() -> impl Strategy<Value = String> {
    prop::collection::vec(filter_word(), 0..40).prop_map(|w| w.join(" "))
}

/// Arbitrary JSON, a few levels deep, with SCIM's names among the keys.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("userName".to_string()),
        Just("emails".to_string()),
        Just("value".to_string()),
        Just("type".to_string()),
        Just("primary".to_string()),
        Just("active".to_string()),
        Just("name".to_string()),
        Just("givenName".to_string()),
        Just("manager".to_string()),
        Just("members".to_string()),
        Just("displayName".to_string()),
        Just("phoneNumbers".to_string()),
        Just(ENTERPRISE_SCHEMA.to_string()),
        Just("schemas".to_string()),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("True")),
        Just(Value::from("bjensen@example.com")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn patch_op() -> impl Strategy<Value = Value> {
    let op = prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("bogus")];
    let path = prop_oneof![
        Just(Value::Null),
        filter_text().prop_map(Value::from),
        Just(Value::from("emails[type eq \"work\"].value")),
        Just(Value::from("emails[value co \"@\"]")),
        Just(Value::from("name.familyName")),
        Just(Value::from(ENTERPRISE_SCHEMA)),
        Just(Value::from(format!("{ENTERPRISE_SCHEMA}:manager"))),
        Just(Value::from("members[value eq \"e-1\"]")),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    (op, path, arb_json()).prop_map(|(op, path, value)| {
        let mut o = Map::new();
        o.insert("op".into(), Value::from(op));
        if !path.is_null() {
            o.insert("path".into(), path);
        }
        o.insert("value".into(), value);
        Value::Object(o)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_filter_or_an_invalid_filter(text in "\\PC{0,64}") {
        if let Err(e) = Filter::parse_user(&text) {
            assert_refusal(&e, &[ScimType::InvalidFilter]);
        }
    }

    #[test]
    fn filters_of_real_words_parse_and_evaluate_or_are_refused(text in filter_text()) {
        match Filter::parse_user(&text) {
            Ok(f) => {
                let _ = f.matches(&sample_user());
            }
            Err(e) => assert_refusal(&e, &[ScimType::InvalidFilter]),
        }
        if let Err(e) = Filter::parse_for(Kind::Group, &text) {
            assert_refusal(&e, &[ScimType::InvalidFilter]);
        }
    }

    #[test]
    fn any_text_is_an_attribute_path_or_refused(text in "\\PC{0,24}") {
        let _ = AttrPath::parse(&text);
        let user = sample_user();
        if let Err(e) = resource::project(&user, Some(&text), None) {
            assert_refusal(&e, &[ScimType::InvalidPath]);
        }
        if let Err(e) = resource::project(&user, None, Some(&text)) {
            assert_refusal(&e, &[ScimType::InvalidPath]);
        }
    }

    #[test]
    fn any_json_is_a_user_or_refused(body in arb_json()) {
        match normalize_user(&body) {
            Ok(user) => resource::check_value_counts(&user).unwrap(),
            Err(e) => assert_refusal(&e, &[ScimType::InvalidSyntax, ScimType::InvalidValue]),
        }
        if let Err(e) = group::normalize(&body) {
            assert_refusal(&e, &[ScimType::InvalidSyntax, ScimType::InvalidValue, ScimType::TooMany]);
        }
    }

    #[test]
    fn any_patch_applies_whole_or_not_at_all(ops in prop::collection::vec(patch_op(), 0..6)) {
        let user = sample_user();
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops});
        match patch::apply(&user, &body) {
            Ok(patched) => {
                resource::validate_user(&patched).unwrap();
                resource::check_value_counts(&patched).unwrap();
            }
            Err(e) => assert_refusal(&e, &[
                ScimType::InvalidSyntax, ScimType::InvalidPath, ScimType::InvalidValue,
                ScimType::InvalidFilter, ScimType::NoTarget, ScimType::Mutability,
            ]),
        }
        let members = group::Members::new();
        let mut g = Map::new();
        g.insert("displayName".into(), json!("Sales"));
        if let Err(e) = group::patch(&g, &members, &body) {
            assert_refusal(&e, &[
                ScimType::InvalidSyntax, ScimType::InvalidPath, ScimType::InvalidValue,
                ScimType::InvalidFilter, ScimType::NoTarget, ScimType::Mutability, ScimType::TooMany,
            ]);
        }
    }

    #[test]
    fn any_bytes_are_json_or_invalid_syntax(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Err(e) = json::read(&bytes) {
            assert_refusal(&e, &[ScimType::InvalidSyntax]);
        }
    }
}

/// Regression: a PATCH path (or `attributes`) whose fifth byte is inside a character
/// panicked (`text[..4]` in `AttrPath::parse`).
#[test]
fn a_path_with_a_multibyte_character_at_byte_four_is_refused() {
    for path in ["abcé", "urné:x", "emailé.value", "ab\u{1F600}"] {
        assert!(AttrPath::parse(path).is_err(), "{path}");
        let body = json!({"Operations": [{"op": "replace", "path": path, "value": "x"}]});
        let err = patch::apply(&sample_user(), &body).unwrap_err();
        assert_refusal(&err, &[ScimType::InvalidPath]);
        let err = resource::project(&sample_user(), Some(path), None).unwrap_err();
        assert_refusal(&err, &[ScimType::InvalidPath]);
    }
}

/// Regression: a URN is vocabulary; an email in it would travel into the error.
#[test]
fn a_value_smuggled_into_a_urn_is_refused_without_echo() {
    let body = json!({"Operations": [{"op": "replace", "path": "urn:bjensen@example.com:title", "value": "x"}]});
    let err = patch::apply(&sample_user(), &body).unwrap_err();
    assert_refusal(&err, &[ScimType::InvalidPath]);
    assert!(!err.detail.contains("bjensen"), "{}", err.detail);
}

#[test]
fn ten_thousand_clauses_deep_nesting_and_long_paths_are_refused() {
    let many = vec![r#"userName eq "a""#; 10_000].join(" or ");
    let err = Filter::parse_user(&many).unwrap_err();
    assert_refusal(&err, &[ScimType::InvalidFilter]);
    assert!(err.detail.contains(&MAX_LEN.to_string()), "{}", err.detail);
    // Short clauses: within MAX_LEN, over MAX_CLAUSES.
    let short = vec!["a pr"; MAX_CLAUSES + 1].join(" or ");
    assert!(short.len() <= MAX_LEN);
    let err = Filter::parse_user(&short).unwrap_err();
    assert!(
        err.detail.contains("at most 100 comparisons"),
        "{}",
        err.detail
    );
    let ok = vec!["title pr"; MAX_CLAUSES].join(" and ");
    assert!(Filter::parse_user(&ok).is_ok());
    for open in ["(", "not (", "emails[", "emails[type eq \"w\" and ("] {
        let deep = open.repeat(2000);
        let err = Filter::parse_user(&deep).unwrap_err();
        assert_refusal(&err, &[ScimType::InvalidFilter]);
    }
    let deep = format!("{}title pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Filter::parse_user(&deep).is_ok());
    let long_path = format!("emails[value eq \"{}\"].value", "x".repeat(5000));
    let body = json!({"Operations": [{"op": "remove", "path": long_path}]});
    assert_refusal(
        &patch::apply(&sample_user(), &body).unwrap_err(),
        &[ScimType::InvalidPath],
    );
    let long_name = "a".repeat(300);
    assert_refusal(
        &AttrPath::parse(&long_name).unwrap_err(),
        &[ScimType::InvalidFilter],
    );
}

#[test]
fn huge_lists_are_refused() {
    let emails: Vec<Value> = (0..MAX_VALUES + 1)
        .map(|i| json!({"value": format!("u{i}@example.com")}))
        .collect();
    let err = normalize_user(&json!({"userName": "x", "emails": emails})).unwrap_err();
    assert_refusal(&err, &[ScimType::InvalidValue]);
    assert!(
        err.detail.contains("'emails' may have at most 100 values"),
        "{}",
        err.detail
    );
    // Growing a list one operation at a time hits the same bound.
    let ops: Vec<Value> = (0..MAX_VALUES + 1)
        .map(|i| json!({"op": "add", "path": "emails", "value": [{"value": format!("u{i}@example.com")}]}))
        .collect();
    let err = patch::apply(&sample_user(), &json!({"Operations": ops})).unwrap_err();
    assert_refusal(&err, &[ScimType::InvalidValue]);
    let ops = vec![json!({"op": "remove", "path": "title"}); patch::MAX_OPERATIONS + 1];
    let err = patch::apply(&sample_user(), &json!({"Operations": ops})).unwrap_err();
    assert_refusal(&err, &[ScimType::TooMany]);
    let members: Vec<Value> = (0..group::MAX_MEMBERS + 1)
        .map(|i| json!({"value": format!("e-{i}")}))
        .collect();
    let err = group::normalize(&json!({"displayName": "All", "members": members})).unwrap_err();
    assert_refusal(&err, &[ScimType::TooMany]);
}

/// Unknown attribute names come back capped, and a group path's value filter does
/// not come back at all.
#[test]
fn unknown_names_are_not_echoed_whole() {
    let key = format!("bjensen@example.com{}", "x".repeat(1000));
    let err = normalize_user(&json!({"userName": "x", key.clone(): 1})).unwrap_err();
    assert!(err.detail.len() <= 200, "{}", err.detail);
    let err = group::normalize(&json!({"displayName": "x", key: 1})).unwrap_err();
    assert!(err.detail.len() <= 200, "{}", err.detail);
    let body = json!({"Operations": [{"op": "remove", "path": "owners[value eq \"bjensen@example.com\"]"}]});
    let err = group::patch(&Map::new(), &group::Members::new(), &body).unwrap_err();
    assert!(!err.detail.contains("bjensen"), "{}", err.detail);
}

#[test]
fn a_sub_attribute_after_a_value_filter_is_not_echoed() {
    let body = json!({"Operations": [{"op": "replace", "path": "emails[type eq \"work\"].x bjensen@example.com", "value": "x"}]});
    let err = patch::apply(&sample_user(), &body).unwrap_err();
    assert_refusal(&err, &[ScimType::InvalidPath]);
    assert!(!err.detail.contains("bjensen"), "{}", err.detail);
}
