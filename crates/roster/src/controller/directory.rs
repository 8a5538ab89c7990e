//! Indexes over the DirectoryUsers of one watch scope, kept change by change by the
//! watch itself (before any subscriber hears of the change), so that the questions a
//! reconcile asks — the users of a tenant, a manager by email, the reports of a
//! manager, the user with an employee ID, how many users are in each phase — cost a
//! lookup instead of a scan of every user (a scan per event made a start with 100k
//! users quadratic).
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use roster_api::{DirectoryUser, Phase, UserCounts};

use super::stored::{StoredUser, Users};
use super::watches::Change;

// Compact on purpose: one entry per user of a 100k tenant. Strings are shared
// (`Arc<str>`: a user's name is allocated once for every map it is in) and a tenant is
// a small number; a key names one user far more often than several.

/// A tenant (namespace, name), interned.
type TenantId = u32;
type Text = Arc<str>;

/// The users under one key: nearly always one.
#[derive(Clone, Debug)]
enum Names {
    One(Text),
    Many(BTreeSet<Text>),
}

impl Names {
    fn add(slot: &mut Option<Names>, name: &Text) {
        *slot = Some(match slot.take() {
            None => Names::One(name.clone()),
            Some(Names::One(one)) if one == *name => Names::One(one),
            Some(Names::One(one)) => Names::Many(BTreeSet::from([one, name.clone()])),
            Some(Names::Many(mut many)) => {
                many.insert(name.clone());
                Names::Many(many)
            }
        });
    }

    /// Takes `name` out; `false` when nobody is left.
    fn take(&mut self, name: &str) -> bool {
        match self {
            Names::One(one) => &**one != name,
            Names::Many(many) => {
                many.remove(name);
                !many.is_empty()
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Text> + '_> {
        match self {
            Names::One(one) => Box::new(std::iter::once(one)),
            Names::Many(many) => Box::new(many.iter()),
        }
    }
}

/// Users by a value within a tenant (an email, a manager's email, an employee ID).
type Keyed = HashMap<(TenantId, Text), Names>;

/// What the index holds of one user, to take it out again.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    tenant: TenantId,
    email: Text,
    manager: Option<Text>,
    employee_id: Text,
    phase: Phase,
}

#[derive(Default)]
struct Maps {
    tenant_ids: HashMap<(String, String), TenantId>,
    /// A namespace's interned name, for the entries' keys.
    namespaces: HashMap<String, Text>,
    by_tenant: HashMap<TenantId, BTreeSet<Text>>,
    by_email: Keyed,
    by_manager: Keyed,
    by_employee_id: Keyed,
    counts: HashMap<TenantId, UserCounts>,
    entries: HashMap<(Text, Text), Entry>,
}

fn slot(counts: &mut UserCounts, phase: Phase) -> &mut i32 {
    match phase {
        Phase::Active => &mut counts.active,
        Phase::Held => &mut counts.held,
        Phase::Quarantined => &mut counts.quarantined,
        Phase::Deprovisioning => &mut counts.deprovisioning,
        Phase::Deprovisioned => &mut counts.deprovisioned,
        Phase::Purged => &mut counts.purged,
    }
}

fn add(map: &mut Keyed, key: (TenantId, Text), name: &Text) {
    let mut slot = map.remove(&key);
    Names::add(&mut slot, name);
    map.insert(key, slot.expect("just added"));
}

fn take(map: &mut Keyed, key: &(TenantId, Text), name: &str) {
    if let Some(names) = map.get_mut(key)
        && !names.take(name)
    {
        map.remove(key);
    }
}

/// Folds an email for lookups: case and surrounding space do not tell two apart.
fn fold(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Maps {
    fn tenant_id(&mut self, namespace: &str, tenant: &str) -> TenantId {
        let next = self.tenant_ids.len() as TenantId;
        *self
            .tenant_ids
            .entry((namespace.to_string(), tenant.to_string()))
            .or_insert(next)
    }

    fn known_tenant(&self, namespace: &str, tenant: &str) -> Option<TenantId> {
        self.tenant_ids
            .get(&(namespace.to_string(), tenant.to_string()))
            .copied()
    }

    fn namespace(&mut self, namespace: &str) -> Text {
        if let Some(ns) = self.namespaces.get(namespace) {
            return ns.clone();
        }
        let ns: Text = namespace.into();
        self.namespaces.insert(namespace.to_string(), ns.clone());
        ns
    }

    /// The entry `du` would have, sharing the strings of `old` where they are equal.
    fn entry_of(&mut self, du: &DirectoryUser, old: Option<&Entry>) -> Option<(Text, Entry)> {
        let namespace = du.namespace()?;
        let tenant = self.tenant_id(&namespace, &du.spec.tenant_ref.name);
        let share = |value: String, old: Option<&Text>| -> Text {
            match old {
                Some(o) if **o == *value => o.clone(),
                _ => value.into(),
            }
        };
        let entry = Entry {
            tenant,
            email: share(fold(&du.spec.email), old.map(|o| &o.email)),
            manager: du
                .spec
                .manager_email
                .as_deref()
                .map(|m| share(fold(m), old.and_then(|o| o.manager.as_ref()))),
            employee_id: share(du.spec.employee_id.clone(), old.map(|o| &o.employee_id)),
            phase: du.status.as_ref().map(|s| s.phase).unwrap_or_default(),
        };
        Some((self.namespace(&namespace), entry))
    }

    fn insert(&mut self, namespace: Text, name: Text, e: Entry) {
        self.by_tenant
            .entry(e.tenant)
            .or_default()
            .insert(name.clone());
        add(&mut self.by_email, (e.tenant, e.email.clone()), &name);
        if let Some(m) = &e.manager {
            add(&mut self.by_manager, (e.tenant, m.clone()), &name);
        }
        add(
            &mut self.by_employee_id,
            (e.tenant, e.employee_id.clone()),
            &name,
        );
        *slot(self.counts.entry(e.tenant).or_default(), e.phase) += 1;
        self.entries.insert((namespace, name), e);
    }

    fn remove(&mut self, namespace: &str, name: &str) -> Option<Entry> {
        let key: (Text, Text) = (namespace.into(), name.into());
        let e = self.entries.remove(&key)?;
        if let Some(names) = self.by_tenant.get_mut(&e.tenant) {
            names.remove(name);
            if names.is_empty() {
                self.by_tenant.remove(&e.tenant);
            }
        }
        take(&mut self.by_email, &(e.tenant, e.email.clone()), name);
        if let Some(m) = &e.manager {
            take(&mut self.by_manager, &(e.tenant, m.clone()), name);
        }
        take(
            &mut self.by_employee_id,
            &(e.tenant, e.employee_id.clone()),
            name,
        );
        if let Some(counts) = self.counts.get_mut(&e.tenant) {
            *slot(counts, e.phase) -= 1;
        }
        Some(e)
    }

    fn observe(&mut self, du: &DirectoryUser) {
        let Some(namespace) = du.namespace() else {
            return;
        };
        let name = du.name_any();
        let key: (Text, Text) = (namespace.as_str().into(), name.as_str().into());
        let old = self.entries.get(&key).cloned();
        let Some((namespace, entry)) = self.entry_of(du, old.as_ref()) else {
            return;
        };
        if old.as_ref() == Some(&entry) {
            return;
        }
        // The user's name, shared by every map, as it was allocated first.
        let name: Text = match self.entries.get_key_value(&key) {
            Some(((_, n), _)) => n.clone(),
            None => key.1,
        };
        self.remove(&namespace, &name);
        self.insert(namespace, name, entry);
    }
}

/// The indexes of one scope's DirectoryUsers.
#[derive(Default)]
pub struct Directory {
    maps: RwLock<Maps>,
}

impl Directory {
    /// Takes in one change of the watch (the store is already up to date with it).
    pub fn apply(&self, change: &Change<StoredUser>, store: &Store<StoredUser>) {
        match change {
            Change::Applied(stored) => match stored.user() {
                Ok(du) => self.write().observe(&du),
                Err(error) => tracing::error!(%error, "a user left out of the index"),
            },
            Change::Deleted(stored) => {
                if let Some(namespace) = stored.namespace() {
                    self.write().remove(&namespace, &stored.name_any());
                }
            }
            // After a (re)list the store is exactly what exists, and the list's every
            // object was taken in as it came: what the store no longer has (deleted
            // while the watch was down) goes.
            Change::Listed => {
                let present: std::collections::HashSet<(String, String)> = store
                    .state()
                    .iter()
                    .map(|u| (u.namespace().unwrap_or_default(), u.name_any()))
                    .collect();
                let mut maps = self.write();
                let gone: Vec<(Text, Text)> = maps
                    .entries
                    .keys()
                    .filter(|(ns, name)| !present.contains(&(ns.to_string(), name.to_string())))
                    .cloned()
                    .collect();
                for (namespace, name) in gone {
                    maps.remove(&namespace, &name);
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    fn refs<'a>(
        namespace: &str,
        names: impl Iterator<Item = &'a Text>,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        names.map(|n| ObjectRef::new(n).within(namespace)).collect()
    }

    /// The users of a tenant.
    pub fn users_of(&self, namespace: &str, tenant: &str) -> Vec<ObjectRef<DirectoryUser>> {
        let maps = self.read();
        let names = maps
            .known_tenant(namespace, tenant)
            .and_then(|t| maps.by_tenant.get(&t));
        Self::refs(namespace, names.into_iter().flatten())
    }

    /// The users of a tenant under `value` in one of the keyed maps.
    fn keyed(
        &self,
        map: fn(&Maps) -> &Keyed,
        namespace: &str,
        tenant: &str,
        value: String,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        let maps = self.read();
        let Some(tenant) = maps.known_tenant(namespace, tenant) else {
            return Vec::new();
        };
        let key: (TenantId, Text) = (tenant, value.into());
        match map(&maps).get(&key) {
            Some(names) => Self::refs(namespace, names.iter()),
            None => Vec::new(),
        }
    }

    /// The users of a tenant whose email is `email` (without regard to case).
    pub fn with_email(
        &self,
        namespace: &str,
        tenant: &str,
        email: &str,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        self.keyed(|m| &m.by_email, namespace, tenant, fold(email))
    }

    /// The users of a tenant who name `email` as their manager.
    pub fn reports_of(
        &self,
        namespace: &str,
        tenant: &str,
        email: &str,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        self.keyed(|m| &m.by_manager, namespace, tenant, fold(email))
    }

    /// The users of a tenant with this employee ID.
    pub fn with_employee_id(
        &self,
        namespace: &str,
        tenant: &str,
        employee_id: &str,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        self.keyed(
            |m| &m.by_employee_id,
            namespace,
            tenant,
            employee_id.to_string(),
        )
    }

    /// The tenant and phase of a user the index holds (nothing unpacked).
    fn entry(&self, namespace: &str, name: &str) -> Option<(String, Entry)> {
        let maps = self.read();
        let entry = maps.entries.get(&(namespace.into(), name.into()))?.clone();
        let tenant = maps
            .tenant_ids
            .iter()
            .find(|(_, id)| **id == entry.tenant)
            .map(|((_, tenant), _)| tenant.clone())?;
        Some((tenant, entry))
    }

    /// The tenant of a user the index holds.
    pub fn tenant_of(&self, namespace: &str, name: &str) -> Option<String> {
        self.entry(namespace, name).map(|(tenant, _)| tenant)
    }

    /// The phase of a user the index holds (Active before any status).
    pub fn phase_of(&self, namespace: &str, name: &str) -> Option<Phase> {
        self.entry(namespace, name).map(|(_, e)| e.phase)
    }

    /// The users of the user's tenant who name the user's email as their manager;
    /// `None` when the index does not hold the user (deleted).
    pub fn reports_of_user(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Vec<ObjectRef<DirectoryUser>>> {
        let (tenant, entry) = self.entry(namespace, name)?;
        if entry.email.is_empty() {
            return Some(Vec::new());
        }
        Some(self.reports_of(namespace, &tenant, &entry.email))
    }

    /// How many of a tenant's users are in each phase.
    pub fn counts(&self, namespace: &str, tenant: &str) -> UserCounts {
        let maps = self.read();
        maps.known_tenant(namespace, tenant)
            .and_then(|t| maps.counts.get(&t))
            .cloned()
            .unwrap_or_default()
    }
}

/// The objects of `refs` that the store has, unpacked.
pub fn resolve(users: &Users, refs: &[ObjectRef<DirectoryUser>]) -> Vec<Arc<DirectoryUser>> {
    refs.iter().filter_map(|r| users.get(r)).collect()
}

/// One tenant's users through the indexes and the store: what a hand-over looks up.
pub struct TenantUsers<'a> {
    directory: &'a Directory,
    store: &'a Users,
    namespace: &'a str,
    tenant: &'a str,
}

impl<'a> TenantUsers<'a> {
    pub fn new(
        directory: &'a Directory,
        store: &'a Users,
        namespace: &'a str,
        tenant: &'a str,
    ) -> Self {
        Self {
            directory,
            store,
            namespace,
            tenant,
        }
    }

    fn first(&self, refs: Vec<ObjectRef<DirectoryUser>>) -> Option<Arc<DirectoryUser>> {
        // In name order, as the index keeps them; one gone from the store is skipped.
        refs.iter().find_map(|r| self.store.get(r))
    }
}

impl crate::effects::Colleagues for TenantUsers<'_> {
    fn with_employee_id(&self, employee_id: &str) -> Option<Arc<DirectoryUser>> {
        self.first(
            self.directory
                .with_employee_id(self.namespace, self.tenant, employee_id),
        )
    }

    fn with_email(&self, email: &str) -> Option<Arc<DirectoryUser>> {
        self.first(
            self.directory
                .with_email(self.namespace, self.tenant, email),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_api::{DirectoryUserSpec, DirectoryUserStatus};

    fn user(name: &str, email: &str, manager: Option<&str>, phase: Phase) -> DirectoryUser {
        let mut du = DirectoryUser::new(
            name,
            DirectoryUserSpec {
                tenant_ref: "acme".into(),
                employee_id: name.trim_start_matches("e-").into(),
                email: email.into(),
                manager_email: manager.map(str::to_string),
                ..Default::default()
            },
        );
        du.metadata.namespace = Some("ns".into());
        du.status = Some(DirectoryUserStatus {
            phase,
            ..Default::default()
        });
        du
    }

    #[test]
    fn lookups_follow_every_change() {
        let mut maps = Maps::default();
        maps.observe(&user("e-1", "Boss@Example.com", None, Phase::Active));
        maps.observe(&user(
            "e-2",
            "a@example.com",
            Some("boss@example.com"),
            Phase::Active,
        ));
        maps.observe(&user(
            "e-3",
            "b@example.com",
            Some("BOSS@example.com "),
            Phase::Quarantined,
        ));
        let d = Directory {
            maps: RwLock::new(maps),
        };
        let names = |refs: Vec<ObjectRef<DirectoryUser>>| -> Vec<String> {
            refs.into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names(d.users_of("ns", "acme")), ["e-1", "e-2", "e-3"]);
        assert_eq!(
            names(d.reports_of("ns", "acme", "boss@EXAMPLE.com")),
            ["e-2", "e-3"]
        );
        assert_eq!(
            names(d.with_email("ns", "acme", "boss@example.com")),
            ["e-1"]
        );
        assert_eq!(names(d.with_employee_id("ns", "acme", "2")), ["e-2"]);
        assert!(d.users_of("ns", "other").is_empty());
        assert!(d.users_of("elsewhere", "acme").is_empty());
        let counts = d.counts("ns", "acme");
        assert_eq!((counts.active, counts.quarantined), (2, 1));

        // A mover changes manager, a leaver changes phase, a user goes.
        d.write().observe(&user(
            "e-2",
            "a@example.com",
            Some("other@example.com"),
            Phase::Active,
        ));
        d.write().observe(&user(
            "e-3",
            "b@example.com",
            Some("boss@example.com"),
            Phase::Purged,
        ));
        d.write().remove("ns", "e-1");
        assert_eq!(
            names(d.reports_of("ns", "acme", "boss@example.com")),
            ["e-3"]
        );
        assert!(d.with_email("ns", "acme", "boss@example.com").is_empty());
        let counts = d.counts("ns", "acme");
        assert_eq!(
            (counts.active, counts.quarantined, counts.purged),
            (1, 0, 1)
        );
        let acme = d.read().known_tenant("ns", "acme").unwrap();
        assert!(
            !d.read()
                .by_email
                .contains_key(&(acme, "boss@example.com".into())),
            "no empty keys"
        );
        // One allocation of a user's name, shared by the maps.
        let maps = d.read();
        let ((_, in_entries), _) = maps
            .entries
            .get_key_value(&("ns".into(), "e-3".into()))
            .unwrap();
        let in_tenant = maps.by_tenant[&acme].get("e-3").unwrap();
        assert!(Arc::ptr_eq(in_entries, in_tenant));
    }
}
