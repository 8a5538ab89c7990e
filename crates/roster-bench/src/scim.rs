//! The SCIM endpoint under load: a tenant of `--users` DirectoryUsers, then
//! `userName eq` lookups and deactivation PATCHes through the endpoint, each beside
//! the API server's own rate for the nearest raw request (a GET of the object, a merge
//! patch of it) at the same concurrency. The controllers do not run: this measures
//! the endpoint, not the lifecycle behind it.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use roster_api::tenant::{PeopleSources, ScimSource, SecretKeyRef};
use roster_api::{
    DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec, Tenant,
};
use serde_json::json;

use crate::stats::{Figures, measure, ms, row};

#[derive(clap::Args)]
pub struct Args {
    /// DirectoryUsers in the tenant.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Requests of each kind.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

const NAMESPACE: &str = "bench";
const TOKEN: &str = "bench-token";

fn name(i: usize) -> String {
    format!("e-{i}")
}

fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.requests <= args.users,
        "--requests must not exceed --users (each PATCH deactivates another user)"
    );
    let plane = tokio::task::spawn_blocking(roster_testkit::ControlPlane::start)
        .await?
        .context("start the control plane")?;
    let client = plane.client().await?;
    roster_testkit::install_crds(&client, "roster-bench", Duration::from_secs(60)).await?;
    setup(&client).await?;
    let users: Api<DirectoryUser> = Api::namespaced(client.clone(), NAMESPACE);

    eprintln!("creating {} DirectoryUsers", args.users);
    let created = measure(args.users, 32, |i| {
        let users = users.clone();
        async move {
            let spec = DirectoryUserSpec {
                tenant_ref: "acme".into(),
                employee_id: i.to_string(),
                full_name: format!("Person {i}"),
                email: email(i),
                department: Some("Sales".into()),
                active: true,
                ..Default::default()
            };
            users
                .create(&PostParams::default(), &DirectoryUser::new(&name(i), spec))
                .await?;
            Ok(())
        }
    })
    .await?;

    // A raw paginated LIST of the same objects, against the endpoint's start: the
    // watch lists them and the index takes each in.
    let raw_list = crate::raw::list(&users).await?;

    let started = Instant::now();
    let watches = roster::controller::Watches::start(&client, &[NAMESPACE.to_string()]);
    let mut settings = roster::scim::Settings::new("127.0.0.1:0".parse()?);
    settings.requests_per_second = std::num::NonZeroU32::new(1_000_000).expect("non-zero");
    settings.burst = settings.requests_per_second;
    let serving = roster::scim::start(
        client.clone(),
        Arc::new(roster::clock::SystemClock),
        Arc::default(),
        &watches,
        settings,
    )
    .await?;
    let base = format!("http://{}/scim/v2/{NAMESPACE}", serving.addr);
    let http = reqwest::Client::new();
    loop {
        let r = http
            .get(format!("{base}/ServiceProviderConfig"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        if r.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_serving = started.elapsed();

    let pick = |i: usize| (i * 7919) % args.users;
    let raw_get = measure(args.requests, args.concurrency, |i| {
        let users = users.clone();
        async move {
            users.get(&name(pick(i))).await?;
            Ok(())
        }
    })
    .await?;
    let lookup = measure(args.requests, args.concurrency, |i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let filter = format!("userName eq \"{}\"", email(pick(i)).to_uppercase());
            let r = http
                .get(format!("{base}/Users"))
                .query(&[("filter", filter.as_str())])
                .bearer_auth(TOKEN)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "lookup answered {}", r.status());
            let body: serde_json::Value = r.json().await?;
            anyhow::ensure!(
                body["totalResults"] == 1,
                "lookup found {}",
                body["totalResults"]
            );
            Ok(())
        }
    })
    .await?;
    // The first half of the users take a raw merge patch, the second half SCIM's
    // deactivation, so that every request changes an object.
    let half = args.users / 2;
    let requests = args.requests.min(half);
    let raw_patch = measure(requests, args.concurrency, |i| {
        let users = users.clone();
        async move {
            users
                .patch(
                    &name(i),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"title": "Patched"}})),
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    let deactivate = measure(requests, args.concurrency, |i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            });
            let r = http
                .patch(format!("{base}/Users/{}", name(half + i)))
                .bearer_auth(TOKEN)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "PATCH answered {}", r.status());
            Ok(())
        }
    })
    .await?;

    let report = json!({
        "users": args.users,
        "concurrency": args.concurrency,
        "create": created.json(),
        "raw_list_ms": ms(raw_list),
        "start_to_serving_ms": ms(to_serving),
        "raw_get": raw_get.json(),
        "user_name_lookup": lookup.json(),
        "raw_merge_patch": raw_patch.json(),
        "deactivation_patch": deactivate.json(),
    });
    let dir = roster_testkit::repo_path("target/bench");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("scim-{}.json", args.users));
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
    print_table(
        &args,
        &created,
        raw_list,
        to_serving,
        [&lookup, &raw_get, &deactivate, &raw_patch],
    );
    println!("(written to {})", file.display());
    plane.stop();
    Ok(())
}

fn print_table(
    args: &Args,
    created: &Figures,
    raw_list: Duration,
    to_serving: Duration,
    [lookup, raw_get, deactivate, raw_patch]: [&Figures; 4],
) {
    println!(
        "SCIM at {} users, {} requests of each kind, {} in flight (created at {:.0}/s)",
        args.users, args.requests, args.concurrency, created.per_second
    );
    println!(
        "start to serving (watch listed, index built): {:.0} ms; raw paginated LIST: {:.0} ms ({:.2}×)",
        ms(to_serving),
        ms(raw_list),
        to_serving.as_secs_f64() / raw_list.as_secs_f64()
    );
    println!("| request | p50 | p99 | rate | the API server's own (p50, p99, rate) | rate ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row("`userName eq` lookup", lookup, "GET of the object", raw_get)
    );
    println!(
        "{}",
        row("deactivation PATCH", deactivate, "merge patch", raw_patch)
    );
}

async fn setup(client: &Client) -> anyhow::Result<()> {
    crate::raw::create_namespace(client, NAMESPACE).await?;
    crate::raw::create_credentials_secret(client, NAMESPACE, "scim", TOKEN).await?;
    let policy = DeprovisionPolicy::new("standard", DeprovisionPolicySpec::default());
    Api::<DeprovisionPolicy>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &policy)
        .await?;
    let mut spec: roster_api::TenantSpec = serde_json::from_value(json!({
        "displayName": "Acme",
        "policyRef": {"name": "standard"},
        "learningPlatform": {"endpoint": "http://127.0.0.1:9", "credentialsSecretRef": {"name": "lms", "key": "token"}},
    }))?;
    spec.sources = PeopleSources {
        scim: Some(ScimSource {
            token_secret_ref: SecretKeyRef {
                name: "scim".into(),
                key: "token".into(),
            },
        }),
        ..Default::default()
    };
    Api::<Tenant>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &Tenant::new("acme", spec))
        .await?;
    Ok(())
}
