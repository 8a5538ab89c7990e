//! The HR CSV reader: any bytes as a file, with the default headers and with a
//! column mapping and a day-first date format.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roster_api::tenant::{ColumnMapping, ProfileField};
use roster_feeds::{CsvFormat, DateFormat, read_csv};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = read_csv(data, &CsvFormat::default()) {
        assert!(s.records.len() <= s.rows_read);
    }
    let format = CsvFormat {
        columns: vec![ColumnMapping {
            field: ProfileField::EmployeeId,
            header: "Personnel Number".into(),
        }],
        dates: DateFormat::new("%d.%m.%Y").expect("a date format"),
    };
    let _ = read_csv(data, &format);
});
