//! The Helm chart's RBAC rules are enough: the operator, running as an identity that
//! holds exactly those rules (read from `charts/roster/templates/rbac.yaml`), takes a
//! user from Active to Purged, checks a Tenant's Secrets, publishes Events and holds
//! its leader Lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube_lease_manager::LeaseManagerBuilder;
use roster::effects::memory::MemoryEffects;
use roster_api::{
    ConditionStatus, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec,
    Phase, Tenant, TenantSpec,
};

use crate::support::{Operator, TestEnv, WAIT_TIMEOUT, apply, control_plane, wait_phase};

/// The `rules:` of each RBAC document in the chart's template, in order.
fn chart_rules() -> Vec<Vec<PolicyRule>> {
    let path = roster_testkit::repo_path("charts/roster/templates/rbac.yaml");
    let text = std::fs::read_to_string(path).expect("read the chart's RBAC template");
    text.split("\n---")
        .filter_map(|doc| doc.find("\nrules:").map(|at| &doc[at..]))
        .map(|rules| {
            // The rules themselves are plain YAML; template lines after them are not.
            let plain: String = rules
                .lines()
                .take_while(|l| !l.contains("{{"))
                .collect::<Vec<_>>()
                .join("\n");
            #[derive(serde::Deserialize)]
            struct Rules {
                rules: Vec<PolicyRule>,
            }
            serde_yaml_ng::from_str::<Rules>(&plain)
                .expect("the chart's rules parse")
                .rules
        })
        .collect()
}

fn subject() -> Subject {
    Subject {
        kind: "User".into(),
        name: "roster-unprivileged".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    }
}

#[tokio::test]
async fn the_chart_rbac_is_enough_to_run_the_lifecycle() {
    let env = TestEnv::new("rbac-chart").await;
    let rules = chart_rules();
    assert_eq!(
        rules.len(),
        2,
        "the operator's role and the leader-election role"
    );
    let name = format!("roster-{}", env.namespace);
    let roles: Api<ClusterRole> = Api::all(env.client.clone());
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        rules: Some(rules[0].clone()),
        ..Default::default()
    };
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create cluster role");
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: name.clone(),
        },
        subjects: Some(vec![subject()]),
    };
    Api::<ClusterRoleBinding>::all(env.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let leader = Role {
        metadata: ObjectMeta {
            name: Some("roster-leader".into()),
            ..Default::default()
        },
        rules: Some(rules[1].clone()),
    };
    env.api::<Role>()
        .create(&PostParams::default(), &leader)
        .await
        .unwrap();
    let leader_binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("roster-leader".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "roster-leader".into(),
        },
        subjects: Some(vec![subject()]),
    };
    env.api::<RoleBinding>()
        .create(&PostParams::default(), &leader_binding)
        .await
        .unwrap();

    // The tenant's objects, written by the admin.
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("lms".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".into(), "t".into())])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let policy = DeprovisionPolicySpec {
        quarantine_period: "0s".into(),
        purge_deadline: "1s".into(),
        ..Default::default()
    };
    apply(
        &env.api::<DeprovisionPolicy>(),
        "standard",
        &DeprovisionPolicy::new("standard", policy),
    )
    .await;
    let tenant = TenantSpec {
        ..crate::support::tenant_spec("http://127.0.0.1:1/api/v1")
    };
    apply(&env.api::<Tenant>(), "acme", &Tenant::new("acme", tenant)).await;

    // The operator runs as the unprivileged identity: it must hold its Lease...
    let restricted = control_plane()
        .await
        .unprivileged_client()
        .await
        .expect("unprivileged client");
    let lease = LeaseManagerBuilder::new(restricted.clone(), "roster-leader")
        .with_namespace(&env.namespace)
        .with_duration(5)
        .with_grace(2)
        .build()
        .await
        .expect("the chart's Role allows the leader Lease");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), lease.changed())
            .await
            .expect("lease in time")
            .expect("lease")
    );

    // ...and run a user through the whole lifecycle.
    let _operator = Operator::start(&restricted, &env.namespace, Arc::new(MemoryEffects::new()));
    let spec = DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: "00042".into(),
        full_name: "Rbac Person".into(),
        email: "rbac.person@example.com".into(),
        active: false,
        ..Default::default()
    };
    apply(
        &env.api::<DirectoryUser>(),
        "e-00042",
        &DirectoryUser::new("e-00042", spec),
    )
    .await;
    wait_phase(&env, "e-00042", Phase::Purged).await;
    let ready = |t: Option<&Tenant>| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "CredentialsFound" && c.status == ConditionStatus::True)
        })
    };
    tokio::time::timeout(
        WAIT_TIMEOUT,
        kube::runtime::wait::await_condition(env.api::<Tenant>(), "acme", ready),
    )
    .await
    .expect("the chart's rules allow reading the Tenant's Secret")
    .unwrap();
    let events = crate::support::kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &env.namespace,
        "-o",
        "name",
    ])
    .await;
    assert!(
        !events.stdout.trim().is_empty(),
        "the chart's rules allow publishing Events"
    );
    let _ = roles.delete(&name, &Default::default()).await;
}
