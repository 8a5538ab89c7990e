//! RFC 7644 §3.4.2 ListResponse with `startIndex` (1-based) and `count` paging, sort
//! free: the caller orders the matches stably (roster orders by `id`).
use serde_json::{Value, json};

use crate::error::ScimError;
use crate::schema::LIST_RESPONSE_SCHEMA;

/// A page request, parsed from the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 1-based; values below 1 are read as 1 (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    /// At most `max` (the ServiceProviderConfig's `filter.maxResults`); `0` asks for
    /// the total only.
    pub count: usize,
}

impl Page {
    /// Reads `startIndex` and `count` query values. Non-integers are 400
    /// `invalidValue`; negative counts are read as 0, counts above `max` as `max`.
    pub fn parse(
        start_index: Option<&str>,
        count: Option<&str>,
        max: usize,
    ) -> Result<Self, ScimError> {
        let int = |v: Option<&str>, name: &str| -> Result<Option<i64>, ScimError> {
            v.map(|s| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
            })
            .transpose()
        };
        let start = int(start_index, "startIndex")?.unwrap_or(1).max(1);
        let count = int(count, "count")?.map_or(max as i64, |c| c.clamp(0, max as i64));
        Ok(Self {
            start_index: usize::try_from(start).unwrap_or(usize::MAX),
            count: count as usize,
        })
    }

    /// The slice of `total` matches this page covers.
    pub fn range(&self, total: usize) -> std::ops::Range<usize> {
        let from = (self.start_index - 1).min(total);
        from..(from + self.count).min(total)
    }
}

/// A ListResponse of `resources` (already the page) out of `total` matches.
/// `count=0` gives `totalResults` and no resources (an empty `Resources`, which
/// scim-sanity expects and strict clients need to read a ListResponse); zero matches
/// still give a ListResponse with empty `Resources` (Entra ID's connection test relies
/// on it).
pub fn list_response(total: usize, page: Page, resources: Vec<Value>) -> Value {
    if page.count == 0 {
        return json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": total, "Resources": []});
    }
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        usize,
        Page,
        std::ops::Range<usize>,
    );

    #[test]
    fn pages() {
        let cases: &[Case] = &[
            // Okta's probe
            (
                Some("1"),
                Some("2"),
                5,
                Page {
                    start_index: 1,
                    count: 2,
                },
                0..2,
            ),
            (
                None,
                None,
                5,
                Page {
                    start_index: 1,
                    count: 100,
                },
                0..5,
            ),
            (
                Some("0"),
                Some("2"),
                5,
                Page {
                    start_index: 1,
                    count: 2,
                },
                0..2,
            ),
            (
                Some("-3"),
                Some("2"),
                5,
                Page {
                    start_index: 1,
                    count: 2,
                },
                0..2,
            ),
            (
                Some("4"),
                Some("10"),
                5,
                Page {
                    start_index: 4,
                    count: 10,
                },
                3..5,
            ),
            (
                Some("9"),
                Some("10"),
                5,
                Page {
                    start_index: 9,
                    count: 10,
                },
                5..5,
            ),
            (
                Some("1"),
                Some("0"),
                5,
                Page {
                    start_index: 1,
                    count: 0,
                },
                0..0,
            ),
            (
                Some("1"),
                Some("-1"),
                5,
                Page {
                    start_index: 1,
                    count: 0,
                },
                0..0,
            ),
            (
                Some("1"),
                Some("1000"),
                5,
                Page {
                    start_index: 1,
                    count: 100,
                },
                0..5,
            ),
            (
                Some("99999999999999999999"),
                None,
                5,
                Page {
                    start_index: 1,
                    count: 100,
                },
                0..5,
            ),
        ];
        for (start, count, total, want, range) in cases {
            let got = Page::parse(*start, *count, 100);
            if start == &Some("99999999999999999999") {
                assert!(got.is_err());
                continue;
            }
            let got = got.unwrap();
            assert_eq!(got, *want, "{start:?} {count:?}");
            assert_eq!(got.range(*total), range.clone(), "{start:?} {count:?}");
        }
        assert_eq!(Page::parse(Some("x"), None, 100).unwrap_err().status, 400);
    }

    #[test]
    fn list_responses() {
        let page = Page {
            start_index: 1,
            count: 2,
        };
        assert_eq!(
            list_response(0, page, vec![]),
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
        );
        assert_eq!(
            list_response(
                7,
                Page {
                    start_index: 1,
                    count: 0
                },
                vec![]
            ),
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 7, "Resources": []})
        );
        let r = list_response(3, page, vec![json!({"id": "a"}), json!({"id": "b"})]);
        assert_eq!(r["itemsPerPage"], 2);
        assert_eq!(r["totalResults"], 3);
    }
}
