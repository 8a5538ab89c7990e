//! Prometheus metrics. Labels are low-cardinality and PII-free: controller names,
//! phases, step names, error categories — never object names or people.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// Every metric roster exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_seconds: Family<ControllerLabels, Histogram>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub steps: Family<StepLabels, Counter>,
    pub sync_calls: Family<SyncLabels, Counter>,
    pub scim_requests: Family<ScimLabels, Counter>,
    pub scim_seconds: Family<ScimLabels, Histogram>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// roster's own requests to the Kubernetes API server.
    pub apiserver_requests: Family<ApiServerLabels, Counter>,
    /// 0 while the API server fails every request (see `crate::apiserver`).
    pub apiserver_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("roster");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_seconds = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let transitions = Family::<TransitionLabels, Counter>::default();
        let steps = Family::<StepLabels, Counter>::default();
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
            "sync_calls",
            "Joiner and mover calls to the learning platform, by kind and result",
            sync_calls.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica is the leader",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            transitions,
            steps,
            sync_calls,
            scim_requests,
            scim_seconds,
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
}
