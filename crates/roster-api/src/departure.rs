//! `Departure`: a leaver whose DirectoryUser was deleted under the `Quarantine` rule.
//! roster hands the lifecycle over to it, so that the deleted object (and its
//! namespace) is not held in Terminating for the quarantine, and so that re-creating
//! the person (same employee ID) during the quarantine reverses it. roster alone writes
//! Departures; one is deleted when the person is purged or taken back.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::directory_user::{DirectoryUser, DirectoryUserSpec, DirectoryUserStatus};

/// What roster keeps of a deleted DirectoryUser until the purge.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    doc = "A leaver whose DirectoryUser was deleted while the policy says Quarantine: roster carries the lifecycle on here (access is already revoked), and deletes it once the person is purged, or when a DirectoryUser with the same employee ID comes back during the quarantine and takes the lifecycle back. Written by roster only; named like the deleted DirectoryUser.",
    group = "roster.dev",
    version = "v1alpha1",
    kind = "Departure",
    namespaced,
    status = "DirectoryUserStatus",
    shortname = "dep",
    category = "roster",
    printcolumn(json_path = ".status.phase", name = "Phase", type_ = "string"),
    printcolumn(
        json_path = ".spec.record.tenantRef.name",
        name = "Tenant",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".spec.record.employeeID",
        name = "Employee-ID",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.nextDeadline",
        name = "Next-Deadline",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DepartureSpec {
    /// UID of the deleted DirectoryUser: the stem of the lifecycle's idempotency keys,
    /// kept so that the hand-over neither repeats nor skips a step.
    #[serde(rename = "originUID")]
    #[schemars(length(min = 1, max = 64))]
    pub origin_uid: String,
    /// The deleted DirectoryUser's record as it was. Personal data until the purge,
    /// after which the Departure is deleted.
    pub record: DirectoryUserSpec,
}

impl Departure {
    /// A Departure for `user`, which is being deleted: its name, record and UID.
    pub fn of(user: &DirectoryUser) -> Self {
        let mut departure = Departure::new(
            &user.name_any(),
            DepartureSpec {
                origin_uid: user.uid().unwrap_or_default(),
                record: user.spec.clone(),
            },
        );
        departure.metadata.namespace = user.namespace();
        departure
    }

    /// The deleted DirectoryUser as the lifecycle sees it: same name, UID, record and
    /// status, and being deleted (since the Departure was created).
    pub fn as_directory_user(&self) -> DirectoryUser {
        let mut user = DirectoryUser::new(&self.name_any(), self.spec.record.clone());
        user.metadata.namespace = self.namespace();
        user.metadata.uid = Some(self.spec.origin_uid.clone());
        user.metadata.generation = self.metadata.generation;
        user.metadata.resource_version = self.metadata.resource_version.clone();
        user.metadata.creation_timestamp = self.metadata.creation_timestamp.clone();
        user.metadata.deletion_timestamp =
            Some(self.metadata.creation_timestamp.clone().unwrap_or(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
            ));
        user.status = self.status.clone();
        user
    }
}
