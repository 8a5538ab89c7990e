//! `roster approve --tenant NAMESPACE [--reject]`: answers the mass-deprovisioning
//! guard by setting the Tenant's `roster.dev/approve-removals` (or
//! `roster.dev/reject-removals`) annotation to a new token (the time of the answer).
//! The users held before that moment then leave for their quarantine (approved) or go
//! back to Active (rejected), and the guard's trip ends. The annotation is the whole
//! interface: `kubectl annotate --overwrite tenant NAME roster.dev/approve-removals=…`
//! does the same.

use anyhow::{Context as _, bail};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use roster_api::tenant::{APPROVE_REMOVALS_ANNOTATION, REJECT_REMOVALS_ANNOTATION};
use roster_api::{Departure, DirectoryUser, Tenant};
use serde_json::json;

use crate::clock::Clock;
use crate::controller::directory_user::guard;

/// The administrator's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Reject,
}

/// Answers and prints what was held.
pub async fn approve(
    client: Client,
    clock: &dyn Clock,
    namespace: &str,
    answer: Answer,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let api: Api<Tenant> = Api::namespaced(client.clone(), namespace);
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
    let held = held_users(&client, namespace, &tenant.name_any()).await?;
    let trip = guard::current_trip(tenant);
    if trip.is_none() && held == 0 {
        writeln!(out, "{}: nothing is held", tenant.name_any())?;
        return Ok(());
    }
    let token = clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (key, verb) = match answer {
        Answer::Approve => (APPROVE_REMOVALS_ANNOTATION, "approved"),
        Answer::Reject => (REJECT_REMOVALS_ANNOTATION, "rejected"),
    };
    let patch = json!({ "metadata": { "annotations": { key: token } } });
    api.patch(
        &tenant.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .context("annotate the Tenant")?;
    let why = trip.map_or(String::new(), |t| {
        format!(" (the guard tripped: {})", t.message)
    });
    let next = match answer {
        Answer::Approve => "they leave for their quarantine now",
        Answer::Reject => "they go back to Active and stay there until their record changes",
    };
    writeln!(
        out,
        "{}: {verb} the held removals of {held} users{why}; {next}",
        tenant.name_any()
    )?;
    Ok(())
}

/// The tenant's users (and Departures) in `Held`, counted now (the Tenant's
/// `userCounts` may lag a moment behind).
async fn held_users(client: &Client, namespace: &str, tenant: &str) -> anyhow::Result<usize> {
    let users: Api<DirectoryUser> = Api::namespaced(client.clone(), namespace);
    let departures: Api<Departure> = Api::namespaced(client.clone(), namespace);
    let held = |status: Option<&roster_api::DirectoryUserStatus>| {
        status.is_some_and(|s| s.phase == roster_api::Phase::Held)
    };
    let users = users
        .list(&ListParams::default())
        .await
        .context("list the DirectoryUsers")?
        .items
        .into_iter()
        .filter(|u| u.spec.tenant_ref.name == tenant && held(u.status.as_ref()))
        .count();
    let departed = departures
        .list(&ListParams::default())
        .await
        .context("list the Departures")?
        .items
        .into_iter()
        .filter(|d| d.spec.record.tenant_ref.name == tenant && held(d.status.as_ref()))
        .count();
    Ok(users + departed)
}
