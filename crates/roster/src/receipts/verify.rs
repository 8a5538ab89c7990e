//! `roster verify-erasure --tenant NAMESPACE`: every erasure chain of a namespace,
//! checked with the key each chain names (or the one given). Prints one report per
//! chain; the caller exits non-zero when any has a problem.

use std::collections::BTreeMap;
use std::fmt::Write;

use kube::api::ListParams;
use kube::{Api, Client};
use roster_api::tenant::SecretKeyRef;
use roster_api::{ErasureReceipt, ErasureReceiptSpec};
use roster_lifecycle::erasure::{self, Verification};

/// One chain's result, ready to print.
pub struct ChainReport {
    pub tenant: String,
    pub tenant_uid: String,
    pub verification: Verification,
    /// Where the key came from, or why there was none.
    pub key_source: String,
}

impl ChainReport {
    pub fn render(&self) -> String {
        let v = &self.verification;
        let mut out = String::new();
        let _ = write!(
            out,
            "tenant {} (uid {}): {} receipt(s), {}; key: {}",
            self.tenant,
            self.tenant_uid,
            v.receipts,
            if v.sealed {
                "ended by the tenant's exit"
            } else {
                "open (the tenant has not exited)"
            },
            self.key_source
        );
        if let Some(head) = &v.head {
            let _ = write!(out, "; head #{} {}", head.sequence, &head.hash[..16]);
        }
        if v.ok() {
            out.push_str("\n  OK: no gap, no reordering, no alteration, every signature valid");
        } else {
            for problem in &v.problems {
                let _ = write!(out, "\n  PROBLEM: {problem}");
            }
        }
        out
    }
}

/// Checks every chain in `namespace`. `key` overrides the Secret the receipts name.
pub async fn namespace(
    client: &Client,
    namespace: &str,
    key: Option<&SecretKeyRef>,
) -> anyhow::Result<Vec<ChainReport>> {
    let api: Api<ErasureReceipt> = Api::namespaced(client.clone(), namespace);
    let receipts = api.list(&ListParams::default()).await?.items;
    let mut chains: BTreeMap<String, Vec<ErasureReceiptSpec>> = BTreeMap::new();
    for receipt in receipts {
        chains
            .entry(receipt.spec.tenant_uid.clone())
            .or_default()
            .push(receipt.spec);
    }
    let mut reports = Vec::new();
    for (tenant_uid, chain) in chains {
        let tenant = chain
            .iter()
            .max_by_key(|r| r.sequence)
            .map(|r| r.tenant_ref.name.clone())
            .unwrap_or_default();
        // The key: the one given, else the Secret the chain's receipts name (the first
        // receipt's, so a later receipt cannot redirect verification to another key).
        let named = chain
            .iter()
            .min_by_key(|r| r.sequence)
            .and_then(|r| r.signing_key_ref.clone());
        let reference = key.cloned().or(named);
        let (bytes, key_source) = match &reference {
            None => (None, "none named (the receipts are not signed)".to_string()),
            Some(r) => match crate::credentials::read(client, namespace, r).await {
                Ok(bytes) => (Some(bytes), format!("Secret {}/{}", r.name, r.key)),
                Err(e) => (None, format!("Secret {}/{} unreadable: {e}", r.name, r.key)),
            },
        };
        let verification = erasure::verify(&chain, bytes.as_deref());
        reports.push(ChainReport {
            tenant,
            tenant_uid,
            verification,
            key_source,
        });
    }
    Ok(reports)
}
