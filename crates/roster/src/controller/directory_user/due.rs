//! Quarantines that have ended and whose transition to Deprovisioning is not written
//! yet. While any is due, no stage 2 starts: a mass event puts thousands of deadlines
//! in the same second, and each one's transition is one write, while a hand-over is
//! ten. Without this gate the hand-overs of the first users took most of the API
//! server's writes and the last transitions of 1,000 waited 104 s (p99) against a
//! floor of 4.4 s.
//!
//! A user is registered when its reconcile sleeps until the end of its quarantine and
//! taken out when it is reconciled next. A registration more than `STALE` past its time
//! no longer holds stage 2 back (a user deleted meanwhile, or a reconcile that is late
//! for another reason, must not stop every hand-over).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use kube::runtime::reflector::ObjectRef;
use roster_api::DirectoryUser;

/// How long past its time a due transition holds stage 2 back. Long enough for the
/// transitions of a mass event (10,000 at ~200 writes/s is a minute here; with 60 s,
/// stage 2 started while 4,000 were still waiting, and took the writes they needed).
const STALE: Duration = Duration::minutes(5);

/// A user, by namespace and name.
type User = (Option<String>, String);

fn key(user: &ObjectRef<DirectoryUser>) -> User {
    (user.namespace.clone(), user.name.clone())
}

#[derive(Default)]
struct Registry {
    by_time: BTreeSet<(DateTime<Utc>, User)>,
    by_user: HashMap<User, DateTime<Utc>>,
}

#[derive(Default)]
pub struct DueTransitions {
    registry: Mutex<Registry>,
}

impl DueTransitions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `user` sleeps until its quarantine ends `at`.
    pub fn register(&self, user: ObjectRef<DirectoryUser>, at: DateTime<Utc>) {
        let user = key(&user);
        let mut r = self.lock();
        if let Some(old) = r.by_user.insert(user.clone(), at) {
            r.by_time.remove(&(old, user.clone()));
        }
        r.by_time.insert((at, user));
    }

    /// `user` is being reconciled. Returns whether this took the last transition due
    /// at `now` (the caller wakes the stage 2s that waited).
    pub fn reconciling(&self, user: &ObjectRef<DirectoryUser>, now: DateTime<Utc>) -> bool {
        let user = key(user);
        let mut r = self.lock();
        let Some(at) = r.by_user.remove(&user) else {
            return false;
        };
        r.by_time.remove(&(at, user));
        at <= now && !Self::due_in(&mut r, now)
    }

    /// Whether a transition is due at `now` and not yet written.
    pub fn any_due(&self, now: DateTime<Utc>) -> bool {
        Self::due_in(&mut self.lock(), now)
    }

    fn due_in(r: &mut Registry, now: DateTime<Utc>) -> bool {
        // Stale registrations go first: they hold nothing back.
        while let Some((at, user)) = r.by_time.first().cloned() {
            if at + STALE > now {
                break;
            }
            r.by_time.pop_first();
            r.by_user.remove(&user);
        }
        r.by_time.first().is_some_and(|(at, _)| *at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_two_waits_while_a_transition_is_due_and_not_longer() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let user = |n: &str| ObjectRef::<DirectoryUser>::new(n).within("ns");
        let due = DueTransitions::default();
        due.register(user("a"), t0);
        due.register(user("b"), t0 + Duration::seconds(1));
        due.register(user("c"), t0 + Duration::hours(1));
        assert!(!due.any_due(t0 - Duration::seconds(1)), "none due yet");
        assert!(due.any_due(t0));
        let now = t0 + Duration::seconds(2);
        assert!(!due.reconciling(&user("a"), now), "b is still due");
        assert!(due.reconciling(&user("b"), now), "the last one due");
        assert!(!due.any_due(now), "c is an hour away");
        assert!(!due.reconciling(&user("x"), now), "not registered");
        // Registered again later: only the new time counts.
        due.register(user("c"), t0 + Duration::seconds(3));
        assert!(due.any_due(t0 + Duration::seconds(3)));
        // A registration nobody took out stops holding stage 2 back.
        assert!(!due.any_due(t0 + Duration::seconds(3) + STALE));
    }
}
