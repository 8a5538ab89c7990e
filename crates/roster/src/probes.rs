//! The operator's own HTTP endpoints: liveness, readiness and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::apiserver::ApiServerHealth;
use crate::metrics::Metrics;

/// What the probes report.
#[derive(Default)]
pub struct Health {
    /// Set once the controllers (or, on a standby replica, the lease watcher) run.
    pub ready: AtomicBool,
    /// Whether the Kubernetes API server answers: without it roster can neither act nor
    /// serve SCIM, so the pod is unready (liveness stays ok: restarting would not help).
    pub apiserver: Arc<ApiServerHealth>,
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// `/healthz` (the process serves), `/readyz` (started and the API server answers),
/// `/metrics` (OpenMetrics).
pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics })
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if !state.health.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting".into());
    }
    match state.health.apiserver.outage() {
        None => (StatusCode::OK, "ok".into()),
        Some(outage) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the Kubernetes API server has failed or not answered roster for {} s ({} requests failed); waiting for it",
                outage.as_secs(),
                state.health.apiserver.failed_requests()
            ),
        ),
    }
}

async fn metrics_text(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            state.health.apiserver.refresh(&state.metrics);
            state.metrics.encode()
        },
    )
}
