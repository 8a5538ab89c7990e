//! A tenant's exit on the real API server with the learning-platform stand-in: one
//! `DELETE /tenant` at the platform, then every object of the tenant, then the exit's
//! receipt and the Tenant itself, resumably (kill -9 mid-exit), and only without
//! deletion protection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use roster_api::{
    Departure, DirectoryGroup, DirectoryGroupSpec, DirectoryUser, DirectoryUserSpec,
    ErasureReceipt, Phase, ReceiptKind, Tenant,
};
use roster_standins::lms::LmsStandIn;

use crate::joiners::{create, joiner, name, settled, setup, standin, wait_settled};
use crate::support::{
    Operator, OperatorProcess, TestEnv, apply, effects, kubectl, wait_object, wait_phase,
};

/// The receipts' signing key: a Secret labelled for roster, named by the Tenant.
pub(crate) async fn signing_key(env: &TestEnv) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("receipts".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "key".into(),
            "a-test-signing-key-of-at-least-32-bytes!".into(),
        )])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the signing key Secret");
    merge(
        env,
        serde_json::json!({ "spec": { "erasureReceipts": {
            "signingKeySecretRef": { "name": "receipts", "key": "key" } } } }),
    )
    .await;
}

async fn merge(env: &TestEnv, patch: serde_json::Value) {
    env.api::<Tenant>()
        .patch("acme", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch the Tenant");
}

/// `kubectl delete tenant acme --wait=false`, then waits until the Tenant is gone;
/// returns the time between the two.
async fn exit(env: &TestEnv) -> Duration {
    tenant_in_use(env).await;
    merge(
        env,
        serde_json::json!({ "spec": { "deletionProtection": false } }),
    )
    .await;
    let started = Instant::now();
    kubectl(&[
        "delete",
        "tenant",
        "acme",
        "-n",
        &env.namespace,
        "--wait=false",
    ])
    .await
    .assert_success("kubectl delete tenant");
    wait_object(env.api::<Tenant>(), "acme", "the Tenant gone", |t| {
        t.is_none()
    })
    .await;
    started.elapsed()
}

/// Waits until the Tenant controller has put its finalizer on (it debounces user
/// changes, so right after a burst of them it may not have reconciled yet).
async fn tenant_in_use(env: &TestEnv) {
    wait_object(
        env.api::<Tenant>(),
        "acme",
        "roster's finalizer on the Tenant",
        |t| {
            t.is_some_and(|t| {
                t.finalizers()
                    .iter()
                    .any(|f| f == "roster.dev/tenant-in-use")
            })
        },
    )
    .await;
}

fn group(name: &str) -> DirectoryGroup {
    DirectoryGroup::new(
        name,
        DirectoryGroupSpec {
            tenant_ref: "acme".into(),
            display_name: format!("Group {name}"),
            external_id: None,
        },
    )
}

async fn count<K>(env: &TestEnv) -> usize
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    env.api::<K>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

/// What every exit must leave: nothing of the tenant at the platform or in the
/// cluster, and the one receipt that ends the chain.
async fn assert_nothing_left(env: &TestEnv, lms: &LmsStandIn) {
    let left = lms.state().export();
    assert!(
        left.users.is_empty()
            && left.engagement.is_empty()
            && left.events.is_empty()
            && left.sessions.is_empty()
            && left.groups.is_empty()
            && left.assignments.is_empty()
            && left.rules.is_empty(),
        "the stand-in still holds tenant data: {left:?}"
    );
    assert_eq!(count::<DirectoryUser>(env).await, 0, "DirectoryUsers left");
    assert_eq!(count::<Departure>(env).await, 0, "Departures left");
    assert_eq!(
        count::<DirectoryGroup>(env).await,
        0,
        "DirectoryGroups left"
    );
    let receipts = env
        .api::<ErasureReceipt>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let exits = receipts
        .iter()
        .filter(|r| r.spec.kind == ReceiptKind::TenantExit)
        .count();
    assert_eq!(exits, 1, "exactly one exit receipt");
}

#[tokio::test]
async fn a_tenant_exit_erases_the_platform_once_then_the_objects_then_the_tenant() {
    let env = TestEnv::new("exit-phases").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    signing_key(&env).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    for i in 1..=4 {
        create(&env, &joiner(i)).await;
    }
    for i in 1..=4 {
        wait_settled(&env, &format!("J{i:03}")).await;
    }
    // Phases: J001/J002 Active, J003 Quarantined, J004 deleted (a Departure in
    // quarantine). (A purge and its receipt: erasure.rs.)
    create(
        &env,
        &DirectoryUserSpec {
            active: false,
            ..joiner(3)
        },
    )
    .await;
    wait_phase(&env, &name("J003"), Phase::Quarantined).await;
    kubectl(&[
        "delete",
        "du",
        &name("J004"),
        "-n",
        &env.namespace,
        "--wait=false",
    ])
    .await
    .assert_success("delete J004");
    wait_object(env.api::<Departure>(), &name("J004"), "a Departure", |d| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.phase == Phase::Quarantined)
    })
    .await;
    for g in ["g-one", "g-two"] {
        apply(&env.api::<DirectoryGroup>(), g, &group(g)).await;
    }
    assert!(settled(
        env.api::<DirectoryUser>()
            .get(&name("J001"))
            .await
            .unwrap()
            .status
            .as_ref()
            .unwrap()
    ));
    lms.state().clear_calls();

    let took = exit(&env).await;
    println!(
        "tenant exit (4 people: Active, Quarantined, a Departure; 2 groups): {took:?} from kubectl delete to the Tenant gone"
    );

    // Exactly one call reached the platform, and it was the full deletion: nobody's
    // ordinary deprovisioning raced it.
    let calls = lms.state().calls();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(operations, vec!["deleteTenant"], "calls during the exit");
    assert!(lms.state().duplicates().is_empty());
    assert_nothing_left(&env, &lms).await;
    // The exit's receipt ends the chain, which verifies.
    let report = verify_erasure(&env).await;
    assert!(report.0, "verify-erasure failed:\n{}", report.1);
    assert!(
        report
            .1
            .contains("1 receipt(s), ended by the tenant's exit"),
        "{}",
        report.1
    );
}

/// Runs `roster verify-erasure --tenant <namespace>`: (success, stdout).
pub(crate) async fn verify_erasure(env: &TestEnv) -> (bool, String) {
    let plane = crate::support::control_plane().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["verify-erasure", "--tenant", &env.namespace])
        .env("KUBECONFIG", plane.kubeconfig_path())
        .output()
        .await
        .expect("run roster verify-erasure");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!(
        "roster verify-erasure --tenant {}:\n{stdout}",
        env.namespace
    );
    (output.status.success(), stdout)
}

#[tokio::test]
async fn deletion_protection_refuses_the_exit_with_how_to_proceed() {
    let env = TestEnv::new("exit-protected").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    // The API server enforces a freshly installed admission policy once its informer
    // has it: wait for that with server-side dry runs (which run admission, delete nothing).
    crate::support::poll(
        "the admission policy enforced",
        Duration::from_millis(200),
        || async {
            let dry = kubectl(&[
                "delete",
                "tenant",
                "acme",
                "-n",
                &env.namespace,
                "--dry-run=server",
            ])
            .await;
            (!dry.success).then_some(())
        },
    )
    .await;
    let refused = kubectl(&[
        "delete",
        "tenant",
        "acme",
        "-n",
        &env.namespace,
        "--wait=false",
    ])
    .await;
    assert!(!refused.success, "the delete went through");
    println!("refused: {}", refused.stderr.trim());
    for hint in [
        "deletionProtection: true",
        "set spec.deletionProtection to false",
        "kubectl patch tenant acme",
    ] {
        assert!(
            refused.stderr.contains(hint),
            "{hint:?} missing from: {}",
            refused.stderr
        );
    }
    assert!(env.api::<Tenant>().get_opt("acme").await.unwrap().is_some());
}

/// kill -9 of the operator at random moments of an exit of 60 people: the platform
/// still erases the tenant exactly once (one idempotency key, applied once), every
/// object goes, and one receipt ends the chain.
#[tokio::test]
async fn kill_9_during_an_exit_neither_repeats_nor_skips_a_stage() {
    let env = TestEnv::new("exit-kill9").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    signing_key(&env).await;
    let plane = crate::support::control_plane().await;
    let log = std::env::temp_dir().join(format!("roster-exit-kill9-{}.log", env.namespace));
    let mut operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    let people = 60;
    for i in 1..=people {
        create(&env, &joiner(i)).await;
    }
    for i in 1..=people {
        wait_settled(&env, &format!("J{i:03}")).await;
    }
    for g in ["g-one", "g-two", "g-three"] {
        apply(&env.api::<DirectoryGroup>(), g, &group(g)).await;
    }
    lms.state().clear_calls();
    tenant_in_use(&env).await;
    merge(
        &env,
        serde_json::json!({ "spec": { "deletionProtection": false } }),
    )
    .await;
    kubectl(&[
        "delete",
        "tenant",
        "acme",
        "-n",
        &env.namespace,
        "--wait=false",
    ])
    .await
    .assert_success("kubectl delete tenant");
    let mut moments = Vec::new();
    for _ in 0..6 {
        let wait = Duration::from_millis(100 + rand::random::<u64>() % 400);
        tokio::time::sleep(wait).await; // the random moment of the next crash
        moments.push(wait.as_millis());
        operator.kill_9();
        operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    }
    println!("killed after (ms): {moments:?}");
    wait_object(env.api::<Tenant>(), "acme", "the Tenant gone", |t| {
        t.is_none()
    })
    .await;
    drop(operator);
    let state = lms.state();
    let deletes = state.calls_of("deleteTenant");
    println!(
        "DELETE /tenant sent {} time(s), applied {}",
        deletes.len(),
        state.applied_count("deleteTenant")
    );
    assert_eq!(
        state.applied_count("deleteTenant"),
        1,
        "the platform erased the tenant once"
    );
    let keys: std::collections::BTreeSet<_> =
        deletes.iter().map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(
        keys.len(),
        1,
        "every attempt carried the same key: {keys:?}"
    );
    assert!(
        state.calls().iter().all(|c| c.operation == "deleteTenant"),
        "only the full deletion reached the platform"
    );
    assert_nothing_left(&env, &lms).await;
    assert!(verify_erasure(&env).await.0);
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logs.contains("@example.com") && !logs.contains("Joiner J"),
        "operator logs hold PII"
    );
    let _ = std::fs::remove_file(&log);
}

/// The closing figure: tenant-exit time for 500 people, from `kubectl delete tenant`
/// to the Tenant gone. Slow to set up (500 accounts provisioned first), so ignored by
/// default:
/// `cargo test -p roster --test integration tenant_exit::exit_time_for_500_users -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn exit_time_for_500_users() {
    let env = TestEnv::new("exit-500").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    signing_key(&env).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    let people = 500;
    let started = Instant::now();
    for i in 1..=people {
        create(&env, &joiner(i)).await;
    }
    for i in 1..=people {
        wait_settled(&env, &format!("J{i:03}")).await;
    }
    println!("500 people provisioned in {:?}", started.elapsed());
    lms.state().clear_calls();
    // Progress as an administrator sees it, once a second.
    let tenants = env.api::<Tenant>();
    let progress = tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(Some(t)) = tenants.get_opt("acme").await else {
                break;
            };
            let ready = t
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready").cloned());
            if let Some(c) = ready {
                println!(
                    "{:>5.1}s {}: {}",
                    started.elapsed().as_secs_f64(),
                    c.reason,
                    c.message
                );
            }
        }
    });
    let took = exit(&env).await;
    progress.abort();
    println!("tenant exit, {people} users: {took:?} from kubectl delete tenant to the Tenant gone");
    assert_eq!(lms.state().applied_count("deleteTenant"), 1);
    assert_nothing_left(&env, &lms).await;
}
