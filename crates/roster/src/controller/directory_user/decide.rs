//! Stage 2, decide: the pure core on the user's state. When side effects are due or
//! status would change, the decision is taken again on a fresh read, because the store
//! may lag behind roster's own last status write: a step must never be repeated from
//! stale status, and a settled status must not be rewritten from it. A store that holds
//! exactly the version roster last wrote is fresh already (no read).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use roster_api::{APPROVE_ANNOTATION, DEPROVISION_NOW_ANNOTATION, DirectoryUser, RETRY_ANNOTATION};
use roster_lifecycle::{Decision, Observed, Requests};

use super::gather::{self, Inputs};
use super::persist::Home;
use crate::controller::Result;
use crate::controller::written::Written;

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
    now: DateTime<Utc>,
) -> Result<Decided> {
    let decision = step(&cached, inputs, directory, now);
    // Nothing to run and nothing to write: the cache is good enough. Otherwise decide
    // again on a fresh read, so a cache that lags behind roster's own last write can
    // neither repeat a call nor rewrite a settled status (new transition times).
    let unchanged = cached.status.as_ref() == Some(&decision.status);
    let settled = decision.actions.is_empty() && decision.sync.is_empty() && unchanged;
    if settled || written.is_current(home.kind(), &cached) {
        return Ok(Decided {
            user: cached,
            decision,
        });
    }
    let fresh = Arc::new(home.fresh(&cached.name_any()).await?);
    Ok(Decided {
        decision: step(&fresh, inputs, directory, now),
        user: fresh,
    })
}

/// The pure core on `user` as it is.
pub fn step(
    user: &DirectoryUser,
    inputs: &Inputs,
    directory: &[Arc<DirectoryUser>],
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
    };
    roster_lifecycle::step(&observed, &inputs.policy, &inputs.settings, now)
}
