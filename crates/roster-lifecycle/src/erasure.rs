//! Erasure receipts as a tamper-evident chain, one per Tenant: hashing, linking,
//! signing and verification. Pure; the operator writes and reads the receipts.
//!
//! A receipt's `hash` is SHA-256 over the canonical JSON of its spec without `hash`
//! and `signature` (serde's field order is the struct's, and no field is a map, so the
//! bytes are deterministic); `previousHash` links it to the receipt before it, whose
//! `sequence` is one less; `signature` is HMAC-SHA256 of the hash under the tenant's
//! key. Changing a receipt breaks its hash (or, rehashed, its signature and the next
//! receipt's link); deleting one leaves a gap in the sequence; reordering breaks links.

use hmac::{Hmac, KeyInit, Mac};
use roster_api::{ErasureReceiptSpec, ReceiptKind};
use sha2::{Digest, Sha256};

/// The `previousHash` of a chain's first receipt.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

type HmacSha256 = Hmac<Sha256>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the receipt's content (everything but `hash` and `signature`).
pub fn content_hash(spec: &ErasureReceiptSpec) -> String {
    let content = ErasureReceiptSpec {
        hash: String::new(),
        signature: None,
        ..spec.clone()
    };
    let bytes = serde_json::to_vec(&content).expect("a receipt serializes");
    hex(&Sha256::digest(bytes))
}

/// HMAC-SHA256 of `hash` under `key`.
pub fn sign(key: &[u8], hash: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(hash.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn signature_matches(key: &[u8], hash: &str, signature: &str) -> bool {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(hash.as_bytes());
    // Constant-time comparison (the verifier may be asked about attacker-chosen values).
    let Some(expected) = unhex(signature) else {
        return false;
    };
    mac.verify_slice(&expected).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Which key signed: 16 hex digits of SHA-256 over it.
pub fn key_id(key: &[u8]) -> String {
    hex(&Sha256::digest(key))[..16].to_string()
}

/// The receipt's name for the person: HMAC of the tenant's UID and the employee ID
/// under the key (32 hex digits), so only the key's holder can tell whom it covers.
/// Without a key, a plain SHA-256 (which anyone can test candidate IDs against:
/// docs/security.md says so).
pub fn subject(key: Option<&[u8]>, tenant_uid: &str, employee_id: &str) -> String {
    let input = format!("{tenant_uid}/{employee_id}");
    match key {
        Some(key) => sign(key, &input)[..32].to_string(),
        None => hex(&Sha256::digest(input.as_bytes()))[..32].to_string(),
    }
}

/// The lifecycle purges *at* the deadline (the Purge step becomes due then) and acts
/// within a second of it (docs/lifecycle.md, "Timing"): a purge that completes within
/// that second counts as on time.
pub const DEADLINE_REACTION: chrono::Duration = chrono::Duration::seconds(1);

/// Where a purged person's record was kept in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordHome {
    /// The DirectoryUser (its spec is scrubbed; `Immediate` deletion then releases it).
    DirectoryUser,
    /// The Departure that carried the lifecycle on after a deletion (deleted next).
    Departure,
}

/// Who a receipt is for and which chain it joins.
#[derive(Clone, Copy, Debug)]
pub struct ReceiptFor<'a> {
    pub tenant: &'a str,
    pub tenant_uid: &'a str,
    pub key: Option<&'a [u8]>,
}

/// The (unsealed) receipt of one person's purge, from their persisted status: what the
/// steps recorded, when, and the persisted purge deadline. `None` until they are purged.
pub fn user_draft(
    chain: ReceiptFor<'_>,
    employee_id: &str,
    subject_uid: &str,
    status: &roster_api::DirectoryUserStatus,
    home: RecordHome,
    calendar_configured: bool,
) -> Option<ErasureReceiptSpec> {
    use roster_api::{ErasureSystem, Phase, Removal, StepName};
    if status.phase != Phase::Purged {
        return None;
    }
    let erased = status.purged_time?;
    let step = |name: StepName| status.steps.iter().find(|s| s.name == name);
    let anonymized = step(StepName::Anonymize).and_then(|s| s.completion_time);
    let purged = step(StepName::Purge).and_then(|s| s.completion_time);
    let platform = match (anonymized, purged) {
        (Some(_), Some(_)) => {
            "personal data anonymized (Anonymize), then every remaining personal field removed (Purge); engagement records kept, anonymized, reachable by employee ID only"
        }
        (None, Some(_)) => {
            "every remaining personal field removed (Purge); engagement records kept, anonymized"
        }
        _ => "no personal data sent (the steps were turned off or had nothing to remove)",
    };
    let calendar = match (calendar_configured, step(StepName::TransferCalendarEvents)) {
        (false, _) => "no calendar service configured: nothing stored there by roster".to_string(),
        (true, Some(s)) => format!(
            "events the person organized handed over to colleagues: {}",
            s.summary.as_deref().unwrap_or("done")
        ),
        (true, None) => "calendar hand-over turned off by the policy: nothing changed".into(),
    };
    let cluster = match home {
        RecordHome::DirectoryUser => {
            "DirectoryUser spec scrubbed (name, email and every profile field but the employee ID; the last-applied-configuration annotation removed); status and Events never held personal data"
        }
        RecordHome::Departure => {
            "Departure (the deleted DirectoryUser's record) deleted; the DirectoryUser itself was already gone"
        }
    };
    Some(ErasureReceiptSpec {
        tenant_ref: chain.tenant.into(),
        tenant_uid: chain.tenant_uid.into(),
        sequence: 0,
        kind: ReceiptKind::User,
        subject: Some(subject(chain.key, chain.tenant_uid, employee_id)),
        subject_uid: Some(subject_uid.into()),
        removals: vec![
            Removal {
                system: ErasureSystem::LearningPlatform,
                what: platform.into(),
                time: purged.or(anonymized),
            },
            Removal {
                system: ErasureSystem::Calendar,
                what: calendar,
                time: step(StepName::TransferCalendarEvents).and_then(|s| s.completion_time),
            },
            Removal {
                system: ErasureSystem::Cluster,
                what: cluster.into(),
                time: Some(erased),
            },
        ],
        erasure_time: erased,
        deadline: status.purge_due_time,
        within_deadline: status
            .purge_due_time
            .is_none_or(|due| erased <= due + DEADLINE_REACTION),
        previous_hash: String::new(),
        hash: String::new(),
        signature: None,
        key_id: None,
        signing_key_ref: None,
    })
}

/// The (unsealed) receipt of a tenant's exit, which ends its chain.
pub fn exit_draft(
    chain: ReceiptFor<'_>,
    exit: &roster_api::TenantExitStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> ErasureReceiptSpec {
    use roster_api::{ErasureSystem, ExitStage, Removal};
    let when = |stage: ExitStage| {
        exit.completed
            .iter()
            .find(|r| r.stage == stage)
            .map(|r| r.completion_time)
    };
    let objects = exit.objects_at_start.unwrap_or_default();
    ErasureReceiptSpec {
        tenant_ref: chain.tenant.into(),
        tenant_uid: chain.tenant_uid.into(),
        sequence: 0,
        kind: ReceiptKind::TenantExit,
        subject: None,
        subject_uid: None,
        removals: vec![
            Removal {
                system: ErasureSystem::LearningPlatform,
                what: "the tenant's full deletion (DELETE /tenant): every person, event, session, rule, group, assignment and engagement record".into(),
                time: when(ExitStage::ErasePlatform),
            },
            Removal {
                system: ErasureSystem::Calendar,
                what: "nothing to remove: the calendars are the customer's own service, and roster keeps nothing there".into(),
                time: None,
            },
            Removal {
                system: ErasureSystem::Cluster,
                what: format!(
                    "{} DirectoryUser(s), {} Departure(s) and {} DirectoryGroup(s) deleted; the Tenant released",
                    objects.users, objects.departures, objects.groups
                ),
                time: when(ExitStage::DeleteObjects),
            },
        ],
        erasure_time: now,
        deadline: None,
        within_deadline: true,
        previous_hash: String::new(),
        hash: String::new(),
        signature: None,
        key_id: None,
        signing_key_ref: None,
    }
}

/// The chain's last receipt, as the next one links to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub sequence: i64,
    pub hash: String,
}

impl Head {
    pub fn of(spec: &ErasureReceiptSpec) -> Self {
        Self {
            sequence: spec.sequence,
            hash: spec.hash.clone(),
        }
    }
}

/// Links `draft` after `head` (or as the first receipt) and seals it: sequence,
/// previous hash, key ID, hash and signature are set here and nowhere else.
pub fn seal(
    mut draft: ErasureReceiptSpec,
    head: Option<&Head>,
    key: Option<&[u8]>,
) -> ErasureReceiptSpec {
    draft.sequence = head.map_or(1, |h| h.sequence + 1);
    draft.previous_hash = head.map_or_else(|| GENESIS.to_string(), |h| h.hash.clone());
    draft.key_id = key.map(key_id);
    if key.is_none() {
        draft.signing_key_ref = None;
    }
    draft.hash = content_hash(&draft);
    draft.signature = key.map(|k| sign(k, &draft.hash));
    draft
}

/// What is wrong with a chain, receipt by receipt (by sequence number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Receipts `from..=to` are missing (deleted, or never written).
    Gap { from: i64, to: i64 },
    /// Two receipts claim the same position.
    Duplicate { sequence: i64 },
    /// The content no longer matches its hash: the receipt was altered.
    Altered { sequence: i64 },
    /// `previousHash` is not the hash of the receipt before it: reordered or replaced.
    BrokenLink { sequence: i64 },
    /// The signature does not match under the key.
    BadSignature { sequence: i64 },
    /// Not signed (the Tenant named no key when it was written, or it was stripped).
    Unsigned { sequence: i64 },
    /// Signed with another key than the one verifying.
    OtherKey { sequence: i64 },
    /// A receipt after the tenant's exit, which ends the chain.
    AfterExit { sequence: i64 },
    /// A receipt of another Tenant UID in the chain.
    OtherTenant { sequence: i64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap { from, to } if from == to => write!(f, "receipt #{from} is missing"),
            Self::Gap { from, to } => write!(f, "receipts #{from}–#{to} are missing"),
            Self::Duplicate { sequence } => write!(f, "#{sequence} appears more than once"),
            Self::Altered { sequence } => {
                write!(
                    f,
                    "#{sequence} was altered: its content does not match its hash"
                )
            }
            Self::BrokenLink { sequence } => write!(
                f,
                "#{sequence} does not link to #{}: reordered or replaced",
                sequence - 1
            ),
            Self::BadSignature { sequence } => {
                write!(f, "#{sequence} has a signature that does not match the key")
            }
            Self::Unsigned { sequence } => write!(f, "#{sequence} is not signed"),
            Self::OtherKey { sequence } => {
                write!(
                    f,
                    "#{sequence} was signed with another key than the one given"
                )
            }
            Self::AfterExit { sequence } => {
                write!(
                    f,
                    "#{sequence} comes after the tenant's exit, which ends the chain"
                )
            }
            Self::OtherTenant { sequence } => {
                write!(f, "#{sequence} belongs to another Tenant UID")
            }
        }
    }
}

/// The result of checking one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub receipts: usize,
    pub head: Option<Head>,
    /// The chain ends with the tenant's exit receipt.
    pub sealed: bool,
    pub problems: Vec<Problem>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one tenant's chain (receipts in any order) against `key` (`None`: the chain
/// is checked for hashes and links only, and every receipt is reported `Unsigned` or
/// `OtherKey`, so an unverifiable chain never passes).
pub fn verify(receipts: &[ErasureReceiptSpec], key: Option<&[u8]>) -> Verification {
    let mut sorted: Vec<&ErasureReceiptSpec> = receipts.iter().collect();
    sorted.sort_by_key(|r| r.sequence);
    let mut problems = Vec::new();
    let tenant_uid = sorted.first().map(|r| r.tenant_uid.clone());
    let expected_key = key.map(key_id);
    let mut previous: Option<&ErasureReceiptSpec> = None;
    let mut exit_at: Option<i64> = None;
    for receipt in &sorted {
        let sequence = receipt.sequence;
        if Some(&receipt.tenant_uid) != tenant_uid.as_ref() {
            problems.push(Problem::OtherTenant { sequence });
        }
        let expected_sequence = previous.map_or(1, |p| p.sequence + 1);
        match previous {
            Some(p) if p.sequence == sequence => problems.push(Problem::Duplicate { sequence }),
            _ if sequence > expected_sequence => problems.push(Problem::Gap {
                from: expected_sequence,
                to: sequence - 1,
            }),
            _ => {}
        }
        if content_hash(receipt) != receipt.hash {
            problems.push(Problem::Altered { sequence });
        }
        // A link is checked only to an adjacent receipt; across a gap nothing can be.
        let link_expected = match previous {
            None if sequence == 1 => Some(GENESIS),
            Some(p) if p.sequence + 1 == sequence => Some(p.hash.as_str()),
            _ => None,
        };
        if let Some(link) = link_expected
            && receipt.previous_hash != link
        {
            problems.push(Problem::BrokenLink { sequence });
        }
        match (&receipt.signature, key) {
            (None, _) => problems.push(Problem::Unsigned { sequence }),
            (Some(_), None) => problems.push(Problem::OtherKey { sequence }),
            (Some(_), Some(_)) if receipt.key_id != expected_key => {
                problems.push(Problem::OtherKey { sequence })
            }
            (Some(signature), Some(key)) => {
                if !signature_matches(key, &receipt.hash, signature) {
                    problems.push(Problem::BadSignature { sequence });
                }
            }
        }
        if exit_at.is_some() {
            problems.push(Problem::AfterExit { sequence });
        }
        if receipt.kind == ReceiptKind::TenantExit {
            exit_at.get_or_insert(sequence);
        }
        previous = Some(receipt);
    }
    Verification {
        receipts: sorted.len(),
        head: sorted.last().map(|r| Head::of(r)),
        sealed: exit_at.is_some(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use roster_api::{ErasureSystem, Removal};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn draft(kind: ReceiptKind, n: i64) -> ErasureReceiptSpec {
        let at = Utc.timestamp_opt(1_800_000_000 + n, 0).unwrap();
        ErasureReceiptSpec {
            tenant_ref: "acme".into(),
            tenant_uid: "uid-acme".into(),
            sequence: 0,
            kind,
            subject: Some(subject(Some(KEY), "uid-acme", &format!("E{n}"))),
            subject_uid: Some(format!("uid-{n}")),
            removals: vec![Removal {
                system: ErasureSystem::LearningPlatform,
                what: "anonymized and purged".into(),
                time: Some(at),
            }],
            erasure_time: at,
            deadline: Some(at),
            within_deadline: true,
            previous_hash: String::new(),
            hash: String::new(),
            signature: None,
            key_id: None,
            signing_key_ref: None,
        }
    }

    fn chain(n: i64, key: Option<&[u8]>) -> Vec<ErasureReceiptSpec> {
        let mut out: Vec<ErasureReceiptSpec> = Vec::new();
        for i in 1..=n {
            let head = out.last().map(Head::of);
            out.push(seal(draft(ReceiptKind::User, i), head.as_ref(), key));
        }
        out
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let mut receipts = chain(4, Some(KEY));
        let head = Head::of(receipts.last().unwrap());
        receipts.push(seal(
            draft(ReceiptKind::TenantExit, 5),
            Some(&head),
            Some(KEY),
        ));
        receipts.reverse(); // the order they are listed in does not matter
        let v = verify(&receipts, Some(KEY));
        assert_eq!(v.problems, vec![]);
        assert!(v.sealed && v.ok());
        assert_eq!((v.receipts, v.head.unwrap().sequence), (5, 5));
        assert_eq!(receipts.last().unwrap().previous_hash, GENESIS);
    }

    #[test]
    fn hashing_is_deterministic_and_covers_every_field() {
        let a = chain(1, Some(KEY)).remove(0);
        assert_eq!(content_hash(&a), a.hash);
        let mut b = a.clone();
        b.within_deadline = false;
        assert_ne!(content_hash(&b), a.hash);
        let mut c = a.clone();
        c.signature = Some("ff".into()); // the signature is not part of the content
        assert_eq!(content_hash(&c), a.hash);
    }

    /// tamper | what verification reports
    #[test]
    fn tampering_is_reported() {
        type Tamper = fn(&mut Vec<ErasureReceiptSpec>);
        let cases: Vec<(&str, Tamper, Vec<Problem>)> = vec![
            (
                "a field edited",
                |c| c[1].removals[0].what = "nothing".into(),
                vec![Problem::Altered { sequence: 2 }],
            ),
            (
                "edited and rehashed without the key",
                |c| {
                    c[1].within_deadline = false;
                    c[1].hash = content_hash(&c[1]);
                },
                vec![
                    Problem::BrokenLink { sequence: 3 },
                    Problem::BadSignature { sequence: 2 },
                ],
            ),
            (
                "a receipt deleted",
                |c| drop(c.remove(1)),
                vec![Problem::Gap { from: 2, to: 2 }],
            ),
            (
                "two receipts swapped (sequence numbers exchanged)",
                |c| {
                    let (one, two) = (c[1].sequence, c[2].sequence);
                    c[1].sequence = two;
                    c[2].sequence = one;
                },
                vec![
                    Problem::Altered { sequence: 2 },
                    Problem::BrokenLink { sequence: 2 },
                    Problem::Altered { sequence: 3 },
                    Problem::BrokenLink { sequence: 3 },
                    Problem::BrokenLink { sequence: 4 },
                ],
            ),
            (
                "a duplicate",
                |c| {
                    let copy = c[2].clone();
                    c.push(copy)
                },
                vec![Problem::Duplicate { sequence: 3 }],
            ),
            (
                "a signature stripped",
                |c| c[0].signature = None,
                vec![Problem::Unsigned { sequence: 1 }],
            ),
            (
                "the first receipt deleted",
                |c| drop(c.remove(0)),
                vec![Problem::Gap { from: 1, to: 1 }],
            ),
        ];
        for (name, tamper, expected) in cases {
            let mut receipts = chain(4, Some(KEY));
            tamper(&mut receipts);
            let mut found = verify(&receipts, Some(KEY)).problems;
            let mut expected = expected;
            found.sort_by_key(|p| format!("{p:?}"));
            expected.sort_by_key(|p| format!("{p:?}"));
            assert_eq!(found, expected, "{name}");
        }
    }

    #[test]
    fn a_receipt_after_the_exit_is_reported() {
        let mut receipts = chain(2, Some(KEY));
        let head = Head::of(&receipts[1]);
        receipts.push(seal(
            draft(ReceiptKind::TenantExit, 3),
            Some(&head),
            Some(KEY),
        ));
        let head = Head::of(&receipts[2]);
        receipts.push(seal(draft(ReceiptKind::User, 4), Some(&head), Some(KEY)));
        assert_eq!(
            verify(&receipts, Some(KEY)).problems,
            vec![Problem::AfterExit { sequence: 4 }]
        );
    }

    #[test]
    fn another_key_or_no_key_never_passes() {
        let receipts = chain(2, Some(KEY));
        let other = verify(&receipts, Some(b"another key of thirty-two bytes!"));
        assert_eq!(
            other.problems,
            vec![
                Problem::OtherKey { sequence: 1 },
                Problem::OtherKey { sequence: 2 }
            ]
        );
        assert!(!verify(&receipts, None).ok());
        let unsigned = chain(2, None);
        assert_eq!(
            verify(&unsigned, None).problems,
            vec![
                Problem::Unsigned { sequence: 1 },
                Problem::Unsigned { sequence: 2 }
            ]
        );
    }

    #[test]
    fn subjects_are_keyed_and_distinct() {
        let a = subject(Some(KEY), "t", "E1");
        assert_eq!(a.len(), 32);
        assert_ne!(a, subject(Some(KEY), "t", "E2"));
        assert_ne!(a, subject(Some(b"other"), "t", "E1"));
        assert_ne!(a, subject(None, "t", "E1"));
        assert!(!a.contains("E1"));
    }

    #[test]
    fn messages_name_positions_only() {
        assert_eq!(
            Problem::Gap { from: 2, to: 4 }.to_string(),
            "receipts #2–#4 are missing"
        );
        assert_eq!(
            Problem::BrokenLink { sequence: 3 }.to_string(),
            "#3 does not link to #2: reordered or replaced"
        );
    }
}
