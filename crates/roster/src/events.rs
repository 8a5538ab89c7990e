//! Kubernetes Events (`events.k8s.io/v1`), as kube's `Recorder` writes them: a new
//! Event per (object, type, reason, action) and, when the same one recurs within six
//! minutes, a patch of that Event's `series` instead of a new object.
//!
//! Why not kube's own `Recorder`: it keeps every Event it wrote, whole, for six minutes
//! and sweeps that cache on every publish, under one lock shared by all reconciles. A
//! mass event writes one Event per person: at 3,000 new users the cache was a quarter
//! of the operator's heap (2.2 KB per person, `heaptrack`), and each publish walked
//! every entry. Here an entry is only what a series patch needs (the Event's name, its
//! count), expiry walks from the oldest entry (amortised O(1)), and the cache is
//! bounded: past `CAPACITY` the oldest repeat is forgotten, which costs at most a new
//! Event where a series count would have gone up.
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use serde_json::json;

use crate::clock::Clock;

/// How long a repeat counts into the same Event (kube's and client-go's figure).
const SERIES_WINDOW: Duration = Duration::minutes(6);
/// Repeats remembered at most.
const CAPACITY: usize = 4096;

/// What a repeat needs to patch its series.
struct Written {
    namespace: String,
    name: String,
    count: i32,
    last: DateTime<Utc>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<u64, Written>,
    /// Keys by the time they were last written, oldest first (a key may appear more
    /// than once; only its newest place counts).
    order: VecDeque<(DateTime<Utc>, u64)>,
}

impl Cache {
    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, key)) = self.order.front() {
            let too_many = self.entries.len() > CAPACITY;
            if at + SERIES_WINDOW > now && !too_many {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|w| w.last == at) {
                self.entries.remove(&key);
            }
        }
    }
}

/// Publishes Events for roster's objects.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    clock: Arc<dyn Clock>,
    cache: Arc<Mutex<Cache>>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            reporter,
            clock,
            cache: Arc::default(),
        }
    }

    fn key(&self, event: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = DefaultHasher::new();
        (
            matches!(event.type_, EventType::Warning),
            &event.action,
            &event.reason,
            &regarding.uid,
            &regarding.namespace,
            &regarding.name,
            &regarding.kind,
            &regarding.api_version,
            event.secondary.as_ref().map(|s| (&s.uid, &s.name, &s.kind)),
        )
            .hash(&mut h);
        h.finish()
    }

    /// Writes `event` about `regarding`: a new Event, or the series of the same one
    /// written within the last six minutes.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = self.clock.now();
        let key = self.key(event, regarding);
        let repeat = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.expire(now);
            cache
                .entries
                .get(&key)
                .map(|w| (w.namespace.clone(), w.name.clone(), w.count + 1))
        };
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let written = match repeat {
            Some((namespace, name, count)) => {
                let series = EventSeries {
                    count,
                    last_observed_time: micro(now),
                };
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .patch(
                        &name,
                        &PatchParams::default(),
                        // The note of an Event is immutable: a repeat counts, it does not reword.
                        &Patch::Merge(json!({"series": series})),
                    )
                    .await?;
                Written {
                    namespace,
                    name,
                    count,
                    last: now,
                }
            }
            None => {
                let object = self.new_event(event, regarding, &namespace, now);
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &object)
                    .await?;
                Written {
                    namespace,
                    name: object.metadata.name.unwrap_or_default(),
                    count: 1,
                    last: now,
                }
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.order.push_back((now, key));
        cache.entries.insert(key, written);
        cache.expire(now);
        Ok(())
    }

    fn new_event(
        &self,
        event: &Event,
        regarding: &ObjectReference,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> K8sEvent {
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(micro(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace.to_string()),
                name: Some(format!(
                    "{}.{nanos:x}",
                    regarding
                        .name
                        .as_deref()
                        .unwrap_or(&self.reporter.controller)
                )),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

fn micro(at: DateTime<Utc>) -> MicroTime {
    let nanos = at.timestamp_nanos_opt().unwrap_or_default();
    MicroTime(jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(at: DateTime<Utc>) -> Written {
        Written {
            namespace: "ns".into(),
            name: "n".into(),
            count: 1,
            last: at,
        }
    }

    #[test]
    fn repeats_are_forgotten_after_the_window_and_past_the_capacity() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut cache = Cache::default();
        for key in 0..3u64 {
            cache.order.push_back((t0, key));
            cache.entries.insert(key, written(t0));
        }
        // Key 1 written again later: its first place in the order no longer counts.
        let t1 = t0 + Duration::minutes(3);
        cache.order.push_back((t1, 1));
        cache.entries.insert(1, written(t1));
        cache.expire(t0 + Duration::minutes(7));
        assert_eq!(cache.entries.keys().copied().collect::<Vec<_>>(), vec![1]);
        cache.expire(t1 + SERIES_WINDOW);
        assert!(cache.entries.is_empty());

        for key in 0..(CAPACITY as u64 + 10) {
            cache.order.push_back((t0, key));
            cache.entries.insert(key, written(t0));
            cache.expire(t0);
        }
        assert_eq!(cache.entries.len(), CAPACITY);
        assert!(!cache.entries.contains_key(&0), "the oldest goes first");
    }
}
