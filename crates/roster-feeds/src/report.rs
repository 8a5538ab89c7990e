//! The HR JSON report (Workday-report style): `{"Report_Entry": [{…}, …]}`, whose
//! keys are the report's aliases and whose empty fields are omitted. Each entry goes
//! through the Tenant's attribute mapping rules (source field(s) → profile field,
//! with concatenation, a default and a transform) and is then validated like a CSV
//! row. The report is keyed by the field mapped to `employeeID`.

use roster_api::tenant::{AttributeMapping, ProfileField, Transform};
use serde_json::Value;

use crate::limits::{MAX_REPORT_BYTES, MAX_REPORT_DEPTH, MAX_ROWS, json_depth};
use crate::record::{DateFormat, RawRow};
use crate::{FeedError, RowError, Snapshot};

/// Reads a report body through `mappings`.
pub fn read_report(body: &[u8], mappings: &[AttributeMapping]) -> Result<Snapshot, FeedError> {
    if mappings
        .iter()
        .filter(|m| m.to == ProfileField::EmployeeId)
        .count()
        != 1
    {
        return Err(FeedError::Settings(
            "hrAPI.mappings must map exactly one report field to employeeID".into(),
        ));
    }
    if body.len() > MAX_REPORT_BYTES {
        return Err(FeedError::TooLarge {
            what: "report",
            limit: MAX_REPORT_BYTES,
        });
    }
    if json_depth(body) > MAX_REPORT_DEPTH {
        return Err(FeedError::NotAReport(format!(
            "arrays and objects nested deeper than {MAX_REPORT_DEPTH} levels"
        )));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        FeedError::NotAReport(format!(
            "not JSON ({:?} at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let entries = value
        .get("Report_Entry")
        .and_then(Value::as_array)
        .ok_or_else(|| FeedError::NotAReport("no \"Report_Entry\" array".into()))?;
    if entries.len() > MAX_ROWS {
        return Err(FeedError::TooManyRows {
            what: "report",
            limit: MAX_ROWS,
        });
    }
    let dates = DateFormat::iso();
    let mut snapshot = Snapshot::default();
    for (index, entry) in entries.iter().enumerate() {
        let row = index as u64 + 1;
        snapshot.rows_read += 1;
        let Some(entry) = entry.as_object() else {
            snapshot.add(
                RawRow::new(row),
                vec![RowError::new(row, "", "not an object")],
                &dates,
            );
            continue;
        };
        let mut raw = RawRow::new(row);
        let mut problems = Vec::new();
        for mapping in mappings {
            if raw.fields.contains_key(&mapping.to) {
                // An earlier rule filled it: later rules for the same field are fallbacks.
                continue;
            }
            match mapped_value(entry, mapping) {
                Ok(Some(value)) => raw.set(mapping.to, &mapping.from, &value),
                Ok(None) => {}
                Err(reason) => problems.push(RowError::new(row, &mapping.from, reason)),
            }
        }
        snapshot.add(raw, problems, &dates);
    }
    snapshot.finish()
}

/// One rule's value for one entry: `from` and `concat` joined, else `default`, then
/// the transform. `None` when there is nothing.
pub fn mapped_value(
    entry: &serde_json::Map<String, Value>,
    mapping: &AttributeMapping,
) -> Result<Option<String>, &'static str> {
    let mut parts = Vec::new();
    for key in std::iter::once(&mapping.from).chain(&mapping.concat) {
        match entry.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => parts.push(s.trim().to_string()),
            // A number past 2^53 was rounded when it was read: its text would not be
            // what the report said (an employee ID losing digits).
            Some(Value::Number(n))
                if n.is_f64()
                    && n.as_f64()
                        .is_some_and(|f| f.abs() >= 9.007_199_254_740_992e15) =>
            {
                return Err("a number too large to keep exactly (send it as text)");
            }
            Some(Value::Number(n)) => parts.push(n.to_string()),
            Some(Value::Bool(b)) => parts.push(b.to_string()),
            Some(Value::Array(_) | Value::Object(_)) => {
                return Err("not a single value (an array or object)");
            }
        }
    }
    parts.retain(|p| !p.is_empty());
    let joined = parts.join(mapping.separator.as_deref().unwrap_or(" "));
    let value = if joined.is_empty() {
        match &mapping.default {
            Some(default) if !default.is_empty() => default.clone(),
            _ => return Ok(None),
        }
    } else {
        joined
    };
    Ok(Some(transform(&value, mapping.transform)))
}

/// Applies a transform. `DateOnly` keeps the date of `2025-03-17-08:00`,
/// `2025-03-17+02:00`, `2025-03-17Z` or `2025-03-17T09:00:00-08:00`.
pub fn transform(value: &str, transform: Transform) -> String {
    match transform {
        Transform::None => value.to_string(),
        Transform::Trim => value.trim().to_string(),
        Transform::Lowercase => value.trim().to_lowercase(),
        Transform::Uppercase => value.trim().to_uppercase(),
        Transform::DateOnly => {
            let value = value.trim();
            match value.get(..10) {
                Some(date)
                    if DateFormat::iso().parse(date).is_some()
                        && value[10..]
                            .chars()
                            .next()
                            .is_none_or(|c| matches!(c, '-' | '+' | 'Z' | 'T')) =>
                {
                    date.to_string()
                }
                _ => value.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn rule(from: &str, to: ProfileField, transform: Transform) -> AttributeMapping {
        AttributeMapping {
            from: from.into(),
            concat: vec![],
            separator: None,
            to,
            transform,
            default: None,
        }
    }

    fn mappings() -> Vec<AttributeMapping> {
        vec![
            rule("Employee_ID", ProfileField::EmployeeId, Transform::Trim),
            AttributeMapping {
                concat: vec!["Last_Name".into()],
                ..rule("First_Name", ProfileField::FullName, Transform::Trim)
            },
            rule("Work_Email", ProfileField::Email, Transform::Lowercase),
            rule("Hire_Date", ProfileField::HireDate, Transform::DateOnly),
            rule(
                "Termination_Date",
                ProfileField::TerminationDate,
                Transform::DateOnly,
            ),
            AttributeMapping {
                default: Some("Unassigned".into()),
                ..rule("Cost_Center", ProfileField::Department, Transform::None)
            },
            rule("Manager_ID", ProfileField::ManagerEmail, Transform::None),
        ]
    }

    #[test]
    fn entries_are_mapped_with_concatenation_defaults_and_transforms() {
        let body = json!({"Report_Entry": [
            {"Employee_ID": " 00042 ", "First_Name": "Alex", "Last_Name": "Example",
             "Work_Email": "Alex.Example@Example.COM", "Hire_Date": "2025-03-17-08:00",
             "Manager_ID": "00007"},
            {"Employee_ID": "00007", "First_Name": "Morgan", "Work_Email": "morgan@example.com",
             "Cost_Center": "CC-1", "Termination_Date": "2026-01-31+01:00"}
        ]});
        let s = read_report(body.to_string().as_bytes(), &mappings()).unwrap();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let alex = &s.records[0];
        assert_eq!(alex.employee_id, "00042");
        assert_eq!(alex.full_name, "Alex Example");
        assert_eq!(alex.email, "alex.example@example.com");
        assert_eq!(alex.hire_date, NaiveDate::from_ymd_opt(2025, 3, 17));
        assert_eq!(alex.department.as_deref(), Some("Unassigned"));
        let morgan = &s.records[1];
        assert_eq!(morgan.full_name, "Morgan", "an absent part is skipped");
        assert_eq!(morgan.department.as_deref(), Some("CC-1"));
        assert_eq!(
            morgan.termination_date,
            NaiveDate::from_ymd_opt(2026, 1, 31)
        );
    }

    #[test]
    fn bad_entries_are_reported_by_position_and_field() {
        let body = json!({"Report_Entry": [
            {"Employee_ID": "1", "First_Name": "A", "Work_Email": "a@example.com"},
            {"Employee_ID": "2", "First_Name": "B", "Work_Email": "not-an-email"},
            "nonsense",
            {"Employee_ID": "4", "First_Name": ["x"], "Work_Email": "d@example.com"},
            {"Employee_ID": "5", "First_Name": "E", "Work_Email": "e@example.com", "Hire_Date": "17.03.2025"}
        ]});
        let s = read_report(body.to_string().as_bytes(), &mappings()).unwrap();
        assert_eq!(s.records.len(), 1);
        let reported: Vec<(u64, &str)> = s
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                (2, "Work_Email"),
                (3, ""),
                (4, "First_Name"),
                (5, "Hire_Date")
            ]
        );
        assert!(s.rejected_ids.contains("2") && s.rejected_ids.contains("5"));
    }

    #[test]
    fn what_is_not_a_report_is_refused_whole() {
        for body in [&b"<html>"[..], br#"{"Report": []}"#, br#"[1,2]"#] {
            assert!(matches!(
                read_report(body, &mappings()),
                Err(FeedError::NotAReport(_))
            ));
        }
        assert!(matches!(
            read_report(br#"{"Report_Entry": []}"#, &mappings()),
            Err(FeedError::NoRows)
        ));
    }

    #[test]
    fn transforms() {
        let cases = [
            ("  Hi  ", Transform::Trim, "Hi"),
            ("A@B.C", Transform::Lowercase, "a@b.c"),
            ("de", Transform::Uppercase, "DE"),
            ("2025-03-17-08:00", Transform::DateOnly, "2025-03-17"),
            ("2025-03-17+02:00", Transform::DateOnly, "2025-03-17"),
            ("2025-03-17T09:00:00Z", Transform::DateOnly, "2025-03-17"),
            ("2025-03-17", Transform::DateOnly, "2025-03-17"),
            ("2025-03-1708", Transform::DateOnly, "2025-03-1708"),
            ("17.03.2025", Transform::DateOnly, "17.03.2025"),
        ];
        for (input, t, expected) in cases {
            assert_eq!(transform(input, t), expected, "{input} {t:?}");
        }
    }
}
