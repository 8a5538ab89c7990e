//! Deleting a DirectoryUser under the `Quarantine` rule: the object goes at once, the
//! lifecycle carries on in a Departure, re-applying the person during the quarantine
//! takes them back, and otherwise they are deprovisioned and purged on schedule with
//! nothing of theirs left in the namespace. On the real API server, with the
//! learning-platform stand-in.

use std::time::Duration;

use kube::api::ListParams;
use roster_api::{
    Departure, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, Phase, StepName, StepState,
};
use roster_standins::lms::{Fault, LmsStandIn};

use crate::joiners::{create, joiner, name, settled, setup, standin, wait_settled};
use crate::support::{
    Operator, OperatorProcess, TestEnv, apply, effects, kubectl, wait_object, wait_status,
};

async fn quarantine(env: &TestEnv, period: &str) {
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: period.into(),
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
}

/// `kubectl delete du/<name> --wait=false`; returns how long until the object was gone.
async fn delete(env: &TestEnv, name: &str) -> Duration {
    let started = tokio::time::Instant::now();
    kubectl(&[
        "delete",
        "directoryuser",
        name,
        "-n",
        &env.namespace,
        "--wait=false",
    ])
    .await
    .assert_success("kubectl delete");
    wait_object(env.api::<DirectoryUser>(), name, "gone", |u| u.is_none()).await;
    started.elapsed()
}

/// What the person's return must look like: back Active with one reversal, access
/// restored, nothing handed over or anonymized, no second account.
async fn assert_taken_back(env: &TestEnv, lms: &LmsStandIn, id: &str) {
    let user = wait_status(env, &name(id), "taken back and settled", |s| {
        s.phase == Phase::Active
            && s.reversals == 1
            && s.steps
                .iter()
                .any(|st| st.name == StepName::RestoreAccess && st.state == StepState::Succeeded)
            && settled(s)
    })
    .await;
    assert!(user.status.unwrap().trigger.is_none());
    assert!(
        env.api::<Departure>()
            .get_opt(&name(id))
            .await
            .unwrap()
            .is_none(),
        "the Departure is gone"
    );
    let state = lms.state();
    let person = state.user(id).unwrap();
    assert_eq!(person.access, roster_connectors::lms::Access::Granted);
    assert!(!person.anonymized);
    for (operation, times) in [
        ("revokeAccess", 1),
        ("restoreAccess", 1),
        ("anonymizeUser", 0),
        ("transferRule", 0),
        ("removeGroupMember", 0),
        ("deleteAssignment", 0),
        ("purgeUser", 0),
    ] {
        let applied = state
            .calls_of(operation)
            .iter()
            .filter(|c| c.applied && c.employee_id.as_deref() == Some(id))
            .count();
        assert_eq!(applied, times, "{operation} for {id}");
    }
}

/// What leaving must look like: anonymized and purged downstream, no object left, and
/// no trace of the person's name or email in the namespace (objects and Events).
async fn assert_left(env: &TestEnv, lms: &LmsStandIn, id: &str) {
    wait_object(
        env.api::<Departure>(),
        &name(id),
        "purged and deleted",
        |d| d.is_none(),
    )
    .await;
    let person = lms.state().user(id).unwrap();
    assert!(person.anonymized && person.purged, "{id} downstream");
    assert!(
        env.api::<DirectoryUser>()
            .get_opt(&name(id))
            .await
            .unwrap()
            .is_none()
    );
    let record = joiner_of(id);
    let mut texts = Vec::new();
    for user in env
        .api::<DirectoryUser>()
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        texts.push(serde_json::to_string(&user).unwrap());
    }
    for departure in env
        .api::<Departure>()
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        texts.push(serde_json::to_string(&departure).unwrap());
    }
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    for event in events.list(&ListParams::default()).await.unwrap() {
        texts.push(serde_json::to_string(&event).unwrap());
    }
    for text in &texts {
        assert!(
            !text.contains(&record.email),
            "an email left in the namespace"
        );
        assert!(
            !text.contains(&record.full_name),
            "a name left in the namespace"
        );
    }
}

fn joiner_of(id: &str) -> roster_api::DirectoryUserSpec {
    let i: usize = id.trim_start_matches('J').parse().unwrap();
    joiner(i)
}

#[tokio::test]
async fn a_deleted_user_re_applied_within_the_quarantine_comes_back() {
    let env = TestEnv::new("departure-back").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    quarantine(&env, "1h").await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    create(&env, &joiner(1)).await;
    wait_settled(&env, "J001").await;

    let gone = delete(&env, &name("J001")).await;
    println!("deleted under Quarantine: the object was gone after {gone:?}");
    assert!(gone < Duration::from_secs(5), "held {gone:?}");
    let departure = env.api::<Departure>().get(&name("J001")).await.unwrap();
    assert_eq!(departure.status.unwrap().phase, Phase::Quarantined);
    assert_eq!(
        lms.state().user("J001").unwrap().access,
        roster_connectors::lms::Access::Revoked,
        "access revoked at once"
    );
    // The Tenant still counts the person, in the Departure's phase.
    wait_object(
        env.api::<roster_api::Tenant>(),
        "acme",
        "counted as quarantined",
        |t| {
            t.and_then(|t| t.status.as_ref())
                .and_then(|s| s.user_counts.as_ref())
                .is_some_and(|c| c.quarantined == 1 && c.active == 0)
        },
    )
    .await;

    // The GitOps revert: the same manifest again.
    create(&env, &joiner(1)).await;
    assert_taken_back(&env, &lms, "J001").await;
    assert_eq!(
        lms.state().applied_count("createUser"),
        1,
        "no second account"
    );
    assert!(lms.state().duplicates().is_empty());
}

#[tokio::test]
async fn a_deleted_user_is_deprovisioned_and_purged_on_time_and_nothing_remains() {
    let env = TestEnv::new("departure-left").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    quarantine(&env, "3s").await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    create(&env, &joiner(3)).await;
    wait_settled(&env, "J003").await;
    let gone = delete(&env, &name("J003")).await;
    println!("deleted under Quarantine: the object was gone after {gone:?}");
    assert!(gone < Duration::from_secs(5), "held {gone:?}");
    let status = env
        .api::<Departure>()
        .get(&name("J003"))
        .await
        .unwrap()
        .status
        .unwrap();
    let due = status.deprovision_due_time.unwrap();
    assert_eq!(
        due,
        status.trigger_time.unwrap() + chrono::Duration::seconds(3)
    );
    assert_left(&env, &lms, "J003").await;
    let anonymized = lms
        .state()
        .calls_of("anonymizeUser")
        .iter()
        .find(|c| c.applied)
        .map(|c| c.at)
        .unwrap();
    println!("deprovisioning due {due}, anonymized at {anonymized}");
    assert!(anonymized >= due, "not before the quarantine ended");
    assert!(lms.state().duplicates().is_empty());
}

/// Both paths at once, while the operator process is killed with SIGKILL again and
/// again: the returning person is back, the other one gone, nothing applied twice.
#[tokio::test]
async fn kill_9_changes_neither_outcome() {
    let env = TestEnv::new("departure-kill9").await;
    let lms = standin(false).await;
    lms.state()
        .add_fault(Fault::on("*").latency(Duration::from_millis(20)));
    setup(&env, &lms).await;
    quarantine(&env, "6s").await;
    for i in [1, 3] {
        create(&env, &joiner(i)).await;
    }
    let plane = crate::support::control_plane().await;
    let log = std::env::temp_dir().join(format!("roster-departures-{}.log", env.namespace));
    let mut operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    for i in [1, 3] {
        wait_settled(&env, &crate::joiners::employee_id(i)).await;
    }
    let mut kills = 0;
    let mut crash = async |operator: &mut OperatorProcess, times: usize| {
        for _ in 0..times {
            tokio::time::sleep(Duration::from_millis(100 + rand::random::<u64>() % 400)).await;
            let old = std::mem::replace(
                operator,
                OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log),
            );
            old.kill_9();
            kills += 1;
        }
    };
    for i in [1, 3] {
        kubectl(&[
            "delete",
            "directoryuser",
            &name(&crate::joiners::employee_id(i)),
            "-n",
            &env.namespace,
            "--wait=false",
        ])
        .await
        .assert_success("kubectl delete");
    }
    crash(&mut operator, 3).await;
    for i in [1, 3] {
        wait_object(
            env.api::<DirectoryUser>(),
            &name(&crate::joiners::employee_id(i)),
            "gone",
            |u| u.is_none(),
        )
        .await;
    }
    create(&env, &joiner(1)).await;
    crash(&mut operator, 4).await;
    assert_taken_back(&env, &lms, "J001").await;
    assert_left(&env, &lms, "J003").await;
    drop(operator);
    println!(
        "{kills} x kill -9: duplicates {:?}",
        lms.state().duplicates()
    );
    assert!(lms.state().duplicates().is_empty());
    assert_eq!(
        lms.state().applied_count("createUser"),
        2,
        "no second account"
    );
}

/// A tenant's exit does not wait out quarantines: deleting the Tenant erases the tenant
/// at the platform (one `DELETE /tenant`) and releases the Departures of its people at
/// once, without calls of their own.
#[tokio::test]
async fn a_tenant_exit_does_not_wait_for_quarantines() {
    use kube::api::{DeleteParams, Patch, PatchParams};
    let env = TestEnv::new("departure-exit").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    quarantine(&env, "1h").await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    create(&env, &joiner(5)).await;
    wait_settled(&env, "J005").await;
    delete(&env, &name("J005")).await;
    let tenants = env.api::<roster_api::Tenant>();
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "deletionProtection": false } })),
        )
        .await
        .unwrap();
    // The Tenant controller debounces user changes: wait for its finalizer first.
    wait_object(tenants.clone(), "acme", "roster's finalizer", |t| {
        t.is_some_and(|t| {
            t.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == "roster.dev/tenant-in-use"))
        })
    })
    .await;
    lms.state().clear_calls();
    let started = tokio::time::Instant::now();
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_object(env.api::<Departure>(), &name("J005"), "released", |d| {
        d.is_none()
    })
    .await;
    wait_object(tenants, "acme", "gone", |t| t.is_none()).await;
    println!(
        "tenant exit with a person in quarantine: done after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let operations: Vec<String> = lms
        .state()
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        operations,
        vec!["deleteTenant"],
        "only the tenant's full deletion reached the platform"
    );
}

/// A Departure whose hand-over finds the one stage-2 slot taken (another leaver's hand-over
/// hangs in a slow call) is woken when that slot is released, as a waiting
/// DirectoryUser is: before, only a fallback requeue of 60-90 s brought it back.
#[tokio::test]
async fn a_departure_waiting_for_a_stage_two_slot_is_woken_when_it_is_released() {
    let env = TestEnv::new("departure-slot").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    quarantine(&env, "2s").await;
    // Two reconciles at once: one stage-2 slot.
    let options = roster::controller::Options {
        namespaces: vec![env.namespace.clone()],
        concurrency: 2,
        ..Default::default()
    };
    let _operator = Operator::start_with(&env.client, options, effects(&env));
    for i in [1, 2] {
        create(&env, &joiner(i)).await;
        wait_settled(&env, &crate::joiners::employee_id(i)).await;
    }
    // The first hand-over to start holds the slot for 6 s.
    let hang = Duration::from_secs(6);
    lms.state()
        .add_fault(Fault::on("listUserRules").latency(hang).times(1));
    env.api::<DirectoryUser>()
        .patch(
            &name("J001"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"active": false}})),
        )
        .await
        .unwrap();
    // A second later, so that J001's hand-over starts first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    delete(&env, &name("J002")).await;
    let due = env
        .api::<Departure>()
        .get(&name("J002"))
        .await
        .unwrap()
        .status
        .unwrap()
        .deprovision_due_time
        .unwrap();
    let anonymized = |id: &str| {
        lms.state()
            .calls_of("anonymizeUser")
            .iter()
            .find(|c| c.applied && c.employee_id.as_deref() == Some(id))
            .map(|c| c.at)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(50);
    while anonymized("J002").is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (first, second) = (anonymized("J001"), anonymized("J002"));
    println!("J002's quarantine ended {due}; anonymized: J001 {first:?}, J002 {second:?}");
    let second = second.expect("J002's Departure was not handed over within 50 s of its deletion");
    let late = (second - due).to_std().unwrap_or_default();
    assert!(
        late < Duration::from_secs(25),
        "J002 handed over {late:?} after its quarantine ended (a slow hand-over holds the slot {hang:?})"
    );
    assert!(lms.state().duplicates().is_empty());
}
