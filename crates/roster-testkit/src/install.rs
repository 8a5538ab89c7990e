//! Installs what `crds/roster.yaml` holds (the CRDs and the Tenant deletion-protection
//! admission policy) into a control plane, as `kubectl apply -f crds/` would, and waits
//! until every CRD is Established. Shared by the integration tests and the demo.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("apply {what}: {source}")]
    Apply { what: String, source: kube::Error },
    #[error("CRD {0} was not Established within {1:?}")]
    NotEstablished(String, Duration),
    #[error("watch CRD {name}: {source}")]
    Watch {
        name: String,
        source: kube::runtime::wait::Error,
    },
}

/// Applies everything with server-side apply as `field_manager` (idempotent), then
/// waits up to `timeout` for each CRD's Established condition.
pub async fn install_crds(
    client: &Client,
    field_manager: &str,
    timeout: Duration,
) -> Result<(), InstallError> {
    let params = PatchParams::apply(field_manager).force();
    let apply_err = |what: String| move |source| InstallError::Apply { what, source };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in roster_api::all() {
        let name = crd.name_any();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(apply_err(format!("CRD {name}")))?;
    }
    let (policy, binding) = roster_api::admission::deletion_protection();
    let name = roster_api::admission::DELETION_PROTECTION;
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .patch(name, &params, &Patch::Apply(&policy))
        .await
        .map_err(apply_err(format!("ValidatingAdmissionPolicy {name}")))?;
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .patch(name, &params, &Patch::Apply(&binding))
        .await
        .map_err(apply_err(format!(
            "ValidatingAdmissionPolicyBinding {name}"
        )))?;
    for crd in roster_api::all() {
        let name = crd.name_any();
        tokio::time::timeout(
            timeout,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| InstallError::NotEstablished(name.clone(), timeout))?
        .map_err(|source| InstallError::Watch { name, source })?;
    }
    Ok(())
}
