//! A stand-in for the learning platform: the contract of
//! `docs/learning-platform.openapi.yaml` over an in-memory tenant. Test and demo
//! equipment — the real platform cannot be reached from here.
//!
//! It behaves like the platform as its deprovisioning guides describe it: access is
//! revoked and restored; unenrolling an attendee frees a seat; removing a person's
//! roles leaves the event's other people in order; deleting a hosted session
//! unenrolls and notifies its attendees; rules change assigner; groups lose members;
//! outstanding assignments are deleted while completed ones are kept; anonymization
//! strips direct identifiers and keeps engagement records reachable by employee ID;
//! purge removes what personal data remains; only the tenant's full deletion removes
//! engagement records. Removing what is already gone succeeds.
//!
//! Around that: bearer-token authentication, idempotency keys with stored replays,
//! RFC 7807 errors that never name anyone, an optional real rate limit, injected
//! faults (latency, 5xx, 429) per operation, and a call log with a duplicate check.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use roster_standins::lms::{LmsSeed, LmsStandIn, LmsState};
//! let seed = LmsSeed::from_path("examples/standins/lms-seed.yaml").expect("seed");
//! let standin = LmsStandIn::start(LmsState::with_seed("token", seed).expect("valid")).await?;
//! println!("learning platform at {}", standin.base_url());
//! # Ok(()) }
//! ```
//!
//! Admin routes (same bearer token), under `/_standin`: `GET|DELETE /calls`,
//! `GET /duplicates`, `GET|POST|DELETE /faults`, `DELETE /faults/{id}`,
//! `PUT /rate-limit`, `GET /state`, `POST /seed`.

mod calls;
mod faults;
mod http;
mod seed;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

pub use calls::{Call, Duplicate, DuplicateKind};
pub use faults::{Fault, RateLimit};
pub use http::{ADMIN_PREFIX, API_PREFIX, OPERATIONS, Operation, router};
pub use seed::{EventRecord, GroupRecord, LmsSeed, Notification, SeedError, SessionRecord};
pub use state::LmsState;

use roster_connectors::lms::LmsClient;

/// Serves the stand-in on `listener` until the task is dropped or fails.
pub async fn serve(listener: TcpListener, state: LmsState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// A running stand-in on loopback. Dropping it stops the server.
#[derive(Debug)]
pub struct LmsStandIn {
    addr: SocketAddr,
    state: LmsState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl LmsStandIn {
    /// Starts a stand-in over `state` on `127.0.0.1` at a free port.
    pub async fn start(state: LmsState) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(("127.0.0.1", 0)).await?, state).await
    }

    /// Starts a stand-in over `state` on `listener`.
    pub async fn start_on(listener: TcpListener, state: LmsState) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The socket the stand-in listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's base URL (`http://127.0.0.1:PORT/api/v1`): what a Tenant points at.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}{API_PREFIX}", self.addr))
            .expect("a socket address is a valid host")
    }

    /// The admin routes' root (`http://127.0.0.1:PORT/_standin`).
    pub fn admin_url(&self) -> Url {
        Url::parse(&format!("http://{}{ADMIN_PREFIX}", self.addr))
            .expect("a socket address is a valid host")
    }

    /// The stand-in's state: seed, inspect, inject faults, read the call log.
    pub fn state(&self) -> &LmsState {
        &self.state
    }

    /// A client with the accepted token and the given timeout.
    pub fn client(&self, timeout: Duration) -> LmsClient {
        LmsClient::new(self.base_url(), self.state.token(), timeout)
    }

    /// Stops accepting connections and waits (up to 5 s) for requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for LmsStandIn {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
