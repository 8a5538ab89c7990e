//! The PATCH appliers (Users and Groups): any JSON body against a User and a Group.
//! A success is a valid User; a refusal is a 400 with a scimType.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roster_scim::{group, patch, resource};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = roster_scim::json::read(data) else {
        return;
    };
    let user = resource::normalize_user(&json!({
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1", "manager": {"value": "m"}}
    }))
    .expect("a valid user");
    match patch::apply(&user, &body) {
        Ok(patched) => {
            resource::validate_user(&patched).expect("a patched user is valid");
            resource::check_value_counts(&patched).expect("within the value limit");
        }
        Err(e) => assert!(e.status == 400 && e.scim_type.is_some(), "{e}"),
    }
    let mut g = serde_json::Map::new();
    g.insert("displayName".into(), Value::from("Sales"));
    if let Err(e) = group::patch(&g, &group::Members::new(), &body) {
        assert!(e.status == 400 && e.scim_type.is_some(), "{e}");
    }
});
