//! The SCIM JSON reader and what reads its result: a request body as bytes, to a
//! User (POST/PUT) and a Group. Refusals are 400s with a scimType.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roster_scim::{group, json, resource};

fuzz_target!(|data: &[u8]| {
    let body = match json::read(data) {
        Ok(body) => body,
        Err(e) => {
            assert_eq!(e.status, 400);
            return;
        }
    };
    match resource::normalize_user(&body) {
        Ok(user) => {
            resource::check_value_counts(&user).expect("within the value limit");
            let _ = resource::version(&user);
        }
        Err(e) => assert!(e.status == 400 && e.scim_type.is_some(), "{e}"),
    }
    if let Err(e) = group::normalize(&body) {
        assert!(e.status == 400 && e.scim_type.is_some(), "{e}");
    }
});
