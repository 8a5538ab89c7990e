//! Sharding across replicas, the way Flux shards its controllers: each shard is a
//! Deployment of its own, run with `--shard NAME`, that takes the tenant namespaces
//! labelled `roster.dev/shard=NAME`, with a leader Lease of its own
//! (`roster-leader-NAME`). Within a shard, one replica reconciles and the others stand
//! by, as without shards; across shards, tenants are reconciled side by side, each
//! shard watching only its namespaces (so memory, API server watch load and reconcile
//! work split too).
//!
//! The shard's namespaces are resolved when the process starts; a change of that set
//! (a tenant namespace labelled into or out of the shard) ends the process, and its
//! restart takes the new set, as a leader change does: everything roster needs is in
//! status, so nothing is lost or repeated.

use std::collections::BTreeSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::{info, warn};

/// The namespace label that assigns a tenant namespace to a shard.
pub const LABEL: &str = "roster.dev/shard";

/// Whether `name` can be a shard (the value of a label, non-empty).
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "a shard is the value of the namespace label {LABEL}: 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

fn selector(shard: &str) -> String {
    format!("{LABEL}={shard}")
}

/// The namespaces labelled into `shard` now.
pub async fn namespaces(client: &Client, shard: &str) -> Result<BTreeSet<String>, kube::Error> {
    let list = Api::<Namespace>::all(client.clone())
        .list(&kube::api::ListParams::default().labels(&selector(shard)))
        .await?;
    Ok(list.items.iter().map(ResourceExt::name_any).collect())
}

/// Resolves once the namespaces labelled into `shard` are no longer `serving` (watched
/// with backoff; a watch error is retried, not taken for a change).
pub async fn changed(client: Client, shard: String, serving: BTreeSet<String>) {
    let events = watcher(
        Api::<Namespace>::all(client),
        watcher::Config::default().labels(&selector(&shard)),
    )
    .default_backoff();
    let mut events = std::pin::pin!(events);
    let mut listing = BTreeSet::new();
    let mut current: Option<BTreeSet<String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(ns)) => {
                listing.insert(ns.name_any());
            }
            Ok(watcher::Event::InitDone) => current = Some(std::mem::take(&mut listing)),
            Ok(watcher::Event::Apply(ns)) => {
                if let Some(current) = &mut current {
                    current.insert(ns.name_any());
                }
            }
            Ok(watcher::Event::Delete(ns)) => {
                if let Some(current) = &mut current {
                    current.remove(&ns.name_any());
                }
            }
            Err(error) => {
                warn!(%error, "shard namespace watch failed; retrying with backoff");
                continue;
            }
        }
        if let Some(current) = &current
            && *current != serving
        {
            info!(
                shard,
                namespaces = current.len(),
                "the shard's namespaces changed; restarting to take them"
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_are_label_values() {
        for ok in ["a", "shard-1", "eu.west_2", "A9"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(64)] {
            let error = check_name(bad).unwrap_err();
            assert!(error.contains(LABEL), "{error}");
        }
    }
}
