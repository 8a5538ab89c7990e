//! At most one reconcile per Tenant and period for the changes of its users.
//!
//! kube-runtime's debounce waits for a quiet period: while a tenant's users keep
//! changing (a mass deactivation, an outage's retries), its Tenant would never be
//! reconciled, so neither its counts nor a connector's reachability would show. A
//! throttle instead passes a tenant's first trigger at once and then at most one per
//! period, the last of a burst included.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;
use roster_api::Tenant;
use tokio::time::Instant;

/// Throttles `triggers` per Tenant to one per `period` (run on a task of its own).
pub fn throttled(
    triggers: impl Stream<Item = ObjectRef<Tenant>> + Send + 'static,
    period: Duration,
) -> UnboundedReceiver<ObjectRef<Tenant>> {
    let (tx, rx) = unbounded();
    tokio::spawn(async move {
        let mut triggers = std::pin::pin!(triggers);
        let mut last: HashMap<ObjectRef<Tenant>, Instant> = HashMap::new();
        let mut pending: HashSet<ObjectRef<Tenant>> = HashSet::new();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = triggers.next() => {
                    let Some(tenant) = next else { break };
                    let now = Instant::now();
                    if last.get(&tenant).is_some_and(|at| now - *at < period) {
                        pending.insert(tenant);
                    } else {
                        last.insert(tenant.clone(), now);
                        if tx.unbounded_send(tenant).is_err() {
                            break;
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    for tenant in pending.drain() {
                        last.insert(tenant.clone(), now);
                        if tx.unbounded_send(tenant).is_err() {
                            return;
                        }
                    }
                    // Forget tenants that have been quiet (a bounded map).
                    last.retain(|_, at| now - *at < period * 2);
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_passes_at_once_and_once_more_at_its_end() {
        let (tx, rx) = unbounded();
        let period = Duration::from_millis(300);
        let mut out = throttled(rx, period);
        let acme = ObjectRef::<Tenant>::new("acme").within("ns");
        let started = Instant::now();
        for _ in 0..100 {
            tx.unbounded_send(acme.clone()).unwrap();
        }
        assert_eq!(out.next().await, Some(acme.clone()));
        assert!(started.elapsed() < period);
        // The rest of the burst: once, within the period.
        assert_eq!(out.next().await, Some(acme.clone()));
        assert!(started.elapsed() <= period * 2);
        drop(tx);
        assert_eq!(out.next().await, None);
    }
}
