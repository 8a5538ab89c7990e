//! The controllers: thin shells around the pure lifecycle.
//!
//! Each reconcile runs gather → validate → step → effects → status. Inputs come from
//! reflector stores (with `managedFields` dropped); `now` comes from the injected
//! clock; side effects go through [`crate::effects::Effects`].

pub mod departure;
pub mod directory_user;
mod error;
mod patch;
pub mod tenant;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use rand::Rng;
use roster_connectors::endpoint::EndpointPolicy;
use serde::de::DeserializeOwned;
use tracing::warn;

pub use error::{Error, Result};

use crate::clock::Clock;
use crate::effects::Effects;

/// Field manager for status written by roster.
pub const MANAGER: &str = "roster";
/// The finalizer that keeps a DirectoryUser until its PII is purged.
pub const FINALIZER: &str = "roster.dev/leaver-lifecycle";
/// Keeps a Tenant while DirectoryUsers of it exist (they need it to leave).
pub const TENANT_FINALIZER: &str = "roster.dev/tenant-in-use";
/// Keeps a DeprovisionPolicy while a Tenant names it.
pub const POLICY_FINALIZER: &str = "roster.dev/policy-in-use";

/// Operator settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Reconciles running at once per controller and watched namespace (kube-runtime's
    /// default is unbounded).
    pub concurrency: u16,
    /// Watch only these namespaces, each with its own watches and controllers, so that
    /// namespaced Roles suffice (docs/security.md); all namespaces when empty.
    pub namespaces: Vec<String>,
    /// Identifies this replica in Events.
    pub instance: Option<String>,
    /// The operator's endpoint policy, which the Tenant controller reports as the
    /// `EndpointsAllowed` condition (the effects enforce the same policy).
    pub endpoints: EndpointPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 16,
            namespaces: Vec::new(),
            instance: None,
            endpoints: EndpointPolicy::default(),
        }
    }
}

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub clock: Arc<dyn Clock>,
    pub effects: Arc<dyn Effects>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub tenants: Store<roster_api::Tenant>,
    pub policies: Store<roster_api::DeprovisionPolicy>,
    /// Every DirectoryUser, for finding colleagues (new owners, managers).
    pub users: Store<roster_api::DirectoryUser>,
    /// Leavers whose DirectoryUser was deleted (see `directory_user::departure`).
    pub departures: Store<roster_api::Departure>,
    /// The operator's endpoint policy (for the Tenant's `EndpointsAllowed` condition).
    pub endpoints: EndpointPolicy,
    /// Consecutive failures per object UID, for error backoff.
    failures: Mutex<HashMap<String, i32>>,
}

impl Context {
    fn failure_backoff(&self, uid: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(uid.to_string()).or_default();
        *count += 1;
        let seconds = roster_lifecycle::backoff(*count).num_seconds().max(1) as u64;
        Duration::from_secs(seconds) + jitter()
    }

    fn count_error(&self, controller: &'static str, error: &Error) {
        let labels = crate::metrics::ErrorLabels {
            controller,
            category: error.category(),
        };
        self.metrics.reconcile_errors.get_or_create(&labels).inc();
    }

    fn reset_failures(&self, uid: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }
}

/// The Tenants of the policy's namespace that name it (a policy change applies to them,
/// their users and their Departures).
pub(crate) fn tenants_using(
    tenants: &Store<roster_api::Tenant>,
    policy: &roster_api::DeprovisionPolicy,
) -> Vec<Arc<roster_api::Tenant>> {
    use kube::ResourceExt;
    let (namespace, name) = (policy.namespace(), policy.name_any());
    tenants
        .state()
        .into_iter()
        .filter(|t| t.namespace() == namespace && t.spec.policy_ref.name == name)
        .collect()
}

/// How soon a reconcile that found a store not yet filled tries again.
pub(crate) const STORE_WAIT: Duration = Duration::from_millis(100);

/// Whether a store has seen its first full list. Polled once rather than awaited:
/// with many reconciles awaiting one store's readiness at start-up, only one of them
/// was observed to resume, leaving the rest stuck until another event.
pub(crate) fn ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    futures::FutureExt::now_or_never(store.wait_until_ready()).is_some_and(|r| r.is_ok())
}

/// Spreads requeues of users that share a deadline (a CSV import makes hundreds),
/// while keeping them well under a second late.
pub(crate) fn jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(0..200))
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A backed-off watch whose objects go into a store without `managedFields`.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object: &mut K| object.meta_mut().managed_fields = None)
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// Sends every object of `events` to each of `subscribers` receivers, so that one watch
/// serves both controllers. Watch errors (the watcher backs off and retries) are logged
/// here. Ends when the watch ends or every receiver is gone.
fn fan_out<K, const N: usize>(
    events: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    kind: &'static str,
) -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    [impl Stream<Item = Result<K, watcher::Error>> + Send + 'static; N],
)
where
    K: Clone + Send + Sync + 'static,
{
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..N).map(|_| tokio::sync::mpsc::channel::<K>(256)).unzip();
    let receivers = receivers.into_iter().map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|object| (Ok(object), rx))
        })
    });
    let receivers: [_; N] = match receivers.collect::<Vec<_>>().try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("N receivers were made"),
    };
    let driver = async move {
        let all_closed = async {
            for sender in &senders {
                sender.closed().await;
            }
        };
        let mut events = std::pin::pin!(events);
        let mut all_closed = std::pin::pin!(all_closed);
        loop {
            let next = tokio::select! {
                next = futures::StreamExt::next(&mut events) => next,
                () = &mut all_closed => break,
            };
            match next {
                None => break,
                Some(Ok(object)) => {
                    for sender in &senders {
                        // A receiver that is gone has shut down; the others still listen.
                        let _ = sender.send(object.clone()).await;
                    }
                }
                Some(Err(error)) => warn!(kind, %error, "watch failed; retrying with backoff"),
            }
        }
    };
    (driver, receivers)
}

/// Runs both controllers until `shutdown` resolves: once for all namespaces, or once
/// per namespace of [`Options::namespaces`] (each with its own stores and watches, since
/// a watch of several namespaces at once would need a cluster-wide list right).
pub async fn run(
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let mut namespaces: Vec<Option<String>> = options
        .namespaces
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .map(Some)
        .collect();
    namespaces.sort();
    namespaces.dedup();
    if namespaces.is_empty() {
        namespaces.push(None);
    }
    let scopes = namespaces.into_iter().map(|namespace| {
        run_scope(
            client.clone(),
            effects.clone(),
            clock.clone(),
            metrics.clone(),
            options.clone(),
            namespace,
            shutdown.clone(),
        )
    });
    futures::future::join_all(scopes).await;
}

/// Both controllers for one namespace (or all, for `None`): one watch per kind, whose
/// objects fill one store and wake both controllers.
async fn run_scope(
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let ns = namespace.as_deref();
    let (tenants, tenant_events) = reflect(
        api::<roster_api::Tenant>(&client, ns),
        watcher::Config::default(),
    );
    let (policies, policy_events) = reflect(
        api::<roster_api::DeprovisionPolicy>(&client, ns),
        watcher::Config::default(),
    );
    let (users, user_events) = reflect(
        api::<roster_api::DirectoryUser>(&client, ns),
        watcher::Config::default(),
    );
    let (departures, departure_events) = reflect(
        api::<roster_api::Departure>(&client, ns),
        watcher::Config::default(),
    );
    let (
        departure_driver,
        [
            departures_for_departures,
            departures_for_users,
            departures_for_tenants,
        ],
    ) = fan_out(departure_events, "Departure");
    let (
        tenant_driver,
        [
            tenants_for_users,
            tenants_for_tenants,
            tenants_for_departures,
        ],
    ) = fan_out(tenant_events, "Tenant");
    let (
        policy_driver,
        [
            policies_for_users,
            policies_for_tenants,
            policies_for_departures,
        ],
    ) = fan_out(policy_events, "DeprovisionPolicy");
    let (user_driver, [users_for_users, users_for_tenants]) = fan_out(user_events, "DirectoryUser");
    let reporter = Reporter {
        controller: "roster".into(),
        instance: options.instance.clone(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        clock,
        effects,
        metrics,
        tenants: tenants.clone(),
        policies: policies.clone(),
        users: users.clone(),
        departures: departures.clone(),
        endpoints: options.endpoints.clone(),
        failures: Mutex::default(),
    });
    let users = directory_user::controller(
        &options,
        context.clone(),
        users_for_users,
        tenants_for_users,
        policies_for_users,
        departures_for_users,
        shutdown.clone(),
    );
    let departure = departure::controller(
        &options,
        context.clone(),
        departures_for_departures,
        tenants_for_departures,
        policies_for_departures,
        shutdown.clone(),
    );
    // The HR feeds' scheduler (CSV over SFTP, HR API) for this scope's Tenants.
    let feeds = crate::feeds::runner::run(
        Arc::new(crate::feeds::sync::Feeds {
            client: context.client.clone(),
            recorder: context.recorder.clone(),
            clock: context.clock.clone(),
            endpoints: context.endpoints.clone(),
            timeout: Duration::from_secs(30),
        }),
        context.tenants.clone(),
        shutdown.clone(),
    );
    let tenant = tenant::controller(
        &options,
        context,
        tenants_for_tenants,
        users_for_tenants,
        policies_for_tenants,
        departures_for_tenants,
        shutdown,
    );
    tokio::join!(
        users,
        departure,
        tenant,
        feeds,
        tenant_driver,
        policy_driver,
        user_driver,
        departure_driver
    );
}
