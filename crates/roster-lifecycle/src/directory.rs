//! Decisions about a tenant's directory as a whole, rather than one person.

use chrono::{DateTime, Utc};

use super::sync::Manager;

/// One DirectoryUser as far as the uniqueness of its mapping key is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHolder<'a> {
    /// Object name (never personal data: importers name users after the employee ID).
    pub name: &'a str,
    pub created: Option<DateTime<Utc>>,
    pub employee_id: &'a str,
}

/// Whether `earlier` holds the employee ID before `later` does: same key, created
/// first, ties broken by name so that every replica agrees. Only the first holder of a
/// key may act: two objects driving one person's account would undo each other.
pub fn holds_key_before(earlier: &KeyHolder, later: &KeyHolder) -> bool {
    let created = |h: &KeyHolder| h.created.unwrap_or(DateTime::<Utc>::MAX_UTC);
    earlier.employee_id == later.employee_id
        && earlier.name != later.name
        && (created(earlier), earlier.name) < (created(later), later.name)
}

/// Which object owns `employee_id` in a tenant: the first holder (see
/// [`holds_key_before`]).
pub fn key_owner<'a>(
    holders: impl IntoIterator<Item = KeyHolder<'a>>,
    employee_id: &str,
) -> Option<&'a str> {
    let holders: Vec<KeyHolder<'a>> = holders
        .into_iter()
        .filter(|h| h.employee_id == employee_id)
        .collect();
    holders
        .iter()
        .find(|h| !holders.iter().any(|other| holds_key_before(other, h)))
        .map(|h| h.name)
}

/// One DirectoryUser of the tenant as a possible manager of someone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagerCandidate<'a> {
    pub employee_id: &'a str,
    pub email: &'a str,
    /// Holds an account at the learning platform (the platform refuses a manager it
    /// does not know).
    pub provisioned: bool,
}

/// Resolves a record's `managerEmail` among the tenant's other users. Emails compare
/// case-insensitively; a manager who has not arrived yet is `NotFound`, and is resolved
/// on the reconcile their arrival triggers.
pub fn resolve_manager<'a>(
    manager_email: Option<&str>,
    candidates: impl IntoIterator<Item = ManagerCandidate<'a>>,
) -> Manager<'a> {
    let Some(wanted) = manager_email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Manager::NotSet;
    };
    let mut found: Option<ManagerCandidate<'a>> = None;
    for candidate in candidates {
        if !candidate.email.trim().eq_ignore_ascii_case(wanted) {
            continue;
        }
        match found {
            Some(first) if first.employee_id != candidate.employee_id => return Manager::Ambiguous,
            Some(_) => {}
            None => found = Some(candidate),
        }
    }
    match found {
        None => Manager::NotFound,
        Some(manager) if manager.provisioned => Manager::Resolved(manager.employee_id),
        Some(_) => Manager::NotProvisioned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_resolve_by_email_case_insensitively() {
        let m = |employee_id, email, provisioned| ManagerCandidate {
            employee_id,
            email,
            provisioned,
        };
        let users = [
            m("M1", "Boss@Example.com", true),
            m("M2", "new@example.com", false),
            m("M3", "twin@example.com", true),
            m("M4", "twin@example.com", true),
        ];
        let table = [
            (None, Manager::NotSet),
            (Some(" "), Manager::NotSet),
            (Some("boss@example.COM"), Manager::Resolved("M1")),
            (Some("new@example.com"), Manager::NotProvisioned),
            (Some("late@example.com"), Manager::NotFound),
            (Some("twin@example.com"), Manager::Ambiguous),
        ];
        for (email, expected) in table {
            assert_eq!(resolve_manager(email, users), expected, "{email:?}");
        }
    }

    fn at(text: &str) -> Option<DateTime<Utc>> {
        text.parse().ok()
    }

    #[test]
    fn the_first_created_owns_the_key() {
        let holders = [
            KeyHolder {
                name: "e-b",
                created: at("2025-01-02T00:00:00Z"),
                employee_id: "42",
            },
            KeyHolder {
                name: "e-a",
                created: at("2025-01-03T00:00:00Z"),
                employee_id: "42",
            },
            KeyHolder {
                name: "e-c",
                created: at("2025-01-01T00:00:00Z"),
                employee_id: "7",
            },
        ];
        assert_eq!(key_owner(holders, "42"), Some("e-b"));
        assert_eq!(key_owner(holders, "7"), Some("e-c"));
        assert_eq!(key_owner(holders, "8"), None);
        // Same creation second: the name decides, the same way on every replica.
        let tied = [
            KeyHolder {
                name: "e-y",
                created: at("2025-01-02T00:00:00Z"),
                employee_id: "42",
            },
            KeyHolder {
                name: "e-x",
                created: at("2025-01-02T00:00:00Z"),
                employee_id: "42",
            },
        ];
        assert_eq!(key_owner(tied, "42"), Some("e-x"));
        assert!(holds_key_before(&tied[1], &tied[0]));
        assert!(!holds_key_before(&tied[0], &tied[1]));
        assert!(
            !holds_key_before(&tied[0], &tied[0]),
            "nobody precedes themselves"
        );
    }
}
