//! `DirectoryUser`: one person as the HR system or identity provider knows them
//! (spec), and where roster is in their leaver lifecycle (status).

use chrono::{DateTime, NaiveDate, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::condition::{Condition, conditions_schema};
use super::tenant::LocalObjectRef;

/// The person's record as the source delivered it. roster never rewrites it, except
/// to scrub PII once the user is purged.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "A person as the HR system or identity provider knows them (spec), and where roster is in their leaver lifecycle (status). Name it after the employee ID, never after the person.",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "DirectoryUser",
    namespaced,
    status = "DirectoryUserStatus",
    shortname = "du",
    category = "roster",
    printcolumn(json_path = ".status.phase", name = "Phase", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(json_path = ".spec.tenantRef.name", name = "Tenant", type_ = "string"),
    printcolumn(
        json_path = ".status.nextDeadline",
        name = "Next-Deadline",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".spec.employeeID",
        name = "Employee-ID",
        type_ = "string",
        priority = 1
    ),
    printcolumn(
        json_path = ".status.trigger",
        name = "Trigger",
        type_ = "string",
        priority = 1
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    ),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        name = "Message",
        type_ = "string",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUserSpec {
    /// The Tenant (in this namespace) the person belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantRef is immutable: delete and re-create the DirectoryUser to move a person to another tenant"))]
    pub tenant_ref: LocalObjectRef,

    /// Identifier of the person in the HR system: the mapping key, unique in the tenant
    /// and immutable once set. Engagement records stay reachable by it after anonymization.
    /// Letters, digits, `.`, `_` and `-`; up to 64 characters; leading zeros are kept.
    #[schemars(length(min = 1, max = 64))]
    #[serde(rename = "employeeID")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9][A-Za-z0-9._-]*$')").message("employeeID must start with a letter or digit and contain only letters, digits, '.', '_' or '-'"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("employeeID is immutable: it is the mapping key; create a new DirectoryUser for a different person"))]
    pub employee_id: String,

    /// Full name of the person. Personal data: replaced by a placeholder when purged.
    #[schemars(length(min = 1, max = 256))]
    pub full_name: String,

    /// Primary email address. Personal data: replaced by a placeholder when purged.
    #[schemars(length(min = 3, max = 254))]
    #[x_kube(validation = Rule::new("self.matches('^[^@ ]+@[^@ ]+[.][^@ ]+$')").message("email must be an address such as name@example.com"))]
    pub email: String,

    /// URL of the profile picture (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^ ]+$')").message("pictureURL must be an http(s) URL such as https://example.com/me.png"))]
    #[serde(rename = "pictureURL")]
    pub picture_url: Option<String>,

    /// Date (YYYY-MM-DD) the person joined. A hire date after the termination date
    /// is a rehire and makes the person active again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10))]
    pub hire_date: Option<NaiveDate>,

    /// Date (YYYY-MM-DD) the person leaves, read in the tenant's time zone. A future
    /// date schedules deprovisioning; a date that has arrived triggers it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10))]
    pub termination_date: Option<NaiveDate>,

    /// Department name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub department: Option<String>,

    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub title: Option<String>,

    /// Logical location name. It must match one of the Tenant's `locations`, otherwise
    /// it is left blank downstream and the `LocationMatched` condition says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub location: Option<String>,

    /// Primary email of the person's manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 254))]
    #[x_kube(validation = Rule::new("self.matches('^[^@ ]+@[^@ ]+[.][^@ ]+$')").message("managerEmail must be an address such as manager@example.com"))]
    pub manager_email: Option<String>,

    /// Whether the source considers the person active. `false` (a SCIM deactivation,
    /// absence from the HR feed) starts the quarantine.
    #[serde(default = "default_active")]
    pub active: bool,

    /// Where the record came from.
    #[serde(default)]
    pub source: RecordSource,

    /// The source's groups the person is in, by display name (an identity provider's
    /// pushed groups, see DirectoryGroup). The Tenant's group rules map them to
    /// learning-platform groups with a condition on the field `groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200), inner(length(min = 1, max = 256)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub groups: Vec<String>,
}

fn default_active() -> bool {
    true
}

impl Default for DirectoryUserSpec {
    /// An active person with empty fields (for builders and tests).
    fn default() -> Self {
        Self {
            tenant_ref: LocalObjectRef::default(),
            employee_id: String::new(),
            full_name: String::new(),
            email: String::new(),
            picture_url: None,
            hire_date: None,
            termination_date: None,
            department: None,
            title: None,
            location: None,
            manager_email: None,
            active: true,
            source: RecordSource::default(),
            groups: Vec::new(),
        }
    }
}

/// The people source a DirectoryUser was written by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordSource {
    /// Applied by hand or by a GitOps pipeline.
    #[default]
    Manual,
    /// Pushed by an identity provider over SCIM 2.0.
    #[serde(rename = "SCIM")]
    Scim,
    /// Imported from the HR CSV file over SFTP.
    #[serde(rename = "CSV")]
    Csv,
    /// Fetched from the HR JSON report API.
    #[serde(rename = "HRAPI")]
    HrApi,
}

/// Where a person is in the leaver lifecycle.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Phase {
    /// Has access; nothing scheduled except perhaps a future termination date.
    #[default]
    Active,
    /// Would leave, but the mass-deprovisioning guard holds them until approved.
    Held,
    /// Access revoked; reversible until the deprovisioning deadline.
    Quarantined,
    /// Full-deprovisioning steps are running.
    Deprovisioning,
    /// All full-deprovisioning steps are done; PII purge pending.
    Deprovisioned,
    /// PII is gone everywhere roster can reach. Terminal.
    Purged,
}

/// What started the leaver lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Trigger {
    /// `active: false` (SCIM deactivation or absence from the HR feed).
    Deactivated,
    /// The termination date arrived in the tenant's time zone.
    TerminationDate,
    /// A `roster.dev/deprovision-now` request (annotation).
    DeprovisionNow,
    /// The DirectoryUser object was deleted.
    ObjectDeleted,
}

/// Full-deprovisioning and access steps, each recorded before the next runs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum StepName {
    /// Stage 1: revoke access at the learning platform.
    RevokeAccess,
    /// Reversal: restore access at the learning platform.
    RestoreAccess,
    TransferCalendarEvents,
    TransferRules,
    RemoveFromEvents,
    RemoveFromGroups,
    RemoveAssignments,
    Anonymize,
    /// Remove remaining PII downstream at the purge deadline.
    Purge,
}

/// Progress of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StepState {
    #[default]
    Pending,
    Succeeded,
    Failed,
    /// Turned off by the policy, or planned only (dry-run).
    Skipped,
}

/// The record of one side-effecting step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    pub name: StepName,
    pub state: StepState,
    /// Calls made so far for this step.
    #[serde(default)]
    pub attempts: i32,
    /// Key sent with every call of this step, so a retried call is applied once.
    #[schemars(length(max = 253))]
    pub idempotency_key: String,
    /// Last error category and detail, without personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub last_error: Option<String>,
    /// What the step did, without personal data, e.g. "3 events transferred".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub summary: Option<String>,
    /// When the step succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// After a failure: not retried before this time (backoff, or the service's `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<DateTime<Utc>>,
}

/// Annotation: deprovision this person now, skipping the quarantine (the platform's
/// manual admin deletion). Its value is a token, e.g. the time of the request; a new
/// value is a new request. Removing it, or an undo by a GitOps tool, undoes nothing.
pub const DEPROVISION_NOW_ANNOTATION: &str = "roster.dev/deprovision-now";
/// Annotation: retry failed steps now instead of after their backoff. Value: a token.
pub const RETRY_ANNOTATION: &str = "roster.dev/retry";
/// Annotation: let a user held by the mass-deprovisioning guard leave. Value: a token.
pub const APPROVE_ANNOTATION: &str = "roster.dev/approve";

/// The value of each request annotation roster last acted on (the Flux
/// `requestedAt` / `lastHandledReconcileAt` pattern): an annotation whose value differs
/// from the one here is a new request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandledRequests {
    /// Value of `roster.dev/deprovision-now` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub deprovision_now: Option<String>,
    /// Value of `roster.dev/retry` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub retry: Option<String>,
    /// Value of `roster.dev/approve` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub approve: Option<String>,
}

impl HandledRequests {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The mass-deprovisioning guard's record of one person. Persisted so that the
/// tenant's one-minute window and every hold survive a restart: the window is counted
/// from `admittedTime`, and a hold ends when the Tenant's approve or reject annotation
/// no longer has the value recorded here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovalGuardRecord {
    /// When the guard let this episode's removal through (it counts in the tenant's
    /// one-minute window until a minute later). Not set for an approved removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_time: Option<DateTime<Utc>>,
    /// When the guard held this person (phase `Held`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_time: Option<DateTime<Utc>>,
    /// The Tenant's `roster.dev/approve-removals` value when the person was held: a
    /// different value approves the hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub held_approve_token: Option<String>,
    /// The Tenant's `roster.dev/reject-removals` value when the person was held: a
    /// different value rejects the hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub held_reject_token: Option<String>,
    /// When a rejection sent the person back to Active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_time: Option<DateTime<Utc>>,
    /// The record's `.metadata.generation` the rejection applies to: until the record
    /// changes, the trigger it carries is not acted on again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_generation: Option<i64>,
}

impl RemovalGuardRecord {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The person's account at the learning platform: whether roster provisioned it, what
/// it last sent, and how the sync is going. Profile fields are kept only as salted
/// digests (never the values), so a settled person makes no call and a restart does
/// not re-send anyone; the digests are dropped when the platform anonymizes the person.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    /// How the account came under roster's management; absent until it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<Provisioning>,
    /// When roster created or adopted the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_time: Option<DateTime<Utc>>,
    /// Sync calls completed for this person; part of each sync call's idempotency key,
    /// so a retried call is applied once and the next change gets a new key.
    #[serde(default)]
    pub sync_calls: i64,
    /// When the last sync call completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<DateTime<Utc>>,
    /// Digests of the profile fields as last sent (a field sent blank has none).
    #[serde(default, skip_serializing_if = "SyncedProfile::is_empty")]
    pub profile: SyncedProfile,
    /// Groups roster has added the person to at the platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub groups: Vec<String>,
    /// Sync calls that failed in a row (reset by a success).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: i32,
    /// The last sync error, without personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub last_error: Option<String>,
    /// After a failure: the sync is not tried again before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<DateTime<Utc>>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl AccountStatus {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How roster came to manage a person's platform account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Provisioning {
    /// roster created it (a joiner).
    Created,
    /// An account with this employee ID existed; roster took it over and synced it.
    Adopted,
}

/// Salted digests (16 hex digits of SHA-256 over the object's UID, the field and the
/// value) of the profile fields roster last sent. They tell a change from no change
/// without keeping the value; absent means blank or never sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedProfile {
    /// Digest of the full name sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub full_name: Option<SmolStr>,
    /// Digest of the email address sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub email: Option<SmolStr>,
    /// Digest of the picture URL sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[serde(rename = "pictureURL")]
    pub picture_url: Option<SmolStr>,
    /// Digest of the hire date sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub hire_date: Option<SmolStr>,
    /// Digest of the department sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub department: Option<SmolStr>,
    /// Digest of the title sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub title: Option<SmolStr>,
    /// Digest of the location sent (blank when it matched none of the Tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub location: Option<SmolStr>,
    /// Digest of the manager's employee ID sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub manager: Option<SmolStr>,
}

impl SyncedProfile {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// roster's view of the person's lifecycle. Never contains personal data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUserStatus {
    /// Where the person is in the lifecycle. Informational, for people and
    /// `kubectl get`: automation should wait on conditions (`Ready`, `Stalled`,
    /// `Purged`), which say more and keep their meaning as phases are added.
    #[serde(default)]
    pub phase: Phase,
    /// What started the current leaver episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Counts leaver episodes; part of every idempotency key so a reversed and
    /// re-triggered user gets fresh keys.
    #[serde(default)]
    pub episode: i32,
    /// When roster first saw the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_time: Option<DateTime<Utc>>,
    /// When access was revoked and the quarantine began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_start_time: Option<DateTime<Utc>>,
    /// When full deprovisioning starts (end of quarantine). Persisted so a restart never moves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovision_due_time: Option<DateTime<Utc>>,
    /// When every full-deprovisioning step had completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovisioned_time: Option<DateTime<Utc>>,
    /// When PII must be gone (termination + purge deadline). Persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_due_time: Option<DateTime<Utc>>,
    /// When PII was purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_time: Option<DateTime<Utc>>,
    /// The next moment roster will act without being told to (shown by `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_deadline: Option<DateTime<Utc>>,
    /// One entry per side-effecting step of the current episode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub steps: Vec<StepStatus>,
    /// Learning-platform groups the Tenant's group rules put the person in (add-only
    /// unless a rule says `removeWhenUnmatched`); `account.groups` says which of them
    /// are applied at the platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub groups: Vec<String>,
    /// The person's account at the learning platform as roster last synced it.
    #[serde(default, skip_serializing_if = "AccountStatus::is_empty")]
    pub account: AccountStatus,
    /// How many times a quarantine was reversed, and when last.
    #[serde(default)]
    pub reversals: i32,
    /// When the last reversal (or reinstatement) happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reversal_time: Option<DateTime<Utc>>,
    /// The one-off requests (annotations) roster has acted on, by their value.
    #[serde(default, skip_serializing_if = "HandledRequests::is_empty")]
    pub handled_requests: HandledRequests,
    /// What the mass-deprovisioning guard decided about this person's removal
    /// (docs/lifecycle.md, "The mass-deprovisioning guard").
    #[serde(default, skip_serializing_if = "RemovalGuardRecord::is_empty")]
    pub removal_guard: RemovalGuardRecord,
    /// The ErasureReceipt written for this person's purge (its name), once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_receipt: Option<String>,
    /// Dry-run: the steps that would run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub plan: Vec<StepName>,
    /// `Ready`, `Quarantined`, `Deprovisioned`, `Purged`; `Reconciling` and `Stalled` only while True (kstatus); and when they apply
    /// `LocationMatched`, `Suspended`, `DryRun`, `PIIReapplied`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `.metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The DirectoryUser object name of an employee ID, for every people source (never a
/// name or an email): `e-<id>` when the ID is already a valid lower-case name; otherwise the ID folded
/// to one and a digest of the original, so that `A1` and `a1` stay two objects.
pub fn object_name(employee_id: &str) -> String {
    let dns_safe = employee_id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = employee_id
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if dns_safe && ends_ok && !employee_id.contains("..") && employee_id.len() <= 60 {
        return format!("e-{employee_id}");
    }
    let folded: String = employee_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "e-{}-{}",
        folded.trim_matches('-'),
        short_digest(employee_id)
    )
}

/// 8 hex digits of SHA-256: tells apart IDs that fold to the same name.
fn short_digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
