//! The writes roster makes to the objects it reconciles.

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{FINALIZER, MANAGER, Result};

/// Applies `status` with server-side apply as roster's one status field manager.
pub async fn status<K, S>(api: &Api<K>, name: &str, kind: &str, status: &S) -> Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": kind,
        "status": status,
    });
    Ok(api
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?)
}

/// Adds or removes roster's finalizer with server-side apply under a dedicated field
/// manager, so other finalizers and other managers' fields are never touched.
pub async fn finalizer<K>(api: &Api<K>, name: &str, kind: &str, present: bool) -> Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let finalizers: Vec<&str> = if present { vec![FINALIZER] } else { Vec::new() };
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": kind,
        "metadata": { "name": name, "finalizers": finalizers },
    });
    Ok(api
        .patch(
            name,
            &PatchParams::apply("roster-finalizer").force(),
            &Patch::Apply(&body),
        )
        .await?)
}
