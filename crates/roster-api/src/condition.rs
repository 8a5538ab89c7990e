//! Conditions as the Kubernetes API conventions define them.
//!
//! roster keeps its own type (rather than `meta/v1 Condition`) so that status
//! timestamps are `chrono` throughout; the wire format is identical, so kstatus
//! and `kubectl wait --for=condition=...` understand it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
// Inline (no allocation) up to 23 bytes, which every roster type and reason is.
use smol_str::SmolStr;

/// One aspect of an object's state, as in the Kubernetes API conventions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition in CamelCase, e.g. `Ready` or `Quarantined`; unique in the list.
    #[schemars(length(min = 1, max = 316))]
    pub r#type: SmolStr,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Machine-readable CamelCase reason for the last transition.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: SmolStr,
    /// Human-readable details. Never contains names or email addresses.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// When `status` last changed; unchanged while only the message or reason changes.
    pub last_transition_time: DateTime<Utc>,
    /// The `.metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

/// Tri-state status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Inserts or updates `new` in `conditions`, keeping `lastTransitionTime` unless the
/// status flips so that rewriting the same state is a no-op. Returns whether anything
/// other than the timestamps changed.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.r#type == new.r#type) {
        Some(existing) => {
            let transition_time = if existing.status == new.status {
                existing.last_transition_time
            } else {
                new.last_transition_time
            };
            let updated = Condition {
                last_transition_time: transition_time,
                ..new
            };
            let changed = *existing != updated;
            *existing = updated;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], r#type: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.r#type == r#type)
}

/// Schema for `conditions` lists: a map-list keyed by `type`, so server-side apply
/// merges each condition separately.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cond(status: ConditionStatus, reason: &str, at: i64) -> Condition {
        Condition {
            r#type: "Ready".into(),
            status,
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Utc.timestamp_opt(at, 0).unwrap(),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn same_status_keeps_transition_time_and_reports_no_change() {
        let mut list = vec![cond(ConditionStatus::True, "Ok", 10)];
        assert!(!set_condition(
            &mut list,
            cond(ConditionStatus::True, "Ok", 99)
        ));
        assert_eq!(list[0].last_transition_time.timestamp(), 10);
    }

    #[test]
    fn reason_change_without_flip_keeps_transition_time() {
        let mut list = vec![cond(ConditionStatus::True, "Ok", 10)];
        assert!(set_condition(
            &mut list,
            cond(ConditionStatus::True, "Other", 99)
        ));
        assert_eq!(list[0].last_transition_time.timestamp(), 10);
    }

    #[test]
    fn flip_moves_transition_time() {
        let mut list = vec![cond(ConditionStatus::True, "Ok", 10)];
        assert!(set_condition(
            &mut list,
            cond(ConditionStatus::False, "Bad", 99)
        ));
        assert_eq!(list[0].last_transition_time.timestamp(), 99);
        assert_eq!(list.len(), 1);
    }
}
