//! The writes of a DirectoryUser reconcile: the PII scrub, status (only when it
//! changed), the blocked condition and the finalizer. Each is one API call; none
//! decides anything.

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use roster_api::{Departure, DirectoryUser, DirectoryUserStatus};

use std::sync::Arc;

use super::KIND;
use crate::controller::written::Written;
use crate::controller::{FINALIZER, Result, patch};

/// Where a leaver's lifecycle is kept: the DirectoryUser itself, or (after a deletion
/// under the `Quarantine` rule) the Departure that took it over, named like it.
#[derive(Clone)]
pub enum Home {
    User(Api<DirectoryUser>),
    Departure(Api<Departure>),
}

impl Home {
    /// Writes `status` to the object named `name`; returns the object as written.
    pub async fn write_status(
        &self,
        name: &str,
        status: &DirectoryUserStatus,
    ) -> Result<DirectoryUser> {
        Ok(match self {
            Home::User(api) => patch::status(api, name, KIND, status).await?,
            Home::Departure(api) => patch::status(api, name, "Departure", status)
                .await?
                .as_directory_user(),
        })
    }

    /// The namespace of the object.
    pub fn namespace(&self) -> &str {
        match self {
            Home::User(api) => api.namespace(),
            Home::Departure(api) => api.namespace(),
        }
        .unwrap_or_default()
    }

    /// The kind of object the lifecycle is kept in.
    pub fn kind(&self) -> &'static str {
        match self {
            Home::User(_) => KIND,
            Home::Departure(_) => "Departure",
        }
    }

    /// What a wait for a stage-2 slot (or a receipt turn) queues, to wake the
    /// controller that reconciles the object `user` was read from.
    pub fn waiter(&self, user: &DirectoryUser) -> super::Waiter {
        let name = user.name_any();
        match self {
            Home::User(_) => super::Waiter::User(ObjectRef::new(&name).within(self.namespace())),
            Home::Departure(_) => {
                super::Waiter::Departure(ObjectRef::new(&name).within(self.namespace()))
            }
        }
    }

    /// The controller that reconciles it, as metrics name it.
    pub fn controller(&self) -> &'static str {
        match self {
            Home::User(_) => "directoryuser",
            Home::Departure(_) => "departure",
        }
    }

    /// A fresh read, as the lifecycle sees the person.
    pub async fn fresh(&self, name: &str) -> Result<DirectoryUser> {
        Ok(match self {
            Home::User(api) => api.get(name).await?,
            Home::Departure(api) => api.get(name).await?.as_directory_user(),
        })
    }

    /// The lifecycle is over (or the tenant left): the DirectoryUser's finalizer is
    /// released, a Departure deleted.
    pub async fn release(&self, name: &str) -> Result<()> {
        match self {
            Home::User(api) => finalizer(api, name, false).await.map(drop),
            Home::Departure(api) => match api.delete(name, &Default::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }
}

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

/// Writes `status` unless `persisted` (the object as the API server has it) already has
/// it (no write, no watch event, no loop); returns the object as the server has it now.
pub async fn status(
    home: &Home,
    persisted: Arc<DirectoryUser>,
    status: &DirectoryUserStatus,
    written: &Written,
) -> Result<Arc<DirectoryUser>> {
    if persisted.status.as_ref() == Some(status) {
        return Ok(persisted);
    }
    step_result(home, &persisted.name_any(), status, written).await
}

/// Writes `status` (after a step: always, so the step's result is durable); returns the
/// object as written and remembers its version (see [`Written`]).
pub async fn step_result(
    home: &Home,
    name: &str,
    status: &DirectoryUserStatus,
    written: &Written,
) -> Result<Arc<DirectoryUser>> {
    let object = match home.write_status(name, status).await {
        Ok(object) => object,
        Err(error) => {
            // It may have landed all the same: the next decision reads afresh.
            written.uncertain(home.kind(), home.namespace(), name);
            return Err(error);
        }
    };
    written.wrote(home.kind(), &object);
    Ok(Arc::new(object))
}

/// Writes why the lifecycle cannot run, when that changed the status
/// ([`roster_lifecycle::conditions::blocked`] decides).
pub async fn blocked(
    home: &Home,
    user: &DirectoryUser,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
    written: &Written,
) -> Result<()> {
    let mut status: DirectoryUserStatus = user.status.clone().unwrap_or_default();
    let generation = user.metadata.generation;
    if roster_lifecycle::conditions::blocked(&mut status, reason, &message, generation, now) {
        // Recorded as every status write is: a copy from before it is not decided on.
        step_result(home, &user.name_any(), &status, written).await?;
    }
    Ok(())
}

/// Adds (`true`) or releases (`false`) roster's finalizer; returns the object as written.
pub async fn finalizer(
    api: &Api<DirectoryUser>,
    name: &str,
    present: bool,
) -> Result<DirectoryUser> {
    patch::finalizer(api, name, KIND, FINALIZER, present).await
}
