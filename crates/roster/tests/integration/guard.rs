//! The mass-deprovisioning guard on the real API server: removals from any source
//! (kubectl/Git, SCIM) past the policy's thresholds within a minute are held in
//! `Held`, with their access, until the Tenant's removals are approved or rejected;
//! concurrent reconciles never admit past the limit; a restart keeps the trip.
//! (The feed side, a truncated file, is in `feeds.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use roster::effects::memory::MemoryEffects;
use roster_api::{
    DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec,
    MassDeprovisionGuard, Phase, Tenant, TenantSpec,
};
use serde_json::json;

use crate::support::{Operator, TestEnv, apply, condition, poll, wait_phase, wait_status};

/// The policy "standard" with a guard of `max_users` (and 100 %: only the count).
fn policy(max_users: i32) -> DeprovisionPolicy {
    DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            mass_deprovision_guard: MassDeprovisionGuard {
                enabled: true,
                max_users,
                max_percent: 100,
            },
            ..Default::default()
        },
    )
}

/// Tenant "acme" (learning platform: in-memory effects) and its policy.
async fn tenant(env: &TestEnv, max_users: i32) {
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
    apply(
        &env.api::<DeprovisionPolicy>(),
        "standard",
        &policy(max_users),
    )
    .await;
    let tenant = Tenant::new(
        "acme",
        TenantSpec {
            ..crate::support::tenant_spec("http://127.0.0.1:1/api/v1")
        },
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
}

fn name(i: usize) -> String {
    format!("e-g{i:03}")
}

fn person(i: usize) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: format!("G{i:03}"),
        full_name: format!("Guard Person {i}"),
        email: format!("guard.person.{i}@example.com"),
        ..Default::default()
    }
}

/// `n` users, applied as from Git, each provisioned at the platform.
async fn users(env: &TestEnv, n: usize) {
    for i in 1..=n {
        apply(
            &env.api::<DirectoryUser>(),
            &name(i),
            &DirectoryUser::new(&name(i), person(i)),
        )
        .await;
    }
    for i in 1..=n {
        wait_status(env, &name(i), "provisioned", |s| {
            s.account.provisioned.is_some()
        })
        .await;
    }
}

/// Deactivates users `range` at once, as a Git sync or `kubectl apply` of many edits.
async fn deactivate(env: &TestEnv, range: std::ops::RangeInclusive<usize>) {
    let api = env.api::<DirectoryUser>();
    let writes = range.map(|i| {
        let api = api.clone();
        async move {
            api.patch(
                &name(i),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"active": false}})),
            )
            .await
            .expect("deactivate")
        }
    });
    futures::future::join_all(writes).await;
}

/// The users of `range` by phase, once none of them is Active any more.
async fn settled_phases(
    env: &TestEnv,
    range: std::ops::RangeInclusive<usize>,
) -> BTreeMap<Phase, usize> {
    poll(
        "the removals to be decided",
        Duration::from_millis(100),
        || {
            let range = range.clone();
            async move {
                let list = env
                    .api::<DirectoryUser>()
                    .list(&ListParams::default())
                    .await
                    .ok()?;
                let mut phases = BTreeMap::new();
                for du in list.items {
                    let i: usize = du.spec.employee_id.trim_start_matches('G').parse().ok()?;
                    if range.contains(&i) {
                        *phases
                            .entry(du.status.map(|s| s.phase).unwrap_or_default())
                            .or_insert(0) += 1;
                    }
                }
                (!phases.contains_key(&Phase::Active)).then_some(phases)
            }
        },
    )
    .await
}

async fn tenant_condition(env: &TestEnv, reason: &'static str) -> roster_api::Condition {
    poll(
        &format!("the Tenant's RemovalGuard condition {reason}"),
        Duration::from_millis(100),
        || async {
            let t = env.api::<Tenant>().get("acme").await.ok()?;
            t.status?
                .conditions
                .into_iter()
                .find(|c| c.r#type == "RemovalGuard" && c.reason == reason)
        },
    )
    .await
}

/// `roster approve --tenant NS [--reject]`; returns its output.
async fn roster_approve(env: &TestEnv, reject: bool) -> String {
    let kubeconfig = crate::support::control_plane()
        .await
        .kubeconfig_path()
        .to_path_buf();
    let namespace = env.namespace.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut args = vec!["approve", "--tenant", &namespace];
        if reject {
            args.push("--reject");
        }
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("run roster approve")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn tenant_events(env: &TestEnv, reason: &str) -> Vec<String> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn a_burst_past_max_users_is_held_and_a_rejection_keeps_them_active() {
    let env = TestEnv::new("guard-reject").await;
    tenant(&env, 3).await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    users(&env, 12).await;

    // Eight deactivations at once, reconciled concurrently: exactly three are admitted.
    deactivate(&env, 1..=8).await;
    let phases = settled_phases(&env, 1..=8).await;
    assert_eq!(
        phases,
        BTreeMap::from([(Phase::Quarantined, 3), (Phase::Held, 5)]),
        "maxUsers 3: three leave, the rest are held"
    );
    eprintln!("guard: 8 deactivations at once, maxUsers 3: {phases:?}");
    let held = tenant_condition(&env, "RemovalsHeld").await;
    assert!(held.message.contains("more than maxUsers 3"), "{held:?}");
    let trip = env.api::<Tenant>().get("acme").await.unwrap();
    assert!(trip.status.unwrap().removal_guard.is_some());
    let events = tenant_events(&env, "MassDeprovisionGuardTripped").await;
    assert_eq!(events.len(), 1, "one Event per trip: {events:?}");
    assert!(events[0].contains("roster approve --reject"), "{events:?}");
    for note in &events {
        assert!(!note.contains("Guard Person") && !note.contains("@example.com"));
    }

    // Tripped: a removal arriving later is held too, whatever the count.
    deactivate(&env, 9..=9).await;
    wait_phase(&env, &name(9), Phase::Held).await;

    // Rejected: the six go back to Active, and stay there while the record is unchanged.
    // Who is held now (6: five of the burst, and the late one).
    let held_ones: Vec<usize> = {
        let list = env
            .api::<DirectoryUser>()
            .list(&ListParams::default())
            .await
            .unwrap();
        list.items
            .into_iter()
            .filter(|u| u.status.as_ref().is_some_and(|s| s.phase == Phase::Held))
            .map(|u| u.spec.employee_id.trim_start_matches('G').parse().unwrap())
            .collect()
    };
    assert_eq!(held_ones.len(), 6);
    let out = roster_approve(&env, true).await;
    assert!(
        out.contains("rejected the held removals of 6 users"),
        "{out}"
    );
    for &i in &held_ones {
        let du = wait_phase(&env, &name(i), Phase::Active).await;
        let status = du.status.unwrap();
        let rejected = condition(&status, "RemovalRejected").expect("RemovalRejected");
        assert!(
            rejected.message.contains("the record says the person left"),
            "{rejected:?}"
        );
        assert!(!du.spec.active, "the record is not rewritten");
    }
    tenant_condition(&env, "Clear").await;
    // Another reconcile (an annotation: no new generation) acts on nothing.
    let poked = held_ones[0];
    env.api::<DirectoryUser>()
        .patch(
            &name(poked),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/poke": "1"}}})),
        )
        .await
        .unwrap();
    // The Tenant too: its annotations wake every user of it.
    env.api::<Tenant>()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"roster.dev/reject-removals": "again"}}}),
            ),
        )
        .await
        .unwrap();
    // The record changes (a more generous guard first, the window still holds three):
    // the trigger is acted on again, and admitted.
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy(50)).await;
    let changed = held_ones[1];
    env.api::<DirectoryUser>()
        .patch(
            &name(changed),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"title": "Former Engineer"}})),
        )
        .await
        .unwrap();
    wait_phase(&env, &name(changed), Phase::Quarantined).await;
    let still = env.api::<DirectoryUser>().get(&name(poked)).await.unwrap();
    assert_eq!(
        still.status.unwrap().phase,
        Phase::Active,
        "unchanged: still Active"
    );
}

#[tokio::test]
async fn a_restart_while_tripped_keeps_the_users_held() {
    let env = TestEnv::new("guard-restart").await;
    tenant(&env, 2).await;
    let operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    users(&env, 8).await;
    deactivate(&env, 1..=4).await;
    let phases = settled_phases(&env, 1..=4).await;
    assert_eq!(
        phases,
        BTreeMap::from([(Phase::Quarantined, 2), (Phase::Held, 2)])
    );
    operator.kill().await;

    // A new operator (a restart, or a new leader): the trip and the window come from
    // status. The held stay held, and a new removal is held too.
    let operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    deactivate(&env, 5..=5).await;
    wait_phase(&env, &name(5), Phase::Held).await;
    let phases = settled_phases(&env, 1..=5).await;
    assert_eq!(
        phases,
        BTreeMap::from([(Phase::Quarantined, 2), (Phase::Held, 3)])
    );
    let events = tenant_events(&env, "MassDeprovisionGuardTripped").await;
    assert_eq!(
        events.len(),
        1,
        "the restart did not trip again: {events:?}"
    );

    let approved_at = std::time::Instant::now();
    let out = roster_approve(&env, false).await;
    assert!(
        out.contains("approved the held removals of 3 users"),
        "{out}"
    );
    let phases = poll(
        "all five quarantined",
        Duration::from_millis(100),
        || async {
            let phases = settled_phases(&env, 1..=5).await;
            (phases.get(&Phase::Quarantined) == Some(&5)).then_some(phases)
        },
    )
    .await;
    eprintln!(
        "guard: restart while tripped; approval to 3 held Quarantined: {:?} ({phases:?})",
        approved_at.elapsed()
    );
    tenant_condition(&env, "Clear").await;
    drop(operator);
}

#[tokio::test]
async fn scim_deactivations_past_max_users_within_a_minute_are_held() {
    use crate::scim::Scim;
    let env = TestEnv::new("guard-scim").await;
    let lms = crate::joiners::standin(false).await;
    crate::scim::tenant(&env, &lms, "guard-token").await;
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy(2)).await;
    let scim = Scim::start(&env, "guard-token", true, Default::default()).await;
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut ids = Vec::new();
    for i in 1..=6 {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
            "userName": format!("scim.person.{i}@example.com"),
            "name": {"givenName": "Scim", "familyName": format!("Person{i}")},
            "emails": [{"value": format!("scim.person.{i}@example.com"), "primary": true}],
            "active": true,
            EXT: {"employeeNumber": format!("S{i:03}")}
        });
        let r = scim.call("POST", "/Users", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        wait_status(&env, id, "provisioned", |s| s.account.provisioned.is_some()).await;
    }
    // Okta's deactivation, four times within a minute.
    for id in &ids[..4] {
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        });
        let r = scim
            .call("PATCH", &format!("/Users/{id}"), Some(patch))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let phases = poll(
        "the SCIM removals to be decided",
        Duration::from_millis(100),
        || async {
            let mut phases = BTreeMap::new();
            for id in &ids[..4] {
                let du = env.api::<DirectoryUser>().get(id).await.ok()?;
                *phases.entry(du.status?.phase).or_insert(0) += 1;
            }
            (!phases.contains_key(&Phase::Active)).then_some(phases)
        },
    )
    .await;
    assert_eq!(
        phases,
        BTreeMap::from([(Phase::Quarantined, 2), (Phase::Held, 2)]),
        "maxUsers 2"
    );
    eprintln!("guard: 4 SCIM deactivations within a minute, maxUsers 2: {phases:?}");
    // Inactive users are still readable over SCIM, held ones as inactive.
    let r = scim.call("GET", &format!("/Users/{}", ids[3]), None).await;
    assert_eq!((r.status, &r.body["active"]), (200, &json!(false)));
    tenant_condition(&env, "RemovalsHeld").await;
}
