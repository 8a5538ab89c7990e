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

use super::watches::Change;

/// A tenant: its namespace and name.
type TenantKey = (String, String);
/// Users by a value within a tenant (an email, a manager's email, an employee ID).
type Keyed = HashMap<(TenantKey, String), BTreeSet<String>>;

/// What the index holds of one user, to take it out again.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    tenant: TenantKey,
    email: String,
    manager: Option<String>,
    employee_id: String,
    phase: Phase,
}

impl Entry {
    fn of(du: &DirectoryUser) -> Option<(String, Self)> {
        let namespace = du.namespace()?;
        let fold = |s: &str| s.trim().to_lowercase();
        Some((
            namespace.clone(),
            Self {
                tenant: (namespace, du.spec.tenant_ref.name.clone()),
                email: fold(&du.spec.email),
                manager: du.spec.manager_email.as_deref().map(fold),
                employee_id: du.spec.employee_id.clone(),
                phase: du.status.as_ref().map(|s| s.phase).unwrap_or_default(),
            },
        ))
    }
}

#[derive(Default)]
struct Maps {
    by_tenant: HashMap<TenantKey, BTreeSet<String>>,
    by_email: Keyed,
    by_manager: Keyed,
    by_employee_id: Keyed,
    counts: HashMap<TenantKey, UserCounts>,
    entries: HashMap<(String, String), Entry>,
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

fn add<K: std::hash::Hash + Eq>(map: &mut HashMap<K, BTreeSet<String>>, key: K, name: &str) {
    map.entry(key).or_default().insert(name.to_string());
}

fn take<K: std::hash::Hash + Eq>(map: &mut HashMap<K, BTreeSet<String>>, key: K, name: &str) {
    if let Some(names) = map.get_mut(&key) {
        names.remove(name);
        if names.is_empty() {
            map.remove(&key);
        }
    }
}

impl Maps {
    fn insert(&mut self, name: &str, e: Entry) {
        add(&mut self.by_tenant, e.tenant.clone(), name);
        add(
            &mut self.by_email,
            (e.tenant.clone(), e.email.clone()),
            name,
        );
        if let Some(m) = &e.manager {
            add(&mut self.by_manager, (e.tenant.clone(), m.clone()), name);
        }
        add(
            &mut self.by_employee_id,
            (e.tenant.clone(), e.employee_id.clone()),
            name,
        );
        *slot(self.counts.entry(e.tenant.clone()).or_default(), e.phase) += 1;
        self.entries
            .insert((e.tenant.0.clone(), name.to_string()), e);
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(e) = self
            .entries
            .remove(&(namespace.to_string(), name.to_string()))
        else {
            return;
        };
        take(&mut self.by_tenant, e.tenant.clone(), name);
        take(
            &mut self.by_email,
            (e.tenant.clone(), e.email.clone()),
            name,
        );
        if let Some(m) = &e.manager {
            take(&mut self.by_manager, (e.tenant.clone(), m.clone()), name);
        }
        take(
            &mut self.by_employee_id,
            (e.tenant.clone(), e.employee_id.clone()),
            name,
        );
        if let Some(counts) = self.counts.get_mut(&e.tenant) {
            *slot(counts, e.phase) -= 1;
        }
    }

    fn observe(&mut self, du: &DirectoryUser) {
        let Some((namespace, entry)) = Entry::of(du) else {
            return;
        };
        let name = du.name_any();
        if self.entries.get(&(namespace.clone(), name.clone())) == Some(&entry) {
            return;
        }
        self.remove(&namespace, &name);
        self.insert(&name, entry);
    }
}

/// The indexes of one scope's DirectoryUsers.
#[derive(Default)]
pub struct Directory {
    maps: RwLock<Maps>,
}

impl Directory {
    /// Takes in one change of the watch (the store is already up to date with it).
    pub fn apply(&self, change: &Change<DirectoryUser>, store: &Store<DirectoryUser>) {
        match change {
            Change::Applied(du) => self.write().observe(du),
            Change::Deleted(du) => {
                if let Some(namespace) = du.namespace() {
                    self.write().remove(&namespace, &du.name_any());
                }
            }
            // After a (re)list the store is exactly what exists: rebuild from it, so
            // objects deleted while the watch was down go too.
            Change::Listed => {
                let mut maps = Maps::default();
                for du in store.state() {
                    maps.observe(&du);
                }
                *self.write() = maps;
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    fn refs(namespace: &str, names: Option<&BTreeSet<String>>) -> Vec<ObjectRef<DirectoryUser>> {
        names
            .into_iter()
            .flatten()
            .map(|n| ObjectRef::new(n).within(namespace))
            .collect()
    }

    /// The users of a tenant.
    pub fn users_of(&self, namespace: &str, tenant: &str) -> Vec<ObjectRef<DirectoryUser>> {
        let key = (namespace.to_string(), tenant.to_string());
        Self::refs(namespace, self.read().by_tenant.get(&key))
    }

    /// The users of a tenant under `value` in one of the keyed maps.
    fn keyed(
        &self,
        map: fn(&Maps) -> &Keyed,
        namespace: &str,
        tenant: &str,
        value: String,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        let key = ((namespace.to_string(), tenant.to_string()), value);
        Self::refs(namespace, map(&self.read()).get(&key))
    }

    /// The users of a tenant whose email is `email` (without regard to case).
    pub fn with_email(
        &self,
        namespace: &str,
        tenant: &str,
        email: &str,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        self.keyed(
            |m| &m.by_email,
            namespace,
            tenant,
            email.trim().to_lowercase(),
        )
    }

    /// The users of a tenant who name `email` as their manager.
    pub fn reports_of(
        &self,
        namespace: &str,
        tenant: &str,
        email: &str,
    ) -> Vec<ObjectRef<DirectoryUser>> {
        self.keyed(
            |m| &m.by_manager,
            namespace,
            tenant,
            email.trim().to_lowercase(),
        )
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

    /// How many of a tenant's users are in each phase.
    pub fn counts(&self, namespace: &str, tenant: &str) -> UserCounts {
        self.read()
            .counts
            .get(&(namespace.to_string(), tenant.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

/// The objects of `refs` that the store has.
pub fn resolve(
    store: &Store<DirectoryUser>,
    refs: &[ObjectRef<DirectoryUser>],
) -> Vec<Arc<DirectoryUser>> {
    refs.iter().filter_map(|r| store.get(r)).collect()
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
        assert!(
            !d.read()
                .by_email
                .contains_key(&(("ns".into(), "acme".into()), "boss@example.com".into())),
            "no empty keys"
        );
    }
}
