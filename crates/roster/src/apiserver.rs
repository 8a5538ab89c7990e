//! How roster's own calls to the Kubernetes API server fare. A tower layer on the kube
//! client sees every request: it counts them by verb and outcome for `/metrics`, and it
//! keeps whether the API server answers, so that an outage shows as an unready pod, a
//! gauge and one log line each way instead of a crash, silence or a hot loop.
//!
//! Three ways the API server can fail roster:
//! - **down**: a transport error (connection refused, reset) or a 5xx answer;
//! - **stalled**: a request has waited longer than [`STALLED_AFTER`] (etcd gone: the
//!   API server accepts requests and holds them);
//! - **throttling**: 429s (API Priority and Fairness asks clients to hold off).
//!
//! Down or stalled long enough makes `/readyz` fail and `roster_apiserver_up` 0. Down,
//! or throttling for [`THROTTLED_AFTER`] with no answer in between, makes reconciles
//! wait for the API server's return instead of retrying each on its own backoff; the
//! first answer again wakes every controller's objects. A 429 amid answers is flow
//! control doing its job in a mass event: kube's retry honours `Retry-After`, and
//! nothing else waits (holding every reconcile back on the first 429 once stalled a
//! mass termination of 10,000 for a minute at a time).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use tracing::{info, warn};

use crate::metrics::{ApiServerLabels, Metrics};

/// How long the API server must have failed every request before `/readyz` says so: one
/// failed request in a rolling update of the API server is not an outage.
pub const UNREADY_AFTER: Duration = Duration::from_secs(3);

/// How long a request (other than a watch) may wait for its answer before the API
/// server counts as stalled; its own timeout for them is 60 s, and a healthy one
/// answers roster's (paginated, single-object) requests in milliseconds.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);

/// How long the API server must have answered nothing but 429s before reconciles
/// wait for it.
pub const THROTTLED_AFTER: Duration = Duration::from_secs(2);

/// How long a reconcile that failed during an outage waits before it tries again on its
/// own. The end of the outage wakes every object at once (see
/// [`ApiServerHealth::recoveries`]), so this is only a safety net; without it, each
/// object's own backoff (from 1 s) had 100 leavers send ~36 requests a second to an API
/// server that was down.
pub const OUTAGE_REQUEUE: Duration = Duration::from_secs(60);

/// What one request's answer says about the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Answered,
    Throttled,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Failing {
    since: Instant,
    /// Only 429s so far: there, but asking roster to hold off.
    throttled_only: bool,
}

impl Failing {
    /// Whether reconciles wait: down, or throttling for long enough.
    fn holds_back(&self) -> bool {
        !self.throttled_only || self.since.elapsed() >= THROTTLED_AFTER
    }
}

/// Whether the API server currently answers roster.
#[derive(Debug)]
pub struct ApiServerHealth {
    /// Since when every request has failed or been throttled; `None` while it answers.
    failing: Mutex<Option<Failing>>,
    /// Requests failed in the current outage.
    failed: AtomicU64,
    /// Requests (not watches) waiting for their answer, by start order.
    in_flight: Mutex<BTreeMap<u64, Instant>>,
    next_request: AtomicU64,
    /// Counts the outages that ended, for the controllers to wake on.
    recovered: tokio::sync::watch::Sender<u64>,
    /// This episode of 429s has been logged.
    throttle_told: AtomicBool,
}

impl Default for ApiServerHealth {
    fn default() -> Self {
        Self {
            failing: Mutex::default(),
            failed: AtomicU64::default(),
            in_flight: Mutex::default(),
            next_request: AtomicU64::default(),
            recovered: tokio::sync::watch::Sender::new(0),
            throttle_told: AtomicBool::default(),
        }
    }
}

impl ApiServerHealth {
    /// Whether the last request failed or was throttled and none has been answered
    /// since (no grace: for deciding to wait, not for reporting).
    pub fn is_down(&self) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|f| f.holds_back())
    }

    /// Yields once each time an outage ends: a controller reconciles all its objects
    /// then, instead of each object having probed the API server on its own backoff.
    pub fn recoveries(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let mut receiver = self.recovered.subscribe();
        receiver.mark_unchanged();
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some(((), receiver))
        })
    }

    /// `Some(how long)` once the API server has failed every request for at least
    /// [`UNREADY_AFTER`], or a request has waited for at least [`STALLED_AFTER`].
    pub fn outage(&self) -> Option<Duration> {
        let failing = *self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let down = failing
            .filter(|f| !f.throttled_only)
            .map(|f| f.since.elapsed())
            .filter(|elapsed| *elapsed >= UNREADY_AFTER);
        let stalled = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .next()
            .map(Instant::elapsed)
            .filter(|waited| *waited >= STALLED_AFTER);
        down.max(stalled)
    }

    /// Requests failed since the outage began.
    pub fn failed_requests(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Brings `roster_apiserver_up` up to date (a stall shows without any answer).
    pub fn refresh(&self, metrics: &Metrics) {
        metrics.apiserver_up.set(i64::from(self.outage().is_none()));
    }

    fn record(&self, answer: Answer, metrics: &Metrics) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        match (answer, *failing) {
            (Answer::Answered, Some(outage)) => {
                *failing = None;
                let failed = self.failed.swap(0, Ordering::Relaxed);
                metrics.apiserver_up.set(1);
                if !outage.holds_back() {
                    // 429s amid answers: nothing waited, nothing to wake.
                    return;
                }
                self.recovered.send_modify(|count| *count += 1);
                info!(
                    outage_seconds = outage.since.elapsed().as_secs_f64(),
                    failed_requests = failed,
                    "the API server answers again"
                );
            }
            (Answer::Answered, None) => {}
            (Answer::Failed | Answer::Throttled, None) => {
                let throttled_only = answer == Answer::Throttled;
                *failing = Some(Failing {
                    since: Instant::now(),
                    throttled_only,
                });
                self.failed.store(1, Ordering::Relaxed);
                self.throttle_told.store(false, Ordering::Relaxed);
                if !throttled_only {
                    metrics.apiserver_up.set(0);
                    warn!(
                        "the API server does not answer; reconciles wait for it, watches retry with backoff"
                    );
                }
            }
            (Answer::Failed, Some(outage)) if outage.throttled_only => {
                *failing = Some(Failing {
                    since: Instant::now(),
                    throttled_only: false,
                });
                self.failed.fetch_add(1, Ordering::Relaxed);
                metrics.apiserver_up.set(0);
                warn!(
                    "the API server does not answer; reconciles wait for it, watches retry with backoff"
                );
            }
            (Answer::Throttled, Some(outage)) if outage.throttled_only => {
                // Said once per episode, when it starts holding reconciles back.
                if self.failed.fetch_add(1, Ordering::Relaxed) > 0
                    && outage.holds_back()
                    && !self.throttle_told.swap(true, Ordering::Relaxed)
                {
                    warn!("the API server has answered only 429s for 2 s; reconciles wait for it");
                }
            }
            (Answer::Failed | Answer::Throttled, Some(_)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn start(self: &Arc<Self>) -> InFlight {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Instant::now());
        InFlight {
            health: self.clone(),
            id,
        }
    }
}

/// A request waiting for its answer; forgotten when answered or dropped (cancelled).
struct InFlight {
    health: Arc<ApiServerHealth>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.health
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The longest pause between two probes while the API server counts as down.
const PROBE_MAX_INTERVAL: Duration = Duration::from_secs(5);

/// While the API server counts as down or throttling, asks it for its version now and
/// then (1 s, doubling to [`PROBE_MAX_INTERVAL`]), through the observed client: its
/// return must be noticed even when nothing else asks. Reconciles wait during an
/// outage, and the watches may be quiet for minutes (a single 500 on a write, with the
/// watches healthy, would otherwise hold every reconcile until a watch restarts).
pub async fn probe_while_down(client: kube::Client, health: Arc<ApiServerHealth>) {
    let mut interval = Duration::from_secs(1);
    loop {
        tokio::time::sleep(interval).await;
        if health.is_down() {
            // The answer is recorded by the layer; its content does not matter.
            let _ = client.apiserver_version().await;
            interval = (interval * 2).min(PROBE_MAX_INTERVAL);
        } else {
            interval = Duration::from_secs(1);
        }
    }
}

/// Builds the operator's kube client from the environment (in-cluster or kubeconfig),
/// with every request observed.
pub async fn client(
    metrics: Arc<Metrics>,
    health: Arc<ApiServerHealth>,
) -> Result<kube::Client, kube::Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    metrics.apiserver_up.set(1);
    // kube's own retry of 429, 503 and 504 (server-aware: it honours `Retry-After`) goes
    // above the observing layer instead of inside the stack, so that every attempt is
    // counted: with it inside, a throttling API server looked like one slow success.
    config.default_retry = false;
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&ObserveLayer { metrics, health })
        // Retrying needs a service it can clone; kube's client buffers its stack alike.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(
            kube::client::retry::RetryPolicy::server_retry(),
        ))
        .build())
}

/// The tower layer (see the module's documentation).
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    health: Arc<ApiServerHealth>,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S, B, R> tower::Service<Request<B>> for Observe<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verb = verb(&request);
        let layer = self.layer.clone();
        // A watch is answered at once and then streams for minutes: not a stall.
        let waiting = (verb != "WATCH").then(|| layer.health.start());
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            drop(waiting);
            let code = match &result {
                Ok(response) => code_class(response.status().as_u16()),
                Err(_) => "error",
            };
            layer
                .metrics
                .apiserver_requests
                .get_or_create(&ApiServerLabels { verb, code })
                .inc();
            let answer = match code {
                "error" | "5xx" => Answer::Failed,
                "429" => Answer::Throttled,
                _ => Answer::Answered,
            };
            layer.health.record(answer, &layer.metrics);
            result
        })
    }
}

/// The request's verb as the API server's own metrics name it (a watch is a GET with
/// `watch=true`; a LIST and a GET of one object are told apart by the path only, which
/// is not worth parsing here).
fn verb<B>(request: &Request<B>) -> &'static str {
    let watch = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match request.method().as_str() {
        "GET" if watch => "WATCH",
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

/// Status codes grouped as alerts want them: throttling and conflicts apart.
fn code_class(status: u16) -> &'static str {
    match status {
        409 => "409",
        429 => "429",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_with_throttling_and_conflicts_apart() {
        for (status, class) in [
            (200, "2xx"),
            (201, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (409, "409"),
            (422, "4xx"),
            (429, "429"),
            (500, "5xx"),
            (503, "5xx"),
            (504, "5xx"),
        ] {
            assert_eq!(code_class(status), class, "{status}");
        }
    }

    #[test]
    fn a_watch_is_told_from_a_get() {
        let request =
            |method: &str, uri: &str| Request::builder().method(method).uri(uri).body(()).unwrap();
        for (method, uri, expected) in [
            (
                "GET",
                "/apis/roster.dev/v1alpha1/directoryusers?watch=true&resourceVersion=1",
                "WATCH",
            ),
            (
                "GET",
                "/apis/roster.dev/v1alpha1/directoryusers?limit=500",
                "GET",
            ),
            (
                "PATCH",
                "/apis/roster.dev/v1alpha1/namespaces/a/directoryusers/b/status",
                "PATCH",
            ),
        ] {
            assert_eq!(verb(&request(method, uri)), expected, "{method} {uri}");
        }
    }

    #[test]
    fn an_outage_is_reported_after_the_grace_and_ends_with_the_first_answer() {
        let metrics = Metrics::default();
        let health = ApiServerHealth::default();
        health.record(Answer::Failed, &metrics);
        health.record(Answer::Failed, &metrics);
        assert_eq!(health.failed_requests(), 2);
        assert!(health.is_down());
        assert_eq!(health.outage(), None, "within the grace");
        health.failing.lock().unwrap().as_mut().unwrap().since = Instant::now() - UNREADY_AFTER;
        assert!(health.outage().is_some());
        assert_eq!(metrics.apiserver_up.get(), 0);
        let recoveries = health.recovered.borrow().to_owned();
        health.record(Answer::Answered, &metrics);
        assert_eq!(health.outage(), None);
        assert!(!health.is_down());
        assert_eq!(health.failed_requests(), 0);
        assert_eq!(metrics.apiserver_up.get(), 1);
        assert_eq!(
            *health.recovered.borrow(),
            recoveries + 1,
            "controllers are woken"
        );
    }

    #[test]
    fn throttling_holds_reconciles_back_but_is_not_an_outage() {
        let metrics = Metrics::default();
        metrics.apiserver_up.set(1);
        let health = ApiServerHealth::default();
        health.record(Answer::Throttled, &metrics);
        assert!(!health.is_down(), "one 429 holds nothing back");
        health.failing.lock().unwrap().as_mut().unwrap().since = Instant::now() - UNREADY_AFTER;
        assert!(
            health.is_down(),
            "only 429s for long enough: reconciles wait"
        );
        assert_eq!(health.outage(), None, "the pod stays ready");
        assert_eq!(metrics.apiserver_up.get(), 1);
        health.record(Answer::Failed, &metrics);
        assert_eq!(
            metrics.apiserver_up.get(),
            0,
            "a failure after 429s is an outage"
        );
        health.record(Answer::Answered, &metrics);
        assert!(!health.is_down());
    }

    #[test]
    fn a_request_waiting_too_long_is_a_stall_until_it_ends() {
        let metrics = Metrics::default();
        let health = Arc::new(ApiServerHealth::default());
        let waiting = health.start();
        assert_eq!(health.outage(), None);
        *health
            .in_flight
            .lock()
            .unwrap()
            .get_mut(&waiting.id)
            .unwrap() = Instant::now() - STALLED_AFTER;
        assert!(health.outage().is_some());
        health.refresh(&metrics);
        assert_eq!(metrics.apiserver_up.get(), 0);
        drop(waiting);
        assert_eq!(health.outage(), None);
        health.refresh(&metrics);
        assert_eq!(metrics.apiserver_up.get(), 1);
    }
}
