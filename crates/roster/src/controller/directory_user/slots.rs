//! The stage-2 slots of one scope: fewer than the controller's concurrent reconciles,
//! so that however many leavers hang in slow hand-over calls, some reconciles stay
//! free for revocations, restores and joiners.
//!
//! A reconcile that finds no slot does not wait inside its reconcile (that would hold
//! the reconcile slot the bound is meant to free): it queues its person and returns.
//! When a slot is released, the first one queued is woken (a reconcile trigger of the
//! DirectoryUser or the Departure controller, whichever keeps the lifecycle), so the
//! waiting costs no polling; a long fallback requeue covers a wake that finds nothing
//! to do. (A Departure once waited for the fallback alone: 60-90 s of a demo leaver's
//! hand-over lost behind another leaver's quarantine end in the same second.)

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::runtime::reflector::ObjectRef;
use roster_api::{Departure, DirectoryUser};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How soon a reconcile that found every slot taken tries again if no release wakes
/// it first: long and spread, because a release wakes the first waiter and that is
/// the path that counts. With 10 s, 4,700 leavers waiting for stage 2 retried ~470
/// times a second, and those retries filled the controller's queue ahead of the
/// quarantine ends that were due (2,459 of them waited minutes).
pub fn fallback_wait() -> Duration {
    use rand::Rng as _;
    Duration::from_secs(60) + Duration::from_millis(rand::rng().random_range(0..30_000))
}

/// Who waits for a slot: the object that keeps the lifecycle, for its controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Waiter {
    User(ObjectRef<DirectoryUser>),
    Departure(ObjectRef<Departure>),
}

#[derive(Default)]
struct Queue {
    order: VecDeque<Waiter>,
    queued: HashSet<Waiter>,
}

/// The two controllers' triggers.
#[derive(Clone)]
struct Wake {
    users: UnboundedSender<ObjectRef<DirectoryUser>>,
    departures: UnboundedSender<ObjectRef<Departure>>,
}

impl Wake {
    fn send(&self, waiter: Waiter) {
        // A closed trigger: that controller has stopped, nothing to wake.
        match waiter {
            Waiter::User(user) => drop(self.users.unbounded_send(user)),
            Waiter::Departure(departure) => drop(self.departures.unbounded_send(departure)),
        }
    }
}

/// The slots, those waiting for one, and the triggers that wake them.
pub struct StageTwoSlots {
    permits: Arc<Semaphore>,
    queue: Arc<Mutex<Queue>>,
    wake: Wake,
    woken_users: Mutex<Option<UnboundedReceiver<ObjectRef<DirectoryUser>>>>,
    woken_departures: Mutex<Option<UnboundedReceiver<ObjectRef<Departure>>>>,
}

/// One slot, held until the last step of a run is recorded. Releasing it wakes the
/// first one waiting.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    queue: Arc<Mutex<Queue>>,
    wake: Wake,
}

impl StageTwoSlots {
    /// A quarter of `concurrency` (at least one reconcile) is kept for everything
    /// but stage 2.
    pub fn for_concurrency(concurrency: u16) -> Self {
        let concurrency = usize::from(concurrency.max(2));
        let reserved = (concurrency / 4).max(1);
        Self::with_permits(concurrency - reserved)
    }

    /// `permits` slots. One is the turn of the erasure-receipt chains: appends go one
    /// at a time, and a purge waiting for its turn must not hold a reconcile slot
    /// that revocations and deadlines need (a mass purge once filled all 16).
    pub fn with_permits(permits: usize) -> Self {
        let (users, woken_users) = unbounded();
        let (departures, woken_departures) = unbounded();
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            queue: Arc::default(),
            wake: Wake { users, departures },
            woken_users: Mutex::new(Some(woken_users)),
            woken_departures: Mutex::new(Some(woken_departures)),
        }
    }

    /// A slot now, or `None` after queueing `waiter` (if given) to be woken by the
    /// next release.
    pub fn try_take(&self, waiter: Option<Waiter>) -> Option<Slot> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(Slot {
                permit: Some(permit),
                queue: self.queue.clone(),
                wake: self.wake.clone(),
            }),
            Err(_) => {
                self.queue(waiter);
                None
            }
        }
    }

    /// Queues `waiter` for the next release without trying for a slot (stage 2 is held
    /// back, see [`super::due`]).
    pub fn queue(&self, waiter: Option<Waiter>) {
        if let Some(waiter) = waiter {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if queue.queued.insert(waiter.clone()) {
                queue.order.push_back(waiter);
            }
        }
    }

    /// Wakes as many waiters as there are free slots (stage 2 may go on again).
    pub fn wake_free(&self) {
        let free = self.permits.available_permits();
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..free {
            let Some(next) = queue.order.pop_front() else {
                break;
            };
            queue.queued.remove(&next);
            self.wake.send(next);
        }
    }

    /// The users to reconcile because a slot was released (for the DirectoryUser
    /// controller; the first call takes it, later ones get an empty stream).
    pub fn woken_users(&self) -> UnboundedReceiver<ObjectRef<DirectoryUser>> {
        taken(&self.woken_users)
    }

    /// The Departures to reconcile because a slot was released (for the Departure
    /// controller; as [`Self::woken_users`]).
    pub fn woken_departures(&self) -> UnboundedReceiver<ObjectRef<Departure>> {
        taken(&self.woken_departures)
    }
}

fn taken<T>(receiver: &Mutex<Option<UnboundedReceiver<T>>>) -> UnboundedReceiver<T> {
    receiver
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(|| unbounded().1)
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit goes back before the waiter is woken, so that it finds it free.
        drop(self.permit.take());
        let next = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let next = queue.order.pop_front();
            if let Some(next) = &next {
                queue.queued.remove(next);
            }
            next
        };
        if let Some(next) = next {
            self.wake.send(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Waiter {
        Waiter::User(ObjectRef::new(name).within("ns"))
    }

    fn departure(name: &str) -> Waiter {
        Waiter::Departure(ObjectRef::new(name).within("ns"))
    }

    #[test]
    fn a_released_slot_wakes_the_first_waiter_once_with_its_own_controller() {
        let slots = StageTwoSlots::for_concurrency(4);
        let (mut users, mut departures) = (slots.woken_users(), slots.woken_departures());
        let held: Vec<Slot> = (0..3).map(|_| slots.try_take(None).unwrap()).collect();
        // 4 reconciles, 3 slots: the fourth waits, queued once however often it asks.
        assert!(slots.try_take(Some(user("a"))).is_none());
        assert!(slots.try_take(Some(user("a"))).is_none());
        assert!(slots.try_take(Some(departure("d"))).is_none());
        assert!(slots.try_take(Some(user("b"))).is_none());
        drop(held);
        assert_eq!(
            users.try_recv().ok(),
            Some(ObjectRef::new("a").within("ns"))
        );
        assert_eq!(
            departures.try_recv().ok(),
            Some(ObjectRef::new("d").within("ns"))
        );
        assert_eq!(
            users.try_recv().ok(),
            Some(ObjectRef::new("b").within("ns"))
        );
        assert!(users.try_recv().is_err());
        assert!(departures.try_recv().is_err());
        assert!(slots.try_take(None).is_some());
    }

    #[test]
    fn stage_two_held_back_by_a_deadline_wakes_users_and_departures_alike() {
        let slots = StageTwoSlots::for_concurrency(4);
        let (mut users, mut departures) = (slots.woken_users(), slots.woken_departures());
        // Held back while a quarantine end is due: queued without a slot taken.
        slots.queue(Some(departure("d")));
        slots.queue(Some(user("a")));
        slots.wake_free();
        assert_eq!(
            departures.try_recv().ok(),
            Some(ObjectRef::new("d").within("ns"))
        );
        assert_eq!(
            users.try_recv().ok(),
            Some(ObjectRef::new("a").within("ns"))
        );
    }
}
