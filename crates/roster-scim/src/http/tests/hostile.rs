//! Hostile requests on the HTTP surface: any path, query, header and body gets an
//! RFC 7644 error body or a normal answer, never a panic or a plain-text rejection
//! that echoes the input; bodies too big or too deep are refused before they cost.
use proptest::prelude::*;

use super::*;

/// Sends raw parts; returns the status, content type and the body (which must be
/// JSON when there is one).
async fn raw(
    h: &Harness,
    method: &str,
    uri: &str,
    authorization: Option<&[u8]>,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = authorization {
        req = req.header("authorization", HeaderValue::from_bytes(a).unwrap());
    }
    let req = req.body(Body::from(body)).unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {uri}: not JSON: {bytes:?}"))
    };
    (status, content_type, body)
}

fn assert_scim_error(status: StatusCode, content_type: Option<&str>, body: &Value, what: &str) {
    assert_eq!(content_type, Some(SCIM_JSON), "{what}");
    assert_eq!(
        body["schemas"],
        json!([crate::error::ERROR_SCHEMA]),
        "{what}"
    );
    assert_eq!(body["status"], json!(status.as_u16().to_string()), "{what}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        !detail.contains("example.com") && !detail.contains("jane") && detail.len() <= 200,
        "{what}: {detail}"
    );
}

fn percent(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"Users".to_vec()),
        Just(b"Groups".to_vec()),
        Just(b".search".to_vec()),
        Just(b"e-1001".to_vec()),
        Just(b"tenant-a".to_vec()),
        Just(b"tenant-b".to_vec()),
        Just(b"..".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every failure of any request is a SCIM error body, with the token of the
    /// tenant or without, and nothing is written by a refused request.
    #[test]
    fn any_request_gets_a_scim_answer(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE"), Just("OPTIONS")],
        segments in prop::collection::vec(segment(), 0..4),
        query in prop::collection::vec(any::<u8>(), 0..24),
        token in prop_oneof![Just(None), Just(Some(format!("Bearer {TOKEN_A}").into_bytes())), Just(Some(b"Bearer \xff".to_vec())), Just(Some(TOKEN_A.as_bytes().to_vec()))],
        body in prop_oneof![Just(Vec::new()), Just(jane().to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..32)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let h = harness();
            let path: Vec<String> = segments.iter().map(|s| percent(s)).collect();
            let uri = format!("/scim/v2/tenant-a/{}?{}", path.join("/"), percent(&query));
            let (status, content_type, reply) = raw(&h, method, &uri, token.as_deref(), body).await;
            if status.is_client_error() || status.is_server_error() {
                assert_scim_error(status, content_type.as_deref(), &reply, &uri);
                assert!(h.store.records(&scope_a()).len() <= 1);
            }
        });
    }
}

/// Regression: a path segment that is not UTF-8 once decoded was axum's plain-text
/// 400 ("Invalid URL: …"), echoing the input.
#[tokio::test]
async fn a_path_that_is_not_utf8_is_a_scim_error() {
    let h = harness();
    for uri in ["/scim/v2/%FF/Users", "/scim/v2/tenant-a/Users/%C3%28"] {
        let (status, content_type, body) = raw(
            &h,
            "GET",
            uri,
            Some(format!("Bearer {TOKEN_A}").as_bytes()),
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_scim_error(status, content_type.as_deref(), &body, uri);
        assert_eq!(body["scimType"], "invalidSyntax");
    }
}

/// (what, method, URI, Authorization, body, status, scimType)
type Hostile<'a> = (
    &'a str,
    &'a str,
    String,
    Option<&'a [u8]>,
    Vec<u8>,
    u16,
    Option<&'a str>,
);

/// Too big, too deep, not UTF-8, huge numbers, a token in the query string: each a
/// SCIM error with its status and type, and nothing written.
#[tokio::test]
async fn hostile_bodies_are_refused() {
    let h = harness();
    let bearer = format!("Bearer {TOKEN_A}");
    let auth = Some(bearer.as_bytes());
    let users = format!("{A}/Users");
    let deep = format!("{}{}", "[".repeat(1500), "]".repeat(1500));
    let mut not_utf8 = br#"{"userName": "#.to_vec();
    not_utf8.extend_from_slice(b"\"\xff\xfe\"}");
    let cases: Vec<Hostile> = vec![
        ("a body over max_body", "POST", users.clone(), auth, vec![b' '; 5000], 413, None),
        ("deep nesting", "POST", users.clone(), auth, deep.clone().into_bytes(), 400, Some("invalidSyntax")),
        ("deep nesting in a search", "POST", format!("{A}/.search"), auth, deep.into_bytes(), 400, Some("invalidSyntax")),
        ("not UTF-8", "POST", users.clone(), auth, not_utf8, 400, Some("invalidSyntax")),
        ("a number out of range", "POST", users.clone(), auth, br#"{"userName": "a", "x": 1e99999}"#.to_vec(), 400, Some("invalidSyntax")),
        ("a huge integer where a string goes", "POST", users.clone(), auth,
            format!(r#"{{"userName": "a", "{EXT}": {{"employeeNumber": 123456789012345678901234567890}}}}"#).into_bytes(), 400, Some("invalidValue")),
        ("a token in the query string", "GET", format!("{users}?access_token={TOKEN_A}"), None, vec![], 401, None),
        ("a Basic scheme", "GET", users.clone(), Some(&b"Basic dG9rZW4="[..]), vec![], 401, None),
        ("a filter of 10,000 clauses", "POST", format!("{A}/Users/.search"), auth,
            json!({"filter": vec![r#"userName eq "a""#; 10_000].join(" or ")}).to_string().into_bytes(), 413, None),
        ("a filter of 200 short clauses", "POST", format!("{A}/Users/.search"), auth,
            json!({"filter": vec!["title pr"; 200].join(" or ")}).to_string().into_bytes(), 400, Some("invalidFilter")),
    ];
    for (what, method, uri, token, body, status, scim_type) in cases {
        let (got, content_type, reply) = raw(&h, method, &uri, token, body).await;
        assert_eq!(got.as_u16(), status, "{what}: {reply}");
        assert_scim_error(got, content_type.as_deref(), &reply, what);
        assert_eq!(reply["scimType"].as_str(), scim_type, "{what}: {reply}");
    }
    assert!(h.store.records(&scope_a()).is_empty(), "nothing written");
}
