//! The writes roster makes to the objects it reconciles.

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{MANAGER, Result};

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

/// Adds or removes one of roster's finalizers with server-side apply under a field
/// manager of its own, so other finalizers and other managers' fields are never touched.
pub async fn finalizer<K>(
    api: &Api<K>,
    name: &str,
    kind: &str,
    finalizer: &str,
    present: bool,
) -> Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let finalizers: Vec<&str> = if present { vec![finalizer] } else { Vec::new() };
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": kind,
        "metadata": { "name": name, "finalizers": finalizers },
    });
    // One manager per finalizer: applying an empty list releases only that one. The
    // DirectoryUser's keeps the name it has always had, so objects finalized by an
    // earlier version are still released.
    let manager = match finalizer {
        super::FINALIZER => "roster-finalizer".to_string(),
        other => format!(
            "roster-finalizer-{}",
            other.trim_start_matches("roster.dev/")
        ),
    };
    Ok(api
        .patch(
            name,
            &PatchParams::apply(&manager).force(),
            &Patch::Apply(&body),
        )
        .await?)
}
