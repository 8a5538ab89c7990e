//! The controllers: thin shells around the pure lifecycle.
//!
//! Each reconcile runs gather → validate → step → effects → status. Inputs come from
//! reflector stores (with `managedFields` dropped); `now` comes from the injected
//! clock; side effects go through [`crate::effects::Effects`].

pub mod departure;
pub mod directory;
pub mod directory_user;
mod error;
mod pace;
mod patch;
pub mod stored;
pub mod tenant;
pub mod watches;
pub(crate) mod written;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Recorder;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use rand::Rng;
use roster_connectors::endpoint::EndpointPolicy;

pub use error::{Error, Result};
pub use watches::{ScopeWatches, Watches};

use crate::apiserver::{ApiServerHealth, OUTAGE_REQUEUE};
use crate::clock::Clock;
use crate::effects::Effects;
use crate::metrics::queue::key_of;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use roster_api::{Departure, Tenant};

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
    /// Whether the API server answers, as the kube client's layer sees it
    /// ([`crate::apiserver`]): failures during an outage wait for its end instead of
    /// backing off per object. A client built without the layer never reports one.
    pub apiserver: Arc<ApiServerHealth>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 16,
            namespaces: Vec::new(),
            instance: None,
            endpoints: EndpointPolicy::default(),
            apiserver: Arc::default(),
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
    /// Every DirectoryUser, packed, for finding colleagues (new owners, managers).
    pub users: stored::Users,
    /// Indexes over `users` (kept by its watch): look up, never scan.
    pub directory: Arc<directory::Directory>,
    /// Leavers whose DirectoryUser was deleted (see `directory_user::departure`).
    pub departures: Store<roster_api::Departure>,
    /// The operator's endpoint policy (for the Tenant's `EndpointsAllowed` condition).
    pub endpoints: EndpointPolicy,
    /// The mass-deprovisioning guard's admission ledger (per tenant).
    pub guard: directory_user::guard::Ledger,
    /// The erasure receipt chains this process appends to.
    pub receipts: crate::receipts::Chains,
    /// The version of roster's own last status write to each lifecycle object.
    pub(crate) written: Arc<written::Written>,
    /// Consecutive failures per object UID, for error backoff.
    failures: Mutex<HashMap<String, i32>>,
    /// Fewer than `Options::concurrency`: stage 2 never takes every reconcile.
    pub(crate) stage_two: directory_user::StageTwoSlots,
    /// The one turn to append an erasure receipt (see [`crate::receipts`]).
    pub(crate) receipt_turn: directory_user::StageTwoSlots,
    /// The DirectoryUser reconciles started, for the paced triggers ([`pace`]).
    pub(crate) pace: Arc<pace::Pace>,
    /// Quarantines ended and not yet written as such: stage 2 waits for them.
    pub(crate) due: directory_user::DueTransitions,
    /// Whether the API server answers (see [`Options::apiserver`]).
    pub apiserver: Arc<ApiServerHealth>,
}

/// When a reconcile that the API server's outage stops tries again on its own: every
/// object fails alike while it is away and its return wakes them all
/// (`reconcile_all_on`), so this is spread and long, only in case that is missed.
fn outage_requeue() -> Duration {
    let spread = rand::rng().random_range(0..OUTAGE_REQUEUE.as_millis() as u64 / 2);
    OUTAGE_REQUEUE + Duration::from_millis(spread)
}

impl Context {
    /// While the API server is down, a reconcile sends nothing (not even a step's call
    /// downstream, whose completion it could not record) and waits for its return:
    /// the watches, on their own backoff, are what notices it.
    pub(crate) fn wait_out_outage(&self) -> Option<kube::runtime::controller::Action> {
        self.apiserver
            .is_down()
            .then(|| kube::runtime::controller::Action::requeue(outage_requeue()))
    }

    fn failure_backoff(&self, uid: &str) -> Duration {
        if self.apiserver.is_down() {
            return outage_requeue();
        }
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

pub(crate) fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controllers until `shutdown` resolves, on watches of their own (tests and
/// the demo; `roster run` starts the watches first, see [`run_on`]).
pub async fn run(
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let watches = Watches::start(&client, &options.namespaces);
    run_on(&watches, client, effects, clock, metrics, options, shutdown).await;
}

/// Runs the controllers of every watched scope until `shutdown` resolves.
pub async fn run_on(
    watches: &Watches,
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    // This process reconciles from here on, with or without a leader lease (tests, the
    // demo and `roster run` without leader election come through here too).
    metrics.leader.set(1);
    let scopes = watches.scopes.iter().map(|scope| {
        run_scope(
            client.clone(),
            effects.clone(),
            clock.clone(),
            metrics.clone(),
            options.clone(),
            scope,
            shutdown.clone(),
        )
    });
    futures::future::join_all(scopes).await;
    metrics.leader.set(0);
}

/// `objects` with the Tenant each one wakes noted in the Tenant controller's queue
/// mirror ([`crate::metrics::queue`]; policy changes, which wake tenants rarely, are not).
fn queued_tenants<T>(
    context: &Arc<Context>,
    objects: impl futures::Stream<Item = T> + Send + 'static,
    tenant: impl Fn(&T) -> Option<crate::metrics::queue::Key> + Send + 'static,
) -> impl futures::Stream<Item = T> + Send + 'static {
    let queues = context.metrics.queues.clone();
    futures::StreamExt::inspect(objects, move |object| {
        if let Some(key) = tenant(object) {
            queues.triggered("tenant", key);
        }
    })
}

fn tenant_key(namespace: Option<String>, tenant: &str) -> crate::metrics::queue::Key {
    crate::metrics::queue::key(namespace.as_deref(), tenant)
}

/// The controllers of one namespace (or all, for `None`), on the scope's one watch per
/// kind: each controller subscribes to the kinds it follows.
async fn run_scope(
    client: Client,
    effects: Arc<dyn Effects>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    options: Options,
    scope: &ScopeWatches,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let reporter = Reporter {
        controller: "roster".into(),
        instance: options.instance.clone(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter, clock.clone()),
        client: client.clone(),
        clock,
        effects,
        metrics,
        tenants: scope.tenants.store.clone(),
        policies: scope.policies.store.clone(),
        users: stored::Users::new(scope.users.store.clone()),
        directory: scope.directory.clone(),
        departures: scope.departures.store.clone(),
        endpoints: options.endpoints.clone(),
        guard: Default::default(),
        receipts: crate::receipts::Chains::default(),
        written: scope.written.clone(),
        failures: Mutex::default(),
        stage_two: directory_user::StageTwoSlots::for_concurrency(options.concurrency),
        receipt_turn: directory_user::StageTwoSlots::with_permits(1),
        pace: Arc::default(),
        due: directory_user::DueTransitions::default(),
        apiserver: options.apiserver.clone(),
    });
    let users = directory_user::controller(
        &options,
        context.clone(),
        scope.users.shared(),
        scope.tenants.spec_changes(),
        scope.policies.spec_changes(),
        scope.departures.objects(),
        shutdown.clone(),
    );
    let departure = departure::controller(
        &options,
        context.clone(),
        scope.departures.objects(),
        scope.tenants.spec_changes(),
        scope.policies.spec_changes(),
        shutdown.clone(),
    );
    // The HR feeds' scheduler (CSV over SFTP, HR API) for this scope's Tenants, its
    // fetches counted as downstream calls.
    let feeds = crate::metrics::downstream::observed(
        &context.metrics,
        crate::feeds::runner::run(
            Arc::new(crate::feeds::sync::Feeds {
                client: context.client.clone(),
                recorder: context.recorder.clone(),
                clock: context.clock.clone(),
                endpoints: context.endpoints.clone(),
                timeout: Duration::from_secs(30),
            }),
            context.tenants.clone(),
            shutdown.clone(),
        ),
    );
    let tenant = tenant::controller(
        &options,
        context.clone(),
        queued_tenants(&context, scope.tenants.objects(), {
            // A Tenant gone from the store (deleted) is not reconciled: its slot goes.
            let (store, queues) = (context.tenants.clone(), context.metrics.queues.clone());
            move |t: &std::result::Result<Tenant, kube::runtime::watcher::Error>| {
                let t = t.as_ref().ok()?;
                let present = store.get(&ObjectRef::from_obj(t)).is_some();
                if !present {
                    queues.started("tenant", key_of(t));
                }
                present.then(|| key_of(t))
            }
        }),
        queued_tenants(
            &context,
            {
                let directory = context.directory.clone();
                futures::StreamExt::filter_map(scope.users.shared(), move |user| {
                    futures::future::ready(tenant::tenant_of_user(&directory, &user))
                })
            },
            |t: &ObjectRef<Tenant>| Some(tenant_key(t.namespace.clone(), &t.name)),
        ),
        scope.policies.objects(),
        queued_tenants(&context, scope.departures.shared(), |d: &Arc<Departure>| {
            Some(tenant_key(d.namespace(), &d.spec.record.tenant_ref.name))
        }),
        shutdown,
    );
    tokio::join!(users, departure, tenant, feeds);
}
