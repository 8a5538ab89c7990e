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

use crate::support::{Operator, TestEnv, apply, condition, kstatus, wait_phase, wait_status};

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
        tenant: "acme".into(),
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
    let mut record = DirectoryUserSpec {
        hire_date: Some("2020-01-06".parse().unwrap()),
        termination_date: Some("2025-01-31".parse().unwrap()),
        ..person("G002")
    };
    gitops_apply(&env, name, spec_json(&record)).await;
    wait_phase(&env, name, Phase::Deprovisioned).await;
    // The HR system rehires: same employee ID, a hire date after the termination.
    record.hire_date = Some("2026-02-01".parse().unwrap());
    gitops_apply(&env, name, spec_json(&record)).await;
    let user = wait_phase(&env, name, Phase::Active).await;
    let status = user.status.unwrap();
    assert_eq!(status.reversals, 1);
    assert!(status.purge_due_at.is_none(), "the purge is cancelled");
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
