//! The Departure controller: the lifecycle of people whose DirectoryUser was deleted
//! under the `Quarantine` rule, carried on by the same stages as the DirectoryUser's
//! (see [`super::directory_user::lifecycle`]) until they are purged, when the Departure
//! is deleted, or taken back by a returning DirectoryUser.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tracing::{instrument, warn};

use kube::runtime::reflector::{ObjectRef, Store};
use roster_api::{Departure, DeprovisionPolicy, Tenant};

use super::directory_user::{self, Home};
use super::{Context, Error, Options, Result};

pub async fn controller(
    options: &Options,
    context: Arc<Context>,
    departures: impl Stream<Item = Result<Departure, watcher::Error>> + Send + 'static,
    tenants: impl Stream<Item = Result<Tenant, watcher::Error>> + Send + 'static,
    policies: impl Stream<Item = Result<DeprovisionPolicy, watcher::Error>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let store = context.departures.clone();
    let by_tenant = store.clone();
    let by_policy = store.clone();
    let tenant_store = context.tenants.clone();
    let queues = context.metrics.queues.clone();
    let (by_tenant_queue, by_policy_queue, in_store) =
        (queues.clone(), queues.clone(), store.clone());
    // The queue mirror (crate::metrics::queue) sees what each trigger hands over.
    let departures = departures.inspect(move |event| {
        if let Ok(departure) = event {
            let key = crate::metrics::queue::key_of(departure);
            match in_store.get(&ObjectRef::from_obj(departure)) {
                Some(_) => queues.triggered(CONTROLLER, key),
                None => queues.started(CONTROLLER, key),
            }
        }
    });
    Controller::for_stream(departures, store)
        // A released stage-2 slot (or receipt turn) wakes the Departure waiting longest.
        .reconcile_on(context.stage_two.woken_departures())
        .reconcile_on(context.receipt_turn.woken_departures())
        .with_config(Config::default().concurrency(options.concurrency))
        // The end of an API server outage retries what it held up, all at once.
        .reconcile_all_on(options.apiserver.recoveries())
        // The Tenant's deletion (the tenant's exit) or any other change of it, and a
        // policy edit (a shorter quarantine), apply to Departures as to users.
        .watches_stream(tenants, move |tenant: Tenant| {
            queued(
                &by_tenant_queue,
                of_tenant(&by_tenant, tenant.namespace(), &tenant.name_any()),
            )
        })
        .watches_stream(policies, move |policy: DeprovisionPolicy| {
            queued(
                &by_policy_queue,
                super::tenants_using(&tenant_store, &policy)
                    .into_iter()
                    .flat_map(|t| of_tenant(&by_policy, t.namespace(), &t.name_any()))
                    .collect(),
            )
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "departure reconcile stream");
            }
        })
        .await;
}

/// The controller's name in metrics.
const CONTROLLER: &str = "departure";

/// Notes `refs` in the queue mirror and hands them on.
fn queued(
    queues: &crate::metrics::queue::Queues,
    refs: Vec<ObjectRef<Departure>>,
) -> Vec<ObjectRef<Departure>> {
    for r in &refs {
        queues.triggered(CONTROLLER, crate::metrics::queue::key_of_ref(r));
    }
    refs
}

fn of_tenant(
    departures: &Store<Departure>,
    namespace: Option<String>,
    tenant: &str,
) -> Vec<ObjectRef<Departure>> {
    departures
        .state()
        .into_iter()
        .filter(|d| d.namespace() == namespace && d.spec.record.tenant_ref.name == tenant)
        .map(|d| ObjectRef::from_obj(&*d))
        .collect()
}

#[instrument(skip_all, fields(namespace = departure.namespace(), departure = departure.name_any()))]
async fn reconcile(departure: Arc<Departure>, context: Arc<Context>) -> Result<Action> {
    if !directory_user::stores_ready(&context) {
        return Ok(Action::requeue(super::STORE_WAIT));
    }
    if let Some(wait) = context.wait_out_outage() {
        return Ok(wait);
    }
    let metrics = context.metrics.clone();
    let reconciling = metrics.reconciling(CONTROLLER, crate::metrics::queue::key_of(&*departure));
    let result = reconcile_departure(departure, &context).await;
    reconciling.finished(&result);
    result
}

async fn reconcile_departure(departure: Arc<Departure>, context: &Context) -> Result<Action> {
    if departure.status.is_none() {
        // Still being handed over: the deleting DirectoryUser writes the status next.
        return Ok(Action::await_change());
    }
    let namespace = departure.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<Departure> = Api::namespaced(context.client.clone(), &namespace);
    let user = Arc::new(departure.as_directory_user());
    directory_user::lifecycle(user, Home::Departure(api), context).await
}

fn error_policy(departure: Arc<Departure>, error: &Error, context: Arc<Context>) -> Action {
    context.count_error(CONTROLLER, error);
    let delay = context.failure_backoff(&departure.spec.origin_uid);
    let key = crate::metrics::queue::key_of(&*departure);
    context.metrics.queues.later(CONTROLLER, key, delay);
    warn!(category = error.category(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
