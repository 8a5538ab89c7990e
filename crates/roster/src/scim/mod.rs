//! The SCIM 2.0 endpoint of `roster run` (docs/scim.md): the protocol and its HTTP
//! surface come from `roster-scim`; this module gives it its store on Kubernetes, the
//! tenants' tokens, a per-tenant rate limit and metrics, and serves it on its own port.
//!
//! Every replica serves SCIM, the leader and the standbys alike: reads come from the
//! process's watches (which every replica runs) and writes go to the API server, so
//! who holds the lease does not matter to an identity provider.

pub mod store;
pub mod tokens;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::{Quota, RateLimiter};
use kube::Client;
use tracing::warn;

use crate::clock::Clock;
use crate::controller::Watches;
use crate::metrics::{Metrics, ScimLabels};
use store::KubeStore;

/// `roster run`'s SCIM settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    /// Requests per second per Tenant (authenticated requests; over it: 429).
    pub requests_per_second: NonZeroU32,
    /// Requests a Tenant may send at once above the rate.
    pub burst: NonZeroU32,
    /// The externally visible origin (`https://scim.example.com`) for `Location` and
    /// `meta.location`; without it, the request's `Host` and `X-Forwarded-Proto`.
    pub public_origin: Option<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
}

impl Settings {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            requests_per_second: NonZeroU32::new(50).expect("non-zero"),
            burst: NonZeroU32::new(100).expect("non-zero"),
            public_origin: None,
            max_body: roster_scim::http::Config::default().max_body,
        }
    }
}

/// The SCIM endpoint, started.
pub struct Serving {
    pub store: Arc<KubeStore>,
    /// The bound address (a port of 0 in the settings picks a free one).
    pub addr: SocketAddr,
}

/// Binds the SCIM port and serves it (in the background) for the life of the process.
pub async fn start(
    client: Client,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    watches: &Watches,
    settings: Settings,
) -> anyhow::Result<Serving> {
    let quota = Quota::per_second(settings.requests_per_second).allow_burst(settings.burst);
    let store = Arc::new(KubeStore::new(
        client.clone(),
        clock,
        RateLimiter::keyed(quota),
    ));
    for scope in &watches.scopes {
        tokio::spawn(store.clone().follow(scope.users.clone()));
        tokio::spawn(store.clone().follow_groups(scope.groups.clone()));
    }
    tokio::spawn(tokens::refresh(client, store.clone(), watches.clone()));
    let config = roster_scim::http::Config {
        max_body: settings.max_body,
        public_origin: settings.public_origin.clone(),
        ..Default::default()
    };
    let app = roster_scim::http::router(store.clone(), config)
        .layer(axum::middleware::from_fn_with_state(metrics, count));
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("bind the SCIM port {}", settings.addr))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "SCIM server stopped");
        }
    });
    Ok(Serving { store, addr })
}

/// Counts requests by method, resource type and status (never the path: it holds ids).
async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        _ => "other",
    };
    let resource = resource_of(request.uri().path());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = ScimLabels {
        method,
        resource,
        status: response.status().as_u16(),
    };
    metrics.scim_requests.get_or_create(&labels).inc();
    metrics
        .scim_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The resource type a path addresses: `/scim/v2/{namespace}/{type}/...`.
fn resource_of(path: &str) -> &'static str {
    match path.split('/').nth(4).unwrap_or_default() {
        "Users" => "Users",
        "Groups" => "Groups",
        ".search" => "search",
        "ServiceProviderConfig" | "Schemas" | "ResourceTypes" => "discovery",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_name_the_resource_type_never_the_path() {
        assert_eq!(super::resource_of("/scim/v2/acme/Users/e-1"), "Users");
        assert_eq!(super::resource_of("/scim/v2/acme/Users"), "Users");
        assert_eq!(
            super::resource_of("/scim/v2/acme/Schemas/urn:x"),
            "discovery"
        );
        assert_eq!(super::resource_of("/scim/v2/acme/.search"), "search");
        assert_eq!(super::resource_of("/elsewhere"), "other");
    }
}
