//! API types of `roster.dev/v1alpha1`. The CRDs in `crds/` are generated from these.

// kube's repeated `printcolumn(...)` arguments look like duplicated attributes to clippy.
pub mod admission;
pub mod condition;
#[allow(clippy::duplicated_attributes)]
pub mod departure;
#[allow(clippy::duplicated_attributes)]
pub mod directory_group;
#[allow(clippy::duplicated_attributes)]
pub mod directory_user;
#[allow(clippy::duplicated_attributes)]
pub mod erasure_receipt;
mod names;
#[allow(clippy::duplicated_attributes)]
pub mod policy;
#[allow(clippy::duplicated_attributes)]
pub mod tenant;

pub use condition::{Condition, ConditionStatus};
pub use departure::{Departure, DepartureSpec};
pub use directory_group::{DirectoryGroup, DirectoryGroupSpec};
pub use directory_user::{
    APPROVE_ANNOTATION, AccountStatus, DEPROVISION_NOW_ANNOTATION, DirectoryUser,
    DirectoryUserSpec, DirectoryUserStatus, HandledRequests, Phase, Provisioning, RETRY_ANNOTATION,
    RecordSource, RemovalGuardRecord, StepName, StepState, StepStatus, SyncedProfile, Trigger,
};
pub use erasure_receipt::{
    ErasureReceipt, ErasureReceiptSpec, ErasureSystem, ReceiptKind, Removal,
};
pub use policy::{
    CalendarOwnerCandidate, DeprovisionActions, DeprovisionPolicy, DeprovisionPolicySpec,
    MassDeprovisionGuard, ObjectDeletionMode, RuleTransferTarget,
};
pub use smol_str::SmolStr;
pub use tenant::{
    CalendarProvider, ErasureReceiptSettings, ExitObjectCounts, ExitStage, ExitStageRecord,
    GuardTrip, Tenant, TenantExitStatus, TenantSpec, TenantStatus, UserCounts,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD roster serves, in the order they are documented.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Tenant::crd(),
        DeprovisionPolicy::crd(),
        DirectoryUser::crd(),
        Departure::crd(),
        DirectoryGroup::crd(),
        ErasureReceipt::crd(),
    ]
    .into_iter()
    .map(without_nullable)
    .collect()
}

/// Optional fields are omitted, never `null` (the API conventions; a `null` sent by a
/// client is then pruned like an absent field). The schema generator marks every
/// `Option` nullable, so the mark is taken out once, here.
fn without_nullable(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("nullable");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    if let Some(versions) = value.pointer_mut("/spec/versions") {
        strip(versions);
    }
    serde_json::from_value(value).expect("a CRD without nullable marks deserializes")
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

    /// `kubectl explain` describes every field: each property of every schema has a
    /// description (the doc comment of its Rust field).
    #[test]
    fn every_field_is_documented() {
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
                for (name, property) in properties {
                    let here = format!("{path}.{name}");
                    let documented = property
                        .get("description")
                        .and_then(|d| d.as_str())
                        .is_some_and(|d| !d.trim().is_empty());
                    // apiVersion, kind and metadata are Kubernetes' own.
                    let standard = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                    if !documented && !standard {
                        missing.push(here.clone());
                    }
                    walk(&here, property, missing);
                }
            }
            if let Some(items) = schema.get("items") {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        let mut missing = Vec::new();
        for crd in super::all() {
            let value = serde_json::to_value(&crd).unwrap();
            let kind = crd.spec.names.kind.clone();
            for version in value["spec"]["versions"].as_array().unwrap() {
                walk(&kind, &version["schema"]["openAPIV3Schema"], &mut missing);
            }
        }
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:#?}"
        );
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
