//! Keeps bulk triggers (a start's or a resync's every object, a Tenant change that
//! wakes all its users) from piling up in kube-runtime's scheduler.
//!
//! The scheduler takes every trigger the moment it arrives, and its maps and delay
//! queue keep the capacity of the largest burst for the life of the process (heaptrack
//! after a restart with 10,000 users: 0.7 KB a user that nothing used again). A paced
//! stream takes in its triggers as they come (so that no watch subscriber falls
//! behind), folds repeats of an object into one, as the scheduler would, and hands
//! the next over only while fewer than [`LIMIT`] handed-over objects wait for their
//! reconcile to start. Its own queue is released once it is empty.
use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::{Future, Stream};
use kube::runtime::reflector::ObjectRef;

use crate::metrics::queue::{Key, key_of_ref as key_of};

/// Handed-over objects that may wait for their reconcile at once: many times the
/// reconciles that run at once, so the controller never idles for want of work.
pub const LIMIT: usize = 512;

/// How long a full gate waits for a reconcile to start before it assumes that the
/// objects it counts will not be reconciled (one deleted before its turn never is) and
/// lets the next [`LIMIT`] through; also how often it looks whether the stores are
/// filled.
const STALL: Duration = Duration::from_millis(250);

/// The objects handed over to the controller whose reconcile has not started.
#[derive(Debug, Default)]
pub struct Pace {
    waiting: Mutex<HashSet<Key>>,
    /// The paced stream, waiting for a start.
    progress: AtomicWaker,
}

impl Pace {
    /// `object`'s reconcile started (whatever triggered it).
    pub fn started(&self, object: Key) {
        if self.lock().remove(&object) {
            self.progress.wake();
        }
    }

    /// `triggers`, folded and handed over while fewer than `limit` objects wait, and
    /// only once `ready` (the stores a reconcile needs are filled). An object that
    /// `counts` says will not be reconciled (gone from the store) is handed over
    /// without waiting. One paced stream per `Pace`.
    pub fn queue<K, S>(
        self: Arc<Self>,
        triggers: S,
        limit: usize,
        ready: impl Fn() -> bool + Send + 'static,
        counts: impl Fn(&ObjectRef<K>) -> bool + Send + 'static,
    ) -> impl Stream<Item = ObjectRef<K>> + Send
    where
        K: kube::Resource<DynamicType = ()> + 'static,
        S: Stream<Item = ObjectRef<K>> + Send + 'static,
    {
        Paced {
            triggers: Some(Box::pin(triggers)),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            pace: self,
            limit,
            ready: Box::new(ready),
            counts: Box::new(counts),
            stall: None,
        }
    }

    /// Counts `object` as waiting, if there is room.
    fn admit(&self, object: Key, limit: usize) -> bool {
        let mut waiting = self.lock();
        if waiting.contains(&object) || waiting.len() < limit {
            waiting.insert(object);
            return true;
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Check<T> = Box<dyn Fn(&T) -> bool + Send>;

struct Paced<K: kube::Resource<DynamicType = ()> + 'static> {
    /// `None` once the triggers ended.
    triggers: Option<Pin<Box<dyn Stream<Item = ObjectRef<K>> + Send>>>,
    queue: VecDeque<ObjectRef<K>>,
    /// The objects in `queue`.
    queued: HashSet<Key>,
    pace: Arc<Pace>,
    limit: usize,
    ready: Box<dyn Fn() -> bool + Send>,
    counts: Check<ObjectRef<K>>,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<K: kube::Resource<DynamicType = ()> + 'static> Stream for Paced<K> {
    type Item = ObjectRef<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            // Take in whatever has come.
            while let Some(triggers) = &mut this.triggers {
                match triggers.as_mut().poll_next(cx) {
                    Poll::Ready(Some(object)) => {
                        if this.queued.insert(key_of(&object)) {
                            this.queue.push_back(object);
                        }
                    }
                    Poll::Ready(None) => this.triggers = None,
                    Poll::Pending => break,
                }
            }
            let Some(next) = this.queue.front() else {
                // A burst's queue is not kept for the next one.
                if this.queue.capacity() > 1024 {
                    tracing::debug!(capacity = this.queue.capacity(), "paced queue released");
                }
                this.queue.shrink_to_fit();
                this.queued.shrink_to_fit();
                return match this.triggers {
                    Some(_) => Poll::Pending,
                    None => Poll::Ready(None),
                };
            };
            this.pace.progress.register(cx.waker());
            let next_key = key_of(next);
            if (this.ready)() && (!(this.counts)(next) || this.pace.admit(next_key, this.limit)) {
                this.queued.remove(&next_key);
                this.stall = None;
                return Poll::Ready(this.queue.pop_front());
            }
            // Wait for a reconcile to start, or for the stall.
            let stall = this
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL)));
            match stall.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.stall = None;
                    let ready = (this.ready)();
                    let mut waiting = this.pace.lock();
                    tracing::debug!(
                        ready,
                        waiting = waiting.len(),
                        queued = this.queue.len(),
                        "no paced reconcile started"
                    );
                    if ready {
                        waiting.clear();
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use roster_api::DirectoryUser;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn user(name: &str) -> ObjectRef<DirectoryUser> {
        ObjectRef::new(name).within("ns")
    }

    fn names(objects: &[ObjectRef<DirectoryUser>]) -> Vec<&str> {
        objects.iter().map(|o| o.name.as_str()).collect()
    }

    async fn next_soon(
        paced: &mut (impl Stream<Item = ObjectRef<DirectoryUser>> + Unpin),
    ) -> Option<String> {
        tokio::time::timeout(Duration::from_millis(100), paced.next())
            .await
            .ok()
            .flatten()
            .map(|o| o.name)
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_stream_folds_repeats_and_hands_over_as_reconciles_start() {
        let pace = Arc::new(Pace::default());
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let ready = Arc::new(AtomicBool::new(false));
        let is_ready = ready.clone();
        // "gone" stands for a user no longer in the store.
        let mut paced = std::pin::pin!(pace.clone().queue(
            rx,
            3,
            move || is_ready.load(Ordering::Relaxed),
            |o: &ObjectRef<DirectoryUser>| o.name != "gone",
        ));
        for name in ["a", "b", "a", "gone", "c", "d", "e", "b"] {
            tx.unbounded_send(user(name)).unwrap();
        }
        // Nothing before the stores are filled.
        assert_eq!(next_soon(&mut paced).await, None);
        ready.store(true, Ordering::Relaxed);
        // Each object once, in the order it first came; one that will not be reconciled
        // does not wait...
        let mut handed = Vec::new();
        for _ in 0..4 {
            handed.push(paced.next().await.unwrap());
        }
        assert_eq!(names(&handed), ["a", "b", "gone", "c"]);
        // ...and the gate is full: the next waits for a reconcile to start.
        assert_eq!(next_soon(&mut paced).await, None);
        pace.started(key_of(&user("b")));
        assert_eq!(next_soon(&mut paced).await.as_deref(), Some("d"));
        // Full again (a, c, d wait), so e waits; a again goes behind it. When no
        // reconcile starts, the stall lets the queue go on.
        let before = tokio::time::Instant::now();
        tx.unbounded_send(user("a")).unwrap();
        assert_eq!(next_soon(&mut paced).await, None);
        assert_eq!(paced.next().await.map(|o| o.name).as_deref(), Some("e"));
        assert!(before.elapsed() >= STALL);
        assert_eq!(paced.next().await.map(|o| o.name).as_deref(), Some("a"));
        // It ends when its triggers do, with nothing left behind.
        drop(tx);
        assert_eq!(paced.next().await, None);
    }
}
