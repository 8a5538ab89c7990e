//! The DirectoryUser controller: gather the user's Tenant and policy, let the pure
//! lifecycle decide, run its actions one by one (recording each in status before the
//! next), and sleep until the next deadline.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::{Context, Error, FINALIZER, Options, Result, jitter, patch};
use crate::effects::EffectRequest;
use roster_api::condition::{ConditionStatus, set_condition};
use roster_api::{Condition, DeprovisionPolicy, DirectoryUser, DirectoryUserStatus, Tenant};
use roster_lifecycle::{Decision, Observed, Outcome, Policy, TenantSettings, pii};

const KIND: &str = "DirectoryUser";

/// Builds and runs the controller until `shutdown` resolves.
pub async fn controller(
    options: &Options,
    context: Arc<Context>,
    user_stream: impl Stream<Item = Result<DirectoryUser, watcher::Error>> + Send + 'static,
    tenant_stream: impl Stream<Item = Result<Tenant, watcher::Error>> + Send + 'static,
    policy_stream: impl Stream<Item = Result<DeprovisionPolicy, watcher::Error>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let users = context.users.clone();
    let tenants = context.tenants.clone();
    let by_tenant = users.clone();
    let by_policy = users.clone();
    let controller = Controller::for_stream(user_stream, users.clone())
        .with_config(Config::default().concurrency(options.concurrency))
        // A Tenant change (suspend, time zone, policyRef...) wakes exactly its users.
        .watches_stream(tenant_stream, move |tenant: Tenant| {
            users_of_tenant(&by_tenant, &tenant)
        })
        // A policy change wakes the users of every tenant that uses it.
        .watches_stream(policy_stream, move |policy: DeprovisionPolicy| {
            let namespace = policy.namespace();
            tenants
                .state()
                .into_iter()
                .filter(|t| {
                    t.namespace() == namespace && t.spec.policy_ref.name == policy.name_any()
                })
                .flat_map(|t| users_of_tenant(&by_policy, &t))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "directoryuser reconcile stream");
            }
        })
        .await;
}

/// Deciding before the Tenant and policy stores are filled would report "tenant not
/// found" for every user at start-up. The streams that fill them are driven by the
/// running controller, so readiness is checked inside reconcile.
fn stores_ready(context: &Context) -> bool {
    super::ready(&context.tenants) && super::ready(&context.policies)
}

fn users_of_tenant(users: &Store<DirectoryUser>, tenant: &Tenant) -> Vec<ObjectRef<DirectoryUser>> {
    let namespace = tenant.namespace();
    let name = tenant.name_any();
    users
        .state()
        .into_iter()
        .filter(|u| u.namespace() == namespace && u.spec.tenant == name)
        .map(|u| ObjectRef::from_obj(&*u))
        .collect()
}

/// What the user's Tenant and policy resolve to, or why they don't.
enum Gathered {
    Ready {
        tenant: Arc<Tenant>,
        policy: Policy,
        settings: TenantSettings,
    },
    Blocked {
        reason: &'static str,
        message: String,
    },
}

fn gather(user: &DirectoryUser, namespace: &str, context: &Context) -> Gathered {
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
        Ok(settings) => Gathered::Ready {
            tenant,
            policy,
            settings,
        },
        Err(error) => Gathered::Blocked {
            reason: "TenantInvalid",
            message: format!("Tenant {:?}: {error}", user.spec.tenant),
        },
    }
}

async fn reconcile(user: Arc<DirectoryUser>, context: Arc<Context>) -> Result<Action> {
    if !stores_ready(&context) {
        return Ok(Action::requeue(super::STORE_WAIT));
    }
    let labels = crate::metrics::ControllerLabels {
        controller: "directoryuser",
    };
    context.metrics.reconciles.get_or_create(&labels).inc();
    let started = std::time::Instant::now();
    let result = reconcile_user(user, &context).await;
    context
        .metrics
        .reconcile_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

#[instrument(skip_all, fields(namespace = user.namespace(), user = user.name_any()))]
async fn reconcile_user(user: Arc<DirectoryUser>, context: &Context) -> Result<Action> {
    let namespace = user.namespace().ok_or(Error::MissingNamespace)?;
    let name = user.name_any();
    let api: Api<DirectoryUser> = Api::namespaced(context.client.clone(), &namespace);
    let uid = user.uid().unwrap_or_default();
    let deleting = user.metadata.deletion_timestamp.is_some();
    let has_finalizer = user.finalizers().iter().any(|f| f == FINALIZER);

    if !has_finalizer {
        if !deleting {
            // The finalizer comes first: from here on a deletion waits for the lifecycle.
            patch::finalizer(&api, &name, KIND, true).await?;
        }
        return Ok(Action::await_change());
    }

    let (tenant, policy, settings) = match gather(&user, &namespace, context) {
        Gathered::Ready {
            tenant,
            policy,
            settings,
        } => (tenant, policy, settings),
        Gathered::Blocked { reason, message } => {
            write_blocked(&api, &user, reason, message, context.clock.now()).await?;
            // The Tenant and policy watches wake this user when that changes.
            return Ok(Action::await_change());
        }
    };

    let now = context.clock.now();
    let mut decision = decide(&user, &policy, &settings, now);
    let mut current = user.clone();
    if !decision.actions.is_empty() {
        // The store may lag behind our own last status write; side effects are
        // decided on a fresh read so a step is never repeated from stale status.
        current = Arc::new(api.get(&name).await?);
        decision = decide(&current, &policy, &settings, now);
    }

    // PII goes before the status that says it is gone.
    if decision.scrub_pii {
        scrub_pii(&api, &name).await?;
        let reapplied = current
            .status
            .as_ref()
            .is_some_and(|s| s.phase == roster_api::Phase::Purged);
        if reapplied {
            warn!("a source re-applied personal data to a purged user; removed again");
            publish(
                context,
                &current,
                EventType::Warning,
                "PiiReapplied",
                "ScrubPii",
                "a source wrote personal data to a purged user; roster removed it again".into(),
            )
            .await;
        }
    }
    let mut status = decision.status.clone();
    if current.status.as_ref() != Some(&status) {
        patch::status(&api, &name, KIND, &status).await?;
    }
    for transition in &decision.transitions {
        info!(from = ?transition.from, to = ?transition.to, reason = transition.reason, "phase changed");
        let labels = crate::metrics::TransitionLabels {
            from: format!("{:?}", transition.from),
            to: format!("{:?}", transition.to),
            reason: transition.reason,
        };
        context.metrics.transitions.get_or_create(&labels).inc();
        publish(
            context,
            &current,
            EventType::Normal,
            transition.reason,
            "Transition",
            transition_note(transition, &status),
        )
        .await;
    }

    let directory = colleagues(&context.users, &current);
    for action in &decision.actions {
        let outcome = context
            .effects
            .run(EffectRequest {
                tenant: &tenant,
                policy: &policy,
                user: &current,
                directory: &directory,
                action,
            })
            .await;
        if let Outcome::Succeeded {
            warning: Some(warning),
            ..
        } = &outcome
        {
            warn!(step = ?action.step, warning = %warning, "step needs attention");
            publish(
                context,
                &current,
                EventType::Warning,
                "StepNeedsAttention",
                "RunStep",
                format!("{:?}: {warning}", action.step),
            )
            .await;
        }
        if let Outcome::Failed { error, .. } = &outcome {
            warn!(step = ?action.step, error = %error, "step failed");
            publish(
                context,
                &current,
                EventType::Warning,
                "StepFailed",
                "RunStep",
                format!("{:?}: {error}", action.step),
            )
            .await;
        }
        let failed = matches!(outcome, Outcome::Failed { .. });
        let labels = crate::metrics::StepLabels {
            step: format!("{:?}", action.step),
            result: if failed { "failed" } else { "succeeded" },
        };
        context.metrics.steps.get_or_create(&labels).inc();
        roster_lifecycle::record_outcome(&mut status, action.step, outcome, context.clock.now());
        // Recorded before the next step runs: a crash now neither repeats nor skips it.
        patch::status(&api, &name, KIND, &status).await?;
        if failed {
            break;
        }
    }

    if decision.release {
        patch::finalizer(&api, &name, KIND, false).await?;
    }
    context.reset_failures(&uid);

    if !decision.actions.is_empty() {
        // Our own status write wakes the next step with fresh state.
        return Ok(Action::await_change());
    }
    Ok(match decision.wake_at {
        Some(at) => Action::requeue((at - now).to_std().unwrap_or(Duration::ZERO) + jitter()),
        None => Action::await_change(),
    })
}

/// The users of the same tenant (the leaver included), for choosing new owners.
fn colleagues(users: &Store<DirectoryUser>, user: &DirectoryUser) -> Vec<Arc<DirectoryUser>> {
    let namespace = user.namespace();
    users
        .state()
        .into_iter()
        .filter(|u| u.namespace() == namespace && u.spec.tenant == user.spec.tenant)
        .collect()
}

fn decide(
    user: &DirectoryUser,
    policy: &Policy,
    settings: &TenantSettings,
    now: DateTime<Utc>,
) -> Decision {
    let status = user.status.clone().unwrap_or_default();
    let uid = user.uid().unwrap_or_default();
    let observed = Observed {
        uid: &uid,
        generation: user.metadata.generation,
        deleting: user.metadata.deletion_timestamp.is_some(),
        spec: &user.spec,
        status: &status,
    };
    roster_lifecycle::step(&observed, policy, settings, now)
}

/// Records why the lifecycle cannot run (phase unchanged), writing only on change.
async fn write_blocked(
    api: &Api<DirectoryUser>,
    user: &DirectoryUser,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut status: DirectoryUserStatus = user.status.clone().unwrap_or_default();
    let changed = set_condition(
        &mut status.conditions,
        Condition {
            r#type: "Ready".into(),
            status: ConditionStatus::False,
            reason: reason.into(),
            message,
            last_transition_time: now,
            observed_generation: user.metadata.generation,
        },
    );
    if changed || status.observed_generation != user.metadata.generation {
        status.observed_generation = user.metadata.generation;
        patch::status(api, &user.name_any(), KIND, &status).await?;
    }
    Ok(())
}

/// Replaces the record's personal fields and drops the client-side-apply annotation
/// that would otherwise keep a copy of them.
async fn scrub_pii(api: &Api<DirectoryUser>, name: &str) -> Result<()> {
    let placeholder = pii::scrubbed(&Default::default());
    let body = json!({
        "metadata": { "annotations": { "kubectl.kubernetes.io/last-applied-configuration": null } },
        "spec": {
            "fullName": placeholder.full_name,
            "email": placeholder.email,
            "pictureUrl": null,
            "hireDate": null,
            "terminationDate": null,
            "department": null,
            "title": null,
            "location": null,
            "managerEmail": null,
        }
    });
    api.patch(
        name,
        &PatchParams {
            field_manager: Some("roster-purge".into()),
            ..Default::default()
        },
        &Patch::Merge(&body),
    )
    .await?;
    Ok(())
}

fn transition_note(
    transition: &roster_lifecycle::Transition,
    status: &DirectoryUserStatus,
) -> String {
    let stamp = |at: Option<DateTime<Utc>>| {
        at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let next = match transition.to {
        roster_api::Phase::Quarantined => {
            format!("; deprovisioning due {}", stamp(status.deprovision_due_at))
        }
        roster_api::Phase::Deprovisioned => format!("; purge due {}", stamp(status.purge_due_at)),
        _ => String::new(),
    };
    format!(
        "{:?} -> {:?} ({}){next}",
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

fn error_policy(user: Arc<DirectoryUser>, error: &Error, context: Arc<Context>) -> Action {
    context.count_error("directoryuser", error);
    let delay = context.failure_backoff(&user.uid().unwrap_or_default());
    warn!(category = error.category(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
