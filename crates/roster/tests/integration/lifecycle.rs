//! The lifecycle end to end: the operator (in-process, scoped to the test's
//! namespace) against the real API server, with in-memory effects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{
    DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::await_condition;
use roster::effects::memory::MemoryEffects;
use roster_api::{
    DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec, ObjectDeletionMode,
    Phase, StepName, StepState, Tenant, TenantSpec,
};
use roster_lifecycle::pii;
use serde_json::json;

use crate::support::{Operator, TestEnv, WAIT_TIMEOUT, apply, wait_phase};

/// A Tenant "acme" with its Secret and a policy "standard" with the given durations.
async fn tenant(env: &TestEnv, quarantine: &str, purge: &str, on_delete: ObjectDeletionMode) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("lms".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".to_string(), "t0k3n".to_string())])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: quarantine.into(),
            purge_deadline: purge.into(),
            on_object_deletion: on_delete,
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let tenant = Tenant::new(
        "acme",
        TenantSpec {
            time_zone: "Europe/Berlin".into(),
            ..crate::support::tenant_spec("http://127.0.0.1:1/api/v1")
        },
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
}

fn person(employee_id: &str) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: employee_id.into(),
        full_name: format!("Testperson Numero {employee_id}"),
        email: format!("testperson.{employee_id}@example.com"),
        ..Default::default()
    }
}

fn user_name(employee_id: &str) -> String {
    format!("e-{}", employee_id.to_ascii_lowercase())
}

async fn create_user(env: &TestEnv, spec: DirectoryUserSpec) -> String {
    let name = user_name(&spec.employee_id);
    apply(
        &env.api::<DirectoryUser>(),
        &name,
        &DirectoryUser::new(&name, spec),
    )
    .await;
    name
}

async fn merge_spec(env: &TestEnv, name: &str, spec: serde_json::Value) {
    env.api::<DirectoryUser>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap_or_else(|err| panic!("patch {name}: {err}"));
}

async fn wait_gone(env: &TestEnv, name: &str) {
    let condition = |user: Option<&DirectoryUser>| user.is_none();
    tokio::time::timeout(
        WAIT_TIMEOUT,
        await_condition(env.api::<DirectoryUser>(), name, condition),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} was not deleted within {WAIT_TIMEOUT:?}"))
    .expect("watch user");
}

fn assert_no_pii_in_status(user: &DirectoryUser, spec: &DirectoryUserSpec) {
    let status = serde_json::to_string(&user.status).unwrap();
    for value in pii::personal_values(spec) {
        assert!(!status.contains(&value), "status holds PII");
    }
}

/// Waits (watching) until the user's `step` has succeeded.
async fn wait_step(env: &TestEnv, name: &str, step: StepName) -> DirectoryUser {
    let done = move |u: Option<&DirectoryUser>| {
        u.is_some_and(|u| step_state(u, step) == Some(StepState::Succeeded))
    };
    tokio::time::timeout(
        WAIT_TIMEOUT,
        await_condition(env.api::<DirectoryUser>(), name, done),
    )
    .await
    .unwrap_or_else(|_| panic!("{step:?} of {name} did not succeed within {WAIT_TIMEOUT:?}"))
    .expect("watch user")
    .expect("user exists")
}

fn step_state(user: &DirectoryUser, name: StepName) -> Option<StepState> {
    user.status
        .as_ref()?
        .steps
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.state)
}

#[tokio::test]
async fn a_leaver_goes_from_active_to_purged() {
    let env = TestEnv::new("lifecycle-full").await;
    tenant(&env, "2s", "4s", ObjectDeletionMode::Quarantine).await;
    let effects = Arc::new(MemoryEffects::new());
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let spec = person("00101");
    let name = create_user(&env, spec.clone()).await;
    let active = wait_phase(&env, &name, Phase::Active).await;
    assert!(
        active
            .finalizers()
            .iter()
            .any(|f| f == roster::controller::FINALIZER)
    );

    merge_spec(&env, &name, json!({ "active": false })).await;
    let quarantined = wait_phase(&env, &name, Phase::Quarantined).await;
    let status = quarantined.status.clone().unwrap();
    let due = status.deprovision_due_time.unwrap();
    assert_eq!(
        due - status.trigger_time.unwrap(),
        chrono::Duration::seconds(2)
    );
    assert_no_pii_in_status(&quarantined, &spec);

    let deprovisioned = wait_phase(&env, &name, Phase::Deprovisioned).await;
    for step in roster_lifecycle::STAGE_TWO {
        assert_eq!(
            step_state(&deprovisioned, step),
            Some(StepState::Succeeded),
            "{step:?}"
        );
    }
    let purged = wait_phase(&env, &name, Phase::Purged).await;
    assert!(
        !pii::has_pii(&purged.spec),
        "the record still holds personal data after purge"
    );
    assert_no_pii_in_status(&purged, &spec);
    let kinds: Vec<StepName> = effects
        .calls()
        .iter()
        .filter(|c| c.applied)
        .map(|c| c.step)
        .collect();
    assert_eq!(
        kinds.len(),
        8,
        "revoke, six stage-2 steps, purge: {kinds:?}"
    );
    assert!(effects.applied().values().all(|n| *n == 1));
    let events =
        crate::support::kubectl(&["get", "events", "-n", &env.namespace, "-o", "json"]).await;
    events.assert_success("get events");
    for reason in [
        "Deactivated",
        "QuarantineEnded",
        "StepsCompleted",
        "PIIPurged",
    ] {
        assert!(events.stdout.contains(reason), "no {reason} event");
    }
    assert!(
        !events.stdout.contains(&spec.email) && !events.stdout.contains(&spec.full_name),
        "events hold PII"
    );
}

#[tokio::test]
async fn reversal_during_quarantine_restores_access() {
    let env = TestEnv::new("lifecycle-reversal").await;
    tenant(&env, "1h", "720h", ObjectDeletionMode::Quarantine).await;
    let effects = Arc::new(MemoryEffects::new());
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let name = create_user(
        &env,
        DirectoryUserSpec {
            active: false,
            ..person("00102")
        },
    )
    .await;
    wait_phase(&env, &name, Phase::Quarantined).await;
    merge_spec(&env, &name, json!({ "active": true })).await;
    wait_phase(&env, &name, Phase::Active).await;
    let user = wait_step(&env, &name, StepName::RestoreAccess).await;
    let status = user.status.unwrap();
    assert_eq!(status.reversals, 1);
    assert!(status.last_reversal_time.is_some());
    assert_eq!(status.deprovision_due_time, None);
}

#[tokio::test]
async fn a_rehire_reactivates_a_terminated_person() {
    let env = TestEnv::new("lifecycle-rehire").await;
    tenant(&env, "1h", "720h", ObjectDeletionMode::Quarantine).await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    // Terminated last week: well inside the purge deadline (720h), so the person waits
    // out the quarantine (1h from when roster first sees the date).
    let spec = DirectoryUserSpec {
        hire_date: Some("2020-01-06".parse().unwrap()),
        termination_date: Some(Utc::now().date_naive() - chrono::Days::new(7)),
        ..person("00103")
    };
    let name = create_user(&env, spec).await;
    let quarantined = wait_phase(&env, &name, Phase::Quarantined).await;
    assert_eq!(
        quarantined.status.unwrap().trigger,
        Some(roster_api::Trigger::TerminationDate)
    );
    merge_spec(
        &env,
        &name,
        json!({ "hireDate": Utc::now().date_naive().to_string() }),
    )
    .await;
    let user = wait_phase(&env, &name, Phase::Active).await;
    assert_eq!(user.status.unwrap().reversals, 1);
}

#[tokio::test]
async fn deprovision_now_skips_the_quarantine() {
    let env = TestEnv::new("lifecycle-now").await;
    tenant(&env, "168h", "720h", ObjectDeletionMode::Quarantine).await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let name = create_user(&env, person("00104")).await;
    wait_phase(&env, &name, Phase::Active).await;
    env.api::<DirectoryUser>()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                roster_api::DEPROVISION_NOW_ANNOTATION: "1"
            } } })),
        )
        .await
        .expect("annotate roster.dev/deprovision-now");
    let user = wait_phase(&env, &name, Phase::Deprovisioned).await;
    let status = user.status.unwrap();
    assert_eq!(status.trigger, Some(roster_api::Trigger::DeprovisionNow));
    assert!(status.deprovision_due_time.unwrap() <= status.deprovisioned_time.unwrap());
}

#[tokio::test]
async fn kubectl_delete_under_both_policy_modes() {
    for mode in [
        ObjectDeletionMode::Quarantine,
        ObjectDeletionMode::Immediate,
    ] {
        let env = TestEnv::new(&format!("lifecycle-delete-{mode:?}")).await;
        tenant(&env, "3s", "720h", mode).await;
        let effects = Arc::new(MemoryEffects::new());
        let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
        let name = create_user(&env, person("00105")).await;
        wait_phase(&env, &name, Phase::Active).await;
        let started = tokio::time::Instant::now();
        crate::support::kubectl(&[
            "delete",
            "directoryuser",
            &name,
            "-n",
            &env.namespace,
            "--wait=false",
        ])
        .await
        .assert_success("kubectl delete");
        wait_gone(&env, &name).await;
        let gone_after = started.elapsed();
        assert!(
            gone_after < Duration::from_secs(3),
            "{mode:?}: the object stayed {gone_after:?}"
        );
        if mode == ObjectDeletionMode::Quarantine {
            // The lifecycle carries on in the Departure, through the quarantine (3 s),
            // and the Departure goes once the person is purged.
            let departures = env.api::<roster_api::Departure>();
            let departure = departures.get(&name).await.expect("a Departure");
            let status = departure.status.expect("handed over with its status");
            assert_eq!(status.phase, Phase::Quarantined);
            assert_eq!(status.trigger, Some(roster_api::Trigger::ObjectDeleted));
            crate::support::wait_object(departures, &name, "purged and deleted", |d| d.is_none())
                .await;
            let elapsed = started.elapsed();
            assert!(
                elapsed >= Duration::from_secs(2),
                "{mode:?}: purged after {elapsed:?}, before the quarantine ended"
            );
        }
        let steps: Vec<StepName> = effects
            .calls()
            .iter()
            .filter(|c| c.applied)
            .map(|c| c.step)
            .collect();
        assert!(
            steps.contains(&StepName::Anonymize) && steps.contains(&StepName::Purge),
            "{mode:?}: {steps:?}"
        );
        let _ = env
            .api::<DirectoryUser>()
            .delete(&name, &DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn a_restart_mid_quarantine_does_not_move_the_deadline() {
    let env = TestEnv::new("lifecycle-restart").await;
    tenant(&env, "4s", "720h", ObjectDeletionMode::Quarantine).await;
    let effects = Arc::new(MemoryEffects::new());
    let operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let name = create_user(
        &env,
        DirectoryUserSpec {
            active: false,
            ..person("00106")
        },
    )
    .await;
    let quarantined = wait_phase(&env, &name, Phase::Quarantined).await;
    let due = quarantined.status.unwrap().deprovision_due_time.unwrap();
    operator.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the operator is down for a while
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let user = wait_phase(&env, &name, Phase::Deprovisioned).await;
    let status = user.status.unwrap();
    assert_eq!(status.deprovision_due_time, Some(due), "the deadline moved");
    let started = status
        .steps
        .iter()
        .find(|s| s.name == StepName::TransferCalendarEvents)
        .and_then(|s| s.completion_time)
        .unwrap();
    let lateness = started - due;
    println!(
        "restart lateness: {} ms (deadline {due}, first stage-2 step done {started})",
        lateness.num_milliseconds()
    );
    assert!(
        lateness >= chrono::Duration::zero(),
        "ran before the deadline"
    );
    assert!(
        lateness < chrono::Duration::seconds(1),
        "ran {} ms late",
        lateness.num_milliseconds()
    );
    assert!(effects.applied().values().all(|n| *n == 1));
}

#[tokio::test]
async fn settled_users_cause_no_writes_at_rest() {
    let seconds: u64 = std::env::var("ROSTER_AT_REST_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let env = TestEnv::new("lifecycle-at-rest").await;
    tenant(&env, "168h", "720h", ObjectDeletionMode::Quarantine).await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let api = env.api::<DirectoryUser>();
    for i in 0..100 {
        let mut spec = person(&format!("2{i:04}"));
        // A mix of settled states: active, a future termination, quarantined.
        match i % 3 {
            0 => {}
            1 => {
                spec.termination_date = Some((Utc::now() + chrono::Duration::days(30)).date_naive())
            }
            _ => spec.active = false,
        }
        create_user(&env, spec).await;
    }
    // Settled: every user has a status whose Ready condition is True for this generation.
    let settled = |users: &[DirectoryUser]| {
        users.len() == 100
            && users.iter().all(|u| {
                u.status.as_ref().is_some_and(|s| {
                    s.observed_generation == u.metadata.generation
                        && s.conditions.iter().any(|c| {
                            c.r#type == "Ready" && c.status == roster_api::ConditionStatus::True
                        })
                })
            })
    };
    crate::support::poll("100 users settled", Duration::from_millis(250), || {
        let api = api.clone();
        async move {
            api.list(&Default::default())
                .await
                .ok()
                .filter(|l| settled(&l.items))
                .map(|_| ())
        }
    })
    .await;
    let list = api.list(&Default::default()).await.unwrap();
    let version = list.metadata.resource_version.clone().unwrap();
    // Count every change to any DirectoryUser from that list's resourceVersion on.
    let writes = std::sync::atomic::AtomicU32::new(0);
    let params = WatchParams::default().timeout(seconds as u32 + 30);
    let mut events = api
        .watch(&params, &version)
        .await
        .expect("watch users")
        .boxed();
    let _ = tokio::time::timeout(Duration::from_secs(seconds), async {
        while let Some(event) = events.next().await {
            match event.expect("watch event") {
                WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_) => {
                    writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
            }
        }
    })
    .await;
    let writes = writes.load(std::sync::atomic::Ordering::Relaxed);
    println!("writes at rest over {seconds} s for 100 settled users: {writes}");
    assert_eq!(writes, 0);
}

#[tokio::test]
async fn a_policy_edit_and_a_suspended_tenant_reach_users_through_their_watches() {
    let env = TestEnv::new("lifecycle-watches").await;
    tenant(&env, "1h", "720h", ObjectDeletionMode::Quarantine).await;
    let effects = Arc::new(MemoryEffects::new());
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let name = create_user(
        &env,
        DirectoryUserSpec {
            active: false,
            ..person("00107")
        },
    )
    .await;
    let quarantined = wait_phase(&env, &name, Phase::Quarantined).await;
    let triggered = quarantined.status.unwrap().trigger_time.unwrap();

    // Shortening the quarantine applies from the persisted trigger time: the user,
    // woken by the policy watch, is deprovisioned without any change to itself.
    let mut policy = env
        .api::<DeprovisionPolicy>()
        .get("standard")
        .await
        .unwrap();
    policy.metadata = ObjectMeta {
        name: policy.metadata.name.clone(),
        ..Default::default()
    };
    policy.spec.quarantine_period = "2s".into();
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let deprovisioned = wait_phase(&env, &name, Phase::Deprovisioned).await;
    assert_eq!(
        deprovisioned.status.unwrap().deprovision_due_time,
        Some(triggered + chrono::Duration::seconds(2))
    );

    // A suspended tenant runs nothing: the quarantine is recorded, access stays.
    let mut acme = env.api::<Tenant>().get("acme").await.unwrap();
    acme.metadata = ObjectMeta {
        name: acme.metadata.name.clone(),
        ..Default::default()
    };
    acme.status = None;
    acme.spec.suspend = true;
    apply(&env.api::<Tenant>(), "acme", &acme).await;
    let suspended = crate::support::poll(
        "Tenant suspended in the users' view",
        Duration::from_millis(100),
        || {
            let api = env.api::<DirectoryUser>();
            let name = name.clone();
            async move {
                let user = api.get(&name).await.ok()?;
                user.status?
                    .conditions
                    .iter()
                    .any(|c| c.r#type == "Suspended")
                    .then_some(())
            }
        },
    );
    suspended.await;
    let calls_before = effects.calls().len();
    let second = create_user(
        &env,
        DirectoryUserSpec {
            active: false,
            ..person("00108")
        },
    )
    .await;
    let held = wait_phase(&env, &second, Phase::Quarantined).await;
    assert_eq!(
        step_state(&held, StepName::RevokeAccess),
        Some(StepState::Pending)
    );
    assert_eq!(
        effects.calls().len(),
        calls_before,
        "a side effect ran while suspended"
    );

    // Resuming wakes the tenant's users: the revocation that fell due runs now.
    acme.spec.suspend = false;
    apply(&env.api::<Tenant>(), "acme", &acme).await;
    wait_step(&env, &second, StepName::RevokeAccess).await;
}
