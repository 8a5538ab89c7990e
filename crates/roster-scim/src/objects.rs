//! SCIM records as DirectoryUser objects, and the indexes a store keeps over them.
//!
//! Pure: the operator's Kubernetes store applies [`to_object`] by server-side apply
//! under [`FIELD_MANAGER`] (forced, so SCIM owns the fields it sends) and feeds the
//! objects its watch sees through [`from_object`] into a [`UserIndex`]; the
//! in-memory store uses the same index.
//!
//! The canonical SCIM resource travels in the [`RESOURCE_ANNOTATION`]: the spec lacks
//! `userName`, `externalId` and the name's parts, and a GET must return what the
//! client sent. The annotation holds personal data, so the purge must scrub it as it
//! scrubs the spec (it is not in `roster_lifecycle::pii::PERSONAL_ANNOTATIONS` yet).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use roster_api::tenant::LocalObjectRef;
use roster_api::{DirectoryGroup, DirectoryGroupSpec, DirectoryUser};
use serde_json::{Value, json};

use crate::group::GroupRecord;
use crate::mapping;
use crate::resource::{self, Resource};
use crate::schema::ENTERPRISE_SCHEMA;
use crate::store::{Index, Record, Scope};

/// The field manager of SCIM's writes.
pub const FIELD_MANAGER: &str = "roster-scim";
/// The annotation that holds a User's canonical SCIM resource (JSON; personal data).
pub const RESOURCE_ANNOTATION: &str = "scim.roster.dev/resource";

/// The DirectoryUser a record is applied as (its name is the SCIM id).
pub fn to_object(scope: &Scope, record: &Record) -> DirectoryUser {
    let mut du = DirectoryUser::new(&record.id, record.spec.clone());
    du.metadata.namespace = Some(scope.namespace.clone());
    du.metadata.annotations = Some(BTreeMap::from([(
        RESOURCE_ANNOTATION.to_string(),
        Value::Object(record.resource.clone()).to_string(),
    )]));
    du
}

/// The record of an object, as SCIM reads it. `None` for objects of another Tenant
/// and for objects being deleted (reads after a DELETE answer 404, while the
/// DirectoryUser runs out its lifecycle). An object SCIM did not write (applied by
/// hand or from Git) reads as the User its spec describes, so an identity provider
/// that looks the person up by `userName` finds them instead of creating a duplicate.
pub fn from_object(scope: &Scope, du: &DirectoryUser) -> Option<Record> {
    if du.metadata.deletion_timestamp.is_some() || du.spec.tenant_ref.name != scope.tenant {
        return None;
    }
    let id = du.metadata.name.clone()?;
    let stored = du
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESOURCE_ANNOTATION))
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
        .and_then(|v| v.as_object().cloned());
    let resource = match stored {
        Some(r) => r,
        None => {
            let mut r = mapping::from_directory_user(&du.spec);
            r.insert("id".into(), Value::String(id.clone()));
            let created = du
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok());
            let mut meta = json!({"resourceType": "User"});
            if let Some(created) = created {
                meta["created"] = created.clone();
                meta["lastModified"] = created;
            }
            r.insert("meta".into(), meta);
            r
        }
    };
    let manager_id = manager_id(&resource);
    Some(Record {
        id,
        resource,
        spec: du.spec.clone(),
        manager_id,
    })
}

fn manager_id(res: &Resource) -> Option<String> {
    res.get(ENTERPRISE_SCHEMA)?
        .get("manager")?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// The Users of one scope with the indexes SCIM reads by: id, userName (without
/// regard to case), externalId and manager id. Kept up to date event by event.
#[derive(Clone, Debug, Default)]
pub struct UserIndex {
    records: BTreeMap<String, Record>,
    by_user_name: HashMap<String, BTreeSet<String>>,
    by_external_id: HashMap<String, BTreeSet<String>>,
    by_manager: HashMap<String, BTreeSet<String>>,
    by_group: HashMap<String, BTreeSet<String>>,
}

fn keys(r: &Record) -> Vec<(Index, String)> {
    let text = |k: &str| {
        r.resource
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut keys: Vec<(Index, String)> = [
        (Index::UserName, text("userName").map(|u| u.to_lowercase())),
        (Index::ExternalId, text("externalId")),
        (Index::ManagerId, r.manager_id.clone()),
    ]
    .into_iter()
    .filter_map(|(i, k)| k.map(|k| (i, k)))
    .collect();
    keys.extend(r.spec.groups.iter().map(|g| (Index::Group, g.clone())));
    keys
}

impl UserIndex {
    fn map(&mut self, index: Index) -> &mut HashMap<String, BTreeSet<String>> {
        match index {
            Index::UserName => &mut self.by_user_name,
            Index::ExternalId => &mut self.by_external_id,
            Index::ManagerId => &mut self.by_manager,
            Index::Group => &mut self.by_group,
        }
    }

    /// Adds or replaces a record.
    pub fn upsert(&mut self, record: Record) {
        self.remove(&record.id);
        for (index, key) in keys(&record) {
            self.map(index)
                .entry(key)
                .or_default()
                .insert(record.id.clone());
        }
        self.records.insert(record.id.clone(), record);
    }

    /// Removes a record (no-op when absent).
    pub fn remove(&mut self, id: &str) -> Option<Record> {
        let old = self.records.remove(id)?;
        for (index, key) in keys(&old) {
            let map = self.map(index);
            if let Some(ids) = map.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    map.remove(&key);
                }
            }
        }
        Some(old)
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    /// The records with this key, ordered by id.
    pub fn lookup(&self, index: Index, value: &str) -> Vec<Record> {
        let (map, key) = match index {
            Index::UserName => (&self.by_user_name, value.to_lowercase()),
            Index::ExternalId => (&self.by_external_id, value.to_string()),
            Index::ManagerId => (&self.by_manager, value.to_string()),
            Index::Group => (&self.by_group, value.to_string()),
        };
        map.get(&key)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.records.get(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every record, ordered by id.
    pub fn all(&self) -> Vec<Record> {
        self.records.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The DirectoryGroup a Group is applied as (its name is the SCIM id). Members are
/// not part of it: they are the Users whose `spec.groups` name the Group.
pub fn to_group_object(scope: &Scope, group: &GroupRecord) -> DirectoryGroup {
    let mut dg = DirectoryGroup::new(
        &group.id,
        DirectoryGroupSpec {
            tenant_ref: LocalObjectRef {
                name: scope.tenant.clone(),
            },
            display_name: group.display_name().to_string(),
            external_id: group
                .resource
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
    );
    dg.metadata.namespace = Some(scope.namespace.clone());
    dg.metadata.annotations = Some(BTreeMap::from([(
        RESOURCE_ANNOTATION.to_string(),
        Value::Object(group.resource.clone()).to_string(),
    )]));
    dg
}

/// The Group of a DirectoryGroup (`None` for another Tenant's, or one being deleted).
pub fn from_group_object(scope: &Scope, dg: &DirectoryGroup) -> Option<GroupRecord> {
    if dg.metadata.deletion_timestamp.is_some() || dg.spec.tenant_ref.name != scope.tenant {
        return None;
    }
    let id = dg.metadata.name.clone()?;
    let stored = dg
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESOURCE_ANNOTATION))
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
        .and_then(|v| v.as_object().cloned());
    let resource = stored.unwrap_or_else(|| {
        let mut r = Resource::new();
        r.insert("schemas".into(), json!([crate::schema::GROUP_SCHEMA]));
        r.insert("id".into(), Value::String(id.clone()));
        r.insert(
            "displayName".into(),
            Value::String(dg.spec.display_name.clone()),
        );
        if let Some(e) = &dg.spec.external_id {
            r.insert("externalId".into(), Value::String(e.clone()));
        }
        r.insert("meta".into(), json!({"resourceType": "Group"}));
        r
    });
    Some(GroupRecord { id, resource })
}

/// The version a store compares `If-Match` and concurrent writes with.
pub fn version(record: &Record) -> String {
    resource::version(&record.resource)
}

#[cfg(test)]
mod tests {
    use roster_api::DirectoryUserSpec;
    use roster_api::tenant::LocalObjectRef;

    use super::*;
    use crate::resource::normalize_user;

    fn scope() -> Scope {
        Scope {
            namespace: "acme".into(),
            tenant: "acme-tenant".into(),
        }
    }

    fn record(id: &str, user_name: &str, external_id: &str, manager: Option<&str>) -> Record {
        let mut body = json!({"userName": user_name, "externalId": external_id, "emails": [{"value": user_name}]});
        if let Some(m) = manager {
            body[ENTERPRISE_SCHEMA] = json!({"manager": m});
        }
        let mut resource = normalize_user(&body).unwrap();
        resource.insert("id".into(), json!(id));
        let spec =
            mapping::to_directory_user(&resource, "acme-tenant", format!("emp-{id}"), |_| None)
                .unwrap();
        Record {
            id: id.into(),
            resource,
            spec: spec.spec,
            manager_id: spec.manager_id,
        }
    }

    #[test]
    fn a_record_survives_the_round_trip_through_its_object() {
        let r = record("e-1", "Jane@Example.com", "ext-1", Some("e-9"));
        let du = to_object(&scope(), &r);
        assert_eq!(du.metadata.name.as_deref(), Some("e-1"));
        assert_eq!(du.metadata.namespace.as_deref(), Some("acme"));
        assert_eq!(from_object(&scope(), &du), Some(r.clone()));
        // Another Tenant's object, or one being deleted, is not SCIM's to read.
        let other = Scope {
            tenant: "other".into(),
            ..scope()
        };
        assert_eq!(from_object(&other, &du), None);
        let mut deleting = du.clone();
        deleting.metadata.deletion_timestamp =
            serde_json::from_value(json!("2026-12-01T12:00:00Z")).unwrap();
        assert_eq!(from_object(&scope(), &deleting), None);
    }

    #[test]
    fn an_object_scim_did_not_write_reads_as_its_spec() {
        let du = DirectoryUser::new(
            "e-5",
            DirectoryUserSpec {
                tenant_ref: LocalObjectRef {
                    name: "acme-tenant".into(),
                },
                employee_id: "5".into(),
                full_name: "Git Ops".into(),
                email: "gitops@example.com".into(),
                ..Default::default()
            },
        );
        let r = from_object(&scope(), &du).unwrap();
        assert_eq!(r.id, "e-5");
        assert_eq!(r.resource["userName"], "gitops@example.com");
        assert_eq!(r.resource[ENTERPRISE_SCHEMA]["employeeNumber"], "5");
        assert_eq!(r.resource["meta"]["resourceType"], "User");
    }

    #[test]
    fn the_index_follows_upserts_and_removals() {
        let mut idx = UserIndex::default();
        idx.upsert(record("e-1", "Jane@Example.com", "ext-1", Some("e-9")));
        idx.upsert(record("e-2", "bob@example.com", "ext-2", Some("e-9")));
        assert_eq!(idx.lookup(Index::UserName, "JANE@example.COM").len(), 1);
        assert_eq!(idx.lookup(Index::ExternalId, "ext-2")[0].id, "e-2");
        assert_eq!(
            idx.lookup(Index::ExternalId, "EXT-2").len(),
            0,
            "externalId is caseExact"
        );
        assert_eq!(
            idx.lookup(Index::ManagerId, "e-9")
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["e-1", "e-2"]
        );
        // A rename moves the key.
        idx.upsert(record("e-1", "janet@example.com", "ext-1", None));
        assert!(idx.lookup(Index::UserName, "jane@example.com").is_empty());
        assert_eq!(idx.lookup(Index::UserName, "janet@example.com").len(), 1);
        assert_eq!(idx.lookup(Index::ManagerId, "e-9").len(), 1);
        assert!(idx.remove("e-2").is_some());
        assert!(idx.remove("e-2").is_none());
        assert!(idx.lookup(Index::ManagerId, "e-9").is_empty());
        assert_eq!(idx.len(), 1);
        assert!(
            !idx.by_external_id.contains_key("ext-2"),
            "no empty keys are left behind"
        );
    }
}

#[cfg(test)]
mod pii_tests {
    /// The annotation holds what the identity provider sent (names, emails): the purge
    /// removes it with the other personal data.
    #[test]
    fn the_resource_annotation_is_purged_with_the_record() {
        assert!(roster_lifecycle::pii::PERSONAL_ANNOTATIONS.contains(&super::RESOURCE_ANNOTATION));
    }
}
