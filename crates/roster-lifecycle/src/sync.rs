//! Joiners and movers: what roster sends to the learning platform for an Active
//! person, and how each sync call's result is folded into status.
//!
//! The platform's copy is described in status by salted digests of the fields last
//! sent (`status.account.profile`), never by the values, so "what changed" is decided
//! here from the record alone: a settled person makes no call, a mover's call carries
//! exactly the fields that changed, and a restart re-sends nobody.
//!
//! Every call's idempotency key is `<uid>/sync/<n>/<what>-<digest>`, where `n` counts
//! the sync calls completed (persisted after each) and the digest covers the call's
//! content: a call retried after a crash repeats its key and is applied once, while a
//! different change, or the same change made again later, gets a new key.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::machine::failure_backoff;
use roster_api::{DirectoryUserSpec, DirectoryUserStatus, Provisioning, SmolStr, SyncedProfile};

/// A profile field roster keeps in step at the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncedField {
    FullName,
    Email,
    PictureUrl,
    HireDate,
    Department,
    Title,
    Location,
    /// The manager, sent as their employee ID (the platform never keys on email).
    Manager,
}

impl SyncedField {
    pub const ALL: [SyncedField; 8] = [
        Self::FullName,
        Self::Email,
        Self::PictureUrl,
        Self::HireDate,
        Self::Department,
        Self::Title,
        Self::Location,
        Self::Manager,
    ];

    /// The field's name in the DirectoryUser spec (for conditions and docs).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FullName => "fullName",
            Self::Email => "email",
            Self::PictureUrl => "pictureURL",
            Self::HireDate => "hireDate",
            Self::Department => "department",
            Self::Title => "title",
            Self::Location => "location",
            Self::Manager => "managerEmail",
        }
    }

    fn digest_in(self, profile: &SyncedProfile) -> Option<&SmolStr> {
        match self {
            Self::FullName => profile.full_name.as_ref(),
            Self::Email => profile.email.as_ref(),
            Self::PictureUrl => profile.picture_url.as_ref(),
            Self::HireDate => profile.hire_date.as_ref(),
            Self::Department => profile.department.as_ref(),
            Self::Title => profile.title.as_ref(),
            Self::Location => profile.location.as_ref(),
            Self::Manager => profile.manager.as_ref(),
        }
    }

    fn digest_slot(self, profile: &mut SyncedProfile) -> &mut Option<SmolStr> {
        match self {
            Self::FullName => &mut profile.full_name,
            Self::Email => &mut profile.email,
            Self::PictureUrl => &mut profile.picture_url,
            Self::HireDate => &mut profile.hire_date,
            Self::Department => &mut profile.department,
            Self::Title => &mut profile.title,
            Self::Location => &mut profile.location,
            Self::Manager => &mut profile.manager,
        }
    }
}

/// A value that is personal data. Its `Debug` output never shows it, so a decision
/// can be logged or asserted on without leaking what it carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Personal(String);

impl Personal {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the request body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The profile as the platform should hold it: blank fields are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile(BTreeMap<SyncedField, Personal>);

impl Profile {
    pub fn get(&self, field: SyncedField) -> Option<&str> {
        self.0.get(&field).map(Personal::expose)
    }

    /// Sets `field`, or clears it when `value` is blank.
    pub fn set(&mut self, field: SyncedField, value: Option<&str>) {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => {
                self.0.insert(field, Personal::new(v));
            }
            None => {
                self.0.remove(&field);
            }
        }
    }

    /// The digests status keeps of this profile.
    pub fn digests(&self, uid: &str) -> SyncedProfile {
        let mut digests = SyncedProfile::default();
        for (field, value) in &self.0 {
            *field.digest_slot(&mut digests) = Some(digest(uid, *field, value.expose()));
        }
        digests
    }
}

/// The record's manager as found among the tenant's DirectoryUsers (see
/// [`crate::directory::resolve_manager`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Manager<'a> {
    /// The record names no manager.
    #[default]
    NotSet,
    /// The manager's employee ID; they hold an account at the platform.
    Resolved(&'a str),
    /// No DirectoryUser of the tenant has that email (yet: feeds send managers late).
    NotFound,
    /// More than one DirectoryUser of the tenant has that email.
    Ambiguous,
    /// The manager is known but has no account at the platform yet.
    NotProvisioned,
}

impl Manager<'_> {
    /// Named but not resolvable yet: the platform's manager field is left as it is
    /// (neither cleared nor set) until it resolves, so a manager who arrives or gets
    /// an account after their reports causes no churn.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Manager::NotFound | Manager::Ambiguous | Manager::NotProvisioned
        )
    }
}

/// The location as the platform should hold it: the Tenant's configured spelling of
/// a matching name, or nothing (the platform leaves unknown locations blank).
pub fn matched_location<'a>(spec: &DirectoryUserSpec, locations: &'a [String]) -> Option<&'a str> {
    let wanted = spec.location.as_deref()?.trim();
    locations
        .iter()
        .find(|l| l.trim().eq_ignore_ascii_case(wanted))
        .map(|l| l.trim())
}

/// What the platform's copy of this person should be.
pub fn profile(spec: &DirectoryUserSpec, manager: Manager, locations: &[String]) -> Profile {
    let mut profile = Profile::default();
    let hire_date = spec.hire_date.map(|d| d.to_string());
    profile.set(SyncedField::FullName, Some(&spec.full_name));
    profile.set(SyncedField::Email, Some(&spec.email));
    profile.set(SyncedField::PictureUrl, spec.picture_url.as_deref());
    profile.set(SyncedField::HireDate, hire_date.as_deref());
    profile.set(SyncedField::Department, spec.department.as_deref());
    profile.set(SyncedField::Title, spec.title.as_deref());
    profile.set(SyncedField::Location, matched_location(spec, locations));
    if let Manager::Resolved(employee_id) = manager {
        profile.set(SyncedField::Manager, Some(employee_id));
    }
    profile
}

/// 16 hex digits of SHA-256 over the object's UID, the field and the value: equal
/// values give equal digests for one person, and nothing readable is kept.
pub fn digest(uid: &str, field: SyncedField, value: &str) -> SmolStr {
    let mut hasher = Sha256::new();
    for part in [uid, field.as_str(), value] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex16(&hasher.finalize()).into()
}

fn hex16(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A short digest of a call's content, for its idempotency key.
fn content_digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex16(&hasher.finalize())
}

/// One sync call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOp {
    /// Create the account with the whole profile; if one with this employee ID exists,
    /// adopt it instead (see [`SyncOutcome::Adopted`]).
    Provision(Profile),
    /// Send exactly these fields; `None` clears one.
    Update(Vec<(SyncedField, Option<Personal>)>),
    AddToGroup(String),
    RemoveFromGroup(String),
}

impl SyncOp {
    /// The call's kind, for Events, metrics and keys.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Provision(_) => "provision",
            Self::Update(_) => "update",
            Self::AddToGroup(_) => "add-to-group",
            Self::RemoveFromGroup(_) => "remove-from-group",
        }
    }
}

/// A sync call to make, with the key it must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAction {
    pub op: SyncOp,
    pub idempotency_key: String,
}

/// A sync call's result as the effect runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The call took effect (or had already).
    Done,
    /// Provisioning found an account with this employee ID: roster adopts it, as the
    /// platform holds it (these digests), and sends what differs next.
    Adopted(SyncedProfile),
    /// Not done; tried again after backoff (or the service's `Retry-After`).
    /// `unreachable`: the service did not answer (see [`crate::Outcome::Failed`]).
    Failed {
        error: String,
        retry_after: Option<Duration>,
        unreachable: bool,
    },
}

/// The sync calls due now for an Active person, in order: provisioning, then the
/// profile fields that differ from what was last sent, then group additions and
/// removals (the groups in `status.groups` are the ones the rules want).
pub fn plan(
    uid: &str,
    spec: &DirectoryUserSpec,
    status: &DirectoryUserStatus,
    manager: Manager,
    locations: &[String],
    now: DateTime<Utc>,
) -> Vec<SyncAction> {
    let account = &status.account;
    if account.next_retry_time.is_some_and(|at| at > now) {
        return Vec::new();
    }
    let desired = profile(spec, manager, locations);
    let mut ops = Vec::new();
    if account.provisioned.is_none() {
        ops.push(SyncOp::Provision(desired));
    } else {
        let changes: Vec<_> = changed_fields(uid, &desired, &account.profile)
            .into_iter()
            .filter(|(field, _)| *field != SyncedField::Manager || !manager.is_pending())
            .collect();
        if !changes.is_empty() {
            ops.push(SyncOp::Update(changes));
        }
    }
    for group in &status.groups {
        if !account.groups.contains(group) {
            ops.push(SyncOp::AddToGroup(group.clone()));
        }
    }
    for group in &account.groups {
        if !status.groups.contains(group) {
            ops.push(SyncOp::RemoveFromGroup(group.clone()));
        }
    }
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            let n = account.sync_calls + i as i64;
            SyncAction {
                idempotency_key: key(uid, n, &op),
                op,
            }
        })
        .collect()
}

/// The fields of `desired` whose digest differs from the one last sent.
fn changed_fields(
    uid: &str,
    desired: &Profile,
    sent: &SyncedProfile,
) -> Vec<(SyncedField, Option<Personal>)> {
    SyncedField::ALL
        .into_iter()
        .filter_map(|field| {
            let value = desired.get(field);
            let now = value.map(|v| digest(uid, field, v));
            (now.as_ref() != field.digest_in(sent)).then(|| (field, value.map(Personal::new)))
        })
        .collect()
}

fn key(uid: &str, n: i64, op: &SyncOp) -> String {
    let content = match op {
        SyncOp::Provision(profile) => {
            let digests = profile.digests(uid);
            let parts: Vec<&str> = SyncedField::ALL
                .iter()
                .map(|f| f.digest_in(&digests).map_or("", SmolStr::as_str))
                .collect();
            content_digest(&parts)
        }
        SyncOp::Update(changes) => {
            let parts: Vec<String> = changes
                .iter()
                .map(|(field, value)| {
                    let value = value.as_ref().map(|v| digest(uid, *field, v.expose()));
                    format!("{}={}", field.as_str(), value.unwrap_or_default())
                })
                .collect();
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            content_digest(&parts)
        }
        SyncOp::AddToGroup(group) | SyncOp::RemoveFromGroup(group) => content_digest(&[group]),
    };
    format!("{uid}/sync/{n}/{}-{content}", op.kind())
}

/// Folds a sync call's result into status. Returns whether the rest of the planned
/// calls still hold (false after a failure, or when adoption changed the picture).
pub fn record_sync_outcome(
    status: &mut DirectoryUserStatus,
    uid: &str,
    action: &SyncAction,
    outcome: SyncOutcome,
    now: DateTime<Utc>,
) -> bool {
    let account = &mut status.account;
    match outcome {
        SyncOutcome::Failed {
            error,
            retry_after,
            unreachable,
        } => {
            account.failures += 1;
            account.last_error = Some(error);
            let wait = failure_backoff(account.failures, unreachable)
                .max(retry_after.unwrap_or_else(Duration::zero));
            account.next_retry_time = Some(now + wait);
            false
        }
        SyncOutcome::Adopted(platform) => {
            succeeded(account, now);
            account.provisioned = Some(Provisioning::Adopted);
            account.provisioned_time = Some(now);
            account.profile = platform;
            false
        }
        SyncOutcome::Done => {
            succeeded(account, now);
            match &action.op {
                SyncOp::Provision(profile) => {
                    account.provisioned = Some(Provisioning::Created);
                    account.provisioned_time = Some(now);
                    account.profile = profile.digests(uid);
                }
                SyncOp::Update(changes) => {
                    for (field, value) in changes {
                        *field.digest_slot(&mut account.profile) =
                            value.as_ref().map(|v| digest(uid, *field, v.expose()));
                    }
                }
                SyncOp::AddToGroup(group) => {
                    if !account.groups.contains(group) {
                        account.groups.push(group.clone());
                        account.groups.sort();
                    }
                }
                SyncOp::RemoveFromGroup(group) => account.groups.retain(|g| g != group),
            }
            true
        }
    }
}

fn succeeded(account: &mut roster_api::AccountStatus, now: DateTime<Utc>) {
    account.sync_calls += 1;
    account.last_sync_time = Some(now);
    account.failures = 0;
    account.last_error = None;
    account.next_retry_time = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_api::AccountStatus;

    const UID: &str = "7f0c5a2e-0000-4000-8000-000000000001";

    fn now() -> DateTime<Utc> {
        "2026-12-01T09:00:00Z".parse().unwrap()
    }

    fn person() -> DirectoryUserSpec {
        DirectoryUserSpec {
            employee_id: "E1".into(),
            full_name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            title: Some("Engineer".into()),
            department: Some("R&D".into()),
            location: Some("london".into()),
            manager_email: Some("boss@example.com".into()),
            ..Default::default()
        }
    }

    fn locations() -> Vec<String> {
        vec!["London".into(), "Paris".into()]
    }

    /// The status after a successful provisioning of `spec`.
    fn provisioned(spec: &DirectoryUserSpec, manager: Manager) -> DirectoryUserStatus {
        let mut status = DirectoryUserStatus::default();
        let actions = plan(UID, spec, &status, manager, &locations(), now());
        for action in &actions {
            record_sync_outcome(&mut status, UID, action, SyncOutcome::Done, now());
        }
        status
    }

    fn fields(actions: &[SyncAction]) -> Vec<Vec<&'static str>> {
        actions
            .iter()
            .filter_map(|a| match &a.op {
                SyncOp::Update(changes) => Some(changes.iter().map(|(f, _)| f.as_str()).collect()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_joiner_is_provisioned_with_the_whole_profile() {
        let actions = plan(
            UID,
            &person(),
            &DirectoryUserStatus::default(),
            Manager::Resolved("M1"),
            &locations(),
            now(),
        );
        assert_eq!(actions.len(), 1);
        let SyncOp::Provision(profile) = &actions[0].op else {
            panic!("not a provisioning: {actions:?}");
        };
        assert_eq!(
            profile.get(SyncedField::Location),
            Some("London"),
            "configured spelling"
        );
        assert_eq!(profile.get(SyncedField::Manager), Some("M1"));
        assert_eq!(profile.get(SyncedField::PictureUrl), None);
        assert!(
            actions[0]
                .idempotency_key
                .starts_with(&format!("{UID}/sync/0/provision-"))
        );
    }

    #[test]
    fn a_settled_person_makes_no_call() {
        let status = provisioned(&person(), Manager::Resolved("M1"));
        assert_eq!(status.account.provisioned, Some(Provisioning::Created));
        assert_eq!(status.account.sync_calls, 1);
        let again = plan(
            UID,
            &person(),
            &status,
            Manager::Resolved("M1"),
            &locations(),
            now(),
        );
        assert!(again.is_empty(), "{again:?}");
    }

    /// What a change of the record sends (a table: the edit, the fields sent).
    #[test]
    fn a_mover_sends_exactly_the_changed_fields() {
        type Edit = fn(&mut DirectoryUserSpec);
        let table: [(&str, Edit, Manager, Vec<&str>); 8] = [
            (
                "title",
                |s| s.title = Some("Lead".into()),
                Manager::Resolved("M1"),
                vec!["title"],
            ),
            (
                "title and department",
                |s| {
                    s.title = Some("Lead".into());
                    s.department = Some("Sales".into());
                },
                Manager::Resolved("M1"),
                vec!["department", "title"],
            ),
            (
                "email",
                |s| s.email = "ada@new.example".into(),
                Manager::Resolved("M1"),
                vec!["email"],
            ),
            (
                "title cleared",
                |s| s.title = None,
                Manager::Resolved("M1"),
                vec!["title"],
            ),
            (
                "blank is cleared",
                |s| s.title = Some("  ".into()),
                Manager::Resolved("M1"),
                vec!["title"],
            ),
            (
                "case of a location",
                |s| s.location = Some("LONDON".into()),
                Manager::Resolved("M1"),
                vec![],
            ),
            (
                "the manager is unresolved for now",
                |_| {},
                Manager::NotFound,
                vec![],
            ),
            (
                "the record drops its manager",
                |s| s.manager_email = None,
                Manager::NotSet,
                vec!["managerEmail"],
            ),
        ];
        let status = provisioned(&person(), Manager::Resolved("M1"));
        for (what, edit, manager, expected) in table {
            let mut spec = person();
            edit(&mut spec);
            let actions = plan(UID, &spec, &status, manager, &locations(), now());
            let sent = fields(&actions);
            if expected.is_empty() {
                assert!(actions.is_empty(), "{what}: {actions:?}");
            } else {
                assert_eq!(sent, vec![expected], "{what}");
            }
        }
    }

    #[test]
    fn an_unknown_location_is_sent_blank() {
        let mut spec = person();
        spec.location = Some("Atlantis".into());
        let status = provisioned(&person(), Manager::NotSet);
        let actions = plan(UID, &spec, &status, Manager::NotSet, &locations(), now());
        assert_eq!(
            actions[0].op,
            SyncOp::Update(vec![(SyncedField::Location, None)])
        );
    }

    #[test]
    fn a_late_manager_is_sent_when_resolved() {
        let status = provisioned(&person(), Manager::NotFound);
        assert_eq!(status.account.profile.manager, None);
        let actions = plan(
            UID,
            &person(),
            &status,
            Manager::Resolved("M9"),
            &locations(),
            now(),
        );
        assert_eq!(
            actions[0].op,
            SyncOp::Update(vec![(SyncedField::Manager, Some(Personal::new("M9")))])
        );
    }

    #[test]
    fn adoption_sends_what_differs_from_the_platform() {
        let mut status = DirectoryUserStatus::default();
        let actions = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            now(),
        );
        // The platform already holds the person, with an old title and no department.
        let mut platform = person();
        platform.title = Some("Intern".into());
        platform.department = None;
        let held = profile(&platform, Manager::NotSet, &locations()).digests(UID);
        let more = record_sync_outcome(
            &mut status,
            UID,
            &actions[0],
            SyncOutcome::Adopted(held),
            now(),
        );
        assert!(!more, "adoption re-plans");
        assert_eq!(status.account.provisioned, Some(Provisioning::Adopted));
        let next = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            now(),
        );
        assert_eq!(fields(&next), vec![vec!["department", "title"]]);
        assert!(next[0].idempotency_key.contains("/sync/1/update-"));
    }

    #[test]
    fn groups_are_added_and_removed_as_status_groups_say() {
        let mut status = provisioned(&person(), Manager::NotSet);
        status.groups = vec!["Engineers".into(), "London".into()];
        let actions = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            now(),
        );
        let ops: Vec<&SyncOp> = actions.iter().map(|a| &a.op).collect();
        assert_eq!(
            ops,
            [
                &SyncOp::AddToGroup("Engineers".into()),
                &SyncOp::AddToGroup("London".into())
            ]
        );
        for action in &actions {
            assert!(record_sync_outcome(
                &mut status,
                UID,
                action,
                SyncOutcome::Done,
                now()
            ));
        }
        assert_eq!(status.account.groups, ["Engineers", "London"]);
        status.groups = vec!["London".into()];
        let actions = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            now(),
        );
        assert_eq!(actions[0].op, SyncOp::RemoveFromGroup("Engineers".into()));
    }

    #[test]
    fn keys_are_stable_for_a_retry_and_new_for_a_new_change() {
        let status = provisioned(&person(), Manager::NotSet);
        let mut spec = person();
        spec.title = Some("Lead".into());
        let first = plan(UID, &spec, &status, Manager::NotSet, &locations(), now());
        let retry = plan(UID, &spec, &status, Manager::NotSet, &locations(), now());
        assert_eq!(first, retry, "a retry carries the same key");
        spec.title = Some("Director".into());
        let other = plan(UID, &spec, &status, Manager::NotSet, &locations(), now());
        assert_ne!(first[0].idempotency_key, other[0].idempotency_key);

        // The same change made again later (A → B → A) is a new call with a new key.
        let mut later = status.clone();
        for action in &first {
            record_sync_outcome(&mut later, UID, action, SyncOutcome::Done, now());
        }
        let back = plan(UID, &person(), &later, Manager::NotSet, &locations(), now());
        let mut again = later.clone();
        record_sync_outcome(&mut again, UID, &back[0], SyncOutcome::Done, now());
        let forth = plan(
            UID,
            &spec_with_title("Lead"),
            &again,
            Manager::NotSet,
            &locations(),
            now(),
        );
        assert_ne!(forth[0].idempotency_key, first[0].idempotency_key);
    }

    fn spec_with_title(title: &str) -> DirectoryUserSpec {
        DirectoryUserSpec {
            title: Some(title.into()),
            ..person()
        }
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let mut status = DirectoryUserStatus::default();
        let actions = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            now(),
        );
        let failed = SyncOutcome::Failed {
            error: "learning platform: 503".into(),
            retry_after: Some(Duration::seconds(30)),
            unreachable: false,
        };
        assert!(!record_sync_outcome(
            &mut status,
            UID,
            &actions[0],
            failed,
            now()
        ));
        assert_eq!(status.account.failures, 1);
        assert_eq!(
            status.account.next_retry_time,
            Some(now() + Duration::seconds(30))
        );
        assert!(
            plan(
                UID,
                &person(),
                &status,
                Manager::NotSet,
                &locations(),
                now()
            )
            .is_empty()
        );
        let later = now() + Duration::seconds(30);
        let retry = plan(
            UID,
            &person(),
            &status,
            Manager::NotSet,
            &locations(),
            later,
        );
        assert_eq!(retry, actions, "same call, same key");
        record_sync_outcome(&mut status, UID, &retry[0], SyncOutcome::Done, later);
        assert_eq!(
            status.account,
            AccountStatus {
                provisioned: Some(Provisioning::Created),
                provisioned_time: Some(later),
                sync_calls: 1,
                last_sync_time: Some(later),
                profile: profile(&person(), Manager::NotSet, &locations()).digests(UID),
                ..Default::default()
            }
        );
    }

    #[test]
    fn status_keeps_no_personal_value_and_debug_output_hides_them() {
        let status = provisioned(&person(), Manager::Resolved("M1"));
        let json = serde_json::to_string(&status).unwrap();
        for value in ["Ada", "ada@example.com", "Engineer", "R&D", "London", "M1"] {
            assert!(!json.contains(value), "{value} in {json}");
        }
        let mut spec = person();
        spec.full_name = "Grace Hopper".into();
        let actions = plan(
            UID,
            &spec,
            &status,
            Manager::Resolved("M1"),
            &locations(),
            now(),
        );
        let debug = format!("{actions:?}");
        assert!(!debug.contains("Grace"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }
}
