//! Side effects: the interface through which the lifecycle's actions reach the
//! learning platform and the calendar services.
//!
//! Contract for every implementation: a call carries the action's idempotency key, so
//! running the same action twice takes effect once; "already done" or "already gone"
//! is a success; errors and summaries never contain personal data.

mod account;
pub mod memory;
pub mod platform;
pub mod reachability;

use std::sync::Arc;

use futures::future::BoxFuture;

use roster_api::{DirectoryUser, Tenant};
use roster_lifecycle::reachability::{Connector, Observation};
use roster_lifecycle::{Action, Outcome, Policy, SyncAction, SyncOutcome};

/// Everything a connector may need to carry out one action for one user.
#[derive(Clone, Copy)]
pub struct EffectRequest<'a> {
    pub tenant: &'a Tenant,
    pub policy: &'a Policy,
    pub user: &'a DirectoryUser,
    /// Who the hand-over steps may look up as new owners.
    pub colleagues: &'a dyn Colleagues,
    pub action: &'a Action,
}

/// A tenant's users (the leaver included) as roster last saw them, looked up by key.
/// A hand-over asks about a few people (the fallback owner, the manager, an event's
/// organizers); a list of the whole tenant to search instead cost every leaver's
/// stage 2 a pass over all its users, quadratic in a mass termination.
pub trait Colleagues: Send + Sync {
    /// The user with this employee ID (the first by name, should records share it).
    fn with_employee_id(&self, employee_id: &str) -> Option<Arc<DirectoryUser>>;
    /// The user with this email, without regard to case (the first by name).
    fn with_email(&self, email: &str) -> Option<Arc<DirectoryUser>>;
}

/// One joiner or mover call for one user.
#[derive(Clone, Copy)]
pub struct SyncRequest<'a> {
    pub tenant: &'a Tenant,
    pub user: &'a DirectoryUser,
    pub action: &'a SyncAction,
}

/// Runs lifecycle actions against the outside world.
pub trait Effects: Send + Sync + 'static {
    /// A leaver step (or access restore).
    fn run<'a>(&'a self, request: EffectRequest<'a>) -> BoxFuture<'a, Outcome>;
    /// A joiner or mover call: provisioning, a profile update, a group change.
    fn sync<'a>(&'a self, request: SyncRequest<'a>) -> BoxFuture<'a, SyncOutcome>;
    /// The tenant's exit at the learning platform (`DELETE /tenant`): every person and
    /// engagement record of the tenant. "Already gone" is a success.
    fn exit_tenant<'a>(
        &'a self,
        tenant: &'a Tenant,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ExitFailure>>;
    /// What the calls so far showed of the tenant's connectors (the Tenant's
    /// `ConnectorsReachable` condition). Effects that call nothing observe nothing.
    fn reachability(&self, _tenant: &Tenant) -> Vec<(Connector, Observation)> {
        Vec::new()
    }
    /// Tenants (namespace, name) from now on whenever one of their connectors turns
    /// unreachable or reachable again: their condition is due for a write.
    fn reachability_changes(
        &self,
    ) -> futures::channel::mpsc::UnboundedReceiver<reachability::TenantKey> {
        futures::channel::mpsc::unbounded().1
    }
}

/// Why an exit call failed: a PII-free message and the service's `Retry-After`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitFailure {
    pub error: String,
    pub retry_after: Option<chrono::Duration>,
}
