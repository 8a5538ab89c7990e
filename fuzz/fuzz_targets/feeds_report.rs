//! The HR JSON report mapper: any bytes as a report body through mapping rules with
//! concatenation, defaults and every transform.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roster_api::tenant::{AttributeMapping, ProfileField, Transform};
use roster_feeds::read_report;

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

fuzz_target!(|data: &[u8]| {
    let mappings = vec![
        rule("Employee_ID", ProfileField::EmployeeId, Transform::Trim),
        AttributeMapping {
            concat: vec!["Last_Name".into()],
            separator: Some(", ".into()),
            ..rule("First_Name", ProfileField::FullName, Transform::None)
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
            ..rule(
                "Cost_Center",
                ProfileField::Department,
                Transform::Uppercase,
            )
        },
        rule("Manager_ID", ProfileField::ManagerEmail, Transform::None),
        rule("Active", ProfileField::Active, Transform::Trim),
    ];
    if let Ok(s) = read_report(data, &mappings) {
        assert!(s.records.len() <= s.rows_read);
    }
});
