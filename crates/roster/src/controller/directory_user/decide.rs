//! Stage 2, decide: the pure core on the user's state. When side effects are due or
//! status would change, the decision is taken again on a fresh read, because the store
//! may lag behind roster's own last status write: a step must never be repeated from
//! stale status, and a settled status must not be rewritten from it. A store that holds
//! exactly the version roster last wrote is fresh already (no read).
//!
//! A removal the mass-deprovisioning guard watches is decided held first; only when
//! the guard's ledger admits it ([`super::guard::admit`]) is it decided again, admitted.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use roster_api::{APPROVE_ANNOTATION, DEPROVISION_NOW_ANNOTATION, DirectoryUser, RETRY_ANNOTATION};
use roster_lifecycle::guard::Admission;
use roster_lifecycle::{Decision, Gate, Observed, Requests};

use super::gather::{self, Inputs};
use super::persist::Home;
use crate::controller::written::Written;
use crate::controller::{Context, Result};

/// The decision and the object it was taken on.
pub struct Decided {
    pub user: Arc<DirectoryUser>,
    pub decision: Decision,
}

/// `directory`: the tenant's users, for resolving the record's manager.
pub async fn decide(
    home: &Home,
    cached: Arc<DirectoryUser>,
    inputs: &Inputs,
    directory: &[Arc<DirectoryUser>],
    written: &Written,
    context: &Context,
    now: DateTime<Utc>,
) -> Result<Decided> {
    let decision = step(&cached, inputs, directory, now);
    // Nothing to run and nothing to write: the cache is good enough. Otherwise decide
    // again on a fresh read, so a cache that lags behind roster's own last write can
    // neither repeat a call nor rewrite a settled status (new transition times).
    let unchanged = cached.status.as_ref() == Some(&decision.status);
    let settled = decision.actions.is_empty() && decision.sync.is_empty() && unchanged;
    if settled
        || written.is_fresh(
            home.kind(),
            &cached,
            stored(home, &cached, context).as_deref(),
        )
    {
        let decision = guarded(context, &cached, inputs, directory, decision, now).await?;
        return Ok(Decided {
            user: cached,
            decision,
        });
    }
    let fresh = Arc::new(home.fresh(&cached.name_any()).await?);
    let decision = step(&fresh, inputs, directory, now);
    Ok(Decided {
        decision: guarded(context, &fresh, inputs, directory, decision, now).await?,
        user: fresh,
    })
}

/// The version the store holds now of the object `copy` was taken from.
fn stored(home: &Home, copy: &DirectoryUser, context: &Context) -> Option<String> {
    match home {
        Home::User(_) => context.users.resource_version(&ObjectRef::from_obj(copy)),
        Home::Departure(_) => context
            .departures
            .get(&ObjectRef::new(&copy.name_any()).within(home.namespace()))?
            .resource_version(),
    }
}

/// A decision the guard had a say in goes to the guard's ledger; an admitted removal is
/// decided again, admitted. `decision` was taken by [`step`] (which holds).
pub async fn guarded(
    context: &Context,
    user: &DirectoryUser,
    inputs: &Inputs,
    directory: &[Arc<DirectoryUser>],
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<Decision> {
    if decision.guarded_removal
        && super::guard::admit(context, user, &inputs.policy.guard, now).await? == Admission::Admit
    {
        return Ok(step_gated(user, inputs, directory, false, now));
    }
    Ok(decision)
}

/// The pure core on `user` as it is, holding any removal the guard watches (pass the
/// result through [`guarded`] before carrying it out).
pub fn step(
    user: &DirectoryUser,
    inputs: &Inputs,
    directory: &[Arc<DirectoryUser>],
    now: DateTime<Utc>,
) -> Decision {
    step_gated(user, inputs, directory, true, now)
}

fn step_gated(
    user: &DirectoryUser,
    inputs: &Inputs,
    directory: &[Arc<DirectoryUser>],
    hold: bool,
    now: DateTime<Utc>,
) -> Decision {
    let status = user.status.clone().unwrap_or_default();
    let uid = user.uid().unwrap_or_default();
    let annotation = |key: &str| user.annotations().get(key).map(String::as_str);
    let observed = Observed {
        uid: &uid,
        generation: user.metadata.generation,
        deleting: user.metadata.deletion_timestamp.is_some(),
        spec: &user.spec,
        status: &status,
        requests: Requests {
            deprovision_now: annotation(DEPROVISION_NOW_ANNOTATION),
            retry: annotation(RETRY_ANNOTATION),
            approve: annotation(APPROVE_ANNOTATION),
        },
        manager: gather::manager(user, directory),
        guard: Gate {
            hold,
            decisions: super::guard::decisions(&inputs.tenant),
        },
    };
    roster_lifecycle::step(&observed, &inputs.policy, &inputs.settings, now)
}
