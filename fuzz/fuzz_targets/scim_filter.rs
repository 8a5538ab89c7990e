//! The SCIM filter parser and its evaluation: any bytes as a filter on Users and on
//! Groups, then matched against a User. Refusals must be 400 invalidFilter.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roster_scim::schema::Kind;
use roster_scim::{Filter, ScimType};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let user = json!({
        "id": "e-1", "userName": "bjensen@example.com", "active": true,
        "name": {"givenName": "Barbara"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "meta": {"lastModified": "2026-01-01T00:00:00Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1"}
    });
    let user = user.as_object().expect("an object");
    match Filter::parse_user(text) {
        Ok(f) => {
            let _ = f.matches(user);
        }
        Err(e) => assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter))
        ),
    }
    let _ = Filter::parse_for(Kind::Group, text);
    let _ = roster_scim::resource::project(user, Some(text), None);
});
