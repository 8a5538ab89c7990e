//! The HR feeds' shell (docs/feeds.md): fetch a Tenant's CSV file over SFTP or its HR
//! JSON report, hand the bytes to the pure `roster_feeds` core, apply what it plans by
//! server-side apply under the source's own field manager, and report the sync in the
//! Tenant's `status.sourceSyncs` and in Events.
//!
//! - [`fetch`]: SFTP (pinned host key) and the HR report over HTTP;
//! - [`secret`]: the source's Secret, under the credentials opt-in rule;
//! - [`sync`]: one sync, the path the scheduler and `roster import csv` share;
//! - [`import`]: `roster import csv`;
//! - [`runner`]: the per-scope scheduler, which computes each source's next due time
//!   from the last sync persisted in status (a restart neither repeats nor skips one).

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
