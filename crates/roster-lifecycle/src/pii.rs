//! Which fields of a record are personal data, and what a purged record looks like.

use roster_api::DirectoryUserSpec;

/// Replaces the full name of a purged person (the field is required by the schema).
pub const PURGED_NAME: &str = "(purged)";
/// Replaces the email of a purged person.
pub const PURGED_EMAIL: &str = "purged@roster.invalid";

/// The record with every personal field removed or replaced. The employee ID stays:
/// engagement records remain reachable by it, as the platform documents.
pub fn scrubbed(spec: &DirectoryUserSpec) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant: spec.tenant.clone(),
        employee_id: spec.employee_id.clone(),
        full_name: PURGED_NAME.into(),
        email: PURGED_EMAIL.into(),
        picture_url: None,
        hire_date: None,
        termination_date: None,
        department: None,
        title: None,
        location: None,
        manager_email: None,
        active: spec.active,
        source: spec.source,
        deprovision_now: spec.deprovision_now,
    }
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

    #[test]
    fn scrubbing_is_idempotent_and_keeps_the_key() {
        let spec = DirectoryUserSpec {
            tenant: "acme".into(),
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
}
