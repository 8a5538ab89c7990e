//! The API's conventions, as GitOps tools and kubectl users meet them: requests are
//! annotations acknowledged in status, a revert by server-side apply never brings an
//! anonymized person back, and kstatus reads the conditions as intended.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use roster::effects::memory::MemoryEffects;
use roster_api::{
    ConditionStatus, DEPROVISION_NOW_ANNOTATION, DeprovisionPolicy, DeprovisionPolicySpec,
    DirectoryUser, DirectoryUserSpec, Phase, Tenant,
};
use serde_json::json;

use crate::support::{
    Operator, TestEnv, apply, condition, kstatus, wait_object, wait_phase, wait_status,
};

/// Server-side apply as a GitOps tool does it: one field manager, forced.
const GITOPS: &str = "flux-like";

async fn tenant(env: &TestEnv, quarantine: &str, purge: &str) {
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: quarantine.into(),
            purge_deadline: purge.into(),
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let tenant = Tenant::new(
        "acme",
        crate::support::tenant_spec("http://127.0.0.1:1/api/v1"),
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
}

fn person(employee_id: &str) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: employee_id.into(),
        full_name: format!("Gitops Person {employee_id}"),
        email: format!("gitops.{employee_id}@example.com"),
        ..Default::default()
    }
}

/// What the GitOps tool applies: the manifest in Git, owned by its field manager.
async fn gitops_apply(env: &TestEnv, name: &str, spec: serde_json::Value) {
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": "DirectoryUser",
        "metadata": { "name": name },
        "spec": spec,
    });
    env.api::<DirectoryUser>()
        .patch(
            name,
            &PatchParams::apply(GITOPS).force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|err| panic!("apply {name}: {err}"));
}

/// `kubectl edit`: a merge patch by another manager.
async fn kubectl_edit(env: &TestEnv, name: &str, patch: serde_json::Value) {
    let params = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    env.api::<DirectoryUser>()
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|err| panic!("edit {name}: {err}"));
}

fn spec_json(spec: &DirectoryUserSpec) -> serde_json::Value {
    serde_json::to_value(spec).expect("a spec serializes")
}

#[tokio::test]
async fn a_gitops_revert_never_reactivates_an_anonymized_user() {
    let env = TestEnv::new("api-revert").await;
    tenant(&env, "0s", "20s").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let name = "e-g001";
    let git = person("G001");
    gitops_apply(&env, name, spec_json(&git)).await;
    wait_phase(&env, name, Phase::Active).await;

    // Someone deactivates the person by hand; the quarantine is 0 s, so they are
    // deprovisioned (anonymized downstream) at once.
    kubectl_edit(&env, name, json!({ "spec": { "active": false } })).await;
    wait_phase(&env, name, Phase::Deprovisioned).await;

    // The GitOps tool corrects the drift: `active: true` again, as Git says. That is no
    // rehire: the person stays deprovisioned and is purged on schedule.
    gitops_apply(&env, name, spec_json(&git)).await;
    let user = env.api::<DirectoryUser>().get(name).await.unwrap();
    assert!(user.spec.active, "the revert went through");
    let purged = wait_phase(&env, name, Phase::Purged).await;
    let status = purged.status.unwrap();
    assert_eq!(status.reversals, 0, "never reactivated on the way");
    assert_eq!(status.trigger, Some(roster_api::Trigger::Deactivated));
}

#[tokio::test]
async fn a_rehire_brings_a_deprovisioned_person_back() {
    let env = TestEnv::new("api-rehire").await;
    tenant(&env, "0s", "720h").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let name = "e-g002";
    // Terminated yesterday: deprovisioned at once (quarantine 0 s), purge due in 30 days.
    let today = chrono::Utc::now().date_naive();
    let mut record = DirectoryUserSpec {
        hire_date: Some("2020-01-06".parse().unwrap()),
        termination_date: Some(today - chrono::Days::new(1)),
        ..person("G002")
    };
    gitops_apply(&env, name, spec_json(&record)).await;
    wait_phase(&env, name, Phase::Deprovisioned).await;
    // The HR system rehires: same employee ID, a hire date after the termination.
    record.hire_date = Some(today);
    gitops_apply(&env, name, spec_json(&record)).await;
    let user = wait_phase(&env, name, Phase::Active).await;
    let status = user.status.unwrap();
    assert_eq!(status.reversals, 1);
    assert!(status.purge_due_time.is_none(), "the purge is cancelled");
}

#[tokio::test]
async fn a_deprovision_now_request_is_acknowledged_and_removing_it_undoes_nothing() {
    let env = TestEnv::new("api-request").await;
    tenant(&env, "168h", "720h").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let name = "e-g003";
    let git = person("G003");
    gitops_apply(&env, name, spec_json(&git)).await;
    wait_phase(&env, name, Phase::Active).await;

    kubectl_edit(
        &env,
        name,
        json!({ "metadata": { "annotations": { DEPROVISION_NOW_ANNOTATION: "ticket-4711" } } }),
    )
    .await;
    let user = wait_phase(&env, name, Phase::Deprovisioned).await;
    let status = user.status.unwrap();
    assert_eq!(status.trigger, Some(roster_api::Trigger::DeprovisionNow));
    assert_eq!(
        status.handled_requests.deprovision_now.as_deref(),
        Some("ticket-4711")
    );

    // The annotation goes (a GitOps prune of it, or by hand), and the record changes,
    // so roster decides again on both: nothing is undone.
    kubectl_edit(
        &env,
        name,
        json!({ "metadata": { "annotations": { DEPROVISION_NOW_ANNOTATION: null } } }),
    )
    .await;
    gitops_apply(
        &env,
        name,
        spec_json(&DirectoryUserSpec {
            title: Some("Engineer".into()),
            ..git
        }),
    )
    .await;
    let generation = env
        .api::<DirectoryUser>()
        .get(name)
        .await
        .unwrap()
        .metadata
        .generation;
    let user = wait_status(&env, name, "the new generation observed", move |s| {
        s.observed_generation == generation
    })
    .await;
    let status = user.status.unwrap();
    assert_eq!(status.phase, Phase::Deprovisioned);
    assert_eq!(status.reversals, 0);
}

#[tokio::test]
async fn kubectl_and_kstatus_show_a_user_whose_tenant_is_missing_as_failed() {
    let env = TestEnv::new("api-blocked").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let name = "e-g004";
    gitops_apply(&env, name, spec_json(&person("G004"))).await;
    let user = wait_status(&env, name, "Stalled", |s| {
        condition(s, "Stalled").is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
    let status = user.status.as_ref().unwrap();
    let ready = condition(status, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason, "TenantNotFound");
    let (kstatus_says, message) = kstatus(&user).await;
    assert_eq!(kstatus_says, "Failed", "{message}");

    let wide =
        crate::support::kubectl(&["get", "du", name, "-o", "wide", "-n", &env.namespace]).await;
    assert!(wide.success, "kubectl get -o wide failed");
    println!("{}", wide.stdout);
    let lines: Vec<&str> = wide.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PHASE",
            "READY",
            "TENANT",
            "NEXT-DEADLINE",
            "EMPLOYEE-ID",
            "TRIGGER",
            "AGE",
            "MESSAGE"
        ]
    );
    assert!(lines[1].contains("False"), "{}", wide.stdout);
    assert!(
        lines[1].contains("no Tenant named \"acme\""),
        "{}",
        wide.stdout
    );
    assert!(!wide.stdout.contains("example.com"), "kubectl shows PII");
}

/// `deletionProtection` is enforced by the API server itself (the admission policy
/// shipped with the CRDs): the refusal says how to proceed, and after turning it off
/// the Tenant can be deleted.
#[tokio::test]
async fn a_protected_tenant_cannot_be_deleted_until_protection_is_off() {
    use kube::api::DeleteParams;
    let env = TestEnv::new("api-protected").await;
    tenant(&env, "168h", "720h").await;
    let tenants = env.api::<Tenant>();
    // The policy is compiled asynchronously after it is created: wait for the refusal.
    let refusal = crate::support::poll(
        "the deletion-protection policy in force",
        std::time::Duration::from_millis(200),
        || async {
            match tenants
                .delete(
                    "acme",
                    &DeleteParams {
                        dry_run: true,
                        ..Default::default()
                    },
                )
                .await
            {
                Err(kube::Error::Api(status)) => Some(status),
                Ok(_) | Err(_) => None,
            }
        },
    )
    .await;
    println!("refusal: {} {}", refusal.code, refusal.message);
    assert!(
        refusal.message.contains("spec.deletionProtection")
            && refusal
                .message
                .contains("set spec.deletionProtection to false"),
        "{}",
        refusal.message
    );
    assert!(tenants.get_opt("acme").await.unwrap().is_some());
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "deletionProtection": false } })),
        )
        .await
        .expect("turn deletion protection off");
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .expect("an unprotected Tenant can be deleted");
}

/// A Tenant "acme" that may be deleted (deletion protection off), with its policy.
async fn unprotected_tenant(env: &TestEnv, quarantine: &str) {
    tenant(env, quarantine, "720h").await;
    env.api::<Tenant>()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "deletionProtection": false } })),
        )
        .await
        .expect("turn deletion protection off");
}

fn has_finalizer<K: kube::Resource>(object: Option<&K>, finalizer: &str) -> bool {
    object.is_some_and(|o| o.meta().finalizers.iter().flatten().any(|f| f == finalizer))
}

/// A Tenant in use waits for its users, and a policy in use for its Tenants; users of
/// a Tenant being deleted leave without calls to the learning platform.
#[tokio::test]
async fn tenants_and_policies_in_use_wait_for_what_uses_them() {
    use kube::api::DeleteParams;
    let env = TestEnv::new("api-in-use").await;
    unprotected_tenant(&env, "168h").await;
    let effects = Arc::new(MemoryEffects::new());
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    let name = "e-g005";
    gitops_apply(&env, name, spec_json(&person("G005"))).await;
    wait_phase(&env, name, Phase::Active).await;
    let tenants = env.api::<Tenant>();
    let policies = env.api::<DeprovisionPolicy>();
    wait_object(tenants.clone(), "acme", "the in-use finalizer", |t| {
        has_finalizer(t, "roster.dev/tenant-in-use")
    })
    .await;
    wait_object(policies.clone(), "standard", "the in-use finalizer", |p| {
        has_finalizer(p, "roster.dev/policy-in-use")
    })
    .await;

    policies
        .delete("standard", &DeleteParams::default())
        .await
        .unwrap();
    // The policy waits: the Tenant still names it.
    wait_object(
        policies.clone(),
        "standard",
        "waiting, being deleted",
        |p| p.is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
    )
    .await;

    // The Tenant's exit: the platform erased once, the user deleted by the exit (no
    // call of its own), then the Tenant, then the policy.
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_object(env.api::<DirectoryUser>(), name, "gone", |u| u.is_none()).await;
    wait_object(tenants, "acme", "gone", |t| t.is_none()).await;
    wait_object(policies, "standard", "gone", |p| p.is_none()).await;
    assert!(
        effects.calls().is_empty(),
        "no step of the user's own reached the platform"
    );
    let exits: Vec<bool> = effects
        .exits()
        .into_iter()
        .map(|(_, _, applied)| applied)
        .collect();
    assert_eq!(
        exits,
        vec![true],
        "the tenant was erased at the platform once"
    );
}

/// `kubectl delete namespace` of a tenant with users in every phase (and one whose
/// Tenant never existed) finishes: nothing is stranded in Terminating.
#[tokio::test]
async fn deleting_a_tenants_namespace_finishes() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::DeleteParams;
    let plane = crate::support::control_plane().await;
    tokio::task::spawn_blocking(move || plane.start_namespace_controller())
        .await
        .unwrap()
        .expect("start the namespace controller");
    let env = TestEnv::new("api-delete-ns").await;
    unprotected_tenant(&env, "168h").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let users = env.api::<DirectoryUser>();
    // Active, Quarantined, Deprovisioned, Purged, and one whose Tenant does not exist.
    gitops_apply(&env, "e-n001", spec_json(&person("N001"))).await;
    gitops_apply(
        &env,
        "e-n002",
        spec_json(&DirectoryUserSpec {
            active: false,
            ..person("N002")
        }),
    )
    .await;
    gitops_apply(&env, "e-n003", spec_json(&person("N003"))).await;
    kubectl_edit(
        &env,
        "e-n003",
        json!({ "metadata": { "annotations": { DEPROVISION_NOW_ANNOTATION: "now" } } }),
    )
    .await;
    gitops_apply(
        &env,
        "e-n004",
        spec_json(&DirectoryUserSpec {
            termination_date: Some("2020-01-31".parse().unwrap()),
            ..person("N004")
        }),
    )
    .await;
    gitops_apply(
        &env,
        "e-n005",
        spec_json(&DirectoryUserSpec {
            tenant_ref: "nobody".into(),
            ..person("N005")
        }),
    )
    .await;
    for (name, phase) in [
        ("e-n001", Phase::Active),
        ("e-n002", Phase::Quarantined),
        ("e-n003", Phase::Deprovisioned),
        ("e-n004", Phase::Purged),
    ] {
        wait_phase(&env, name, phase).await;
    }
    wait_status(&env, "e-n005", "Stalled", |s| {
        condition(s, "Stalled").is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
    assert_eq!(
        users.list(&Default::default()).await.unwrap().items.len(),
        5
    );

    let namespaces: kube::Api<Namespace> = kube::Api::all(env.client.clone());
    namespaces
        .delete(&env.namespace, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    wait_object(namespaces, &env.namespace, "the namespace gone", |n| {
        n.is_none()
    })
    .await;
}

/// The employee ID is the mapping key, unique in a tenant: a second object with the
/// same one does nothing (Stalled, saying which object owns the key), even when its
/// record says the person left.
#[tokio::test]
async fn a_duplicate_employee_id_does_nothing() {
    let env = TestEnv::new("api-duplicate").await;
    tenant(&env, "168h", "720h").await;
    let effects = Arc::new(MemoryEffects::new());
    let _operator = Operator::start(&env.client, &env.namespace, effects.clone());
    gitops_apply(&env, "e-d001", spec_json(&person("D001"))).await;
    wait_phase(&env, "e-d001", Phase::Active).await;
    gitops_apply(
        &env,
        "e-d001-copy",
        spec_json(&DirectoryUserSpec {
            active: false,
            ..person("D001")
        }),
    )
    .await;
    let copy = wait_status(&env, "e-d001-copy", "Stalled", |s| {
        condition(s, "Stalled").is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
    let stalled = condition(copy.status.as_ref().unwrap(), "Stalled")
        .unwrap()
        .clone();
    assert_eq!(stalled.reason, "DuplicateEmployeeID");
    assert!(
        stalled.message.contains("\"e-d001\""),
        "{}",
        stalled.message
    );
    assert_eq!(
        copy.status.unwrap().phase,
        Phase::Active,
        "the copy did not act"
    );
    assert!(effects.calls().is_empty(), "no call for either");
}
