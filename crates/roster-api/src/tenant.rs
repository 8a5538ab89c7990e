//! `Tenant`: one customer organization of the learning platform, its connectors,
//! its people sources and its switches.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};

/// One customer organization. A namespace holds one Tenant, its DeprovisionPolicy
/// objects and its DirectoryUsers; nothing references across namespaces.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "One customer organization of the learning platform: its connectors, people sources, time zone, group rules and switches. A namespace holds one Tenant, its policies and its users.",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "Tenant",
    namespaced,
    status = "TenantStatus",
    shortname = "tn",
    category = "roster",
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(json_path = ".spec.policyRef.name", name = "Policy", type_ = "string"),
    printcolumn(
        json_path = ".status.userCounts.active",
        name = "Active",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".status.userCounts.quarantined",
        name = "Quarantined",
        type_ = "integer"
    ),
    printcolumn(json_path = ".spec.suspend", name = "Suspended", type_ = "boolean"),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Human-readable name of the organization.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,

    /// The DeprovisionPolicy (in this namespace) that governs this tenant's users.
    pub policy_ref: LocalObjectRef,

    /// Where the learning platform's API is and how to authenticate to it.
    pub learning_platform: LearningPlatformConnection,

    /// Calendar integration used to transfer events a leaver owns.
    #[serde(default)]
    pub calendar: CalendarConnection,

    /// Configured location names. A user's location must match one of them, otherwise
    /// it is left blank downstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub locations: Vec<String>,

    /// IANA time zone in which date-only HR fields (termination date) are read,
    /// e.g. `Europe/Berlin`. Default `UTC`. An unknown name is reported by the
    /// `TimeZoneValid` condition.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}$')").message("timeZone must be an IANA time zone name such as UTC, Europe/Berlin or America/Los_Angeles"))]
    pub time_zone: String,

    /// Rules that put users into learning-platform groups from their profile fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub group_rules: Vec<GroupRule>,

    /// People sources that write this tenant's DirectoryUsers.
    #[serde(default)]
    pub sources: PeopleSources,

    /// Stop every outbound side effect. Deadlines keep counting; what falls due while
    /// suspended runs when the tenant is resumed.
    #[serde(default)]
    pub suspend: bool,

    /// While true (the default) the Tenant cannot be deleted: deleting it removes every
    /// user's data downstream, engagement records included.
    #[serde(default = "default_true")]
    pub deletion_protection: bool,

    /// How erasure receipts (the proof that a purged person's data is gone, see
    /// `kubectl explain erasurereceipt`) are signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_receipts: Option<ErasureReceiptSettings>,
}

/// Signing of the tenant's erasure receipts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReceiptSettings {
    /// The HMAC-SHA256 key (at least 32 bytes) that signs every receipt, in a Secret
    /// labelled `roster.dev/credentials: "true"`. Keep the Secret after the tenant's
    /// exit: `roster verify-erasure` needs it to check the chain.
    pub signing_key_secret_ref: SecretKeyRef,
}

fn default_time_zone() -> String {
    "UTC".into()
}
fn default_true() -> bool {
    true
}

/// A reference to an object in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("name must be an object name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,
}

impl From<&str> for LocalObjectRef {
    fn from(name: &str) -> Self {
        Self { name: name.into() }
    }
}

/// A reference to a DirectoryUser of the same tenant, by its employee ID (the mapping
/// key, which survives renames and is never personal data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct UserRef {
    /// `spec.employeeID` of the DirectoryUser.
    #[serde(rename = "employeeID")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9][A-Za-z0-9._-]*$')").message("employeeID must start with a letter or digit and contain only letters, digits, '.', '_' or '-'"))]
    pub employee_id: String,
}

impl From<&str> for UserRef {
    fn from(employee_id: &str) -> Self {
        Self {
            employee_id: employee_id.into(),
        }
    }
}

/// The label a Secret must carry for roster to use it (value `"true"`). Without it,
/// whoever may edit a Tenant but not read Secrets could make roster send any Secret of
/// the namespace to an endpoint of their choosing (a confused deputy): the label is
/// the Secret owner's consent.
pub const CREDENTIALS_LABEL: &str = "roster.dev/credentials";

/// Annotation on a Tenant: let the users the mass-deprovisioning guard holds leave
/// (their quarantine starts), and end the guard's trip. Its value is a token (e.g. the
/// time of the approval); a new value is a new approval.
pub const APPROVE_REMOVALS_ANNOTATION: &str = "roster.dev/approve-removals";

/// Annotation on a Tenant: reject the removals the mass-deprovisioning guard holds; the
/// held users go back to Active and stay there until their record changes again. Its
/// value is a token; a new value is a new rejection.
pub const REJECT_REMOVALS_ANNOTATION: &str = "roster.dev/reject-removals";

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("the Secret name must be an object name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Connection to the learning platform's HTTP API (see docs/learning-platform.openapi.yaml).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearningPlatformConnection {
    /// Base URL, e.g. `https://lms.example.com/api/v1`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^ ]+$')").message("learningPlatform.endpoint must be an http(s) URL such as https://lms.example.com/api/v1"))]
    pub endpoint: String,
    /// Secret key holding the API bearer token.
    pub credentials_secret_ref: SecretKeyRef,
}

/// Which calendar service holds the events users organize.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CalendarProvider {
    /// No calendar integration: the transfer step is skipped.
    #[default]
    None,
    /// Google Calendar API v3.
    Google,
    /// Microsoft Graph calendars.
    Microsoft,
}

/// Calendar integration settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider == 'None' || (has(self.endpoint) && has(self.credentialsSecretRef) && has(self.fallbackOwner))").message("calendar.endpoint, calendar.credentialsSecretRef and calendar.fallbackOwner are required when calendar.provider is Google or Microsoft"))]
pub struct CalendarConnection {
    /// `None`, `Google` or `Microsoft`.
    #[serde(default)]
    pub provider: CalendarProvider,
    /// Base URL of the calendar API, e.g. `https://www.googleapis.com/calendar/v3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^ ]+$')").message("calendar.endpoint must be an http(s) URL such as https://graph.microsoft.com/v1.0"))]
    pub endpoint: Option<String>,
    /// Secret key holding the calendar credentials: for Google the service account's
    /// JSON key file (domain-wide delegation), for Microsoft a JSON document with
    /// `tenantId`, `clientId` and a `clientSecret` or certificate (see docs/calendars.md).
    /// roster mints short-lived tokens from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// Receives events (and, per the policy, rules) when nobody in the policy's order is
    /// eligible: an Active DirectoryUser of this tenant with calendar access, named by
    /// employee ID so that no email address sits in the Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_owner: Option<UserRef>,
}

/// A profile field that sources map to and group rules test.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ProfileField {
    #[serde(rename = "employeeID")]
    EmployeeId,
    FullName,
    Email,
    #[serde(rename = "pictureURL")]
    PictureUrl,
    HireDate,
    TerminationDate,
    Department,
    Title,
    Location,
    ManagerEmail,
    Active,
    /// The source groups the person is in (`spec.groups`); a condition on it holds
    /// when any of them is listed. Only for group rules.
    Groups,
}

/// Puts users whose profile matches every condition into a learning-platform group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRule {
    /// Group name at the learning platform.
    #[schemars(length(min = 1, max = 256))]
    pub group: String,
    /// All must hold for the rule to match.
    #[schemars(length(min = 1, max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub conditions: Vec<FieldCondition>,
    /// Remove the user from the group when the rule stops matching. Off by default:
    /// group rules only add, as in the platform's SSO group mapping.
    #[serde(default)]
    pub remove_when_unmatched: bool,
}

/// A test on one profile field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldCondition {
    pub field: ProfileField,
    /// `In` matches when the field equals one of `values` (case-insensitive);
    /// `NotIn` when it equals none of them.
    pub operator: FieldOperator,
    /// Values compared with the field (case-insensitive).
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 256)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub values: Vec<String>,
}

/// Comparison used by a group rule condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FieldOperator {
    In,
    NotIn,
}

/// People sources for a tenant. Any combination may be enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeopleSources {
    /// SCIM 2.0 endpoint served by roster for identity providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim: Option<ScimSource>,
    /// Daily HR CSV file pulled over SFTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSource>,
    /// HR JSON report API (Workday-report style).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hrAPI")]
    pub hr_api: Option<HrApiSource>,
}

/// SCIM 2.0 source settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimSource {
    /// Secret key holding the bearer token the identity provider presents. A token
    /// only ever reaches this tenant's users.
    pub token_secret_ref: SecretKeyRef,
}

/// CSV-over-SFTP source settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsvSource {
    /// SFTP host name or address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// SFTP port.
    #[serde(default = "default_sftp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Path of the file on the server. The file name may be a glob (`people-*.csv`):
    /// the newest matching file wins.
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// The server's public host key as `ssh-keyscan` prints it (`ssh-ed25519 AAAA…`,
    /// with or without the host in front). Required to fetch: without it, or when the
    /// server presents another key, nothing is fetched and the sync fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 16, max = 16384))]
    pub host_key: Option<String>,
    /// Secret holding `username` and either `password` or `privateKey`.
    pub credentials_secret_ref: LocalObjectRef,
    /// Pull daily at this local time (`HH:MM`, in the Tenant's time zone) instead of
    /// every `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message("csv.dailyAt must be a time of day as HH:MM, such as 02:30"))]
    pub daily_at: Option<String>,
    /// How often the file is pulled, as a Go duration. Default `24h`.
    #[serde(default = "default_daily")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') && duration(self) >= duration('1m')").message("csv.interval must be a duration of at least 1m, such as 24h or 30m"))]
    pub interval: String,
    /// strftime-style format of date columns. Default `%Y-%m-%d`.
    #[serde(default = "default_date_format")]
    #[schemars(length(min = 2, max = 32))]
    pub date_format: String,
    /// Header name for each profile field, when it differs from the documents' names.
    /// One entry per field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 11))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["field"]))]
    pub columns: Vec<ColumnMapping>,
    /// The file lists everyone: people missing from it are treated as removed from
    /// the feed (guarded by the mass-deprovisioning guard). Default true.
    #[serde(default = "default_true")]
    pub complete_snapshot: bool,
}

/// Which CSV header holds a profile field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMapping {
    /// The profile field.
    pub field: ProfileField,
    /// The header naming its column (matched after trimming and case-folding).
    #[schemars(length(min = 1, max = 256))]
    pub header: String,
}

/// HR JSON API source settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HrApiSource {
    /// Report URL returning `{"Report_Entry": [...]}`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^ ]+$')").message("hrAPI.url must be an http(s) URL"))]
    pub url: String,
    /// Secret holding `token` (a bearer token), or `clientId` and `clientSecret`
    /// (exchanged at `tokenURL` by the client-credentials grant, else sent as HTTP
    /// Basic credentials).
    pub credentials_secret_ref: LocalObjectRef,
    /// OAuth 2.0 token endpoint for the client-credentials grant.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "tokenURL")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^ ]+$')").message("hrAPI.tokenURL must be an http(s) URL"))]
    pub token_url: Option<String>,
    /// Fetch daily at this local time (`HH:MM`, in the Tenant's time zone) instead of
    /// every `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message("hrAPI.dailyAt must be a time of day as HH:MM, such as 02:30"))]
    pub daily_at: Option<String>,
    /// The report lists everyone: people missing from it are treated as removed from
    /// the feed (guarded by the mass-deprovisioning guard). Default true.
    #[serde(default = "default_true")]
    pub complete_snapshot: bool,
    /// How often the report is fetched, as a Go duration. Default `24h`.
    #[serde(default = "default_daily")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') && duration(self) >= duration('1m')").message("hrAPI.interval must be a duration of at least 1m, such as 24h or 30m"))]
    pub interval: String,
    /// Attribute mapping rules: report field → profile field. `employeeID` must be mapped.
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    #[x_kube(validation = Rule::new("self.exists_one(m, m.to == 'employeeID')").message("hrAPI.mappings must map exactly one report field to employeeID, the mapping key"))]
    pub mappings: Vec<AttributeMapping>,
}

/// One attribute mapping rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributeMapping {
    /// Field (alias) in the source record.
    #[schemars(length(min = 1, max = 256))]
    pub from: String,
    /// Further fields appended to `from`'s value, joined by `separator`
    /// (concatenation, e.g. first and last name into `fullName`); absent ones are skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub concat: Vec<String>,
    /// What joins concatenated values. Default a single space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub separator: Option<String>,
    /// Profile field it fills.
    pub to: ProfileField,
    /// Optional transform applied to the value.
    #[serde(default)]
    pub transform: Transform,
    /// Value used when the source fields are absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub default: Option<String>,
}

/// Simple value transforms for attribute mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Transform {
    #[default]
    None,
    Trim,
    Lowercase,
    Uppercase,
    /// Keep only the date part of a date with an offset (`2025-03-17-08:00`).
    DateOnly,
}

fn default_sftp_port() -> i32 {
    22
}
fn default_daily() -> String {
    "24h".into()
}
fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

/// Observed state of a Tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// `Ready`, plus one condition per reference and connector
    /// (`PolicyResolved`, `CredentialsFound`, `FallbackOwnerValid`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Users per lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_counts: Option<UserCounts>,
    /// The mass-deprovisioning guard's last trip (written by the guard under its own
    /// field manager, `roster-guard`). It holds every new removal while the Tenant's
    /// approve and reject annotations still have the values recorded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_guard: Option<GuardTrip>,
    /// Last result of each people source's sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["source"]))]
    pub source_syncs: Vec<SourceSync>,
    /// The `.metadata.generation` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's exit, once the Tenant is being deleted: each stage's completion,
    /// recorded before the next stage starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<TenantExitStatus>,
}

/// Progress of a tenant's exit (docs/lifecycle.md, "Tenant exit").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantExitStatus {
    /// When roster first saw the deletion.
    pub start_time: DateTime<Utc>,
    /// The stages completed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["stage"]))]
    pub completed: Vec<ExitStageRecord>,
    /// Failed attempts of the current stage in a row.
    #[serde(default)]
    pub attempts: i32,
    /// The current stage's last error (status code and reason, never personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the current stage is retried after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<DateTime<Utc>>,
    /// DirectoryUsers of the tenant still in the cluster.
    #[serde(default)]
    pub users_remaining: i32,
    /// Departures of the tenant still in the cluster.
    #[serde(default)]
    pub departures_remaining: i32,
    /// DirectoryGroups of the tenant still in the cluster.
    #[serde(default)]
    pub groups_remaining: i32,
    /// How many DirectoryUsers, Departures and DirectoryGroups the exit deleted
    /// (counted when that stage began; for the exit's receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_at_start: Option<ExitObjectCounts>,
}

/// One completed stage of a tenant's exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExitStageRecord {
    /// The stage.
    pub stage: ExitStage,
    /// When it completed.
    pub completion_time: DateTime<Utc>,
    /// The idempotency key of its outbound call, when it makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The stages of a tenant's exit, in the order they run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ExitStage {
    /// The learning platform's `DELETE /tenant`: every person, event, session, rule,
    /// group, assignment and engagement record of the tenant.
    ErasePlatform,
    /// The tenant's DirectoryUsers, Departures and DirectoryGroups deleted, and gone.
    DeleteObjects,
    /// The exit's erasure receipt, which ends the tenant's chain.
    SealReceipts,
}

impl ExitStage {
    pub const ALL: [ExitStage; 3] = [Self::ErasePlatform, Self::DeleteObjects, Self::SealReceipts];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErasePlatform => "ErasePlatform",
            Self::DeleteObjects => "DeleteObjects",
            Self::SealReceipts => "SealReceipts",
        }
    }
}

/// Objects of the tenant in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExitObjectCounts {
    /// DirectoryUsers.
    pub users: i32,
    /// Departures.
    pub departures: i32,
    /// DirectoryGroups.
    pub groups: i32,
}

/// A trip of the mass-deprovisioning guard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardTrip {
    /// When the guard tripped.
    pub tripped_time: DateTime<Utc>,
    /// Why, in numbers (never a person).
    #[schemars(length(max = 1024))]
    pub message: String,
    /// `roster.dev/approve-removals` when it tripped; another value ends the trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub approve_token: Option<String>,
    /// `roster.dev/reject-removals` when it tripped; another value ends the trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reject_token: Option<String>,
}

/// Number of users in each phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCounts {
    /// Users with access (phase `Active`).
    pub active: i32,
    /// Users held by the mass-deprovisioning guard, waiting for approval.
    pub held: i32,
    /// Users whose access is revoked, in their reversible quarantine.
    pub quarantined: i32,
    /// Users whose full-deprovisioning steps are running.
    pub deprovisioning: i32,
    /// Users anonymized downstream, waiting for the purge deadline.
    pub deprovisioned: i32,
    /// Users whose personal data is gone.
    pub purged: i32,
}

/// How a people source's sync ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SyncResult {
    /// Every record applied.
    Succeeded,
    /// Some records were rejected (each reported); the others applied.
    PartiallySucceeded,
    /// Nothing applied (the source could not be read, or the guard held the sync).
    Failed,
}

/// Result of a people source's last sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceSync {
    /// The source: `SCIM`, `CSV` or `HRAPI`.
    pub source: crate::RecordSource,
    /// When the sync finished.
    pub completion_time: DateTime<Utc>,
    /// How the sync ended.
    pub result: SyncResult,
    /// Records created.
    #[serde(default)]
    pub created: i32,
    /// Records updated.
    #[serde(default)]
    pub updated: i32,
    /// Records treated as removed from the feed.
    #[serde(default)]
    pub removed: i32,
    /// Rows or records rejected (reported individually in Events).
    #[serde(default)]
    pub rejected: i32,
    /// Rows or records read from the source (CSV and HR API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_read: Option<i32>,
    /// Records that matched their DirectoryUser already (no write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<i32>,
    /// Why the sync failed or what it held back, without personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// Users the mass-deprovisioning guard kept from leaving (the sync was held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<i32>,
    /// The first rejected rows: row number, column and reason (never the value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub rejected_rows: Vec<RejectedRow>,
}

/// A row (or report entry) a people source rejected. Never carries the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRow {
    /// Row number as a spreadsheet shows it (the header is row 1), or the report
    /// entry's position (from 1).
    pub row: i64,
    /// The column header (or report field) at fault, empty for the whole row.
    #[schemars(length(max = 256))]
    pub column: String,
    /// What is wrong, e.g. "not a date in the format %Y-%m-%d".
    #[schemars(length(max = 256))]
    pub reason: String,
}
