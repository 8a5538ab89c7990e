//! The Tenant controller: checks what a Tenant references (its policy, its Secrets,
//! the calendar fallback owner), reports each as a condition, and keeps per-phase
//! user counts. User changes are debounced so an import of hundreds of users
//! produces one count update, not hundreds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tracing::{instrument, warn};

use super::{Context, Error, Options, Result, patch, reflect, watch};
use roster_api::condition::{ConditionStatus, set_condition};
use roster_api::tenant::{CalendarProvider, SecretKeyRef};
use roster_api::{Condition, DirectoryUser, Phase, Tenant, TenantStatus, UserCounts};
use roster_lifecycle::{Policy, TenantSettings};

const KIND: &str = "Tenant";
/// Secrets are not watched (that would need cluster-wide Secret access); they are
/// re-checked this often instead.
const RECHECK: Duration = Duration::from_secs(300);

pub async fn controller(
    client: &Client,
    options: &Options,
    shared: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = options.namespace.as_deref();
    let (tenants, tenant_stream) =
        reflect(super::api::<Tenant>(client, ns), watcher::Config::default());
    // Users and policies only trigger reconciles here; their stores are the shared
    // ones in the context, so the tenant controller keeps no second copy.
    let user_stream = watch(
        super::api::<DirectoryUser>(client, ns),
        watcher::Config::default(),
    );
    let policy_stream = watch(
        super::api::<roster_api::DeprovisionPolicy>(client, ns),
        watcher::Config::default(),
    );
    let policy_tenants = tenants.clone();
    let controller = Controller::for_stream(tenant_stream, tenants)
        .with_config(
            Config::default()
                .concurrency(options.concurrency)
                .debounce(Duration::from_secs(1)),
        )
        .watches_stream(user_stream, |user: DirectoryUser| {
            user.namespace()
                .map(|ns| ObjectRef::<Tenant>::new(&user.spec.tenant).within(&ns))
        })
        .watches_stream(
            policy_stream,
            move |policy: roster_api::DeprovisionPolicy| {
                policy_tenants
                    .state()
                    .into_iter()
                    .filter(|t| {
                        t.namespace() == policy.namespace()
                            && t.spec.policy_ref.name == policy.name_any()
                    })
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "tenant reconcile stream");
            }
        })
        .await;
}

#[instrument(skip_all, fields(namespace = tenant.namespace(), tenant = tenant.name_any()))]
async fn reconcile(tenant: Arc<Tenant>, context: Arc<Context>) -> Result<Action> {
    // Counting before the user store is filled would publish zeros.
    if !super::ready(&context.users) || !super::ready(&context.policies) {
        return Ok(Action::requeue(super::STORE_WAIT));
    }
    let labels = crate::metrics::ControllerLabels {
        controller: "tenant",
    };
    context.metrics.reconciles.get_or_create(&labels).inc();
    let namespace = tenant.namespace().ok_or(Error::MissingNamespace)?;
    let name = tenant.name_any();
    let client = &context.client;
    let now = context.clock.now();
    let generation = tenant.metadata.generation;
    let users: Vec<Arc<DirectoryUser>> = context
        .users
        .state()
        .into_iter()
        .filter(|u| u.namespace().as_deref() == Some(&namespace) && u.spec.tenant == name)
        .collect();

    let mut checks = vec![
        policy_check(&tenant, &namespace, &context),
        time_zone_check(&tenant),
    ];
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut refs: Vec<(&str, &SecretKeyRef)> = vec![(
        "learningPlatform",
        &tenant.spec.learning_platform.credentials_secret_ref,
    )];
    if let Some(secret) = &tenant.spec.calendar.credentials_secret_ref {
        refs.push(("calendar", secret));
    }
    if let Some(scim) = &tenant.spec.sources.scim {
        refs.push(("sources.scim", &scim.token_secret_ref));
    }
    checks.push(secrets_check(&secrets, &refs).await?);
    checks.push(fallback_owner_check(&tenant, &users));

    let mut status: TenantStatus = tenant.status.clone().unwrap_or_default();
    let all_ok = checks.iter().all(|c| c.ok);
    let failing: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.r#type).collect();
    let ready = Check {
        r#type: "Ready",
        ok: all_ok,
        reason: if all_ok {
            "AllChecksPassed"
        } else {
            "ChecksFailed"
        },
        message: if all_ok {
            String::new()
        } else {
            format!("failing: {}", failing.join(", "))
        },
    };
    for check in std::iter::once(ready).chain(checks) {
        set_condition(
            &mut status.conditions,
            check.into_condition(generation, now),
        );
    }
    status.user_counts = Some(count(&users));
    status.observed_generation = generation;
    if tenant.status.as_ref() != Some(&status) {
        patch::status(
            &Api::<Tenant>::namespaced(client.clone(), &namespace),
            &name,
            KIND,
            &status,
        )
        .await?;
    }
    Ok(Action::requeue(RECHECK))
}

struct Check {
    r#type: &'static str,
    ok: bool,
    reason: &'static str,
    message: String,
}

impl Check {
    fn into_condition(self, generation: Option<i64>, now: DateTime<Utc>) -> Condition {
        Condition {
            r#type: self.r#type.into(),
            status: ConditionStatus::from(self.ok),
            reason: self.reason.into(),
            message: self.message,
            last_transition_time: now,
            observed_generation: generation,
        }
    }
}

fn policy_check(tenant: &Tenant, namespace: &str, context: &Context) -> Check {
    let name = &tenant.spec.policy_ref.name;
    match context
        .policies
        .get(&ObjectRef::new(name).within(namespace))
    {
        None => Check {
            r#type: "PolicyResolved",
            ok: false,
            reason: "PolicyNotFound",
            message: format!(
                "DeprovisionPolicy {name:?} does not exist in this namespace; create it or correct spec.policyRef.name"
            ),
        },
        Some(policy) => match Policy::from_spec(&policy.spec) {
            Ok(_) => Check {
                r#type: "PolicyResolved",
                ok: true,
                reason: "PolicyFound",
                message: String::new(),
            },
            Err(error) => Check {
                r#type: "PolicyResolved",
                ok: false,
                reason: "PolicyInvalid",
                message: format!("DeprovisionPolicy {name:?}: {error}"),
            },
        },
    }
}

fn time_zone_check(tenant: &Tenant) -> Check {
    match TenantSettings::from_spec(&tenant.spec) {
        Ok(_) => Check {
            r#type: "TimeZoneValid",
            ok: true,
            reason: "KnownTimeZone",
            message: String::new(),
        },
        Err(_) => Check {
            r#type: "TimeZoneValid",
            ok: false,
            reason: "UnknownTimeZone",
            message: format!(
                "spec.timeZone {:?} is not in the IANA time zone database; use a name such as Europe/Berlin",
                tenant.spec.time_zone
            ),
        },
    }
}

async fn secrets_check(secrets: &Api<Secret>, refs: &[(&str, &SecretKeyRef)]) -> Result<Check> {
    let mut missing = Vec::new();
    for (what, reference) in refs {
        let found = secrets.get_opt(&reference.name).await?;
        let has_key = found.as_ref().is_some_and(|s| {
            s.data
                .as_ref()
                .is_some_and(|d| d.contains_key(&reference.key))
                || s.string_data
                    .as_ref()
                    .is_some_and(|d| d.contains_key(&reference.key))
        });
        if !has_key {
            missing.push(format!(
                "{what}: Secret {:?} key {:?}",
                reference.name, reference.key
            ));
        }
    }
    Ok(if missing.is_empty() {
        Check {
            r#type: "CredentialsFound",
            ok: true,
            reason: "SecretsFound",
            message: String::new(),
        }
    } else {
        Check {
            r#type: "CredentialsFound",
            ok: false,
            reason: "SecretMissing",
            message: format!("missing {}", missing.join("; ")),
        }
    })
}

/// The fallback owner must be an existing Active user of this tenant. The message
/// never repeats the address: conditions carry no personal data.
fn fallback_owner_check(tenant: &Tenant, users: &[Arc<DirectoryUser>]) -> Check {
    let calendar = &tenant.spec.calendar;
    if calendar.provider == CalendarProvider::None {
        return Check {
            r#type: "FallbackOwnerValid",
            ok: true,
            reason: "NoCalendarIntegration",
            message: String::new(),
        };
    }
    let Some(email) = calendar.fallback_owner_email.as_deref() else {
        return Check {
            r#type: "FallbackOwnerValid",
            ok: false,
            reason: "FallbackOwnerMissing",
            message: "set spec.calendar.fallbackOwnerEmail".into(),
        };
    };
    let owner = users
        .iter()
        .find(|u| u.spec.email.eq_ignore_ascii_case(email));
    match owner {
        None => Check {
            r#type: "FallbackOwnerValid",
            ok: false,
            reason: "FallbackOwnerUnknown",
            message: "spec.calendar.fallbackOwnerEmail matches no DirectoryUser of this tenant; create that user or correct the address".into(),
        },
        Some(user) if user.status.as_ref().is_some_and(|s| s.phase != Phase::Active) || !user.spec.active => Check {
            r#type: "FallbackOwnerValid",
            ok: false,
            reason: "FallbackOwnerInactive",
            message: format!("the fallback owner (DirectoryUser {}) is not Active; choose an active person", user.name_any()),
        },
        Some(_) => Check { r#type: "FallbackOwnerValid", ok: true, reason: "FallbackOwnerActive", message: String::new() },
    }
}

fn count(users: &[Arc<DirectoryUser>]) -> UserCounts {
    let mut counts = UserCounts::default();
    for user in users {
        let phase = user.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let slot = match phase {
            Phase::Active => &mut counts.active,
            Phase::Held => &mut counts.held,
            Phase::Quarantined => &mut counts.quarantined,
            Phase::Deprovisioning => &mut counts.deprovisioning,
            Phase::Deprovisioned => &mut counts.deprovisioned,
            Phase::Purged => &mut counts.purged,
        };
        *slot += 1;
    }
    counts
}

fn error_policy(tenant: Arc<Tenant>, error: &Error, context: Arc<Context>) -> Action {
    context.count_error("tenant", error);
    let delay = context.failure_backoff(&tenant.uid().unwrap_or_default());
    warn!(category = error.category(), %error, retry_in = ?delay, "tenant reconcile failed");
    Action::requeue(delay)
}
