//! Stage 4, run: the decision's actions one by one. Each result is folded into status
//! by the core and persisted before the next action starts, so a crash at any point
//! neither repeats nor skips a step; the first failure stops the run. The last result
//! is left in `status` for the caller, whose next decision writes it together with
//! what follows from it (one write, not two).
//!
//! Stage-2 steps (the hand-over) run only with one of the stage-2 slots
//! ([`super::slots`]), which are fewer than the controller's concurrent reconciles. A
//! reconcile that finds no slot runs nothing and writes nothing; it is woken when one
//! is released.

use kube::ResourceExt;
use roster_api::{DirectoryUser, DirectoryUserStatus};
use roster_lifecycle::{Action, Outcome, SyncAction};

use super::gather::Inputs;
use super::persist::Home;
use super::{announce, persist};
use crate::controller::directory::TenantUsers;
use crate::controller::{Context, Result};
use crate::effects::{EffectRequest, SyncRequest};

/// Whether the actions ran, or wait for a stage-2 slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    Ran,
    /// Nothing ran and nothing changed: the user is queued for the next slot
    /// released (see [`super::slots`]).
    NoSlot,
}

/// The joiner and mover calls, each recorded before the next. Returns whether all of
/// them went through; the steps wait otherwise (a rehire's profile comes back before
/// access is restored).
pub async fn sync(
    home: &Home,
    context: &Context,
    user: &DirectoryUser,
    inputs: &Inputs,
    actions: &[SyncAction],
    status: &mut DirectoryUserStatus,
) -> Result<bool> {
    let name = user.name_any();
    let uid = user.uid().unwrap_or_default();
    for (index, action) in actions.iter().enumerate() {
        let call = context.effects.sync(SyncRequest {
            tenant: &inputs.tenant,
            user,
            action,
        });
        let outcome = crate::metrics::downstream::observed(&context.metrics, call).await;
        announce::sync_result(context, user, action, &outcome).await;
        let failed = matches!(outcome, roster_lifecycle::SyncOutcome::Failed { .. });
        let more = roster_lifecycle::record_sync_outcome(
            status,
            &uid,
            action,
            outcome,
            context.clock.now(),
        );
        if failed || !more {
            // Failed, or the picture changed (an adopted account): the caller decides
            // afresh from this status.
            return Ok(false);
        }
        if index + 1 < actions.len() {
            persist::step_result(home, &name, status, &context.written).await?;
        }
    }
    Ok(true)
}

pub async fn actions(
    home: &Home,
    context: &Context,
    user: &DirectoryUser,
    inputs: &Inputs,
    actions: &[Action],
    status: &mut DirectoryUserStatus,
) -> Result<Ran> {
    if actions.is_empty() {
        return Ok(Ran::Ran);
    }
    // Held until the last step of this run is recorded.
    let _slot = if actions
        .iter()
        .any(|a| roster_lifecycle::STAGE_TWO.contains(&a.step))
    {
        let waiter = Some(home.waiter(user));
        // Deadline transitions first: each is one write, a hand-over ten.
        if context.due.any_due(context.clock.now()) {
            context.stage_two.queue(waiter);
            return Ok(Ran::NoSlot);
        }
        match context.stage_two.try_take(waiter) {
            Some(slot) => Some(slot),
            None => return Ok(Ran::NoSlot),
        }
    } else {
        None
    };
    // Only the hand-over steps choose new owners, and they look up the few people
    // they ask about (see `Colleagues`).
    let namespace = user.namespace().unwrap_or_default();
    let colleagues = TenantUsers::new(
        &context.directory,
        &context.users,
        &namespace,
        &user.spec.tenant_ref.name,
    );
    let name = user.name_any();
    for (index, action) in actions.iter().enumerate() {
        let call = context.effects.run(EffectRequest {
            tenant: &inputs.tenant,
            policy: &inputs.policy,
            user,
            colleagues: &colleagues,
            action,
        });
        let outcome = crate::metrics::steps::run(&context.metrics, action.step, call).await;
        announce::step_result(context, user, action.step, &outcome).await;
        let failed = matches!(outcome, Outcome::Failed { .. });
        roster_lifecycle::record_outcome(status, action.step, outcome, context.clock.now());
        if failed {
            break;
        }
        if index + 1 < actions.len() {
            persist::step_result(home, &name, status, &context.written).await?;
        }
    }
    Ok(Ran::Ran)
}
