//! One sync of one source of one Tenant: read → plan → apply → record → announce.
//! The scheduler ([`super::runner`]) and `roster import csv` take this same path; they
//! differ only in where the bytes come from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client, Resource, ResourceExt};
use roster_api::tenant::{RejectedRow, SourceSync, SyncResult};
use roster_api::{DirectoryUser, RecordSource, Tenant};
use roster_connectors::endpoint::EndpointPolicy;
use roster_feeds::plan::Target;
use roster_feeds::{CsvFormat, DateFormat, Existing, FeedError, Plan, RowError, Snapshot};
use serde_json::json;
use tracing::{info, warn};

use super::Source;
use super::fetch::{self, FetchError};
use crate::clock::Clock;
use crate::controller::directory_user::guard;

/// Writes in flight at once during a sync.
const WRITE_CONCURRENCY: usize = 16;
/// Rows named in status (the rest are counted, and named in Events).
const STATUS_ROWS: usize = 50;
/// Events naming bad rows per sync (each packs rows up to ~1 KiB).
const ROW_EVENTS: usize = 20;

/// What a sync needs from the operator.
pub struct Feeds {
    pub client: Client,
    pub recorder: Recorder,
    pub clock: Arc<dyn Clock>,
    pub endpoints: EndpointPolicy,
    /// Bound on each network step of a fetch.
    pub timeout: Duration,
}

/// What a sync did.
#[derive(Debug)]
pub struct Outcome {
    pub sync: SourceSync,
    /// The problems in the rows, then the ones found while applying (for the report).
    pub rejected: Vec<RowError>,
    /// Rows applied but with something left out (a manager not found, ...).
    pub notes: Vec<RowError>,
    /// The plan, when the source could be read.
    pub plan: Option<Plan>,
    /// The removals the guard holds, if it does.
    pub held: Option<Held>,
}

/// Why a sync failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("cannot list the tenant's DirectoryUsers: {0}")]
    List(kube::Error),
    /// The guard had to trip before the writes, and could not.
    #[error("cannot trip the mass-deprovisioning guard on the Tenant, so nothing was applied: {0}")]
    Trip(String),
}

/// The removals of a sync the mass-deprovisioning guard holds: the people are written
/// (`active: false`) and wait in `Held`, with their access, for an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub leaving: usize,
    /// The numbers and the threshold, never a person.
    pub message: String,
}

impl Held {
    /// What the status entry and the Event say: why, and how to answer.
    pub fn note(&self) -> String {
        format!(
            "{} removal(s) held by the mass-deprovisioning guard: {}; nobody leaves until approved (roster approve --tenant NAMESPACE) or rejected (roster approve --reject --tenant NAMESPACE)",
            self.leaving, self.message
        )
    }
}

impl SyncError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Fetch(e) => e.reason(),
            Self::Feed(e) => e.reason(),
            Self::List(_) => "ApiError",
            Self::Trip(_) => "GuardNotTripped",
        }
    }

    /// The message for status and Events (PII-free: kube errors are reduced to their
    /// code).
    pub fn message(&self) -> String {
        match self {
            Self::List(kube::Error::Api(status)) => format!(
                "cannot list the tenant's DirectoryUsers: HTTP {} {}",
                status.code, status.reason
            ),
            Self::List(_) => "cannot list the tenant's DirectoryUsers".into(),
            other => other.to_string(),
        }
    }
}

/// Reads a body the way the Tenant's source is configured.
pub fn read(source: Source, tenant: &Tenant, bytes: &[u8]) -> Result<Snapshot, FeedError> {
    match source {
        Source::Csv => {
            let csv = tenant.spec.sources.csv.as_ref();
            let dates = DateFormat::new(csv.map_or("%Y-%m-%d", |c| c.date_format.as_str()))
                .map_err(|e| FeedError::Settings(format!("csv.{e}")))?;
            let format = CsvFormat {
                columns: csv.map(|c| c.columns.clone()).unwrap_or_default(),
                dates,
            };
            roster_feeds::read_csv(bytes, &format)
        }
        Source::HrApi => {
            let hr = tenant
                .spec
                .sources
                .hr_api
                .as_ref()
                .ok_or_else(|| FeedError::Settings("the Tenant has no hrAPI source".into()))?;
            roster_feeds::read_report(bytes, &hr.mappings)
        }
    }
}

/// Whether the source's snapshots are complete (people missing are removed).
pub fn complete(source: Source, tenant: &Tenant) -> bool {
    match source {
        Source::Csv => tenant
            .spec
            .sources
            .csv
            .as_ref()
            .is_none_or(|c| c.complete_snapshot),
        Source::HrApi => tenant
            .spec
            .sources
            .hr_api
            .as_ref()
            .is_none_or(|h| h.complete_snapshot),
    }
}

/// Every DirectoryUser of the namespace, page by page.
pub async fn list_users(client: &Client, namespace: &str) -> Result<Vec<Existing>, kube::Error> {
    let api: Api<DirectoryUser> = Api::namespaced(client.clone(), namespace);
    let mut params = ListParams::default().limit(500);
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items.into_iter().filter_map(|u| {
            Some(Existing {
                name: u.metadata.name.clone()?,
                phase: u.status.as_ref().map(|s| s.phase).unwrap_or_default(),
                deleting: u.metadata.deletion_timestamp.is_some(),
                spec: u.spec,
            })
        }));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(out)
}

/// Plans a snapshot against the namespace's users and, unless `dry_run`, applies the
/// writes under the source's field manager. A plan whose removals exceed the
/// mass-deprovisioning guard trips it first (on the Tenant), so that every one of them
/// is held. Writes the API server refuses are
/// reported like bad rows (by row, with the status code only: its message may quote
/// the value).
pub async fn plan_and_apply(
    client: &Client,
    tenant: &Tenant,
    source: Source,
    snapshot: &Snapshot,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<(Plan, Vec<RowError>, Option<Held>), SyncError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let existing = list_users(client, &namespace)
        .await
        .map_err(SyncError::List)?;
    let name = tenant.name_any();
    let target = Target {
        tenant: &name,
        source: source.record_source(),
        complete: complete(source, tenant),
    };
    let plan = roster_feeds::plan(&target, snapshot, &existing);
    let guard = guard_of(client, tenant).await;
    let tripped = guard::current_trip(tenant).is_some();
    let held = match roster_feeds::guard::check(&guard, &name, &existing, &plan, tripped) {
        roster_feeds::guard::Verdict::Proceed => None,
        roster_feeds::guard::Verdict::Hold {
            message,
            leaving,
            trips,
        } => {
            if trips && !dry_run {
                trip(client, tenant, &message, now).await?;
            }
            Some(Held { leaving, message })
        }
    };
    if dry_run {
        return Ok((plan, Vec::new(), held));
    }
    let rows: HashMap<&str, u64> = snapshot
        .records
        .iter()
        .map(|r| (r.employee_id.as_str(), r.row))
        .collect();
    let api: Api<DirectoryUser> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(source.field_manager()).force();
    let writes: Vec<_> = plan
        .writes
        .iter()
        .map(|write| {
            let row = rows
                .get(write.spec.employee_id.as_str())
                .copied()
                .unwrap_or(0);
            apply_one(&api, &params, &namespace, write, row)
        })
        .collect();
    let results: Vec<Option<RowError>> = futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let failed: Vec<RowError> = results.into_iter().flatten().collect();
    Ok((plan, failed, held))
}

/// Trips the Tenant's guard (its `status.removalGuard`, with the annotations' values
/// of now), before any removal is written.
async fn trip(
    client: &Client,
    tenant: &Tenant,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let decisions = guard::decisions(tenant);
    let trip = roster_api::GuardTrip {
        tripped_time: now,
        message: message.to_string(),
        approve_token: decisions.approve.map(str::to_string),
        reject_token: decisions.reject.map(str::to_string),
    };
    let api: Api<Tenant> = Api::namespaced(client.clone(), &tenant.namespace().unwrap_or_default());
    guard::write_trip(&api, &tenant.name_any(), &trip)
        .await
        .map_err(|e| SyncError::Trip(e.category().to_string()))
}

/// One server-side apply; a refusal comes back as a report on the row.
async fn apply_one(
    api: &Api<DirectoryUser>,
    params: &PatchParams,
    namespace: &str,
    write: &roster_feeds::Write,
    row: u64,
) -> Option<RowError> {
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": "DirectoryUser",
        "metadata": { "name": write.name, "namespace": namespace },
        "spec": write.spec,
    });
    match api.patch(&write.name, params, &Patch::Apply(&body)).await {
        Ok(_) => None,
        Err(error) => Some(RowError::new(
            row,
            "",
            format!(
                "the API server refused the write ({})",
                api_error_code(&error)
            ),
        )),
    }
}

/// The guard of the Tenant's policy (the default guard when the policy is missing: a
/// missing policy must not switch the guard off).
async fn guard_of(client: &Client, tenant: &Tenant) -> roster_api::MassDeprovisionGuard {
    let api: Api<roster_api::DeprovisionPolicy> =
        Api::namespaced(client.clone(), &tenant.namespace().unwrap_or_default());
    // A list by name: the operator's RBAC lists and watches policies, it does not get them.
    let by_name =
        ListParams::default().fields(&format!("metadata.name={}", tenant.spec.policy_ref.name));
    match api.list(&by_name).await.map(|l| l.items.into_iter().next()) {
        Ok(Some(policy)) => policy.spec.mass_deprovision_guard,
        _ => roster_api::MassDeprovisionGuard::default(),
    }
}

/// The source's entry in the Tenant's status.
pub fn last_entry(tenant: &Tenant, source: Source) -> Option<&SourceSync> {
    let record = source.record_source();
    tenant
        .status
        .as_ref()?
        .source_syncs
        .iter()
        .find(|s| s.source == record)
}

fn api_error_code(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("HTTP {} {}", status.code, status.reason),
        _ => "no response".into(),
    }
}

/// The status entry of a sync that read its source.
pub fn sync_status(
    source: Source,
    snapshot: &Snapshot,
    plan: &Plan,
    failed: &[RowError],
    dry_run: bool,
    held: Option<&Held>,
    now: DateTime<Utc>,
) -> SourceSync {
    use roster_feeds::Change;
    let mut rejected: Vec<RowError> = snapshot.errors.clone();
    rejected.extend(failed.iter().cloned());
    rejected.sort();
    let rejected_count = snapshot.rejected_rows() + failed.len();
    let count = |c: Change| plan.count(c) as i32;
    SourceSync {
        source: source.record_source(),
        completion_time: now,
        result: if rejected_count == 0 {
            SyncResult::Succeeded
        } else {
            SyncResult::PartiallySucceeded
        },
        created: count(Change::Create),
        updated: count(Change::Update) + count(Change::Reactivate),
        removed: count(Change::Remove),
        rejected: rejected_count as i32,
        rows_read: Some(snapshot.rows_read as i32),
        unchanged: Some(plan.unchanged as i32),
        message: match (dry_run, held) {
            (true, None) => Some("dry run: nothing was written".to_string()),
            (true, Some(held)) => Some(format!("dry run: nothing was written; {}", held.note())),
            (false, held) => held.map(Held::note),
        },
        held: held.map(|h| h.leaving as i32),
        rejected_rows: rejected
            .iter()
            .take(STATUS_ROWS)
            .map(|e| RejectedRow {
                row: e.row as i64,
                column: e.column.chars().take(256).collect(),
                reason: e.reason.chars().take(256).collect(),
            })
            .collect(),
    }
}

/// The status entry of a sync that failed as a whole.
pub fn failed_status(source: Source, error: &SyncError, now: DateTime<Utc>) -> SourceSync {
    SourceSync {
        source: source.record_source(),
        completion_time: now,
        result: SyncResult::Failed,
        created: 0,
        updated: 0,
        removed: 0,
        rejected: 0,
        rows_read: None,
        unchanged: None,
        message: Some(error.message().chars().take(1024).collect()),
        held: None,
        rejected_rows: Vec::new(),
    }
}

/// Writes the source's entry of `status.sourceSyncs` under the source's own field
/// manager (the entry is keyed by source, so each source owns its own).
pub async fn record(
    client: &Client,
    tenant: &Tenant,
    source: Source,
    sync: &SourceSync,
) -> Result<(), kube::Error> {
    let api: Api<Tenant> = Api::namespaced(client.clone(), &tenant.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": "roster.dev/v1alpha1",
        "kind": "Tenant",
        "status": { "sourceSyncs": [sync] },
    });
    api.patch_status(
        &tenant.name_any(),
        &PatchParams::apply(source.field_manager()).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(drop)
}

/// Events on the Tenant: one summary, and the bad rows packed into as few Events as
/// fit (row, column, reason; never a value).
pub async fn announce(
    recorder: &Recorder,
    tenant: &Tenant,
    source: Source,
    outcome: &Outcome,
    failure: Option<&SyncError>,
) {
    let reference = tenant.object_ref(&());
    let publish = |type_: EventType, reason: String, note: String| {
        publish(recorder, &reference, type_, reason, note)
    };
    if let Some(error) = failure {
        publish(
            EventType::Warning,
            format!("{}SyncFailed", source.event_prefix()),
            format!(
                "{} sync failed ({}): {}",
                source.as_str(),
                error.reason(),
                error.message()
            ),
        )
        .await;
        return;
    }
    let s = &outcome.sync;
    if let Some(held) = &outcome.held {
        publish(
            EventType::Warning,
            format!("{}RemovalsHeld", source.event_prefix()),
            format!("{} sync: {}", source.as_str(), held.note()),
        )
        .await;
    }
    publish(
        if s.rejected > 0 { EventType::Warning } else { EventType::Normal },
        format!("{}Synced", source.event_prefix()),
        format!(
            "{} sync: {} rows read, {} created, {} updated, {} removed from the feed, {} rejected, {} unchanged",
            source.as_str(),
            s.rows_read.unwrap_or(0),
            s.created,
            s.updated,
            s.removed,
            s.rejected,
            s.unchanged.unwrap_or(0)
        ),
    )
    .await;
    for (reason, rows) in [
        ("RowsRejected", &outcome.rejected),
        ("RowsIncomplete", &outcome.notes),
    ] {
        let notes = pack(rows, ROW_EVENTS);
        for note in notes {
            publish(
                EventType::Warning,
                format!("{}{reason}", source.event_prefix()),
                note,
            )
            .await;
        }
    }
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: String,
    note: String,
) {
    let event = Event {
        type_,
        reason,
        note: Some(note),
        action: "SyncSource".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, reference).await {
        warn!(%error, "cannot publish event");
    }
}

/// Row reports packed into notes of at most ~1000 characters, at most `max` notes;
/// the last says how many more rows there were.
pub fn pack(rows: &[RowError], max: usize) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, row) in rows.iter().enumerate() {
        let text = row.to_string();
        if !current.is_empty() && current.len() + text.len() + 2 > 1000 {
            notes.push(std::mem::take(&mut current));
            if notes.len() == max {
                let last = notes.last_mut().expect("max > 0");
                last.push_str(&format!("; and {} more", rows.len() - i));
                return notes;
            }
        }
        if !current.is_empty() {
            current.push_str("; ");
        }
        current.push_str(&text);
    }
    if !current.is_empty() {
        notes.push(current);
    }
    notes
}

/// Fetches the source's bytes as the Tenant configures it.
pub async fn fetch(feeds: &Feeds, tenant: &Tenant, source: Source) -> Result<Vec<u8>, FetchError> {
    let namespace = tenant.namespace().unwrap_or_default();
    match source {
        Source::Csv => {
            let csv = tenant
                .spec
                .sources
                .csv
                .as_ref()
                .ok_or(FetchError::Settings("the Tenant has no csv source"))?;
            // The operator's endpoint policy first: a refused host is never contacted.
            fetch::sftp::check_host(&feeds.endpoints, &csv.host)?;
            let host_key = csv.host_key.clone().ok_or(FetchError::Settings(
                "spec.sources.csv.hostKey is not set: pin the SFTP server's host key (ssh-keyscan HOST) so that roster can tell it from an impostor",
            ))?;
            let secret =
                super::secret::read(&feeds.client, &namespace, &csv.credentials_secret_ref.name)
                    .await?;
            let username = secret.string("username")?;
            let auth = match secret.optional("privateKey") {
                Some(private_key) => fetch::sftp::SftpAuth::Key {
                    private_key,
                    passphrase: secret.optional("passphrase"),
                },
                None => fetch::sftp::SftpAuth::Password(secret.string("password")?),
            };
            let target = fetch::sftp::SftpTarget {
                host: csv.host.clone(),
                port: u16::try_from(csv.port)
                    .map_err(|_| FetchError::Settings("csv.port is out of range"))?,
                path: csv.path.clone(),
                host_key,
                username,
                auth,
                timeout: feeds.timeout,
            };
            let fetched = roster_connectors::http::observe(
                roster_connectors::http::Service::Sftp,
                fetch::sftp::fetch(&target),
                crate::metrics::downstream::sftp_ending,
            )
            .await?;
            Ok(fetched.bytes)
        }
        Source::HrApi => {
            let hr = tenant
                .spec
                .sources
                .hr_api
                .as_ref()
                .ok_or(FetchError::Settings("the Tenant has no hrAPI source"))?;
            let secret =
                super::secret::read(&feeds.client, &namespace, &hr.credentials_secret_ref.name)
                    .await?;
            let auth = match secret.optional("token") {
                Some(token) => fetch::hr_api::HrAuth::Bearer(token),
                None => fetch::hr_api::HrAuth::ClientCredentials {
                    client_id: secret.string("clientId")?,
                    client_secret: secret.string("clientSecret")?,
                    token_url: hr.token_url.clone(),
                },
            };
            fetch::hr_api::fetch(&hr.url, &auth, &feeds.endpoints, feeds.timeout).await
        }
    }
}

/// What a sync that read its source did.
#[derive(Debug)]
pub struct Applied {
    pub snapshot: Snapshot,
    pub plan: Plan,
    /// Writes the API server refused.
    pub failed: Vec<RowError>,
    /// The removals the guard holds, if it does.
    pub held: Option<Held>,
}

/// Reads `bytes` as the Tenant's source, plans, and applies unless `dry_run`.
pub async fn apply_bytes(
    client: &Client,
    tenant: &Tenant,
    source: Source,
    bytes: &[u8],
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Applied, SyncError> {
    let snapshot = read(source, tenant, bytes)?;
    let (plan, failed, held) =
        plan_and_apply(client, tenant, source, &snapshot, dry_run, now).await?;
    Ok(Applied {
        snapshot,
        plan,
        failed,
        held,
    })
}

/// A scheduled sync: fetch, read, plan and apply, record, announce. Returns the
/// status entry it recorded.
pub async fn run(feeds: &Feeds, tenant: &Tenant, source: Source) -> SourceSync {
    let result = async {
        let bytes = fetch(feeds, tenant, source).await?;
        apply_bytes(
            &feeds.client,
            tenant,
            source,
            &bytes,
            false,
            feeds.clock.now(),
        )
        .await
    }
    .await;
    conclude(feeds, tenant, source, result).await.sync
}

/// Records a sync's result in the Tenant's status and announces it in Events and the
/// log.
pub async fn conclude(
    feeds: &Feeds,
    tenant: &Tenant,
    source: Source,
    result: Result<Applied, SyncError>,
) -> Outcome {
    let now = feeds.clock.now();
    let (outcome, failure) = match result {
        Ok(Applied {
            snapshot,
            plan,
            failed,
            held,
        }) => {
            let sync = sync_status(source, &snapshot, &plan, &failed, false, held.as_ref(), now);
            let mut rejected = snapshot.errors.clone();
            rejected.extend(failed);
            rejected.sort();
            (
                Outcome {
                    sync,
                    rejected,
                    notes: plan.notes.clone(),
                    plan: Some(plan),
                    held,
                },
                None,
            )
        }
        Err(error) => (
            Outcome {
                sync: failed_status(source, &error, now),
                rejected: Vec::new(),
                notes: Vec::new(),
                plan: None,
                held: None,
            },
            Some(error),
        ),
    };
    let s = &outcome.sync;
    info!(
        namespace = tenant.namespace(),
        tenant = tenant.name_any(),
        source = source.as_str(),
        result = ?s.result,
        rows = s.rows_read,
        created = s.created,
        updated = s.updated,
        removed = s.removed,
        rejected = s.rejected,
        reason = failure.as_ref().map(|f| f.reason()),
        "source synced"
    );
    if let Err(error) = record(&feeds.client, tenant, source, &outcome.sync).await {
        warn!(%error, source = source.as_str(), "cannot record the source sync in the Tenant's status");
    }
    announce(&feeds.recorder, tenant, source, &outcome, failure.as_ref()).await;
    outcome
}

impl Source {
    pub fn record_source(self) -> RecordSource {
        match self {
            Source::Csv => RecordSource::Csv,
            Source::HrApi => RecordSource::HrApi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_reports_pack_into_a_few_events() {
        let rows: Vec<RowError> = (1..=500)
            .map(|i| RowError::new(i, "Email Address", "not an email address"))
            .collect();
        let notes = pack(&rows, 3);
        assert_eq!(notes.len(), 3);
        assert!(notes.iter().all(|n| n.len() <= 1100));
        assert!(
            notes[0].starts_with("row 1, column \"Email Address\": not an email address; row 2")
        );
        assert!(notes[2].ends_with("more"), "{}", notes[2]);
        assert_eq!(pack(&rows[..2], 3).len(), 1);
        assert!(pack(&[], 3).is_empty());
    }
}
