//! The writes of a DirectoryUser reconcile: the PII scrub, status (only when it
//! changed), the blocked condition and the finalizer. Each is one API call; none
//! decides anything.

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use roster_api::condition::{ConditionStatus, set_condition};
use roster_api::{Condition, DirectoryUser, DirectoryUserStatus};

use super::KIND;
use crate::controller::{FINALIZER, Result, patch};

/// Field manager of the purge patch, apart from status and finalizer managers.
const PURGE_MANAGER: &str = "roster-purge";

/// Replaces or removes every personal field of the record and the annotations that
/// may copy them, as the core's PII list says.
pub async fn scrub_pii(api: &Api<DirectoryUser>, name: &str) -> Result<()> {
    let params = PatchParams {
        field_manager: Some(PURGE_MANAGER.into()),
        ..Default::default()
    };
    let body = roster_lifecycle::pii::purge_patch();
    api.patch(name, &params, &Patch::Merge(&body)).await?;
    Ok(())
}

/// Writes `status` unless the object already has it (no write, no watch event, no loop).
pub async fn status(
    api: &Api<DirectoryUser>,
    user: &DirectoryUser,
    status: &DirectoryUserStatus,
) -> Result<()> {
    if user.status.as_ref() != Some(status) {
        patch::status(api, &user.name_any(), KIND, status).await?;
    }
    Ok(())
}

/// Writes `status` (after a step: always, so the step's result is durable).
pub async fn step_result(
    api: &Api<DirectoryUser>,
    name: &str,
    status: &DirectoryUserStatus,
) -> Result<()> {
    patch::status(api, name, KIND, status).await?;
    Ok(())
}

/// Records why the lifecycle cannot run (phase unchanged), writing only on change:
/// not Ready, and Stalled, so kstatus (Flux, Argo CD) reports a failure that needs a
/// person rather than waiting for progress that cannot come.
pub async fn blocked(
    api: &Api<DirectoryUser>,
    user: &DirectoryUser,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut status: DirectoryUserStatus = user.status.clone().unwrap_or_default();
    let condition = |r#type: &str, on: bool, reason: &str, message: &str| Condition {
        r#type: r#type.into(),
        status: ConditionStatus::from(on),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now,
        observed_generation: user.metadata.generation,
    };
    let mut changed = false;
    for c in [
        condition("Ready", false, reason, &message),
        condition("Stalled", true, reason, &message),
        condition("Reconciling", false, reason, ""),
    ] {
        changed |= set_condition(&mut status.conditions, c);
    }
    if changed || status.observed_generation != user.metadata.generation {
        status.observed_generation = user.metadata.generation;
        patch::status(api, &user.name_any(), KIND, &status).await?;
    }
    Ok(())
}

/// Adds (`true`) or releases (`false`) roster's finalizer.
pub async fn finalizer(api: &Api<DirectoryUser>, name: &str, present: bool) -> Result<()> {
    patch::finalizer(api, name, KIND, FINALIZER, present).await?;
    Ok(())
}
