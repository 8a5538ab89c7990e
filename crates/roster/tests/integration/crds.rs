//! The generated CRDs install on a real API server and become Established.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use crate::support;

#[tokio::test]
async fn crds_apply_and_become_established() {
    let client = support::client().await;
    // Applying twice proves the apply is idempotent (another test may be applying
    // them concurrently through `install_crds`, which must not conflict either).
    support::apply_crds(&client).await;
    support::apply_crds(&client).await;

    let api: Api<CustomResourceDefinition> = Api::all(client);
    for crd in roster_api::all() {
        let name = crd.metadata.name.expect("generated CRDs are named");
        let served = api
            .get(&name)
            .await
            .unwrap_or_else(|err| panic!("get CRD {name}: {err}"));
        let conditions = served.status.and_then(|s| s.conditions).unwrap_or_default();
        for wanted in ["Established", "NamesAccepted"] {
            let condition = conditions
                .iter()
                .find(|c| c.type_ == wanted)
                .unwrap_or_else(|| panic!("CRD {name} has no {wanted} condition: {conditions:?}"));
            assert_eq!(
                condition.status, "True",
                "CRD {name} {wanted}: {condition:?}"
            );
        }
        let managers: Vec<_> = served
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(
            managers.iter().any(|m| m == support::FIELD_MANAGER),
            "CRD {name} is not managed by {}: {managers:?}",
            support::FIELD_MANAGER
        );
    }
}
