//! The Tenant controller: checks what a Tenant references (its policy, its Secrets,
//! the calendar fallback owner), reports each as a condition, as well as whether its
//! connectors answer, and keeps per-phase user counts. User changes are throttled
//! ([`throttle`]) so an import of hundreds of users produces one count update per
//! second, not hundreds, and a connector's flip is written at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use roster_connectors::endpoint::EndpointPolicy;
use tracing::{instrument, warn};

use super::{Context, Error, Options, POLICY_FINALIZER, Result, TENANT_FINALIZER, patch};
use roster_api::condition::{ConditionStatus, set_condition};
use roster_api::tenant::{CalendarProvider, SecretKeyRef};
use roster_api::{
    Condition, Departure, DeprovisionPolicy, DirectoryUser, Phase, Tenant, TenantStatus, UserCounts,
};
use roster_lifecycle::{Policy, TenantSettings};

mod exit;
mod throttle;

const KIND: &str = "Tenant";
/// Secrets are not watched (that would need cluster-wide Secret access); they are
/// re-checked this often instead.
const RECHECK: Duration = Duration::from_secs(300);

/// Builds and runs the controller until `shutdown` resolves. The streams are the
/// scope's one watch per kind (shared with the DirectoryUser controller); users and
/// policies only trigger reconciles here, their stores are the shared ones in the
/// context.
pub async fn controller(
    options: &Options,
    context: Arc<Context>,
    tenant_stream: impl Stream<Item = Result<Tenant, watcher::Error>> + Send + 'static,
    // The Tenant of each user that changed ([`tenant_of_user`]).
    user_tenants: impl Stream<Item = ObjectRef<Tenant>> + Send + 'static,
    policy_stream: impl Stream<Item = Result<DeprovisionPolicy, watcher::Error>> + Send + 'static,
    departure_stream: impl Stream<Item = Arc<Departure>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let tenants = context.tenants.clone();
    let policy_tenants = tenants.clone();
    // A connector that turns unreachable or comes back: its `ConnectorsReachable`.
    let reachability = context
        .effects
        .reachability_changes()
        .map(|(namespace, name)| ObjectRef::<Tenant>::new(&name).within(&namespace));
    // People who left by deletion are counted too, in their Departure's phase.
    let departures = departure_stream.filter_map(|departure| async move {
        let ns = departure.namespace()?;
        Some(ObjectRef::<Tenant>::new(&departure.spec.record.tenant_ref.name).within(&ns))
    });
    let people = throttle::throttled(
        futures::stream::select(user_tenants, departures),
        Duration::from_secs(1),
    );
    let controller = Controller::for_stream(tenant_stream, tenants)
        .reconcile_on(reachability)
        .reconcile_on(people)
        .with_config(Config::default().concurrency(options.concurrency))
        // The end of an API server outage retries what it held up, all at once.
        .reconcile_all_on(options.apiserver.recoveries())
        .watches_stream(policy_stream, move |policy: DeprovisionPolicy| {
            // A policy being deleted wakes every tenant of its namespace: one of
            // them releases it when none names it any more.
            let deleting = policy.metadata.deletion_timestamp.is_some();
            policy_tenants
                .state()
                .into_iter()
                .filter(|t| {
                    t.namespace() == policy.namespace()
                        && (deleting || t.spec.policy_ref.name == policy.name_any())
                })
                .map(|t| ObjectRef::from_obj(&*t))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "tenant reconcile stream");
            }
        })
        .await;
}

/// The Tenant a user's change concerns: from the index, or for a user it no longer
/// holds (deleted), from the user's last version.
pub fn tenant_of_user(
    directory: &super::directory::Directory,
    user: &super::stored::StoredUser,
) -> Option<ObjectRef<Tenant>> {
    let namespace = user.namespace()?;
    let tenant = match directory.tenant_of(&namespace, &user.name_any()) {
        Some(tenant) => tenant,
        None => user.user().ok()?.spec.tenant_ref.name,
    };
    Some(ObjectRef::new(&tenant).within(&namespace))
}

#[instrument(skip_all, fields(namespace = tenant.namespace(), tenant = tenant.name_any()))]
async fn reconcile(tenant: Arc<Tenant>, context: Arc<Context>) -> Result<Action> {
    // Counting before the user store is filled would publish zeros.
    if !context.users.is_ready() || !super::ready(&context.policies) {
        return Ok(Action::requeue(super::STORE_WAIT));
    }
    if let Some(wait) = context.wait_out_outage() {
        return Ok(wait);
    }
    let key = crate::metrics::queue::key_of(&*tenant);
    let _reconciling = context.metrics.reconciling("tenant", key);
    let namespace = tenant.namespace().ok_or(Error::MissingNamespace)?;
    let name = tenant.name_any();
    let client = &context.client;
    let now = context.clock.now();
    let generation = tenant.metadata.generation;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &namespace);
    if tenant.metadata.deletion_timestamp.is_some() {
        // The tenant's exit (docs/lifecycle.md, "Tenant exit").
        return exit::finalize(&tenants, &tenant, &namespace, &context, now).await;
    }
    if !tenant.finalizers().iter().any(|f| f == TENANT_FINALIZER) {
        patch::finalizer(&tenants, &name, KIND, TENANT_FINALIZER, true).await?;
    }
    protect_policy(&tenant, &namespace, &context).await?;
    release_unused_policies(&namespace, None, &context).await?;

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
    checks.push(endpoints_check(&tenant, &context.endpoints));
    let fallback = tenant
        .spec
        .calendar
        .fallback_owner
        .as_ref()
        .map(|f| {
            super::directory::resolve(
                &context.users,
                &context
                    .directory
                    .with_employee_id(&namespace, &name, &f.employee_id),
            )
        })
        .unwrap_or_default();
    checks.push(fallback_owner_check(&tenant, &fallback));
    // The pulled sources' last syncs (crate::feeds), when the Tenant has any.
    if let Some((ok, reason, message)) = crate::feeds::sources_condition(&tenant) {
        checks.push(Check {
            r#type: "SourcesSynced",
            ok,
            reason,
            message,
        });
    }
    // The mass-deprovisioning guard's trip and the users it holds.
    let (ok, reason, message) = super::directory_user::guard::tenant_condition(
        &tenant,
        super::directory_user::guard::held(&context, &namespace, &name),
    );
    checks.push(Check {
        r#type: "RemovalGuard",
        ok,
        reason,
        message,
    });
    // What the effects saw of the connectors (decided by the core).
    let mut observed = context.effects.reachability(&tenant);
    // Only the connectors the Tenant uses now (a calendar provider switched away from
    // is not called again, and its last failures must not linger).
    observed.retain(|(connector, _)| {
        use roster_lifecycle::reachability::Connector;
        match connector {
            Connector::LearningPlatform => true,
            Connector::GoogleCalendar => tenant.spec.calendar.provider == CalendarProvider::Google,
            Connector::MicrosoftGraph => {
                tenant.spec.calendar.provider == CalendarProvider::Microsoft
            }
        }
    });
    let reachable = roster_lifecycle::reachability::condition(&observed, now);
    checks.push(Check {
        r#type: roster_lifecycle::reachability::CONDITION_TYPE,
        ok: reachable.ok,
        reason: reachable.reason,
        message: reachable.message,
    });
    // A connector failing within its grace: look again when the grace ends.
    let recheck = observed
        .iter()
        .filter_map(|(_, o)| roster_lifecycle::reachability::recheck_at(o, now))
        .min()
        .and_then(|at| (at - now).to_std().ok())
        .map_or(RECHECK, |wait| wait.min(RECHECK));

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
    let departed: Vec<Arc<DirectoryUser>> = context
        .departures
        .state()
        .into_iter()
        .filter(|d| {
            d.namespace().as_deref() == Some(&namespace) && d.spec.record.tenant_ref.name == name
        })
        .map(|d| Arc::new(d.as_directory_user()))
        .collect();
    // The users' counts are kept by the index; Departures are few and counted here.
    let counts = context.directory.counts(&namespace, &name);
    status.user_counts = Some(count(counts, departed.iter()));
    if let Some(counts) = &status.user_counts {
        context.metrics.set_users(&namespace, &name, counts);
    }
    status.observed_generation = generation;
    if tenant.status.as_ref() != Some(&status) {
        patch::status(
            &Api::<Tenant>::namespaced(client.clone(), &namespace),
            &name,
            KIND,
            &without_source_syncs(status),
        )
        .await?;
    }
    Ok(Action::requeue(recheck))
}

/// The status as this controller owns it: `sourceSyncs` entries belong to each source's
/// own field manager (`crate::feeds`), and applying a stale copy of them here would
/// move a source's last sync back.
fn without_source_syncs(status: TenantStatus) -> TenantStatus {
    TenantStatus {
        source_syncs: Vec::new(),
        // The guard's trip belongs to the guard (`directory_user::guard`).
        removal_guard: None,
        ..status
    }
}

/// Puts the in-use finalizer on the policy the Tenant names, if it exists.
async fn protect_policy(tenant: &Tenant, namespace: &str, context: &Context) -> Result<()> {
    let policy_name = &tenant.spec.policy_ref.name;
    let Some(policy) = context
        .policies
        .get(&ObjectRef::new(policy_name).within(namespace))
    else {
        return Ok(());
    };
    let protected = policy.finalizers().iter().any(|f| f == POLICY_FINALIZER);
    if !protected && policy.metadata.deletion_timestamp.is_none() {
        let api: Api<DeprovisionPolicy> = Api::namespaced(context.client.clone(), namespace);
        patch::finalizer(
            &api,
            policy_name,
            "DeprovisionPolicy",
            POLICY_FINALIZER,
            true,
        )
        .await?;
    }
    Ok(())
}

/// Releases the in-use finalizer of every policy in the namespace that no Tenant
/// (other than `leaving`, which is going away) names any more.
async fn release_unused_policies(
    namespace: &str,
    leaving: Option<&str>,
    context: &Context,
) -> Result<()> {
    let named: Vec<String> = context
        .tenants
        .state()
        .into_iter()
        .filter(|t| t.namespace().as_deref() == Some(namespace))
        .filter(|t| Some(t.name_any().as_str()) != leaving)
        .map(|t| t.spec.policy_ref.name.clone())
        .collect();
    let api: Api<DeprovisionPolicy> = Api::namespaced(context.client.clone(), namespace);
    for policy in context.policies.state() {
        let unused = !named.contains(&policy.name_any());
        let protected = policy.finalizers().iter().any(|f| f == POLICY_FINALIZER);
        if policy.namespace().as_deref() == Some(namespace) && protected && unused {
            patch::finalizer(
                &api,
                &policy.name_any(),
                "DeprovisionPolicy",
                POLICY_FINALIZER,
                false,
            )
            .await?;
        }
    }
    Ok(())
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

/// Every Secret the Tenant names exists, opts in to roster and has the key: the same
/// rule the effects apply before they send anything.
async fn secrets_check(secrets: &Api<Secret>, refs: &[(&str, &SecretKeyRef)]) -> Result<Check> {
    let mut problems = Vec::new();
    let mut reason = None;
    for (what, reference) in refs {
        let problem = match secrets.get_opt(&reference.name).await? {
            None => Some(crate::credentials::CredentialsError::Missing {
                name: reference.name.clone(),
            }),
            Some(secret) => crate::credentials::key_of(&secret, reference).err(),
        };
        if let Some(problem) = problem {
            reason.get_or_insert(problem.reason());
            problems.push(format!("{what}: {problem}"));
        }
    }
    Ok(match reason {
        None => Check {
            r#type: "CredentialsFound",
            ok: true,
            reason: "SecretsFound",
            message: String::new(),
        },
        Some(reason) => Check {
            r#type: "CredentialsFound",
            ok: false,
            reason,
            message: problems.join("; "),
        },
    })
}

/// Every endpoint the Tenant names passes the operator's endpoint policy: the rule the
/// effects apply before they read a credential or send a request, checked here on the
/// URL alone (the effects check the resolved addresses again), so that a refusal shows
/// on the Tenant and not only in a DirectoryUser's failing step.
fn endpoints_check(tenant: &Tenant, policy: &EndpointPolicy) -> Check {
    let mut endpoints: Vec<(&'static str, &str)> = vec![(
        "spec.learningPlatform.endpoint",
        &tenant.spec.learning_platform.endpoint,
    )];
    if tenant.spec.calendar.provider != CalendarProvider::None
        && let Some(endpoint) = &tenant.spec.calendar.endpoint
    {
        endpoints.push(("spec.calendar.endpoint", endpoint));
    }
    // The HR report the feeds fetch (crate::feeds::fetch::hr_api checks it again).
    if let Some(hr) = &tenant.spec.sources.hr_api {
        endpoints.push(("spec.sources.hrAPI.url", &hr.url));
        if let Some(token_url) = &hr.token_url {
            endpoints.push(("spec.sources.hrAPI.tokenURL", token_url));
        }
    }
    // The SFTP host of the CSV source, as an https URL (crate::feeds::fetch::sftp).
    let sftp = tenant.spec.sources.csv.as_ref().map(|csv| {
        let url = crate::feeds::fetch::sftp::host_url(&csv.host);
        ("spec.sources.csv.host", url)
    });
    let problems: Vec<String> = endpoints
        .into_iter()
        .map(|(what, endpoint)| (what, url::Url::parse(endpoint).ok()))
        .chain(sftp)
        .filter_map(|(what, url)| {
            let refused = match url {
                Some(url) => policy.check(what, &url).err(),
                None => Some(roster_connectors::endpoint::EndpointRefused::NotAUrl { what }),
            };
            refused.map(|refused| match endpoint_fix(&refused) {
                Some(fix) => format!("{refused}; {fix}"),
                None => refused.to_string(),
            })
        })
        .collect();
    if problems.is_empty() {
        Check {
            r#type: "EndpointsAllowed",
            ok: true,
            reason: "EndpointsAllowed",
            message: String::new(),
        }
    } else {
        Check {
            r#type: "EndpointsAllowed",
            ok: false,
            reason: "EndpointRefused",
            message: problems.join("; "),
        }
    }
}

/// What to change when an endpoint is refused, where the refusal itself does not say.
fn endpoint_fix(refused: &roster_connectors::endpoint::EndpointRefused) -> Option<&'static str> {
    use roster_connectors::endpoint::EndpointRefused::*;
    match refused {
        NotAUrl { .. } => Some("write an absolute https:// URL"),
        // "use https, or have the operator allow http to it" is in the refusal.
        PlainHttp { .. } => None,
        Forbidden { .. } => Some("point it at the service's own address"),
        NotAllowed { .. } => Some(
            "point it at an allowed host, or have the operator add the host (Helm value endpointPolicy.allowedHosts)",
        ),
    }
}

/// The fallback owner must be an existing Active user of this tenant (`users`: those
/// with its employee ID).
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
    let Some(reference) = calendar.fallback_owner.as_ref() else {
        return Check {
            r#type: "FallbackOwnerValid",
            ok: false,
            reason: "FallbackOwnerMissing",
            message: "set spec.calendar.fallbackOwner.employeeID".into(),
        };
    };
    let owner = users
        .iter()
        .find(|u| u.spec.employee_id == reference.employee_id);
    match owner {
        None => Check {
            r#type: "FallbackOwnerValid",
            ok: false,
            reason: "FallbackOwnerUnknown",
            message: format!(
                "spec.calendar.fallbackOwner.employeeID {:?} is no DirectoryUser of this tenant; create that user or correct the employee ID",
                reference.employee_id
            ),
        },
        Some(user)
            if user
                .status
                .as_ref()
                .is_some_and(|s| s.phase != Phase::Active)
                || !user.spec.active =>
        {
            Check {
                r#type: "FallbackOwnerValid",
                ok: false,
                reason: "FallbackOwnerInactive",
                message: format!(
                    "the fallback owner (DirectoryUser {}) is not Active; choose an active person",
                    user.name_any()
                ),
            }
        }
        Some(_) => Check {
            r#type: "FallbackOwnerValid",
            ok: true,
            reason: "FallbackOwnerActive",
            message: String::new(),
        },
    }
}

/// `counts` plus the phases of `users`.
fn count<'a>(
    mut counts: UserCounts,
    users: impl Iterator<Item = &'a Arc<DirectoryUser>>,
) -> UserCounts {
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
    let key = crate::metrics::queue::key_of(&*tenant);
    context.metrics.queues.later("tenant", key, delay);
    warn!(category = error.category(), %error, retry_in = ?delay, "tenant reconcile failed");
    Action::requeue(delay)
}
