//! A Tenant being deleted: the tenant's exit, stage by stage. `roster_lifecycle::exit`
//! decides the next stage from what `status.exit` recorded; this module carries it out
//! and records its completion (or failure) before the next reconcile asks again:
//!
//! 1. `ErasePlatform`: the learning platform's `DELETE /tenant`, keyed by the Tenant's UID;
//! 2. `DeleteObjects`: the tenant's DirectoryUsers, Departures and DirectoryGroups
//!    deleted (and the users' lifecycle finalizers released: their data is gone with the
//!    tenant), until a fresh list finds none;
//! 3. `SealReceipts`: the exit's erasure receipt, which ends the tenant's chain;
//!
//! then the policies only this Tenant named, and the Tenant itself, are released.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use roster_api::condition::set_condition;
use roster_api::{
    Departure, DirectoryGroup, DirectoryUser, ExitObjectCounts, ExitStage, Tenant, TenantStatus,
    UserCounts,
};
use roster_lifecycle::erasure::ReceiptFor;
use roster_lifecycle::exit::{self, ExitObserved, ExitStep};

use super::{Check, KIND, count, release_unused_policies, without_source_syncs};
use crate::controller::{Context, Error, FINALIZER, Result, TENANT_FINALIZER, patch};
use crate::receipts::Covers;

/// How soon a stage that is waiting for the API server (objects finishing their
/// deletion) looks again; status writes wake the controller sooner.
const POLL: Duration = Duration::from_millis(250);
/// How often the objects' deletion is looked at (and its progress written).
const DELETE_POLL: Duration = Duration::from_secs(1);
/// Deletes in flight at once.
const DELETES_IN_FLIGHT: usize = 16;

/// One reconcile of a Tenant that is being deleted: stages run one after the other,
/// each recorded before the next, until one has to wait (a backoff, objects still
/// finishing their deletion, a suspended tenant) or the Tenant is released.
pub(super) async fn finalize(
    tenants: &Api<Tenant>,
    tenant: &Tenant,
    namespace: &str,
    context: &Context,
    now: DateTime<Utc>,
) -> Result<Action> {
    let mut tenant = tenant.clone();
    loop {
        match stage(tenants, &tenant, namespace, context, now).await? {
            Next::Continue(written) => tenant = *written,
            Next::Done(action) => return Ok(action),
        }
    }
}

enum Next {
    /// The stage was recorded: go on with the Tenant as written.
    Continue(Box<Tenant>),
    Done(Action),
}

async fn stage(
    tenants: &Api<Tenant>,
    tenant: &Tenant,
    namespace: &str,
    context: &Context,
    now: DateTime<Utc>,
) -> Result<Next> {
    let name = tenant.name_any();
    let uid = tenant.uid().unwrap_or_default();
    let objects = Objects::list(context, namespace, &name).await?;
    let mut status: TenantStatus = tenant.status.clone().unwrap_or_default();
    let decision = exit::next(ExitObserved {
        tenant_uid: &uid,
        exit: status.exit.as_ref(),
        suspended: tenant.spec.suspend,
        remaining: objects.counts(),
        now,
    });
    let mut next = None;
    match decision.step {
        ExitStep::Begin => status.exit = Some(exit::begin(now)),
        ExitStep::ErasePlatform { idempotency_key } => {
            let outcome = crate::metrics::downstream::observed(
                &context.metrics,
                context.effects.exit_tenant(tenant, &idempotency_key),
            )
            .await;
            let state = status.exit.as_mut().expect("the exit has begun");
            match outcome {
                Ok(()) => exit::record_done(
                    state,
                    ExitStage::ErasePlatform,
                    Some(idempotency_key),
                    context.clock.now(),
                ),
                Err(failure) => {
                    exit::record_failure(
                        state,
                        failure.error,
                        failure.retry_after,
                        context.clock.now(),
                    );
                    next = Some(Action::requeue(Duration::ZERO));
                }
            }
        }
        ExitStep::DeleteObjects => {
            let state = status.exit.as_mut().expect("the exit has begun");
            if state.objects_at_start.is_none() {
                // Counted before the first delete, for the exit's receipt.
                state.objects_at_start = Some(objects.counts());
                write(
                    tenants,
                    tenant,
                    &name,
                    &mut status,
                    &objects,
                    &decision.message,
                    now,
                )
                .await?;
            }
            objects.delete(context, namespace).await?;
            // Every write of a Tenant being deleted wakes its people (their Tenant
            // changed), so progress is written at most about once a second.
            next = Some(Action::requeue(DELETE_POLL));
        }
        ExitStep::ObjectsGone => exit::record_done(
            status.exit.as_mut().expect("the exit has begun"),
            ExitStage::DeleteObjects,
            None,
            context.clock.now(),
        ),
        ExitStep::SealReceipts => {
            let state = status.exit.as_mut().expect("the exit has begun");
            match seal(tenant, namespace, &uid, state, context).await {
                Ok(()) => {
                    exit::record_done(state, ExitStage::SealReceipts, None, context.clock.now())
                }
                Err(error) => {
                    exit::record_failure(state, error, None, context.clock.now());
                    next = Some(Action::requeue(Duration::ZERO));
                }
            }
        }
        ExitStep::Release => {
            release_unused_policies(namespace, Some(&name), context).await?;
            if tenant.finalizers().iter().any(|f| f == TENANT_FINALIZER) {
                patch::finalizer(tenants, &name, KIND, TENANT_FINALIZER, false).await?;
            }
            context.metrics.forget_tenant(namespace, &name);
            return Ok(Next::Done(Action::await_change()));
        }
        ExitStep::Wait { until } => {
            next = Some(match until {
                Some(at) => {
                    Action::requeue((at - now).to_std().unwrap_or(Duration::ZERO) + POLL / 10)
                }
                None => Action::await_change(),
            });
        }
    }
    // The condition describes what comes next, now that this stage ran.
    let message = exit::next(ExitObserved {
        tenant_uid: &uid,
        exit: status.exit.as_ref(),
        suspended: tenant.spec.suspend,
        remaining: objects.counts(),
        now: context.clock.now(),
    })
    .message;
    let written = write(tenants, tenant, &name, &mut status, &objects, &message, now).await?;
    Ok(match (next, written) {
        (Some(action), _) => Next::Done(action),
        (None, Some(written)) => Next::Continue(Box::new(written)),
        // Nothing changed, which a recorded stage always does: look again shortly.
        (None, None) => Next::Done(Action::requeue(POLL)),
    })
}

/// Writes the exit's progress: `Ready` False with reason `Exiting` and the stage, the
/// counts of what remains, and `status.exit`. Only when something changed.
async fn write(
    tenants: &Api<Tenant>,
    tenant: &Tenant,
    name: &str,
    status: &mut TenantStatus,
    objects: &Objects,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Option<Tenant>> {
    let ready = Check {
        r#type: "Ready",
        ok: false,
        reason: "Exiting",
        message: message.to_string(),
    };
    set_condition(
        &mut status.conditions,
        ready.into_condition(tenant.metadata.generation, now),
    );
    if let Some(state) = status.exit.as_mut() {
        let counts = objects.counts();
        state.users_remaining = counts.users;
        state.departures_remaining = counts.departures;
        state.groups_remaining = counts.groups;
    }
    let people: Vec<std::sync::Arc<DirectoryUser>> = objects
        .users
        .iter()
        .cloned()
        .chain(objects.departures.iter().map(|d| d.as_directory_user()))
        .map(std::sync::Arc::new)
        .collect();
    status.user_counts = Some(count(UserCounts::default(), people.iter()));
    if tenant.status.as_ref() != Some(status) {
        let written =
            patch::status(tenants, name, KIND, &without_source_syncs(status.clone())).await?;
        return Ok(Some(written));
    }
    Ok(None)
}

/// Writes the receipt that ends the tenant's erasure chain (once: a receipt of the
/// exit already there is kept). The error is PII-free, for `status.exit.lastError`.
async fn seal(
    tenant: &Tenant,
    namespace: &str,
    uid: &str,
    state: &roster_api::TenantExitStatus,
    context: &Context,
) -> std::result::Result<(), String> {
    let key = crate::receipts::signing_key(&context.client, tenant)
        .await
        .map_err(|e| e.to_string())?;
    let name = tenant.name_any();
    let draft = roster_lifecycle::erasure::exit_draft(
        ReceiptFor {
            tenant: &name,
            tenant_uid: uid,
            key: key.as_ref().map(|(_, k)| &k[..]),
        },
        state,
        context.clock.now(),
    );
    match context
        .receipts
        .append(
            &context.client,
            namespace,
            draft,
            Covers::Exit,
            key.as_ref(),
        )
        .await
    {
        Ok(_) => Ok(()),
        // The namespace, receipts included, is being deleted (a namespace deletion
        // rather than a Tenant's): there is no chain left to end.
        Err(e) if e.namespace_terminating() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The tenant's objects as the API server has them now (not the stores, which may lag:
/// the stage is recorded complete only when a fresh list finds nothing).
struct Objects {
    users: Vec<DirectoryUser>,
    departures: Vec<Departure>,
    groups: Vec<DirectoryGroup>,
}

impl Objects {
    async fn list(context: &Context, namespace: &str, tenant: &str) -> Result<Self> {
        let client = &context.client;
        let all = ListParams::default();
        let users = Api::<DirectoryUser>::namespaced(client.clone(), namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|u| u.spec.tenant_ref.name == tenant)
            .collect();
        let departures = Api::<Departure>::namespaced(client.clone(), namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|d| d.spec.record.tenant_ref.name == tenant)
            .collect();
        let groups = Api::<DirectoryGroup>::namespaced(client.clone(), namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|g| g.spec.tenant_ref.name == tenant)
            .collect();
        Ok(Self {
            users,
            departures,
            groups,
        })
    }

    fn counts(&self) -> ExitObjectCounts {
        let n = |len: usize| i32::try_from(len).unwrap_or(i32::MAX);
        ExitObjectCounts {
            users: n(self.users.len()),
            departures: n(self.departures.len()),
            groups: n(self.groups.len()),
        }
    }

    /// Deletes whatever is not being deleted yet ("already gone" is fine). The users'
    /// finalizers are released by their own controller, without calls.
    async fn delete(&self, context: &Context, namespace: &str) -> Result<()> {
        let client = &context.client;
        let users: Api<DirectoryUser> = Api::namespaced(client.clone(), namespace);
        let departures: Api<Departure> = Api::namespaced(client.clone(), namespace);
        let groups: Api<DirectoryGroup> = Api::namespaced(client.clone(), namespace);
        let pending = |meta: &kube::api::ObjectMeta| meta.deletion_timestamp.is_none();
        let mut deletes: Vec<futures::future::BoxFuture<'_, Result<()>>> = Vec::new();
        for user in self.users.iter().filter(|u| pending(&u.metadata)) {
            let (api, name) = (users.clone(), user.name_any());
            deletes.push(Box::pin(async move {
                gone(api.delete(&name, &DeleteParams::default()).await)
            }));
        }
        for departure in self.departures.iter().filter(|d| pending(&d.metadata)) {
            let (api, name) = (departures.clone(), departure.name_any());
            deletes.push(Box::pin(async move {
                gone(api.delete(&name, &DeleteParams::default()).await)
            }));
        }
        for group in self.groups.iter().filter(|g| pending(&g.metadata)) {
            let (api, name) = (groups.clone(), group.name_any());
            deletes.push(Box::pin(async move {
                gone(api.delete(&name, &DeleteParams::default()).await)
            }));
        }
        let results: Vec<Result<()>> = futures::stream::iter(deletes)
            .buffer_unordered(DELETES_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect::<Result<()>>()?;
        // The platform has erased the tenant (the stage before), so nothing is left for
        // the users' lifecycle finalizer to wait for: released here, in one pass, rather
        // than by 500 reconciles of the user controller, each woken by this Tenant.
        let held = self
            .users
            .iter()
            .filter(|u| u.finalizers().iter().any(|f| f == FINALIZER));
        let releases: Vec<_> = held
            .map(|user| {
                let (api, name) = (users.clone(), user.name_any());
                async move {
                    match patch::finalizer(&api, &name, "DirectoryUser", FINALIZER, false).await {
                        Err(Error::Kube(kube::Error::Api(e))) if e.code == 404 => Ok(()),
                        result => result.map(drop),
                    }
                }
            })
            .collect();
        let results: Vec<Result<()>> = futures::stream::iter(releases)
            .buffer_unordered(DELETES_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

fn gone<T>(result: std::result::Result<T, kube::Error>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}
