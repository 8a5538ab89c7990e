//! Stage 1, gather: the user's Tenant and policy from the stores, validated once into
//! the core's inputs, or the reason they cannot be. No API calls.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use roster_api::{DirectoryUser, Tenant};
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
    let Some(tenant) = context
        .tenants
        .get(&ObjectRef::new(&user.spec.tenant).within(namespace))
    else {
        return Gathered::Blocked {
            reason: "TenantNotFound",
            message: format!(
                "no Tenant named {:?} in this namespace; create it or correct spec.tenant",
                user.spec.tenant
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
            message: format!("Tenant {:?}: {error}", user.spec.tenant),
        },
    }
}

/// The users of the same tenant (the user included), for choosing new owners.
pub fn colleagues(users: &Store<DirectoryUser>, user: &DirectoryUser) -> Vec<Arc<DirectoryUser>> {
    let namespace = user.namespace();
    users
        .state()
        .into_iter()
        .filter(|u| u.namespace() == namespace && u.spec.tenant == user.spec.tenant)
        .collect()
}
