//! The SCIM [`Store`] on Kubernetes: reads from the operator's DirectoryUser watches
//! through indexes (never a LIST per request), writes through the API server by
//! server-side apply under SCIM's own field manager.
//!
//! The index is kept change by change from the watch, and a write's answer goes into
//! it at once, so that an identity provider that creates a User and looks it up in the
//! next request finds it. Each object's `resourceVersion` is remembered, so an older
//! watch event that arrives after a write's answer cannot roll the index back.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use roster_api::{DirectoryGroup, DirectoryUser};
use roster_scim::group::GroupRecord;
use roster_scim::objects::{self, FIELD_MANAGER, UserIndex};
use roster_scim::store::{Index, Record, ScimTenant, Scope, Store};
use roster_scim::{ScimError, ScimType};

use crate::clock::Clock;
use crate::controller::stored::StoredUser;
use crate::controller::watches::{Change, Watched};

type Limiter = governor::DefaultKeyedRateLimiter<Scope>;

/// Fresh reads and writes a replace tries before it gives up with 503 (about 0.5 s).
const CONFLICT_RETRIES: u32 = 10;

/// Where each object is in the index, and the version the index holds.
struct Seen {
    scope: Scope,
    version: u64,
    resource_version: String,
}

#[derive(Default)]
struct Indexed {
    scopes: HashMap<Scope, UserIndex>,
    /// (namespace, name) → what the index holds of it (also for objects SCIM does not
    /// read, so that a stale event cannot bring them back).
    seen: HashMap<(String, String), Seen>,
    groups: HashMap<Scope, BTreeMap<String, GroupRecord>>,
    groups_seen: HashMap<(String, String), Seen>,
}

/// Whether the index already holds `seen` as new as `version` (an event to skip: an
/// older one arriving after a write's answer, or the same one again after a resync).
fn newer_or_same(seen: u64, version: u64) -> bool {
    seen > version || (seen == version && version != u64::MAX)
}

fn version_of(resource_version: &str) -> u64 {
    // resourceVersions are opaque, but etcd's are increasing integers; one that does
    // not parse is taken as the newest.
    resource_version.parse::<u64>().unwrap_or(u64::MAX)
}

impl Indexed {
    fn forget(&mut self, key: &(String, String)) {
        if let Some(seen) = self.seen.remove(key)
            && let Some(users) = self.scopes.get_mut(&seen.scope)
        {
            users.remove(&key.1);
        }
    }

    /// Takes in an object as the watch or a write's answer has it, unless the index
    /// already holds a newer version of it.
    fn observe(&mut self, du: &DirectoryUser) {
        let (Some(namespace), Some(resource_version)) = (du.namespace(), du.resource_version())
        else {
            return;
        };
        let key = (namespace.clone(), du.name_any());
        let version = version_of(&resource_version);
        if self
            .seen
            .get(&key)
            .is_some_and(|s| newer_or_same(s.version, version))
        {
            return;
        }
        self.forget(&key);
        let scope = Scope {
            namespace,
            tenant: du.spec.tenant_ref.name.clone(),
        };
        if let Some(record) = objects::from_object(&scope, du) {
            self.scopes.entry(scope.clone()).or_default().upsert(record);
        }
        self.seen.insert(
            key,
            Seen {
                scope,
                version,
                resource_version,
            },
        );
    }
}

impl Indexed {
    fn forget_group(&mut self, key: &(String, String)) {
        if let Some(seen) = self.groups_seen.remove(key)
            && let Some(groups) = self.groups.get_mut(&seen.scope)
        {
            groups.remove(&key.1);
        }
    }

    fn observe_group(&mut self, dg: &DirectoryGroup) {
        let (Some(namespace), Some(resource_version)) = (dg.namespace(), dg.resource_version())
        else {
            return;
        };
        let key = (namespace.clone(), dg.name_any());
        let version = version_of(&resource_version);
        if self
            .groups_seen
            .get(&key)
            .is_some_and(|s| newer_or_same(s.version, version))
        {
            return;
        }
        self.forget_group(&key);
        let scope = Scope {
            namespace,
            tenant: dg.spec.tenant_ref.name.clone(),
        };
        if let Some(group) = objects::from_group_object(&scope, dg) {
            self.groups
                .entry(scope.clone())
                .or_default()
                .insert(group.id.clone(), group);
        }
        self.groups_seen.insert(
            key,
            Seen {
                scope,
                version,
                resource_version,
            },
        );
    }
}

/// The SCIM store of one `roster run`.
pub struct KubeStore {
    client: Client,
    clock: Arc<dyn Clock>,
    index: RwLock<Indexed>,
    tokens: RwLock<HashMap<String, Vec<ScimTenant>>>,
    limiter: Limiter,
    ready: AtomicBool,
}

impl KubeStore {
    pub fn new(client: Client, clock: Arc<dyn Clock>, limiter: Limiter) -> Self {
        Self {
            client,
            clock,
            index: RwLock::default(),
            tokens: RwLock::default(),
            limiter,
            ready: AtomicBool::new(false),
        }
    }

    /// Keeps the index in step with one watch of DirectoryUsers, for the life of the
    /// process. A (re)list, or falling behind the watch, rebuilds from the store.
    pub async fn follow(self: Arc<Self>, users: Watched<StoredUser>) {
        let mut changes = users.changes();
        self.rebuild(&users);
        loop {
            match changes.recv().await {
                Ok(Change::Applied(stored)) => self.observe_stored(&stored),
                Ok(Change::Deleted(du)) => {
                    let key = (du.namespace().unwrap_or_default(), du.name_any());
                    self.write().forget(&key);
                }
                Ok(Change::Listed) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.rebuild(&users)
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Keeps the Group index in step with one watch of DirectoryGroups.
    pub async fn follow_groups(self: Arc<Self>, groups: Watched<DirectoryGroup>) {
        let mut changes = groups.changes();
        self.rebuild_groups(&groups);
        loop {
            match changes.recv().await {
                Ok(Change::Applied(dg)) => self.write().observe_group(&dg),
                Ok(Change::Deleted(dg)) => {
                    let key = (dg.namespace().unwrap_or_default(), dg.name_any());
                    self.write().forget_group(&key);
                }
                Ok(Change::Listed) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.rebuild_groups(&groups)
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn rebuild_groups(&self, groups: &Watched<DirectoryGroup>) {
        let objects = groups.store.state();
        let mut index = self.write();
        let present: std::collections::HashSet<(String, String)> = objects
            .iter()
            .map(|dg| (dg.namespace().unwrap_or_default(), dg.name_any()))
            .collect();
        let namespaces: std::collections::HashSet<&String> = present.iter().map(|k| &k.0).collect();
        let gone: Vec<_> = index
            .groups_seen
            .keys()
            .filter(|k| namespaces.contains(&k.0) && !present.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            index.forget_group(&key);
        }
        for dg in &objects {
            index.observe_group(dg);
        }
    }

    /// Takes in a user as the store keeps it, unpacked for the SCIM records.
    fn observe_stored(&self, stored: &StoredUser) {
        match stored.user() {
            Ok(du) => self.write().observe(&du),
            Err(error) => tracing::error!(%error, "a user left out of the SCIM index"),
        }
    }

    fn rebuild(&self, users: &Watched<StoredUser>) {
        let objects = users.store.state();
        let present: std::collections::HashSet<(String, String)> = objects
            .iter()
            .map(|du| (du.namespace().unwrap_or_default(), du.name_any()))
            .collect();
        let namespaces: std::collections::HashSet<&String> = present.iter().map(|k| &k.0).collect();
        let mut index = self.write();
        // Objects of the watched namespaces the store no longer has are gone.
        let gone: Vec<_> = index
            .seen
            .keys()
            .filter(|k| namespaces.contains(&k.0) && !present.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            index.forget(&key);
        }
        drop(index);
        for stored in &objects {
            self.observe_stored(stored);
        }
    }

    /// Replaces the tokens of every SCIM Tenant (the token refresher's answer).
    pub fn set_tokens(&self, tokens: HashMap<String, Vec<ScimTenant>>) {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
    }

    /// Starts answering (the watches have listed and the tokens are read).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Indexed> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Indexed> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn api(&self, scope: &Scope) -> Api<DirectoryUser> {
        Api::namespaced(self.client.clone(), &scope.namespace)
    }

    /// Applies the record, at `resource_version` when given (optimistic concurrency).
    async fn apply(
        &self,
        scope: &Scope,
        record: &Record,
        resource_version: Option<String>,
    ) -> Result<DirectoryUser, kube::Error> {
        let mut object = objects::to_object(scope, record);
        object.metadata.resource_version = resource_version;
        let written = self
            .api(scope)
            .patch(
                &record.id,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await?;
        self.write().observe(&written);
        Ok(written)
    }

    /// Applies a Group as its DirectoryGroup, at `resource_version` when given.
    async fn apply_group(
        &self,
        scope: &Scope,
        group: &GroupRecord,
        resource_version: Option<String>,
    ) -> Result<DirectoryGroup, kube::Error> {
        let mut object = objects::to_group_object(scope, group);
        object.metadata.resource_version = resource_version;
        let api: Api<DirectoryGroup> = Api::namespaced(self.client.clone(), &scope.namespace);
        let written = api
            .patch(
                &group.id,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await?;
        self.write().observe_group(&written);
        Ok(written)
    }

    fn answer(&self, scope: &Scope, written: &DirectoryUser, fallback: Record) -> Record {
        objects::from_object(scope, written).unwrap_or(fallback)
    }
}

/// The API server's refusal as a SCIM error. Never the API server's message: it can
/// quote the values (an email that fails the schema's format).
fn refused(error: kube::Error) -> ScimError {
    match &error {
        kube::Error::Api(status) if status.code == 404 => ScimError::not_found("no such User"),
        kube::Error::Api(status) if status.code == 409 => ScimError::precondition_failed(),
        kube::Error::Api(status) if status.code == 422 => {
            let fields: Vec<String> = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.field.clone()).collect())
                .unwrap_or_default();
            let fields: Vec<String> = fields.into_iter().filter(|f| !f.is_empty()).collect();
            ScimError::bad(
                ScimType::InvalidValue,
                if fields.is_empty() {
                    "the record does not fit the DirectoryUser schema".to_string()
                } else {
                    format!(
                        "the record does not fit the DirectoryUser schema at {}",
                        fields.join(", ")
                    )
                },
            )
        }
        kube::Error::Api(status) if status.code == 429 => ScimError::too_many_requests(1),
        kube::Error::Api(status) => {
            tracing::warn!(code = status.code, reason = %status.reason, "the API server refused a SCIM write");
            ScimError::new(503, None, "the cluster refused the write; try again")
        }
        _ => {
            tracing::warn!(error = %error.to_string().chars().take(200).collect::<String>(), "a SCIM write did not reach the API server");
            ScimError::unavailable(1)
        }
    }
}

impl Store for KubeStore {
    fn serving(&self) -> Result<(), ScimError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(ScimError::unavailable(1))
        }
    }

    fn admit(&self, scope: &Scope) -> Result<(), ScimError> {
        use governor::clock::{Clock as _, DefaultClock};
        self.limiter.check_key(scope).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ScimError::too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }

    fn tenants(&self, namespace: &str) -> Vec<ScimTenant> {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn new_seed(&self) -> String {
        use rand::Rng;
        let bytes: [u8; 16] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn get(&self, scope: &Scope, id: &str) -> Option<Record> {
        self.read().scopes.get(scope)?.get(id).cloned()
    }

    fn lookup(&self, scope: &Scope, index: Index, value: &str) -> Vec<Record> {
        self.read()
            .scopes
            .get(scope)
            .map(|u| u.lookup(index, value))
            .unwrap_or_default()
    }

    fn all(&self, scope: &Scope) -> Vec<Record> {
        self.read()
            .scopes
            .get(scope)
            .map(UserIndex::all)
            .unwrap_or_default()
    }

    async fn create(&self, scope: &Scope, record: Record) -> Result<Record, ScimError> {
        // The index said the name is free; the API server has the last word (a Git-
        // managed user of another Tenant, or one the watch has not delivered yet).
        if self
            .api(scope)
            .get_opt(&record.id)
            .await
            .map_err(refused)?
            .is_some()
        {
            return Err(ScimError::uniqueness("a User with this employee ID exists"));
        }
        let written = self.apply(scope, &record, None).await.map_err(refused)?;
        Ok(self.answer(scope, &written, record))
    }

    async fn replace(
        &self,
        scope: &Scope,
        record: Record,
        version: &str,
    ) -> Result<Record, ScimError> {
        // The operator's own status writes move the object's resourceVersion too (a
        // joiner's first seconds see several), so a conflict is checked again on a
        // fresh read: only a change of the SCIM record itself is a 412.
        for attempt in 0..CONFLICT_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
            }
            let current = self
                .get(scope, &record.id)
                .ok_or_else(|| ScimError::not_found("no such User"))?;
            if objects::version(&current) != version {
                return Err(ScimError::precondition_failed());
            }
            let resource_version = self
                .read()
                .seen
                .get(&(scope.namespace.clone(), record.id.clone()))
                .map(|s| s.resource_version.clone());
            match self.apply(scope, &record, resource_version).await {
                Ok(written) => return Ok(self.answer(scope, &written, record)),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let fresh = self.api(scope).get_opt(&record.id).await.map_err(refused)?;
                    match fresh {
                        Some(du) => self.write().observe(&du),
                        None => return Err(ScimError::not_found("no such User")),
                    }
                }
                Err(error) => return Err(refused(error)),
            }
        }
        Err(ScimError::new(
            503,
            None,
            "the User is changing too often to write; try again",
        ))
    }

    async fn delete(&self, scope: &Scope, id: &str) -> Result<(), ScimError> {
        // Deleting the DirectoryUser is the removal trigger; the lifecycle goes on in
        // its Departure, and SCIM reads of the id answer 404 from now on.
        let deleted = self
            .api(scope)
            .delete(id, &DeleteParams::default())
            .await
            .map_err(refused)?;
        let key = (scope.namespace.clone(), id.to_string());
        match deleted.left() {
            Some(terminating) => self.write().observe(&terminating),
            None => self.write().forget(&key),
        }
        Ok(())
    }

    fn get_group(&self, scope: &Scope, id: &str) -> Option<GroupRecord> {
        self.read().groups.get(scope)?.get(id).cloned()
    }

    fn groups(&self, scope: &Scope) -> Vec<GroupRecord> {
        self.read()
            .groups
            .get(scope)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    async fn create_group(
        &self,
        scope: &Scope,
        group: GroupRecord,
    ) -> Result<GroupRecord, ScimError> {
        let written = self
            .apply_group(scope, &group, None)
            .await
            .map_err(refused)?;
        Ok(objects::from_group_object(scope, &written).unwrap_or(group))
    }

    async fn replace_group(
        &self,
        scope: &Scope,
        group: GroupRecord,
        version: &str,
    ) -> Result<GroupRecord, ScimError> {
        for attempt in 0..CONFLICT_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
            }
            let current = self
                .get_group(scope, &group.id)
                .ok_or_else(|| ScimError::not_found("no such Group"))?;
            if roster_scim::resource::version(&current.resource) != version {
                return Err(ScimError::precondition_failed());
            }
            let resource_version = self
                .read()
                .groups_seen
                .get(&(scope.namespace.clone(), group.id.clone()))
                .map(|s| s.resource_version.clone());
            match self.apply_group(scope, &group, resource_version).await {
                Ok(written) => {
                    return Ok(objects::from_group_object(scope, &written).unwrap_or(group));
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let api: Api<DirectoryGroup> =
                        Api::namespaced(self.client.clone(), &scope.namespace);
                    match api.get_opt(&group.id).await.map_err(refused)? {
                        Some(dg) => self.write().observe_group(&dg),
                        None => return Err(ScimError::not_found("no such Group")),
                    }
                }
                Err(error) => return Err(refused(error)),
            }
        }
        Err(ScimError::new(
            503,
            None,
            "the Group is changing too often to write; try again",
        ))
    }

    async fn delete_group(&self, scope: &Scope, id: &str) -> Result<(), ScimError> {
        let api: Api<DirectoryGroup> = Api::namespaced(self.client.clone(), &scope.namespace);
        api.delete(id, &DeleteParams::default())
            .await
            .map_err(refused)?;
        self.write()
            .forget_group(&(scope.namespace.clone(), id.to_string()));
        Ok(())
    }
}
