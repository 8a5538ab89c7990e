//! Latency samples and what is printed of them.
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

/// `requests` calls of `call(i)`, `concurrency` at a time: each call's latency and the
/// rate over the whole run.
pub async fn measure<F, Fut>(
    requests: usize,
    concurrency: usize,
    call: F,
) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|i| {
            let call = &call;
            async move {
                let t = Instant::now();
                call(i).await.map(|()| t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Figures {
        requests,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_second: requests as f64 / elapsed.as_secs_f64(),
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub requests: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
}

impl Figures {
    pub fn json(&self) -> Value {
        json!({
            "requests": self.requests,
            "p50_ms": ms(self.p50),
            "p99_ms": ms(self.p99),
            "per_second": (self.per_second * 10.0).round() / 10.0,
        })
    }
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// One row: roster's figures beside the API server's, and the ratio of the rates.
pub fn row(what: &str, ours: &Figures, raw_what: &str, raw: &Figures) -> String {
    format!(
        "| {what} | {:.1} ms | {:.1} ms | {:.0}/s | {raw_what}: {:.1} ms, {:.1} ms, {:.0}/s | {:.2}× |",
        ms(ours.p50),
        ms(ours.p99),
        ours.per_second,
        ms(raw.p50),
        ms(raw.p99),
        raw.per_second,
        ours.per_second / raw.per_second
    )
}
