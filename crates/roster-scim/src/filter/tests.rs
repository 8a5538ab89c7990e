//! Filter tables: RFC 7644 §3.4.2.2's own examples, what Okta and Entra ID send, and
//! what must be refused with `invalidFilter`.
use serde_json::{Map, Value, json};

use super::*;
use crate::error::ScimType;
use crate::schema::ENTERPRISE_SCHEMA;

fn path(s: &str) -> AttrPath {
    AttrPath::parse(s).unwrap()
}
fn eq(p: &str, v: &str) -> Filter {
    Filter::Compare(path(p), CompareOp::Eq, Literal::Str(v.into()))
}
fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}
fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

#[test]
fn parses_to_the_expected_tree() {
    let cases: Vec<(&str, Filter)> = vec![
        (r#"userName eq "bjensen""#, eq("userName", "bjensen")),
        (r#"USERNAME EQ "bjensen""#, eq("USERNAME", "bjensen")),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            Filter::Compare(
                AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
                    name: "userName".into(),
                    sub: None,
                },
                CompareOp::Sw,
                Literal::Str("J".into()),
            ),
        ),
        ("title pr", Filter::Present(path("title"))),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            Filter::Compare(
                path("meta.lastModified"),
                CompareOp::Gt,
                Literal::Str("2011-05-13T04:42:34Z".into()),
            ),
        ),
        // and binds tighter than or.
        (
            r#"a eq "1" or b eq "2" and c eq "3""#,
            or(eq("a", "1"), and(eq("b", "2"), eq("c", "3"))),
        ),
        (
            r#"(a eq "1" or b eq "2") and c eq "3""#,
            and(or(eq("a", "1"), eq("b", "2")), eq("c", "3")),
        ),
        (
            r#"not (a eq "1") and b eq "2""#,
            and(Filter::Not(Box::new(eq("a", "1"))), eq("b", "2")),
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            Filter::ValuePath(
                path("emails"),
                Box::new(and(
                    eq("type", "work"),
                    Filter::Compare(
                        path("value"),
                        CompareOp::Co,
                        Literal::Str("@example.com".into()),
                    ),
                )),
            ),
        ),
        // Entra ID's form: attr[filter].sub op value.
        (
            r#"emails[type eq "work"].value eq "x@example.com""#,
            Filter::ValuePath(
                path("emails"),
                Box::new(and(eq("type", "work"), eq("value", "x@example.com"))),
            ),
        ),
        (
            "active eq true",
            Filter::Compare(path("active"), CompareOp::Eq, Literal::Bool(true)),
        ),
        (
            "x eq -1.5e3",
            Filter::Compare(
                path("x"),
                CompareOp::Eq,
                Literal::Num("-1.5e3".parse().unwrap()),
            ),
        ),
        (
            r#"userName eq "quote \" and \\ backslash""#,
            eq("userName", "quote \" and \\ backslash"),
        ),
        (
            "manager.value eq null",
            Filter::Compare(path("manager.value"), CompareOp::Eq, Literal::Null),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(Filter::parse(input).unwrap(), want, "{input}");
    }
}

/// Babs Jensen, RFC 7643 §8.2's full user, in canonical form.
fn babs() -> Map<String, Value> {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
        ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn evaluates_the_rfc_examples_and_the_clients_lookups() {
    let user = babs();
    let cases: &[(&str, bool)] = &[
        // RFC 7644 §3.4.2.2
        (r#"userName eq "bjensen@example.com""#, true),
        (r#"name.familyName co "ens""#, true),
        (r#"name.familyName co "O'Malley""#, false),
        (r#"userName sw "B""#, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
            true,
        ),
        ("title pr", true),
        ("nickName pr", false),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
        (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T06:42:34+03:00""#, true),
        (r#"title pr and userType eq "Employee""#, true),
        (r#"title pr or userType eq "Intern""#, true),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            true,
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            true,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            false,
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            true,
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "home" and value co "@example.com"]"#,
            false,
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            true,
        ),
        // userName and emails are caseExact=false (RFC 7643 §4.1): case-folded.
        (r#"userName eq "BJensen@Example.COM""#, true),
        (r#"USERNAME EQ "bjensen@example.com""#, true),
        (
            r#"emails[type eq "WORK"].value eq "BJENSEN@example.com""#,
            true,
        ),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            false,
        ),
        // id and externalId are caseExact.
        (r#"externalId eq "701984""#, true),
        (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
        // Entra's connection test: a random GUID finds nobody.
        (
            r#"userName eq "f6a0cbd0-5b8e-4e40-93f4-8b8b2c4a0b63""#,
            false,
        ),
        (
            r#"externalId eq "701984" and userName eq "bjensen@example.com""#,
            true,
        ),
        // Enterprise extension, qualified or not.
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            true,
        ),
        (r#"employeeNumber eq "701984""#, true),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
            true,
        ),
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        (r#"nickName eq null"#, true),
        (r#"title ne null"#, true),
        (r#"nickName ne "x""#, true),
        (r#"not (userName eq "bjensen@example.com")"#, false),
    ];
    for (input, want) in cases {
        let f = Filter::parse_user(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(f.matches(&user), *want, "{input}");
    }
}

#[test]
fn refuses_bad_filters_with_invalid_filter() {
    let long = format!("userName eq \"{}\"", "a".repeat(MAX_LEN));
    let deep = format!(
        "{}userName pr{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let cases: &[&str] = &[
        "",
        "   ",
        "userName",
        "userName eq",
        r#"userName xx "a""#,
        r#"userName eq "a"#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        "userName eq bjensen",
        r#"not userName eq "a""#,
        r#"userName eq "a" and"#,
        r#"userName eq "a" garbage"#,
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]."#,
        r#"emails[type eq "work"].value"#,
        r#"userName eq "a" | id eq "b""#,
        r#"emails.value[type eq "work"]"#,
        "userName eq 1.2.3",
        // schema checks
        r#"shoeSize eq "44""#,
        r#"urn:example:custom:1.0:User:userName eq "a""#,
        r#"name.nickname eq "a""#,
        "active gt true",
        r#"active eq "true""#,
        r#"active co "t""#,
        "userName gt 5",
        r#"name eq "x""#,
        r#"userName[value eq "x"]"#,
        r#"emails[type eq "work" and ims[type eq "aim"]]"#,
        r#"emails[shoe eq "x"]"#,
        long.as_str(),
        deep.as_str(),
    ];
    for input in cases {
        let err = Filter::parse_user(input).expect_err(input);
        assert_eq!(err.status, 400, "{input}");
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{input}");
        assert!(
            !err.detail.contains("bjensen"),
            "{input}: the detail echoes the value"
        );
    }
}

#[test]
fn lookups_that_an_index_can_answer() {
    let f = Filter::parse_user(r#"USERNAME eq "Bjensen""#).unwrap();
    assert_eq!(f.eq_lookup("userName"), Some("Bjensen"));
    assert_eq!(f.eq_lookup("externalId"), None);
    let f = Filter::parse_user(r#"userName eq "a" and active eq true"#).unwrap();
    assert_eq!(f.eq_lookup("userName"), None);
}
