//! The resourceVersion of roster's own last write to each lifecycle object. A store
//! that holds exactly that version is as fresh as a read: a reconcile decides on it
//! without asking the API server again. A store that holds any other version may lag
//! behind roster's own write (a step must never be repeated from stale status), so the
//! reconcile reads afresh.
use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use roster_api::DirectoryUser;

#[derive(Default)]
pub struct Written {
    versions: Mutex<HashMap<(&'static str, String, String), String>>,
}

impl Written {
    fn key(kind: &'static str, object: &DirectoryUser) -> (&'static str, String, String) {
        (
            kind,
            object.namespace().unwrap_or_default(),
            object.name_any(),
        )
    }

    /// Remembers `object` as roster just wrote it.
    pub fn wrote(&self, kind: &'static str, object: &DirectoryUser) {
        let Some(version) = object.resource_version() else {
            return;
        };
        self.lock().insert(Self::key(kind, object), version);
    }

    /// Whether `object` is the version roster last wrote.
    pub fn is_current(&self, kind: &'static str, object: &DirectoryUser) -> bool {
        object
            .resource_version()
            .is_some_and(|version| self.lock().get(&Self::key(kind, object)) == Some(&version))
    }

    /// The object is gone or no longer roster's: nothing to remember.
    pub fn forget(&self, kind: &'static str, object: &DirectoryUser) {
        self.lock().remove(&Self::key(kind, object));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(&'static str, String, String), String>> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
