//! Admission rules that a CRD schema cannot express, shipped with the CRDs as a
//! ValidatingAdmissionPolicy (CEL evaluated by the API server itself; no webhook to run).

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::json;

/// Name of the policy and its binding.
pub const DELETION_PROTECTION: &str = "roster.dev-tenant-deletion-protection";

/// Refuses to delete a Tenant whose `spec.deletionProtection` is true (the default):
/// deleting a Tenant is the platform's "full deletion" of a customer, engagement
/// records included, so it takes two deliberate steps.
pub fn deletion_protection() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": { "name": DELETION_PROTECTION },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["roster.dev"],
                    "apiVersions": ["*"],
                    "operations": ["DELETE"],
                    "resources": ["tenants"],
                }],
            },
            "validations": [{
                "expression": "!has(oldObject.spec.deletionProtection) || oldObject.spec.deletionProtection == false",
                "messageExpression": "'Tenant ' + oldObject.metadata.name + ' has spec.deletionProtection: true. Deleting a Tenant removes every user\\'s data at the learning platform, engagement records included. To proceed, first set spec.deletionProtection to false (kubectl patch tenant ' + oldObject.metadata.name + ' --type=merge -p \\'{\"spec\":{\"deletionProtection\":false}}\\'), then delete it again.'",
                "reason": "Forbidden",
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": { "name": DELETION_PROTECTION },
        "spec": {
            "policyName": DELETION_PROTECTION,
            "validationActions": ["Deny"],
        },
    });
    (
        serde_json::from_value(policy).expect("a valid ValidatingAdmissionPolicy"),
        serde_json::from_value(binding).expect("a valid ValidatingAdmissionPolicyBinding"),
    )
}
