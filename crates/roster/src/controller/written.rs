//! The resourceVersion of roster's own last write to each lifecycle object. A store
//! that holds exactly that version is as fresh as a read: a reconcile decides on it
//! without asking the API server again. A store that holds one of roster's *earlier*
//! writes lags behind the last one, whose watch event is on its way and wakes the
//! object again: nothing to do until then (no read, no decision on stale status). A
//! store that holds someone else's version after the watch has delivered roster's last
//! write is newer than that write (a watch delivers in order): fresh too. Any other
//! version may lag behind roster's own write (a step must never be repeated from stale
//! status), so the reconcile reads afresh.
//!
//! An object roster has not written since this process started is in the same case
//! once the watch has delivered any of this process's own writes: a watch delivers a
//! kind's changes in order, and every write of an earlier process (or leader) was
//! acknowledged before this process's first write, so the store holds them all. Until
//! then (and after a write whose outcome is unknown) such an object is read afresh.
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::ResourceExt;
use roster_api::DirectoryUser;

/// Earlier writes remembered per object until the store catches up: one reconcile
/// writes at most a few times (finalizer, a status per step).
const EARLIER: usize = 8;

/// What the store's copy of an object is, against roster's own writes.
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
    /// The watch has delivered `last` into the store.
    seen: bool,
}

type Key = (&'static str, String, String);

#[derive(Default)]
struct State {
    versions: HashMap<Key, Versions>,
    /// Kinds whose watch has delivered one of this process's own writes (see above).
    caught_up: HashSet<&'static str>,
}

#[derive(Default)]
pub struct Written {
    state: Mutex<State>,
}

fn key(kind: &'static str, namespace: &str, name: &str) -> Key {
    (kind, namespace.to_string(), name.to_string())
}

fn key_of(kind: &'static str, object: &DirectoryUser) -> Key {
    key(
        kind,
        object.metadata.namespace.as_deref().unwrap_or_default(),
        object.metadata.name.as_deref().unwrap_or_default(),
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
        let previous = std::mem::replace(&mut entry.last, version);
        entry.seen = false;
        if !previous.is_empty() {
            if entry.earlier.len() == EARLIER {
                entry.earlier.remove(0);
            }
            entry.earlier.push(previous);
        }
    }

    /// A write of `object` failed: it may have landed or not, so the store's copy is
    /// not known to be fresh until roster's next write is delivered.
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
    }

    /// Whether a decision on `object` needs no read: it is roster's last write, or a
    /// later version.
    pub fn is_fresh(&self, kind: &'static str, object: &DirectoryUser) -> bool {
        matches!(
            self.freshness(kind, object),
            Freshness::Current | Freshness::Newer
        )
    }

    /// The watch put `object` into the store (called by the watch, in its order).
    pub fn observe(&self, kind: &'static str, object: &DirectoryUser) {
        let Some(version) = object.resource_version() else {
            return;
        };
        let mut state = self.lock();
        if let Some(entry) = state.versions.get_mut(&key_of(kind, object))
            && entry.last == version
        {
            entry.seen = true;
            entry.earlier = Vec::new();
            state.caught_up.insert(kind);
        }
    }

    /// Where `object` stands against roster's own writes. Once the store has caught up
    /// with the last write, the earlier ones are forgotten.
    pub fn freshness(&self, kind: &'static str, object: &DirectoryUser) -> Freshness {
        let Some(version) = object.resource_version() else {
            return Freshness::Unknown;
        };
        let mut state = self.lock();
        let State {
            versions,
            caught_up,
        } = &mut *state;
        let Some(entry) = versions.get_mut(&key_of(kind, object)) else {
            return if caught_up.contains(kind) {
                Freshness::Newer
            } else {
                Freshness::Unknown
            };
        };
        if entry.last == version {
            entry.earlier = Vec::new();
            entry.seen = true;
            Freshness::Current
        } else if entry.earlier.contains(&version) {
            Freshness::Behind
        } else if entry.seen {
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

    #[test]
    fn a_store_behind_roster_s_own_last_write_waits_for_it() {
        let written = Written::default();
        assert_eq!(written.freshness("K", &at("1")), Freshness::Unknown);
        written.wrote("K", &at("2"));
        written.wrote("K", &at("3"));
        written.wrote("K", &at("4"));
        // Someone else's version (the one before roster's first write, or after it
        // but before the watch delivered it): unknown.
        assert_eq!(written.freshness("K", &at("1")), Freshness::Unknown);
        assert_eq!(written.freshness("K", &at("5")), Freshness::Unknown);
        assert_eq!(written.freshness("K", &at("2")), Freshness::Behind);
        assert_eq!(written.freshness("K", &at("3")), Freshness::Behind);
        assert_eq!(written.freshness("K", &at("4")), Freshness::Current);
        // Caught up: the earlier versions are forgotten, and any other version the
        // store holds from now on came after roster's write.
        assert_eq!(written.freshness("K", &at("3")), Freshness::Newer);
        assert_eq!(written.freshness("K", &at("4")), Freshness::Current);
        assert!(written.is_fresh("K", &at("5")));
        // A new write: the store's version before it is no longer known to be newer.
        written.wrote("K", &at("6"));
        assert_eq!(written.freshness("K", &at("5")), Freshness::Unknown);
        written.observe("K", &at("6"));
        assert_eq!(written.freshness("K", &at("7")), Freshness::Newer);
        written.wrote("K", &at("8"));
        assert_eq!(written.freshness("Other", &at("8")), Freshness::Unknown);
        // Forgotten, and one of this process's writes delivered: as new as any write.
        written.forget("K", &at("8"));
        assert_eq!(written.freshness("K", &at("8")), Freshness::Newer);
    }

    #[test]
    fn objects_roster_has_not_written_are_fresh_once_its_own_write_is_delivered() {
        let written = Written::default();
        let mut other = at("1");
        other.metadata.name = Some("e-2".into());
        // Before any write of this process is delivered, an earlier process's last
        // write may still be on its way.
        assert_eq!(written.freshness("K", &other), Freshness::Unknown);
        written.wrote("K", &at("2"));
        assert_eq!(written.freshness("K", &other), Freshness::Unknown);
        written.observe("K", &at("2"));
        assert_eq!(written.freshness("K", &other), Freshness::Newer);
        assert_eq!(written.freshness("Other", &other), Freshness::Unknown);
        // A write that failed may have landed: its object is read again.
        written.uncertain("K", "acme", "e-1");
        assert_eq!(written.freshness("K", &at("2")), Freshness::Unknown);
        assert_eq!(written.freshness("K", &at("3")), Freshness::Unknown);
        written.observe("K", &at("3"));
        assert_eq!(written.freshness("K", &at("3")), Freshness::Unknown);
        written.wrote("K", &at("4"));
        written.observe("K", &at("4"));
        assert_eq!(written.freshness("K", &at("4")), Freshness::Current);
        // Forgotten objects count among those not written since the process started.
        written.forget("K", &at("4"));
        assert_eq!(written.freshness("K", &at("4")), Freshness::Newer);
    }
}
