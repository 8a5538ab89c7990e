//! Erasure receipts, the shell: reads the signing key, appends receipts to a tenant's
//! chain, and lists a namespace's chains for `roster verify-erasure`. The chain itself
//! (hashing, linking, signing, verification) is `roster_lifecycle::erasure`.
//!
//! Appends are serialized per tenant by the receipt's name: receipt `n` of a chain is
//! named `<tenant>-<uid prefix>-<n>`, and creating a name that exists fails, so two
//! writers (two reconciles, or a stale leader) can never both take position `n`; the
//! loser re-reads the head and links after the winner. The order of a chain is its
//! sequence numbers.

pub mod user;
pub mod verify;

use std::collections::{BTreeMap, HashMap};

use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client, ResourceExt};
use roster_api::erasure_receipt::{RECEIPT_KIND_LABEL, SUBJECT_UID_LABEL, TENANT_UID_LABEL};
use roster_api::tenant::SecretKeyRef;
use roster_api::{ErasureReceipt, ErasureReceiptSpec, Tenant};
use roster_lifecycle::erasure::{self, Head};
use thiserror::Error;

/// A short HMAC key would make the signatures guessable.
pub const MIN_KEY_BYTES: usize = 32;
/// How often an append re-reads the head after losing the race for a position.
const MAX_RACES: usize = 20;

#[derive(Debug, Error)]
pub enum ReceiptError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("the chain's head kept moving: {MAX_RACES} appends in a row lost the race")]
    Contended,
}

impl ReceiptError {
    /// The namespace is being deleted, and the API server creates nothing in it any
    /// more: the chain goes with the namespace, so waiting for the write would only
    /// strand the namespace in Terminating.
    pub fn namespace_terminating(&self) -> bool {
        matches!(self, Self::Kube(kube::Error::Api(e))
            if e.code == 403 && e.message.contains("is being terminated"))
    }
}

/// The tenant's signing key, if it names one: read under the opt-in rule of
/// [`crate::credentials`]. A named key that cannot be read is an error (the receipt
/// waits), never a silently unsigned receipt.
pub async fn signing_key(
    client: &Client,
    tenant: &Tenant,
) -> Result<Option<(SecretKeyRef, Vec<u8>)>, ReceiptError> {
    let Some(settings) = &tenant.spec.erasure_receipts else {
        return Ok(None);
    };
    let reference = &settings.signing_key_secret_ref;
    let namespace = tenant.namespace().unwrap_or_default();
    let key = crate::credentials::read(client, &namespace, reference)
        .await
        .map_err(|e| ReceiptError::Key(e.to_string()))?;
    if key.len() < MIN_KEY_BYTES {
        return Err(ReceiptError::Key(format!(
            "Secret {:?} key {:?} holds {} bytes; an erasure receipt key needs at least {MIN_KEY_BYTES} (e.g. `openssl rand -base64 48`)",
            reference.name,
            reference.key,
            key.len()
        )));
    }
    Ok(Some((reference.clone(), key)))
}

/// The name of receipt `sequence` of a chain: the tenant's name (cut to fit), the first
/// 8 characters of its UID, the position.
pub fn receipt_name(tenant: &str, tenant_uid: &str, sequence: i64) -> String {
    let uid: String = tenant_uid.chars().filter(|c| *c != '-').take(8).collect();
    let tenant: String = tenant.chars().take(200).collect();
    format!("{tenant}-{uid}-{sequence:08}")
}

/// The heads this process last appended to, by Tenant UID (a cache: a lost race or a
/// cold start re-reads it from the API server).
#[derive(Default)]
pub struct Chains {
    heads: tokio::sync::Mutex<HashMap<String, Head>>,
}

/// What a receipt is about, for finding it again (its idempotency).
#[derive(Clone, Copy, Debug)]
pub enum Covers<'a> {
    /// One person, by their object UID.
    Subject(&'a str),
    /// The tenant's exit.
    Exit,
}

impl Chains {
    /// Appends `draft` to its tenant's chain, unless a receipt for the same subject (or
    /// the exit) is already there. Returns the receipt's name.
    pub async fn append(
        &self,
        client: &Client,
        namespace: &str,
        mut draft: ErasureReceiptSpec,
        covers: Covers<'_>,
        key: Option<&(SecretKeyRef, Vec<u8>)>,
    ) -> Result<String, ReceiptError> {
        let api: Api<ErasureReceipt> = Api::namespaced(client.clone(), namespace);
        let tenant_uid = draft.tenant_uid.clone();
        let tenant = draft.tenant_ref.name.clone();
        // Already written (a crash between the receipt and the status that names it)?
        // Asked before taking the lock: the lock orders appends, and the controller
        // never runs two reconciles of one subject at once. Holding it across this
        // read made every purge of a mass event queue here, and with them the
        // reconcile slots that revocations and deadlines need.
        if let Some(existing) = find(&api, &tenant_uid, covers).await? {
            return Ok(existing.name_any());
        }
        // One append at a time in this process; other writers lose on the name.
        let mut heads = self.heads.lock().await;
        draft.signing_key_ref = key.map(|(r, _)| r.clone());
        let mut head = match heads.get(&tenant_uid) {
            Some(head) => Some(head.clone()),
            None => read_head(&api, &tenant_uid).await?,
        };
        for _ in 0..MAX_RACES {
            let receipt = erasure::seal(draft.clone(), head.as_ref(), key.map(|(_, k)| &k[..]));
            let name = receipt_name(&tenant, &tenant_uid, receipt.sequence);
            let mut labels = BTreeMap::from([
                (TENANT_UID_LABEL.to_string(), tenant_uid.clone()),
                ("roster.dev/tenant".to_string(), tenant.clone()),
                (
                    RECEIPT_KIND_LABEL.to_string(),
                    receipt.kind.as_str().to_string(),
                ),
            ]);
            if let Covers::Subject(uid) = covers {
                labels.insert(SUBJECT_UID_LABEL.to_string(), uid.to_string());
            }
            let object = ErasureReceipt {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.to_string()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                spec: receipt.clone(),
            };
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => {
                    heads.insert(tenant_uid.clone(), Head::of(&receipt));
                    return Ok(name);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // Someone took this position: link after them.
                    head = read_head(&api, &tenant_uid).await?;
                    if let Some(existing) = find(&api, &tenant_uid, covers).await? {
                        return Ok(existing.name_any());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ReceiptError::Contended)
    }
}

/// The receipt already written for `covers` in the chain, if any.
async fn find(
    api: &Api<ErasureReceipt>,
    tenant_uid: &str,
    covers: Covers<'_>,
) -> Result<Option<ErasureReceipt>, kube::Error> {
    let selector = match covers {
        Covers::Subject(uid) => {
            format!("{TENANT_UID_LABEL}={tenant_uid},{SUBJECT_UID_LABEL}={uid}")
        }
        Covers::Exit => format!("{TENANT_UID_LABEL}={tenant_uid},{RECEIPT_KIND_LABEL}=TenantExit"),
    };
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .next())
}

/// The chain's last receipt as the API server has it.
async fn read_head(
    api: &Api<ErasureReceipt>,
    tenant_uid: &str,
) -> Result<Option<Head>, kube::Error> {
    let list = api
        .list(&ListParams::default().labels(&format!("{TENANT_UID_LABEL}={tenant_uid}")))
        .await?;
    Ok(list
        .items
        .iter()
        .max_by_key(|r| r.spec.sequence)
        .map(|r| Head::of(&r.spec)))
}
