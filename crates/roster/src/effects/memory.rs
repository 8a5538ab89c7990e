//! In-memory effects: test and demo equipment that records every call and
//! deduplicates by idempotency key the way the real services do.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{EffectRequest, Effects, SyncRequest};
use roster_api::StepName;
use roster_lifecycle::{Outcome, SyncOutcome};

/// One call as the service saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub namespace: String,
    pub employee_id: String,
    pub step: StepName,
    pub idempotency_key: String,
    /// False when the key had been applied before (a deduplicated retry).
    pub applied: bool,
}

/// One joiner or mover call as the service saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncCall {
    pub namespace: String,
    pub employee_id: String,
    /// The call's kind (`provision`, `update`, ...).
    pub kind: &'static str,
    pub idempotency_key: String,
    pub applied: bool,
}

#[derive(Default)]
struct State {
    /// Without a log only `seen` is kept: which keys took effect.
    unlogged: bool,
    exits: Vec<(String, String, bool)>,
    calls: Vec<Call>,
    sync_calls: Vec<SyncCall>,
    applied: HashMap<String, u32>,
    seen: HashSet<u64>,
}

/// Records calls; every call succeeds.
#[derive(Default)]
pub struct MemoryEffects {
    state: Mutex<State>,
}

impl MemoryEffects {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deduplicates as [`MemoryEffects::new`] does but keeps no record of the calls
    /// (its accessors return nothing): the operator binary's `--effects memory`, where
    /// nobody reads the record and it would grow with every user (a quarter of a KB
    /// each, a tenth of the operator's memory at 100,000 users).
    pub fn unlogged() -> Self {
        Self {
            state: Mutex::new(State {
                unlogged: true,
                ..State::default()
            }),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every joiner and mover call so far, in order.
    pub fn sync_calls(&self) -> Vec<SyncCall> {
        self.lock().sync_calls.clone()
    }

    /// Every tenant exit call: (namespace/name, idempotency key, applied).
    pub fn exits(&self) -> Vec<(String, String, bool)> {
        self.lock().exits.clone()
    }

    /// How many times each idempotency key took effect (must never exceed 1).
    pub fn applied(&self) -> HashMap<String, u32> {
        self.lock().applied.clone()
    }

    /// Whether `key` takes effect now (its first call), as a service's idempotency
    /// store decides.
    fn first_application(state: &mut State, key: &str) -> bool {
        if state.unlogged {
            // A 64-bit hash: two of a process's keys colliding is a one in 10^9
            // chance at 100,000 users, and this is test equipment.
            let mut hasher = DefaultHasher::new();
            key.hash(&mut hasher);
            return state.seen.insert(hasher.finish());
        }
        let first = !state.applied.contains_key(key);
        if first {
            state.applied.insert(key.to_string(), 1);
        }
        first
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Effects for MemoryEffects {
    fn sync<'a>(&'a self, request: SyncRequest<'a>) -> BoxFuture<'a, SyncOutcome> {
        let mut state = self.lock();
        let key = request.action.idempotency_key.clone();
        let first = Self::first_application(&mut state, &key);
        if state.unlogged {
            return Box::pin(async { SyncOutcome::Done });
        }
        state.sync_calls.push(SyncCall {
            namespace: request.user.metadata.namespace.clone().unwrap_or_default(),
            employee_id: request.user.spec.employee_id.clone(),
            kind: request.action.op.kind(),
            idempotency_key: key,
            applied: first,
        });
        Box::pin(async { SyncOutcome::Done })
    }

    fn run<'a>(&'a self, request: EffectRequest<'a>) -> BoxFuture<'a, Outcome> {
        let mut state = self.lock();
        let key = request.action.idempotency_key.clone();
        let first = Self::first_application(&mut state, &key);
        if !state.unlogged {
            state.calls.push(Call {
                namespace: request.user.metadata.namespace.clone().unwrap_or_default(),
                employee_id: request.user.spec.employee_id.clone(),
                step: request.action.step,
                idempotency_key: key,
                applied: first,
            });
        }
        let summary = format!("{} done", request.action.step);
        Box::pin(async move {
            Outcome::Succeeded {
                summary,
                warning: None,
            }
        })
    }

    fn exit_tenant<'a>(
        &'a self,
        tenant: &'a roster_api::Tenant,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), super::ExitFailure>> {
        let mut state = self.lock();
        let first = Self::first_application(&mut state, idempotency_key);
        let who = format!(
            "{}/{}",
            tenant.metadata.namespace.clone().unwrap_or_default(),
            tenant.metadata.name.clone().unwrap_or_default()
        );
        if !state.unlogged {
            state.exits.push((who, idempotency_key.to_string(), first));
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlogged_effects_deduplicate_by_key_and_keep_no_record() {
        let mut state = State {
            unlogged: true,
            ..State::default()
        };
        assert!(MemoryEffects::first_application(&mut state, "k-1"));
        assert!(!MemoryEffects::first_application(&mut state, "k-1"));
        assert!(MemoryEffects::first_application(&mut state, "k-2"));
        assert!(state.applied.is_empty() && state.calls.is_empty());
        let mut logged = State::default();
        assert!(MemoryEffects::first_application(&mut logged, "k-1"));
        assert!(!MemoryEffects::first_application(&mut logged, "k-1"));
        assert_eq!(logged.applied.get("k-1"), Some(&1));
    }
}
