//! The operator's watches: one per kind and namespace scope, started when the process
//! starts (on every replica, leader or not), each filling one reflector store and
//! broadcasting its changes to whoever subscribes.
//!
//! Every replica needs the caches: the SCIM endpoint answers from them on standby
//! replicas too, and a standby that becomes leader starts its controllers on warm
//! stores instead of listing everything again. A subscriber never slows the watch
//! down: changes go out on a bounded broadcast, and a subscriber that falls behind is
//! resynchronised from the store (which is always current) instead of blocking.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use roster_api::{Departure, DeprovisionPolicy, Tenant};

use super::stored::StoredUser;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tracing::{debug, warn};

/// Client-side `kubectl apply`'s copy of the manifest it last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Changes a subscriber can fall behind by before it is resynchronised from the store.
const BACKLOG: usize = 4096;

/// One change of a watched kind.
#[derive(Debug)]
pub enum Change<K> {
    /// Created or modified (also every object of a (re)list).
    Applied(Arc<K>),
    /// Gone from the API server.
    Deleted(Arc<K>),
    /// A (re)list finished: the store holds exactly what exists, and objects deleted
    /// while the watch was down are gone from it without a `Deleted`.
    Listed,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Applied(k) => Self::Applied(k.clone()),
            Self::Deleted(k) => Self::Deleted(k.clone()),
            Self::Listed => Self::Listed,
        }
    }
}

/// An index kept by a watch: called with every change, and the store.
pub type Index<K> = Arc<dyn Fn(&Change<K>, &Store<K>) + Send + Sync>;

/// A watched kind: its store and its changes.
pub struct Watched<K: Resource<DynamicType = ()> + 'static> {
    pub store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
    /// A (re)list is under way: its objects reach the store only when it ends.
    listing: Arc<AtomicBool>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Watched<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            changes: self.changes.clone(),
            listing: self.listing.clone(),
        }
    }
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    /// Starts a backed-off watch whose objects go into the store without
    /// `managedFields` (or `kubectl apply`'s last-applied copy). Runs for the life of
    /// the process.
    pub fn start(api: Api<K>, kind: &'static str) -> Self {
        Self::start_indexed(api, kind, None)
    }

    /// [`start`](Self::start), with an index that takes in each change after the
    /// store and before any subscriber hears of it.
    pub fn start_indexed(api: Api<K>, kind: &'static str, index: Option<Index<K>>) -> Self {
        let (reader, writer) = reflector::store();
        let store = reader.clone();
        let (changes, _) = broadcast::channel(BACKLOG);
        let sender = changes.clone();
        let listing = Arc::new(AtomicBool::new(true));
        let in_list = listing.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|object: &mut K| strip(object.meta_mut()))
            .reflect(writer);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            let started = std::time::Instant::now();
            while let Some(event) = events.next().await {
                let change = match event {
                    Ok(watcher::Event::Apply(k) | watcher::Event::InitApply(k)) => {
                        Change::Applied(Arc::new(k))
                    }
                    Ok(watcher::Event::Delete(k)) => Change::Deleted(Arc::new(k)),
                    Ok(watcher::Event::InitDone) => {
                        in_list.store(false, Ordering::Release);
                        debug!(
                            kind,
                            objects = store.state().len(),
                            after_ms = started.elapsed().as_millis() as u64,
                            "listed"
                        );
                        Change::Listed
                    }
                    Ok(watcher::Event::Init) => {
                        in_list.store(true, Ordering::Release);
                        continue;
                    }
                    Err(error) => {
                        warn!(kind, %error, "watch failed; retrying with backoff");
                        continue;
                    }
                };
                if let Some(index) = &index {
                    index(&change, &store);
                }
                // No subscriber yet (a standby replica without SCIM) is fine.
                let _ = sender.send(change);
            }
        });
        Self {
            store: reader,
            changes,
            listing,
        }
    }

    /// Every change from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    /// The objects as a controller wants them: everything in the store now, then every
    /// applied or deleted object as it comes; a subscriber that fell behind gets the
    /// whole store again (reconciles are idempotent, and the queue folds duplicates).
    pub fn objects(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        self.shared().map(owned)
    }

    /// [`objects`](Self::objects) as the store holds them, for a subscriber that only
    /// looks at each (to name the objects it wakes): no copy of any.
    pub fn shared(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.objects_changed(None)
    }

    /// [`objects`](Self::objects), but an applied object only when its spec changed
    /// (a new generation), it is being deleted, or the mass-deprovisioning guard's
    /// approve/reject annotations changed; a deletion always. For the kinds a
    /// controller follows for its *own* objects' sake (a Tenant for its users): the
    /// Tenant controller writes the Tenant's status whenever a user changes phase, and
    /// each such write must not wake every user of the tenant.
    ///
    /// Without the objects already in the store: the controller reconciles each of its
    /// own objects once at its start anyway, on these stores, and every Tenant of the
    /// snapshot would wake all its users a second (and, with its policy, a third) time.
    pub fn spec_changes(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        self.objects_changed(Some(|k: &K| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            let deleting = k.meta().deletion_timestamp.is_some();
            // A Tenant's answer to the mass-deprovisioning guard is an annotation, and
            // it concerns the tenant's held users.
            let answers: Vec<(&String, &String)> = k
                .meta()
                .annotations
                .iter()
                .flatten()
                .filter(|(key, _)| {
                    key.as_str() == roster_api::tenant::APPROVE_REMOVALS_ANNOTATION
                        || key.as_str() == roster_api::tenant::REJECT_REMOVALS_ANNOTATION
                })
                .collect();
            (
                k.meta().generation,
                deleting.then(|| k.meta().resource_version.clone()),
                answers,
            )
                .hash(&mut h);
            h.finish()
        }))
        .map(owned)
    }

    fn objects_changed(
        &self,
        key: Option<fn(&K) -> u64>,
    ) -> impl Stream<Item = Arc<K>> + Send + 'static {
        // Subscribe before taking the snapshot, so nothing falls between the two.
        let changes = self.changes();
        let store = self.store.clone();
        let listing = self.listing.clone();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut now = store.state();
        if let Some(key) = key {
            for k in &now {
                seen.insert(uid(&**k), key(k));
            }
            now.clear();
        }
        // `lagged`: this subscriber fell behind while a (re)list was under way, when
        // the store does not hold the list's objects yet: it resyncs when the list ends.
        futures::stream::iter(now).chain(futures::stream::unfold(
            (changes, (store, listing), Vec::<Arc<K>>::new(), seen, false),
            move |(mut changes, source, mut pending, mut seen, mut lagged)| async move {
                loop {
                    if let Some(object) = pending.pop() {
                        return Some((object, (changes, source, pending, seen, lagged)));
                    }
                    match changes.recv().await {
                        Ok(Change::Applied(k)) => {
                            if let Some(key) = key {
                                let value = key(&k);
                                if seen.insert(uid(&*k), value) == Some(value) {
                                    continue;
                                }
                            }
                            return Some((k, (changes, source, pending, seen, lagged)));
                        }
                        // Deleted objects too (kube's `touched_objects`): a Departure
                        // that goes wakes its person, a Tenant that goes its users.
                        Ok(Change::Deleted(k)) => {
                            seen.remove(&uid(&*k));
                            return Some((k, (changes, source, pending, seen, lagged)));
                        }
                        Ok(Change::Listed) => {
                            if std::mem::take(&mut lagged) {
                                pending = source.0.state();
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // What is still buffered is older than the store: go
                            // on from the newest change instead of repeating it.
                            changes = changes.resubscribe();
                            lagged = source.1.load(Ordering::Acquire);
                            if !lagged {
                                pending = source.0.state();
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

/// What a store need not keep of an object: nothing roster decides on, and each a
/// copy of much of the object (the field managers, and `kubectl apply`'s copy of the
/// last manifest).
pub(crate) fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
        // An emptied map keeps its node (half a KB) allocated.
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

fn uid<K: Resource>(k: &K) -> String {
    k.meta()
        .uid
        .clone()
        .unwrap_or_else(|| format!("{:?}/{:?}", k.meta().namespace, k.meta().name))
}

/// A store's object as kube-runtime's streams want it, copied as it is taken (a
/// snapshot keeps the store's `Arc`s: a copy of every object at once was a second
/// store, for as long as the controller took to take them all).
fn owned<K: Clone>(object: Arc<K>) -> Result<K, watcher::Error> {
    Ok(Arc::unwrap_or_clone(object))
}

/// The watches of one namespace (or of all, for `None`).
#[derive(Clone)]
pub struct ScopeWatches {
    pub namespace: Option<String>,
    pub tenants: Watched<Tenant>,
    pub policies: Watched<DeprovisionPolicy>,
    /// Packed as they arrive (`stored`): the store keeps no typed user.
    pub users: Watched<StoredUser>,
    /// Indexes over `users`, kept by its watch.
    pub directory: Arc<super::directory::Directory>,
    /// Roster's own writes to `users`, and whether the watch has delivered them.
    pub written: Arc<super::written::Written>,
    pub departures: Watched<Departure>,
}

impl ScopeWatches {
    pub fn start(client: &Client, namespace: Option<String>) -> Self {
        let ns = namespace.as_deref();
        let directory = Arc::new(super::directory::Directory::default());
        let written = Arc::new(super::written::Written::default());
        let (index, delivered) = (directory.clone(), written.clone());
        Self {
            tenants: Watched::start(super::api(client, ns), "Tenant"),
            policies: Watched::start(super::api(client, ns), "DeprovisionPolicy"),
            users: Watched::start_indexed(
                super::api(client, ns),
                "DirectoryUser",
                Some(Arc::new(move |change, store| {
                    index.apply(change, store);
                    if let Change::Applied(user) = change {
                        delivered.observe(super::directory_user::KIND, &**user, || {
                            let stored = store.get(&ObjectRef::from_obj(&**user));
                            stored.and_then(|s| s.resource_version()) == user.resource_version()
                        });
                    }
                })),
            ),
            directory,
            written,
            departures: Watched::start(super::api(client, ns), "Departure"),
            namespace,
        }
    }
}

/// The watches of every scope: all namespaces, or each namespace of `--namespace`
/// with its own watches (a watch of several namespaces at once would need a
/// cluster-wide list right).
#[derive(Clone)]
pub struct Watches {
    pub scopes: Vec<ScopeWatches>,
}

impl Watches {
    pub fn start(client: &Client, namespaces: &[String]) -> Self {
        let mut namespaces: Vec<Option<String>> = namespaces
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
        Self {
            scopes: namespaces
                .into_iter()
                .map(|ns| ScopeWatches::start(client, ns))
                .collect(),
        }
    }

    /// The scope that watches `namespace`.
    pub fn scope_of(&self, namespace: &str) -> Option<&ScopeWatches> {
        self.scopes
            .iter()
            .find(|s| s.namespace.as_deref().is_none_or(|ns| ns == namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn meta(annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("e-1".into()),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                ..Default::default()
            }]),
            annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_store_keeps_what_roster_reads_and_drops_the_copies() {
        // (annotations before, annotations kept)
        // An empty list means no annotations map at all.
        type Annotations<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Annotations, Annotations); 4] = [
            (&[], &[]),
            (&[(LAST_APPLIED, "{}")], &[]),
            (
                &[(LAST_APPLIED, "{}"), ("roster.dev/retry", "1")],
                &[("roster.dev/retry", "1")],
            ),
            (&[("roster.dev/retry", "1")], &[("roster.dev/retry", "1")]),
        ];
        for (before, kept) in cases {
            let mut stored = meta(before);
            strip(&mut stored);
            assert_eq!(stored.managed_fields, None, "{before:?}");
            assert_eq!(stored.annotations, meta(kept).annotations, "{before:?}");
            assert_eq!(stored.name.as_deref(), Some("e-1"));
        }
    }
}
