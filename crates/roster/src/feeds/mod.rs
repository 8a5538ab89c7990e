//! The HR feeds' shell (docs/feeds.md): fetch a Tenant's CSV file over SFTP or its HR
//! JSON report, hand the bytes to the pure `roster_feeds` core, apply what it plans by
//! server-side apply under the source's own field manager, and report the sync in the
//! Tenant's `status.sourceSyncs` and in Events.
//!
//! - [`fetch`]: SFTP (pinned host key) and the HR report over HTTP;
//! - [`secret`]: the source's Secret, under the credentials opt-in rule;
//! - [`sync`]: one sync, the path the scheduler and `roster import csv` share;
//! - [`import`]: `roster import csv`; [`approve`]: `roster approve`, for removals the
//!   mass-deprovisioning guard held;
//! - [`runner`]: the per-scope scheduler, which computes each source's next due time
//!   from the last sync persisted in status (a restart neither repeats nor skips one).

pub mod approve;
pub mod fetch;
pub mod import;
pub mod runner;
pub mod secret;
pub mod sync;

/// The field manager of the CSV source's writes (DirectoryUsers, its status entry).
pub const CSV_MANAGER: &str = "roster-csv";
/// The field manager of the HR API source's writes.
pub const HRAPI_MANAGER: &str = "roster-hrapi";

/// A people source that roster pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Csv,
    HrApi,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Csv, Source::HrApi];

    /// The status name (`CSV`, `HRAPI`), also a metric label.
    pub fn as_str(self) -> &'static str {
        self.record_source().as_str()
    }

    pub fn field_manager(self) -> &'static str {
        match self {
            Source::Csv => CSV_MANAGER,
            Source::HrApi => HRAPI_MANAGER,
        }
    }

    /// Event reasons start with this (`CsvSynced`, `HrApiRowsRejected`).
    pub fn event_prefix(self) -> &'static str {
        match self {
            Source::Csv => "Csv",
            Source::HrApi => "HrApi",
        }
    }
}

/// The Tenant's `SourcesSynced` condition, from the last sync of each pulled source:
/// (ok, reason, message). `None` when the Tenant pulls from no source.
pub fn sources_condition(tenant: &roster_api::Tenant) -> Option<(bool, &'static str, String)> {
    use roster_api::tenant::SyncResult;
    let configured: Vec<Source> = Source::ALL
        .into_iter()
        .filter(|s| match s {
            Source::Csv => tenant.spec.sources.csv.is_some(),
            Source::HrApi => tenant.spec.sources.hr_api.is_some(),
        })
        .collect();
    if configured.is_empty() {
        return None;
    }
    let mut problems = Vec::new();
    let mut reason = "Synced";
    for source in configured {
        match sync::last_entry(tenant, source) {
            None => {
                if reason == "Synced" {
                    reason = "NotSyncedYet";
                }
            }
            // Removals the guard holds are the Tenant's `RemovalGuard` condition's.
            Some(entry) if entry.result == SyncResult::Failed => {
                reason = "SyncFailed";
                problems.push(format!(
                    "{}: {}",
                    source.as_str(),
                    entry.message.as_deref().unwrap_or("failed")
                ));
            }
            Some(_) => {}
        }
    }
    Some((problems.is_empty(), reason, problems.join("; ")))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use roster_api::tenant::{SourceSync, SyncResult};
    use roster_api::{RecordSource, Tenant, TenantStatus};

    use super::*;

    fn entry(source: RecordSource, result: SyncResult, held: Option<i32>) -> SourceSync {
        SourceSync {
            source,
            completion_time: "2026-03-01T02:30:00Z".parse::<DateTime<Utc>>().unwrap(),
            result,
            created: 0,
            updated: 0,
            removed: 0,
            rejected: 0,
            rows_read: None,
            unchanged: None,
            message: Some("why".into()),
            held,
            rejected_rows: vec![],
        }
    }

    fn tenant(csv: bool, syncs: Vec<SourceSync>) -> Tenant {
        let mut spec: roster_api::TenantSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Acme",
            "policyRef": {"name": "standard"},
            "learningPlatform": {"endpoint": "https://lms.example.com",
                "credentialsSecretRef": {"name": "lms", "key": "token"}},
            "sources": {"csv": {"host": "sftp.example.com", "path": "/people.csv",
                "credentialsSecretRef": {"name": "sftp"}}}
        }))
        .unwrap();
        if !csv {
            spec.sources.csv = None;
        }
        let mut t = Tenant::new("acme", spec);
        t.status = Some(TenantStatus {
            source_syncs: syncs,
            ..Default::default()
        });
        t
    }

    #[test]
    fn the_sources_condition_follows_the_last_syncs() {
        assert_eq!(sources_condition(&tenant(false, vec![])), None);
        assert_eq!(
            sources_condition(&tenant(true, vec![])),
            Some((true, "NotSyncedYet", String::new()))
        );
        let ok = entry(RecordSource::Csv, SyncResult::PartiallySucceeded, None);
        assert_eq!(
            sources_condition(&tenant(true, vec![ok])),
            Some((true, "Synced", String::new()))
        );
        let held = entry(RecordSource::Csv, SyncResult::Succeeded, Some(6));
        assert_eq!(
            sources_condition(&tenant(true, vec![held])),
            Some((true, "Synced", String::new())),
            "held removals are the RemovalGuard condition's"
        );
        let failed = entry(RecordSource::Csv, SyncResult::Failed, None);
        assert_eq!(
            sources_condition(&tenant(true, vec![failed.clone()])),
            Some((false, "SyncFailed", "CSV: why".into()))
        );
        // The scheduler reads the same entry.
        let t = tenant(true, vec![failed]);
        let last = runner::last_sync(&t, Source::Csv).unwrap();
        assert!(last.failed);
        assert_eq!(
            runner::schedule(&t, Source::Csv),
            Some(roster_feeds::schedule::Schedule::Every(
                chrono::Duration::hours(24)
            ))
        );
        assert_eq!(runner::schedule(&t, Source::HrApi), None);
    }
}
