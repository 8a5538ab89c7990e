//! Property tests of what an HR file or report can hold: the readers answer with a
//! snapshot or a file-level refusal, never panic, and refuse the pathological cases
//! (a file past the size limit, a million columns, deep nesting, too many rows) at
//! a bounded cost, with an error that names the limit and no value. `fuzz/` runs the
//! same readers under libFuzzer.
use proptest::prelude::*;
use roster_api::tenant::{AttributeMapping, ProfileField, Transform};
use serde_json::{Value, json};

use crate::limits::{MAX_COLUMNS, MAX_FILE_BYTES, MAX_REPORT_DEPTH, MAX_ROW_BYTES, MAX_ROWS};
use crate::report::transform;
use crate::{CsvFormat, FeedError, Snapshot, read_csv, read_report};

const HEADER: &str = "Employee ID,Full Name,Email Address,Hire Date,Termination Date,Department,Title,Location,Manager's Email,Active";

/// What a reader returns is sane: errors name rows inside the file, never a value.
fn check(result: &Result<Snapshot, FeedError>, secret: &str) {
    match result {
        Ok(s) => {
            assert!(s.records.len() <= s.rows_read);
            for e in &s.errors {
                assert!(e.row >= 1);
                assert!(!secret.is_empty() && !e.to_string().contains(secret), "{e}");
            }
        }
        Err(e) => assert!(!e.to_string().contains(secret), "{e}"),
    }
}

fn cell() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"00042".to_vec()),
        Just(b"Alex Example".to_vec()),
        Just(b"alex@example.com".to_vec()),
        Just(b"2025-03-17".to_vec()),
        Just(b"2025-02-30".to_vec()),
        Just(b"true".to_vec()),
        Just(b"\"quoted, with a comma\"".to_vec()),
        Just(b"\"line\r\nbreak\"".to_vec()),
        Just(b"\"unterminated".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"99999999999999999999999999".to_vec()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn csv_body() -> impl Strategy<Value = Vec<u8>> {
    let row = prop::collection::vec(cell(), 0..14).prop_map(|cells| cells.join(&b","[..]));
    let sep = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec())
    ];
    (any::<bool>(), prop::collection::vec((row, sep), 0..12)).prop_map(|(header, rows)| {
        let mut out = if header {
            format!("{HEADER}\n").into_bytes()
        } else {
            Vec::new()
        };
        for (row, sep) in rows {
            out.extend(row);
            out.extend(sep);
        }
        out
    })
}

fn mappings() -> Vec<AttributeMapping> {
    let rule = |from: &str, to, transform| AttributeMapping {
        from: from.into(),
        concat: vec![],
        separator: None,
        to,
        transform,
        default: None,
    };
    vec![
        rule("Employee_ID", ProfileField::EmployeeId, Transform::Trim),
        AttributeMapping {
            concat: vec!["Last_Name".into()],
            ..rule("First_Name", ProfileField::FullName, Transform::Trim)
        },
        rule("Work_Email", ProfileField::Email, Transform::Lowercase),
        rule("Hire_Date", ProfileField::HireDate, Transform::DateOnly),
        rule(
            "Manager_ID",
            ProfileField::ManagerEmail,
            Transform::Uppercase,
        ),
        rule("Active", ProfileField::Active, Transform::None),
    ]
}

fn report_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::from),
        Just(Value::from("2025-03-17-08:00")),
        Just(Value::from("2025-03-1\u{e9}")),
        Just(Value::from("alex@example.com")),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
}

fn report_entry() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("Employee_ID".to_string()),
        Just("First_Name".to_string()),
        Just("Last_Name".to_string()),
        Just("Work_Email".to_string()),
        Just("Hire_Date".to_string()),
        Just("Manager_ID".to_string()),
        Just("Active".to_string()),
        "\\PC{0,6}",
    ];
    prop_oneof![
        prop::collection::vec((key, report_value()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        report_value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_csv_is_read_or_refused(body in csv_body()) {
        check(&read_csv(&body, &CsvFormat::default()), "alex@example.com");
    }

    #[test]
    fn any_bytes_are_read_or_refused_as_csv(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = read_csv(&body, &CsvFormat::default());
        let _ = read_report(&body, &mappings());
    }

    #[test]
    fn any_report_is_read_or_refused(entries in prop::collection::vec(report_entry(), 0..10)) {
        let body = json!({"Report_Entry": entries}).to_string();
        check(&read_report(body.as_bytes(), &mappings()), "alex@example.com");
    }

    #[test]
    fn any_text_transforms(text in "\\PC{0,24}") {
        for t in [Transform::None, Transform::Trim, Transform::Lowercase, Transform::Uppercase, Transform::DateOnly] {
            let _ = transform(&text, t);
        }
    }
}

#[test]
fn a_file_past_the_size_limit_is_refused_before_it_is_parsed() {
    // Zeroed pages: cheap to allocate, and read_csv must not look at them.
    let big = vec![0u8; MAX_FILE_BYTES + 1];
    let err = read_csv(&big, &CsvFormat::default()).unwrap_err();
    assert_eq!(
        err,
        FeedError::TooLarge {
            what: "file",
            limit: MAX_FILE_BYTES
        }
    );
    assert!(err.to_string().contains("33554432 bytes"), "{err}");
    assert_eq!(err.reason(), "FeedTooLarge");
    let big = vec![0u8; crate::limits::MAX_REPORT_BYTES + 1];
    let err = read_report(&big, &mappings()).unwrap_err();
    assert!(matches!(err, FeedError::TooLarge { what: "report", .. }));
}

#[test]
fn a_million_columns_are_refused() {
    let mut file = String::from("Employee ID,Full Name,Email Address");
    file.push_str(&",x".repeat(1_000_000));
    file.push_str("\n1,A,a@example.com\n");
    let err = read_csv(file.as_bytes(), &CsvFormat::default()).unwrap_err();
    assert_eq!(err, FeedError::TooManyColumns { limit: MAX_COLUMNS });
    // A data row of a million fields under a short header is one bad row.
    let mut file = format!("{HEADER}\n1,A,a@example.com");
    file.push_str(&",".repeat(1_000_000));
    file.push_str("\n2,B,b@example.com,,,,,,,\n");
    let s = read_csv(file.as_bytes(), &CsvFormat::default()).unwrap();
    assert_eq!(s.records.len(), 1);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert!(
        s.rejected_ids.contains("1"),
        "its person is not taken as gone"
    );
}

#[test]
fn a_row_past_the_row_limit_is_rejected_alone_and_protects_its_person() {
    let long = "x".repeat(MAX_ROW_BYTES);
    let file = format!("{HEADER}\n7,{long},a@example.com,,,,,,,\n8,B,b@example.com,,,,,,,\n");
    let s = read_csv(file.as_bytes(), &CsvFormat::default()).unwrap();
    assert_eq!(s.records.len(), 1);
    assert_eq!(s.errors[0].reason, "is longer than 65536 bytes");
    assert!(s.rejected_ids.contains("7"));
}

#[test]
fn too_many_rows_refuse_the_file_and_the_report() {
    let mut file = String::from("Employee ID,Full Name,Email\n");
    for i in 0..=MAX_ROWS {
        file.push_str(&format!("{i},A,a{i}@x.io\n"));
    }
    let err = read_csv(file.as_bytes(), &CsvFormat::default()).unwrap_err();
    assert_eq!(
        err,
        FeedError::TooManyRows {
            what: "file",
            limit: MAX_ROWS
        }
    );
    let entries = vec![json!({}); MAX_ROWS + 1];
    let body = json!({ "Report_Entry": entries }).to_string();
    let err = read_report(body.as_bytes(), &mappings()).unwrap_err();
    assert!(
        matches!(err, FeedError::TooManyRows { what: "report", .. }),
        "{err}"
    );
}

#[test]
fn deep_nesting_and_huge_numbers_in_a_report() {
    let deep = format!(
        "{{\"Report_Entry\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = read_report(deep.as_bytes(), &mappings()).unwrap_err();
    assert_eq!(
        err,
        FeedError::NotAReport(format!(
            "arrays and objects nested deeper than {MAX_REPORT_DEPTH} levels"
        ))
    );
    let body = r#"{"Report_Entry": [{"Employee_ID": 123456789012345678901234567890, "First_Name": "A", "Work_Email": "a@example.com"},
        {"Employee_ID": "2", "First_Name": 1e308, "Work_Email": "b@example.com"}]}"#;
    let s = read_report(body.as_bytes(), &mappings()).unwrap();
    assert_eq!(s.rows_read, 2);
    // Regression: the huge ID was taken as "1.2345678901234568e29".
    assert_eq!(s.errors[0].row, 1);
    assert_eq!(
        s.errors[0].reason,
        "a number too large to keep exactly (send it as text)"
    );
    let err = read_report(
        br#"{"Report_Entry": [{"Employee_ID": 1e999}]}"#,
        &mappings(),
    )
    .unwrap_err();
    assert!(matches!(err, FeedError::NotAReport(_)), "{err}");
}
