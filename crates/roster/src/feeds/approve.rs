//! `roster approve --tenant NAMESPACE`: approves the removals the mass-deprovisioning
//! guard held, by setting the Tenant's `roster.dev/approve-removals` annotation to a
//! new token (the time of the approval). Each held source's next sync, which the
//! scheduler starts at once, then applies them; the token is used once.

use anyhow::{Context as _, bail};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use roster_api::Tenant;
use roster_api::tenant::APPROVE_REMOVALS_ANNOTATION;
use serde_json::json;

use super::Source;
use super::sync::last_entry;
use crate::clock::Clock;

/// Approves and prints which sources were held.
pub async fn approve(
    client: Client,
    clock: &dyn Clock,
    namespace: &str,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let api: Api<Tenant> = Api::namespaced(client, namespace);
    let tenants = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("list the Tenants of namespace {namespace}"))?
        .items;
    let [tenant] = tenants.as_slice() else {
        bail!(
            "namespace {namespace} holds {} Tenants, not one",
            tenants.len()
        );
    };
    let held: Vec<String> = Source::ALL
        .into_iter()
        .filter_map(|s| {
            let entry = last_entry(tenant, s)?;
            entry.held.map(|n| format!("{} ({n} users)", s.as_str()))
        })
        .collect();
    if held.is_empty() {
        writeln!(out, "{}: nothing is held", tenant.name_any())?;
        return Ok(());
    }
    let token = clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let patch = json!({ "metadata": { "annotations": { APPROVE_REMOVALS_ANNOTATION: token } } });
    api.patch(
        &tenant.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .context("annotate the Tenant")?;
    writeln!(
        out,
        "{}: approved the held removals of {}; the next sync applies them",
        tenant.name_any(),
        held.join(", ")
    )?;
    Ok(())
}
