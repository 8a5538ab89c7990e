//! RFC 7644 §3.4.2 ListResponse with `startIndex` (1-based) and `count` paging.
