//! The bounds on what a feed may deliver (docs/feeds.md, "Limits"). A file or report
//! past one of them is refused whole, with an error that names the limit: a partial
//! snapshot would treat everyone after the cut as removed from the feed.
//!
//! The fetchers enforce the byte limits while they read (an SFTP file or an HTTP
//! body is never read past them); the readers check them again, and the others.

// The operator's memory limit in the chart is 512 MiB: a file is held whole while it
// is read, with its records (a few times its size); these bounds keep a feed of twice
// the largest tested tenant (100,000 people) well inside it.

/// Largest CSV file, in bytes (32 MiB: some 100,000 rows of 300 bytes).
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;
/// Largest HR report body, in bytes (64 MiB: JSON repeats the field names in every
/// entry, some 130,000 entries of 500 bytes).
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;
/// Most data rows of a file, or entries of a report.
pub const MAX_ROWS: usize = 200_000;
/// Most columns of a CSV file.
pub const MAX_COLUMNS: usize = 256;
/// Longest row of a CSV file, in bytes (a longer row is rejected on its own).
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays and objects in a report (a report nests three levels).
pub const MAX_REPORT_DEPTH: usize = 16;

/// The deepest nesting of `[` and `{` outside JSON strings.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
