//! API types of `roster.dev/v1alpha1`. The CRDs in `crds/` are generated from these.

pub mod condition;
pub mod directory_user;
pub mod policy;
pub mod tenant;

pub use condition::{Condition, ConditionStatus};
pub use directory_user::{
    DirectoryUser, DirectoryUserSpec, DirectoryUserStatus, Phase, RecordSource, StepName,
    StepState, StepStatus, Trigger,
};
pub use policy::{
    CalendarOwnerCandidate, DeprovisionActions, DeprovisionPolicy, DeprovisionPolicySpec,
    DeprovisionPolicyStatus, MassDeprovisionGuard, ObjectDeletionMode, RuleTransferTarget,
};
pub use tenant::{Tenant, TenantSpec, TenantStatus, UserCounts};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD roster serves, in the order they are documented.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![Tenant::crd(), DeprovisionPolicy::crd(), DirectoryUser::crd()]
}

/// The CRDs as one multi-document YAML stream, exactly as checked in under `crds/`.
pub fn to_yaml() -> String {
    all()
        .iter()
        .map(|crd| serde_yaml_ng::to_string(crd).expect("CRDs serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}
