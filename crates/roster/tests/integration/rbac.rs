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

/// The chart as `helm template` renders it (Helm built by the harness from
/// `controlplane/helm`), release "roster" in `namespace`, one JSON value per document.
async fn render(namespace: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let chart = roster_testkit::repo_path("charts/roster");
    let mut command = std::process::Command::new(
        tokio::task::spawn_blocking(roster_testkit::binaries::ensure_helm)
            .await
            .unwrap()
            .expect("build helm"),
    );
    command
        .arg("template")
        .arg("roster")
        .arg(&chart)
        .args(["--kube-version", "1.37.2", "--namespace", namespace])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("helm prints UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("the chart renders YAML"))
        .filter(|doc: &serde_json::Value| !doc.is_null())
        .collect()
}

/// The rendered documents of `kind`.
fn of_kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The `rules` of a rendered Role or ClusterRole.
fn rules_of(doc: &serde_json::Value) -> Vec<PolicyRule> {
    serde_json::from_value(doc["rules"].clone()).expect("rules parse")
}

/// `kind/name` of every rendered document.
fn objects(docs: &[serde_json::Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// One line per rule, `apiGroup resource: verbs`, for the closing note of issue 18 and
/// docs/security.md (`-- --nocapture` prints them).
fn verb_list(rules: &[PolicyRule]) -> Vec<String> {
    rules
        .iter()
        .flat_map(|rule| {
            let group = rule.api_groups.clone().unwrap_or_default().join(",");
            rule.resources
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(move |resource| format!("{group}/{resource}: {}", rule.verbs.join(",")))
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
    // No tenantNamespaces: every namespace, so the operator's rules are a ClusterRole.
    let docs = render(&env.namespace, &[]).await;
    let cluster_roles = of_kind(&docs, "ClusterRole");
    let roles = of_kind(&docs, "Role");
    assert_eq!(
        (cluster_roles.len(), roles.len()),
        (1, 1),
        "the operator's role and the leader-election role: {:?}",
        objects(&docs)
    );
    let rules = [rules_of(cluster_roles[0]), rules_of(roles[0])];
    println!("cluster-wide rules: {:#?}", verb_list(&rules[0]));
    println!(
        "leader rules ({}): {:#?}",
        env.namespace,
        verb_list(&rules[1])
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

/// Given tenant namespaces, the chart grants nothing cluster-wide (a Role and a
/// RoleBinding in each tenant namespace, the leader Role in its own), and that holds:
/// the chart's objects, applied as rendered, let the chart's ServiceAccount run a user of
/// each namespace through the whole lifecycle, while a cluster-wide list is refused.
#[tokio::test]
async fn namespaced_roles_from_the_chart_are_enough_and_nothing_is_cluster_wide() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::config::{KubeConfigOptions, Kubeconfig};

    let env = TestEnv::new("rbac-namespaced").await;
    let a = crate::support::namespace(&env.client, "rbac-tenant-a").await;
    let b = crate::support::namespace(&env.client, "rbac-tenant-b").await;
    let list = format!("tenantNamespaces={{{a},{b}}}");
    let docs = render(&env.namespace, &["--set", &list]).await;
    let kinds = objects(&docs);
    assert!(
        of_kind(&docs, "ClusterRole").is_empty() && of_kind(&docs, "ClusterRoleBinding").is_empty(),
        "nothing cluster-wide: {kinds:?}"
    );
    let namespaces_of = |kind: &str| -> Vec<String> {
        let mut found: Vec<String> = of_kind(&docs, kind)
            .iter()
            .map(|d| d["metadata"]["namespace"].as_str().unwrap().to_string())
            .collect();
        found.sort();
        found
    };
    let mut expected = vec![a.clone(), b.clone(), env.namespace.clone()];
    expected.sort();
    assert_eq!(namespaces_of("Role"), expected, "{kinds:?}");
    assert_eq!(namespaces_of("RoleBinding"), expected, "{kinds:?}");
    let deployment = &of_kind(&docs, "Deployment")[0];
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&serde_json::json!(format!("--namespace={a},{b}"))),
        "the operator watches only the tenant namespaces: {args}"
    );
    for role in of_kind(&docs, "Role") {
        println!(
            "Role in {}: {:#?}",
            role["metadata"]["namespace"],
            verb_list(&rules_of(role))
        );
    }

    // Everything the chart renders, applied as it is (the API server validates each
    // object, the NetworkPolicy included; nothing runs the Deployment here).
    // Objects without a namespace go to the release namespace, as `helm install` does.
    let mut yaml = String::new();
    for doc in &docs {
        let mut doc = doc.clone();
        let cluster_scoped =
            ["ClusterRole", "ClusterRoleBinding"].contains(&doc["kind"].as_str().unwrap());
        if doc["metadata"]["namespace"].is_null() && !cluster_scoped {
            doc["metadata"]["namespace"] = env.namespace.clone().into();
        }
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml_ng::to_string(&doc).unwrap());
    }
    let file = std::env::temp_dir().join(format!("roster-chart-{}.yaml", env.namespace));
    std::fs::write(&file, yaml).unwrap();
    crate::support::kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=roster-tests",
        "-f",
        file.to_str().unwrap(),
    ])
    .await
    .assert_success("apply the rendered chart");

    // The operator runs as the chart's ServiceAccount, with a token the API server issues.
    let account = of_kind(&docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let token = Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace)
        .create_token_request(
            &account,
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec![]),
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("a token for the chart's ServiceAccount")
        .status
        .and_then(|status| status.token)
        .expect("the token");
    let plane = control_plane().await;
    let mut kubeconfig = Kubeconfig::read_from(plane.kubeconfig_path()).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if user.name == "roster-unprivileged"
            && let Some(info) = user.auth_info.as_mut()
        {
            info.token = Some(token.clone().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &KubeConfigOptions {
            context: Some("roster-unprivileged".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let operator_client = kube::Client::try_from(config).unwrap();

    let everywhere = Api::<DirectoryUser>::all(operator_client.clone())
        .list(&Default::default())
        .await;
    assert!(
        matches!(&everywhere, Err(kube::Error::Api(status)) if status.code == 403),
        "a cluster-wide list must be refused: {everywhere:?}"
    );
    let lease = LeaseManagerBuilder::new(operator_client.clone(), "roster-leader")
        .with_namespace(&env.namespace)
        .with_duration(5)
        .with_grace(2)
        .build()
        .await
        .expect("the chart's leader Role allows the Lease");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), lease.changed())
            .await
            .expect("lease in time")
            .expect("lease")
    );

    let options = roster::controller::Options {
        namespaces: vec![a.clone(), b.clone()],
        ..Default::default()
    };
    let _operator = Operator::start_with(&operator_client, options, Arc::new(MemoryEffects::new()));
    for namespace in [&a, &b] {
        let tenant_env = TestEnv {
            client: env.client.clone(),
            namespace: namespace.clone(),
        };
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("lms".into()),
                labels: Some(crate::support::credentials_labels()),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([("token".into(), "t".into())])),
            ..Default::default()
        };
        tenant_env
            .api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let policy = DeprovisionPolicySpec {
            quarantine_period: "0s".into(),
            purge_deadline: "1s".into(),
            ..Default::default()
        };
        apply(
            &tenant_env.api::<DeprovisionPolicy>(),
            "standard",
            &DeprovisionPolicy::new("standard", policy),
        )
        .await;
        let tenant = crate::support::tenant_spec("http://127.0.0.1:1/api/v1");
        apply(
            &tenant_env.api::<Tenant>(),
            "acme",
            &Tenant::new("acme", tenant),
        )
        .await;
        let spec = DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: "00042".into(),
            full_name: "Rbac Person".into(),
            email: "rbac.person@example.com".into(),
            active: false,
            ..Default::default()
        };
        apply(
            &tenant_env.api::<DirectoryUser>(),
            "e-00042",
            &DirectoryUser::new("e-00042", spec),
        )
        .await;
    }
    for namespace in [&a, &b] {
        let tenant_env = TestEnv {
            client: env.client.clone(),
            namespace: namespace.clone(),
        };
        wait_phase(&tenant_env, "e-00042", Phase::Purged).await;
        let ready = |t: Option<&Tenant>| {
            t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.r#type == "Ready" && c.status == ConditionStatus::True)
            })
        };
        crate::support::wait_object(tenant_env.api::<Tenant>(), "acme", "Ready", ready).await;

        // A deletion under Quarantine: the Departure is created, read, written and
        // deleted with the namespaced rules alone.
        let spec = DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: "00043".into(),
            full_name: "Rbac Deleted".into(),
            email: "rbac.deleted@example.com".into(),
            ..Default::default()
        };
        apply(
            &tenant_env.api::<DirectoryUser>(),
            "e-00043",
            &DirectoryUser::new("e-00043", spec),
        )
        .await;
        wait_phase(&tenant_env, "e-00043", Phase::Active).await;
        tenant_env
            .api::<DirectoryUser>()
            .delete("e-00043", &Default::default())
            .await
            .unwrap();
        crate::support::wait_object(tenant_env.api::<DirectoryUser>(), "e-00043", "gone", |u| {
            u.is_none()
        })
        .await;
        crate::support::wait_object(
            tenant_env.api::<roster_api::Departure>(),
            "e-00043",
            "purged and deleted",
            |d| d.is_none(),
        )
        .await;
        // That no Departure is left proves nothing by itself: the hand-over's Event
        // shows one was written (create, status, then deleted by the same rules). Events
        // are published in the background, so under load it may trail the purge.
        let events_api = tenant_env.api::<k8s_openapi::api::events::v1::Event>();
        crate::support::poll(
            &format!("a HandedOver Event in {namespace} (the deletion went through a Departure)"),
            std::time::Duration::from_millis(200),
            || {
                let events_api = events_api.clone();
                async move {
                    let events = events_api.list(&Default::default()).await.ok()?;
                    events
                        .items
                        .iter()
                        .any(|e| {
                            e.reason.as_deref() == Some("HandedOver")
                                && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                    == Some("e-00043")
                        })
                        .then_some(())
                }
            },
        )
        .await;
    }
    let events =
        crate::support::kubectl(&["get", "events.events.k8s.io", "-n", &a, "-o", "name"]).await;
    assert!(
        !events.stdout.trim().is_empty(),
        "the namespaced Role allows publishing Events"
    );
}
