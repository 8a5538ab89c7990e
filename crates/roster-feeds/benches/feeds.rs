//! A 100k-row HR file through the pure feed core: how long reading and planning take,
//! and how many API writes a sync makes when 1 % of the rows changed (the shell makes
//! exactly the plan's writes: `feeds::a_second_csv_file_writes_exactly_its_changes…`
//! checks that on the real API server). Prints figures; asserts only the write count.
//!
//! Run: `cargo bench -p roster-feeds --bench feeds`

use std::time::Instant;

use roster_api::{Phase, RecordSource};
use roster_feeds::plan::{Existing, Target, plan};
use roster_feeds::{CsvFormat, read_csv};

const HEADER: &str = "Employee ID,Full Name,Email Address,Hire Date,Termination Date,Department,Title,Location,Manager's Email,Active\r\n";

fn file(rows: usize, changed_every: Option<usize>) -> String {
    let mut out = String::with_capacity(rows * 120);
    out.push('\u{feff}');
    out.push_str(HEADER);
    for i in 0..rows {
        let title = match changed_every {
            Some(n) if i % n == 0 => "Senior Engineer",
            _ => "Engineer",
        };
        let manager = if i == 0 {
            String::new()
        } else {
            format!("{:07}", i / 10)
        };
        out.push_str(&format!(
            "{i:07},\"Person, {i}\",person{i}@example.com,2020-01-06,,Engineering,{title},Berlin,{manager},true\r\n"
        ));
    }
    out
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too (unoptimized),
    // with a tenth of the rows.
    let rows = if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        10_000
    };
    let target = Target {
        tenant: "acme",
        source: RecordSource::Csv,
        complete: true,
    };
    let first = file(rows, None);
    let started = Instant::now();
    let snapshot = read_csv(first.as_bytes(), &CsvFormat::default()).expect("reads");
    let read = started.elapsed();
    let started = Instant::now();
    let initial = plan(&target, &snapshot, &[]);
    let planned = started.elapsed();
    println!(
        "first import: {} rows ({:.1} MB) read in {:?}, planned in {:?}: {} writes",
        snapshot.rows_read,
        first.len() as f64 / 1e6,
        read,
        planned,
        initial.writes.len()
    );
    let existing: Vec<Existing> = initial
        .writes
        .iter()
        .map(|w| Existing {
            name: w.name.clone(),
            spec: w.spec.clone(),
            phase: Phase::Active,
            deleting: false,
        })
        .collect();

    // 1 % of the rows changed.
    let second = file(rows, Some(100));
    let started = Instant::now();
    let snapshot = read_csv(second.as_bytes(), &CsvFormat::default()).expect("reads");
    let read = started.elapsed();
    let started = Instant::now();
    let next = plan(&target, &snapshot, &existing);
    let planned = started.elapsed();
    println!(
        "next import, 1 % changed: read in {:?}, planned against {} users in {:?}: {} API writes, {} unchanged",
        read,
        existing.len(),
        planned,
        next.writes.len(),
        next.unchanged
    );
    assert_eq!(next.writes.len(), rows / 100, "one write per changed row");
}
