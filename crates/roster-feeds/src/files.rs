//! Which file a `path` names. The file name may be a glob (`people-*.csv`): the
//! newest matching file of the directory wins (by modification time, then by name).

/// A path split into its directory and its file-name pattern, when the name is a
/// glob; `None` for a plain path.
pub fn glob_parts(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some(parts) => parts,
        None => (".", path),
    };
    name.contains(['*', '?', '[']).then_some((dir, name))
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// Modification time, seconds since the epoch.
    pub modified: u64,
    pub is_file: bool,
}

/// The newest file whose name matches `pattern`. Hidden files match only a pattern
/// that starts with a dot.
pub fn newest<'a>(pattern: &str, entries: &'a [Entry]) -> Option<&'a Entry> {
    let pattern = glob::Pattern::new(pattern).ok()?;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    entries
        .iter()
        .filter(|e| e.is_file && pattern.matches_with(&e.name, options))
        .max_by(|a, b| a.modified.cmp(&b.modified).then(a.name.cmp(&b.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, modified: u64) -> Entry {
        Entry {
            name: name.into(),
            modified,
            is_file: true,
        }
    }

    #[test]
    fn the_newest_match_wins() {
        assert_eq!(glob_parts("/exports/people.csv"), None);
        assert_eq!(
            glob_parts("/exports/people-*.csv"),
            Some(("/exports", "people-*.csv"))
        );
        assert_eq!(glob_parts("/p*.csv"), Some(("/", "p*.csv")));
        let entries = [
            entry("people-2026-03-01.csv", 100),
            entry("people-2026-03-02.csv", 200),
            entry("people-2026-03-03.csv.part", 300),
            entry(".people-x.csv", 400),
            entry("people-b.csv", 200),
            Entry {
                is_file: false,
                ..entry("people-dir.csv", 500)
            },
        ];
        let pick = newest("people-*.csv", &entries).unwrap();
        assert_eq!(pick.name, "people-b.csv", "same time: the later name");
        assert_eq!(newest("nobody-*.csv", &entries), None);
    }
}
