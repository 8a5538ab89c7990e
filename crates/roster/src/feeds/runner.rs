//! The scheduler: once a second, every Tenant of the scope whose CSV or HR API source
//! is due gets a sync (one at a time per source). Due times come from the last sync
//! in `status.sourceSyncs` (`roster_feeds::schedule`), so a restart or a new leader
//! picks up where the last one left off; until the Tenant's watch shows a sync's
//! status entry, the time the sync finished here stands in for it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use roster_api::Tenant;
use roster_api::tenant::SyncResult;
use roster_feeds::schedule::{LastSync, Schedule, is_due};

use super::Source;
use super::sync::{self, Feeds};

/// How often due times are checked.
const TICK: Duration = Duration::from_secs(1);

type Key = (String, String, Source);

/// The schedule of a Tenant's source, if it has that source.
pub fn schedule(tenant: &Tenant, source: Source) -> Option<Schedule> {
    let sources = &tenant.spec.sources;
    let (interval, daily_at) = match source {
        Source::Csv => sources.csv.as_ref().map(|c| (&c.interval, &c.daily_at))?,
        Source::HrApi => sources
            .hr_api
            .as_ref()
            .map(|h| (&h.interval, &h.daily_at))?,
    };
    Schedule::from_spec(interval, daily_at.as_deref()).ok()
}

/// The last sync of a source as the Tenant's status records it.
pub fn last_sync(tenant: &Tenant, source: Source) -> Option<LastSync> {
    let record = source.record_source();
    tenant
        .status
        .as_ref()?
        .source_syncs
        .iter()
        .find(|s| s.source == record)
        .map(|s| LastSync {
            completed: s.completion_time,
            failed: s.result == SyncResult::Failed,
        })
}

/// Runs until `shutdown` resolves.
pub async fn run(
    feeds: Arc<Feeds>,
    tenants: Store<Tenant>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let running: Arc<Mutex<HashSet<Key>>> = Arc::default();
    // Syncs finished here whose status the store may not show yet.
    let finished: Arc<Mutex<HashMap<Key, LastSync>>> = Arc::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(TICK) => {}
        }
        if !crate::controller::ready(&tenants) {
            continue;
        }
        let now = feeds.clock.now();
        for tenant in tenants.state() {
            if tenant.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(namespace) = tenant.namespace() else {
                continue;
            };
            let zone = tenant.spec.time_zone.parse().unwrap_or(chrono_tz::UTC);
            for source in Source::ALL {
                let Some(schedule) = schedule(&tenant, source) else {
                    continue;
                };
                let key = (namespace.clone(), tenant.name_any(), source);
                let last = latest(last_sync(&tenant, source), finished_of(&finished, &key));
                if !is_due(schedule, zone, last, now) {
                    continue;
                }
                if !lock(&running).insert(key.clone()) {
                    continue;
                }
                let (feeds, tenant, running, finished) = (
                    feeds.clone(),
                    tenant.clone(),
                    running.clone(),
                    finished.clone(),
                );
                // The sync's fetches are observed like the scheduler's (crate::metrics).
                tokio::spawn(roster_connectors::http::inherit(async move {
                    let sync = sync::run(&feeds, &tenant, source).await;
                    lock(&finished).insert(
                        key.clone(),
                        LastSync {
                            completed: sync.completion_time,
                            failed: sync.result == SyncResult::Failed,
                        },
                    );
                    lock(&running).remove(&key);
                }));
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn finished_of(finished: &Mutex<HashMap<Key, LastSync>>, key: &Key) -> Option<LastSync> {
    lock(finished).get(key).copied()
}

/// The later of two last syncs.
fn latest(a: Option<LastSync>, b: Option<LastSync>) -> Option<LastSync> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.completed > a.completed { b } else { a }),
        (a, b) => a.or(b),
    }
}
