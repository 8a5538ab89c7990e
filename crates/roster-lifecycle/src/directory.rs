//! Decisions about a tenant's directory as a whole, rather than one person.

use chrono::{DateTime, Utc};

/// One DirectoryUser as far as the uniqueness of its mapping key is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHolder<'a> {
    /// Object name (never personal data: importers name users after the employee ID).
    pub name: &'a str,
    pub created: Option<DateTime<Utc>>,
    pub employee_id: &'a str,
}

/// Which object owns `employee_id` in a tenant: the one created first (ties broken by
/// name, so every replica agrees). The others are duplicates and must not act: two
/// objects driving one person's account would undo each other.
pub fn key_owner<'a>(
    holders: impl IntoIterator<Item = KeyHolder<'a>>,
    employee_id: &str,
) -> Option<&'a str> {
    holders
        .into_iter()
        .filter(|h| h.employee_id == employee_id)
        .min_by(|a, b| {
            let created = |h: &KeyHolder| h.created.unwrap_or(DateTime::<Utc>::MAX_UTC);
            created(a).cmp(&created(b)).then(a.name.cmp(b.name))
        })
        .map(|h| h.name)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
