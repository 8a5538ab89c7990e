//! SCIM 2.0 end to end on the real API server: identity providers' request sequences
//! (Okta, Entra ID in both flavours, OneLogin) create, update, deactivate, reactivate
//! and delete people, down to the DirectoryUser's phase and the learning platform's
//! account; the refusals write nothing; a standby replica answers; tenants are apart;
//! the rate limit answers 429.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams};
use roster::clock::SystemClock;
use roster::controller::{Options, Watches};
use roster_api::tenant::{PeopleSources, ScimSource, SecretKeyRef};
use roster_api::{Departure, DirectoryUser, Phase, Tenant};
use roster_standins::lms::LmsStandIn;
use serde_json::{Value, json};

use crate::support::{TestEnv, effects, poll, wait_phase, wait_status};

const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The operator's SCIM endpoint (and, unless `standby`, its controllers) in-process.
pub(crate) struct Scim {
    pub(crate) base: String,
    http: reqwest::Client,
    token: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Scim {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Scim {
    pub(crate) async fn start(
        env: &TestEnv,
        token: &str,
        controllers: bool,
        settings: Settings,
    ) -> Self {
        let mut namespaces = vec![env.namespace.clone()];
        namespaces.extend(settings.also.iter().cloned());
        let watches = Watches::start(&env.client, &namespaces);
        let mut scim = roster::scim::Settings::new("127.0.0.1:0".parse().unwrap());
        if let Some((per_second, burst)) = settings.rate {
            scim.requests_per_second = per_second.try_into().unwrap();
            scim.burst = burst.try_into().unwrap();
        }
        let serving = roster::scim::start(
            env.client.clone(),
            Arc::new(SystemClock),
            Arc::default(),
            &watches,
            scim,
        )
        .await
        .expect("start SCIM");
        let mut tasks = vec![];
        if controllers {
            let (client, effects, namespace) =
                (env.client.clone(), effects(env), env.namespace.clone());
            tasks.push(tokio::spawn(async move {
                let options = Options {
                    namespaces: vec![namespace],
                    ..Default::default()
                };
                roster::controller::run_on(
                    &watches,
                    client,
                    effects,
                    Arc::new(SystemClock),
                    Arc::default(),
                    options,
                    std::future::pending(),
                )
                .await
            }));
        }
        let scim = Self {
            base: format!("http://{}/scim/v2/{}", serving.addr, env.namespace),
            http: reqwest::Client::new(),
            token: token.into(),
            tasks,
        };
        // 503 until the caches are filled and the tokens read.
        poll("the SCIM endpoint to serve", Duration::from_millis(50), || {
            let scim = &scim;
            async move { (scim.get("/ServiceProviderConfig").await.status == 200).then_some(()) }
        })
        .await;
        scim
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("SCIM request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            path,
            Some(&self.token.clone()),
            body.map(|b| b.to_string()),
            &[],
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    async fn filter(&self, filter: &str) -> Reply {
        let q = url_escape(filter);
        self.get(&format!("/Users?filter={q}&startIndex=1&count=100"))
            .await
    }
}

#[derive(Clone, Default)]
pub(crate) struct Settings {
    /// Requests per second and burst per tenant.
    pub(crate) rate: Option<(u32, u32)>,
    /// More namespaces the same endpoint serves.
    pub(crate) also: Vec<String>,
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// The tenant of `joiners::setup` (learning platform stand-in, policy "standard"),
/// serving SCIM with `token`.
pub(crate) async fn tenant(env: &TestEnv, lms: &LmsStandIn, token: &str) {
    crate::joiners::setup(env, lms).await;
    scim_token(env, token).await;
    let sources = PeopleSources {
        scim: Some(ScimSource {
            token_secret_ref: SecretKeyRef {
                name: "scim".into(),
                key: "token".into(),
            },
        }),
        ..Default::default()
    };
    env.api::<Tenant>()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sources": sources}})),
        )
        .await
        .expect("enable SCIM on the Tenant");
}

async fn scim_token(env: &TestEnv, token: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("scim".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".into(), token.into())])),
        ..Default::default()
    };
    env.api::<Secret>()
        .patch(
            "scim",
            &PatchParams::apply("roster-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("apply the SCIM token Secret");
}

async fn wait_gone(env: &TestEnv, name: &str) {
    let api = env.api::<DirectoryUser>();
    poll(
        "the DirectoryUser to be gone",
        Duration::from_millis(100),
        || {
            let api = api.clone();
            async move { api.get_opt(name).await.unwrap().is_none().then_some(()) }
        },
    )
    .await;
}

/// Every write SCIM made is a server-side apply under its own field manager.
fn applied_by_scim(du: &DirectoryUser) -> bool {
    du.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some("roster-scim") && m.operation.as_deref() == Some("Apply")
    })
}

#[tokio::test]
async fn okta_creates_updates_deactivates_reactivates_and_deletes() {
    let env = TestEnv::new("scim-okta").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "okta-token").await;
    let scim = Scim::start(&env, "okta-token", true, Settings::default()).await;

    // Okta's probe, then its lookup before a create.
    let r = scim.get("/Users?startIndex=1&count=2").await;
    assert_eq!((r.status, &r.body["totalResults"]), (200, &json!(0)));
    let r = scim.filter(r#"userName eq "jane.doe@example.com""#).await;
    assert_eq!((r.status, &r.body["totalResults"]), (200, &json!(0)));
    let jane = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": "jane.doe@example.com",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": true}],
        "title": "Engineer",
        "active": true,
        EXT: {"employeeNumber": "1001", "department": "Sales"}
    });
    let r = scim.call("POST", "/Users", Some(jane.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(id, "e-1001", "named from the employee number");
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with("/Users/e-1001")
    );
    // Read back at once, from the cache: by id and by userName in another case.
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 200);
    let r = scim.filter(r#"userName eq "JANE.DOE@example.com""#).await;
    assert_eq!(r.body["totalResults"], 1);

    // Provisioned at the learning platform, under SCIM's field manager.
    let du = wait_status(&env, &id, "provisioned", |s| {
        s.account.provisioned.is_some()
    })
    .await;
    assert!(applied_by_scim(&du));
    assert_eq!(du.spec.department.as_deref(), Some("Sales"));
    assert_eq!(du.spec.email, "jane.doe@example.com");

    // A full PUT (a mover): what it omits is cleared.
    let mut moved = jane.clone();
    moved[EXT] = json!({"employeeNumber": "1001", "department": "Engineering"});
    moved.as_object_mut().unwrap().remove("title");
    let r = scim.call("PUT", &format!("/Users/{id}"), Some(moved)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let du = env.api::<DirectoryUser>().get(&id).await.unwrap();
    assert_eq!(du.spec.department.as_deref(), Some("Engineering"));
    assert_eq!(
        du.spec.title, None,
        "a PUT that omits an attribute clears it"
    );

    // Okta's deactivation: a path-less replace.
    let off = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let r = scim.call("PATCH", &format!("/Users/{id}"), Some(off)).await;
    assert_eq!(
        (r.status, &r.body["active"]),
        (200, &json!(false)),
        "{}",
        r.body
    );
    wait_phase(&env, &id, Phase::Quarantined).await;
    // A deactivated user stays readable.
    let r = scim.get(&format!("/Users/{id}")).await;
    assert_eq!((r.status, &r.body["active"]), (200, &json!(false)));

    // Reactivation in the quarantine restores the person.
    let on = patch(json!([{"op": "replace", "value": {"active": true}}]));
    assert_eq!(
        scim.call("PATCH", &format!("/Users/{id}"), Some(on))
            .await
            .status,
        200
    );
    let du = wait_status(&env, &id, "reactivated", |s| {
        // It was Quarantined above, so Active again is the reversal.
        s.phase == Phase::Active && s.trigger.is_none()
    })
    .await;
    assert!(du.spec.active);

    // DELETE is the removal trigger: the lifecycle goes on in a Departure, and the
    // id answers 404 from the next request on.
    let r = scim.call("DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, 204);
    let r = scim.get(&format!("/Users/{id}")).await;
    assert_eq!((r.status, &r.body["status"]), (404, &json!("404")));
    assert_eq!(
        scim.filter(r#"userName eq "jane.doe@example.com""#)
            .await
            .body["totalResults"],
        0
    );
    wait_gone(&env, &id).await;
    let departures = env
        .api::<Departure>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        departures.items.len(),
        1,
        "the leaver continues in a Departure"
    );
    assert_eq!(
        scim.call("DELETE", &format!("/Users/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn entra_in_both_flavours_and_onelogin_reach_the_phase() {
    let env = TestEnv::new("scim-entra").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "entra-token").await;
    let scim = Scim::start(&env, "entra-token", true, Settings::default()).await;

    // The connection test: a random GUID, an empty ListResponse.
    let r = scim
        .filter(r#"userName eq "5b2a9c3e-8f1d-4e6a-9b7c-0d1e2f3a4b5c""#)
        .await;
    assert_eq!((r.status, &r.body["totalResults"]), (200, &json!(0)));

    // Entra's default flavour: strings for booleans, capitalised ops, the manager as
    // a plain id; the manager arrives after the report.
    let report = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": "rep@example.com", "externalId": "a1b2", "active": "True",
        "displayName": "Rep Orter",
        "emails": [{"value": "rep@example.com", "type": "work", "primary": "true"}],
        EXT: {"employeeNumber": "2001", "manager": "e-2000"}
    });
    let r = scim.call("POST", "/Users", Some(report)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let boss = json!({"userName": "boss@example.com", "displayName": "Boss", "active": true,
        "emails": [{"value": "boss@example.com", "type": "work", "primary": true}],
        EXT: {"employeeNumber": "2000"}});
    assert_eq!(scim.call("POST", "/Users", Some(boss)).await.status, 201);
    let du = wait_status(&env, "e-2001", "the manager resolved", |s| {
        s.account.provisioned.is_some()
    })
    .await;
    assert_eq!(du.spec.manager_email.as_deref(), Some("boss@example.com"));
    let r = scim.filter(r#"externalId eq "a1b2""#).await;
    assert_eq!(r.body["totalResults"], 1);

    let off = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(
        scim.call("PATCH", "/Users/e-2001", Some(off)).await.status,
        200
    );
    wait_phase(&env, "e-2001", Phase::Quarantined).await;
    // aadOptscim062020: one merged path-less replace with dotted and urn keys.
    let on = patch(json!([{"op": "replace", "value": {
        "active": true,
        "name.givenName": "Rep",
        format!("{EXT}:department"): "Finance"
    }}]));
    let r = scim.call("PATCH", "/Users/e-2001", Some(on)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let du = wait_phase(&env, "e-2001", Phase::Active).await;
    assert_eq!(du.spec.department.as_deref(), Some("Finance"));
    assert!(du.spec.active);

    // OneLogin: emails as one object.
    let ol = json!({"userName": "ol@example.com", "active": true,
        "emails": {"value": "ol@example.com", "primary": true},
        EXT: {"employeeNumber": "3001"}});
    let r = scim.call("POST", "/Users", Some(ol)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let du = wait_status(&env, "e-3001", "provisioned", |s| {
        s.account.provisioned.is_some()
    })
    .await;
    assert_eq!(du.spec.email, "ol@example.com");

    // Entra deletes: 204, then 404.
    assert_eq!(scim.call("DELETE", "/Users/e-2001", None).await.status, 204);
    assert_eq!(scim.get("/Users/e-2001").await.status, 404);
    wait_gone(&env, "e-2001").await;
}

/// What is sent (what, method, path, token, body) and the answer expected (status,
/// scimType).
type Refusal<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    u16,
    Option<&'a str>,
);

/// Every refusal has the RFC 7644 error body, the right status and scimType, no
/// personal data, and writes nothing, in this tenant or another.
#[tokio::test]
async fn refusals_write_nothing_and_tenants_are_apart() {
    let env = TestEnv::new("scim-refusals").await;
    let other = TestEnv::new("scim-other").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "token-a").await;
    tenant(&other, &lms, "token-b").await;
    // One endpoint for both tenants, as in a cluster.
    let both = Settings {
        also: vec![other.namespace.clone()],
        ..Default::default()
    };
    let scim = Scim::start(&env, "token-a", false, both).await;
    let jane = json!({"userName": "jane@example.com", "active": true,
        "emails": [{"value": "jane@example.com", "primary": true}],
        EXT: {"employeeNumber": "1001"}});
    assert_eq!(
        scim.call("POST", "/Users", Some(jane.clone())).await.status,
        201
    );
    let other_scim = Scim::start(&other, "token-b", false, Settings::default()).await;
    assert_eq!(
        other_scim
            .call(
                "POST",
                "/Users",
                Some(json!({"userName": "bob@example.com",
        "emails": [{"value": "bob@example.com"}], EXT: {"employeeNumber": "7"}}))
            )
            .await
            .status,
        201
    );

    let versions = |env: &TestEnv| {
        let api = env.api::<DirectoryUser>();
        async move {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|du| {
                    (
                        du.metadata.name.unwrap(),
                        du.metadata.resource_version.unwrap(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let (before, before_other) = (versions(&env).await, versions(&other).await);
    let big =
        json!({"userName": "x@example.com", "displayName": "x".repeat(300 * 1024)}).to_string();
    let ops = |ops: Value| Some(patch(ops).to_string());
    let other_path = format!("/../{}/Users", other.namespace);
    let cases: Vec<Refusal> = vec![
        ("malformed JSON", "POST", "/Users", Some("token-a"), Some("{\"userName\":".into()), 400, Some("invalidSyntax")),
        ("bad filter", "GET", "/Users?filter=userName%20eq", Some("token-a"), None, 400, Some("invalidFilter")),
        ("wrong type", "POST", "/Users", Some("token-a"), Some(json!({"userName": "y@example.com", "emails": [{"value": "y@example.com"}], "active": "maybe"}).to_string()), 400, Some("invalidValue")),
        ("wrong type in a PATCH", "PATCH", "/Users/e-1001", Some("token-a"), ops(json!([{"op": "replace", "path": "active", "value": 3}])), 400, Some("invalidValue")),
        ("unknown attribute", "POST", "/Users", Some("token-a"), Some(json!({"userName": "y@example.com", "shoeSize": 44}).to_string()), 400, Some("invalidSyntax")),
        ("employeeNumber changed", "PATCH", "/Users/e-1001", Some("token-a"), ops(json!([{"op": "replace", "path": format!("{EXT}:employeeNumber"), "value": "9"}])), 400, Some("mutability")),
        ("all or nothing", "PATCH", "/Users/e-1001", Some("token-a"), ops(json!([{"op": "replace", "path": "active", "value": false}, {"op": "bogus"}])), 400, Some("invalidSyntax")),
        ("duplicate userName", "POST", "/Users", Some("token-a"), Some(json!({"userName": "JANE@example.com", "emails": [{"value": "j2@example.com"}], EXT: {"employeeNumber": "1002"}}).to_string()), 409, Some("uniqueness")),
        ("duplicate employee number", "POST", "/Users", Some("token-a"), Some(json!({"userName": "j3@example.com", "emails": [{"value": "j3@example.com"}], EXT: {"employeeNumber": "1001"}}).to_string()), 409, Some("uniqueness")),
        ("oversized body", "POST", "/Users", Some("token-a"), Some(big), 413, None),
        ("stale ETag", "PUT", "/Users/e-1001", Some("token-a"), Some(jane.to_string()), 412, None),
        ("missing token", "GET", "/Users", None, None, 401, None),
        ("wrong token", "PATCH", "/Users/e-1001", Some("nope"), ops(json!([{"op": "replace", "path": "active", "value": false}])), 401, None),
        ("another tenant's token", "PATCH", "/Users/e-1001", Some("token-b"), ops(json!([{"op": "replace", "path": "active", "value": false}])), 401, None),
        ("another tenant's token, listing", "GET", "/Users", Some("token-b"), None, 401, None),
        ("a token in the query string", "GET", "/Users?access_token=token-a", None, None, 401, None),
        ("this tenant's token on another's path", "GET", &other_path, Some("token-a"), None, 401, None),
    ];
    for (what, method, path, token, body, status, scim_type) in cases {
        let headers: &[(&str, &str)] = if what == "stale ETag" {
            &[("if-match", "W/\"0000\"")]
        } else {
            &[]
        };
        let r = scim.send(method, path, token, body, headers).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(
            r.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{what}"
        );
        assert_eq!(r.body["status"], json!(status.to_string()), "{what}");
        assert_eq!(r.body["scimType"].as_str(), scim_type, "{what}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/scim+json", "{what}");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("example.com") && !detail.contains("jane"),
            "{what}: PII in {detail}"
        );
    }
    // Another tenant's users are never found through this tenant's token.
    let r = scim.filter(r#"userName eq "bob@example.com""#).await;
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(scim.get("/Users/e-7").await.status, 404);
    assert_eq!(
        versions(&env).await,
        before,
        "nothing written in this tenant"
    );
    assert_eq!(
        versions(&other).await,
        before_other,
        "nothing written in the other"
    );
}

/// A replica without the lease (no controllers) answers from its own watches, and
/// its writes go through the API server like the leader's.
#[tokio::test]
async fn a_standby_replica_serves_scim() {
    let env = TestEnv::new("scim-standby").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "standby-token").await;
    let leader = Scim::start(&env, "standby-token", true, Settings::default()).await;
    let standby = Scim::start(&env, "standby-token", false, Settings::default()).await;
    let body = json!({"userName": "sb@example.com", "active": true,
        "emails": [{"value": "sb@example.com"}], EXT: {"employeeNumber": "4001"}});
    assert_eq!(standby.call("POST", "/Users", Some(body)).await.status, 201);
    wait_status(&env, "e-4001", "provisioned", |s| {
        s.account.provisioned.is_some()
    })
    .await;
    poll(
        "the leader's cache to have the user",
        Duration::from_millis(50),
        || {
            let leader = &leader;
            async move { (leader.get("/Users/e-4001").await.status == 200).then_some(()) }
        },
    )
    .await;
    let off = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(
        standby
            .call("PATCH", "/Users/e-4001", Some(off))
            .await
            .status,
        200
    );
    wait_phase(&env, "e-4001", Phase::Quarantined).await;
}

/// Over the rate, 429 with Retry-After; another tenant is not held back; a rotated
/// token replaces the old one.
#[tokio::test]
async fn rate_limit_and_token_rotation() {
    let env = TestEnv::new("scim-limits").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "limit-token").await;
    let settings = Settings {
        rate: Some((1, 3)),
        ..Default::default()
    };
    let scim = Scim::start(&env, "limit-token", false, settings).await;
    let mut statuses = vec![];
    for _ in 0..6 {
        let r = scim.get("/Users").await;
        if r.status == 429 {
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            assert_eq!(r.body["status"], "429");
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);

    // Rotation: the new token works and the old one is refused within the refresh.
    scim_token(&env, "rotated-token").await;
    tokio::time::sleep(roster::scim::tokens::REFRESH + Duration::from_secs(2)).await;
    let old = scim
        .send(
            "GET",
            "/ServiceProviderConfig",
            Some("limit-token"),
            None,
            &[],
        )
        .await;
    assert_eq!(old.status, 401);
    let new = scim
        .send(
            "GET",
            "/ServiceProviderConfig",
            Some("rotated-token"),
            None,
            &[],
        )
        .await;
    assert_eq!(new.status, 200);
}

/// Okta's Push Groups and Entra's group provisioning: a pushed Group becomes a
/// DirectoryGroup, its members' `spec.groups` name it, and a Tenant group rule on the
/// field `groups` puts them into a learning-platform group; leaving the pushed Group
/// leaves the platform group (the rule removes); deleting the Group ends every
/// membership.
#[tokio::test]
async fn pushed_groups_reach_the_learning_platform_through_group_rules() {
    use roster_api::tenant::ProfileField;
    let env = TestEnv::new("scim-groups").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, "groups-token").await;
    let mut rules = crate::joiners::rules();
    rules.push(crate::joiners::rule(
        "sales",
        ProfileField::Groups,
        &["Sales Team"],
        true,
    ));
    env.api::<Tenant>()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"groupRules": rules}})),
        )
        .await
        .unwrap();
    let scim = Scim::start(&env, "groups-token", true, Settings::default()).await;
    for n in 1..=2 {
        let body = json!({"userName": format!("g{n}@example.com"), "active": true,
            "emails": [{"value": format!("g{n}@example.com")}], EXT: {"employeeNumber": format!("500{n}")}});
        assert_eq!(scim.call("POST", "/Users", Some(body)).await.status, 201);
    }
    let r = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Sales Team", "members": [{"value": "e-5001"}, {"value": "e-5002"}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let dg = env
        .api::<roster_api::DirectoryGroup>()
        .get(&gid)
        .await
        .expect("the Group is a DirectoryGroup");
    assert_eq!(dg.spec.display_name, "Sales Team");
    for id in ["e-5001", "e-5002"] {
        let du = wait_status(&env, id, "in the platform group", |s| {
            s.account.groups.iter().any(|g| g == "sales")
        })
        .await;
        assert_eq!(du.spec.groups, vec!["Sales Team"]);
    }
    // The Group reads back with its members, from any request on.
    let r = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(
        r.body["members"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );

    // Entra removes a member.
    let remove =
        patch(json!([{"op": "Remove", "path": "members", "value": [{"value": "e-5001"}]}]));
    assert_eq!(
        scim.call("PATCH", &format!("/Groups/{gid}"), Some(remove))
            .await
            .status,
        200
    );
    wait_status(&env, "e-5001", "out of the platform group", |s| {
        !s.account.groups.iter().any(|g| g == "sales")
    })
    .await;
    // Deleting the Group ends the other membership.
    assert_eq!(
        scim.call("DELETE", &format!("/Groups/{gid}"), None)
            .await
            .status,
        204
    );
    wait_status(&env, "e-5002", "out of the platform group", |s| {
        !s.account.groups.iter().any(|g| g == "sales")
    })
    .await;
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.status, 404);
    let calls = lms.state().calls();
    let removals = calls
        .iter()
        .filter(|c| c.operation == "removeGroupMember")
        .count();
    assert_eq!(removals, 2, "each membership removed once at the platform");
}
