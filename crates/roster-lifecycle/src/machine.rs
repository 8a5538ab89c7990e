//! The leaver state machine: `step` turns what roster observes into what it should
//! do, and `record_outcome` folds a side effect's result back into status.
//!
//! ```text
//! Active ──trigger──▶ Quarantined ──deadline──▶ Deprovisioning ──steps done──▶ Deprovisioned ──purge due──▶ Purged
//!    ▲                    │                                                        │
//!    └──trigger cleared───┘ (reversal)                  (rehire / reactivation) ◀──┘
//! ```
//!
//! Invariant: no clock, no I/O, no async. Every deadline is derived from timestamps
//! persisted in status, so calling `step` again (after a restart, on another replica)
//! yields the same deadlines.

use chrono::{DateTime, Duration, Utc};

use super::conditions::{self, ConditionInputs};
use super::guard::{self, Decisions, Verdict};
use super::settings::{Policy, TenantSettings};
use super::sync::{self, Manager, SyncAction};
use super::{groups, pii, trigger};
use roster_api::{
    DirectoryUserSpec, DirectoryUserStatus, Phase, StepName, StepState, StepStatus, Trigger,
};

/// What roster observes about one DirectoryUser.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The object's UID: the stem of every idempotency key.
    pub uid: &'a str,
    pub generation: Option<i64>,
    /// `.metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub spec: &'a DirectoryUserSpec,
    pub status: &'a DirectoryUserStatus,
    /// The one-off requests on the object (its request annotations' values).
    pub requests: Requests<'a>,
    /// The record's manager as found among the tenant's users.
    pub manager: Manager<'a>,
    /// The mass-deprovisioning guard's say on this user.
    pub guard: Gate<'a>,
}

/// What the mass-deprovisioning guard tells `step` (see [`crate::guard`]). The default
/// admits every removal and carries no decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate<'a> {
    /// A new guarded removal would be held (the shell's [`guard::admit`] said so).
    pub hold: bool,
    /// The Tenant's approve and reject annotation values.
    pub decisions: Decisions<'a>,
}

/// The values of the request annotations (`roster.dev/deprovision-now`,
/// `roster.dev/retry`, `roster.dev/approve`). A value that differs from the one in
/// `status.handledRequests` is a new request; acting on it records the value there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests<'a> {
    pub deprovision_now: Option<&'a str>,
    pub retry: Option<&'a str>,
    pub approve: Option<&'a str>,
}

/// Which requests are new in this step.
#[derive(Clone, Copy, Debug, Default)]
struct NewRequests {
    deprovision_now: bool,
    retry: bool,
    approve: bool,
}

/// What `advance` needs to know besides the triggers.
#[derive(Clone, Copy, Debug)]
struct Context {
    approved: bool,
    rehired: bool,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The status to persist (unchanged when nothing happened).
    pub status: DirectoryUserStatus,
    /// Joiner and mover calls to the learning platform, run before `actions` (a rehire's
    /// profile must be back before its access is restored). Record each result with
    /// [`sync::record_sync_outcome`] and persist it before the next; stop when it says so.
    pub sync: Vec<SyncAction>,
    /// Side effects to run now, in order. Run them one by one, record each result with
    /// [`record_outcome`] and persist it before the next; stop at the first failure.
    pub actions: Vec<Action>,
    /// The next moment something falls due without any change being observed. Always
    /// after `now`; `None` when nothing is scheduled.
    pub wake_at: Option<DateTime<Utc>>,
    /// Phase changes made by this step, for Kubernetes Events.
    pub transitions: Vec<Transition>,
    /// The record carries personal data that must be removed from the object.
    pub scrub_pii: bool,
    /// Everything is done and the object is being deleted: drop the finalizer.
    pub release: bool,
    /// This step took the person out of Active (or held them) through a trigger the
    /// mass-deprovisioning guard watches, so the guard's gate decided it: the shell
    /// must have asked the guard before carrying it out.
    pub guarded_removal: bool,
}

/// One side effect to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub step: StepName,
    /// Sent with every call of the step; identical across retries, restarts and replicas.
    pub idempotency_key: String,
}

/// A phase change and why it happened. `reason` is CamelCase and PII-free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
    pub reason: &'static str,
}

/// A step's result as the effect runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; `summary` says what happened without personal data. `warning`, if any,
    /// is something an administrator should act on (e.g. events nobody could take over).
    Succeeded {
        summary: String,
        warning: Option<String>,
    },
    /// Not done; retried after backoff, or after `retry_after` if the service asked for longer.
    Failed {
        error: String,
        retry_after: Option<Duration>,
        /// The service did not answer at all (no connection, a timeout, a 5xx): an
        /// outage of the service, not a problem of this person, so the backoff stays
        /// within [`OUTAGE_MAX_BACKOFF`] and the step resumes soon after it ends.
        unreachable: bool,
    },
}

/// Stage-2 steps in the order the platform documents them.
pub const STAGE_TWO: [StepName; 6] = [
    StepName::TransferCalendarEvents,
    StepName::TransferRules,
    StepName::RemoveFromEvents,
    StepName::RemoveFromGroups,
    StepName::RemoveAssignments,
    StepName::Anonymize,
];

/// Longest wait between retries of a failed step.
pub const MAX_BACKOFF: Duration = Duration::minutes(5);

/// Longest wait between retries of a step whose service did not answer (see
/// [`Outcome::Failed`]): after an outage of any length, the steps resume within this
/// much of its end, instead of up to [`MAX_BACKOFF`] later. While the service is down
/// the effects send only one try per attempt, so this costs one call per waiting step
/// and 30 s, and one status write.
pub const OUTAGE_MAX_BACKOFF: Duration = Duration::seconds(30);

/// Decides the next status, actions and wake-up for one user.
pub fn step(
    observed: &Observed,
    policy: &Policy,
    tenant: &TenantSettings,
    now: DateTime<Utc>,
) -> Decision {
    if policy.dry_run {
        return dry_run(observed, policy, tenant, now);
    }
    let mut status = observed.status.clone();
    let requests = new_requests(&status, &observed.requests);
    record_handled(&mut status, &observed.requests, requests);
    let rehired = trigger::rehired(
        observed.spec,
        status.trigger,
        status.trigger_time,
        tenant.time_zone,
    );
    let record = trigger::evaluate(
        observed.spec,
        observed.deleting,
        policy.on_object_deletion,
        tenant.time_zone,
        now,
    );
    let mut triggers =
        record.with_deprovision_now(requests.deprovision_now || deprovision_now_holds(&status));
    // A rejected removal: the record's trigger is not acted on until the record changes.
    let rejection = &mut status.removal_guard;
    if rejection.rejected_generation.is_some()
        && (rejection.rejected_generation != observed.generation || observed.deleting)
    {
        rejection.rejected_time = None;
        rejection.rejected_generation = None;
    }
    if status.removal_guard.rejected_generation.is_some()
        && status.phase == Phase::Active
        && triggers.active.is_some_and(guarded)
    {
        triggers.active = None;
        triggers.scheduled = None;
    }
    if requests.retry {
        // An administrator asked: failed steps are due now, not after their backoff.
        for s in &mut status.steps {
            if s.state == StepState::Failed {
                s.next_retry_time = None;
            }
        }
        status.account.next_retry_time = None;
    }
    // Once deprovisioned, a rehire ends even a deprovision-now episode, as long as the
    // record itself no longer says the person is out.
    let context = Context {
        approved: requests.approve,
        rehired: rehired && record.active.is_none(),
    };
    let mut transitions = Vec::new();
    let before = status.phase;
    let mut guarded_removal = false;

    // Transitions chain within one step (e.g. an immediate trigger whose revoke already
    // succeeded), but each phase is entered at most once per call.
    for _ in 0..6 {
        let from = status.phase;
        let reason = advance(&mut status, observed, &triggers, context, policy, now);
        guarded_removal |= matches!(reason, Some("HeldByGuard" | "AdmittedByGuard"));
        let reason = reason.map(|r| match r {
            // Admitted: the usual reason of the trigger.
            "AdmittedByGuard" => trigger_reason(status.trigger),
            other => other,
        });
        match reason {
            Some(reason) => {
                transitions.push(Transition {
                    from,
                    to: status.phase,
                    reason,
                });
                // Back to Active: the triggers were read before, and a request that
                // started the episode no longer holds. The next step reads them afresh.
                if status.phase == Phase::Active {
                    break;
                }
            }
            None => break,
        }
    }

    // Joiners and movers: only an Active person is provisioned and kept in sync. A
    // leaver's data waits for anonymization, and Purged is never provisioned again.
    let mut sync = Vec::new();
    if status.phase == Phase::Active {
        status.groups = groups::compute(&tenant.group_rules, observed.spec, &status.groups);
        sync = sync::plan(
            observed.uid,
            observed.spec,
            &status,
            observed.manager,
            &tenant.locations,
            now,
        );
    }
    status.next_deadline = next_deadline(&status, &triggers);
    status.observed_generation = observed.generation;
    status.plan.clear();

    let mut actions = due_actions(&status, now);
    let pending = actions.len() + sync.len();
    if tenant.suspended {
        actions.clear();
        sync.clear();
    }
    let scrub_pii = status.phase == Phase::Purged && pii::has_pii(observed.spec);
    let pii_reapplied = scrub_pii && before == Phase::Purged;
    conditions::update(
        &mut status,
        &ConditionInputs {
            spec: observed.spec,
            generation: observed.generation,
            locations: &tenant.locations,
            manager: observed.manager,
            suspended: tenant.suspended,
            dry_run: false,
            pending_actions: pending,
            pii_reapplied,
        },
        now,
    );
    Decision {
        wake_at: wake_at(&status, now),
        release: observed.deleting && status.phase == Phase::Purged,
        status,
        sync,
        actions,
        transitions,
        scrub_pii,
        guarded_removal,
    }
}

/// Whether the mass-deprovisioning guard watches this trigger: everything a source or a
/// GitOps tool can do to many people at once. A deprovision-now request is an
/// administrator's decision about one person, like the per-user approval.
pub fn guarded(trigger: Trigger) -> bool {
    matches!(
        trigger,
        Trigger::Deactivated | Trigger::TerminationDate | Trigger::ObjectDeleted
    )
}

fn trigger_reason(trigger: Option<Trigger>) -> &'static str {
    match trigger {
        Some(Trigger::Deactivated) | None => "Deactivated",
        Some(Trigger::TerminationDate) => "TerminationDateReached",
        Some(Trigger::DeprovisionNow) => "DeprovisionNowRequested",
        Some(Trigger::ObjectDeleted) => "ObjectDeleted",
    }
}

/// Which requests carry a value roster has not acted on yet.
fn new_requests(status: &DirectoryUserStatus, requests: &Requests) -> NewRequests {
    let handled = &status.handled_requests;
    let new = |value: Option<&str>, last: &Option<String>| {
        value.is_some_and(|v| last.as_deref() != Some(v))
    };
    NewRequests {
        deprovision_now: new(requests.deprovision_now, &handled.deprovision_now),
        retry: new(requests.retry, &handled.retry),
        approve: new(requests.approve, &handled.approve),
    }
}

/// Records the new requests as handled, so each value is acted on once.
fn record_handled(status: &mut DirectoryUserStatus, requests: &Requests, new: NewRequests) {
    let handled = &mut status.handled_requests;
    for (is_new, value, last) in [
        (
            new.deprovision_now,
            requests.deprovision_now,
            &mut handled.deprovision_now,
        ),
        (new.retry, requests.retry, &mut handled.retry),
        (new.approve, requests.approve, &mut handled.approve),
    ] {
        if is_new {
            *last = value.map(str::to_string);
        }
    }
}

/// A deprovision-now request holds for the rest of its episode: removing the
/// annotation (or a GitOps tool reverting it) undoes nothing.
fn deprovision_now_holds(status: &DirectoryUserStatus) -> bool {
    status.trigger == Some(Trigger::DeprovisionNow)
        && !matches!(status.phase, Phase::Active | Phase::Held)
}

/// Makes at most one phase change; returns its reason.
fn advance(
    status: &mut DirectoryUserStatus,
    observed: &Observed,
    triggers: &trigger::Triggers,
    context: Context,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    match (status.phase, triggers.active) {
        (Phase::Active, Some(trigger)) => {
            // Someone roster never gave access loses nothing: only a provisioned
            // person's removal is the guard's business.
            let watched = guarded(trigger) && status.account.provisioned.is_some();
            if watched && observed.guard.hold {
                status.phase = Phase::Held;
                let decisions = observed.guard.decisions;
                status.removal_guard = roster_api::RemovalGuardRecord {
                    held_time: Some(now),
                    held_approve_token: decisions.approve.map(str::to_string),
                    held_reject_token: decisions.reject.map(str::to_string),
                    ..Default::default()
                };
                return Some("HeldByGuard");
            }
            begin_episode(status, observed.uid, trigger, triggers, policy, now);
            status.removal_guard = roster_api::RemovalGuardRecord {
                admitted_time: watched.then_some(now),
                ..Default::default()
            };
            Some(if watched {
                "AdmittedByGuard"
            } else {
                trigger_reason(Some(trigger))
            })
        }
        (Phase::Held, None) => {
            status.phase = Phase::Active;
            status.removal_guard = Default::default();
            Some("TriggerCleared")
        }
        (Phase::Held, Some(trigger)) => {
            let record = &status.removal_guard;
            let verdict = guard::verdict(
                record.held_approve_token.as_deref(),
                record.held_reject_token.as_deref(),
                observed.guard.decisions,
            );
            // A deleted object cannot be un-deleted by a rejection: it stays held
            // until approved, or taken back by applying the record again.
            let rejected = verdict == Verdict::Rejected && trigger != Trigger::ObjectDeleted;
            if rejected {
                status.phase = Phase::Active;
                status.removal_guard = roster_api::RemovalGuardRecord {
                    rejected_time: Some(now),
                    rejected_generation: observed.generation,
                    ..Default::default()
                };
                Some("RemovalRejected")
            } else if context.approved || verdict == Verdict::Approved {
                // Approved removals do not count in the window: an administrator let them through.
                begin_episode(status, observed.uid, trigger, triggers, policy, now);
                status.removal_guard = Default::default();
                Some("Approved")
            } else {
                None
            }
        }
        (Phase::Quarantined, None) => {
            restore(status, observed.uid, now);
            Some("QuarantineReversed")
        }
        (Phase::Quarantined, Some(trigger)) => {
            status.trigger = Some(trigger);
            schedule(status, triggers, policy, now);
            let revoked = step_state(status, StepName::RevokeAccess) == Some(StepState::Succeeded);
            let due = status.deprovision_due_time.is_some_and(|at| at <= now);
            if revoked && due {
                status.phase = Phase::Deprovisioning;
                for name in STAGE_TWO {
                    let enabled = step_enabled(policy, name);
                    add_step(
                        status,
                        observed.uid,
                        name,
                        if enabled {
                            StepState::Pending
                        } else {
                            StepState::Skipped
                        },
                    );
                }
                Some("QuarantineEnded")
            } else {
                None
            }
        }
        (Phase::Deprovisioning, _) => {
            let done = STAGE_TWO.iter().all(|name| {
                matches!(
                    step_state(status, *name),
                    Some(StepState::Succeeded | StepState::Skipped)
                )
            });
            done.then(|| {
                status.phase = Phase::Deprovisioned;
                status.deprovisioned_time = Some(now);
                "StepsCompleted"
            })
        }
        // Anonymized already: only a rehire brings the person back. A trigger that
        // merely cleared (`active: true` again, a GitOps tool reverting an edit) leaves
        // the purge on schedule.
        (Phase::Deprovisioned, None | Some(Trigger::DeprovisionNow)) if context.rehired => {
            restore(status, observed.uid, now);
            Some("Rehired")
        }
        (Phase::Deprovisioned, trigger) => {
            if trigger == Some(Trigger::ObjectDeleted)
                && status.trigger != Some(Trigger::ObjectDeleted)
            {
                // Deleting the object of a deprovisioned user: nothing is left to wait for.
                status.trigger = trigger;
                status.purge_due_time = Some(status.purge_due_time.map_or(now, |at| at.min(now)));
            }
            let due = status.purge_due_time.is_some_and(|at| at <= now);
            if due && step_state(status, StepName::Purge).is_none() {
                add_step(status, observed.uid, StepName::Purge, StepState::Pending);
            }
            (step_state(status, StepName::Purge) == Some(StepState::Succeeded)).then(|| {
                status.phase = Phase::Purged;
                status.purged_time = Some(now);
                "PIIPurged"
            })
        }
        // Purged is terminal.
        (Phase::Active, None) | (Phase::Purged, _) => None,
    }
}

/// Starts a leaver episode: new idempotency keys, access revocation, deadlines.
fn begin_episode(
    status: &mut DirectoryUserStatus,
    uid: &str,
    trigger: Trigger,
    triggers: &trigger::Triggers,
    policy: &Policy,
    now: DateTime<Utc>,
) {
    status.phase = Phase::Quarantined;
    status.episode += 1;
    status.trigger = Some(trigger);
    status.trigger_time = Some(now);
    status.quarantine_start_time = Some(now);
    status.deprovision_due_time = None;
    status.purge_due_time = None;
    status.deprovisioned_time = None;
    status.purged_time = None;
    status.steps.clear();
    add_step(status, uid, StepName::RevokeAccess, StepState::Pending);
    schedule(status, triggers, policy, now);
}

/// (Re)computes the deadlines of a quarantined user from persisted timestamps and the
/// current policy. A policy edit applies to users already in quarantine, counted from
/// their trigger time: a shorter quarantine can make them due at once, a longer one
/// extends it. The purge deadline only ever moves earlier. An immediate trigger makes
/// the user due the first time it is seen, and that moment is kept.
fn schedule(
    status: &mut DirectoryUserStatus,
    triggers: &trigger::Triggers,
    policy: &Policy,
    now: DateTime<Utc>,
) {
    let trigger_time = status.trigger_time.unwrap_or(now);
    let terminated_at = triggers
        .terminated_at
        .map_or(trigger_time, |at| at.min(trigger_time));
    let mut purge_due = terminated_at + policy.purge_deadline;
    if let Some(previous) = status.purge_due_time {
        purge_due = purge_due.min(previous);
    }
    let mut deprovision_due = (trigger_time + policy.quarantine).min(purge_due);
    if triggers.immediate {
        let first_seen = match status.deprovision_due_time {
            Some(at) if at <= now => at,
            _ => now,
        };
        deprovision_due = deprovision_due.min(first_seen);
    }
    if status.trigger == Some(Trigger::ObjectDeleted) {
        // The object waits in Terminating: purge right after deprovisioning.
        purge_due = purge_due.min(deprovision_due);
    }
    status.deprovision_due_time = Some(deprovision_due);
    status.purge_due_time = Some(purge_due);
}

/// Ends an episode early (reversal during quarantine, or a rehire/reactivation after
/// deprovisioning): access is restored and the episode's schedule dropped.
fn restore(status: &mut DirectoryUserStatus, uid: &str, now: DateTime<Utc>) {
    status.phase = Phase::Active;
    status.trigger = None;
    status.trigger_time = None;
    status.quarantine_start_time = None;
    status.deprovision_due_time = None;
    status.deprovisioned_time = None;
    status.purge_due_time = None;
    status.purged_time = None;
    status.reversals += 1;
    status.last_reversal_time = Some(now);
    status.steps.clear();
    add_step(status, uid, StepName::RestoreAccess, StepState::Pending);
}

fn step_enabled(policy: &Policy, name: StepName) -> bool {
    let a = &policy.actions;
    match name {
        StepName::TransferCalendarEvents => a.transfer_calendar_events,
        StepName::TransferRules => a.transfer_rules,
        StepName::RemoveFromEvents => a.remove_from_events,
        StepName::RemoveFromGroups => a.remove_from_groups,
        StepName::RemoveAssignments => a.remove_assignments,
        StepName::Anonymize => a.anonymize,
        StepName::RevokeAccess | StepName::RestoreAccess | StepName::Purge => true,
    }
}

/// The key sent with every call of a step: stable across retries and restarts, new
/// for each episode so a re-triggered user is not mistaken for a retry.
pub fn idempotency_key(uid: &str, episode: i32, name: StepName) -> String {
    format!("{uid}/{episode}/{}", name.as_str())
}

fn add_step(status: &mut DirectoryUserStatus, uid: &str, name: StepName, state: StepState) {
    if status.steps.iter().any(|s| s.name == name) {
        return;
    }
    status.steps.push(StepStatus {
        name,
        state,
        attempts: 0,
        idempotency_key: idempotency_key(uid, status.episode, name),
        last_error: None,
        summary: (state == StepState::Skipped).then(|| "turned off by the policy".to_string()),
        completion_time: None,
        next_retry_time: None,
    });
}

fn step_state(status: &DirectoryUserStatus, name: StepName) -> Option<StepState> {
    status
        .steps
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.state)
}

/// Steps to run now, in order: pending ones and failed ones whose retry time has
/// come. A failed step still backing off holds back every step after it, since each
/// step may rely on the ones before (events are transferred before the leaver is
/// removed from them; anonymization comes last).
fn due_actions(status: &DirectoryUserStatus, now: DateTime<Utc>) -> Vec<Action> {
    let mut actions = Vec::new();
    for s in &status.steps {
        match s.state {
            StepState::Succeeded | StepState::Skipped => continue,
            StepState::Failed if s.next_retry_time.is_some_and(|at| at > now) => break,
            StepState::Pending | StepState::Failed => {
                actions.push(Action {
                    step: s.name,
                    idempotency_key: s.idempotency_key.clone(),
                });
            }
        }
    }
    actions
}

/// The deadline shown to people: the next thing the schedule will do.
fn next_deadline(
    status: &DirectoryUserStatus,
    triggers: &trigger::Triggers,
) -> Option<DateTime<Utc>> {
    match status.phase {
        Phase::Active => triggers.scheduled,
        Phase::Quarantined => status.deprovision_due_time,
        Phase::Deprovisioning | Phase::Deprovisioned => status.purge_due_time,
        Phase::Held | Phase::Purged => None,
    }
}

/// The earliest future moment at which `step` would decide differently by itself.
fn wake_at(status: &DirectoryUserStatus, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let sync_retry = status
        .account
        .next_retry_time
        .filter(|_| status.phase == Phase::Active);
    let retries = status
        .steps
        .iter()
        .filter(|s| s.state == StepState::Failed)
        .filter_map(|s| s.next_retry_time)
        .chain(sync_retry);
    status
        .next_deadline
        .into_iter()
        .chain(retries)
        .filter(|at| *at > now)
        .min()
}

/// Folds a step's result into status. Pure; the caller persists the result before
/// running the next step.
pub fn record_outcome(
    status: &mut DirectoryUserStatus,
    name: StepName,
    outcome: Outcome,
    now: DateTime<Utc>,
) {
    let Some(step) = status.steps.iter_mut().find(|s| s.name == name) else {
        return;
    };
    step.attempts += 1;
    match outcome {
        Outcome::Succeeded { summary, .. } => {
            step.state = StepState::Succeeded;
            step.summary = Some(summary);
            step.last_error = None;
            step.next_retry_time = None;
            step.completion_time = Some(now);
            match name {
                StepName::RemoveFromGroups => {
                    status.groups.clear();
                    status.account.groups.clear();
                }
                // The platform no longer holds the profile: a rehire sends it whole again,
                // and no digest of purged data stays behind.
                StepName::Anonymize | StepName::Purge => {
                    status.account.profile = Default::default();
                }
                _ => {}
            }
        }
        Outcome::Failed {
            error,
            retry_after,
            unreachable,
        } => {
            let backoff = failure_backoff(step.attempts, unreachable)
                .max(retry_after.unwrap_or_else(Duration::zero));
            step.state = StepState::Failed;
            step.last_error = Some(error);
            step.next_retry_time = Some(now + backoff);
        }
    }
}

/// 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 16);
    Duration::seconds(1_i64 << exponent).min(MAX_BACKOFF)
}

/// The wait after a failure: [`backoff`], capped at [`OUTAGE_MAX_BACKOFF`] when the
/// service did not answer.
pub fn failure_backoff(attempts: i32, unreachable: bool) -> Duration {
    let wait = backoff(attempts);
    if unreachable {
        wait.min(OUTAGE_MAX_BACKOFF)
    } else {
        wait
    }
}

/// Dry-run: the phase stays, nothing runs, and `status.plan` lists the steps that
/// would run from here. Only persisted deadlines are kept, so the plan is stable.
fn dry_run(
    observed: &Observed,
    policy: &Policy,
    tenant: &TenantSettings,
    now: DateTime<Utc>,
) -> Decision {
    // Nothing is acknowledged in dry-run: a request still applies once it is turned off.
    let mut status = observed.status.clone();
    let requested = new_requests(&status, &observed.requests).deprovision_now;
    let triggers = trigger::evaluate(
        observed.spec,
        observed.deleting,
        policy.on_object_deletion,
        tenant.time_zone,
        now,
    )
    .with_deprovision_now(requested || deprovision_now_holds(&status));
    let stage_two = STAGE_TWO
        .into_iter()
        .filter(|name| step_enabled(policy, *name));
    let remaining = |status: &DirectoryUserStatus| -> Vec<StepName> {
        status
            .steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Pending | StepState::Failed))
            .map(|s| s.name)
            .collect()
    };
    status.plan = match (status.phase, triggers.active) {
        (Phase::Active | Phase::Held, Some(_)) => std::iter::once(StepName::RevokeAccess)
            .chain(stage_two)
            .chain(std::iter::once(StepName::Purge))
            .collect(),
        (Phase::Quarantined, Some(_)) => remaining(&status)
            .into_iter()
            .chain(stage_two)
            .chain([StepName::Purge])
            .collect(),
        (Phase::Quarantined, None) => vec![StepName::RestoreAccess],
        (Phase::Deprovisioned, None)
            if trigger::rehired(
                observed.spec,
                status.trigger,
                status.trigger_time,
                tenant.time_zone,
            ) =>
        {
            vec![StepName::RestoreAccess]
        }
        (Phase::Deprovisioned, None) => vec![StepName::Purge],
        (Phase::Deprovisioning, _) => remaining(&status)
            .into_iter()
            .chain([StepName::Purge])
            .collect(),
        (Phase::Deprovisioned, Some(_)) => vec![StepName::Purge],
        (Phase::Active | Phase::Held, None) | (Phase::Purged, _) => Vec::new(),
    };
    status.next_deadline = next_deadline(&status, &triggers);
    status.observed_generation = observed.generation;
    conditions::update(
        &mut status,
        &ConditionInputs {
            spec: observed.spec,
            generation: observed.generation,
            locations: &tenant.locations,
            manager: observed.manager,
            suspended: tenant.suspended,
            dry_run: true,
            pending_actions: 0,
            pii_reapplied: false,
        },
        now,
    );
    Decision {
        wake_at: wake_at(&status, now),
        status,
        sync: Vec::new(),
        actions: Vec::new(),
        transitions: Vec::new(),
        scrub_pii: false,
        release: false,
        guarded_removal: false,
    }
}
