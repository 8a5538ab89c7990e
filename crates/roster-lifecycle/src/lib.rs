//! The pure core: the leaver lifecycle as a function of
//! (spec, status, policy, tenant, now) → (new status, actions, next wake-up).
//!
//! Architecture invariant: nothing in this module knows about the API server, HTTP,
//! the clock or async. The controllers of the `roster` crate are thin shells that
//! gather inputs, call [`step`], run the actions and persist the result.

pub mod conditions;
pub mod directory;
pub mod erasure;
pub mod exit;
pub mod groups;
pub mod guard;
pub mod handover;
pub mod machine;
pub mod ownership;
pub mod pii;
pub mod reachability;
pub mod settings;
pub mod sync;
pub mod trigger;

#[cfg(test)]
mod tests;

pub use machine::{
    Action, Decision, Gate, OUTAGE_MAX_BACKOFF, Observed, Outcome, Requests, STAGE_TWO, Transition,
    backoff, failure_backoff, idempotency_key, record_outcome, step,
};
pub use settings::{Policy, TenantSettings};
pub use sync::{Manager, SyncAction, SyncOp, SyncOutcome, record_sync_outcome};
