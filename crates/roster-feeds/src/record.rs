//! One person as a feed delivers them: the raw values of a row (or report entry), and
//! the validated [`Record`] they become, or the [`RowError`]s that say why not.
//!
//! Every row is validated on its own, and every problem in it is reported: row number,
//! column and reason, never the value (a value is personal data, and an error message
//! ends up in status, Events and logs).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use roster_api::tenant::ProfileField;

/// A problem with one row: where it is and what is wrong, never the value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowError {
    /// Line of the file where the row starts (the header is row 1), or the report
    /// entry's position from 1.
    pub row: u64,
    /// The header (or report field) at fault; empty when the whole row is.
    pub column: String,
    /// What is wrong, e.g. "not an email address".
    pub reason: String,
}

impl RowError {
    pub fn new(row: u64, column: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            row,
            column: column.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "row {}: {}", self.row, self.reason)
        } else {
            write!(
                f,
                "row {}, column {:?}: {}",
                self.row, self.column, self.reason
            )
        }
    }
}

/// Who the person's manager is, as the feed names them. An employee ID is resolved
/// to the manager's email in the plan's second pass (the manager may come later in
/// the file, or only exist in the cluster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manager {
    Email(String),
    EmployeeId(String),
}

/// A validated person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where it came from (for reports about it).
    pub row: u64,
    pub employee_id: String,
    pub full_name: String,
    pub email: String,
    pub picture_url: Option<String>,
    pub hire_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub manager: Option<Manager>,
    /// `None` when the feed has no Active column (present means active).
    pub active: Option<bool>,
}

/// The raw values of one row: per profile field, the column label (for errors) and
/// the value as delivered (already trimmed; empty values are absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRow {
    pub row: u64,
    pub fields: BTreeMap<ProfileField, (String, String)>,
}

impl RawRow {
    pub fn new(row: u64) -> Self {
        Self {
            row,
            fields: BTreeMap::new(),
        }
    }

    /// Sets a field unless the value is blank.
    pub fn set(&mut self, field: ProfileField, column: &str, value: &str) {
        let value = value.trim();
        if !value.is_empty() {
            self.fields
                .insert(field, (column.to_string(), value.to_string()));
        }
    }

    /// The employee ID as delivered, even when it is not valid: a rejected row still
    /// protects its person from being treated as removed from the feed.
    pub fn employee_id(&self) -> Option<&str> {
        self.fields
            .get(&ProfileField::EmployeeId)
            .map(|(_, v)| v.as_str())
    }
}

/// A date format as configured (`dateFormat`, strftime style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateFormat(String);

/// A date format that cannot tell dates apart.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateFormatError {
    #[error(
        "dateFormat must contain a four-digit year (%Y), a month (%m, %b or %B) and a day (%d or %e)"
    )]
    Incomplete,
    #[error("dateFormat uses a two-digit year (%y), which is ambiguous: use %Y")]
    TwoDigitYear,
    #[error("dateFormat may only contain date fields (%Y, %m, %b, %B, %d, %e) and literal text")]
    NotADate,
}

impl DateFormat {
    /// Checks that the format names exactly one date: a four-digit year, a month and
    /// a day, and nothing else that varies.
    pub fn new(format: &str) -> Result<Self, DateFormatError> {
        let mut has = (false, false, false);
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                continue;
            }
            match chars.next() {
                Some('Y') => has.0 = true,
                Some('m' | 'b' | 'B' | 'h') => has.1 = true,
                Some('d' | 'e') => has.2 = true,
                Some('y') => return Err(DateFormatError::TwoDigitYear),
                Some('%') => {}
                _ => return Err(DateFormatError::NotADate),
            }
        }
        if has != (true, true, true) {
            return Err(DateFormatError::Incomplete);
        }
        Ok(Self(format.to_string()))
    }

    /// ISO 8601 (`%Y-%m-%d`), the documents' format and the HR report's.
    pub fn iso() -> Self {
        Self("%Y-%m-%d".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The date, when the value is written exactly in this format: `2025-3-7` or
    /// `07/03/25` are refused for `%Y-%m-%d` rather than guessed at.
    pub fn parse(&self, value: &str) -> Option<NaiveDate> {
        let date = NaiveDate::parse_from_str(value, &self.0).ok()?;
        (date.format(&self.0).to_string() == value).then_some(date)
    }
}

/// The header labels the documents use for each field (the platform's "Employee
/// Data" table), matched after folding (see [`fold_header`]).
pub fn default_headers(field: ProfileField) -> &'static [&'static str] {
    match field {
        ProfileField::EmployeeId => &["employee id"],
        ProfileField::FullName => &["full name"],
        ProfileField::Email => &["email address", "email"],
        ProfileField::PictureUrl => &["picture url"],
        ProfileField::HireDate => &["hire date"],
        ProfileField::TerminationDate => &["termination date"],
        ProfileField::Department => &["department"],
        ProfileField::Title => &["title"],
        ProfileField::Location => &["location"],
        ProfileField::ManagerEmail => &["manager's email", "manager email"],
        ProfileField::Active => &["active"],
        // Pushed groups come from SCIM; no feed column fills them.
        ProfileField::Groups => &[],
    }
}

/// Every profile field, in the order the documents list them.
pub const FIELDS: [ProfileField; 11] = [
    ProfileField::FullName,
    ProfileField::Email,
    ProfileField::PictureUrl,
    ProfileField::EmployeeId,
    ProfileField::HireDate,
    ProfileField::TerminationDate,
    ProfileField::Department,
    ProfileField::Title,
    ProfileField::Location,
    ProfileField::ManagerEmail,
    ProfileField::Active,
];

/// A header as it is compared: trimmed, case-folded, curly apostrophes and quotes
/// made straight, runs of white space made one space.
pub fn fold_header(header: &str) -> String {
    let straight: String = header
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' | '\u{2032}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        })
        .collect();
    straight
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether `id` is a valid employee ID (the CRD's rule: letters, digits, `.`, `_`
/// and `-`, starting with a letter or digit, up to 64 characters).
pub fn valid_employee_id(id: &str) -> bool {
    id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Whether `email` is an address (the CRD's rule `^[^@ ]+@[^@ ]+[.][^@ ]+$`, 3 to
/// 254 characters, no white space or control characters).
pub fn valid_email(email: &str) -> bool {
    if !(3..=254).contains(&email.len())
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    if local.is_empty() || domain.contains('@') {
        return false;
    }
    // The domain has a dot with something on both sides.
    domain
        .char_indices()
        .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
}

/// `true`/`false` as HR systems write them.
fn parse_active(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "active" => Some(true),
        "false" | "no" | "n" | "0" | "inactive" | "terminated" => Some(false),
        _ => None,
    }
}

/// Validates one row on its own: every field is checked and every problem reported.
pub fn validate(raw: &RawRow, dates: &DateFormat) -> Result<Record, Vec<RowError>> {
    let mut errors = Vec::new();
    let row = raw.row;
    let get = |field: ProfileField| raw.fields.get(&field);
    let text = |field: ProfileField, max: usize, errors: &mut Vec<RowError>| {
        let (column, value) = get(field)?;
        if value.chars().count() > max {
            errors.push(RowError::new(
                row,
                column,
                format!("longer than {max} characters"),
            ));
            return None;
        }
        // Line breaks and tabs inside a quoted value become spaces; other control
        // characters are refused.
        let folded = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if folded.chars().any(char::is_control) {
            errors.push(RowError::new(row, column, "contains control characters"));
            return None;
        }
        Some(folded)
    };
    let employee_id = match get(ProfileField::EmployeeId) {
        None => {
            errors.push(RowError::new(
                row,
                header_name(raw, ProfileField::EmployeeId),
                "missing (the employee ID is the mapping key)",
            ));
            None
        }
        Some((column, id)) if !valid_employee_id(id) => {
            errors.push(RowError::new(
                row,
                column,
                "not an employee ID (letters, digits, '.', '_' or '-', up to 64, starting with a letter or digit)",
            ));
            None
        }
        Some((_, id)) => Some(id.clone()),
    };
    let full_name = text(ProfileField::FullName, 256, &mut errors);
    if full_name.is_none() && get(ProfileField::FullName).is_none() {
        errors.push(RowError::new(
            row,
            header_name(raw, ProfileField::FullName),
            "missing (required)",
        ));
    }
    let email = match get(ProfileField::Email) {
        None => {
            errors.push(RowError::new(
                row,
                header_name(raw, ProfileField::Email),
                "missing (required)",
            ));
            None
        }
        Some((column, email)) if !valid_email(email) => {
            errors.push(RowError::new(row, column, "not an email address"));
            None
        }
        Some((_, email)) => Some(email.clone()),
    };
    let picture_url = match get(ProfileField::PictureUrl) {
        Some((column, url))
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.len() > 2048
                || url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            errors.push(RowError::new(row, column, "not an http(s) URL"));
            None
        }
        other => other.map(|(_, url)| url.clone()),
    };
    let date = |field: ProfileField, errors: &mut Vec<RowError>| {
        let (column, value) = get(field)?;
        let parsed = dates.parse(value);
        if parsed.is_none() {
            errors.push(RowError::new(
                row,
                column,
                format!("not a date in the format {}", dates.as_str()),
            ));
        }
        parsed
    };
    let hire_date = date(ProfileField::HireDate, &mut errors);
    let termination_date = date(ProfileField::TerminationDate, &mut errors);
    let department = text(ProfileField::Department, 256, &mut errors);
    let title = text(ProfileField::Title, 256, &mut errors);
    let location = text(ProfileField::Location, 256, &mut errors);
    let manager = match get(ProfileField::ManagerEmail) {
        None => None,
        Some((_, value)) if value.contains('@') && valid_email(value) => {
            Some(Manager::Email(value.clone()))
        }
        Some((_, value)) if !value.contains('@') && valid_employee_id(value) => {
            Some(Manager::EmployeeId(value.clone()))
        }
        Some((column, _)) => {
            errors.push(RowError::new(
                row,
                column,
                "neither an email address nor an employee ID",
            ));
            None
        }
    };
    let active = match get(ProfileField::Active) {
        None => None,
        Some((column, value)) => match parse_active(value) {
            Some(active) => Some(active),
            None => {
                errors.push(RowError::new(
                    row,
                    column,
                    "unknown value (expected true/false, yes/no, 1/0 or active/inactive)",
                ));
                None
            }
        },
    };
    match (employee_id, full_name, email) {
        (Some(employee_id), Some(full_name), Some(email)) if errors.is_empty() => Ok(Record {
            row,
            employee_id,
            full_name,
            email,
            picture_url,
            hire_date,
            termination_date,
            department,
            title,
            location,
            manager,
            active,
        }),
        _ => Err(errors),
    }
}

/// The label to report a missing field under.
fn header_name(raw: &RawRow, field: ProfileField) -> String {
    raw.fields
        .get(&field)
        .map(|(c, _)| c.clone())
        .unwrap_or_else(|| field_label(field).to_string())
}

/// The documents' label of a field (for reports about a missing one).
pub fn field_label(field: ProfileField) -> &'static str {
    match field {
        ProfileField::EmployeeId => "Employee ID",
        ProfileField::FullName => "Full Name",
        ProfileField::Email => "Email Address",
        ProfileField::PictureUrl => "Picture URL",
        ProfileField::HireDate => "Hire Date",
        ProfileField::TerminationDate => "Termination Date",
        ProfileField::Department => "Department",
        ProfileField::Title => "Title",
        ProfileField::Location => "Location",
        ProfileField::ManagerEmail => "Manager's Email",
        ProfileField::Active => "Active",
        ProfileField::Groups => "Groups",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(fields: &[(ProfileField, &str)]) -> RawRow {
        let mut raw = RawRow::new(7);
        for (field, value) in fields {
            raw.set(*field, field_label(*field), value);
        }
        raw
    }

    fn base() -> Vec<(ProfileField, &'static str)> {
        vec![
            (ProfileField::EmployeeId, "00042"),
            (ProfileField::FullName, "Alex Example"),
            (ProfileField::Email, "alex@example.com"),
        ]
    }

    /// (what, extra fields, expected errors as (column, reason start)).
    #[test]
    fn each_field_is_checked_and_reported_without_its_value() {
        type Case<'a> = (
            &'a str,
            Vec<(ProfileField, &'a str)>,
            Vec<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            ("valid", vec![], vec![]),
            (
                "bad email",
                vec![(ProfileField::Email, "alex.example.com")],
                vec![("Email Address", "not an email address")],
            ),
            (
                "email with a space",
                vec![(ProfileField::Email, "alex @example.com")],
                vec![("Email Address", "not an email address")],
            ),
            (
                "bad date",
                vec![(ProfileField::HireDate, "2025-02-30")],
                vec![("Hire Date", "not a date in the format %Y-%m-%d")],
            ),
            (
                "ambiguous date",
                vec![(ProfileField::TerminationDate, "03/04/2025")],
                vec![("Termination Date", "not a date")],
            ),
            (
                "unpadded date",
                vec![(ProfileField::HireDate, "2025-3-4")],
                vec![("Hire Date", "not a date")],
            ),
            (
                "unknown active value",
                vec![(ProfileField::Active, "maybe")],
                vec![("Active", "unknown value")],
            ),
            (
                "bad employee ID",
                vec![(ProfileField::EmployeeId, "42 7")],
                vec![("Employee ID", "not an employee ID")],
            ),
            (
                "missing email",
                vec![(ProfileField::Email, "  ")],
                vec![("Email Address", "missing")],
            ),
            (
                "two problems",
                vec![
                    (ProfileField::Email, "nope"),
                    (ProfileField::PictureUrl, "ftp://x/y.png"),
                ],
                vec![
                    ("Email Address", "not an email address"),
                    ("Picture URL", "not an http(s) URL"),
                ],
            ),
            (
                "bad manager",
                vec![(ProfileField::ManagerEmail, "boss@@example")],
                vec![("Manager's Email", "neither")],
            ),
        ];
        for (what, extra, expected) in cases {
            let mut fields = base();
            fields.retain(|(f, _)| !extra.iter().any(|(e, _)| e == f));
            fields.extend(extra.iter().cloned());
            let result = validate(&raw(&fields), &DateFormat::iso());
            let errors = result.err().unwrap_or_default();
            assert_eq!(errors.len(), expected.len(), "{what}: {errors:?}");
            for (error, (column, reason)) in errors.iter().zip(&expected) {
                assert_eq!(error.row, 7, "{what}");
                assert_eq!(error.column, *column, "{what}");
                assert!(error.reason.starts_with(reason), "{what}: {error}");
                for (_, value) in &extra {
                    if !value.trim().is_empty() {
                        assert!(!error.to_string().contains(value), "{what}: leaks {value}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_valid_row_keeps_leading_zeros_and_reads_dates_and_managers() {
        let mut fields = base();
        fields.extend([
            (ProfileField::HireDate, "2020-01-06"),
            (ProfileField::ManagerEmail, "00007"),
            (ProfileField::Active, "Yes"),
        ]);
        let record = validate(&raw(&fields), &DateFormat::iso()).unwrap();
        assert_eq!(record.employee_id, "00042");
        assert_eq!(record.hire_date, NaiveDate::from_ymd_opt(2020, 1, 6));
        assert_eq!(record.manager, Some(Manager::EmployeeId("00007".into())));
        assert_eq!(record.active, Some(true));
    }

    #[test]
    fn date_formats_must_name_one_date() {
        assert!(DateFormat::new("%Y-%m-%d").is_ok());
        assert!(DateFormat::new("%d/%m/%Y").is_ok());
        assert_eq!(
            DateFormat::new("%d/%m/%y"),
            Err(DateFormatError::TwoDigitYear)
        );
        assert_eq!(DateFormat::new("%Y-%m"), Err(DateFormatError::Incomplete));
        assert_eq!(
            DateFormat::new("%Y-%m-%d %H:%M"),
            Err(DateFormatError::NotADate)
        );
        let dmy = DateFormat::new("%d/%m/%Y").unwrap();
        assert_eq!(dmy.parse("03/04/2025"), NaiveDate::from_ymd_opt(2025, 4, 3));
        assert_eq!(dmy.parse("3/4/2025"), None, "not exactly the format");
        assert_eq!(dmy.parse("2025-04-03"), None);
    }

    #[test]
    fn headers_fold_case_space_and_curly_apostrophes() {
        assert_eq!(
            fold_header("  Manager\u{2019}s   EMAIL "),
            "manager's email"
        );
        assert_eq!(fold_header("Employee ID"), "employee id");
    }
}
