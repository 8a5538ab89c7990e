//! HR feeds, the pure part (docs/feeds.md): what a CSV file or an HR JSON report
//! says, validated row by row, and what that means for the tenant's DirectoryUsers.
//!
//! - [`csv_file`]: the CSV file (RFC 4180 by the `csv` crate) → [`Snapshot`];
//! - [`report`]: the Workday-style JSON report through the Tenant's attribute
//!   mapping rules → [`Snapshot`];
//! - [`record`]: one row's validation, and the [`RowError`] that reports a bad one
//!   (row, column, reason; never the value);
//! - [`plan`]: snapshot + existing users → the writes (only what changed), the people
//!   removed from the feed, managers resolved in a second pass;
//! - [`guard`]: the mass-deprovisioning guard's decision;
//! - [`schedule`]: when a source is due, from the last sync persisted in status;
//! - [`files`]: which file of a directory listing a glob `path` picks;
//! - [`limits`]: the bounds on file and report size, rows, columns and nesting.
//!
//! Architecture invariant: no I/O, no async, no clock. The operator fetches the file
//! or report, lists the users, calls these functions and applies what they return;
//! `now` is always an argument.

pub mod csv_file;
pub mod files;
pub mod guard;
pub mod limits;
pub mod plan;
pub mod record;
pub mod report;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};

pub use csv_file::{CsvFormat, read_csv};
pub use plan::{Change, Existing, Plan, Write, plan};
pub use record::{DateFormat, Manager, Record, RowError};
pub use report::read_report;

/// Why a whole file or report was refused: nothing of it applies and nobody is
/// treated as removed from the feed. Messages carry no values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the file is empty: no header row")]
    Empty,
    #[error(
        "the file has a header but no rows; nothing applied (a complete snapshot without anybody in it would remove everyone)"
    )]
    NoRows,
    #[error(
        "no column for {field}: expected a header \"{expected}\" (matched ignoring case and surrounding spaces), or map one in spec.sources.csv.columns"
    )]
    MissingColumn { field: String, expected: String },
    #[error(
        "two columns hold {field}: {first:?} and {second:?}; remove one or map the field in spec.sources.csv.columns"
    )]
    DuplicateColumn {
        field: String,
        first: String,
        second: String,
    },
    #[error("the file cannot be read as CSV: {0}")]
    Unreadable(String),
    #[error("not a report: {0}")]
    NotAReport(String),
    #[error("invalid source settings: {0}")]
    Settings(String),
    #[error(
        "the {what} is larger than the limit of {limit} bytes; nothing applied (split the export or filter it at the source)"
    )]
    TooLarge { what: &'static str, limit: usize },
    #[error(
        "the file has more than {limit} columns; nothing applied (export only the columns roster reads)"
    )]
    TooManyColumns { limit: usize },
    #[error("the {what} has more than {limit} rows; nothing applied")]
    TooManyRows { what: &'static str, limit: usize },
}

impl FeedError {
    /// A stable CamelCase reason for Events and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty | Self::NoRows => "EmptyFeed",
            Self::MissingColumn { .. } | Self::DuplicateColumn { .. } => "BadHeader",
            Self::Unreadable(_) | Self::NotAReport(_) => "Unreadable",
            Self::Settings(_) => "InvalidSettings",
            Self::TooLarge { .. } | Self::TooManyColumns { .. } | Self::TooManyRows { .. } => {
                "FeedTooLarge"
            }
        }
    }
}

/// What one file or report says: the valid records, and the rows it rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Data rows (or report entries) read.
    pub rows_read: usize,
    /// Valid, with unique employee IDs, in file order.
    pub records: Vec<Record>,
    /// One entry per problem, ordered by row.
    pub errors: Vec<RowError>,
    /// Employee IDs (as delivered, even when invalid) of rejected rows: those people
    /// are neither updated nor treated as removed from the feed.
    pub rejected_ids: BTreeSet<String>,
    /// Rows of each rejected employee ID, for the duplicate check.
    rejected_rows_by_id: BTreeMap<String, Vec<u64>>,
}

impl Snapshot {
    /// Adds one row: validated unless `problems` already rejects it.
    pub(crate) fn add(
        &mut self,
        raw: record::RawRow,
        mut problems: Vec<RowError>,
        dates: &DateFormat,
    ) {
        if problems.is_empty() {
            match record::validate(&raw, dates) {
                Ok(record) => {
                    self.records.push(record);
                    return;
                }
                Err(errors) => problems = errors,
            }
        }
        if let Some(id) = raw.employee_id() {
            self.rejected_ids.insert(id.to_string());
            self.rejected_rows_by_id
                .entry(id.to_string())
                .or_default()
                .push(raw.row);
        }
        self.errors.extend(problems);
    }

    /// Refuses every row of an employee ID that occurs more than once (which of them
    /// is right cannot be known), then orders the report by row.
    pub(crate) fn finish(mut self) -> Result<Self, FeedError> {
        if self.rows_read == 0 {
            return Err(FeedError::NoRows);
        }
        let mut rows: BTreeMap<String, Vec<u64>> = self.rejected_rows_by_id.clone();
        for r in &self.records {
            rows.entry(r.employee_id.clone()).or_default().push(r.row);
        }
        let duplicated: BTreeMap<String, Vec<u64>> = rows
            .into_iter()
            .filter(|(_, rows)| rows.len() > 1)
            .collect();
        if !duplicated.is_empty() {
            let (dups, keep): (Vec<Record>, Vec<Record>) = std::mem::take(&mut self.records)
                .into_iter()
                .partition(|r| duplicated.contains_key(&r.employee_id));
            self.records = keep;
            for r in dups {
                let others: Vec<String> = duplicated[&r.employee_id]
                    .iter()
                    .filter(|row| **row != r.row)
                    .map(u64::to_string)
                    .collect();
                self.errors.push(RowError::new(
                    r.row,
                    record::field_label(roster_api::tenant::ProfileField::EmployeeId),
                    format!(
                        "duplicate employee ID (also on row {}); no row of it applied",
                        others.join(", ")
                    ),
                ));
                self.rejected_ids.insert(r.employee_id);
            }
        }
        self.errors.sort_by_key(|e| e.row);
        Ok(self)
    }

    /// How many rows were rejected (a row with several problems counts once).
    pub fn rejected_rows(&self) -> usize {
        self.errors
            .iter()
            .map(|e| e.row)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

#[cfg(test)]
mod hostile_input;
