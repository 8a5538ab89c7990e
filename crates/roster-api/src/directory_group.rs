//! `DirectoryGroup`: a group an identity provider pushes over SCIM (Okta's Push
//! Groups, Entra ID's group provisioning). Its members are the DirectoryUsers whose
//! `spec.groups` name it; the Tenant's group rules turn those names into
//! learning-platform groups (a condition on the field `groups`), as the platform's own
//! SSO group mapping does.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::tenant::LocalObjectRef;

/// A group of people from a people source.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "A group from a people source (an identity provider's pushed group). Members are the DirectoryUsers whose spec.groups list its displayName; the Tenant's group rules (field `groups`) map it to learning-platform groups. Written by roster's SCIM endpoint; named from a digest, never from the group's name.",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "DirectoryGroup",
    namespaced,
    shortname = "dg",
    category = "roster",
    printcolumn(json_path = ".spec.tenantRef.name", name = "Tenant", type_ = "string"),
    printcolumn(
        json_path = ".spec.displayName",
        name = "Display-Name",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryGroupSpec {
    /// The Tenant (in this namespace) the group belongs to. Immutable.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("tenantRef is immutable: create a new DirectoryGroup for another tenant"))]
    pub tenant_ref: LocalObjectRef,
    /// The group's name at the source, unique in the tenant; what members' `groups`
    /// and the Tenant's group rules name.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// The source's own identifier of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub external_id: Option<String>,
}
