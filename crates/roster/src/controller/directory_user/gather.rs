//! Stage 1, gather: the user's Tenant and policy from the stores, validated once into
//! the core's inputs, or the reason they cannot be. No API calls.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use roster_api::{DirectoryUser, Phase, Tenant};
use roster_lifecycle::Manager;
use roster_lifecycle::directory::{KeyHolder, ManagerCandidate, holds_key_before, resolve_manager};
use roster_lifecycle::{Policy, TenantSettings};

use crate::controller::Context;

/// What the user's Tenant and policy resolve to, or why they don't.
pub enum Gathered {
    Ready(Inputs),
    Blocked {
        /// CamelCase, PII-free: the `Ready` condition's reason.
        reason: &'static str,
        /// What to change; names objects, never people.
        message: String,
    },
}

/// Everything the core and the effects need besides the user itself.
pub struct Inputs {
    pub tenant: Arc<Tenant>,
    pub policy: Policy,
    pub settings: TenantSettings,
}

pub fn gather(user: &DirectoryUser, namespace: &str, context: &Context) -> Gathered {
    if let Some(owner) = duplicate_of(user, context) {
        return Gathered::Blocked {
            reason: "DuplicateEmployeeID",
            message: format!(
                "spec.employeeID is already the key of DirectoryUser {owner:?} in this tenant, which was created first; this object does nothing until one of them is deleted or corrected"
            ),
        };
    }
    let Some(tenant) = context
        .tenants
        .get(&ObjectRef::new(&user.spec.tenant_ref.name).within(namespace))
    else {
        return Gathered::Blocked {
            reason: "TenantNotFound",
            message: format!(
                "no Tenant named {:?} in this namespace; create it or correct spec.tenantRef.name",
                user.spec.tenant_ref.name
            ),
        };
    };
    let policy_name = &tenant.spec.policy_ref.name;
    let Some(policy) = context
        .policies
        .get(&ObjectRef::new(policy_name).within(namespace))
    else {
        return Gathered::Blocked {
            reason: "PolicyNotFound",
            message: format!(
                "the Tenant's policyRef names DeprovisionPolicy {policy_name:?}, which does not exist in this namespace"
            ),
        };
    };
    let policy = match Policy::from_spec(&policy.spec) {
        Ok(policy) => policy,
        Err(error) => {
            return Gathered::Blocked {
                reason: "PolicyInvalid",
                message: format!("DeprovisionPolicy {policy_name:?}: {error}"),
            };
        }
    };
    match TenantSettings::from_spec(&tenant.spec) {
        Ok(settings) => Gathered::Ready(Inputs {
            tenant,
            policy,
            settings,
        }),
        Err(error) => Gathered::Blocked {
            reason: "TenantInvalid",
            message: format!("Tenant {:?}: {error}", user.spec.tenant_ref.name),
        },
    }
}

/// Why a deleted user leaves without any call to the learning platform, if it does:
/// its Tenant (or the Tenant's policy) is gone, so there is nothing to call and nothing
/// to call it with; or its Tenant is being deleted, which is the tenant's exit and
/// removes its data downstream wholesale. Waiting would only strand the object (and a
/// namespace being deleted) in Terminating forever.
pub fn leaves_without_platform(
    user: &DirectoryUser,
    namespace: &str,
    context: &Context,
) -> Option<(&'static str, &'static str)> {
    user.metadata.deletion_timestamp.as_ref()?;
    let Some(tenant) = context
        .tenants
        .get(&ObjectRef::new(&user.spec.tenant_ref.name).within(namespace))
    else {
        return Some((
            "ReleasedWithoutTenant",
            "deleted while its Tenant does not exist: released without calls to the learning platform, where nothing was changed",
        ));
    };
    if tenant.metadata.deletion_timestamp.is_some() {
        // Only once the platform has erased the tenant: until then the record waits
        // (see [`tenant_exiting`]), so nothing is released before its data is gone.
        return platform_erased(&tenant).then_some((
            "ReleasedWithTenant",
            "deleted while its Tenant is being deleted (the tenant's exit): released without calls of its own, after the learning platform erased the whole tenant",
        ));
    }
    let policy = ObjectRef::new(&tenant.spec.policy_ref.name).within(namespace);
    if context.policies.get(&policy).is_none() {
        return Some((
            "ReleasedWithoutPolicy",
            "deleted while its Tenant's DeprovisionPolicy does not exist: released without calls to the learning platform, where nothing was changed",
        ));
    }
    None
}

/// Whether the user's Tenant is exiting (being deleted). Its data downstream goes
/// wholesale (`DELETE /tenant`, see `controller::tenant::exit`), so its people start
/// no calls of their own meanwhile: they would race the erasure.
pub fn tenant_exiting(user: &DirectoryUser, namespace: &str, context: &Context) -> bool {
    context
        .tenants
        .get(&ObjectRef::new(&user.spec.tenant_ref.name).within(namespace))
        .is_some_and(|t| t.metadata.deletion_timestamp.is_some())
}

fn platform_erased(tenant: &Tenant) -> bool {
    tenant
        .status
        .as_ref()
        .and_then(|s| s.exit.as_ref())
        .is_some_and(|e| {
            e.completed
                .iter()
                .any(|r| r.stage == roster_api::ExitStage::ErasePlatform)
        })
}

/// An object of the same tenant that held this user's employee ID first, if any.
/// Among the holders of that ID only (an index lookup): this runs on every reconcile,
/// and a scan of the store here made a restart quadratic in the tenant's size.
fn duplicate_of(user: &DirectoryUser, context: &Context) -> Option<String> {
    let me = key_holder(user);
    let holders = context.directory.with_employee_id(
        &user.namespace().unwrap_or_default(),
        &user.spec.tenant_ref.name,
        &user.spec.employee_id,
    );
    crate::controller::directory::resolve(&context.users, &holders)
        .into_iter()
        .find(|other| {
            other.spec.tenant_ref == user.spec.tenant_ref
                && holds_key_before(&key_holder(other), &me)
        })
        .map(|owner| owner.name_any())
}

fn key_holder(user: &DirectoryUser) -> KeyHolder<'_> {
    KeyHolder {
        name: user.metadata.name.as_deref().unwrap_or_default(),
        created: user
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| to_chrono(&t.0)),
        employee_id: &user.spec.employee_id,
    }
}

/// k8s-openapi's `Time` is jiff; the core speaks chrono.
fn to_chrono(time: &jiff::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(time.as_second(), time.subsec_nanosecond() as u32)
        .unwrap_or_default()
}

/// The record's manager among the other users of its tenant. `directory` is the
/// tenant's users ([`colleagues`]); empty when the record names no manager.
pub fn manager<'a>(user: &DirectoryUser, directory: &'a [Arc<DirectoryUser>]) -> Manager<'a> {
    let me = user.metadata.name.as_deref();
    resolve_manager(
        user.spec.manager_email.as_deref(),
        directory
            .iter()
            .filter(|other| other.metadata.name.as_deref() != me)
            .map(|other| ManagerCandidate {
                employee_id: &other.spec.employee_id,
                email: &other.spec.email,
                provisioned: other
                    .status
                    .as_ref()
                    .is_some_and(|s| s.account.provisioned.is_some() && s.phase != Phase::Purged),
            }),
    )
}

/// The users whose record names `manager` as their manager: a manager's arrival or
/// provisioning resolves them (feeds often deliver managers after their reports).
pub fn reports_of(
    directory: &crate::controller::directory::Directory,
    manager: &crate::controller::stored::StoredUser,
) -> Vec<ObjectRef<DirectoryUser>> {
    let namespace = manager.namespace().unwrap_or_default();
    if let Some(reports) = directory.reports_of_user(&namespace, &manager.name_any()) {
        return reports;
    }
    // Not in the index any more (deleted): its last version.
    let Ok(manager) = manager.user() else {
        return Vec::new();
    };
    let email = manager.spec.email.trim();
    if email.is_empty() {
        return Vec::new();
    }
    directory.reports_of(
        &manager.namespace().unwrap_or_default(),
        &manager.spec.tenant_ref.name,
        email,
    )
}
