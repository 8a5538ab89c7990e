//! `DeprovisionPolicy`: how long quarantine lasts, when PII must be gone, and
//! which full-deprovisioning actions run.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern every duration field accepts: Go-style units, each at most once and in
/// order, which the API server's CEL `duration()` understands too (`168h`, `1h30m`,
/// `45s`). Bounded digits keep `duration()` from overflowing.
pub const DURATION_PATTERN: &str =
    "^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$";

/// How and when users of a tenant leave: the quarantine before full deprovisioning,
/// the purge deadline, the actions that run, and the safety guards.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "How and when a tenant's users leave: quarantine length, purge deadline, which deprovisioning steps run, and safety guards (mass-deprovisioning guard, dry-run).",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "DeprovisionPolicy",
    namespaced,
    shortname = "dpol",
    category = "roster",
    printcolumn(
        json_path = ".spec.quarantinePeriod",
        name = "Quarantine",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".spec.purgeDeadline",
        name = "Purge-Deadline",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".spec.onObjectDeletion",
        name = "On-Delete",
        type_ = "string"
    ),
    printcolumn(json_path = ".spec.dryRun", name = "Dry-Run", type_ = "boolean"),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[x_kube(validation = Rule::new(
    "!self.quarantinePeriod.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') || !self.purgeDeadline.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') || duration(self.quarantinePeriod) <= duration(self.purgeDeadline)"
).message("quarantinePeriod must not be longer than purgeDeadline: shorten quarantinePeriod or lengthen purgeDeadline (at most 720h)").field_path(".quarantinePeriod"))]
#[serde(rename_all = "camelCase")]
pub struct DeprovisionPolicySpec {
    /// How long after the trigger full deprovisioning waits, as a Go duration
    /// (`168h` = 7 days, the default; the platform UI offers 1-7, 14, 21 or 30 days).
    /// Any value from `0s` up to `purgeDeadline` is accepted so tests and demos can use seconds.
    #[serde(default = "default_quarantine")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') || self.matches('^[0-9]{1,4}d$')").message("quarantinePeriod must be a duration such as 168h, 24h or 30s (units h, m, s, each at most once)"))]
    #[x_kube(validation = Rule::new("!self.matches('^[0-9]{1,4}d$')").message("quarantinePeriod has no day unit: write days as hours, e.g. 7d as 168h"))]
    pub quarantine_period: String,

    /// PII is fully removed no later than this after termination, as a Go duration.
    /// Default and maximum: `720h` (30 days).
    #[serde(default = "default_purge_deadline")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') || self.matches('^[0-9]{1,4}d$')").message("purgeDeadline must be a duration such as 720h or 48h (units h, m, s, each at most once)"))]
    #[x_kube(validation = Rule::new("!self.matches('^[0-9]{1,4}d$')").message("purgeDeadline has no day unit: write days as hours, e.g. 30d as 720h"))]
    #[x_kube(validation = Rule::new("!self.matches('^([0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?|[0-9]{1,6}m([0-9]{1,6}s)?|[0-9]{1,6}s)$') || duration(self) <= duration('720h')").message("purgeDeadline must be at most 720h (30 days), the legal limit for removing PII"))]
    pub purge_deadline: String,

    /// Which full-deprovisioning steps run. All are on by default.
    #[serde(default)]
    pub actions: DeprovisionActions,

    /// Who receives the automated assignment rules the leaver was the assigner of.
    #[serde(default)]
    pub rule_transfer_target: RuleTransferTarget,

    /// Order in which a new owner is chosen for calendar events the leaver owns.
    /// The first eligible person wins: an Active user with calendar access who is not leaving.
    #[serde(default = "default_calendar_owner_order")]
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, y == x))").message("calendarOwnerOrder must not list an entry twice"))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub calendar_owner_order: Vec<CalendarOwnerCandidate>,

    /// What deleting a DirectoryUser object means. `Quarantine` (default) treats it
    /// like removal from the source feed, so a GitOps prune can still be reversed;
    /// `Immediate` is the platform's manual admin deletion, which skips the quarantine.
    #[serde(default)]
    pub on_object_deletion: ObjectDeletionMode,

    /// Holds users instead of deprovisioning them when one sync or one minute of
    /// changes would take too many out of Active at once.
    #[serde(default)]
    pub mass_deprovision_guard: MassDeprovisionGuard,

    /// Compute and record the plan in status without any side effect.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_quarantine() -> String {
    "168h".into()
}
fn default_purge_deadline() -> String {
    "720h".into()
}
fn default_calendar_owner_order() -> Vec<CalendarOwnerCandidate> {
    vec![
        CalendarOwnerCandidate::Organizer,
        CalendarOwnerCandidate::CoOrganizers,
        CalendarOwnerCandidate::Presenters,
        CalendarOwnerCandidate::FallbackOwner,
    ]
}

impl Default for DeprovisionPolicySpec {
    fn default() -> Self {
        Self {
            quarantine_period: default_quarantine(),
            purge_deadline: default_purge_deadline(),
            actions: DeprovisionActions::default(),
            rule_transfer_target: RuleTransferTarget::default(),
            calendar_owner_order: default_calendar_owner_order(),
            on_object_deletion: ObjectDeletionMode::default(),
            mass_deprovision_guard: MassDeprovisionGuard::default(),
            dry_run: false,
        }
    }
}

/// Switches for the full-deprovisioning steps, in the order they run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeprovisionActions {
    /// Transfer calendar events the leaver owns to a new owner.
    #[serde(default = "yes")]
    pub transfer_calendar_events: bool,
    /// Transfer automated assignment rules where the leaver is the assigner.
    #[serde(default = "yes")]
    pub transfer_rules: bool,
    /// Remove the leaver from upcoming events and sessions in every role; free their seats.
    #[serde(default = "yes")]
    pub remove_from_events: bool,
    /// Remove the leaver from all groups.
    #[serde(default = "yes")]
    pub remove_from_groups: bool,
    /// Remove outstanding assignments.
    #[serde(default = "yes")]
    pub remove_assignments: bool,
    /// Anonymize PII at the learning platform, keeping engagement records by employee ID.
    #[serde(default = "yes")]
    pub anonymize: bool,
}

fn yes() -> bool {
    true
}

impl Default for DeprovisionActions {
    fn default() -> Self {
        Self {
            transfer_calendar_events: true,
            transfer_rules: true,
            remove_from_events: true,
            remove_from_groups: true,
            remove_assignments: true,
            anonymize: true,
        }
    }
}

/// Who receives a leaver's automated assignment rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RuleTransferTarget {
    /// The leaver's manager, if they are an Active user; otherwise the fallback owner.
    #[default]
    Manager,
    /// Always the tenant's calendar fallback owner.
    FallbackOwner,
}

/// A source of candidates for a calendar event's new owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CalendarOwnerCandidate {
    /// The event's organizer at the learning platform.
    Organizer,
    /// The event's co-organizers, in their listed order.
    CoOrganizers,
    /// The event's presenters, in their listed order.
    Presenters,
    /// The tenant's calendar fallback owner.
    FallbackOwner,
}

/// What deleting a DirectoryUser object means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ObjectDeletionMode {
    /// Like removal from the source feed: the quarantine period applies.
    #[default]
    Quarantine,
    /// Like the platform's manual admin deletion: full deprovisioning starts at once.
    Immediate,
}

/// Thresholds above which leavers are held for explicit approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MassDeprovisionGuard {
    /// Turn the guard off entirely.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hold when more than this many users would leave Active in one sync or minute.
    #[serde(default = "default_max_users")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_users: i32,
    /// Hold when more than this percentage of the tenant would leave Active at once
    /// (Okta's import safeguard uses 20).
    #[serde(default = "default_max_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub max_percent: i32,
}

fn default_max_users() -> i32 {
    50
}
fn default_max_percent() -> i32 {
    20
}

impl Default for MassDeprovisionGuard {
    fn default() -> Self {
        Self {
            enabled: true,
            max_users: default_max_users(),
            max_percent: default_max_percent(),
        }
    }
}
