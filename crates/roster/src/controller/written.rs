//! The resourceVersion of roster's own last write to each lifecycle object. A copy
//! that is exactly that version is as fresh as a read: a reconcile decides on it
//! without asking the API server again. A copy of one of roster's *earlier* writes
//! lags behind the last one, whose watch event is on its way and wakes the object
//! again: nothing to do until then (no read, no decision on stale status). A copy of
//! a version the watch delivered *after* roster's last write is newer than that write
//! (a watch delivers in order): fresh too. Any other version may lag behind roster's
//! own write (a step must never be repeated from stale status), so the reconcile reads
//! afresh.
//!
//! "Delivered after" is the version itself, not "whatever the store holds": a
//! reconcile holds a copy taken from the store when it started, and the watch may
//! deliver roster's last write while it runs. That copy is older than the write, and
//! deciding on it repeats a transition (issue 13's 429 fault test caught a revocation
//! decided twice, its deadlines moved by 0.2 s, this way).
//!
//! An object roster has not written since this process started is in the same case
//! once the store holds any of this process's own writes: a watch delivers a kind's
//! changes in order, and every write of an earlier process (or leader) was
//! acknowledged before this process's first write, so the store holds them all; a copy
//! of what the store holds *now* is then fresh. Until then (and after a write whose
//! outcome is unknown) such an object is read afresh.
//!
//! So once the store holds roster's last write of an object (and any of its writes of
//! the kind), the object's record goes: it would say no more than the store does, and
//! kept for every user it cost a quarter of a KB each. A write whose event the watch
//! delivered before the write's response is then not known to be delivered: the next
//! version someone else writes is read afresh once, until roster's next write is
//! delivered.
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::ResourceExt;
use roster_api::DirectoryUser;

/// Earlier writes remembered per object until the store catches up: one reconcile
/// writes at most a few times (finalizer, a status per step).
const EARLIER: usize = 8;

/// What a copy of an object is, against roster's own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The version roster wrote last.
    Current,
    /// A version roster wrote before its last write: the last one's event is coming.
    Behind,
    /// Someone else's version, delivered by the watch after roster's last write.
    Newer,
    /// Not a version of roster's recent writes (someone else's, or forgotten).
    Unknown,
}

#[derive(Default)]
struct Versions {
    last: String,
    earlier: Vec<String>,
    /// The watch has delivered `last`.
    seen: bool,
    /// The version the watch delivered most recently after `last` (empty: none yet).
    after: String,
}

type Key = (&'static str, String, String);

#[derive(Default)]
struct State {
    versions: HashMap<Key, Versions>,
    /// Kinds whose store holds one of this process's own writes (see above).
    caught_up: HashSet<&'static str>,
}

#[derive(Default)]
pub struct Written {
    state: Mutex<State>,
}

fn key(kind: &'static str, namespace: &str, name: &str) -> Key {
    (kind, namespace.to_string(), name.to_string())
}

fn key_of(kind: &'static str, object: &impl kube::Resource) -> Key {
    let meta = object.meta();
    key(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

impl Written {
    /// Remembers `object` as roster just wrote it.
    pub fn wrote(&self, kind: &'static str, object: &DirectoryUser) {
        let Some(version) = object.resource_version() else {
            return;
        };
        let mut state = self.lock();
        let entry = state.versions.entry(key_of(kind, object)).or_default();
        // The watch may deliver a write before the write's response arrives.
        let delivered = entry.seen && entry.after == version;
        let previous = std::mem::replace(&mut entry.last, version);
        entry.seen = delivered;
        entry.after = String::new();
        if !previous.is_empty() {
            if entry.earlier.len() == EARLIER {
                entry.earlier.remove(0);
            }
            entry.earlier.push(previous);
        }
    }

    /// A write of `object` failed: it may have landed or not, so no copy is known to be
    /// fresh until roster's next write is delivered.
    pub fn uncertain(&self, kind: &'static str, namespace: &str, name: &str) {
        let mut state = self.lock();
        let entry = state
            .versions
            .entry(key(kind, namespace, name))
            .or_default();
        // The last successful write is not "earlier": if the failed one did not land,
        // no event follows it, and a store holding it must not wait for one.
        entry.last = String::new();
        entry.seen = false;
        entry.after = String::new();
    }

    /// Whether a decision on `object` needs no read: it is roster's last write, or a
    /// later version. `stored`: the version the store holds now.
    pub fn is_fresh(
        &self,
        kind: &'static str,
        object: &DirectoryUser,
        stored: Option<&str>,
    ) -> bool {
        matches!(
            self.freshness(kind, object, stored),
            Freshness::Current | Freshness::Newer
        )
    }

    /// The watch delivered `object` (called by the watch, in its order, after the
    /// store took it in; `in_store`: whether the store holds it yet, which a relist's
    /// objects do only once the list ends).
    pub fn observe(
        &self,
        kind: &'static str,
        object: &impl kube::Resource,
        in_store: impl FnOnce() -> bool,
    ) {
        let Some(version) = object.resource_version() else {
            return;
        };
        let mut state = self.lock();
        let State {
            versions,
            caught_up,
        } = &mut *state;
        let Some(entry) = versions.get_mut(&key_of(kind, object)) else {
            return;
        };
        if entry.last == version {
            if !caught_up.contains(kind) && in_store() {
                caught_up.insert(kind);
            }
            if caught_up.contains(kind) {
                // The store holds roster's last write: a copy of what it holds now is
                // fresh, as for an object this process never wrote. Remembering it
                // costs a quarter of a KB a user, so the record goes.
                versions.remove(&key_of(kind, object));
                return;
            }
            entry.seen = true;
            entry.after = String::new();
            entry.earlier = Vec::new();
        } else if entry.seen {
            entry.after = version.to_string();
        }
    }

    /// Where a copy of `object` stands against roster's own writes; `stored`: the
    /// version the store holds now (for objects roster has not written).
    pub fn freshness(
        &self,
        kind: &'static str,
        object: &DirectoryUser,
        stored: Option<&str>,
    ) -> Freshness {
        let Some(version) = object.resource_version() else {
            return Freshness::Unknown;
        };
        let state = self.lock();
        let Some(entry) = state.versions.get(&key_of(kind, object)) else {
            return if state.caught_up.contains(kind) && stored == Some(version.as_str()) {
                Freshness::Newer
            } else {
                Freshness::Unknown
            };
        };
        if entry.last == version {
            Freshness::Current
        } else if entry.earlier.contains(&version) {
            Freshness::Behind
        } else if entry.seen && entry.after == version {
            Freshness::Newer
        } else {
            Freshness::Unknown
        }
    }

    /// The object is gone or no longer roster's: nothing to remember.
    pub fn forget(&self, kind: &'static str, object: &DirectoryUser) {
        self.lock().versions.remove(&key_of(kind, object));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: &str) -> DirectoryUser {
        let mut user = DirectoryUser::new("e-1", Default::default());
        user.metadata.namespace = Some("acme".into());
        user.metadata.resource_version = Some(version.into());
        user
    }

    fn observe(written: &Written, object: &DirectoryUser) {
        written.observe("K", object, || true);
    }

    /// A copy's freshness in kind `K`, the store holding `stored`.
    fn fresh_as(written: &Written, copy: &DirectoryUser, stored: Option<&str>) -> Freshness {
        written.freshness("K", copy, stored)
    }

    #[test]
    fn a_copy_behind_roster_s_own_last_write_waits_for_it() {
        let written = Written::default();
        let fresh = |object| written.freshness("K", &object, None);
        assert_eq!(fresh(at("1")), Freshness::Unknown);
        written.wrote("K", &at("2"));
        written.wrote("K", &at("3"));
        written.wrote("K", &at("4"));
        // Someone else's version (the one before roster's first write, or after it
        // but before the watch delivered it): unknown.
        assert_eq!(fresh(at("1")), Freshness::Unknown);
        assert_eq!(fresh(at("5")), Freshness::Unknown);
        assert_eq!(fresh(at("2")), Freshness::Behind);
        assert_eq!(fresh(at("3")), Freshness::Behind);
        assert_eq!(fresh(at("4")), Freshness::Current);
        observe(&written, &at("4"));
        // Delivered: fresh as long as the store holds it (its record is gone).
        assert_eq!(fresh_as(&written, &at("4"), Some("4")), Freshness::Newer);
        assert_eq!(fresh_as(&written, &at("4"), Some("5")), Freshness::Unknown);
        // Someone else's write after roster's: newer.
        observe(&written, &at("5"));
        assert!(written.is_fresh("K", &at("5"), Some("5")));
        // A new write: the version before it is no longer known to be newer.
        written.wrote("K", &at("6"));
        assert_eq!(fresh_as(&written, &at("5"), Some("5")), Freshness::Unknown);
        observe(&written, &at("6"));
        observe(&written, &at("7"));
        assert_eq!(fresh_as(&written, &at("7"), Some("7")), Freshness::Newer);
        written.wrote("K", &at("8"));
        assert_eq!(
            written.freshness("Other", &at("8"), None),
            Freshness::Unknown
        );
    }

    /// A reconcile holds the copy the store had when it started; the watch delivering
    /// roster's last write meanwhile does not make that copy fresh (the 429 fault
    /// test's revocation decided twice).
    #[test]
    fn a_copy_taken_before_the_watch_delivered_roster_s_write_stays_unknown() {
        let written = Written::default();
        let held = at("1"); // the creator's version, in the store when a reconcile began
        written.wrote("K", &at("2")); // finalizer
        written.wrote("K", &at("3")); // status: revoked
        observe(&written, &at("2"));
        observe(&written, &at("3"));
        assert_eq!(fresh_as(&written, &held, Some("3")), Freshness::Unknown);
        // Roster's earlier write, held as long: unknown too, once its record is gone.
        assert_eq!(fresh_as(&written, &at("2"), Some("3")), Freshness::Unknown);
        // Someone else's two writes: only the last delivered counts as newer.
        observe(&written, &at("4"));
        observe(&written, &at("5"));
        assert_eq!(fresh_as(&written, &at("4"), Some("5")), Freshness::Unknown);
        assert_eq!(fresh_as(&written, &at("5"), Some("5")), Freshness::Newer);
    }

    #[test]
    fn a_write_the_watch_delivered_before_its_response_counts_as_seen() {
        // Until the store holds one of this process's writes, records are kept.
        let written = Written::default();
        written.wrote("K", &at("2"));
        written.observe("K", &at("2"), || false);
        written.observe("K", &at("3"), || false); // roster's next write, delivered first
        written.wrote("K", &at("3"));
        written.observe("K", &at("4"), || false);
        assert_eq!(fresh_as(&written, &at("4"), None), Freshness::Newer);
    }

    #[test]
    fn once_delivered_a_write_is_forgotten_and_only_costs_a_read_when_raced() {
        let written = Written::default();
        written.wrote("K", &at("2"));
        observe(&written, &at("2"));
        assert!(
            written.lock().versions.is_empty(),
            "nothing kept once delivered"
        );
        // Roster's next write delivered before its response: not known to be
        // delivered, so someone else's later version is read afresh (never decided
        // on unread) until roster's next write is delivered.
        observe(&written, &at("3"));
        written.wrote("K", &at("3"));
        assert_eq!(fresh_as(&written, &at("3"), Some("3")), Freshness::Current);
        observe(&written, &at("4"));
        assert_eq!(fresh_as(&written, &at("4"), Some("4")), Freshness::Unknown);
        written.wrote("K", &at("5"));
        observe(&written, &at("5"));
        assert!(written.lock().versions.is_empty());
    }

    #[test]
    fn objects_roster_has_not_written_are_fresh_as_stored_once_its_own_write_is_stored() {
        let written = Written::default();
        let mut other = at("1");
        other.metadata.name = Some("e-2".into());
        // Before any write of this process is in the store, an earlier process's last
        // write may still be on its way.
        assert_eq!(fresh_as(&written, &other, Some("1")), Freshness::Unknown);
        written.wrote("K", &at("2"));
        assert_eq!(fresh_as(&written, &other, Some("1")), Freshness::Unknown);
        // Delivered by a relist whose objects the store does not hold yet: not yet.
        written.observe("K", &at("2"), || false);
        assert_eq!(fresh_as(&written, &other, Some("1")), Freshness::Unknown);
        observe(&written, &at("2"));
        assert_eq!(fresh_as(&written, &other, Some("1")), Freshness::Newer);
        // A copy older than what the store holds now is not.
        assert_eq!(fresh_as(&written, &other, Some("9")), Freshness::Unknown);
        assert_eq!(fresh_as(&written, &other, None), Freshness::Unknown);
        assert_eq!(
            written.freshness("Other", &other, Some("1")),
            Freshness::Unknown
        );
        // A write that failed may have landed: its object is read again.
        written.uncertain("K", "acme", "e-1");
        assert_eq!(fresh_as(&written, &at("2"), Some("2")), Freshness::Unknown);
        assert_eq!(fresh_as(&written, &at("3"), Some("3")), Freshness::Unknown);
        observe(&written, &at("3"));
        assert_eq!(fresh_as(&written, &at("3"), Some("3")), Freshness::Unknown);
        written.wrote("K", &at("4"));
        assert_eq!(fresh_as(&written, &at("4"), Some("3")), Freshness::Current);
        observe(&written, &at("4"));
        assert_eq!(fresh_as(&written, &at("4"), Some("4")), Freshness::Newer);
        // Forgotten objects count among those not written since the process started.
        written.forget("K", &at("4"));
        assert_eq!(fresh_as(&written, &at("4"), Some("4")), Freshness::Newer);
    }
}
