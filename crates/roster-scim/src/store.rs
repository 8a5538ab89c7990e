//! What the HTTP surface needs from storage, and an in-memory implementation (for the
//! HTTP tests and for trying the surface out). The operator implements [`Store`] on its
//! reflector stores (reads) and the API server (writes); every method takes the
//! [`Scope`] (namespace and Tenant) the HTTP layer has authenticated, so a store never
//! mixes tenants, not even two Tenants of one namespace.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use roster_api::DirectoryUserSpec;

use crate::error::ScimError;
use crate::group::GroupRecord;
use crate::objects::UserIndex;
use crate::resource::Resource;

/// One SCIM User as stored: its canonical resource (with `id` and `meta`) and the
/// DirectoryUser it became.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub resource: Resource,
    pub spec: DirectoryUserSpec,
    /// The manager's SCIM id, for resolving `managerEmail` when the manager arrives.
    pub manager_id: Option<String>,
}

/// Whose Users a request may see: one Tenant (by name) in one namespace. The HTTP
/// layer makes it from the namespace in the path and the Tenant the token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub namespace: String,
    pub tenant: String,
}

/// A Tenant that serves SCIM, and its bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct ScimTenant {
    pub name: String,
    pub token: Vec<u8>,
}

impl std::fmt::Debug for ScimTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTenant")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Indexed lookups (the store answers them without a scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// Compared without regard to case (RFC 7643: userName is caseExact=false).
    UserName,
    ExternalId,
    /// The Users whose enterprise `manager.value` is this id (their reports).
    ManagerId,
    /// The Users whose DirectoryUser `spec.groups` names this Group displayName (its
    /// members).
    Group,
}

pub trait Store: Send + Sync + 'static {
    /// The Tenants of a namespace that serve SCIM, with their tokens.
    fn tenants(&self, namespace: &str) -> Vec<ScimTenant>;
    /// Whether the store can answer at all (`503` with `Retry-After` while the
    /// operator's caches are still filling, before any token is checked).
    fn serving(&self) -> Result<(), ScimError> {
        Ok(())
    }
    /// Whether an authenticated request of this tenant may go on now: the operator's
    /// per-tenant rate limit answers `429` with `Retry-After` here (and `503` while its
    /// caches are filling). Admits everything by default.
    fn admit(&self, _scope: &Scope) -> Result<(), ScimError> {
        Ok(())
    }
    /// The time, for `meta.created`/`lastModified` (the operator's one clock).
    fn now(&self) -> DateTime<Utc>;
    /// A fresh, unguessable seed for the employee ID of a User that has neither an
    /// employeeNumber nor an externalId.
    fn new_seed(&self) -> String;
    /// A live (not deleted) User by id.
    fn get(&self, scope: &Scope, id: &str) -> Option<Record>;
    /// Live Users by an indexed attribute.
    fn lookup(&self, scope: &Scope, index: Index, value: &str) -> Vec<Record>;
    /// Every live User of the tenant, ordered by id.
    fn all(&self, scope: &Scope) -> Vec<Record>;
    /// Creates a User; 409 `uniqueness` if the id is taken.
    fn create(
        &self,
        scope: &Scope,
        record: Record,
    ) -> impl Future<Output = Result<Record, ScimError>> + Send;
    /// Replaces a User, if its stored version is still `version` (else 412).
    fn replace(
        &self,
        scope: &Scope,
        record: Record,
        version: &str,
    ) -> impl Future<Output = Result<Record, ScimError>> + Send;
    /// Deletes a User (for the operator: the removal trigger; reads answer 404 after).
    fn delete(&self, scope: &Scope, id: &str)
    -> impl Future<Output = Result<(), ScimError>> + Send;

    /// A Group by id.
    fn get_group(&self, scope: &Scope, id: &str) -> Option<GroupRecord>;
    /// Every Group of the tenant, ordered by id.
    fn groups(&self, scope: &Scope) -> Vec<GroupRecord>;
    /// Creates a Group; 409 `uniqueness` if the id is taken.
    fn create_group(
        &self,
        scope: &Scope,
        group: GroupRecord,
    ) -> impl Future<Output = Result<GroupRecord, ScimError>> + Send;
    /// Replaces a Group, if its stored resource's version is still `version`.
    fn replace_group(
        &self,
        scope: &Scope,
        group: GroupRecord,
        version: &str,
    ) -> impl Future<Output = Result<GroupRecord, ScimError>> + Send;
    /// Deletes a Group (its members' memberships are the caller's to remove).
    fn delete_group(
        &self,
        scope: &Scope,
        id: &str,
    ) -> impl Future<Output = Result<(), ScimError>> + Send;
}

#[derive(Default)]
struct Tenants {
    tenants: HashMap<String, Vec<ScimTenant>>,
    users: HashMap<Scope, UserIndex>,
    groups: HashMap<Scope, std::collections::BTreeMap<String, GroupRecord>>,
    seq: u64,
}

/// A [`Store`] in memory. Its clock is fixed until [`MemoryStore::set_now`].
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Tenants>>,
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl MemoryStore {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::default(),
            now: Arc::new(Mutex::new(now)),
        }
    }
    /// A namespace whose one SCIM Tenant has the namespace's name.
    pub fn with_tenant(self, namespace: &str, token: &str) -> Self {
        self.with_named_tenant(namespace, namespace, token)
    }
    pub fn with_named_tenant(self, namespace: &str, name: &str, token: &str) -> Self {
        self.lock()
            .tenants
            .entry(namespace.into())
            .or_default()
            .push(ScimTenant {
                name: name.into(),
                token: token.as_bytes().to_vec(),
            });
        self
    }
    pub fn set_now(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = now;
    }
    /// Every record of a tenant, for tests.
    pub fn records(&self, scope: &Scope) -> Vec<Record> {
        self.lock()
            .users
            .get(scope)
            .map(UserIndex::all)
            .unwrap_or_default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Tenants> {
        self.inner.lock().expect("store lock")
    }
}

impl Store for MemoryStore {
    fn tenants(&self, namespace: &str) -> Vec<ScimTenant> {
        self.lock()
            .tenants
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }
    fn new_seed(&self) -> String {
        let mut t = self.lock();
        t.seq += 1;
        format!("seed-{}", t.seq)
    }
    fn get(&self, scope: &Scope, id: &str) -> Option<Record> {
        self.lock().users.get(scope)?.get(id).cloned()
    }
    fn lookup(&self, scope: &Scope, index: Index, value: &str) -> Vec<Record> {
        self.lock()
            .users
            .get(scope)
            .map(|u| u.lookup(index, value))
            .unwrap_or_default()
    }
    fn all(&self, scope: &Scope) -> Vec<Record> {
        self.records(scope)
    }
    async fn create(&self, scope: &Scope, record: Record) -> Result<Record, ScimError> {
        let mut t = self.lock();
        let users = t.users.entry(scope.clone()).or_default();
        if users.get(&record.id).is_some() {
            return Err(ScimError::uniqueness("a User with this employee ID exists"));
        }
        users.upsert(record.clone());
        Ok(record)
    }
    async fn replace(
        &self,
        scope: &Scope,
        record: Record,
        version: &str,
    ) -> Result<Record, ScimError> {
        let mut t = self.lock();
        let users = t.users.entry(scope.clone()).or_default();
        match users.get(&record.id) {
            None => Err(ScimError::not_found("no such User")),
            Some(old) if crate::resource::version(&old.resource) != version => {
                Err(ScimError::precondition_failed())
            }
            Some(_) => {
                users.upsert(record.clone());
                Ok(record)
            }
        }
    }
    async fn delete(&self, scope: &Scope, id: &str) -> Result<(), ScimError> {
        match self.lock().users.get_mut(scope).and_then(|u| u.remove(id)) {
            Some(_) => Ok(()),
            None => Err(ScimError::not_found("no such User")),
        }
    }
    fn get_group(&self, scope: &Scope, id: &str) -> Option<GroupRecord> {
        self.lock().groups.get(scope)?.get(id).cloned()
    }
    fn groups(&self, scope: &Scope) -> Vec<GroupRecord> {
        self.lock()
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
        let mut t = self.lock();
        let groups = t.groups.entry(scope.clone()).or_default();
        if groups.contains_key(&group.id) {
            return Err(ScimError::uniqueness("a Group with this id exists"));
        }
        groups.insert(group.id.clone(), group.clone());
        Ok(group)
    }
    async fn replace_group(
        &self,
        scope: &Scope,
        group: GroupRecord,
        version: &str,
    ) -> Result<GroupRecord, ScimError> {
        let mut t = self.lock();
        let groups = t.groups.entry(scope.clone()).or_default();
        match groups.get(&group.id) {
            None => Err(ScimError::not_found("no such Group")),
            Some(old) if crate::resource::version(&old.resource) != version => {
                Err(ScimError::precondition_failed())
            }
            Some(_) => {
                groups.insert(group.id.clone(), group.clone());
                Ok(group)
            }
        }
    }
    async fn delete_group(&self, scope: &Scope, id: &str) -> Result<(), ScimError> {
        match self.lock().groups.get_mut(scope).and_then(|g| g.remove(id)) {
            Some(_) => Ok(()),
            None => Err(ScimError::not_found("no such Group")),
        }
    }
}
