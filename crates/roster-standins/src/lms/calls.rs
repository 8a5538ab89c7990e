//! The call log: every API request the stand-in answered, and the duplicate check.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One API request as the stand-in saw it. Carries employee IDs and keys, never
/// names, emails or bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// Order of arrival at the log (1, 2, …).
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    /// Route template of the contract, e.g. `/users/{employeeId}/access/revoke`
    /// (`<unmatched>` for unknown routes).
    pub route: String,
    /// Operation ID of the contract, e.g. `revokeAccess` (`unknown` for unknown routes).
    pub operation: String,
    /// The concrete path below the API root, e.g. `/users/E1001/access/revoke`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The status the caller received.
    pub status: u16,
    /// A mutation that took effect (ran and succeeded) on this request.
    pub applied: bool,
    /// Answered from the idempotency store (not applied again).
    pub replayed: bool,
    /// The injected faults that hit this request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Hash of method, path and body of a mutation: equal for identical requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A mutation that took effect more than once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Duplicate {
    pub kind: DuplicateKind,
    pub operation: String,
    pub path: String,
    pub idempotency_keys: Vec<String>,
    /// `seq` of the calls involved.
    pub calls: Vec<u64>,
}

/// How a mutation came to take effect twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DuplicateKind {
    /// One idempotency key was applied twice (the stand-in's dedup failed).
    SameKeyAppliedTwice,
    /// The identical request (method, path, body) was applied under a second key with
    /// no other applied mutation of the same subject (the employee, or else the path)
    /// in between: the caller did not reuse its key on a retry.
    SameRequestDifferentKeys,
}

/// Finds every duplicate application in `calls` (in log order).
pub fn duplicates(calls: &[Call]) -> Vec<Duplicate> {
    let applied: Vec<&Call> = calls.iter().filter(|c| c.applied).collect();
    let mut found = Vec::new();

    let mut by_key: HashMap<&str, Vec<&Call>> = HashMap::new();
    for call in &applied {
        if let Some(key) = &call.idempotency_key {
            by_key.entry(key).or_default().push(call);
        }
    }
    let mut same_key: Vec<&Vec<&Call>> = by_key.values().filter(|c| c.len() > 1).collect();
    same_key.sort_by_key(|c| c[0].seq);
    for group in same_key {
        found.push(Duplicate {
            kind: DuplicateKind::SameKeyAppliedTwice,
            operation: group[0].operation.clone(),
            path: group[0].path.clone(),
            idempotency_keys: vec![group[0].idempotency_key.clone().unwrap_or_default()],
            calls: group.iter().map(|c| c.seq).collect(),
        });
    }

    let mut last: HashMap<&str, &Call> = HashMap::new();
    for call in &applied {
        let subject = call.employee_id.as_deref().unwrap_or(&call.path);
        if let Some(previous) = last.get(subject)
            && previous.fingerprint.is_some()
            && previous.fingerprint == call.fingerprint
            && previous.idempotency_key != call.idempotency_key
        {
            found.push(Duplicate {
                kind: DuplicateKind::SameRequestDifferentKeys,
                operation: call.operation.clone(),
                path: call.path.clone(),
                idempotency_keys: [&previous.idempotency_key, &call.idempotency_key]
                    .into_iter()
                    .map(|k| k.clone().unwrap_or_default())
                    .collect(),
                calls: vec![previous.seq, call.seq],
            });
        }
        last.insert(subject, call);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: u64, path: &str, key: &str, fp: &str) -> Call {
        Call {
            seq,
            at: Utc::now(),
            method: "POST".into(),
            route: "/users/{employeeId}/access/revoke".into(),
            operation: "revokeAccess".into(),
            path: path.into(),
            employee_id: Some("E1".into()),
            idempotency_key: Some(key.into()),
            status: 204,
            applied: true,
            replayed: false,
            fault: None,
            fingerprint: Some(fp.into()),
        }
    }

    #[test]
    fn same_request_under_new_key_is_a_duplicate_unless_something_happened_between() {
        let revoke = |seq, key| call(seq, "/users/E1/access/revoke", key, "r");
        let restore = |seq, key| call(seq, "/users/E1/access/restore", key, "s");
        assert!(duplicates(&[revoke(1, "a"), restore(2, "b"), revoke(3, "c")]).is_empty());
        let found = duplicates(&[revoke(1, "a"), revoke(2, "b")]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, DuplicateKind::SameRequestDifferentKeys);
        assert_eq!(found[0].calls, vec![1, 2]);
        let found = duplicates(&[revoke(1, "a"), revoke(2, "a")]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, DuplicateKind::SameKeyAppliedTwice);
    }
}
