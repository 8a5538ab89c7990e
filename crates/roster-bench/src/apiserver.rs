//! The API server's own count of the requests it served (`apiserver_request_total`
//! from its `/metrics`), so that a benchmark can say how many writes, reads and Events
//! one user transition cost, counted by the server rather than by the client.
use std::collections::BTreeMap;

use kube::Client;

/// Requests by (verb, resource, subresource), as the server counted them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests(BTreeMap<(String, String, String), f64>);

impl Requests {
    pub async fn scrape(client: &Client) -> anyhow::Result<Self> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = client.request_text(request).await?;
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines)?;
        let mut counts = BTreeMap::new();
        for sample in scrape
            .samples
            .iter()
            .filter(|s| s.metric == "apiserver_request_total")
        {
            let prometheus_parse::Value::Counter(value) = sample.value else {
                continue;
            };
            let label = |name: &str| sample.labels.get(name).unwrap_or_default().to_string();
            *counts
                .entry((label("verb"), label("resource"), label("subresource")))
                .or_insert(0.0) += value;
        }
        Ok(Self(counts))
    }

    /// What was served between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, v)| *v > 0.0)
                .collect(),
        )
    }

    fn sum(&self, keep: impl Fn(&str, &str, &str) -> bool) -> f64 {
        self.0
            .iter()
            .filter(|((verb, resource, sub), _)| keep(verb, resource, sub))
            .map(|(_, v)| v)
            // An empty f64 sum is -0.0.
            .fold(0.0, |a, b| a + b)
    }

    /// Writes of roster's kinds (create, update, patch, delete; status included).
    pub fn roster_writes(&self) -> f64 {
        self.sum(|verb, resource, _| is_write(verb) && is_roster_kind(resource))
    }

    /// Status writes of roster's kinds.
    pub fn status_writes(&self) -> f64 {
        self.sum(|verb, resource, sub| {
            is_write(verb) && is_roster_kind(resource) && sub == "status"
        })
    }

    /// Reads of roster's kinds (GET and LIST; a WATCH is counted once when it opens).
    pub fn roster_reads(&self) -> f64 {
        self.sum(|verb, resource, _| matches!(verb, "GET" | "LIST") && is_roster_kind(resource))
    }

    /// Event writes.
    pub fn events(&self) -> f64 {
        self.sum(|verb, resource, _| is_write(verb) && resource == "events")
    }

    /// Every request, as `verb resource[/subresource]` → count (for the JSON report).
    pub fn json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|((verb, resource, sub), v)| {
                let what = if sub.is_empty() {
                    format!("{verb} {resource}")
                } else {
                    format!("{verb} {resource}/{sub}")
                };
                (what, serde_json::json!(v))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

fn is_write(verb: &str) -> bool {
    matches!(verb, "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY")
}

fn is_roster_kind(resource: &str) -> bool {
    matches!(
        resource,
        "directoryusers" | "tenants" | "departures" | "deprovisionpolicies" | "directorygroups"
    )
}
