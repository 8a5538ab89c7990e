//! In-memory effects: test and demo equipment that records every call and
//! deduplicates by idempotency key the way the real services do.

use std::collections::HashMap;
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
    exits: Vec<(String, String, bool)>,
    calls: Vec<Call>,
    sync_calls: Vec<SyncCall>,
    applied: HashMap<String, u32>,
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
        state.calls.push(Call {
            namespace: request.user.metadata.namespace.clone().unwrap_or_default(),
            employee_id: request.user.spec.employee_id.clone(),
            step: request.action.step,
            idempotency_key: key,
            applied: first,
        });
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
        state.exits.push((who, idempotency_key.to_string(), first));
        Box::pin(async { Ok(()) })
    }
}
