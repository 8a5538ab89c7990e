//! Table-driven and property tests of the state machine, on simulated time.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;

use super::machine::{
    Decision, Observed, Outcome, Requests, STAGE_TWO, Transition, record_outcome, step,
};
use super::settings::{Policy, TenantSettings};
use roster_api::{
    DeprovisionPolicySpec, DirectoryUserSpec, DirectoryUserStatus, ObjectDeletionMode, Phase,
    StepName, StepState, Trigger,
};

const UID: &str = "0b0e7c2c-uid";
const NAME: &str = "Zelda Quintessential-Example";
const EMAIL: &str = "zelda.q@example.com";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("RFC 3339 time")
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn person() -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: "00042".into(),
        full_name: NAME.into(),
        email: EMAIL.into(),
        manager_email: Some("boss.person@example.com".into()),
        ..Default::default()
    }
}

fn policy(quarantine: &str, purge: &str) -> Policy {
    Policy::from_spec(&DeprovisionPolicySpec {
        quarantine_period: quarantine.into(),
        purge_deadline: purge.into(),
        ..Default::default()
    })
    .expect("valid policy")
}

/// One user, a policy, a tenant and a simulated learning platform that counts how
/// often each idempotency key took effect.
struct World {
    spec: DirectoryUserSpec,
    status: DirectoryUserStatus,
    deleting: bool,
    policy: Policy,
    tenant: TenantSettings,
    applied: HashMap<String, u32>,
    transitions: Vec<Transition>,
    released: bool,
    scrubbed: u32,
    /// Values of the request annotations on the object.
    deprovision_now: Option<String>,
    retry: Option<String>,
    approve: Option<String>,
    /// The mass-deprovisioning guard: hold new removals; the Tenant's annotations.
    hold: bool,
    approve_removals: Option<String>,
    reject_removals: Option<String>,
    generation: i64,
}

impl World {
    fn new(spec: DirectoryUserSpec, policy: Policy) -> Self {
        Self {
            spec,
            status: DirectoryUserStatus::default(),
            deleting: false,
            policy,
            tenant: TenantSettings::default(),
            applied: HashMap::new(),
            transitions: Vec::new(),
            released: false,
            scrubbed: 0,
            deprovision_now: None,
            retry: None,
            approve: None,
            hold: false,
            approve_removals: None,
            reject_removals: None,
            generation: 1,
        }
    }

    /// The same world with a `roster.dev/deprovision-now` request on the object.
    fn deprovisioned_now(mut self) -> Self {
        self.request_deprovision_now();
        self
    }

    /// Annotates a new deprovision-now request (a fresh value).
    fn request_deprovision_now(&mut self) {
        let n = self.deprovision_now.as_deref().map_or(0, |v| v.len());
        self.deprovision_now = Some("x".repeat(n + 1));
    }

    fn decide(&self, now: DateTime<Utc>) -> Decision {
        let observed = Observed {
            uid: UID,
            generation: Some(self.generation),
            deleting: self.deleting,
            spec: &self.spec,
            status: &self.status,
            requests: Requests {
                deprovision_now: self.deprovision_now.as_deref(),
                retry: self.retry.as_deref(),
                approve: self.approve.as_deref(),
            },
            manager: crate::sync::Manager::NotSet,
            guard: crate::Gate {
                hold: self.hold,
                decisions: crate::guard::Decisions {
                    approve: self.approve_removals.as_deref(),
                    reject: self.reject_removals.as_deref(),
                },
            },
        };
        step(&observed, &self.policy, &self.tenant, now)
    }

    /// Reconciles until nothing more happens at `now`, running every action with
    /// success, as the controller does. Returns the last decision.
    fn settle(&mut self, now: DateTime<Utc>) -> Decision {
        self.settle_with(now, |_| None)
    }

    /// Like `settle`, but `fail` may turn an action into a failure.
    fn settle_with(
        &mut self,
        now: DateTime<Utc>,
        mut fail: impl FnMut(StepName) -> Option<Outcome>,
    ) -> Decision {
        for _ in 0..20 {
            let decision = self.decide(now);
            assert_invariants(&self.status, &decision, now);
            self.status = decision.status.clone();
            self.transitions.extend(decision.transitions.clone());
            self.released |= decision.release;
            if decision.scrub_pii {
                self.scrubbed += 1;
                self.spec = super::pii::scrubbed(&self.spec);
            }
            if decision.actions.is_empty() && decision.sync.is_empty() {
                return decision;
            }
            // Joiner and mover calls succeed here; the sync module tests them.
            for action in &decision.sync {
                *self
                    .applied
                    .entry(action.idempotency_key.clone())
                    .or_default() += 1;
                let outcome = crate::sync::SyncOutcome::Done;
                if !crate::sync::record_sync_outcome(&mut self.status, UID, action, outcome, now) {
                    break;
                }
            }
            for action in decision.actions {
                let outcome = fail(action.step).unwrap_or_else(|| {
                    *self
                        .applied
                        .entry(action.idempotency_key.clone())
                        .or_default() += 1;
                    Outcome::Succeeded {
                        summary: format!("{:?} done", action.step),
                        warning: None,
                    }
                });
                let failed = matches!(outcome, Outcome::Failed { .. });
                record_outcome(&mut self.status, action.step, outcome, now);
                if failed {
                    break;
                }
            }
        }
        panic!("did not settle at {now}: {:#?}", self.status);
    }

    fn phase(&self) -> Phase {
        self.status.phase
    }

    fn step_state(&self, name: StepName) -> Option<StepState> {
        self.status
            .steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.state)
    }
}

/// What must hold for every decision, whatever led to it.
fn assert_invariants(before: &DirectoryUserStatus, decision: &Decision, now: DateTime<Utc>) {
    if let Some(wake) = decision.wake_at {
        assert!(wake > now, "wake-up {wake} is not after now {now}");
    }
    if before.phase == Phase::Purged {
        assert_eq!(decision.status.phase, Phase::Purged, "Purged is terminal");
    }
    for t in &decision.transitions {
        let forward = t.to > t.from;
        let reversal = t.to == Phase::Active
            && matches!(
                t.from,
                Phase::Quarantined | Phase::Deprovisioned | Phase::Held
            );
        assert!(forward || reversal, "illegal transition {t:?}");
    }
    let text = serde_json::to_string(&decision.status).unwrap();
    for pii in [
        NAME,
        EMAIL,
        "boss.person@example.com",
        "Zelda",
        "example.com",
    ] {
        assert!(!text.contains(pii), "status holds PII {pii:?}: {text}");
    }
}

// ---------------------------------------------------------------- table tests

#[test]
fn an_active_person_at_rest_needs_nothing() {
    let mut world = World::new(person(), Policy::default());
    let decision = world.settle(at("2025-03-01T12:00:00Z"));
    assert_eq!(world.phase(), Phase::Active);
    assert!(decision.actions.is_empty());
    assert_eq!(decision.wake_at, None);
    assert!(decision.transitions.is_empty());
    let again = world.decide(at("2025-03-02T12:00:00Z"));
    assert_eq!(
        again.status, world.status,
        "a settled user must not change status over time"
    );
}

#[test]
fn the_full_path_with_default_durations() {
    let mut world = World::new(person(), Policy::default());
    let t0 = at("2025-03-01T12:00:00Z");
    world.settle(t0);
    world.spec.active = false;
    let decision = world.settle(t0);
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(world.status.trigger, Some(Trigger::Deactivated));
    assert_eq!(
        world.step_state(StepName::RevokeAccess),
        Some(StepState::Succeeded)
    );
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::days(7))
    );
    assert_eq!(world.status.purge_due_time, Some(t0 + Duration::days(30)));
    assert_eq!(decision.wake_at, Some(t0 + Duration::days(7)));

    // One second before the deadline nothing changes; at the deadline it fires.
    world.settle(t0 + Duration::days(7) - Duration::seconds(1));
    assert_eq!(world.phase(), Phase::Quarantined);
    let decision = world.settle(t0 + Duration::days(7));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    for name in STAGE_TWO {
        assert_eq!(
            world.step_state(name),
            Some(StepState::Succeeded),
            "{name:?}"
        );
    }
    assert_eq!(decision.wake_at, Some(t0 + Duration::days(30)));

    world.settle(t0 + Duration::days(30));
    assert_eq!(world.phase(), Phase::Purged);
    assert_eq!(world.scrubbed, 1);
    assert!(!super::pii::has_pii(&world.spec));
    let reasons: Vec<_> = world.transitions.iter().map(|t| t.reason).collect();
    assert_eq!(
        reasons,
        [
            "Deactivated",
            "QuarantineEnded",
            "StepsCompleted",
            "PIIPurged"
        ]
    );
    // Every side effect took effect exactly once: the joiner's provisioning, then the
    // eight leaver steps.
    assert_eq!(world.applied.len(), 9);
    assert_eq!(
        world
            .applied
            .keys()
            .filter(|k| k.contains("/sync/0/provision-"))
            .count(),
        1
    );
    assert!(world.applied.values().all(|n| *n == 1));
}

#[test]
fn actions_come_in_the_documented_order_with_stable_keys() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        policy("0s", "1h"),
    );
    let t0 = at("2025-03-01T00:00:00Z");
    let first = world.decide(t0);
    assert_eq!(first.actions.len(), 1);
    assert_eq!(first.actions[0].step, StepName::RevokeAccess);
    assert_eq!(
        first.actions[0].idempotency_key,
        format!("{UID}/1/RevokeAccess")
    );
    // Deciding again without running anything yields the same keys.
    assert_eq!(
        World {
            status: first.status.clone(),
            ..World::new(world.spec.clone(), world.policy.clone())
        }
        .decide(t0)
        .actions,
        first.actions
    );
    world.status = first.status;
    record_outcome(
        &mut world.status,
        StepName::RevokeAccess,
        Outcome::Succeeded {
            summary: "revoked".into(),
            warning: None,
        },
        t0,
    );
    let second = world.decide(t0);
    let steps: Vec<_> = second.actions.iter().map(|a| a.step).collect();
    assert_eq!(steps, STAGE_TWO);
}

#[test]
fn termination_dates_in_the_tenant_zone() {
    struct Case {
        name: &'static str,
        zone: &'static str,
        termination: &'static str,
        now: &'static str,
        phase: Phase,
        next: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "future date schedules",
            zone: "UTC",
            termination: "2025-03-10",
            now: "2025-03-01T00:00:00Z",
            phase: Phase::Active,
            next: Some("2025-03-10T00:00:00Z"),
        },
        Case {
            name: "exactly at now fires",
            zone: "UTC",
            termination: "2025-03-10",
            now: "2025-03-10T00:00:00Z",
            phase: Phase::Quarantined,
            next: Some("2025-03-17T00:00:00Z"),
        },
        Case {
            name: "one second before does not",
            zone: "UTC",
            termination: "2025-03-10",
            now: "2025-03-09T23:59:59Z",
            phase: Phase::Active,
            next: Some("2025-03-10T00:00:00Z"),
        },
        Case {
            name: "Berlin's day starts an hour earlier",
            zone: "Europe/Berlin",
            termination: "2025-03-10",
            now: "2025-03-09T23:00:00Z",
            phase: Phase::Quarantined,
            next: Some("2025-03-16T23:00:00Z"),
        },
        Case {
            name: "Berlin summer time",
            zone: "Europe/Berlin",
            termination: "2025-07-01",
            now: "2025-06-30T21:59:59Z",
            phase: Phase::Active,
            next: Some("2025-06-30T22:00:00Z"),
        },
        Case {
            name: "Los Angeles is still the day before",
            zone: "America/Los_Angeles",
            termination: "2025-03-10",
            now: "2025-03-10T06:59:59Z",
            phase: Phase::Active,
            next: Some("2025-03-10T07:00:00Z"),
        },
        Case {
            name: "DST gap at midnight (São Paulo 2018)",
            zone: "America/Sao_Paulo",
            termination: "2018-11-04",
            now: "2018-11-04T02:59:59Z",
            phase: Phase::Active,
            next: Some("2018-11-04T03:00:00Z"),
        },
        Case {
            name: "past date fires at once",
            zone: "UTC",
            termination: "2025-02-20",
            now: "2025-03-01T00:00:00Z",
            phase: Phase::Quarantined,
            next: Some("2025-03-08T00:00:00Z"),
        },
    ];
    for case in cases {
        let spec = DirectoryUserSpec {
            termination_date: Some(date(case.termination)),
            ..person()
        };
        let mut world = World::new(spec, Policy::default());
        world.tenant.time_zone = case.zone.parse().unwrap();
        let decision = world.settle(at(case.now));
        assert_eq!(world.phase(), case.phase, "{}", case.name);
        assert_eq!(
            world.status.next_deadline,
            case.next.map(at),
            "{}",
            case.name
        );
        assert_eq!(decision.wake_at, case.next.map(at), "{}", case.name);
    }
}

#[test]
fn an_old_termination_is_purged_by_its_legal_deadline_not_later() {
    // Terminated 40 days ago, seen only now: the 30-day purge deadline has passed, so
    // everything runs at once instead of waiting out a quarantine.
    let spec = DirectoryUserSpec {
        termination_date: Some(date("2025-01-20")),
        ..person()
    };
    let mut world = World::new(spec, Policy::default());
    let now = at("2025-03-01T09:00:00Z");
    world.settle(now);
    assert_eq!(world.phase(), Phase::Purged);
    assert_eq!(
        world.status.purge_due_time,
        Some(at("2025-02-19T00:00:00Z"))
    );
}

#[test]
fn purge_is_due_thirty_days_after_a_recent_termination() {
    let spec = DirectoryUserSpec {
        termination_date: Some(date("2025-02-27")),
        ..person()
    };
    let mut world = World::new(spec, Policy::default());
    world.settle(at("2025-03-01T00:00:00Z"));
    assert_eq!(
        world.status.purge_due_time,
        Some(at("2025-03-29T00:00:00Z"))
    );
    assert_eq!(
        world.status.deprovision_due_time,
        Some(at("2025-03-08T00:00:00Z"))
    );
}

#[test]
fn reversal_during_quarantine_restores_access() {
    let mut world = World::new(person(), Policy::default());
    let t0 = at("2025-03-01T00:00:00Z");
    world.spec.active = false;
    world.settle(t0);
    world.spec.active = true;
    let decision = world.settle(t0 + Duration::days(2));
    assert_eq!(world.phase(), Phase::Active);
    assert_eq!(world.status.reversals, 1);
    assert_eq!(
        world.status.last_reversal_time,
        Some(t0 + Duration::days(2))
    );
    assert_eq!(
        world.step_state(StepName::RestoreAccess),
        Some(StepState::Succeeded)
    );
    assert_eq!(world.status.deprovision_due_time, None);
    assert_eq!(decision.wake_at, None);
    assert_eq!(
        world.transitions.last().unwrap().reason,
        "QuarantineReversed"
    );
    // A second leave is a new episode with new keys.
    world.spec.active = false;
    world.settle(t0 + Duration::days(3));
    assert_eq!(world.status.episode, 2);
    assert!(world.applied.contains_key(&format!("{UID}/2/RevokeAccess")));
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::days(10))
    );
}

#[test]
fn rehire_during_quarantine_reverses_it() {
    let spec = DirectoryUserSpec {
        termination_date: Some(date("2025-03-01")),
        hire_date: Some(date("2020-01-01")),
        ..person()
    };
    let mut world = World::new(spec, Policy::default());
    world.settle(at("2025-03-02T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Quarantined);
    world.spec.hire_date = Some(date("2025-03-05"));
    world.settle(at("2025-03-05T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Active);
    assert_eq!(world.status.next_deadline, None);
}

#[test]
fn rehire_after_deprovisioning_re_enables_the_user() {
    let spec = DirectoryUserSpec {
        termination_date: Some(date("2025-03-01")),
        ..person()
    };
    let mut world = World::new(spec, policy("1h", "720h"));
    world.settle(at("2025-03-01T00:00:00Z"));
    world.settle(at("2025-03-01T01:00:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    world.spec.hire_date = Some(date("2025-04-01"));
    world.settle(at("2025-04-01T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Active);
    assert_eq!(world.transitions.last().unwrap().reason, "Rehired");
    assert_eq!(
        world.step_state(StepName::RestoreAccess),
        Some(StepState::Succeeded)
    );
}

#[test]
fn deprovision_now_skips_the_quarantine_and_stays_put() {
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(world.status.deprovision_due_time, Some(t0));
    assert_eq!(world.status.purge_due_time, Some(t0 + Duration::days(30)));
}

#[test]
fn deprovision_now_during_quarantine_cuts_it_short() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        Policy::default(),
    );
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    world.request_deprovision_now();
    world.settle(t0 + Duration::hours(5));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::hours(5))
    );
    assert_eq!(world.status.trigger, Some(Trigger::DeprovisionNow));
}

#[test]
fn object_deletion_under_both_modes() {
    for (mode, quarantined_first) in [
        (ObjectDeletionMode::Quarantine, true),
        (ObjectDeletionMode::Immediate, false),
    ] {
        let mut policy = policy("2s", "4s");
        policy.on_object_deletion = mode;
        let mut world = World::new(person(), policy);
        let t0 = at("2025-03-01T00:00:00Z");
        world.settle(t0);
        world.deleting = true;
        let decision = world.settle(t0);
        assert_eq!(world.status.trigger, Some(Trigger::ObjectDeleted));
        if quarantined_first {
            assert_eq!(world.phase(), Phase::Quarantined, "{mode:?}");
            assert!(!decision.release);
            assert_eq!(decision.wake_at, Some(t0 + Duration::seconds(2)));
            let decision = world.settle(t0 + Duration::seconds(2));
            assert!(decision.release, "{mode:?}");
        } else {
            assert!(decision.release, "{mode:?}");
        }
        assert_eq!(world.phase(), Phase::Purged, "{mode:?}");
        assert!(world.released);
    }
}

#[test]
fn deleting_a_purged_or_deprovisioned_user_releases_it() {
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    assert_eq!(world.phase(), Phase::Deprovisioned);
    world.deleting = true;
    let decision = world.settle(t0 + Duration::minutes(1));
    assert!(decision.release);
    assert_eq!(world.phase(), Phase::Purged);
}

#[test]
fn dry_run_records_the_plan_and_changes_nothing() {
    let mut dry = Policy {
        dry_run: true,
        ..Policy::default()
    };
    dry.actions.transfer_rules = false;
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        dry,
    );
    let decision = world.settle(at("2025-03-01T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Active);
    assert!(decision.actions.is_empty());
    assert!(world.applied.is_empty());
    assert_eq!(
        world.status.plan,
        [
            StepName::RevokeAccess,
            StepName::TransferCalendarEvents,
            StepName::RemoveFromEvents,
            StepName::RemoveFromGroups,
            StepName::RemoveAssignments,
            StepName::Anonymize,
            StepName::Purge
        ]
    );
    assert!(world.status.conditions.iter().any(|c| c.r#type == "DryRun"));
    // Turning dry-run off starts the real lifecycle and clears the plan.
    world.policy.dry_run = false;
    world.settle(at("2025-03-02T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Quarantined);
    assert!(world.status.plan.is_empty());
    assert!(!world.status.conditions.iter().any(|c| c.r#type == "DryRun"));
}

#[test]
fn suspended_tenant_runs_nothing_and_catches_up_on_resume() {
    let mut world = World::new(person(), policy("1h", "720h"));
    world.tenant.suspended = true;
    world.spec.active = false;
    let t0 = at("2025-03-01T00:00:00Z");
    let decision = world.settle(t0);
    assert!(decision.actions.is_empty());
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(
        world.step_state(StepName::RevokeAccess),
        Some(StepState::Pending)
    );
    let ready = world
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "TenantSuspended");
    // The deadline passes while suspended: nothing runs, nothing is skipped.
    world.settle(t0 + Duration::hours(3));
    assert!(world.applied.is_empty());
    assert_eq!(world.phase(), Phase::Quarantined);
    world.tenant.suspended = false;
    world.settle(t0 + Duration::hours(4));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::hours(1)),
        "the deadline did not move"
    );
}

#[test]
fn policy_edits_apply_to_users_in_quarantine_from_their_trigger_time() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        Policy::default(),
    );
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    // Longer quarantine: extended, counted from the trigger.
    world.policy = policy("336h", "720h");
    world.settle(t0 + Duration::days(1));
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::days(14))
    );
    // Shorter than the time already spent: due at once.
    world.policy = policy("24h", "720h");
    world.settle(t0 + Duration::days(2));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    // A longer purge deadline never moves the legal purge date later.
    world.policy = Policy {
        purge_deadline: Duration::days(30),
        ..policy("24h", "720h")
    };
    let before = world.status.purge_due_time;
    world.settle(t0 + Duration::days(3));
    assert_eq!(world.status.purge_due_time, before);
}

#[test]
fn a_shorter_purge_deadline_moves_purge_earlier() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        policy("24h", "720h"),
    );
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    world.policy = policy("24h", "48h");
    world.settle(t0 + Duration::hours(1));
    assert_eq!(world.status.purge_due_time, Some(t0 + Duration::hours(48)));
}

#[test]
fn a_clock_that_moved_backwards_neither_fires_nor_wakes_in_the_past() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        policy("1h", "720h"),
    );
    let t0 = at("2025-03-01T12:00:00Z");
    world.settle(t0);
    let earlier = t0 - Duration::hours(2);
    let decision = world.settle(earlier);
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(
        world.status.deprovision_due_time,
        Some(t0 + Duration::hours(1))
    );
    assert_eq!(decision.wake_at, Some(t0 + Duration::hours(1)));
}

#[test]
fn a_failed_step_is_retried_after_backoff_or_retry_after() {
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let t0 = at("2025-03-01T00:00:00Z");
    let decision = world.settle_with(t0, |step| {
        (step == StepName::TransferRules).then(|| Outcome::Failed {
            error: "Unavailable: HTTP 429".into(),
            retry_after: Some(Duration::seconds(30)),
            unreachable: false,
        })
    });
    assert_eq!(world.phase(), Phase::Deprovisioning);
    assert_eq!(
        world.step_state(StepName::TransferRules),
        Some(StepState::Failed)
    );
    assert_eq!(
        world.step_state(StepName::RemoveFromEvents),
        Some(StepState::Pending),
        "later steps wait"
    );
    assert_eq!(decision.wake_at, Some(t0 + Duration::seconds(30)));
    let ready = world
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "StepFailed");
    // Before the retry time the failed step is not offered again.
    assert!(
        world
            .decide(t0 + Duration::seconds(29))
            .actions
            .iter()
            .all(|a| a.step != StepName::TransferRules)
    );
    world.settle(t0 + Duration::seconds(30));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    let rules = world
        .status
        .steps
        .iter()
        .find(|s| s.name == StepName::TransferRules)
        .unwrap();
    assert_eq!(rules.attempts, 2);
    assert_eq!(rules.last_error, None);
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    let seconds: Vec<i64> = (1..=10).map(|n| super::backoff(n).num_seconds()).collect();
    assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
}

#[test]
fn an_outage_backs_off_to_thirty_seconds_at_most() {
    // (attempts, service answered?, wait in seconds)
    let table = [
        (1, false, 1),
        (5, false, 16),
        (6, false, 30),
        (10, false, 30),
        (10, true, 300),
    ];
    for (attempts, answered, wait) in table {
        assert_eq!(
            super::failure_backoff(attempts, !answered).num_seconds(),
            wait,
            "attempt {attempts}, answered {answered}"
        );
    }
}

#[test]
fn after_a_long_outage_a_step_is_due_again_within_thirty_seconds() {
    let mut status = roster_api::DirectoryUserStatus {
        steps: vec![roster_api::StepStatus {
            name: StepName::TransferRules,
            state: StepState::Pending,
            attempts: 0,
            idempotency_key: "k".into(),
            last_error: None,
            summary: None,
            completion_time: None,
            next_retry_time: None,
        }],
        ..Default::default()
    };
    let start = at("2025-03-01T00:00:00Z");
    let mut now = start;
    // Ten minutes of a platform that does not answer, retried whenever due.
    while now - start < Duration::minutes(10) {
        super::record_outcome(
            &mut status,
            StepName::TransferRules,
            Outcome::Failed {
                error: "learning platform unavailable (HTTP 503)".into(),
                retry_after: None,
                unreachable: true,
            },
            now,
        );
        now = status.steps[0].next_retry_time.unwrap();
    }
    // The platform is back at the ten-minute mark: the next try comes within 30 s.
    assert!(now - (start + Duration::minutes(10)) <= Duration::seconds(30));
}

#[test]
fn steps_turned_off_by_the_policy_are_skipped() {
    let mut policy = Policy::default();
    policy.actions.transfer_calendar_events = false;
    policy.actions.anonymize = false;
    let mut world = World::new(person(), policy).deprovisioned_now();
    world.settle(at("2025-03-01T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(
        world.step_state(StepName::TransferCalendarEvents),
        Some(StepState::Skipped)
    );
    assert_eq!(
        world.step_state(StepName::Anonymize),
        Some(StepState::Skipped)
    );
    assert!(!world.applied.keys().any(|k| k.ends_with("Anonymize")));
}

#[test]
fn pii_reapplied_to_a_purged_user_is_removed_again() {
    let mut world = World::new(person(), policy("0s", "1s")).deprovisioned_now();
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    world.settle(t0 + Duration::seconds(1));
    assert_eq!(world.phase(), Phase::Purged);
    world.spec = person();
    let decision = world.decide(t0 + Duration::seconds(6));
    assert!(decision.scrub_pii);
    assert!(
        decision
            .status
            .conditions
            .iter()
            .any(|c| c.r#type == "PIIReapplied")
    );
    world.settle(t0 + Duration::seconds(6));
    assert!(!super::pii::has_pii(&world.spec));
    assert_eq!(world.phase(), Phase::Purged);
}

#[test]
fn an_unknown_location_is_reported() {
    let mut world = World::new(
        DirectoryUserSpec {
            location: Some("Atlantis".into()),
            ..person()
        },
        Policy::default(),
    );
    world.tenant.locations = vec!["Berlin".into()];
    world.settle(at("2025-03-01T00:00:00Z"));
    let condition = world
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == "LocationMatched")
        .unwrap();
    assert_eq!(condition.reason, "UnknownLocation");
    assert!(!condition.message.contains("Atlantis"));
    world.spec.location = Some("berlin".into());
    world.settle(at("2025-03-01T00:00:00Z"));
    let condition = world
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == "LocationMatched")
        .unwrap();
    assert_eq!(condition.reason, "ConfiguredLocation");
}

#[test]
fn conditions_keep_their_transition_time_at_rest() {
    let mut world = World::new(
        DirectoryUserSpec {
            active: false,
            ..person()
        },
        Policy::default(),
    );
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    let before = world.status.clone();
    world.settle(t0 + Duration::hours(1));
    assert_eq!(world.status, before);
}

/// `Stalled` and `Reconciling` are present only while True. The False ones an earlier
/// version wrote stay until the conditions change anyway, so an upgrade rewrites no
/// settled user.
#[test]
fn conditions_written_false_by_earlier_versions_go_with_the_next_change() {
    use roster_api::ConditionStatus::False;
    let mut world = World::new(person(), Policy::default());
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    assert_eq!(world.phase(), Phase::Active);
    assert_eq!(present(&world.status, "Stalled"), None);
    assert_eq!(present(&world.status, "Reconciling"), None);
    for (kind, reason) in [("Stalled", "NotStalled"), ("Reconciling", "Settled")] {
        let mut legacy = condition(&world.status, "Ready").clone();
        legacy.r#type = kind.into();
        legacy.status = False;
        legacy.reason = reason.into();
        legacy.message = String::new();
        world.status.conditions.push(legacy);
    }
    let upgraded = world.status.clone();
    world.settle(t0 + Duration::hours(1));
    assert_eq!(world.status, upgraded, "a settled user is not rewritten");
    world.spec.active = false;
    world.settle(t0 + Duration::hours(2));
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(present(&world.status, "Stalled"), None);
    assert_eq!(present(&world.status, "Reconciling"), None);
}

/// What a blocked user's status becomes (a missing Tenant, a duplicate employee ID...):
/// the conditions say so, the phase and the rest stay, and the same block found again
/// writes nothing.
#[test]
fn a_blocked_user_is_not_ready_and_stalled_and_written_once() {
    use super::conditions::blocked;
    use roster_api::ConditionStatus::{False, True};
    let t0 = at("2025-03-01T00:00:00Z");
    let later = t0 + Duration::hours(1);
    let mut settled = World::new(person(), Policy::default());
    settled.settle(t0);
    let settled = settled.status;
    let mut reconciling = settled.clone();
    let mut running = condition(&settled, "Ready").clone();
    running.r#type = "Reconciling".into();
    reconciling.conditions.push(running);
    let mut already = settled.clone();
    assert!(blocked(
        &mut already,
        "TenantNotFound",
        "TenantNotFound: what to change",
        Some(1),
        t0
    ));
    // (case, status before, reason, generation, written)
    let cases: Vec<(&str, DirectoryUserStatus, &str, Option<i64>, bool)> = vec![
        (
            "a new user",
            DirectoryUserStatus::default(),
            "TenantNotFound",
            Some(1),
            true,
        ),
        (
            "a settled user",
            settled.clone(),
            "TenantNotFound",
            Some(1),
            true,
        ),
        (
            "one with steps running",
            reconciling,
            "TenantNotFound",
            Some(1),
            true,
        ),
        (
            "the same block again",
            already.clone(),
            "TenantNotFound",
            Some(1),
            false,
        ),
        (
            "another reason",
            already.clone(),
            "DuplicateEmployeeID",
            Some(1),
            true,
        ),
        (
            "a new generation",
            already.clone(),
            "TenantNotFound",
            Some(2),
            true,
        ),
    ];
    for (case, before, reason, generation, written) in cases {
        let mut status = before.clone();
        let message = format!("{reason}: what to change");
        assert_eq!(
            blocked(&mut status, reason, &message, generation, later),
            written,
            "{case}: written"
        );
        assert_eq!(status.phase, before.phase, "{case}: the phase stays");
        assert_eq!(status.steps, before.steps, "{case}: the steps stay");
        assert_eq!(status.observed_generation, generation, "{case}");
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (False, reason),
            "{case}"
        );
        assert_eq!(ready.message, message, "{case}");
        let stalled = condition(&status, "Stalled");
        assert_eq!(
            (stalled.status, stalled.reason.as_str()),
            (True, reason),
            "{case}"
        );
        assert_eq!(present(&status, "Reconciling"), None, "{case}");
        // The other conditions are the lifecycle's and stay as they were.
        for other in before
            .conditions
            .iter()
            .filter(|c| !matches!(c.r#type.as_str(), "Ready" | "Stalled" | "Reconciling"))
        {
            assert_eq!(condition(&status, &other.r#type), other, "{case}");
        }
        if !written {
            assert_eq!(status, before, "{case}: nothing changed, not even a time");
        }
    }
}

// ---------------------------------------------------------------- properties

/// Something that can happen between two reconciles.
#[derive(Clone, Debug)]
enum Event {
    Advance(i64),
    SetActive(bool),
    SetTermination(Option<i64>),
    Rehire(i64),
    DeprovisionNow,
    Delete,
    Suspend(bool),
    DryRun(bool),
    Quarantine(i64),
    ReapplyPii,
    FailNext,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0i64..200_000).prop_map(Event::Advance),
        2 => any::<bool>().prop_map(Event::SetActive),
        1 => proptest::option::of(-40i64..40).prop_map(Event::SetTermination),
        1 => (-40i64..40).prop_map(Event::Rehire),
        1 => Just(Event::DeprovisionNow),
        1 => Just(Event::Delete),
        1 => any::<bool>().prop_map(Event::Suspend),
        1 => any::<bool>().prop_map(Event::DryRun),
        1 => (0i64..604_800).prop_map(Event::Quarantine),
        1 => Just(Event::ReapplyPii),
        2 => Just(Event::FailNext),
    ]
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("UTC"),
        Just("Europe/Berlin"),
        Just("America/Sao_Paulo"),
        Just("Pacific/Chatham"),
        Just("Asia/Kolkata")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever happens: Purged is terminal, phases only move forward except
    /// reversals, wake-ups are in the future, status never holds PII (all checked
    /// in `assert_invariants` on every decision), a settled state is a fixpoint, and
    /// no side effect takes effect twice.
    #[test]
    fn invariants_hold_for_any_history(events in proptest::collection::vec(event(), 1..40), zone in zone()) {
        let mut world = World::new(person(), policy("3600s", "7200s"));
        world.tenant.time_zone = zone.parse().unwrap();
        let base = at("2025-03-01T00:00:00Z");
        let mut now = base;
        let mut fail_next = false;
        let mut was_purged = false;
        for event in events {
            match event {
                Event::Advance(seconds) => now += Duration::seconds(seconds),
                Event::SetActive(active) => world.spec.active = active,
                Event::SetTermination(days) => world.spec.termination_date = days.map(|d| (base + Duration::days(d)).date_naive()),
                Event::Rehire(days) => world.spec.hire_date = Some((base + Duration::days(days)).date_naive()),
                Event::DeprovisionNow => world.request_deprovision_now(),
                Event::Delete => world.deleting = true,
                Event::Suspend(on) => world.tenant.suspended = on,
                Event::DryRun(on) => world.policy.dry_run = on,
                Event::Quarantine(seconds) => world.policy.quarantine = Duration::seconds(seconds).min(world.policy.purge_deadline),
                Event::ReapplyPii => { world.spec.full_name = NAME.into(); world.spec.email = EMAIL.into(); }
                Event::FailNext => fail_next = true,
            }
            let decision = world.settle_with(now, |_| std::mem::take(&mut fail_next).then(|| Outcome::Failed { error: "Unavailable".into(), retry_after: None, unreachable: false }));
            prop_assert!(!was_purged || world.phase() == Phase::Purged);
            was_purged = world.phase() == Phase::Purged;
            // A settled state is a fixpoint: no status write at rest.
            if decision.actions.is_empty() {
                let again = world.decide(now);
                prop_assert_eq!(&again.status, &world.status);
                prop_assert!(again.actions.is_empty());
            }
            if world.released {
                prop_assert_eq!(world.phase(), Phase::Purged);
            }
        }
        prop_assert!(world.applied.values().all(|n| *n == 1), "a side effect ran twice: {:?}", world.applied);
    }

    /// Restarting (re-deciding from persisted status at any later moment) never moves
    /// a deadline.
    #[test]
    fn deadlines_survive_restarts(offset in 0i64..3_600, later in 0i64..3_000) {
        let mut world = World::new(DirectoryUserSpec { active: false, ..person() }, policy("1h", "2h"));
        let t0 = at("2025-03-01T00:00:00Z") + Duration::seconds(offset);
        world.settle(t0);
        let due = world.status.deprovision_due_time;
        let restarted = World { status: world.status.clone(), ..World::new(world.spec.clone(), world.policy.clone()) };
        let decision = restarted.decide(t0 + Duration::seconds(later));
        prop_assert_eq!(decision.status.deprovision_due_time, due);
        prop_assert_eq!(decision.wake_at, due);
    }
}

// ------------------------------------------------ the documented phase table

/// One exit of a phase: what happens, and where the user goes.
struct Exit {
    what: &'static str,
    /// Changes the world (spec or time) from the phase's starting point; returns the
    /// time to settle at.
    apply: fn(&mut World) -> DateTime<Utc>,
    to: Phase,
}

/// One row of `docs/lifecycle.md`'s phase table.
struct PhaseRow {
    phase: Phase,
    meaning: &'static str,
    leaves_when: &'static str,
    /// Puts a fresh world into `phase` (policy: 1 h quarantine, 2 h purge deadline).
    enter: fn(&mut World),
    exits: &'static [Exit],
    /// Changes that must not move the user out of `phase`.
    holds: &'static [Exit],
}

const T0: &str = "2025-03-01T00:00:00Z";

fn deactivated_at_t0(world: &mut World) {
    world.settle(at(T0));
    world.spec.active = false;
    world.settle(at(T0));
}

const PHASE_TABLE: &[PhaseRow] = &[
    PhaseRow {
        phase: Phase::Active,
        meaning: "has access",
        leaves_when: "a trigger holds",
        enter: |world| {
            world.settle(at(T0));
        },
        exits: &[
            Exit {
                what: "deactivated",
                apply: |w| {
                    w.spec.active = false;
                    at(T0)
                },
                to: Phase::Quarantined,
            },
            Exit {
                what: "termination date arrives",
                apply: |w| {
                    w.spec.termination_date = Some(date("2025-03-02"));
                    at("2025-03-02T00:00:00Z")
                },
                to: Phase::Quarantined,
            },
        ],
        holds: &[],
    },
    PhaseRow {
        phase: Phase::Held,
        meaning: "would leave, held by the mass-deprovisioning guard",
        leaves_when: "the trigger clears (→ `Active`), the removals are approved (→ `Quarantined`) or rejected (→ `Active`)",
        enter: |world| {
            world.settle(at(T0));
            world.hold = true;
            world.spec.active = false;
            world.generation += 1;
            world.settle(at(T0));
        },
        exits: &[
            Exit {
                what: "trigger clears",
                apply: |w| {
                    w.spec.active = true;
                    at(T0)
                },
                to: Phase::Active,
            },
            Exit {
                what: "the Tenant's removals are approved",
                apply: |w| {
                    w.approve_removals = Some("a1".into());
                    at(T0)
                },
                to: Phase::Quarantined,
            },
            Exit {
                what: "the Tenant's removals are rejected",
                apply: |w| {
                    w.reject_removals = Some("r1".into());
                    at(T0)
                },
                to: Phase::Active,
            },
        ],
        holds: &[],
    },
    PhaseRow {
        phase: Phase::Quarantined,
        meaning: "access revoked (stage 1); reversible",
        leaves_when: "the trigger clears (→ `Active`) or `deprovisionDueTime` arrives",
        enter: deactivated_at_t0,
        exits: &[
            Exit {
                what: "trigger clears",
                apply: |w| {
                    w.spec.active = true;
                    at("2025-03-01T00:30:00Z")
                },
                to: Phase::Active,
            },
            Exit {
                what: "deprovisionDueTime arrives",
                apply: |w| w.status.deprovision_due_time.expect("scheduled"),
                to: Phase::Deprovisioning,
            },
        ],
        holds: &[],
    },
    PhaseRow {
        phase: Phase::Deprovisioning,
        meaning: "stage-2 steps running, each recorded in `status.steps`",
        leaves_when: "every step succeeded or was turned off",
        enter: |world| {
            deactivated_at_t0(world);
            let due = world.status.deprovision_due_time.expect("scheduled");
            world.settle_with(due, |step| {
                (step == StepName::TransferCalendarEvents).then(|| Outcome::Failed {
                    error: "calendar unavailable".into(),
                    retry_after: None,
                    unreachable: false,
                })
            });
        },
        exits: &[Exit {
            what: "every step succeeds",
            apply: |_| at("2025-03-01T01:10:00Z"),
            to: Phase::Deprovisioned,
        }],
        holds: &[],
    },
    PhaseRow {
        phase: Phase::Deprovisioned,
        meaning: "commitments handed over, PII anonymized downstream",
        leaves_when: "`purgeDueTime` arrives (→ `Purged`), or the person is rehired, with a hire date after the termination (→ `Active`); `active: true` alone never brings them back",
        enter: |world| {
            deactivated_at_t0(world);
            let due = world.status.deprovision_due_time.expect("scheduled");
            world.settle(due);
        },
        exits: &[
            Exit {
                what: "purgeDueTime arrives",
                apply: |w| w.status.purge_due_time.expect("scheduled"),
                to: Phase::Purged,
            },
            Exit {
                what: "rehired",
                apply: |w| {
                    w.spec.active = true;
                    w.spec.termination_date = Some(date("2025-02-28"));
                    w.spec.hire_date = Some(date("2025-03-02"));
                    at("2025-03-01T01:30:00Z")
                },
                to: Phase::Active,
            },
        ],
        holds: &[Exit {
            what: "reactivated without a rehire (a GitOps revert)",
            apply: |w| {
                w.spec.active = true;
                at("2025-03-01T01:30:00Z")
            },
            to: Phase::Deprovisioned,
        }],
    },
    PhaseRow {
        phase: Phase::Purged,
        meaning: "PII gone downstream and from the object",
        leaves_when: "never: terminal",
        enter: |world| {
            deactivated_at_t0(world);
            let due = world.status.purge_due_time.expect("scheduled");
            world.settle(world.status.deprovision_due_time.expect("scheduled"));
            world.settle(due);
        },
        exits: &[],
        holds: &[Exit {
            what: "rehired",
            apply: |w| {
                w.spec.active = true;
                w.spec.hire_date = Some(date("2030-01-01"));
                at("2030-01-01T00:00:00Z")
            },
            to: Phase::Purged,
        }],
    },
];

/// `docs/lifecycle.md`'s phase table, row by row, is this table, and `step` does what
/// each row says: every exit named in "leaves when" is driven and lands where stated.
#[test]
fn the_phase_table_of_the_docs_is_what_step_does() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/lifecycle.md"
    ))
    .expect("read docs/lifecycle.md");
    let documented: Vec<String> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| phase |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = PHASE_TABLE
        .iter()
        .map(|r| format!("| `{}` | {} | {} |", r.phase, r.meaning, r.leaves_when))
        .collect();
    assert_eq!(
        documented, expected,
        "docs/lifecycle.md's phase table and PHASE_TABLE differ"
    );
    assert_eq!(
        PHASE_TABLE.iter().map(|r| r.phase).collect::<Vec<_>>(),
        Phase::ALL,
        "every phase has a row, in order"
    );

    for row in PHASE_TABLE {
        let fresh = || {
            let mut world = World::new(person(), policy("1h", "2h"));
            (row.enter)(&mut world);
            assert_eq!(world.phase(), row.phase, "entering {}", row.phase);
            world.transitions.clear();
            world
        };
        for exit in row.exits {
            let mut world = fresh();
            let now = (exit.apply)(&mut world);
            world.settle(now);
            let first = world
                .transitions
                .first()
                .unwrap_or_else(|| panic!("{}: {} changed nothing", row.phase, exit.what));
            assert_eq!(
                (first.from, first.to),
                (row.phase, exit.to),
                "{}: {}",
                row.phase,
                exit.what
            );
        }
        for hold in row.holds {
            let mut world = fresh();
            let now = (hold.apply)(&mut world);
            world.settle(now);
            assert!(
                world.transitions.iter().all(|t| t.from != row.phase),
                "{}: {} must not move it: {:?}",
                row.phase,
                hold.what,
                world.transitions
            );
            assert_eq!(world.phase(), hold.to, "{}: {}", row.phase, hold.what);
        }
    }
}

// ------------------------------------------------------ one-off requests

#[test]
fn a_deprovision_now_request_holds_when_the_annotation_goes() {
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let t0 = at(T0);
    world.settle(t0);
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(world.status.trigger, Some(Trigger::DeprovisionNow));
    assert_eq!(
        world.status.handled_requests.deprovision_now, world.deprovision_now,
        "the request is acknowledged in status"
    );
    // A GitOps tool removes the annotation: nothing is undone.
    world.deprovision_now = None;
    world.settle(t0 + Duration::minutes(1));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(world.status.reversals, 0);
}

#[test]
fn a_handled_request_is_not_acted_on_twice() {
    let mut world = World::new(person(), policy("1h", "720h")).deprovisioned_now();
    world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    // Rehired: back to Active; the old annotation value is still on the object.
    world.spec.termination_date = Some(date("2025-03-01"));
    world.spec.hire_date = Some(date("2025-03-02"));
    world.settle(at("2025-03-02T00:00:00Z"));
    assert_eq!(world.phase(), Phase::Active);
    world.settle(at("2025-03-02T01:00:00Z"));
    assert_eq!(
        world.phase(),
        Phase::Active,
        "the same value is no new request"
    );
    // A new value is a new request.
    world.request_deprovision_now();
    world.settle(at("2025-03-02T02:00:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(world.status.episode, 2);
}

#[test]
fn a_gitops_revert_never_reactivates_an_anonymized_user() {
    let mut world = World::new(person(), policy("1h", "2h"));
    world.settle(at(T0));
    world.spec.active = false;
    world.settle(at(T0));
    world.settle(at("2025-03-01T01:00:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    // Flux puts back what Git says: active again, the original hire date.
    world.spec.active = true;
    world.spec.hire_date = Some(date("2020-01-06"));
    world.settle(at("2025-03-01T01:30:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    world.settle(at("2025-03-01T02:00:00Z"));
    assert_eq!(world.phase(), Phase::Purged, "the purge stays on schedule");
}

#[test]
fn a_retry_request_runs_failed_steps_at_once() {
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let t0 = at(T0);
    world.settle_with(t0, |step| {
        (step == StepName::TransferRules).then(|| Outcome::Failed {
            error: "learning platform unavailable (HTTP 503)".into(),
            retry_after: Some(Duration::minutes(10)),
            unreachable: false,
        })
    });
    assert_eq!(
        world.step_state(StepName::TransferRules),
        Some(StepState::Failed)
    );
    assert!(
        world.decide(t0 + Duration::seconds(1)).actions.is_empty(),
        "backing off"
    );
    world.retry = Some("1".into());
    let decision = world.decide(t0 + Duration::seconds(1));
    assert_eq!(
        decision.actions.first().map(|a| a.step),
        Some(StepName::TransferRules)
    );
    assert_eq!(decision.status.handled_requests.retry.as_deref(), Some("1"));
    world.settle(t0 + Duration::seconds(1));
    assert_eq!(world.phase(), Phase::Deprovisioned);
}

#[test]
fn an_approval_lets_a_held_user_leave() {
    let mut world = World::new(person(), Policy::default());
    world.spec.active = false;
    world.status.phase = Phase::Held;
    world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Held, "held until approved");
    world.approve = Some("batch-1".into());
    world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(world.transitions.last().unwrap().reason, "Approved");
}

/// A condition's status, `None` when it is absent.
fn present(status: &DirectoryUserStatus, kind: &str) -> Option<roster_api::ConditionStatus> {
    status
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .map(|c| c.status)
}

fn condition<'a>(status: &'a DirectoryUserStatus, kind: &str) -> &'a roster_api::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .unwrap_or_else(|| panic!("no {kind} condition"))
}

#[test]
fn a_step_that_keeps_failing_stalls_the_user_for_kstatus() {
    use roster_api::ConditionStatus::{False, True};
    let mut world = World::new(person(), Policy::default()).deprovisioned_now();
    let mut now = at(T0);
    let failing = |step| {
        (step == StepName::RemoveFromGroups).then(|| Outcome::Failed {
            error: "learning platform rejected the request (HTTP 422: Invalid group)".into(),
            retry_after: None,
            unreachable: false,
        })
    };
    world.settle_with(now, failing);
    assert_eq!(condition(&world.status, "Reconciling").status, True);
    // kstatus's abnormal-true conditions are there only while True.
    assert_eq!(present(&world.status, "Stalled"), None);
    for _ in 0..super::conditions::STALL_AFTER_ATTEMPTS {
        now = world
            .status
            .steps
            .iter()
            .filter_map(|s| s.next_retry_time)
            .max()
            .unwrap();
        world.settle_with(now, failing);
    }
    let stalled = condition(&world.status, "Stalled");
    assert_eq!(stalled.status, True);
    assert_eq!(stalled.reason, "StepFailing");
    assert!(
        stalled.message.contains("RemoveFromGroups failed"),
        "{}",
        stalled.message
    );
    // kstatus reads Reconciling before Stalled: it must be gone now.
    assert_eq!(present(&world.status, "Reconciling"), None);
    assert_eq!(condition(&world.status, "Ready").status, False);
    // Once the step succeeds, both clear.
    world.settle(now + Duration::minutes(10));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert_eq!(present(&world.status, "Stalled"), None);
    assert_eq!(present(&world.status, "Reconciling"), None);
    assert_eq!(condition(&world.status, "Ready").status, True);
}

/// Joiners and movers: only an Active person is provisioned and synced; a leaver's
/// record waits for anonymization, and a purged one is never provisioned again.
#[test]
fn only_active_people_are_provisioned_and_synced() {
    use crate::sync::SyncOp;
    let mut world = World::new(person(), policy("1h", "720h"));
    let t0 = at("2025-03-01T00:00:00Z");
    world.settle(t0);
    assert_eq!(
        world.status.account.provisioned,
        Some(roster_api::Provisioning::Created)
    );
    assert!(world.status.account.profile.full_name.is_some());
    assert!(world.decide(t0).sync.is_empty(), "settled: no call");

    // A mover while Active: one update.
    world.spec.title = Some("Lead".into());
    let decision = world.decide(t0);
    assert!(matches!(&decision.sync[..], [a] if matches!(a.op, SyncOp::Update(_))));
    world.settle(t0);

    // A leaver: edits during the quarantine and after it are not sent.
    world.spec.active = false;
    world.settle(t0);
    assert_eq!(world.phase(), Phase::Quarantined);
    world.spec.title = Some("Director".into());
    assert!(world.decide(t0).sync.is_empty(), "quarantined: no sync");
    world.settle(t0 + Duration::hours(1));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    assert!(
        world.status.account.profile.is_empty(),
        "anonymized: no digest of the platform's old profile stays"
    );
    assert!(world.decide(t0 + Duration::hours(2)).sync.is_empty());
    world.settle(t0 + Duration::days(30));
    assert_eq!(world.phase(), Phase::Purged);
    // A source re-applies the whole record: scrubbed again, never provisioned.
    world.spec = person();
    let decision = world.decide(t0 + Duration::days(31));
    assert!(decision.sync.is_empty() && decision.scrub_pii);
}

#[test]
fn a_rehire_sends_the_profile_again_before_access_is_restored() {
    use crate::sync::{SyncOp, SyncedField};
    let spec = DirectoryUserSpec {
        termination_date: Some(date("2025-03-01")),
        title: Some("Engineer".into()),
        ..person()
    };
    let mut world = World::new(spec, policy("1h", "720h"));
    world.settle(at("2025-02-01T00:00:00Z"));
    world.settle(at("2025-03-01T00:00:00Z"));
    world.settle(at("2025-03-01T01:00:00Z"));
    assert_eq!(world.phase(), Phase::Deprovisioned);
    world.spec.hire_date = Some(date("2025-04-01"));
    let decision = world.decide(at("2025-04-01T00:00:00Z"));
    // The shell runs `sync` before `actions`: the anonymized account gets its profile
    // back (the platform refuses to restore access to an anonymized person).
    let [sync] = &decision.sync[..] else {
        panic!("{:?}", decision.sync)
    };
    let SyncOp::Update(fields) = &sync.op else {
        panic!("{sync:?}")
    };
    let names: Vec<SyncedField> = fields.iter().map(|(f, _)| *f).collect();
    assert!(names.contains(&SyncedField::FullName) && names.contains(&SyncedField::Title));
    assert_eq!(decision.actions[0].step, StepName::RestoreAccess);
}

#[test]
fn a_suspended_tenant_or_a_dry_run_policy_makes_no_sync_call() {
    let t0 = at("2025-03-01T00:00:00Z");
    let mut suspended = World::new(person(), Policy::default());
    suspended.tenant.suspended = true;
    let decision = suspended.decide(t0);
    assert!(decision.sync.is_empty());
    let ready = decision
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .unwrap();
    assert_eq!(
        ready.reason, "TenantSuspended",
        "the waiting call is reported"
    );
    let dry = World::new(
        person(),
        Policy {
            dry_run: true,
            ..Policy::default()
        },
    );
    assert!(dry.decide(t0).sync.is_empty());
}

#[test]
fn failing_sync_calls_report_and_then_stall() {
    let mut world = World::new(person(), Policy::default());
    let t0 = at("2025-03-01T00:00:00Z");
    let mut now = t0;
    for attempt in 1..=crate::conditions::STALL_AFTER_ATTEMPTS {
        let decision = world.decide(now);
        assert_eq!(decision.sync.len(), 1, "attempt {attempt}");
        world.status = decision.status;
        let failed = crate::sync::SyncOutcome::Failed {
            error: "learning platform unavailable (HTTP 503)".into(),
            retry_after: None,
            unreachable: false,
        };
        crate::sync::record_sync_outcome(&mut world.status, UID, &decision.sync[0], failed, now);
        let retry = world.status.account.next_retry_time.unwrap();
        assert_eq!(
            world.decide(now).wake_at,
            Some(retry),
            "wakes for the retry"
        );
        now = retry;
    }
    let decision = world.decide(now);
    let get = |kind: &str| {
        decision
            .status
            .conditions
            .iter()
            .find(|c| c.r#type == kind)
            .cloned()
            .unwrap()
    };
    assert_eq!(get("Stalled").reason, "SyncFailing");
    assert!(get("Stalled").message.contains("HTTP 503"));
    assert_eq!(get("Ready").reason, "SyncFailed");
}

/// The guard holds a provisioned person's removal; a rejection sends them back to
/// Active, where they stay while the record is unchanged, with a condition saying why.
#[test]
fn a_rejected_removal_stays_rejected_until_the_record_changes() {
    let mut world = World::new(person(), Policy::default());
    world.settle(at(T0));
    assert!(world.status.account.provisioned.is_some());
    world.hold = true;
    world.approve_removals = Some("a0".into());
    world.spec.active = false;
    world.generation += 1;
    let decision = world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Held);
    assert!(
        decision.guarded_removal || world.transitions.iter().any(|t| t.reason == "HeldByGuard")
    );
    assert!(decision.actions.is_empty(), "access is not revoked");
    assert_eq!(
        world.status.removal_guard.held_approve_token.as_deref(),
        Some("a0")
    );
    // The same approval value as when held is no approval.
    world.settle(at(T0) + Duration::minutes(5));
    assert_eq!(world.phase(), Phase::Held);

    world.reject_removals = Some("r1".into());
    world.settle(at(T0) + Duration::minutes(6));
    assert_eq!(world.phase(), Phase::Active);
    assert_eq!(world.transitions.last().unwrap().reason, "RemovalRejected");
    let rejected = condition(&world.status, "RemovalRejected");
    assert!(rejected.message.contains("record says the person left"));
    // Still inactive in the record, the guard open again: nothing happens.
    world.hold = false;
    world.settle(at(T0) + Duration::minutes(10));
    assert_eq!(world.phase(), Phase::Active);

    // The record changes (another edit while still inactive): the trigger counts again.
    world.generation += 1;
    let decision = world.decide(at(T0) + Duration::minutes(11));
    assert!(decision.guarded_removal);
    world.settle(at(T0) + Duration::minutes(11));
    assert_eq!(world.phase(), Phase::Quarantined);
    assert!(
        world
            .status
            .conditions
            .iter()
            .all(|c| c.r#type != "RemovalRejected"),
        "the rejection is over"
    );
    assert_eq!(
        world.status.removal_guard.admitted_time,
        Some(at(T0) + Duration::minutes(11)),
        "an admitted removal counts in the window"
    );
}

#[test]
fn an_approved_removal_does_not_count_in_the_window() {
    let mut world = World::new(person(), Policy::default());
    world.settle(at(T0));
    world.hold = true;
    world.spec.active = false;
    world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Held);
    world.approve_removals = Some("a1".into());
    world.settle(at(T0));
    assert_eq!(world.phase(), Phase::Quarantined);
    assert_eq!(world.transitions.last().unwrap().reason, "Approved");
    assert_eq!(world.status.removal_guard.admitted_time, None);
}

#[test]
fn the_guard_ignores_who_never_had_an_account_and_deprovision_now() {
    // Never provisioned: the removal takes nothing away.
    let mut world = World::new(person(), Policy::default());
    world.hold = true;
    world.spec.active = false;
    world.status.account.provisioned = None;
    let decision = world.decide(at(T0));
    assert!(!decision.guarded_removal);
    assert_eq!(decision.status.phase, Phase::Quarantined);
    // An administrator's deprovision-now is a decision about one person.
    let mut world = World::new(person(), Policy::default());
    world.settle(at(T0));
    world.hold = true;
    world.request_deprovision_now();
    world.settle(at(T0));
    assert_ne!(world.phase(), Phase::Held);
}
