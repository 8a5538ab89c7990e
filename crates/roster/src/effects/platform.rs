//! Effects over HTTP: each lifecycle step carried out against the learning platform
//! and the tenant's calendar service.
//!
//! Every call carries an idempotency key derived from the step's key and the item it
//! touches (`<step key>/<item id>`), so re-running a step after a crash or a failure
//! re-applies nothing; lists are re-read, so items already handled no longer appear.
//! Calls are rate-limited per tenant and connector; timeouts live in the clients; a
//! failed call fails the step with the service's `Retry-After`, and the lifecycle
//! persists when to retry. Summaries and errors carry counts and categories only.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::future::Future;

use backon::{ExponentialBuilder, Retryable};
use futures::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kube::ResourceExt;
use thiserror::Error;

use super::reachability::{Answer, Reachability, TenantKey};
use super::{Colleagues, EffectRequest, Effects, SyncRequest};
use crate::clock::Clock;
use roster_api::tenant::{CalendarProvider, SecretKeyRef};
use roster_api::{StepName, Tenant};
use roster_connectors::calendar::{
    CalendarConnector, CalendarError, TransferOutcome, connector_for, stable_digest,
    token_source_for,
};
use roster_connectors::endpoint::EndpointPolicy;
use roster_connectors::lms::{CalendarLink, EventRole, Involvement, InvolvementKind, Role};
use roster_connectors::lms::{LmsClient, LmsError};
use roster_lifecycle::handover::{self, SyncedItem, plural};
use roster_lifecycle::ownership::{self, EventPeople};
use roster_lifecycle::reachability::{CallResult, Connector, Observation};
use roster_lifecycle::{Outcome, SyncOutcome};

/// The longest `Retry-After` honoured inside a step; longer ones fail the step.
pub const MAX_IN_CALL_WAIT: Duration = Duration::from_secs(5);

/// What a connector error says about retrying (and, through [`Answer`], about the
/// service answering at all).
pub(super) trait RetryHint: Answer {
    fn is_retryable(&self) -> bool;
    fn retry_after(&self) -> Option<Duration>;
}

impl RetryHint for LmsError {
    fn is_retryable(&self) -> bool {
        LmsError::is_retryable(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        LmsError::retry_after(self)
    }
}

impl RetryHint for CalendarError {
    fn is_retryable(&self) -> bool {
        CalendarError::is_retryable(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        CalendarError::retry_after(self)
    }
}

/// Tunables of the HTTP effects.
#[derive(Clone, Debug)]
pub struct PlatformSettings {
    /// Bound on each HTTP request.
    pub timeout: Duration,
    /// Calls per second per tenant and connector.
    pub calls_per_second: NonZeroU32,
    /// How long credentials read from Secrets are reused.
    pub credentials_ttl: Duration,
    /// Which endpoints a Tenant may point roster at.
    pub endpoints: EndpointPolicy,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            calls_per_second: NonZeroU32::new(20).expect("non-zero"),
            credentials_ttl: Duration::from_secs(60),
            endpoints: EndpointPolicy::default(),
        }
    }
}

/// The connectors of one tenant, built from its spec and Secrets.
pub(super) struct Connectors {
    pub(super) lms: LmsClient,
    calendar: Option<Calendar>,
    built: Instant,
    /// The Tenant spec it was built from. Not the resourceVersion: that changes with
    /// every status write (user counts), which would rebuild clients and re-read Secrets.
    generation: Option<i64>,
}

/// A tenant's calendar connector and what it was built from. Its token source caches
/// minted tokens, so it is kept across rebuilds while the provider, the endpoint and
/// the credentials stay the same; a changed Secret (a rotated key or secret) builds a
/// new one.
struct Calendar {
    connector: Arc<dyn CalendarConnector>,
    /// A digest of provider, endpoint and credentials (never the credentials).
    source: String,
}

/// Runs lifecycle steps against the real services (or their stand-ins).
pub struct PlatformEffects {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    settings: PlatformSettings,
    connectors: Mutex<HashMap<String, Arc<Connectors>>>,
    limiter: DefaultKeyedRateLimiter<String>,
    reachability: Reachability,
}

#[derive(Debug, Error)]
pub(super) enum StepError {
    #[error("learning platform: {0}")]
    Lms(#[from] LmsError),
    #[error("calendar: {0}")]
    Calendar(#[from] CalendarError),
    #[error("configuration: {0}")]
    Config(String),
}

impl StepError {
    /// The connector that failed and the error's category, for metrics.
    pub(super) fn metric_labels(&self, tenant: &Tenant) -> (&'static str, &'static str) {
        match self {
            Self::Lms(e) => ("learning-platform", e.category()),
            Self::Calendar(e) => (
                match tenant.spec.calendar.provider {
                    CalendarProvider::Microsoft => "microsoft-graph",
                    CalendarProvider::Google | CalendarProvider::None => "google-calendar",
                },
                e.category(),
            ),
            Self::Config(_) => ("none", "configuration"),
        }
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Lms(e) => e.retry_after(),
            Self::Calendar(e) => e.retry_after(),
            Self::Config(_) => None,
        }
    }

    /// The service did not answer: the core keeps the backoff short (an outage).
    pub(super) fn unreachable(&self) -> bool {
        let result = match self {
            Self::Lms(e) => e.call_result(),
            Self::Calendar(e) => e.call_result(),
            Self::Config(_) => None,
        };
        matches!(result, Some(CallResult::Unanswered { .. }))
    }
}

/// A step's result: what it did, and what an administrator should look at.
struct Done {
    summary: String,
    warning: Option<String>,
}

impl From<&str> for Done {
    fn from(summary: &str) -> Self {
        Self {
            summary: summary.to_string(),
            warning: None,
        }
    }
}

impl PlatformEffects {
    pub fn new(client: kube::Client, clock: Arc<dyn Clock>, settings: PlatformSettings) -> Self {
        let limiter = RateLimiter::keyed(Quota::per_second(settings.calls_per_second));
        Self {
            client,
            clock,
            settings,
            connectors: Mutex::default(),
            limiter,
            reachability: Reachability::default(),
        }
    }

    /// One outbound call: rate-limited per tenant and connector, retried in place with
    /// exponential backoff (from 100 ms, at most 4 tries) that honours `Retry-After` up
    /// to [`MAX_IN_CALL_WAIT`]. A longer wait fails the step instead, and the lifecycle
    /// persists when to retry it, so no task sleeps for minutes. While the connector is
    /// unreachable (see [`Reachability`]) a call gets one try: the step's own backoff
    /// paces the calls to a service that is down. Every try's result is recorded.
    pub(super) async fn request<T, E, F, Fut>(
        &self,
        tenant: &Tenant,
        connector: &str,
        mut op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: RetryHint,
    {
        let key = format!(
            "{}/{}/{connector}",
            tenant.namespace().unwrap_or_default(),
            tenant.name_any()
        );
        let tenant_key: TenantKey = (tenant.namespace().unwrap_or_default(), tenant.name_any());
        let service = connector_of(tenant, connector);
        let down = self
            .reachability
            .is_unreachable(&tenant_key, service, self.clock.now());
        let attempt = || {
            let call = op();
            let key = &key;
            let tenant_key = &tenant_key;
            async move {
                self.limiter.until_key_ready(key).await;
                let result = call.await;
                let answer = match &result {
                    Ok(_) => Some(CallResult::Answered),
                    Err(e) => e.call_result(),
                };
                if let Some(answer) = answer {
                    self.reachability
                        .record(tenant_key, service, answer, self.clock.now());
                }
                result
            }
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(MAX_IN_CALL_WAIT)
                    .with_max_times(if down { 0 } else { 3 })
                    .with_jitter(),
            )
            .when(|e: &E| e.is_retryable())
            .adjust(|e: &E, planned| match (planned, e.retry_after()) {
                (None, _) => None,
                (Some(_), Some(wait)) if wait > MAX_IN_CALL_WAIT => None,
                (Some(planned), Some(wait)) => Some(planned.max(wait)),
                (Some(planned), None) => Some(planned),
            })
            .await
    }

    /// A credential, only from a Secret that opts in (see [`crate::credentials`]).
    async fn secret(&self, namespace: &str, reference: &SecretKeyRef) -> Result<String, StepError> {
        let bytes = crate::credentials::read(&self.client, namespace, reference)
            .await
            .map_err(|e| StepError::Config(e.to_string()))?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// The tenant's connectors, rebuilt when the Tenant's spec changes or credentials age out.
    pub(super) async fn connectors(&self, tenant: &Tenant) -> Result<Arc<Connectors>, StepError> {
        let namespace = tenant.namespace().unwrap_or_default();
        let key = format!("{namespace}/{}", tenant.name_any());
        let cached = self
            .connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(c) = &cached
            && c.generation == tenant.metadata.generation
            && c.built.elapsed() < self.settings.credentials_ttl
        {
            return Ok(c.clone());
        }
        let platform = &tenant.spec.learning_platform;
        let base = url::Url::parse(&platform.endpoint)
            .map_err(|_| StepError::Config("learningPlatform.endpoint is not a URL".into()))?;
        // Checked before the credentials are even read: a refused endpoint gets nothing.
        self.settings
            .endpoints
            .check("learningPlatform.endpoint", &base)
            .map_err(|e| StepError::Config(e.to_string()))?;
        let token = self
            .secret(&namespace, &platform.credentials_secret_ref)
            .await?;
        let lms = LmsClient::new(base, token, self.settings.timeout);
        let previous = cached.and_then(|c| {
            c.calendar
                .as_ref()
                .map(|k| (k.source.clone(), k.connector.clone()))
        });
        let calendar = self.calendar(tenant, &namespace, previous).await?;
        let built = Arc::new(Connectors {
            lms,
            calendar,
            built: Instant::now(),
            generation: tenant.metadata.generation,
        });
        self.connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, built.clone());
        Ok(built)
    }

    /// The tenant's calendar connector: the previous one when provider, endpoint and
    /// credentials are unchanged (its token cache survives), else one built from the
    /// Secret's credentials (a Google service-account key file, or Microsoft app
    /// credentials; see docs/calendars.md).
    async fn calendar(
        &self,
        tenant: &Tenant,
        namespace: &str,
        previous: Option<(String, Arc<dyn CalendarConnector>)>,
    ) -> Result<Option<Calendar>, StepError> {
        let spec = &tenant.spec.calendar;
        if spec.provider == CalendarProvider::None {
            return Ok(None);
        }
        let endpoint = spec
            .endpoint
            .as_deref()
            .ok_or_else(|| StepError::Config("calendar.endpoint is not set".into()))?;
        let url = url::Url::parse(endpoint)
            .map_err(|_| StepError::Config("calendar.endpoint is not a URL".into()))?;
        self.settings
            .endpoints
            .check("calendar.endpoint", &url)
            .map_err(|e| StepError::Config(e.to_string()))?;
        let reference = spec
            .credentials_secret_ref
            .as_ref()
            .ok_or_else(|| StepError::Config("calendar.credentialsSecretRef is not set".into()))?;
        let credentials = self.secret(namespace, reference).await?;
        let source = stable_digest(&[
            "calendar-connector",
            &format!("{:?}", spec.provider),
            endpoint,
            &credentials,
        ]);
        if let Some((previous_source, connector)) = previous
            && previous_source == source
        {
            return Ok(Some(Calendar { connector, source }));
        }
        let timeout = self.settings.timeout;
        let token = token_source_for(spec.provider, endpoint, &credentials, timeout)?
            .ok_or_else(|| StepError::Config("calendar provider has no credentials".into()))?;
        Ok(connector_for(spec.provider, endpoint, token, timeout)?
            .map(|connector| Calendar { connector, source }))
    }

    async fn run_step(&self, request: &EffectRequest<'_>) -> Result<Done, StepError> {
        let c = self.connectors(request.tenant).await?;
        let me = request.user.spec.employee_id.as_str();
        let key = request.action.idempotency_key.as_str();
        let tenant = request.tenant;
        let lms = &c.lms;
        match request.action.step {
            StepName::RevokeAccess => {
                self.request(tenant, "lms", || lms.revoke_access(me, key))
                    .await?;
                Ok("access revoked".into())
            }
            StepName::RestoreAccess => {
                self.request(tenant, "lms", || lms.restore_access(me, key))
                    .await?;
                Ok("access restored".into())
            }
            StepName::TransferCalendarEvents => self.transfer_calendar_events(&c, request).await,
            StepName::TransferRules => self.transfer_rules(&c, request).await,
            StepName::RemoveFromEvents => self.remove_from_events(&c, request).await,
            StepName::RemoveFromGroups => {
                let groups = self.request(tenant, "lms", || lms.groups(me)).await?;
                for group in &groups {
                    let item_key_value = format!("{key}/{}", group.id);
                    self.request(tenant, "lms", || {
                        lms.remove_group_member(&group.id, me, &item_key_value)
                    })
                    .await?;
                }
                Ok(Done {
                    summary: plural(groups.len(), "group left", "groups left"),
                    warning: None,
                })
            }
            StepName::RemoveAssignments => {
                let assignments = self
                    .request(tenant, "lms", || lms.outstanding_assignments(me))
                    .await?;
                for assignment in &assignments {
                    let item_key_value = format!("{key}/{}", assignment.id);
                    self.request(tenant, "lms", || {
                        lms.delete_assignment(&assignment.id, &item_key_value)
                    })
                    .await?;
                }
                Ok(Done {
                    summary: plural(
                        assignments.len(),
                        "assignment removed",
                        "assignments removed",
                    ),
                    warning: None,
                })
            }
            StepName::Anonymize => {
                self.request(tenant, "lms", || lms.anonymize(me, key))
                    .await?;
                Ok("PII anonymized; engagement records kept by employee ID".into())
            }
            StepName::Purge => {
                self.request(tenant, "lms", || lms.purge(me, key)).await?;
                Ok("remaining PII purged".into())
            }
        }
    }

    /// Carries out the core's calendar hand-over plan: lists what the leaver is involved
    /// in and organizes, asks the platform who has calendar access, then moves each
    /// planned event and relinks its platform item.
    async fn transfer_calendar_events(
        &self,
        c: &Connectors,
        request: &EffectRequest<'_>,
    ) -> Result<Done, StepError> {
        let Some(calendar) = c.calendar.as_ref().map(|k| &k.connector) else {
            return Ok("no calendar integration".into());
        };
        let tenant = request.tenant;
        let me = request.user.spec.employee_id.as_str();
        let key = request.action.idempotency_key.as_str();
        let involvements = self
            .request(tenant, "lms", || c.lms.involvements(me))
            .await?;
        let items: Vec<SyncedItem> = involvements.iter().map(|i| synced_item(i, me)).collect();
        let linked = handover::items_to_hand_over(&items, me);
        if linked.is_empty() {
            return Ok("no calendar events to transfer".into());
        }
        let now = self.clock.now();
        let events = match self
            .request(tenant, "calendar", || {
                calendar.list_owned_upcoming(&request.user.spec.email, now, now)
            })
            .await
        {
            Ok(events) => events,
            // The leaver's calendar cannot be read: nobody can take these events over.
            Err(CalendarError::MailboxUnavailable { .. }) => {
                return Ok(unreachable_calendar(linked.len(), "the leaver's"));
            }
            Err(e) => return Err(e.into()),
        };
        let fallback_id = fallback_owner(tenant, request.colleagues);

        // Eligible: a colleague who stays and has calendar access at the platform.
        let mut eligible = HashSet::new();
        for id in handover::owner_candidates(&linked, me, fallback_id) {
            if !is_active(request.colleagues, id) {
                continue;
            }
            match self.request(tenant, "lms", || c.lms.get_user(id)).await {
                Ok(user) if user.calendar_access => {
                    eligible.insert(id);
                }
                Ok(_) | Err(LmsError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }

        let listed: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut plan = handover::plan_calendar_transfers(
            &request.policy.calendar_owner_order,
            &linked,
            &listed,
            me,
            fallback_id,
            |id| eligible.contains(id),
        );
        let by_id: HashMap<&str, &_> = events.iter().map(|e| (e.id.as_str(), e)).collect();
        let kinds: HashMap<&str, InvolvementKind> = involvements
            .iter()
            .map(|i| (i.id.as_str(), i.kind))
            .collect();
        let mut unreachable: Vec<&str> = Vec::new();
        for transfer in &plan.transfers {
            let event = by_id[transfer.calendar_event_id];
            let owner = &transfer.new_owner.employee_id;
            let to = request.colleagues.with_employee_id(owner).ok_or_else(|| {
                StepError::Config("a planned new owner left the directory".into())
            })?;
            let event_key = format!("{key}/{}", event.id);
            let outcome = match self
                .request(tenant, "calendar", || {
                    calendar.transfer(
                        event,
                        &request.user.spec.email,
                        &to.spec.email,
                        &event_key,
                        now,
                    )
                })
                .await
            {
                Ok(outcome) => outcome,
                // A mailbox the service will not serve (the leaver's or the new
                // owner's): this event cannot be taken over; the others still can.
                Err(CalendarError::MailboxUnavailable { .. }) => {
                    unreachable.push(transfer.item_id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let new_id = match outcome {
                TransferOutcome::Transferred { event_id }
                | TransferOutcome::AlreadyTransferred { event_id } => event_id,
                TransferOutcome::SourceGone => event.id.clone(),
            };
            let link = CalendarLink {
                calendar_event_id: new_id,
                calendar_owner: owner.clone(),
            };
            let item = transfer.item_id;
            let link_key = format!("{key}/{item}/link");
            match kinds[item] {
                InvolvementKind::Event => {
                    self.request(tenant, "lms", || {
                        c.lms.set_event_calendar_link(item, &link, &link_key)
                    })
                    .await?
                }
                InvolvementKind::Session => {
                    self.request(tenant, "lms", || {
                        c.lms.set_session_calendar_link(item, &link, &link_key)
                    })
                    .await?
                }
            }
        }
        // What was transferred is what the summary counts.
        plan.transfers.retain(|t| !unreachable.contains(&t.item_id));
        let (mut summary, mut warning) = plan.summary();
        if !unreachable.is_empty() {
            let text = plural(
                unreachable.len(),
                "event could not be taken over (a mailbox is missing or unlicensed)",
                "events could not be taken over (a mailbox is missing or unlicensed)",
            );
            summary = format!("{summary}; {text}");
            warning = Some(match warning {
                Some(w) => format!("{w}; {text}"),
                None => format!("{text}; check the users' calendar licences"),
            });
        }
        Ok(Done { summary, warning })
    }

    /// Hands the leaver's automated rules to their manager or the fallback owner.
    async fn transfer_rules(
        &self,
        c: &Connectors,
        request: &EffectRequest<'_>,
    ) -> Result<Done, StepError> {
        let tenant = request.tenant;
        let me = request.user.spec.employee_id.as_str();
        let key = request.action.idempotency_key.as_str();
        let rules = self
            .request(tenant, "lms", || c.lms.assigner_rules(me))
            .await?;
        if rules.is_empty() {
            return Ok("no automated rules to transfer".into());
        }
        let colleagues = request.colleagues;
        let manager = request
            .user
            .spec
            .manager_email
            .as_deref()
            .and_then(|e| colleagues.with_email(e));
        let target = ownership::rule_owner(
            request.policy.rule_transfer_target,
            manager.as_ref().map(|u| u.spec.employee_id.as_str()),
            me,
            fallback_owner(tenant, colleagues),
            |id| is_active(colleagues, id),
        );
        let Some(target) = target else {
            let text = plural(
                rules.len(),
                "rule has no eligible new assigner",
                "rules have no eligible new assigner",
            );
            return Ok(Done {
                summary: text.clone(),
                warning: Some(format!("{text}; set a manager or a fallback owner")),
            });
        };
        for rule in &rules {
            let rule_key = format!("{key}/{}", rule.id);
            self.request(tenant, "lms", || {
                c.lms.transfer_rule(&rule.id, &target, &rule_key)
            })
            .await?;
        }
        let to = if manager.is_some_and(|m| m.spec.employee_id == target) {
            "manager"
        } else {
            "fallback owner"
        };
        Ok(Done {
            summary: format!(
                "{} to the {to}",
                plural(rules.len(), "rule transferred", "rules transferred")
            ),
            warning: None,
        })
    }

    /// Leaves every upcoming event and session: seats freed, roles removed, hosted
    /// sessions deleted.
    async fn remove_from_events(
        &self,
        c: &Connectors,
        request: &EffectRequest<'_>,
    ) -> Result<Done, StepError> {
        let tenant = request.tenant;
        let me = request.user.spec.employee_id.as_str();
        let key = request.action.idempotency_key.as_str();
        let involvements = self
            .request(tenant, "lms", || c.lms.involvements(me))
            .await?;
        let (mut seats, mut roles, mut sessions) = (0, 0, 0);
        for i in &involvements {
            let item_key = |what: &str| format!("{key}/{}/{what}", i.id);
            match i.kind {
                InvolvementKind::Session
                    if i.has_role(Role::Host) || i.host.as_deref() == Some(me) =>
                {
                    let item_key_value = item_key("delete");
                    self.request(tenant, "lms", || {
                        c.lms.delete_session(&i.id, &item_key_value)
                    })
                    .await?;
                    sessions += 1;
                }
                InvolvementKind::Session => {
                    if i.has_role(Role::Attendee) {
                        let item_key_value = item_key("attendee");
                        self.request(tenant, "lms", || {
                            c.lms.remove_session_attendee(&i.id, me, &item_key_value)
                        })
                        .await?;
                        seats += 1;
                    }
                }
                InvolvementKind::Event => {
                    if i.has_role(Role::Attendee) {
                        let item_key_value = item_key("attendee");
                        self.request(tenant, "lms", || {
                            c.lms.remove_event_attendee(&i.id, me, &item_key_value)
                        })
                        .await?;
                        seats += 1;
                    }
                    for (role, event_role) in [
                        (Role::Presenter, EventRole::Presenter),
                        (Role::Organizer, EventRole::Organizer),
                        (Role::CoOrganizer, EventRole::CoOrganizer),
                    ] {
                        if i.has_role(role) {
                            let item_key_value = item_key(event_role.as_str());
                            self.request(tenant, "lms", || {
                                c.lms
                                    .remove_event_role(&i.id, event_role, me, &item_key_value)
                            })
                            .await?;
                            roles += 1;
                        }
                    }
                }
            }
        }
        Ok(Done {
            summary: format!(
                "{}, {}, {}",
                plural(seats, "seat freed", "seats freed"),
                plural(roles, "role removed", "roles removed"),
                plural(
                    sessions,
                    "hosted session deleted",
                    "hosted sessions deleted"
                )
            ),
            warning: None,
        })
    }
}

impl Effects for PlatformEffects {
    fn reachability(&self, tenant: &Tenant) -> Vec<(Connector, Observation)> {
        self.reachability
            .of(&(tenant.namespace().unwrap_or_default(), tenant.name_any()))
    }

    fn reachability_changes(&self) -> futures::channel::mpsc::UnboundedReceiver<TenantKey> {
        self.reachability.subscribe()
    }

    fn exit_tenant<'a>(
        &'a self,
        tenant: &'a Tenant,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), super::ExitFailure>> {
        Box::pin(async move {
            let result = async {
                let connectors = self.connectors(tenant).await?;
                self.request(tenant, "lms", || {
                    connectors.lms.delete_tenant(idempotency_key)
                })
                .await
                .or_else(|e| match e {
                    // Already erased (by an earlier attempt whose answer was lost).
                    LmsError::NotFound => Ok(()),
                    e => Err(e),
                })
                .map_err(StepError::from)
            }
            .await;
            result.map_err(|error| super::ExitFailure {
                retry_after: error
                    .retry_after()
                    .and_then(|d| chrono::Duration::from_std(d).ok()),
                error: error.to_string(),
            })
        })
    }

    fn sync<'a>(&'a self, request: SyncRequest<'a>) -> BoxFuture<'a, SyncOutcome> {
        Box::pin(self.run_sync(request))
    }

    fn run<'a>(&'a self, request: EffectRequest<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.run_step(&request).await {
                Ok(done) => Outcome::Succeeded {
                    summary: done.summary,
                    warning: done.warning,
                },
                Err(error) => {
                    let (connector, category) = error.metric_labels(request.tenant);
                    crate::metrics::steps::failed(connector, category);
                    Outcome::Failed {
                        retry_after: error
                            .retry_after()
                            .and_then(|d| chrono::Duration::from_std(d).ok()),
                        unreachable: error.unreachable(),
                        error: error.to_string(),
                    }
                }
            }
        })
    }
}

/// Which service a call of `connector` (`lms` or `calendar`) goes to.
fn connector_of(tenant: &Tenant, connector: &str) -> Connector {
    match (connector, tenant.spec.calendar.provider) {
        ("calendar", CalendarProvider::Microsoft) => Connector::MicrosoftGraph,
        ("calendar", _) => Connector::GoogleCalendar,
        _ => Connector::LearningPlatform,
    }
}

/// The result of a hand-over whose calendar cannot be read (`whose` mailbox is
/// missing or unlicensed): `linked` events nobody could take over, and a warning.
fn unreachable_calendar(linked: usize, whose: &str) -> Done {
    let text = plural(
        linked,
        "event could not be taken over",
        "events could not be taken over",
    );
    Done {
        summary: format!("{text} ({whose} mailbox is missing or unlicensed)"),
        warning: Some(format!(
            "{text}: {whose} mailbox is missing or unlicensed at the calendar service; \
             restore it or hand the events over by hand"
        )),
    }
}

/// The core's view of one platform item of the leaver.
fn synced_item<'a>(i: &'a Involvement, me: &str) -> SyncedItem<'a> {
    SyncedItem {
        id: &i.id,
        calendar_event_id: i.calendar_event_id.as_deref(),
        calendar_owner: i.calendar_owner.as_deref(),
        hosted_by_leaver: i.kind == InvolvementKind::Session
            && (i.has_role(Role::Host) || i.host.as_deref() == Some(me)),
        people: EventPeople {
            organizer: i.organizer.as_deref(),
            co_organizers: &i.co_organizers,
            presenters: &i.presenters,
        },
    }
}

/// The tenant's fallback owner, if they are in the directory.
fn fallback_owner<'a>(tenant: &'a Tenant, colleagues: &dyn Colleagues) -> Option<&'a str> {
    let reference = tenant.spec.calendar.fallback_owner.as_ref()?;
    let id = reference.employee_id.as_str();
    colleagues.with_employee_id(id).map(|_| id)
}

/// In the directory, Active, and not on their way out.
fn is_active(colleagues: &dyn Colleagues, id: &str) -> bool {
    colleagues.with_employee_id(id).is_some_and(|u| {
        handover::is_staying(
            &u.spec,
            u.status.as_ref(),
            u.metadata.deletion_timestamp.is_some(),
        )
    })
}
