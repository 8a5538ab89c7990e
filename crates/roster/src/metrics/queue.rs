//! What each controller has been asked to reconcile and has not started yet.
//!
//! kube-runtime's Controller keeps its queue to itself, so this mirrors what roster can
//! see of it: every object a watch event or a related object's change hands to the
//! controller (`triggered`), every requeue whose delay roster knows (a deadline, a
//! retry after backoff, a requeue at once: `later`), and every reconcile that starts
//! (`started`, which empties the object's slot, as the scheduler's). One slot per
//! object, keeping the earliest due time, as the scheduler folds duplicates. At scrape
//! time a slot is `queued` when it is due (waiting for a free reconcile slot) and
//! `delayed` when it is not yet. Not seen: timed requeues other than deadlines and
//! retries (start-up store waits, the Tenant's five-minute recheck, the tenant exit's
//! polls, the waits during an API server outage), the reconcile of every object when
//! such an outage ends, and the Tenant controller's one-second debounce (its triggers
//! count as queued during it). A slot is about 40 bytes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// One object, as a hash of its namespace and name (no name is kept).
pub type Key = u64;

/// The key of the object `namespace/name`.
pub fn key(namespace: Option<&str>, name: &str) -> Key {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    hasher.finish()
}

/// The key of a Kubernetes object.
pub fn key_of(object: &impl kube::Resource) -> Key {
    let meta = object.meta();
    key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The key of the object a reference names.
pub fn key_of_ref<K: kube::runtime::reflector::Lookup + ?Sized>(
    object: &kube::runtime::reflector::ObjectRef<K>,
) -> Key {
    key(object.namespace.as_deref(), &object.name)
}

/// The controllers whose queues are reported (always, also when empty).
const CONTROLLERS: [&str; 3] = ["directoryuser", "departure", "tenant"];

/// Pending reconciles per controller: object → earliest due time.
#[derive(Debug, Default)]
pub struct Queues {
    pending: Mutex<HashMap<&'static str, HashMap<Key, Instant>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    controller: &'static str,
    /// `queued` (due, not started) or `delayed` (due later).
    state: &'static str,
}

impl Queues {
    /// A watch event or a related object asks for `object` now.
    pub fn triggered(&self, controller: &'static str, object: Key) {
        self.due(controller, object, Instant::now());
    }

    /// `object` is to be reconciled again after `delay`.
    pub fn later(&self, controller: &'static str, object: Key, delay: Duration) {
        let now = Instant::now();
        self.due(controller, object, now.checked_add(delay).unwrap_or(now));
    }

    /// `object`'s reconcile starts (or it is gone, and none will).
    pub fn started(&self, controller: &'static str, object: Key) {
        if let Some(pending) = self.lock().get_mut(controller) {
            pending.remove(&object);
        }
    }

    /// (queued, delayed) for `controller` at `now`.
    pub fn depth(&self, controller: &'static str, now: Instant) -> (i64, i64) {
        let pending = self.lock();
        let Some(pending) = pending.get(controller) else {
            return (0, 0);
        };
        let queued = pending.values().filter(|due| **due <= now).count();
        (queued as i64, (pending.len() - queued) as i64)
    }

    fn due(&self, controller: &'static str, object: Key, at: Instant) {
        let mut pending = self.lock();
        let slot = pending
            .entry(controller)
            .or_default()
            .entry(object)
            .or_insert(at);
        *slot = (*slot).min(at);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, HashMap<Key, Instant>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Collector for Queues {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "reconcile_queue",
            "Objects a controller was asked to reconcile (watch events, related objects' changes, deadlines, retries, requeues at once) whose reconcile has not started: state=queued is due and waiting for a free slot, state=delayed is due later. Mirrors kube-runtime's queue as far as roster can see it (docs/operations.md)",
            None,
            MetricType::Gauge,
        )?;
        let now = Instant::now();
        for controller in CONTROLLERS {
            let (queued, delayed) = self.depth(controller, now);
            for (state, value) in [("queued", queued), ("delayed", delayed)] {
                let labels = QueueLabels { controller, state };
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_per_object_with_the_earliest_due_time() {
        let queues = Queues::default();
        let (a, b) = (key(Some("ns"), "a"), key(Some("ns"), "b"));
        queues.later("directoryuser", a, Duration::from_secs(3600));
        queues.later("directoryuser", b, Duration::from_secs(3600));
        assert_eq!(queues.depth("directoryuser", Instant::now()), (0, 2));
        // A watch event for `a` makes it due now; a later requeue does not push it back.
        queues.triggered("directoryuser", a);
        queues.later("directoryuser", a, Duration::from_secs(60));
        assert_eq!(queues.depth("directoryuser", Instant::now()), (1, 1));
        // Its reconcile starts: the slot is free.
        queues.started("directoryuser", a);
        assert_eq!(queues.depth("directoryuser", Instant::now()), (0, 1));
        // A delayed slot becomes queued once its time has come.
        let in_two_hours = Instant::now() + Duration::from_secs(7200);
        assert_eq!(queues.depth("directoryuser", in_two_hours), (1, 0));
        // Controllers are apart; keys are per namespace and name.
        assert_eq!(queues.depth("tenant", Instant::now()), (0, 0));
        assert_ne!(key(Some("ns"), "a"), key(Some("other"), "a"));
        assert_ne!(key(None, "a"), key(Some("ns"), "a"));
    }
}
