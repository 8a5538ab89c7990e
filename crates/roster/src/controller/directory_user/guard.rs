//! The mass-deprovisioning guard's shell: the per-tenant admission ledger that feeds
//! the pure decision ([`roster_lifecycle::guard::admit`]) and the trip's writes.
//!
//! Users are reconciled concurrently, so two reconciles must not both admit the
//! removal that crosses a threshold. Each decision runs under the ledger's lock, and
//! an admitted removal is reserved in the ledger before the lock is released (before
//! its status is even written). The ledger is a cache of what status persists: it is
//! built, per tenant, from the users' `status.removalGuard.admittedTime` (the window)
//! and the Tenant's `status.removalGuard` (the trip), merged by UID, so a restart or a
//! new leader neither resets the window nor counts anyone twice. The trip is written
//! to the Tenant before the first held user's status, and read back fresh before each
//! decision, so a trip written by a feed sync (or `roster import csv` in another
//! process) holds removals that reach the controller before the Tenant's watch event.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use roster_api::tenant::{APPROVE_REMOVALS_ANNOTATION, REJECT_REMOVALS_ANNOTATION};
use roster_api::{DirectoryUser, GuardTrip, MassDeprovisionGuard, Phase, Tenant};
use roster_lifecycle::guard::{self, Admission, Decisions, Tally};
use serde_json::json;
use tracing::warn;

use crate::controller::{Context, Result};

/// The field manager of the Tenant's `status.removalGuard`.
pub const GUARD_MANAGER: &str = "roster-guard";

/// A tenant: its namespace and name.
type TenantKey = (String, String);

#[derive(Default)]
struct TenantLedger {
    /// Removals admitted within the window, by user UID: when, and the object's name.
    admitted: HashMap<String, (DateTime<Utc>, String)>,
    /// The trip that holds, if any.
    trip: Option<GuardTrip>,
    /// A reconcile of this process is writing `trip` to the Tenant (one writer, one
    /// Event per trip).
    writing: bool,
    /// When the ledger last merged the users' persisted admissions.
    merged_at: Option<DateTime<Utc>>,
}

/// The ledgers of one watch scope's tenants.
#[derive(Default)]
pub struct Ledger {
    tenants: Mutex<HashMap<TenantKey, TenantLedger>>,
}

/// The Tenant's approve and reject annotation values.
pub fn decisions(tenant: &Tenant) -> Decisions<'_> {
    let value = |key: &str| {
        tenant
            .annotations()
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    Decisions {
        approve: value(APPROVE_REMOVALS_ANNOTATION),
        reject: value(REJECT_REMOVALS_ANNOTATION),
    }
}

/// The trip recorded in the Tenant's status, if it still holds.
pub fn current_trip(tenant: &Tenant) -> Option<&GuardTrip> {
    let trip = tenant.status.as_ref()?.removal_guard.as_ref();
    guard::trip_holds(trip, decisions(tenant)).then_some(trip?)
}

/// Decides whether `user`'s removal may go ahead now, reserving it when admitted.
/// A decision that trips the guard writes the trip to the Tenant and announces it
/// before returning.
pub async fn admit(
    context: &Context,
    user: &DirectoryUser,
    settings: &MassDeprovisionGuard,
    now: DateTime<Utc>,
) -> Result<Admission> {
    if !settings.enabled {
        return Ok(Admission::Admit);
    }
    let namespace = user.namespace().unwrap_or_default();
    let tenant_name = user.spec.tenant_ref.name.clone();
    let tenants: Api<Tenant> = Api::namespaced(context.client.clone(), &namespace);
    // Fresh: a trip written by a feed sync must hold even the removals its own writes
    // cause, whose watch events may arrive before the Tenant's.
    // A list by name: the operator's RBAC lists and watches Tenants, it does not get them.
    let by_name = ListParams::default().fields(&format!("metadata.name={tenant_name}"));
    let Some(tenant) = tenants.list(&by_name).await?.items.into_iter().next() else {
        // The Tenant went away meanwhile: nothing to guard, nothing to decide now.
        return Ok(Admission::Hold {
            trips: false,
            message: "the Tenant is gone".into(),
        });
    };
    let uid = user.uid().unwrap_or_default();
    let key = (namespace.clone(), tenant_name.clone());
    let (admission, trip_to_write) = {
        let mut ledgers = context
            .guard
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let ledger = ledgers.entry(key).or_default();
        if ledger.merged_at.is_none_or(|at| at + guard::WINDOW <= now) {
            merge_persisted(ledger, context, &namespace, &tenant_name);
            ledger.merged_at = Some(now);
        }
        ledger
            .admitted
            .retain(|_, (at, _)| *at > now - guard::WINDOW);
        let decisions = decisions(&tenant);
        let persisted = current_trip(&tenant).cloned();
        ledger.trip = match persisted {
            Some(trip) => Some(trip),
            // Tripped in this process, not yet visible: keep it while the annotations
            // are what they were.
            None => ledger
                .trip
                .take()
                .filter(|t| guard::trip_holds(Some(t), decisions)),
        };
        if ledger.admitted.contains_key(&uid) {
            // Reserved by an earlier attempt of this same removal.
            return Ok(Admission::Admit);
        }
        let counts = context.directory.counts(&namespace, &tenant_name);
        let in_window = ledger.admitted.len();
        // Who had access at the start of the window: the Active and Held users, and
        // those admitted since who are no longer Active (the index and the store are
        // kept by the same watch, so nobody is counted twice or missed).
        let left = ledger
            .admitted
            .values()
            .filter(|(_, name)| {
                context
                    .directory
                    .phase_of(&namespace, name)
                    .is_none_or(|phase| phase != Phase::Active)
            })
            .count();
        let tally = Tally {
            tenant_size: (counts.active + counts.held).max(0) as usize + left,
            admitted: in_window,
            tripped: ledger.trip.is_some(),
        };
        let admission = guard::admit(settings, tally, 1);
        match &admission {
            Admission::Admit => {
                ledger.admitted.insert(uid, (now, user.name_any()));
            }
            Admission::Hold {
                trips: true,
                message,
            } => {
                ledger.trip = Some(GuardTrip {
                    tripped_time: now,
                    message: message.clone(),
                    approve_token: decisions.approve.map(str::to_string),
                    reject_token: decisions.reject.map(str::to_string),
                });
            }
            Admission::Hold { trips: false, .. } => {}
        }
        // A trip this process holds but the Tenant does not show yet (a write that
        // failed before) is written now, before any user is held under it.
        let shown = tenant
            .status
            .as_ref()
            .and_then(|s| s.removal_guard.as_ref());
        let to_write = ledger
            .trip
            .clone()
            .filter(|t| Some(t) != shown && !ledger.writing);
        ledger.writing |= to_write.is_some();
        (admission, to_write)
    };
    if let Some(trip) = trip_to_write {
        let written = write_trip(&tenants, &tenant_name, &trip).await;
        if let Some(ledger) = context
            .guard
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&(namespace.clone(), tenant_name.clone()))
        {
            ledger.writing = false;
        }
        written?;
        if matches!(admission, Admission::Hold { trips: true, .. }) {
            announce_trip(context, &tenant, &trip).await;
        }
    }
    Ok(admission)
}

/// Merges the persisted admissions of the tenant's users (and Departures) into the
/// ledger, by UID: what status says happened within the window.
fn merge_persisted(ledger: &mut TenantLedger, context: &Context, namespace: &str, tenant: &str) {
    let users = crate::controller::directory::resolve(
        &context.users,
        &context.directory.users_of(namespace, tenant),
    );
    let departures = context.departures.state().into_iter().filter(|d| {
        d.namespace().as_deref() == Some(namespace) && d.spec.record.tenant_ref.name == tenant
    });
    let persisted = users
        .iter()
        .filter_map(|u| Some((u.uid()?, u.name_any(), u.status.as_ref()?.clone())))
        .chain(departures.map(|d| {
            let status = d.status.clone().unwrap_or_default();
            (d.spec.origin_uid.clone(), d.name_any(), status)
        }));
    for (uid, name, status) in persisted {
        if status.phase != Phase::Active
            && let Some(at) = status.removal_guard.admitted_time
        {
            ledger.admitted.entry(uid).or_insert((at, name));
        }
    }
}

/// Writes the trip to the Tenant's `status.removalGuard` under the guard's own field
/// manager (the Tenant controller leaves that field alone).
pub async fn write_trip(tenants: &Api<Tenant>, name: &str, trip: &GuardTrip) -> Result<()> {
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": "Tenant",
        "status": { "removalGuard": trip },
    });
    tenants
        .patch_status(
            name,
            &PatchParams::apply(GUARD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}

/// The Event text of a trip: what happened in numbers, and how to answer.
pub fn trip_note(tenant: &Tenant, trip: &GuardTrip) -> String {
    let namespace = tenant.namespace().unwrap_or_default();
    format!(
        "mass-deprovisioning guard tripped: {}. Every new removal is held (phase Held, access kept) until an administrator answers: approve with `roster approve --tenant {namespace}` (or a new value of the Tenant's {APPROVE_REMOVALS_ANNOTATION} annotation), or reject with `roster approve --reject --tenant {namespace}` ({REJECT_REMOVALS_ANNOTATION}); rejected users stay Active until their record changes again",
        trip.message
    )
}

async fn announce_trip(context: &Context, tenant: &Tenant, trip: &GuardTrip) {
    let event = Event {
        type_: EventType::Warning,
        reason: "MassDeprovisionGuardTripped".into(),
        note: Some(trip_note(tenant, trip)),
        action: "HoldRemovals".into(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &tenant.object_ref(&()))
        .await
    {
        warn!(%error, "cannot publish event");
    }
}

/// The Tenant's `RemovalGuard` condition: (ok, reason, message). `held` counts the
/// tenant's users (and Departures) in `Held`.
pub fn tenant_condition(tenant: &Tenant, held: i32) -> (bool, &'static str, String) {
    let namespace = tenant.namespace().unwrap_or_default();
    match (current_trip(tenant), held) {
        (None, 0) => (true, "Clear", String::new()),
        (Some(trip), held) => (
            false,
            "RemovalsHeld",
            format!(
                "{held} user(s) held by the mass-deprovisioning guard ({}); approve: roster approve --tenant {namespace}; reject: roster approve --reject --tenant {namespace}",
                trip.message
            ),
        ),
        (None, held) => (
            false,
            "Releasing",
            format!(
                "the held removals were answered; {held} user(s) still held are being released"
            ),
        ),
    }
}

/// How many of the tenant's users and Departures are `Held`.
pub fn held(context: &Context, namespace: &str, tenant: &str) -> i32 {
    let departed = context
        .departures
        .state()
        .into_iter()
        .filter(|d| {
            d.namespace().as_deref() == Some(namespace)
                && d.spec.record.tenant_ref.name == tenant
                && d.status.as_ref().is_some_and(|s| s.phase == Phase::Held)
        })
        .count() as i32;
    context.directory.counts(namespace, tenant).held + departed
}
