//! The SCIM JSON reader: a request body's bytes to a JSON value, refused with 400
//! `invalidSyntax` when it is not JSON or nests deeper than [`MAX_DEPTH`].
//!
//! serde_json stops at 128 levels by itself; SCIM resources nest four levels at most
//! (the enterprise extension's `manager.value`), so a lower bound is checked first, in
//! one pass over the bytes, and says what is wrong. The error names a position, never
//! the content.
use serde_json::Value;

use crate::error::ScimError;

/// Deepest nesting of arrays and objects accepted in a request body.
pub const MAX_DEPTH: usize = 16;

/// Reads a request body.
pub fn read(bytes: &[u8]) -> Result<Value, ScimError> {
    if depth(bytes) > MAX_DEPTH {
        return Err(ScimError::invalid_syntax(format!(
            "the request body nests arrays and objects deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ScimError::invalid_syntax(format!(
            "the request body is not valid JSON ({} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Eof => "it ends early",
                serde_json::error::Category::Data => "a value does not fit",
                _ => "a syntax error",
            },
            e.line(),
            e.column()
        ))
    })
}

/// The deepest nesting of `[` and `{` outside strings (what the bytes would be if they
/// were JSON; malformed input is left to the parser).
pub fn depth(bytes: &[u8]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#), 3);
        assert_eq!(depth(br#""\"[[""#), 0);
        assert_eq!(depth(b"1"), 0);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = read(deep.as_bytes()).unwrap_err();
        assert_eq!(err.scim_type, Some(crate::ScimType::InvalidSyntax));
        assert!(err.detail.contains("deeper than 16"), "{}", err.detail);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read(ok.as_bytes()).is_ok());
    }

    #[test]
    fn what_is_not_json_says_where_not_what() {
        for body in [
            &b"{\"userName\": \"jane@example.com\""[..],
            b"\xff\xfe{}",
            b"{\"a\": 1e999999}",
            b"{\"userName\": \"jane@example.com\" x}",
        ] {
            let err = read(body).unwrap_err();
            assert_eq!(err.scim_type, Some(crate::ScimType::InvalidSyntax));
            assert!(!err.detail.contains("jane"), "{}", err.detail);
        }
        // Large integers that fit no machine type are read as floats, not refused.
        assert!(read(b"{\"a\": 123456789012345678901234567890}").is_ok());
    }
}
