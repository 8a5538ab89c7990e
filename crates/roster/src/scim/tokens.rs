//! The bearer tokens of the Tenants that serve SCIM, read from the Secrets they name
//! (under the credentials opt-in rule) and kept in memory, so that a request never
//! waits for the API server to be authenticated.
//!
//! Refreshed when a Tenant changes and every [`REFRESH`] otherwise, so that a rotated
//! token is honoured (and the old one refused) within that time. Only the Tenant's
//! name and the Secret's name are ever logged.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::{Client, ResourceExt};
use roster_api::Tenant;
use roster_scim::store::ScimTenant;
use tracing::warn;

use super::store::KubeStore;
use crate::controller::Watches;
use crate::controller::watches::Watched;

/// How often tokens are read again without a Tenant change.
pub const REFRESH: Duration = Duration::from_secs(10);

/// Reads the tokens now and then on every Tenant change and every [`REFRESH`]; marks
/// the store ready once every watch has listed and the tokens were read once.
pub async fn refresh(client: Client, store: Arc<KubeStore>, watches: Watches) {
    let tenants: Vec<Watched<Tenant>> = watches.scopes.iter().map(|s| s.tenants.clone()).collect();
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    for watched in &tenants {
        let mut changes = watched.changes();
        let changed_tx = changed_tx.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            while let Ok(_) | Err(RecvError::Lagged(_)) = changes.recv().await {
                // One pending refresh is enough, however many changes arrive.
                let _ = changed_tx.try_send(());
            }
        });
    }
    let mut unreadable = HashSet::new();
    loop {
        let listed = watches.scopes.iter().all(|s| {
            crate::controller::ready(&s.users.store)
                && crate::controller::ready(&s.tenants.store)
                && crate::controller::ready(&s.groups.store)
        });
        if listed {
            store.set_tokens(read_all(&client, &tenants, &mut unreadable).await);
            store.set_ready();
        }
        let wait = if listed {
            REFRESH
        } else {
            Duration::from_millis(50)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.recv() => {}
        }
    }
}

/// Every SCIM Tenant's token. A token that cannot be read is logged once (until it can
/// be read again), not on every refresh; the Tenant's conditions say why.
async fn read_all(
    client: &Client,
    tenants: &[Watched<Tenant>],
    unreadable: &mut HashSet<(String, String)>,
) -> HashMap<String, Vec<ScimTenant>> {
    let mut tokens: HashMap<String, Vec<ScimTenant>> = HashMap::new();
    for tenant in tenants.iter().flat_map(|w| w.store.state()) {
        let Some(scim) = tenant.spec.sources.scim.as_ref() else {
            continue;
        };
        // A Tenant that is being deleted takes no new records.
        if tenant.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let namespace = tenant.namespace().unwrap_or_default();
        let key = (namespace.clone(), tenant.name_any());
        match crate::credentials::read(client, &namespace, &scim.token_secret_ref).await {
            Ok(token) => {
                unreadable.remove(&key);
                tokens.entry(namespace).or_default().push(ScimTenant {
                    name: tenant.name_any(),
                    token,
                });
            }
            Err(error) => {
                if unreadable.insert(key) {
                    warn!(
                        tenant = tenant.name_any(),
                        namespace,
                        reason = error.reason(),
                        "the Tenant's SCIM token cannot be read; its SCIM requests are refused"
                    );
                }
            }
        }
    }
    tokens
}
