//! Serves the SCIM surface on an in-memory store, for trying it out and for running
//! conformance tools against it by hand (not the operator: nothing reaches Kubernetes).
//!
//! `cargo run -p roster-scim --example serve -- 127.0.0.1:8089 demo demo-token`
//! then point a client at `http://127.0.0.1:8089/scim/v2/demo` with `Bearer demo-token`.
use std::sync::Arc;

use roster_scim::http::{Config, router};
use roster_scim::store::MemoryStore;

/// The example's store reads the wall clock once, at start (the crate itself never does).
fn start_time() -> chrono::DateTime<chrono::Utc> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8089".into());
    let tenant = args.next().unwrap_or_else(|| "demo".into());
    let token = args.next().unwrap_or_else(|| "demo-token".into());
    let store = MemoryStore::new(start_time()).with_tenant(&tenant, &token);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("SCIM on http://{addr}/scim/v2/{tenant}");
    axum::serve(listener, router(Arc::new(store), Config::default())).await
}
