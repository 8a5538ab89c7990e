//! The conditions a DirectoryUser carries, derived from its lifecycle state.
//!
//! Messages hold only phases, step names and timestamps that are persisted anyway,
//! never personal data and never "time since" figures, so recomputing them at rest
//! yields the same list and no status write.

use chrono::{DateTime, SecondsFormat, Utc};

use super::sync::Manager;
use roster_api::condition::{ConditionStatus, set_condition};
use roster_api::{Condition, DirectoryUserSpec, DirectoryUserStatus, Phase, StepState};

/// A step that failed this many times in a row makes the user `Stalled`: kstatus, Flux
/// and Argo CD then report it as failed instead of waiting on it forever. roster keeps
/// retrying with backoff; the `roster.dev/retry` annotation retries at once.
pub const STALL_AFTER_ATTEMPTS: i32 = 5;

/// What the conditions are computed from, besides the status itself.
pub struct ConditionInputs<'a> {
    pub spec: &'a DirectoryUserSpec,
    pub generation: Option<i64>,
    pub locations: &'a [String],
    pub manager: Manager<'a>,
    pub suspended: bool,
    pub dry_run: bool,
    pub pending_actions: usize,
    pub pii_reapplied: bool,
}

/// Replaces `status.conditions` with the derived set, keeping each unchanged
/// condition's `lastTransitionTime`.
pub fn update(status: &mut DirectoryUserStatus, inputs: &ConditionInputs, now: DateTime<Utc>) {
    let derived = derive(status, inputs, now);
    let mut next = status.conditions.clone();
    next.retain(|c| derived.iter().any(|d| d.r#type == c.r#type));
    for condition in derived {
        set_condition(&mut next, condition);
    }
    // Earlier versions wrote `Stalled` and `Reconciling` as False too. Dropping only
    // those would rewrite every settled user after an upgrade (100,000 writes for
    // nothing); they go with the next change of the conditions instead.
    let legacy = |c: &&Condition| {
        matches!(c.r#type.as_str(), "Stalled" | "Reconciling") && c.status == ConditionStatus::False
    };
    if !status.conditions.iter().filter(|c| !legacy(c)).eq(&next) {
        status.conditions = next;
    }
}

/// Records why the lifecycle cannot run (a missing Tenant or policy, a duplicate
/// employee ID, a Departure of the same person still under way): not `Ready` and
/// `Stalled`, so kstatus (Flux, Argo CD) reports a failure that needs a person rather
/// than waiting for progress that cannot come. `Reconciling` goes: kstatus reads it
/// before `Stalled`, and it is present only while True. The phase and everything else
/// stay. Returns whether the status changed and must be written (a reconcile that
/// finds the same block again writes nothing).
pub fn blocked(
    status: &mut DirectoryUserStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> bool {
    let condition = |r#type: &str, on: bool| Condition {
        r#type: r#type.into(),
        status: ConditionStatus::from(on),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now,
        observed_generation: generation,
    };
    let mut changed = false;
    for c in [condition("Ready", false), condition("Stalled", true)] {
        changed |= set_condition(&mut status.conditions, c);
    }
    let before = status.conditions.len();
    status.conditions.retain(|c| c.r#type != "Reconciling");
    changed |= status.conditions.len() != before;
    changed |= status.observed_generation != generation;
    status.observed_generation = generation;
    changed
}

fn derive(
    status: &DirectoryUserStatus,
    inputs: &ConditionInputs,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let make = |r#type: &str, on: bool, reason: &str, message: String| Condition {
        r#type: r#type.into(),
        status: ConditionStatus::from(on),
        reason: reason.into(),
        message,
        last_transition_time: now,
        observed_generation: inputs.generation,
    };
    let phase = status.phase;
    let failed = status
        .steps
        .iter()
        .filter(|s| s.state == StepState::Failed)
        .count();
    let account = &status.account;
    let sync_failing = phase == Phase::Active && account.failures > 0;
    let (ready, reason, message) = if inputs.dry_run {
        (
            true,
            "DryRun",
            "dry-run policy: status.plan lists the steps that would run; nothing runs".to_string(),
        )
    } else if inputs.pending_actions > 0 && inputs.suspended {
        (
            false,
            "TenantSuspended",
            format!(
                "{} step(s) wait until the tenant is resumed",
                inputs.pending_actions
            ),
        )
    } else if failed > 0 {
        (
            false,
            "StepFailed",
            format!("{failed} step(s) failed and will be retried; see status.steps"),
        )
    } else if sync_failing {
        (
            false,
            "SyncFailed",
            format!(
                "the learning-platform sync failed {} time(s) and will be retried; see status.account",
                account.failures
            ),
        )
    } else if inputs.pending_actions > 0 {
        (
            false,
            "Progressing",
            format!("{} step(s) running", inputs.pending_actions),
        )
    } else {
        match phase {
            Phase::Active => (
                true,
                "Active",
                match status.next_deadline {
                    Some(at) => {
                        format!("termination scheduled; quarantine starts at {}", stamp(at))
                    }
                    None => "active".to_string(),
                },
            ),
            Phase::Held => (
                true,
                "Held",
                format!(
                    "the record says the person left, but the mass-deprovisioning guard holds the removal (since {}); access is kept until the Tenant's removals are approved (roster approve --tenant NAMESPACE) or rejected (roster approve --reject --tenant NAMESPACE)",
                    status
                        .removal_guard
                        .held_time
                        .map(stamp)
                        .unwrap_or_default()
                ),
            ),
            Phase::Quarantined => (
                true,
                "Quarantined",
                format!(
                    "access revoked; reversible until {}",
                    status.deprovision_due_time.map(stamp).unwrap_or_default()
                ),
            ),
            Phase::Deprovisioning => (
                false,
                "Progressing",
                "full deprovisioning in progress".to_string(),
            ),
            Phase::Deprovisioned => (
                true,
                "Deprovisioned",
                format!(
                    "deprovisioned; PII purge due at {}",
                    status.purge_due_time.map(stamp).unwrap_or_default()
                ),
            ),
            Phase::Purged => (true, "Purged", "personal data purged".to_string()),
        }
    };
    let trigger = status
        .trigger
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "None".into());
    let stalled = status
        .steps
        .iter()
        .find(|s| s.state == StepState::Failed && s.attempts >= STALL_AFTER_ATTEMPTS);
    let sync_stalled = sync_failing && account.failures >= STALL_AFTER_ATTEMPTS;
    let reconciling = !inputs.dry_run
        && stalled.is_none()
        && !sync_stalled
        && ((inputs.pending_actions > 0 && !inputs.suspended)
            || failed > 0
            || sync_failing
            || phase == Phase::Deprovisioning);
    // kstatus's `Stalled` and `Reconciling` are "abnormal-true": present only while
    // True, as Flux writes them (their absence means normal). Two fewer conditions on
    // every settled user: a smaller object for the API server to write, watch and keep.
    let mut conditions = vec![make("Ready", ready, reason, message)];
    let stalled = match stalled {
        Some(step) => Some(make(
            "Stalled",
            true,
            "StepFailing",
            format!(
                "{} failed {} times (last error: {}); roster retries with backoff, or at once when annotated roster.dev/retry=<new value>",
                step.name,
                step.attempts,
                step.last_error.as_deref().unwrap_or("unknown")
            ),
        )),
        None if sync_stalled => Some(make(
            "Stalled",
            true,
            "SyncFailing",
            format!(
                "the learning-platform sync failed {} times (last error: {}); roster retries with backoff, or at once when annotated roster.dev/retry=<new value>",
                account.failures,
                account.last_error.as_deref().unwrap_or("unknown")
            ),
        )),
        None => None,
    };
    conditions.extend(stalled);
    if reconciling {
        conditions.push(make(
            "Reconciling",
            true,
            "Progressing",
            "lifecycle steps are running or waiting to be retried".into(),
        ));
    }
    conditions.extend([
        make(
            "Quarantined",
            phase == Phase::Quarantined,
            if phase == Phase::Quarantined {
                &trigger
            } else {
                "NotQuarantined"
            },
            String::new(),
        ),
        make(
            "Deprovisioned",
            matches!(phase, Phase::Deprovisioned | Phase::Purged),
            if matches!(phase, Phase::Deprovisioned | Phase::Purged) {
                "StepsCompleted"
            } else {
                "NotDeprovisioned"
            },
            String::new(),
        ),
        make(
            "Purged",
            phase == Phase::Purged,
            if phase == Phase::Purged {
                "PIIPurged"
            } else {
                "NotPurged"
            },
            String::new(),
        ),
    ]);
    if let Some(at) = status.removal_guard.rejected_time {
        conditions.push(make(
            "RemovalRejected",
            true,
            "RemovalRejected",
            format!(
                "the record says the person left, but the mass-deprovisioning guard's held removals were rejected at {}; access is kept until the record changes again",
                stamp(at)
            ),
        ));
    }
    if let Some(location) = inputs.spec.location.as_deref() {
        let known = inputs
            .locations
            .iter()
            .any(|l| l.trim().eq_ignore_ascii_case(location.trim()));
        conditions.push(if known {
            make("LocationMatched", true, "ConfiguredLocation", String::new())
        } else {
            make(
                "LocationMatched",
                false,
                "UnknownLocation",
                "spec.location is not one of the Tenant's locations, so it is left blank at the learning platform; add it to Tenant spec.locations or correct the record".into(),
            )
        });
    }
    if let Some(condition) = manager_condition(inputs.manager, &make) {
        conditions.push(condition);
    }
    if inputs.suspended {
        conditions.push(make(
            "Suspended",
            true,
            "TenantSuspended",
            "the tenant is suspended: no side effects run; deadlines keep counting".into(),
        ));
    }
    if inputs.dry_run {
        conditions.push(make(
            "DryRun",
            true,
            "PolicyDryRun",
            "the policy is in dry-run: phases do not change and nothing runs".into(),
        ));
    }
    // Sticky: once a source re-applied PII to a purged user, the record stays.
    let reapplied_before = status.conditions.iter().any(|c| c.r#type == "PIIReapplied");
    if phase == Phase::Purged && (inputs.pii_reapplied || reapplied_before) {
        conditions.push(make(
            "PIIReapplied",
            true,
            "SourceReappliedPII",
            "a source wrote personal data to a purged user; roster removed it again".into(),
        ));
    }
    conditions
}

/// `ManagerResolved`, when the record names a manager.
fn manager_condition(
    manager: Manager,
    make: &impl Fn(&str, bool, &str, String) -> Condition,
) -> Option<Condition> {
    let unresolved = |reason: &str, why: &str| {
        make(
            "ManagerResolved",
            false,
            reason,
            format!(
                "spec.managerEmail {why}, so the manager at the learning platform is left as it is; roster sends it as soon as it resolves"
            ),
        )
    };
    Some(match manager {
        Manager::NotSet => return None,
        Manager::Resolved(_) => make("ManagerResolved", true, "ManagerFound", String::new()),
        Manager::NotFound => unresolved(
            "ManagerNotFound",
            "matches no DirectoryUser of this tenant (yet)",
        ),
        Manager::Ambiguous => unresolved(
            "ManagerAmbiguous",
            "matches more than one DirectoryUser of this tenant",
        ),
        Manager::NotProvisioned => unresolved(
            "ManagerNotProvisioned",
            "matches a DirectoryUser that has no learning-platform account yet",
        ),
    })
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
