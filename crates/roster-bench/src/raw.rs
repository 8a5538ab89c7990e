//! What both benchmarks ask the API server directly: a namespace, and the raw
//! paginated LIST their figures are compared with.
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use roster_api::DirectoryUser;

/// A Secret holding `token` under the key `token`, labelled as roster credentials (the
/// opt-in every Secret a Tenant names must carry).
pub async fn create_credentials_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    token: &str,
) -> anyhow::Result<()> {
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(std::collections::BTreeMap::from([(
                roster_api::tenant::CREDENTIALS_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        string_data: Some(std::collections::BTreeMap::from([(
            "token".into(),
            token.into(),
        )])),
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// A paginated LIST (500 per page) of every DirectoryUser `api` sees: how long it took.
pub async fn list(api: &Api<DirectoryUser>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut continue_token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(token) = continue_token.take() {
            params = params.continue_token(&token);
        }
        let page = api.list(&params).await?;
        continue_token = page.metadata.continue_.filter(|c| !c.is_empty());
        if continue_token.is_none() {
            return Ok(started.elapsed());
        }
    }
}

/// The `standard` DeprovisionPolicy the benchmarks' tenants use, without the
/// mass-deprovisioning guard: a benchmark's waves and churn are the point, and the
/// guard has its own tests.
pub async fn create_unguarded_policy(
    client: &Client,
    namespace: &str,
    quarantine: &str,
    purge_deadline: &str,
) -> anyhow::Result<()> {
    let policy = roster_api::DeprovisionPolicy::new(
        "standard",
        roster_api::DeprovisionPolicySpec {
            quarantine_period: quarantine.into(),
            purge_deadline: purge_deadline.into(),
            mass_deprovision_guard: roster_api::MassDeprovisionGuard {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    Api::<roster_api::DeprovisionPolicy>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &policy)
        .await?;
    Ok(())
}
