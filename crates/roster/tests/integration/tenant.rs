//! The Tenant controller on the real API server: each reference is checked and
//! reported as a condition, and users are counted per phase.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use roster::effects::memory::MemoryEffects;
use roster_api::tenant::{CalendarConnection, SecretKeyRef};
use roster_api::{
    CalendarProvider, ConditionStatus, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser,
    DirectoryUserSpec, Tenant, TenantSpec,
};

use crate::support::{Operator, TestEnv, WAIT_TIMEOUT, apply};

/// Waits until the Tenant's condition `type` has `status` and returns its reason.
async fn wait_condition(env: &TestEnv, r#type: &'static str, status: ConditionStatus) -> String {
    let matches = move |t: Option<&Tenant>| {
        t.and_then(|t| t.status.as_ref())
            .and_then(|s| s.conditions.iter().find(|c| c.r#type == r#type))
            .is_some_and(|c| c.status == status)
    };
    let tenant = tokio::time::timeout(
        WAIT_TIMEOUT,
        await_condition(env.api::<Tenant>(), "acme", matches),
    )
    .await
    .unwrap_or_else(|_| panic!("Tenant condition {type} did not become {status:?}"))
    .expect("watch tenant")
    .expect("tenant exists");
    let status = tenant.status.unwrap();
    status
        .conditions
        .iter()
        .find(|c| c.r#type == r#type)
        .unwrap()
        .reason
        .to_string()
}

#[tokio::test]
async fn tenant_conditions_follow_its_references_and_users_are_counted() {
    let env = TestEnv::new("tenant-checks").await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    let tenant = Tenant::new(
        "acme",
        TenantSpec {
            calendar: CalendarConnection {
                provider: CalendarProvider::Google,
                endpoint: Some("http://127.0.0.1:1/calendar/v3".into()),
                credentials_secret_ref: Some(SecretKeyRef {
                    name: "lms".into(),
                    key: "calendar".into(),
                }),
                fallback_owner: Some("00001".into()),
            },
            time_zone: "Mars/Olympus_Mons".into(),
            ..crate::support::tenant_spec("http://127.0.0.1:1/api/v1")
        },
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;

    // Nothing it references exists yet: each check says so.
    assert_eq!(
        wait_condition(&env, "PolicyResolved", ConditionStatus::False).await,
        "PolicyNotFound"
    );
    assert_eq!(
        wait_condition(&env, "CredentialsFound", ConditionStatus::False).await,
        "SecretMissing"
    );
    assert_eq!(
        wait_condition(&env, "FallbackOwnerValid", ConditionStatus::False).await,
        "FallbackOwnerUnknown"
    );
    assert_eq!(
        wait_condition(&env, "TimeZoneValid", ConditionStatus::False).await,
        "UnknownTimeZone"
    );
    assert_eq!(
        wait_condition(&env, "Ready", ConditionStatus::False).await,
        "ChecksFailed"
    );

    // Fix each one; the conditions follow.
    apply(
        &env.api::<DeprovisionPolicy>(),
        "standard",
        &DeprovisionPolicy::new("standard", DeprovisionPolicySpec::default()),
    )
    .await;
    assert_eq!(
        wait_condition(&env, "PolicyResolved", ConditionStatus::True).await,
        "PolicyFound"
    );
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("lms".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("token".into(), "t".into()),
            ("calendar".into(), "c".into()),
        ])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let owner = DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: "00001".into(),
        full_name: "Calendar Owner".into(),
        email: "owner@example.com".into(),
        ..Default::default()
    };
    apply(
        &env.api::<DirectoryUser>(),
        "e-00001",
        &DirectoryUser::new("e-00001", owner),
    )
    .await;
    for i in 2..=4 {
        let spec = DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: format!("0000{i}"),
            full_name: format!("Person {i}"),
            email: format!("person{i}@example.com"),
            active: i != 4,
            ..Default::default()
        };
        let name = format!("e-0000{i}");
        apply(
            &env.api::<DirectoryUser>(),
            &name,
            &DirectoryUser::new(&name, spec),
        )
        .await;
    }
    assert_eq!(
        wait_condition(&env, "FallbackOwnerValid", ConditionStatus::True).await,
        "FallbackOwnerActive"
    );
    let mut fixed = tenant.clone();
    fixed.spec.time_zone = "Europe/Berlin".into();
    apply(&env.api::<Tenant>(), "acme", &fixed).await;
    assert_eq!(
        wait_condition(&env, "TimeZoneValid", ConditionStatus::True).await,
        "KnownTimeZone"
    );
    // Secrets are re-checked periodically (they are not watched): the Secret created
    // above is seen at the latest on the next change to the Tenant or its users.
    assert_eq!(
        wait_condition(&env, "CredentialsFound", ConditionStatus::True).await,
        "SecretsFound"
    );
    assert_eq!(
        wait_condition(&env, "Ready", ConditionStatus::True).await,
        "AllChecksPassed"
    );

    // Counts per phase: three active, one quarantined.
    let counted = |t: Option<&Tenant>| {
        t.and_then(|t| t.status.as_ref())
            .and_then(|s| s.user_counts.as_ref())
            .is_some_and(|c| c.active == 3 && c.quarantined == 1)
    };
    tokio::time::timeout(
        WAIT_TIMEOUT,
        await_condition(env.api::<Tenant>(), "acme", counted),
    )
    .await
    .expect("user counts within the timeout")
    .expect("watch tenant");
    let text =
        serde_json::to_string(&env.api::<Tenant>().get("acme").await.unwrap().status).unwrap();
    assert!(
        !text.contains("owner@example.com"),
        "Tenant status holds PII"
    );
}
