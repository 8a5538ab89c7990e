//! Mapping tables: each source of each DirectoryUser field, and what is refused.
use serde_json::json;

use super::*;
use crate::error::ScimType;
use crate::resource::normalize_user;

const EXT: &str = ENTERPRISE_SCHEMA;

fn map(v: serde_json::Value) -> Result<Mapped, ScimError> {
    let res = normalize_user(&v).unwrap();
    let eid = employee_id(&res, "id-1", None)?;
    to_directory_user(&res, "acme", eid, |id| {
        (id == "m-1").then(|| "boss@example.com".to_string())
    })
}

#[test]
fn maps_each_field_from_its_sources() {
    let m = map(json!({
        "userName": "jdoe@example.com",
        "name": {"formatted": "Jane Q. Doe", "givenName": "Jane", "familyName": "Doe"},
        "title": "Engineer",
        "active": "False",
        "emails": [{"value": "home@example.org", "type": "home"}, {"value": "jane.doe@example.com", "type": "work"}],
        "photos": [{"value": "ftp://x/y.png"}, {"value": "https://img.example.com/j.png"}],
        "addresses": [{"type": "home", "locality": "Home Town"}, {"type": "work", "locality": "Berlin"}],
        EXT: {"employeeNumber": "00042", "department": "R&D", "manager": "m-1"}
    }))
    .unwrap();
    assert_eq!(
        m.spec,
        DirectoryUserSpec {
            tenant_ref: LocalObjectRef {
                name: "acme".into()
            },
            employee_id: "00042".into(),
            full_name: "Jane Q. Doe".into(),
            email: "jane.doe@example.com".into(),
            picture_url: Some("https://img.example.com/j.png".into()),
            hire_date: None,
            termination_date: None,
            department: Some("R&D".into()),
            title: Some("Engineer".into()),
            location: Some("Berlin".into()),
            manager_email: Some("boss@example.com".into()),
            active: false,
            source: RecordSource::Scim,
            groups: vec![],
        }
    );
    assert_eq!(m.manager_id.as_deref(), Some("m-1"));
}

#[test]
fn falls_back_in_the_documented_order() {
    let cases = vec![
        (
            "given + family",
            json!({"userName": "a@example.com", "name": {"givenName": "Jane", "familyName": "Doe"}}),
            "Jane Doe",
            "a@example.com",
        ),
        (
            "given only",
            json!({"userName": "a@example.com", "name": {"givenName": "Jane"}}),
            "Jane",
            "a@example.com",
        ),
        (
            "displayName",
            json!({"userName": "a@example.com", "displayName": "JD"}),
            "JD",
            "a@example.com",
        ),
        (
            "userName",
            json!({"userName": "a@example.com"}),
            "a@example.com",
            "a@example.com",
        ),
        (
            "primary email wins over work",
            json!({"userName": "u", "displayName": "X", "emails": [{"value": "w@example.com", "type": "work"}, {"value": "p@example.com", "primary": true}]}),
            "X",
            "p@example.com",
        ),
        (
            "first email",
            json!({"userName": "u", "displayName": "X", "emails": [{"value": "f@example.com", "type": "other"}]}),
            "X",
            "f@example.com",
        ),
        (
            "OneLogin emails object",
            json!({"userName": "u", "displayName": "X", "emails": {"value": "o@example.com"}}),
            "X",
            "o@example.com",
        ),
    ];
    for (what, input, full_name, email) in cases {
        let m = map(input).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            (m.spec.full_name.as_str(), m.spec.email.as_str()),
            (full_name, email),
            "{what}"
        );
        assert!(m.spec.active, "{what}: absent active is active");
    }
}

#[test]
fn an_unknown_manager_is_kept_for_later() {
    let m = map(json!({"userName": "a@example.com", EXT: {"employeeNumber": "1", "manager": [{"value": "m-9"}]}})).unwrap();
    assert_eq!(m.spec.manager_email, None);
    assert_eq!(m.manager_id.as_deref(), Some("m-9"));
}

#[test]
fn employee_ids_and_object_names_never_come_from_names_or_emails() {
    let res =
        normalize_user(&json!({"userName": "jane@example.com", "externalId": "f6a0cbd0-guid"}))
            .unwrap();
    let from_external = employee_id(&res, "id-1", None).unwrap();
    assert!(from_external.starts_with("scim-") && !from_external.contains("jane"));
    assert_eq!(
        from_external,
        employee_id(&res, "id-2", None).unwrap(),
        "the externalId decides, stably"
    );
    let bare = normalize_user(&json!({"userName": "jane@example.com"})).unwrap();
    assert_ne!(
        employee_id(&bare, "id-1", None).unwrap(),
        employee_id(&bare, "id-2", None).unwrap()
    );
    assert!(valid_employee_id(&from_external));

    // Immutable once set: an existing ID stays, a different employeeNumber is refused.
    let numbered =
        normalize_user(&json!({"userName": "j@example.com", EXT: {"employeeNumber": "7"}}))
            .unwrap();
    assert_eq!(
        employee_id(
            &numbered,
            "x",
            Some(Existing {
                employee_id: "7",
                employee_number: Some("7")
            })
        )
        .unwrap(),
        "7"
    );
    assert_eq!(
        employee_id(
            &bare,
            "x",
            Some(Existing {
                employee_id: "scim-abc",
                employee_number: None
            })
        )
        .unwrap(),
        "scim-abc"
    );
    assert_eq!(
        employee_id(
            &numbered,
            "x",
            Some(Existing {
                employee_id: "8",
                employee_number: Some("8")
            })
        )
        .unwrap_err()
        .scim_type,
        Some(ScimType::Mutability)
    );
    assert_eq!(
        employee_id(
            &numbered,
            "x",
            Some(Existing {
                employee_id: "scim-abc",
                employee_number: Some("6")
            })
        )
        .unwrap(),
        "scim-abc",
        "an employeeNumber that is not the employee ID may change"
    );
    // Set on a User created without one: accepted, the ID stays.
    assert_eq!(
        employee_id(
            &numbered,
            "x",
            Some(Existing {
                employee_id: "scim-abc",
                employee_number: None
            })
        )
        .unwrap(),
        "scim-abc"
    );
    let bad = normalize_user(&json!({"userName": "j@example.com", EXT: {"employeeNumber": "7 8"}}))
        .unwrap();
    assert_eq!(
        employee_id(&bad, "x", None).unwrap_err().scim_type,
        Some(ScimType::InvalidValue)
    );

    assert_eq!(object_name("00042"), "e-00042");
    assert_eq!(object_name("emp-7.a"), "e-emp-7.a");
    let upper = object_name("A1");
    assert!(upper.starts_with("e-a1-") && upper != object_name("a1"));
    assert!(object_name("x_y").starts_with("e-x-y-"));
    for id in ["A1", "x_y", "-", "a.", &"9".repeat(64)] {
        let n = object_name(id);
        assert!(n.len() <= 63, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "{n}"
        );
        assert!(n.ends_with(|c: char| c.is_ascii_alphanumeric()), "{n}");
    }
}

#[test]
fn refuses_users_roster_cannot_hold() {
    let cases = vec![
        (
            "no email anywhere",
            json!({"userName": "jdoe", "displayName": "J"}),
        ),
        (
            "email not an address",
            json!({"userName": "jdoe", "emails": [{"value": "not-an-address"}]}),
        ),
        (
            "title too long",
            json!({"userName": "a@example.com", "title": "t".repeat(257)}),
        ),
    ];
    for (what, input) in cases {
        let err = map(input).expect_err(what);
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{what}");
        assert!(
            !err.detail.contains("jdoe") && !err.detail.contains("not-an-address"),
            "{what}: {}",
            err.detail
        );
    }
}

#[test]
fn a_directory_user_reads_back_as_the_same_user() {
    let m = map(json!({
        "userName": "jane@example.com", "name": {"formatted": "Jane Doe"}, "title": "T",
        "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
        "addresses": [{"type": "work", "locality": "Berlin"}],
        EXT: {"employeeNumber": "5", "department": "D"}
    }))
    .unwrap();
    let res = from_directory_user(&m.spec);
    let again = to_directory_user(&res, "acme", employee_id(&res, "x", None).unwrap(), |_| {
        None
    })
    .unwrap();
    assert_eq!(again.spec, m.spec);
}
