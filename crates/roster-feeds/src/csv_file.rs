//! The HR CSV file (RFC 4180, read by the `csv` crate): a UTF-8 byte-order mark from
//! spreadsheet exports, CRLF or LF, quoted fields with commas and line breaks. Headers
//! are matched after folding ([`fold_header`]) against the Tenant's `columns`, else the
//! documents' names. Every row is validated on its own.

use std::collections::BTreeMap;

use roster_api::tenant::{ColumnMapping, ProfileField};

use crate::limits::{MAX_COLUMNS, MAX_FILE_BYTES, MAX_ROW_BYTES, MAX_ROWS};
use crate::record::{DateFormat, FIELDS, RawRow, default_headers, field_label, fold_header};
use crate::{FeedError, Snapshot};

/// How a Tenant's file is read: its header mapping and date format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvFormat {
    pub columns: Vec<ColumnMapping>,
    pub dates: DateFormat,
}

impl Default for CsvFormat {
    fn default() -> Self {
        Self {
            columns: Vec::new(),
            dates: DateFormat::iso(),
        }
    }
}

/// The header labels that name `field` under `format` (folded).
fn labels(format: &CsvFormat, field: ProfileField) -> Vec<String> {
    match format.columns.iter().find(|c| c.field == field) {
        Some(mapping) => vec![fold_header(&mapping.header)],
        None => default_headers(field)
            .iter()
            .map(|h| h.to_string())
            .collect(),
    }
}

/// Reads a whole file. A file-level problem (no header, a required column missing,
/// two columns for one field, no rows at all, a limit of [`crate::limits`] passed)
/// refuses the file: nothing applies and nobody is treated as removed. Row problems
/// (a row longer than [`MAX_ROW_BYTES`] among them) reject only their row.
pub fn read_csv(bytes: &[u8], format: &CsvFormat) -> Result<Snapshot, FeedError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FeedError::TooLarge {
            what: "file",
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| FeedError::Unreadable(csv_reason(&e)))?
        .clone();
    if header.is_empty() {
        return Err(FeedError::Empty);
    }
    if header.len() > MAX_COLUMNS {
        return Err(FeedError::TooManyColumns { limit: MAX_COLUMNS });
    }
    // The labels each field answers to, folded once (not once per column).
    let field_labels: Vec<(ProfileField, Vec<String>)> =
        FIELDS.iter().map(|&f| (f, labels(format, f))).collect();
    // Column index → (field, the header as written, for reports).
    let mut columns: BTreeMap<usize, (ProfileField, String)> = BTreeMap::new();
    for (index, raw) in header.iter().enumerate() {
        let Ok(text) = std::str::from_utf8(raw) else {
            continue;
        };
        let folded = fold_header(text);
        for (field, names) in &field_labels {
            let field = *field;
            if names.contains(&folded) {
                if let Some((_, other)) = columns.values().find(|(f, _)| *f == field) {
                    return Err(FeedError::DuplicateColumn {
                        field: field_label(field).into(),
                        first: other.clone(),
                        second: text.trim().to_string(),
                    });
                }
                columns.insert(index, (field, text.trim().to_string()));
            }
        }
    }
    for field in [
        ProfileField::EmployeeId,
        ProfileField::FullName,
        ProfileField::Email,
    ] {
        if !columns.values().any(|(f, _)| *f == field) {
            return Err(FeedError::MissingColumn {
                field: field_label(field).into(),
                expected: labels(format, field).join("\" or \""),
            });
        }
    }
    let mut snapshot = Snapshot::default();
    let mut record = csv::ByteRecord::new();
    let mut lines = Lines { offset: 0, line: 1 };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                // An I/O-level error (the reader is over bytes, so this is a
                // malformed stream): the rest cannot be trusted.
                return Err(FeedError::Unreadable(csv_reason(&error)));
            }
        }
        // The line the record starts on, counted in the bytes (the reader's own line
        // count is off by one after a CRLF header).
        let mut start = record.position().map_or(0, |p| p.byte() as usize);
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        lines.advance(bytes, start);
        let row = lines.line;
        snapshot.rows_read += 1;
        if snapshot.rows_read > MAX_ROWS {
            return Err(FeedError::TooManyRows {
                what: "file",
                limit: MAX_ROWS,
            });
        }
        let mut raw = RawRow::new(row);
        let mut problems = Vec::new();
        let too_long = record.as_slice().len() > MAX_ROW_BYTES;
        if too_long {
            // Refused on its own; only its employee ID is read, so that the person
            // is not taken as removed from the feed.
            problems.push(crate::RowError::new(
                row,
                "",
                format!("is longer than {MAX_ROW_BYTES} bytes"),
            ));
        }
        if record.len() != header.len() {
            problems.push(crate::RowError::new(
                row,
                "",
                format!(
                    "has {} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
        }
        for (index, (field, label)) in &columns {
            let Some(value) = record.get(*index) else {
                continue;
            };
            if too_long && *field != ProfileField::EmployeeId {
                continue;
            }
            match std::str::from_utf8(value) {
                Ok(text) => raw.set(*field, label, text),
                Err(_) => problems.push(crate::RowError::new(row, label, "not UTF-8 text")),
            }
        }
        snapshot.add(raw, problems, &format.dates);
    }
    snapshot.finish()
}

/// Line numbers by byte offset, counted incrementally (offsets only grow).
struct Lines {
    offset: usize,
    line: u64,
}

impl Lines {
    fn advance(&mut self, bytes: &[u8], to: usize) {
        let to = to.min(bytes.len());
        if to > self.offset {
            self.line += bytes[self.offset..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.offset = to;
        }
    }
}

/// A csv error's position and kind, without the data.
fn csv_reason(error: &csv::Error) -> String {
    let at = error
        .position()
        .map(|p| format!(" at line {}", p.line()))
        .unwrap_or_default();
    match error.kind() {
        csv::ErrorKind::Io(e) => format!("read error{at}: {}", e.kind()),
        csv::ErrorKind::Utf8 { .. } => format!("not UTF-8{at}"),
        csv::ErrorKind::UnequalLengths { .. } => format!("ragged rows{at}"),
        _ => format!("malformed CSV{at}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Manager;

    const HEADER: &str = "Employee ID,Full Name,Email Address,Hire Date,Termination Date,Department,Title,Location,Manager\u{2019}s Email,Active";

    fn read(body: &str) -> Snapshot {
        read_csv(body.as_bytes(), &CsvFormat::default()).unwrap()
    }

    #[test]
    fn bom_crlf_quoting_and_leading_zeros() {
        let file = format!(
            "\u{feff}{HEADER}\r\n00042,\"Example, Alex\",alex@example.com,2020-01-06,,Engineering,\"Engineer\r\nII\",Berlin,00007,true\r\n00007,Morgan Manager,morgan@example.com,,,,,,,\r\n"
        );
        let s = read(&file);
        assert_eq!(s.rows_read, 2);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let alex = &s.records[0];
        assert_eq!(alex.employee_id, "00042");
        assert_eq!(alex.full_name, "Example, Alex");
        assert_eq!(
            alex.title.as_deref(),
            Some("Engineer II"),
            "white space folded"
        );
        assert_eq!(alex.manager, Some(Manager::EmployeeId("00007".into())));
        assert_eq!(alex.row, 2);
        // The quoted line break makes the next row start on line 4.
        assert_eq!(s.records[1].row, 4);
    }

    #[test]
    fn headers_match_after_trimming_and_case_folding_and_mapping() {
        let s = read(" employee id ,FULL NAME,  email address\n1,A B,a@example.com\n");
        assert_eq!(s.records.len(), 1);
        let format = CsvFormat {
            columns: vec![ColumnMapping {
                field: ProfileField::EmployeeId,
                header: "Personnel Number".into(),
            }],
            ..Default::default()
        };
        let s = read_csv(
            b"PERSONNEL NUMBER,Full Name,Email\n0001,A B,a@example.com\n",
            &format,
        )
        .unwrap();
        assert_eq!(s.records[0].employee_id, "0001");
        // With the mapping, the default header no longer names the field.
        let refused = read_csv(b"Employee ID,Full Name,Email\n1,A,a@example.com\n", &format);
        assert!(matches!(refused, Err(FeedError::MissingColumn { .. })));
    }

    #[test]
    fn file_level_problems_refuse_the_file() {
        assert!(matches!(
            read_csv(b"Full Name,Email\nA,a@example.com\n", &CsvFormat::default()),
            Err(FeedError::MissingColumn { .. })
        ));
        assert!(matches!(
            read_csv(
                b"Employee ID,Full Name,Email,Email Address\n1,A,a@x.io,b@x.io\n",
                &CsvFormat::default()
            ),
            Err(FeedError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            read_csv(b"", &CsvFormat::default()),
            Err(FeedError::Empty)
        ));
        assert!(matches!(
            read_csv(format!("{HEADER}\r\n").as_bytes(), &CsvFormat::default()),
            Err(FeedError::NoRows)
        ));
    }

    #[test]
    fn bad_rows_are_reported_and_good_rows_still_read() {
        let file = format!(
            "{HEADER}\n\
             1,Good One,one@example.com,,,,,,,\n\
             2,Bad Date,two@example.com,2025-13-01,,,,,,\n\
             3,Bad Email,three-at-example.com,,,,,,,\n\
             4,Dup A,four@example.com,,,,,,,\n\
             4,Dup B,four.b@example.com,,,,,,,\n\
             5,Unknown Active,five@example.com,,,,,,,perhaps\n\
             6,Short Row\n\
             7,Good Two,seven@example.com,,,,,,,\n"
        );
        let s = read(&file);
        assert_eq!(s.rows_read, 8);
        let ids: Vec<&str> = s.records.iter().map(|r| r.employee_id.as_str()).collect();
        assert_eq!(ids, ["1", "7"]);
        let reported: Vec<(u64, &str)> = s
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                (3, "Hire Date"),
                (4, "Email Address"),
                (5, "Employee ID"),
                (6, "Employee ID"),
                (7, "Active"),
                (8, ""),
            ]
        );
        assert_eq!(s.rejected_rows(), 6);
        // Everyone a rejected row names is protected from removal.
        for id in ["2", "3", "4", "5", "6"] {
            assert!(s.rejected_ids.contains(id), "{id}");
        }
        for e in &s.errors {
            for leaked in ["three-at-example.com", "perhaps", "2025-13-01", "Dup"] {
                assert!(!e.to_string().contains(leaked), "{e}");
            }
        }
    }

    #[test]
    fn invalid_utf8_rejects_only_its_row() {
        let mut file = format!("{HEADER}\n1,A,a@example.com,,,,,,,\n2,").into_bytes();
        file.extend_from_slice(b"\xff\xfe,b@example.com,,,,,,,\n3,C,c@example.com,,,,,,,\n");
        let s = read_csv(&file, &CsvFormat::default()).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.errors[0].column, "Full Name");
        assert_eq!(s.errors[0].reason, "not UTF-8 text");
    }
}
