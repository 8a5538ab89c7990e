//! The DirectoryUser as the operator's store keeps it: the few metadata fields that
//! name and version the object, and the rest packed (JSON, LZ4-compressed against a
//! dictionary of typical users). A reconcile unpacks the one user it works on.
//!
//! Why: the store holds every user of every tenant for the life of the process. The
//! typed object costs about 2.1 KB a user there (1.3 KB of it inline `Option`s that
//! are empty for most users), which at 100,000 users is most of the operator's memory;
//! packed, a settled user is about a quarter of a KB on top of the metadata.
//! Unpacking one (LZ4 0.2–0.3 µs, then the JSON decode) happens once per reconcile; the indexes
//! (`directory.rs`) answer the questions that would otherwise unpack many.
use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use roster_api::DirectoryUser;
use serde::{Deserialize, Deserializer};

/// Typical users (a leaver with every step, a settled joiner) with placeholder
/// values: what most of a user's JSON repeats. Only this process reads what it packs,
/// so the dictionary may change with any release.
static DICTIONARY: &[u8] = include_bytes!("dictionary.jsonl");

/// A DirectoryUser in the store: what names and versions it, and the rest packed.
#[derive(Clone)]
pub struct StoredUser {
    /// Name, namespace, UID, resourceVersion, generation and deletion timestamp: what
    /// the watches, the controller's queue and the freshness check read.
    metadata: ObjectMeta,
    packed: Box<[u8]>,
    /// The unpacked JSON's length (LZ4's block format does not keep it).
    len: u32,
}

/// Why a stored user could not be unpacked (a bug, never the user's data: it was
/// valid JSON of the type when it was packed). It says where, never what: the
/// content is personal data.
#[derive(Debug, thiserror::Error)]
#[error("a stored DirectoryUser does not unpack: {0}")]
pub struct UnpackError(String);

impl StoredUser {
    /// Packs a user as the API server sent it, without what no decision reads (the
    /// field managers, `kubectl apply`'s copy of the manifest).
    pub fn pack(mut user: DirectoryUser) -> Self {
        super::watches::strip(&mut user.metadata);
        let meta = &mut user.metadata;
        let metadata = ObjectMeta {
            name: meta.name.take(),
            namespace: meta.namespace.take(),
            uid: meta.uid.take(),
            resource_version: meta.resource_version.take(),
            generation: meta.generation.take(),
            deletion_timestamp: meta.deletion_timestamp.take(),
            ..ObjectMeta::default()
        };
        let json = serde_json::to_vec(&user).expect("a DirectoryUser serializes");
        let packed = lz4_flex::block::compress_with_dict(&json, DICTIONARY).into_boxed_slice();
        Self {
            metadata,
            packed,
            len: u32::try_from(json.len()).expect("a Kubernetes object is under 4 GiB"),
        }
    }

    /// The whole user, as it was packed.
    pub fn user(&self) -> Result<DirectoryUser, UnpackError> {
        let json =
            lz4_flex::block::decompress_with_dict(&self.packed, self.len as usize, DICTIONARY)
                .map_err(|e| UnpackError(format!("LZ4: {e}")))?;
        let mut user: DirectoryUser = serde_json::from_slice(&json).map_err(|e| {
            UnpackError(format!("JSON: {:?} at column {}", e.classify(), e.column()))
        })?;
        let (kept, meta) = (&self.metadata, &mut user.metadata);
        meta.name.clone_from(&kept.name);
        meta.namespace.clone_from(&kept.namespace);
        meta.uid.clone_from(&kept.uid);
        meta.resource_version.clone_from(&kept.resource_version);
        meta.generation = kept.generation;
        meta.deletion_timestamp.clone_from(&kept.deletion_timestamp);
        Ok(user)
    }

    /// The packed part's size in bytes (for the memory figures).
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }
}

/// Only what names the object: a user's fields are personal data (and a store's
/// debug output ends up in logs).
impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .field("resource_version", &self.metadata.resource_version)
            .field("packed_len", &self.packed.len())
            .finish()
    }
}

/// Read as a DirectoryUser and packed at once: the watch never keeps the typed object.
impl<'de> Deserialize<'de> for StoredUser {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DirectoryUser::deserialize(deserializer).map(Self::pack)
    }
}

/// The DirectoryUser kind's own resource: an `Api<StoredUser>` reads the same objects.
impl Resource for StoredUser {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        DirectoryUser::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        DirectoryUser::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        DirectoryUser::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        DirectoryUser::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A user's reference as the store and its controller key it.
pub fn stored_ref(user: ObjectRef<DirectoryUser>) -> ObjectRef<StoredUser> {
    let mut stored = ObjectRef::new(&user.name);
    stored.namespace = user.namespace;
    stored.extra = user.extra;
    stored
}

/// A stored user's reference as the rest of the operator names users.
pub fn user_ref(user: &StoredUser) -> ObjectRef<DirectoryUser> {
    let mut named = ObjectRef::new(user.metadata.name.as_deref().unwrap_or_default());
    named.namespace.clone_from(&user.metadata.namespace);
    named
}

/// Every DirectoryUser of a watch scope, packed; read back one user at a time.
#[derive(Clone)]
pub struct Users {
    store: Store<StoredUser>,
}

impl Users {
    pub fn new(store: Store<StoredUser>) -> Self {
        Self { store }
    }

    /// The store itself (for the controller, which looks its objects up there).
    pub fn store(&self) -> &Store<StoredUser> {
        &self.store
    }

    /// The user, unpacked; `None` when the store does not have it (or, a bug
    /// logged as such, cannot unpack it).
    pub fn get(&self, user: &ObjectRef<DirectoryUser>) -> Option<Arc<DirectoryUser>> {
        let stored = self.store.get(&stored_ref(user.clone()))?;
        match stored.user() {
            Ok(user) => Some(Arc::new(user)),
            Err(error) => {
                tracing::error!(%error, "dropping a stored user that does not unpack");
                None
            }
        }
    }

    /// Whether the store has the user (nothing unpacked).
    pub fn contains(&self, user: &ObjectRef<DirectoryUser>) -> bool {
        self.store.get(&stored_ref(user.clone())).is_some()
    }

    /// The resourceVersion the store holds of the user (nothing unpacked).
    pub fn resource_version(&self, user: &ObjectRef<DirectoryUser>) -> Option<String> {
        self.store
            .get(&stored_ref(user.clone()))?
            .metadata
            .resource_version
            .clone()
    }

    /// Every user's reference (nothing unpacked).
    pub fn refs(&self) -> Vec<ObjectRef<DirectoryUser>> {
        self.store.state().iter().map(|u| user_ref(u)).collect()
    }

    pub fn is_ready(&self) -> bool {
        super::ready(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_api::{DirectoryUserSpec, DirectoryUserStatus, Phase};

    fn leaver() -> DirectoryUser {
        let mut user: DirectoryUser =
            serde_json::from_slice(DICTIONARY.split(|b| *b == b'\n').next().expect("a leaver"))
                .expect("the dictionary's leaver is a DirectoryUser");
        let meta = &mut user.metadata;
        meta.name = Some("e-1".into());
        meta.namespace = Some("acme".into());
        meta.uid = Some("da297c08-4355-413f-a3fd-fa9657f253c0".into());
        meta.resource_version = Some("2792".into());
        meta.generation = Some(4);
        meta.annotations = Some(
            [
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ("roster.dev/note", "kept"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        meta.managed_fields = Some(vec![Default::default()]);
        meta.labels = Some([("team".to_string(), "a".to_string())].into());
        user
    }

    #[test]
    fn a_packed_user_unpacks_to_the_same_user_without_what_the_store_drops() {
        let user = leaver();
        let stored = StoredUser::pack(user.clone());
        let back = stored.user().expect("unpacks");
        let mut expected = user;
        expected.metadata.managed_fields = None;
        expected
            .metadata
            .annotations
            .as_mut()
            .expect("annotations")
            .remove("kubectl.kubernetes.io/last-applied-configuration");
        assert_eq!(
            serde_json::to_value(&back).expect("serializes"),
            serde_json::to_value(&expected).expect("serializes")
        );
        assert_eq!(stored.meta().name.as_deref(), Some("e-1"));
        assert_eq!(stored.meta().resource_version.as_deref(), Some("2792"));
        assert_eq!(stored.meta().generation, Some(4));
        assert!(stored.meta().labels.is_none(), "labels are packed");
    }

    #[test]
    fn a_settled_user_packs_small() {
        let mut user = DirectoryUser::new(
            "e-2",
            DirectoryUserSpec {
                tenant_ref: "acme".into(),
                employee_id: "2".into(),
                email: "someone.else@example.org".into(),
                full_name: "Someone Else".into(),
                ..Default::default()
            },
        );
        user.metadata.namespace = Some("acme".into());
        user.status = Some(DirectoryUserStatus {
            phase: Phase::Active,
            ..Default::default()
        });
        let json = serde_json::to_vec(&user).expect("serializes").len();
        let packed = StoredUser::pack(user).packed_len();
        assert!(packed * 3 < json, "{packed} bytes packed from {json}");
    }

    #[test]
    fn its_debug_output_names_the_user_and_nothing_personal() {
        let debug = format!("{:?}", StoredUser::pack(leaver()));
        assert!(debug.contains("e-1"), "{debug}");
        assert!(!debug.contains("example.com"), "{debug}");
        assert!(!debug.contains("Given"), "{debug}");
        // Nor the packed bytes (a derived Debug would list them, and they decode).
        assert!(!debug.contains('['), "{debug}");
    }

    #[test]
    fn references_convert_both_ways() {
        let stored = StoredUser::pack(leaver());
        let named = user_ref(&stored);
        assert_eq!(named, ObjectRef::new("e-1").within("acme"));
        assert_eq!(stored_ref(named), ObjectRef::from_obj(&stored));
    }
}
