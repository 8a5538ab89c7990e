//! What a reconcile tells people and dashboards: a log line, a metric and a Kubernetes
//! Event per phase change and per step result. Reasons and labels are the API's
//! `as_str` names; notes carry counts and timestamps, never personal data.

use chrono::{DateTime, SecondsFormat, Utc};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use roster_api::{DirectoryUser, DirectoryUserStatus, Phase, StepName};
use roster_lifecycle::sync::{SyncAction, SyncOp, SyncOutcome};
use roster_lifecycle::{Outcome, Transition};
use tracing::{info, warn};

use crate::controller::Context;
use crate::metrics::{StepLabels, SyncLabels, TransitionLabels};

pub async fn transitions(
    context: &Context,
    user: &DirectoryUser,
    transitions: &[Transition],
    status: &DirectoryUserStatus,
) {
    // Acted on now that the status carrying them is written (the injected clock).
    let now = context.clock.now();
    context.metrics.deadlines_acted_on(transitions, status, now);
    for transition in transitions {
        info!(
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            reason = transition.reason,
            "phase changed"
        );
        let labels = TransitionLabels {
            from: transition.from.as_str(),
            to: transition.to.as_str(),
            reason: transition.reason,
        };
        context.metrics.transitions.get_or_create(&labels).inc();
        publish(
            context,
            user,
            EventType::Normal,
            transition.reason,
            "Transition",
            transition_note(transition, status),
        )
        .await;
    }
}

/// A step's result: a warning Event when it failed or needs attention, and a count.
pub async fn step_result(
    context: &Context,
    user: &DirectoryUser,
    step: StepName,
    outcome: &Outcome,
) {
    let (result, attention) = match outcome {
        Outcome::Succeeded { warning, .. } => (
            "succeeded",
            warning.as_ref().map(|w| ("StepNeedsAttention", w)),
        ),
        Outcome::Failed { error, .. } => ("failed", Some(("StepFailed", error))),
    };
    if let Some((reason, text)) = attention {
        warn!(step = step.as_str(), reason, detail = %text, "step result");
        publish(
            context,
            user,
            EventType::Warning,
            reason,
            "RunStep",
            format!("{step}: {text}"),
        )
        .await;
    }
    let labels = StepLabels {
        step: step.as_str(),
        result,
    };
    context.metrics.steps.get_or_create(&labels).inc();
}

/// A sync call's result: an Event saying what changed at the platform (field and group
/// names, never values), a warning Event when it failed, and a count.
pub async fn sync_result(
    context: &Context,
    user: &DirectoryUser,
    action: &SyncAction,
    outcome: &SyncOutcome,
) {
    let call = action.op.kind();
    let (result, type_, reason, note) = match (outcome, &action.op) {
        (SyncOutcome::Failed { error, .. }, _) => (
            "failed",
            EventType::Warning,
            "SyncFailed",
            format!("{call}: {error}"),
        ),
        (SyncOutcome::Adopted(_), _) => (
            "adopted",
            EventType::Normal,
            "AccountAdopted",
            "an account with this employee ID existed at the learning platform; roster adopted it"
                .into(),
        ),
        (SyncOutcome::Done, SyncOp::Provision(_)) => (
            "succeeded",
            EventType::Normal,
            "AccountCreated",
            "account created at the learning platform".into(),
        ),
        (SyncOutcome::Done, SyncOp::Update(changes)) => (
            "succeeded",
            EventType::Normal,
            "ProfileSynced",
            format!(
                "sent {}",
                changes
                    .iter()
                    .map(|(field, _)| field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (SyncOutcome::Done, SyncOp::AddToGroup(group)) => (
            "succeeded",
            EventType::Normal,
            "GroupJoined",
            format!("added to group {group:?} by the Tenant's group rules"),
        ),
        (SyncOutcome::Done, SyncOp::RemoveFromGroup(group)) => (
            "succeeded",
            EventType::Normal,
            "GroupLeft",
            format!("removed from group {group:?}: its rule no longer matches and removes"),
        ),
    };
    if result == "failed" {
        warn!(call, detail = %note, "sync call failed");
    } else {
        info!(call, reason, "sync call");
    }
    publish(context, user, type_, reason, "SyncAccount", note).await;
    context
        .metrics
        .sync_calls
        .get_or_create(&SyncLabels { call, result })
        .inc();
}

/// A deleted user's lifecycle moved to its Departure.
pub async fn handed_over(context: &Context, user: &DirectoryUser, status: &DirectoryUserStatus) {
    let until = status
        .deprovision_due_time
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    publish(
        context,
        user,
        EventType::Normal,
        "HandedOver",
        "HandOver",
        format!(
            "deleted: access is revoked and the lifecycle continues on Departure {} (kubectl get departure {}); re-create the record before {until} to reverse it",
            user.name_any(),
            user.name_any()
        ),
    )
    .await;
}

/// A returning person's DirectoryUser took the lifecycle back from their Departure.
pub async fn taken_back(context: &Context, user: &DirectoryUser, departure: &str) {
    publish(
        context,
        user,
        EventType::Normal,
        "TakenBack",
        "TakeBack",
        format!(
            "re-created during the quarantine: the lifecycle comes back from Departure {departure}"
        ),
    )
    .await;
}

/// A source wrote personal data to a user who is already purged.
pub async fn pii_reapplied(context: &Context, user: &DirectoryUser) {
    warn!("a source re-applied personal data to a purged user; removed again");
    publish(
        context,
        user,
        EventType::Warning,
        "PIIReapplied",
        "ScrubPii",
        "a source wrote personal data to a purged user; roster removed it again".into(),
    )
    .await;
}

/// A deleted user released without reaching the learning platform (see
/// [`super::gather::leaves_without_platform`]).
pub async fn released_without_platform(
    context: &Context,
    user: &DirectoryUser,
    reason: &str,
    note: &str,
) {
    warn!(reason, "released without calls to the learning platform");
    publish(
        context,
        user,
        EventType::Warning,
        reason,
        "Release",
        note.into(),
    )
    .await;
}

fn transition_note(transition: &Transition, status: &DirectoryUserStatus) -> String {
    let stamp = |at: Option<DateTime<Utc>>| {
        at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let next = match transition.to {
        Phase::Quarantined => format!(
            "; deprovisioning due {}",
            stamp(status.deprovision_due_time)
        ),
        Phase::Deprovisioned => format!("; purge due {}", stamp(status.purge_due_time)),
        _ => String::new(),
    };
    format!(
        "{} -> {} ({}){next}",
        transition.from, transition.to, transition.reason
    )
}

async fn publish(
    context: &Context,
    user: &DirectoryUser,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &user.object_ref(&()))
        .await
    {
        warn!(%error, "cannot publish event");
    }
}
