//! Deletion under the `Quarantine` rule without holding the object: once access is
//! revoked, the lifecycle moves to a [`Departure`] of the same name (record, UID for the
//! idempotency keys, status), and the DirectoryUser's finalizer goes. A DirectoryUser of
//! the same person (tenant and employee ID) that comes back while the Departure is still
//! in its quarantine takes the lifecycle back, which reverses it.

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use roster_api::{Departure, DirectoryUser, DirectoryUserStatus, ObjectDeletionMode, Phase};
use roster_lifecycle::Policy;
use tracing::info;

use super::{announce, persist};
use crate::controller::{Context, MANAGER, Result};

/// Whether a deleted user's lifecycle moves to a Departure now: the policy treats a
/// deletion as a removal with a quarantine, and the quarantine (or the guard's hold)
/// has begun, so access is revoked or being revoked. (`Immediate` keeps the object
/// until the purge, which follows within moments.)
pub fn hands_over(policy: &Policy, status: &DirectoryUserStatus) -> bool {
    policy.on_object_deletion == ObjectDeletionMode::Quarantine
        && matches!(status.phase, Phase::Quarantined | Phase::Held)
}

/// Writes the Departure (record, then status) and releases the finalizer. Each write is
/// idempotent; a crash between them repeats them on the next reconcile. Returns false,
/// changing nothing, when a Departure of that name belongs to someone else.
pub async fn hand_over(
    api: &Api<DirectoryUser>,
    user: &DirectoryUser,
    status: &DirectoryUserStatus,
    context: &Context,
) -> Result<bool> {
    let name = user.name_any();
    let namespace = user.namespace().unwrap_or_default();
    let departures: Api<Departure> = Api::namespaced(context.client.clone(), &namespace);
    let departure = Departure::of(user);
    if let Some(existing) = departures.get_opt(&name).await?
        && existing.spec.origin_uid != departure.spec.origin_uid
    {
        return Ok(false);
    }
    departures
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&departure),
        )
        .await?;
    let home = persist::Home::Departure(departures);
    persist::step_result(&home, &name, status, &context.written).await?;
    announce::handed_over(context, user, status).await;
    persist::finalizer(api, &name, false).await?;
    info!("deleted user handed over to its Departure");
    Ok(true)
}

/// The Departure of this person (same namespace, tenant and employee ID) that another
/// object left, if any. From the store; when the user has done nothing yet (it may have
/// been re-created a moment ago), also read directly, so a store that lags cannot make
/// a returning person start over as a joiner.
async fn departure_of(
    user: &DirectoryUser,
    context: &Context,
    departures: &Api<Departure>,
) -> Result<Option<Departure>> {
    let uid = user.uid().unwrap_or_default();
    let same_person = |d: &Departure| {
        d.metadata.namespace == user.metadata.namespace
            && d.spec.record.tenant_ref == user.spec.tenant_ref
            && d.spec.record.employee_id == user.spec.employee_id
            && d.spec.origin_uid != uid
    };
    if let Some(found) = context.departures.find(|d| same_person(d)) {
        return Ok(Some((*found).clone()));
    }
    let fresh = user.status.as_ref().is_none_or(|s| {
        s.episode == 0 && s.account.provisioned.is_none() && s.phase == Phase::Active
    });
    if !fresh {
        return Ok(None);
    }
    Ok(departures
        .get_opt(&user.name_any())
        .await?
        .filter(|d| same_person(d)))
}

/// Takes a person's lifecycle back from their Departure, or waits for it. `None` when
/// there is no Departure of this person and the lifecycle goes on here.
pub async fn take_back(
    api: &Api<DirectoryUser>,
    user: &DirectoryUser,
    namespace: &str,
    context: &Context,
) -> Result<Option<Action>> {
    let departures: Api<Departure> = Api::namespaced(context.client.clone(), namespace);
    let Some(departure) = departure_of(user, context, &departures).await? else {
        return Ok(None);
    };
    let name = user.name_any();
    if user.metadata.deletion_timestamp.is_some() {
        // Deleted again while the earlier deletion is still being carried out there.
        announce::released_without_platform(
            context,
            user,
            "ReleasedToDeparture",
            "deleted while an earlier Departure of this person is in progress: released; the Departure carries on",
        )
        .await;
        persist::finalizer(api, &name, false).await?;
        return Ok(Some(Action::await_change()));
    }
    let Some(status) = departure.status.clone() else {
        // Not handed over completely yet: the deleting object finishes that first.
        return Ok(Some(Action::requeue(std::time::Duration::from_secs(1))));
    };
    if !matches!(status.phase, Phase::Quarantined | Phase::Held) {
        persist::blocked(
            &persist::Home::User(api.clone()),
            user,
            "DepartureInProgress",
            format!(
                "this employee ID left when DirectoryUser {:?} was deleted, and its quarantine is over (Departure {:?}, phase {}); this record takes over once that person is purged",
                departure.name_any(),
                departure.name_any(),
                status.phase
            ),
            context.clock.now(),
            &context.written,
        )
        .await?;
        // The Departure watch wakes this user when it goes.
        return Ok(Some(Action::await_change()));
    }
    // The status first, then the Departure goes, and only if it did not move meanwhile:
    // a crash in between takes it back again; a Departure that moved on is not lost.
    let home = persist::Home::User(api.clone());
    persist::step_result(&home, &name, &status, &context.written).await?;
    let preconditions = Preconditions {
        uid: departure.uid(),
        resource_version: departure.resource_version(),
    };
    departures
        .delete(
            &departure.name_any(),
            &DeleteParams {
                preconditions: Some(preconditions),
                ..Default::default()
            },
        )
        .await?;
    announce::taken_back(context, user, &departure.name_any()).await;
    info!("a returning person took their lifecycle back from their Departure");
    Ok(Some(Action::await_change()))
}
