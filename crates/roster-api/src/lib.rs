//! API types of `roster.dev/v1alpha1`. The CRDs in `crds/` are generated from these.

// kube's repeated `printcolumn(...)` arguments look like duplicated attributes to clippy.
pub mod admission;
pub mod condition;
#[allow(clippy::duplicated_attributes)]
pub mod directory_user;
mod names;
#[allow(clippy::duplicated_attributes)]
pub mod policy;
#[allow(clippy::duplicated_attributes)]
pub mod tenant;

pub use condition::{Condition, ConditionStatus};
pub use directory_user::{
    APPROVE_ANNOTATION, DEPROVISION_NOW_ANNOTATION, DirectoryUser, DirectoryUserSpec,
    DirectoryUserStatus, HandledRequests, Phase, RETRY_ANNOTATION, RecordSource, StepName,
    StepState, StepStatus, Trigger,
};
pub use policy::{
    CalendarOwnerCandidate, DeprovisionActions, DeprovisionPolicy, DeprovisionPolicySpec,
    MassDeprovisionGuard, ObjectDeletionMode, RuleTransferTarget,
};
pub use tenant::{CalendarProvider, Tenant, TenantSpec, TenantStatus, UserCounts};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD roster serves, in the order they are documented.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Tenant::crd(),
        DeprovisionPolicy::crd(),
        DirectoryUser::crd(),
    ]
}

/// The CRDs and the admission policy that ships with them, as one multi-document YAML
/// stream, exactly as checked in under `crds/`.
pub fn to_yaml() -> String {
    let (policy, binding) = admission::deletion_protection();
    let mut docs: Vec<String> = all()
        .iter()
        .map(|crd| serde_yaml_ng::to_string(crd).expect("CRDs serialize"))
        .collect();
    docs.push(serde_yaml_ng::to_string(&policy).expect("the admission policy serializes"));
    docs.push(serde_yaml_ng::to_string(&binding).expect("the binding serializes"));
    docs.join("---\n")
}

#[cfg(test)]
mod tests {
    /// `crds/roster.yaml` (and the Helm chart's copy) are generated from these types;
    /// this fails when either drifts.
    #[test]
    fn checked_in_crds_match_the_types() {
        for file in ["crds/roster.yaml", "charts/roster/crds/roster.yaml"] {
            let path =
                std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(file);
            let checked_in = std::fs::read_to_string(&path).expect("read the checked-in CRDs");
            assert!(
                checked_in == super::to_yaml(),
                "{file} is stale: regenerate it with `cargo run -p roster -- crd > {file}`"
            );
        }
    }

    #[test]
    fn every_crd_is_namespaced_in_the_roster_category() {
        for crd in super::all() {
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["roster".to_string()][..])
            );
            assert!(
                crd.spec
                    .names
                    .short_names
                    .as_ref()
                    .is_some_and(|s| !s.is_empty())
            );
        }
    }
}
