//! SCIM under attack, on the real API server against the operator binary
//! (`roster run --scim-addr`, as deployed, with its logs captured): requests without
//! a valid token for the path (none, wrong, another tenant's, in the query string,
//! another scheme), replayed requests, oversized and pathological bodies, and a flood
//! from one tenant. Asserted: nothing is written (DirectoryUsers and DirectoryGroups
//! keep their generations), nothing is read across tenants, no personal data or
//! token is in any answer, the operator's log or an Event, and the other tenant is
//! served through the flood (its success rate and latency are printed).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use roster_api::{DirectoryGroup, DirectoryUser};
use serde_json::{Value, json};

use crate::support::{OperatorProcess, TestEnv, poll};

const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const TOKEN_A: &str = "attack-token-of-tenant-a-0123456789";
const TOKEN_B: &str = "attack-token-of-tenant-b-9876543210";

/// What must never show up in an answer, a log line or an Event: the people's
/// names and addresses, and the tokens.
const SECRETS: &[&str] = &[
    "jane.attack",
    "Janet",
    "Attackson",
    "bob.other",
    "Roberta",
    TOKEN_A,
    TOKEN_B,
];

fn jane() -> Value {
    json!({"userName": "jane.attack@example.com", "active": true,
        "name": {"givenName": "Janet", "familyName": "Attackson"},
        "emails": [{"value": "jane.attack@example.com", "type": "work", "primary": true}],
        EXT: {"employeeNumber": "1001"}})
}

fn bob() -> Value {
    json!({"userName": "bob.other@example.com", "active": true,
        "name": {"givenName": "Roberta", "familyName": "Other"},
        "emails": [{"value": "bob.other@example.com"}], EXT: {"employeeNumber": "7"}})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// Two tenants (one namespace each) and the operator binary serving both, with
/// SCIM on a port of its own and its log in a file.
struct Attacked {
    a: TestEnv,
    b: TestEnv,
    _lms: roster_standins::lms::LmsStandIn,
    operator: Option<OperatorProcess>,
    log: std::path::PathBuf,
    origin: String,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Attacked {
    async fn start(name: &str, rate: (u32, u32)) -> Self {
        let a = TestEnv::new(&format!("{name}-a")).await;
        let b = TestEnv::new(&format!("{name}-b")).await;
        let lms = crate::joiners::standin(false).await;
        crate::scim::tenant(&a, &lms, TOKEN_A).await;
        crate::scim::tenant(&b, &lms, TOKEN_B).await;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let plane = crate::support::control_plane().await;
        let log = std::env::temp_dir().join(format!("roster-{name}-{}.log", a.namespace));
        let (per_second, burst) = (rate.0.to_string(), rate.1.to_string());
        let operator = OperatorProcess::start_with(
            &format!("{},{}", a.namespace, b.namespace),
            plane.kubeconfig_path(),
            &log,
            &[
                "--scim-addr",
                &addr,
                "--scim-rate-limit",
                &per_second,
                "--scim-burst",
                &burst,
            ],
            &[],
        );
        let attacked = Self {
            a,
            b,
            _lms: lms,
            operator: Some(operator),
            log,
            origin: format!("http://{addr}"),
            http: reqwest::Client::new(),
        };
        poll(
            "the SCIM endpoint to serve",
            Duration::from_millis(100),
            || {
                let attacked = &attacked;
                async move {
                    let url = attacked.url(&attacked.a, "/ServiceProviderConfig");
                    let r = attacked
                        .http
                        .get(url)
                        .bearer_auth(TOKEN_A)
                        .send()
                        .await
                        .ok()?;
                    (r.status() == 200).then_some(())
                }
            },
        )
        .await;
        attacked
    }

    fn url(&self, env: &TestEnv, path: &str) -> String {
        format!("{}/scim/v2/{}{path}", self.origin, env.namespace)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let resp = request.send().await.expect("a SCIM answer");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    async fn call(
        &self,
        env: &TestEnv,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, self.url(env, path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        self.send(req).await
    }

    /// Every DirectoryUser's and DirectoryGroup's generation in both namespaces (the
    /// spec's version: the lifecycle's status writes, which go on meanwhile, leave
    /// it alone).
    async fn versions(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for env in [&self.a, &self.b] {
            for du in env
                .api::<DirectoryUser>()
                .list(&ListParams::default())
                .await
                .unwrap()
            {
                out.insert(
                    format!("{}/user/{}", env.namespace, du.metadata.name.unwrap()),
                    du.metadata.generation.unwrap(),
                );
            }
            for dg in env
                .api::<DirectoryGroup>()
                .list(&ListParams::default())
                .await
                .unwrap()
            {
                out.insert(
                    format!("{}/group/{}", env.namespace, dg.metadata.name.unwrap()),
                    dg.metadata.generation.unwrap(),
                );
            }
        }
        out
    }

    /// No secret in the operator's log or in any Event of either namespace.
    async fn assert_nothing_leaked(&mut self) {
        // Stopped first, so its log is complete.
        drop(self.operator.take());
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(!log.is_empty(), "the operator logged nothing");
        for secret in SECRETS {
            assert!(!log.contains(secret), "'{secret}' is in the operator's log");
        }
        for env in [&self.a, &self.b] {
            for event in env
                .api::<Event>()
                .list(&ListParams::default())
                .await
                .unwrap()
            {
                let text = format!(
                    "{:?} {:?} {:?}",
                    event.message, event.reason, event.involved_object.name
                );
                for secret in SECRETS {
                    assert!(!text.contains(secret), "'{secret}' is in an Event: {text}");
                }
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A hostile but authenticated request: (what, method, path, body, status, scimType).
type Hostile<'a> = (&'a str, &'a str, &'a str, String, u16, Option<&'a str>);

/// An RFC 7644 error body with that status, and no secret in the whole answer.
fn assert_refused(r: &Reply, status: u16, scim_type: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{what}: {}", r.text);
    assert_eq!(r.body["status"], json!(status.to_string()), "{what}");
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{what}: {}", r.text);
    assert_eq!(r.headers["content-type"], "application/scim+json", "{what}");
    for secret in SECRETS {
        assert!(!r.text.contains(secret), "{what}: '{secret}' in {}", r.text);
    }
}

/// Without a valid token for the path, every endpoint and method is the same 401,
/// nothing is written in either tenant, and nothing of the other tenant is read;
/// pathological bodies are refused with their status and scimType, and write
/// nothing either. No secret reaches an answer, the log or an Event.
#[tokio::test]
async fn attacks_write_nothing_read_nothing_and_leak_nothing() {
    let mut t = Attacked::start("scim-attacks", (1000, 1000)).await;
    let r = t.call(&t.a, "POST", "/Users", TOKEN_A, Some(jane())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = t.call(&t.b, "POST", "/Users", TOKEN_B, Some(bob())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = t
        .call(
            &t.a,
            "POST",
            "/Groups",
            TOKEN_A,
            Some(json!({"displayName": "Sales", "members": [{"value": "e-1001"}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let group = r.body["id"].as_str().unwrap().to_string();
    let before = t.versions().await;

    let deactivate = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let user = "/Users/e-1001".to_string();
    let group_path = format!("/Groups/{group}");
    let endpoints: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/Users".into(), None),
        ("GET", user.clone(), None),
        (
            "GET",
            "/Users?filter=userName%20eq%20%22jane.attack%40example.com%22".into(),
            None,
        ),
        (
            "POST",
            "/Users".into(),
            Some(json!({"userName": "intruder@example.com", EXT: {"employeeNumber": "666"}})),
        ),
        ("PUT", user.clone(), Some(jane())),
        ("PATCH", user.clone(), Some(deactivate.clone())),
        ("DELETE", user.clone(), None),
        (
            "POST",
            "/Users/.search".into(),
            Some(json!({"filter": "userName pr"})),
        ),
        ("POST", "/.search".into(), Some(json!({}))),
        ("GET", "/Groups".into(), None),
        (
            "POST",
            "/Groups".into(),
            Some(json!({"displayName": "Intruders"})),
        ),
        (
            "PATCH",
            group_path.clone(),
            Some(patch(json!([{"op": "remove", "path": "members"}]))),
        ),
        ("DELETE", group_path.clone(), None),
        ("GET", "/ServiceProviderConfig".into(), None),
        ("GET", "/Schemas".into(), None),
        ("GET", "/ResourceTypes".into(), None),
    ];
    // `user:` and TOKEN_A, base64-encoded.
    let basic = "Basic dXNlcjphdHRhY2stdG9rZW4tb2YtdGVuYW50LWEtMDEyMzQ1Njc4OQ==".to_string();
    let wrong = format!("Bearer {TOKEN_A}x");
    let truncated = format!("Bearer {}", &TOKEN_A[..TOKEN_A.len() - 1]);
    let other = format!("Bearer {TOKEN_B}");
    // (what, Authorization header, token in the query string)
    let credentials: Vec<(&str, Option<&str>, bool)> = vec![
        ("no token", None, false),
        ("a wrong token", Some(wrong.as_str()), false),
        ("a truncated token", Some(truncated.as_str()), false),
        ("another tenant's token", Some(other.as_str()), false),
        ("the token in the query string", None, true),
        (
            "the token as Basic credentials",
            Some(basic.as_str()),
            false,
        ),
        ("an empty bearer", Some("Bearer "), false),
    ];
    let mut refused = 0;
    for (method, path, body) in &endpoints {
        for (what, authorization, in_query) in &credentials {
            let mut url = t.url(&t.a, path);
            if *in_query {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("access_token={TOKEN_A}"));
            }
            let mut req = t
                .http
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
            if let Some(a) = authorization {
                req = req.header("authorization", *a);
            }
            if let Some(body) = body {
                req = req
                    .header("content-type", "application/scim+json")
                    .body(body.to_string());
            }
            let r = t.send(req).await;
            let what = format!("{what}: {method} {path}");
            assert_refused(&r, 401, None, &what);
            assert_eq!(r.headers["www-authenticate"], "Bearer", "{what}");
            refused += 1;
        }
    }
    // Tenant A's token on B's path, for B's own user: the same 401, not a 404 that
    // would tell that the user exists.
    for (method, path) in [
        ("GET", "/Users/e-7"),
        ("DELETE", "/Users/e-7"),
        ("GET", "/Users"),
    ] {
        let r = t.call(&t.b, method, path, TOKEN_A, None).await;
        assert_refused(
            &r,
            401,
            None,
            &format!("A's token on B's path: {method} {path}"),
        );
        refused += 1;
    }

    // Authenticated, but hostile: each refused with its type, at a bounded cost.
    let big = json!({"userName": "big@example.com", "displayName": "x".repeat(300 * 1024)});
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let clauses = vec![r#"userName eq "a""#; 10_000].join(" or ");
    let many_ops = patch(Value::Array(vec![
        json!({"op": "remove", "path": "title"});
        1001
    ]));
    let long_path = patch(
        json!([{"op": "remove", "path": format!("emails[value eq \"{}\"]", "x".repeat(5000))}]),
    );
    let emails: Vec<Value> = (0..101)
        .map(|i| json!({"value": format!("e{i}@example.com")}))
        .collect();
    let many_values = patch(json!([{"op": "add", "path": "emails", "value": emails}]));
    let hostile: Vec<Hostile> = vec![
        (
            "a body over 256 KiB",
            "POST",
            "/Users",
            big.to_string(),
            413,
            None,
        ),
        (
            "nesting 50,000 deep",
            "POST",
            "/Users",
            deep.clone(),
            400,
            Some("invalidSyntax"),
        ),
        (
            "nesting in a PATCH",
            "PATCH",
            "/Users/e-1001",
            deep,
            400,
            Some("invalidSyntax"),
        ),
        (
            "a filter of 10,000 clauses",
            "POST",
            "/Users/.search",
            json!({"filter": clauses}).to_string(),
            400,
            Some("invalidFilter"),
        ),
        (
            "1001 operations",
            "PATCH",
            "/Users/e-1001",
            many_ops.to_string(),
            400,
            Some("tooMany"),
        ),
        (
            "a 5 kB path",
            "PATCH",
            "/Users/e-1001",
            long_path.to_string(),
            400,
            Some("invalidPath"),
        ),
        (
            "101 emails",
            "PATCH",
            "/Users/e-1001",
            many_values.to_string(),
            400,
            Some("invalidValue"),
        ),
        (
            "a number out of range",
            "POST",
            "/Users",
            r#"{"userName": "n@example.com", "x": 1e99999}"#.into(),
            400,
            Some("invalidSyntax"),
        ),
        (
            "not UTF-8",
            "POST",
            "/Users",
            "{\"userName\": \"\u{FFFD}".into(),
            400,
            Some("invalidSyntax"),
        ),
    ];
    for (what, method, path, body, status, scim_type) in hostile {
        let started = Instant::now();
        let req = t
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                t.url(&t.a, path),
            )
            .bearer_auth(TOKEN_A)
            .header("content-type", "application/scim+json")
            .body(body);
        let r = t.send(req).await;
        println!("{what}: {} in {:?}", r.status, started.elapsed());
        assert_refused(&r, status, scim_type, what);
        refused += 1;
    }
    // Bytes that are not UTF-8 at all, and a filter too long for a URL's budget.
    let req = t
        .http
        .post(t.url(&t.a, "/Users"))
        .bearer_auth(TOKEN_A)
        .header("content-type", "application/scim+json")
        .body(b"{\"userName\": \"\xff\xfe\"}".to_vec());
    assert_refused(
        &t.send(req).await,
        400,
        Some("invalidSyntax"),
        "invalid UTF-8",
    );
    let long_filter = vec!["title pr"; 600].join(" or ").replace(' ', "%20");
    let r = t
        .call(
            &t.a,
            "GET",
            &format!("/Users?filter={long_filter}"),
            TOKEN_A,
            None,
        )
        .await;
    assert_refused(&r, 400, Some("invalidFilter"), "a 5 kB filter in the URL");
    let r = t
        .call(
            &t.a,
            "GET",
            "/Users?attributes=ab%C3%A9,emails",
            TOKEN_A,
            None,
        )
        .await;
    assert_refused(
        &r,
        400,
        Some("invalidPath"),
        "attributes with a multi-byte character",
    );

    // Nothing of B through A's token.
    let r = t
        .call(
            &t.a,
            "GET",
            "/Users?filter=userName%20eq%20%22bob.other%40example.com%22",
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!((r.status, &r.body["totalResults"]), (200, &json!(0)));
    let r = t
        .call(&t.a, "POST", "/.search", TOKEN_A, Some(json!({})))
        .await;
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == "e-1001" || *id == group),
        "only A's resources: {}",
        r.text
    );
    assert!(!r.text.contains("bob.other"), "{}", r.text);
    assert_eq!(
        t.call(&t.a, "GET", "/Users/e-7", TOKEN_A, None)
            .await
            .status,
        404
    );

    assert_eq!(
        t.versions().await,
        before,
        "a refused request wrote something"
    );
    println!("{refused} attacks refused; nothing written, nothing read across tenants");
    t.assert_nothing_leaked().await;
}

/// A replayed POST is a 409 (no second user); a replayed PATCH, PUT or group
/// change is answered like the first and writes nothing; a replayed DELETE is 404.
#[tokio::test]
async fn replayed_requests_neither_duplicate_nor_rewrite() {
    let mut t = Attacked::start("scim-replay", (1000, 1000)).await;
    let users = |t: &Attacked| {
        let api = t.a.api::<DirectoryUser>();
        async move { api.list(&ListParams::default()).await.unwrap().items.len() }
    };
    assert_eq!(
        t.call(&t.a, "POST", "/Users", TOKEN_A, Some(jane()))
            .await
            .status,
        201
    );
    for _ in 0..3 {
        let r = t.call(&t.a, "POST", "/Users", TOKEN_A, Some(jane())).await;
        assert_refused(&r, 409, Some("uniqueness"), "a replayed POST");
    }
    assert_eq!(users(&t).await, 1, "no duplicate");

    let version = |t: &Attacked| {
        let api = t.a.api::<DirectoryUser>();
        async move {
            api.get("e-1001")
                .await
                .unwrap()
                .metadata
                .generation
                .unwrap()
        }
    };
    let requests: Vec<(&str, &str, Value)> = vec![
        (
            "PATCH",
            "/Users/e-1001",
            patch(json!([{"op": "replace", "path": "active", "value": false}])),
        ),
        (
            "PATCH",
            "/Users/e-1001",
            patch(
                json!([{"op": "add", "path": "emails", "value": [{"value": "j2.attack@example.com", "type": "home"}]}]),
            ),
        ),
        (
            "PATCH",
            "/Users/e-1001",
            patch(
                json!([{"op": "replace", "value": {"title": "Engineer", "name.givenName": "Janet"}}]),
            ),
        ),
        ("PUT", "/Users/e-1001", jane()),
    ];
    for (method, path, body) in requests {
        let first = t
            .call(&t.a, method, path, TOKEN_A, Some(body.clone()))
            .await;
        assert_eq!(first.status, 200, "{method}: {}", first.text);
        let written = version(&t).await;
        for _ in 0..3 {
            let again = t
                .call(&t.a, method, path, TOKEN_A, Some(body.clone()))
                .await;
            assert_eq!(again.status, 200, "{method} replayed: {}", again.text);
            assert_eq!(again.body, first.body, "{method}: the same answer");
        }
        assert_eq!(version(&t).await, written, "{method} replayed: no write");
    }

    let sales = json!({"displayName": "Sales", "members": [{"value": "e-1001"}]});
    let r = t
        .call(&t.a, "POST", "/Groups", TOKEN_A, Some(sales.clone()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let group = r.body["id"].as_str().unwrap().to_string();
    let r = t.call(&t.a, "POST", "/Groups", TOKEN_A, Some(sales)).await;
    assert_refused(&r, 409, Some("uniqueness"), "a replayed group POST");
    let groups =
        t.a.api::<DirectoryGroup>()
            .list(&ListParams::default())
            .await
            .unwrap();
    assert_eq!(groups.items.len(), 1, "no duplicate group");
    let before = t.versions().await;
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": "e-1001"}]}]));
    for _ in 0..3 {
        let r = t
            .call(
                &t.a,
                "PATCH",
                &format!("/Groups/{group}"),
                TOKEN_A,
                Some(add.clone()),
            )
            .await;
        assert!(matches!(r.status, 200 | 204), "{}", r.text);
    }
    assert_eq!(
        t.versions().await,
        before,
        "a replayed membership writes nothing"
    );

    assert_eq!(
        t.call(&t.a, "DELETE", "/Users/e-1001", TOKEN_A, None)
            .await
            .status,
        204
    );
    for _ in 0..3 {
        let r = t.call(&t.a, "DELETE", "/Users/e-1001", TOKEN_A, None).await;
        assert_refused(&r, 404, None, "a replayed DELETE");
    }
    t.assert_nothing_leaked().await;
}

/// Tenant A floods (many connections, as fast as they go) while tenant B sends
/// 20 requests a second: A is held to its rate with 429 + Retry-After, B is served.
/// Prints B's success rate and latency during the flood.
#[tokio::test]
async fn a_flood_from_one_tenant_neither_passes_the_limit_nor_starves_another() {
    const RATE: u32 = 20;
    const BURST: u32 = 20;
    const FLOOD: Duration = Duration::from_secs(5);
    const CONNECTIONS: usize = 16;
    let mut t = Attacked::start("scim-flood", (RATE, BURST)).await;
    assert_eq!(
        t.call(&t.a, "POST", "/Users", TOKEN_A, Some(jane()))
            .await
            .status,
        201
    );
    assert_eq!(
        t.call(&t.b, "POST", "/Users", TOKEN_B, Some(bob()))
            .await
            .status,
        201
    );
    // Both buckets refill before the flood starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let flood: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (http, url) = (reqwest::Client::new(), t.url(&t.a, "/Users/e-1001"));
            tokio::spawn(async move {
                let (mut ok, mut limited, mut other) = (0u32, 0u32, 0u32);
                let mut retry_after_ok = true;
                while started.elapsed() < FLOOD {
                    let r = http.get(&url).bearer_auth(TOKEN_A).send().await.unwrap();
                    match r.status().as_u16() {
                        200 => ok += 1,
                        429 => {
                            limited += 1;
                            retry_after_ok &= r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .is_some_and(|s| (1..=2).contains(&s));
                            let body: Value = r.json().await.unwrap();
                            retry_after_ok &= body["status"] == "429";
                        }
                        _ => other += 1,
                    }
                }
                (ok, limited, other, retry_after_ok)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut b_failures = 0;
    let b_url = t.url(&t.b, "/Users/e-7");
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while started.elapsed() < FLOOD {
        tick.tick().await;
        let sent = Instant::now();
        let r = t
            .http
            .get(&b_url)
            .bearer_auth(TOKEN_B)
            .send()
            .await
            .unwrap();
        latencies.push(sent.elapsed());
        if r.status() != 200 {
            b_failures += 1;
        }
    }
    let (mut ok, mut limited, mut other, mut retry_after_ok) = (0, 0, 0, true);
    for task in flood {
        let (o, l, x, r) = task.await.unwrap();
        (ok, limited, other, retry_after_ok) =
            (ok + o, limited + l, other + x, retry_after_ok && r);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let b_total = latencies.len();
    println!(
        "flood: tenant A sent {} requests in {elapsed:.1} s ({:.0}/s) on {CONNECTIONS} connections: {ok} served, {limited} answered 429, {other} other",
        ok + limited + other,
        f64::from(ok + limited + other) / elapsed,
    );
    println!(
        "tenant B during the flood: {}/{b_total} served ({:.1} %), latency p50 {:?}, p99 {:?}, max {:?}",
        b_total - b_failures,
        100.0 * (b_total - b_failures) as f64 / b_total as f64,
        pct(0.5),
        pct(0.99),
        latencies[b_total - 1],
    );
    assert_eq!(other, 0, "the flood got only 200s and 429s");
    assert!(limited > 0, "the flood was not limited");
    assert!(
        retry_after_ok,
        "every 429 has a Retry-After of 1-2 s and a SCIM body"
    );
    // The bucket: the burst, then RATE a second (one more second of slack for the
    // start and the end of the window).
    let allowed = BURST + RATE * (elapsed.ceil() as u32 + 1);
    assert!(ok <= allowed, "{ok} served > {allowed}");
    assert_eq!(b_failures, 0, "tenant B was refused during A's flood");
    t.assert_nothing_leaked().await;
}
