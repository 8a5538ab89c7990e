//! The controllers: thin shells around the pure lifecycle.
//!
//! Each reconcile runs gather → validate → step → effects → status. Inputs come from
//! reflector stores (with `managedFields` dropped); `now` comes from the injected
//! clock; side effects go through [`crate::effects::Effects`].

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
use serde::de::DeserializeOwned;

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
    /// Reconciles running at once per controller (kube-runtime's default is unbounded).
    pub concurrency: u16,
    /// Watch only this namespace; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Identifies this replica in Events.
    pub instance: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 16,
            namespace: None,
            instance: None,
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

/// A backed-off watch used only to trigger reconciles; the objects go into no store.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, config).default_backoff().touched_objects()
}

/// Runs both controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = options.namespace.as_deref();
    let (tenants, tenant_stream) = reflect(
        api::<roster_api::Tenant>(&client, ns),
        watcher::Config::default(),
    );
    let (policies, policy_stream) = reflect(
        api::<roster_api::DeprovisionPolicy>(&client, ns),
        watcher::Config::default(),
    );
    let (users, user_stream) = reflect(
        api::<roster_api::DirectoryUser>(&client, ns),
        watcher::Config::default(),
    );
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
        failures: Mutex::default(),
    });
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let users = directory_user::controller(
        &options,
        context.clone(),
        user_stream,
        tenant_stream,
        policy_stream,
        shutdown.clone(),
    );
    let tenant = tenant::controller(&client, &options, context, shutdown);
    tokio::join!(users, tenant);
}
