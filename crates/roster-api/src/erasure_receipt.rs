//! `ErasureReceipt`: the proof that a person's data (or a whole tenant's, at its exit)
//! was erased: what was removed where, when, and within which deadline. Receipts are
//! PII-free, hash-chained per tenant and signed (see docs/security.md, "Erasure
//! receipts"); roster alone writes them, and nothing roster does deletes them: they
//! outlive the DirectoryUser, its Departure and the Tenant itself.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::tenant::{LocalObjectRef, SecretKeyRef};

/// Label with the Tenant's UID: one chain per Tenant UID.
pub const TENANT_UID_LABEL: &str = "roster.dev/tenant-uid";
/// Label with the erased person's object UID (the stem of their idempotency keys).
pub const SUBJECT_UID_LABEL: &str = "roster.dev/subject-uid";
/// Label with the receipt's kind (`User` or `TenantExit`).
pub const RECEIPT_KIND_LABEL: &str = "roster.dev/receipt-kind";

/// One link of a tenant's erasure chain.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "Proof of an erasure: what roster removed where (learning platform, calendar, cluster objects), when, and within which deadline, for one purged person or for a tenant's exit. PII-free. Each receipt holds the hash of the previous receipt of its tenant and an HMAC-SHA256 signature; `roster verify-erasure --tenant NAMESPACE` checks the chain. Written by roster only, never deleted by it.",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "ErasureReceipt",
    namespaced,
    shortname = "erc",
    category = "roster",
    printcolumn(json_path = ".spec.tenantRef.name", name = "Tenant", type_ = "string"),
    printcolumn(json_path = ".spec.sequence", name = "Seq", type_ = "integer"),
    printcolumn(json_path = ".spec.kind", name = "Kind", type_ = "string"),
    printcolumn(
        json_path = ".spec.withinDeadline",
        name = "Within-Deadline",
        type_ = "boolean"
    ),
    printcolumn(json_path = ".spec.erasureTime", name = "Erased", type_ = "string")
)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReceiptSpec {
    /// The Tenant whose chain this receipt belongs to (it may be gone: receipts outlive it).
    pub tenant_ref: LocalObjectRef,
    /// The Tenant's UID when the receipt was written: a Tenant re-created under the same
    /// name starts a chain of its own.
    #[schemars(length(max = 64))]
    #[serde(rename = "tenantUID")]
    pub tenant_uid: String,
    /// Position in the tenant's chain, from 1, without gaps.
    #[schemars(range(min = 1))]
    pub sequence: i64,
    /// What was erased: one person (`User`) or the whole tenant (`TenantExit`, the last
    /// receipt of a chain).
    pub kind: ReceiptKind,
    /// The erased person, as HMAC-SHA256 of their employee ID under the tenant's signing
    /// key (16 bytes, hex): whoever holds the key can check whether a given employee ID
    /// was erased; nobody else learns it. Absent for a tenant exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub subject: Option<String>,
    /// The erased object's UID (not personal data; the stem of its idempotency keys).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "subjectUID"
    )]
    #[schemars(length(max = 64))]
    pub subject_uid: Option<String>,
    /// What was removed, system by system (PII-free summaries).
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub removals: Vec<Removal>,
    /// When the erasure completed.
    pub erasure_time: DateTime<Utc>,
    /// The deadline it had to meet (the person's persisted `purgeDueTime`; absent for a
    /// tenant exit, which has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// `erasureTime` is at most one second after `deadline` (roster purges when the
    /// deadline arrives and acts within a second of it); true when there is no deadline.
    pub within_deadline: bool,
    /// The hash of the previous receipt of the chain (64 hex digits); 64 zeros for the first.
    #[schemars(length(min = 64, max = 64))]
    pub previous_hash: String,
    /// SHA-256 (hex) of this receipt's content, `previousHash` included, `hash`,
    /// `signature` and `keyID` excluded (docs/security.md says how it is computed).
    #[schemars(length(min = 64, max = 64))]
    pub hash: String,
    /// HMAC-SHA256 (hex) of `hash` under the signing key. Absent when the Tenant named
    /// no signing key (the chain is then only hash-linked, and verification says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub signature: Option<String>,
    /// Which key signed it: 16 hex digits of SHA-256 over the key (never the key).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "keyID")]
    #[schemars(length(max = 16))]
    pub key_id: Option<String>,
    /// The Secret holding the signing key (labelled `roster.dev/credentials: "true"`),
    /// recorded so the chain can be verified after the Tenant is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_ref: Option<SecretKeyRef>,
}

/// What a receipt covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ReceiptKind {
    /// One person's purge.
    User,
    /// The tenant's exit: everything of the tenant, engagement records included. Ends the chain.
    TenantExit,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::TenantExit => "TenantExit",
        }
    }
}

/// Where something was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ErasureSystem {
    /// The learning platform (anonymization, purge, or the tenant's full deletion).
    LearningPlatform,
    /// The tenant's calendar service.
    Calendar,
    /// The Kubernetes objects roster writes (DirectoryUser, Departure, DirectoryGroup).
    Cluster,
}

/// One system's part of an erasure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    /// Where.
    pub system: ErasureSystem,
    /// What, without personal data (counts, step names, object kinds).
    #[schemars(length(max = 1024))]
    pub what: String,
    /// When that part completed, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}
