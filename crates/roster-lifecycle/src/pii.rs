//! Which fields of a record are personal data, and what a purged record looks like.
//!
//! [`PERSONAL_FIELDS`] is the one list: the scrubbed record, the purge patch the
//! operator sends to the API server and the audits of tests are all derived from it,
//! and a test fails when a field of the spec is neither personal nor known to be kept.

use roster_api::DirectoryUserSpec;
use serde_json::{Map, Value, json};

/// Replaces the full name of a purged person (the field is required by the schema).
pub const PURGED_NAME: &str = "(purged)";
/// Replaces the email of a purged person.
pub const PURGED_EMAIL: &str = "purged@roster.invalid";

/// What a personal field becomes at purge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scrub {
    /// A required field: replaced by this placeholder.
    Placeholder(&'static str),
    /// An optional field: removed.
    Remove,
}

/// The personal fields of `DirectoryUser.spec`, by their API (camelCase) name.
pub const PERSONAL_FIELDS: &[(&str, Scrub)] = &[
    ("fullName", Scrub::Placeholder(PURGED_NAME)),
    ("email", Scrub::Placeholder(PURGED_EMAIL)),
    ("pictureURL", Scrub::Remove),
    ("hireDate", Scrub::Remove),
    ("terminationDate", Scrub::Remove),
    ("department", Scrub::Remove),
    ("title", Scrub::Remove),
    ("location", Scrub::Remove),
    ("managerEmail", Scrub::Remove),
    // Memberships say who the person worked with.
    ("groups", Scrub::Remove),
];

/// The fields a purged record keeps: the employee ID keeps engagement records
/// reachable, as the platform documents; the rest is roster's bookkeeping.
pub const KEPT_FIELDS: &[&str] = &["tenantRef", "employeeID", "active", "source"];

/// Annotations that can hold a copy of the record (kubectl's client-side apply keeps
/// the whole last-applied manifest).
pub const PERSONAL_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    // The SCIM resource as the identity provider last sent it (roster-scim keeps it to
    // answer reads and ETags); a test in roster-scim checks the name.
    "scim.roster.dev/resource",
];

/// The record with every personal field removed or replaced.
pub fn scrubbed(spec: &DirectoryUserSpec) -> DirectoryUserSpec {
    let Value::Object(mut fields) = serde_json::to_value(spec).expect("a spec serializes") else {
        unreachable!("a spec serializes to an object")
    };
    for (name, scrub) in PERSONAL_FIELDS {
        match scrub {
            Scrub::Placeholder(placeholder) => {
                fields.insert((*name).to_string(), Value::from(*placeholder));
            }
            Scrub::Remove => {
                fields.remove(*name);
            }
        }
    }
    serde_json::from_value(Value::Object(fields)).expect("a scrubbed spec deserializes")
}

/// The JSON merge patch (RFC 7386) that purges a DirectoryUser object: every personal
/// field replaced or removed, every annotation that may copy them dropped.
pub fn purge_patch() -> Value {
    let spec: Map<String, Value> = PERSONAL_FIELDS
        .iter()
        .map(|(name, scrub)| {
            let value = match scrub {
                Scrub::Placeholder(placeholder) => Value::from(*placeholder),
                Scrub::Remove => Value::Null,
            };
            ((*name).to_string(), value)
        })
        .collect();
    let annotations: Map<String, Value> = PERSONAL_ANNOTATIONS
        .iter()
        .map(|name| ((*name).to_string(), Value::Null))
        .collect();
    json!({ "metadata": { "annotations": annotations }, "spec": spec })
}

/// Whether the record still (or again) carries personal data.
pub fn has_pii(spec: &DirectoryUserSpec) -> bool {
    *spec != scrubbed(spec)
}

/// The personal values of a record, for tests and audits that prove they are gone.
pub fn personal_values(spec: &DirectoryUserSpec) -> Vec<String> {
    let mut values = vec![spec.full_name.clone(), spec.email.clone()];
    values.extend(spec.picture_url.iter().cloned());
    values.extend(spec.manager_email.iter().cloned());
    values.retain(|v| !v.is_empty() && v != PURGED_NAME && v != PURGED_EMAIL);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> DirectoryUserSpec {
        DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: "00042".into(),
            full_name: "Ada Example".into(),
            email: "ada@example.com".into(),
            picture_url: Some("https://pics.example.com/ada.png".into()),
            hire_date: "2020-01-02".parse().ok(),
            termination_date: "2026-01-02".parse().ok(),
            department: Some("R&D".into()),
            title: Some("Engineer".into()),
            location: Some("Berlin".into()),
            manager_email: Some("boss@example.com".into()),
            groups: vec!["Engineering Team".into()],
            ..Default::default()
        }
    }

    #[test]
    fn scrubbing_is_idempotent_and_keeps_the_key() {
        let spec = DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: "00042".into(),
            full_name: "Ada Example".into(),
            email: "ada@example.com".into(),
            manager_email: Some("boss@example.com".into()),
            department: Some("R&D".into()),
            ..Default::default()
        };
        assert!(has_pii(&spec));
        let once = scrubbed(&spec);
        assert!(!has_pii(&once));
        assert_eq!(scrubbed(&once), once);
        assert_eq!(once.employee_id, "00042");
        assert!(personal_values(&once).is_empty());
        assert_eq!(personal_values(&spec).len(), 3);
    }

    /// Adding a field to the spec forces a decision: personal, or kept.
    #[test]
    fn every_spec_field_is_classified() {
        let Value::Object(fields) = serde_json::to_value(full()).unwrap() else {
            panic!("an object")
        };
        for name in fields.keys() {
            let personal = PERSONAL_FIELDS.iter().any(|(p, _)| p == name);
            let kept = KEPT_FIELDS.contains(&name.as_str());
            assert!(
                personal ^ kept,
                "spec.{name} must be in exactly one of PERSONAL_FIELDS and KEPT_FIELDS"
            );
        }
        assert_eq!(fields.len(), PERSONAL_FIELDS.len() + KEPT_FIELDS.len());
    }

    /// The patch the operator sends yields exactly the scrubbed record.
    #[test]
    fn the_purge_patch_is_the_scrubbed_record() {
        let spec = full();
        let mut object = json!({
            "metadata": { "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{…}",
                "team": "kept"
            } },
            "spec": serde_json::to_value(&spec).unwrap(),
        });
        merge(&mut object, &purge_patch());
        let patched: DirectoryUserSpec = serde_json::from_value(object["spec"].clone()).unwrap();
        assert_eq!(patched, scrubbed(&spec));
        assert!(!has_pii(&patched));
        assert_eq!(object["metadata"]["annotations"], json!({ "team": "kept" }));
    }

    /// RFC 7386 merge, as the API server applies a merge patch.
    fn merge(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let object = target.as_object_mut().unwrap();
        for (key, value) in patch {
            if value.is_null() {
                object.remove(key);
            } else {
                merge(object.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
