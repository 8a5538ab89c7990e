//! Prometheus metrics. Labels are low-cardinality and PII-free: controller names,
//! phases, step names, connector names, status classes, error categories and the
//! Tenant's `namespace/name` — never a person, an object name of a user, a host or a
//! path. Every metric, with what to graph and to alert on: docs/operations.md.
//!
//! One module per source of figures: [`downstream`] (every call to a downstream
//! service, through the connectors' [`roster_connectors::http::Observer`] hook),
//! [`steps`] (each lifecycle step's time and failures), [`queue`] (what the controllers
//! have been asked to reconcile and have not started), [`lateness`] (how late a
//! persisted deadline was acted on).

pub mod downstream;
pub mod lateness;
pub mod queue;
pub mod steps;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use roster_api::{Phase, UserCounts};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepConnectorLabels {
    pub step: &'static str,
    /// The downstream service the step worked with (see [`steps`]), or `none`.
    pub connector: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepFailureLabels {
    pub step: &'static str,
    pub connector: &'static str,
    /// The connector error's category (`rate_limited`, `unavailable`, `timeout`…), or
    /// `configuration`.
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `provision`, `update`, `add-to-group` or `remove-from-group`.
    pub call: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScimLabels {
    pub method: &'static str,
    /// `Users`, `Groups`, `search`, `discovery` or `other` (never a path: it holds ids).
    pub resource: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiServerLabels {
    /// `GET`, `WATCH`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub verb: &'static str,
    /// `2xx`, `3xx`, `4xx`, `409`, `429`, `5xx`, or `error` (no answer: refused, reset,
    /// timed out).
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UserLabels {
    /// The Tenant's `namespace/name` (an organization, never a person).
    pub tenant: String,
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DownstreamLabels {
    pub connector: &'static str,
    /// `2xx`…`5xx`, `ok` (a non-HTTP success) or `error` (no answer).
    pub class: &'static str,
    /// The HTTP status, `ok`, or why there was no answer (`timeout`, `connect`…).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DownstreamDurationLabels {
    pub connector: &'static str,
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadlineLabels {
    /// `quarantine-end` or `purge`.
    pub deadline: &'static str,
}

/// Every metric roster exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_seconds: Family<ControllerLabels, Histogram>,
    pub reconciles_in_flight: Family<ControllerLabels, Gauge>,
    /// What each controller has been asked to reconcile and has not started.
    pub queues: Arc<queue::Queues>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub steps: Family<StepLabels, Counter>,
    pub step_seconds: Family<StepConnectorLabels, Histogram>,
    pub step_failures: Family<StepFailureLabels, Counter>,
    pub sync_calls: Family<SyncLabels, Counter>,
    pub scim_requests: Family<ScimLabels, Counter>,
    pub scim_seconds: Family<ScimLabels, Histogram>,
    pub users: Family<UserLabels, Gauge>,
    pub downstream_requests: Family<DownstreamLabels, Counter>,
    pub downstream_seconds: Family<DownstreamDurationLabels, Histogram>,
    pub deadline_lateness: Family<DeadlineLabels, Histogram>,
    /// 1 while this process runs the controllers (it holds the leader lease, or runs
    /// without leader election).
    pub leader: Gauge,
    /// roster's own requests to the Kubernetes API server.
    pub apiserver_requests: Family<ApiServerLabels, Counter>,
    /// 0 while the API server fails every request (see `crate::apiserver`).
    pub apiserver_up: Gauge,
}

/// Lateness buckets: the target is under a second; a missed one may be hours late.
const LATENESS_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0,
    86400.0,
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("roster");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_seconds = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let reconciles_in_flight = Family::<ControllerLabels, Gauge>::default();
        let queues = Arc::new(queue::Queues::default());
        let transitions = Family::<TransitionLabels, Counter>::default();
        let steps = Family::<StepLabels, Counter>::default();
        let step_seconds = Family::<StepConnectorLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let step_failures = Family::<StepFailureLabels, Counter>::default();
        let sync_calls = Family::<SyncLabels, Counter>::default();
        let leader = Gauge::default();
        let apiserver_requests = Family::<ApiServerLabels, Counter>::default();
        let apiserver_up = Gauge::default();
        registry.register(
            "apiserver_requests",
            "Requests roster sent to the Kubernetes API server, by verb and outcome",
            apiserver_requests.clone(),
        );
        registry.register(
            "apiserver_up",
            "1 while the Kubernetes API server answers roster, 0 while every request fails",
            apiserver_up.clone(),
        );
        let scim_requests = Family::<ScimLabels, Counter>::default();
        let scim_seconds = Family::<ScimLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let users = Family::<UserLabels, Gauge>::default();
        let downstream_requests = Family::<DownstreamLabels, Counter>::default();
        let downstream_seconds =
            Family::<DownstreamDurationLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            });
        let deadline_lateness = Family::<DeadlineLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENESS_BUCKETS)
        });
        registry.register(
            "scim_requests",
            "SCIM requests answered, by method, resource type and status",
            scim_requests.clone(),
        );
        registry.register(
            "scim_request_duration_seconds",
            "Time to answer one SCIM request",
            scim_seconds.clone(),
        );
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error category",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_seconds.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, per controller (at most the concurrency setting per watched namespace scope)",
            reconciles_in_flight.clone(),
        );
        registry.register_collector(Box::new(queues.clone()));
        registry.register(
            "phase_transitions",
            "DirectoryUser phase changes",
            transitions.clone(),
        );
        registry.register(
            "steps",
            "Side-effecting steps run, by result",
            steps.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "Time one lifecycle step took, by step and the downstream service it worked with (the calendar service for a calendar hand-over, else the learning platform; none when it made no call)",
            step_seconds.clone(),
        );
        registry.register(
            "step_failures",
            "Lifecycle steps that failed, by step, the connector that failed and the connector error's category",
            step_failures.clone(),
        );
        registry.register(
            "sync_calls",
            "Joiner and mover calls to the learning platform, by kind and result",
            sync_calls.clone(),
        );
        registry.register(
            "users",
            "People per Tenant (namespace/name) and phase, as the Tenant's status.userCounts counts them (DirectoryUsers and Departures); set by the leader",
            users.clone(),
        );
        registry.register(
            "downstream_requests",
            "Requests to downstream services (learning platform, calendars, their token endpoints, HR API, SFTP), by connector, status class and status code or failure",
            downstream_requests.clone(),
        );
        registry.register(
            "downstream_request_duration_seconds",
            "Time from sending a downstream request until its response headers arrived (an SFTP fetch: connect to the end of the read), by connector and status class",
            downstream_seconds.clone(),
        );
        registry.register(
            "deadline_lateness_seconds",
            "Seconds between a deadline persisted in status (quarantine end, purge deadline) and the status write that acted on it, by the operator's clock",
            deadline_lateness.clone(),
        );
        registry.register(
            "leader",
            "1 while this process runs the controllers (it holds the leader lease, or runs without leader election), else 0",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            reconciles_in_flight,
            queues,
            transitions,
            steps,
            step_seconds,
            step_failures,
            sync_calls,
            scim_requests,
            scim_seconds,
            users,
            downstream_requests,
            downstream_seconds,
            deadline_lateness,
            leader,
            apiserver_requests,
            apiserver_up,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Publishes a Tenant's per-phase counts (those its status carries: kept by the
    /// directory index, not recounted here).
    pub fn set_users(&self, namespace: &str, tenant: &str, counts: &UserCounts) {
        for (phase, count) in phase_counts(counts) {
            self.users
                .get_or_create(&user_labels(namespace, tenant, phase))
                .set(i64::from(count));
        }
    }

    /// Drops a Tenant's series (it is gone).
    pub fn forget_tenant(&self, namespace: &str, tenant: &str) {
        for (phase, _) in phase_counts(&UserCounts::default()) {
            self.users.remove(&user_labels(namespace, tenant, phase));
        }
    }

    /// Counts one reconcile of `controller` for `object`, from the start until the
    /// returned guard is dropped (in flight, duration) or told what comes next.
    pub fn reconciling(&self, controller: &'static str, object: queue::Key) -> Reconciling<'_> {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.reconciles_in_flight.get_or_create(&labels).inc();
        self.queues.started(controller, object);
        Reconciling {
            metrics: self,
            controller,
            object,
            started: std::time::Instant::now(),
        }
    }
}

/// A reconcile being counted (see [`Metrics::reconciling`]).
pub struct Reconciling<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    object: queue::Key,
    started: std::time::Instant,
}

impl Reconciling<'_> {
    /// What the reconcile asked for next: a requeue at once is queued again. (Other
    /// requeues are counted where their delay is known: see [`queue`].)
    pub fn finished<E>(self, result: &Result<kube::runtime::controller::Action, E>) {
        if let Ok(action) = result
            && *action == kube::runtime::controller::Action::requeue(std::time::Duration::ZERO)
        {
            self.metrics.queues.triggered(self.controller, self.object);
        }
    }
}

impl Drop for Reconciling<'_> {
    fn drop(&mut self) {
        let labels = ControllerLabels {
            controller: self.controller,
        };
        self.metrics
            .reconciles_in_flight
            .get_or_create(&labels)
            .dec();
        self.metrics
            .reconcile_seconds
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

fn user_labels(namespace: &str, tenant: &str, phase: Phase) -> UserLabels {
    UserLabels {
        tenant: format!("{namespace}/{tenant}"),
        phase: phase.as_str(),
    }
}

fn phase_counts(counts: &UserCounts) -> [(Phase, i32); 6] {
    [
        (Phase::Active, counts.active),
        (Phase::Held, counts.held),
        (Phase::Quarantined, counts.quarantined),
        (Phase::Deprovisioning, counts.deprovisioning),
        (Phase::Deprovisioned, counts.deprovisioned),
        (Phase::Purged, counts.purged),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_published_per_tenant_and_phase_and_forgotten() {
        let metrics = Metrics::default();
        let counts = UserCounts {
            active: 3,
            quarantined: 1,
            ..Default::default()
        };
        metrics.set_users("acme", "acme-corp", &counts);
        let text = metrics.encode();
        assert!(
            text.contains(r#"roster_users{tenant="acme/acme-corp",phase="Active"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"roster_users{tenant="acme/acme-corp",phase="Quarantined"} 1"#));
        assert!(text.contains(r#"roster_users{tenant="acme/acme-corp",phase="Purged"} 0"#));
        metrics.forget_tenant("acme", "acme-corp");
        assert!(!metrics.encode().contains("acme-corp"));
    }

    #[test]
    fn a_reconcile_is_in_flight_until_dropped_and_a_requeue_at_once_is_queued() {
        use kube::runtime::controller::Action;
        let metrics = Metrics::default();
        let key = queue::key(Some("ns"), "u-1");
        let running = metrics.reconciling("directoryuser", key);
        assert!(
            metrics
                .encode()
                .contains(r#"roster_reconciles_in_flight{controller="directoryuser"} 1"#)
        );
        running.finished::<()>(&Ok(Action::requeue(std::time::Duration::ZERO)));
        let text = metrics.encode();
        assert!(
            text.contains(r#"roster_reconciles_in_flight{controller="directoryuser"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"roster_reconcile_queue{controller="directoryuser",state="queued"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"roster_reconcile_duration_seconds_count{controller="directoryuser"} 1"#
            )
        );
        // Waiting for a change: nothing is queued.
        metrics
            .reconciling("directoryuser", key)
            .finished::<()>(&Ok(Action::await_change()));
        assert!(
            metrics
                .encode()
                .contains(r#"roster_reconcile_queue{controller="directoryuser",state="queued"} 0"#)
        );
    }
}
