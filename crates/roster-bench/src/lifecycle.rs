//! The operator at scale: a tenant of `--users` DirectoryUsers on the real control
//! plane and the `roster` binary with in-memory effects (so that the figures are the
//! operator's and the API server's, not a stand-in's), each figure beside the API
//! server's own rate for the nearest raw request in the same run:
//! - first start and restart until idle, against a raw paginated LIST of the same
//!   objects and a raw status apply loop at the operator's concurrency;
//! - the operator's memory at idle; status writes at rest;
//! - trigger → access revoked for two waves of simultaneous leavers (deactivations, then
//!   termination dates), against a raw patch loop at the wave's concurrency;
//! - deadline lateness when every leaver of the second wave falls due in the same second;
//! - the API server's count of writes, reads and Events per user transition.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use roster_api::{DeprovisionPolicy, DirectoryUser, DirectoryUserSpec, Tenant};
use serde_json::{Value, json};

use crate::apiserver::Requests;
use crate::observer::{Observer, Seen};
use crate::operator::Operator;
use crate::stats::{Figures, measure, ms};

#[derive(clap::Args)]
pub struct Args {
    /// DirectoryUsers in the tenant.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Leavers of the first wave (deactivated at once, then reactivated).
    #[arg(long, default_value_t = 1_000)]
    first_wave: usize,
    /// Leavers of the second wave (termination dates set at once; then every one of
    /// them falls due in the same second). At most `--users`.
    #[arg(long, default_value_t = 10_000)]
    second_wave: usize,
    /// How long to count writes at rest.
    #[arg(long, default_value_t = 60)]
    rest_seconds: u64,
    /// Requests in flight when the benchmark itself writes (creates, waves).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The operator's reconciles at once (`roster run --concurrency`); the raw status
    /// apply loop runs at the same.
    #[arg(long, default_value_t = 16)]
    operator_concurrency: usize,
    /// Print the summary of an earlier run's JSON file instead of running.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
    /// Longest wait for any one stage.
    #[arg(long, default_value_t = 3600)]
    stage_limit_seconds: u64,
    /// Longest wait, after every deadline's transition, for the second wave's purges
    /// (stage 2 is ten writes per leaver: at 10,000 that is many minutes); those not
    /// purged by then are counted, and the run goes on.
    #[arg(long, default_value_t = 3600)]
    purge_limit_seconds: u64,
}

const NAMESPACE: &str = "bench";
/// Users the operator does not watch, for the raw loops.
const RAW_NAMESPACE: &str = "raw";

fn name(i: usize) -> String {
    format!("e-{i}")
}

fn spec(i: usize) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: i.to_string(),
        full_name: format!("Person {i}"),
        email: format!("person{i}@example.com"),
        department: Some(["Sales", "Support", "Engineering"][i % 3].into()),
        active: true,
        ..Default::default()
    }
}

struct Stage {
    name: &'static str,
    figures: Value,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(file) = &args.summary {
        print_summary(&serde_json::from_slice(&std::fs::read(file)?)?);
        return Ok(());
    }
    anyhow::ensure!(
        args.first_wave <= args.users && args.second_wave <= args.users,
        "a wave cannot be larger than --users"
    );
    crate::operator::binary()?;
    let limit = Duration::from_secs(args.stage_limit_seconds);
    let plane = tokio::task::spawn_blocking(roster_testkit::ControlPlane::start)
        .await?
        .context("start the control plane")?;
    let client = plane.client().await?;
    roster_testkit::install_crds(&client, "roster-bench", Duration::from_secs(60)).await?;
    setup(&client).await?;
    let users: Api<DirectoryUser> = Api::namespaced(client.clone(), NAMESPACE);
    let raw_users: Api<DirectoryUser> = Api::namespaced(client.clone(), RAW_NAMESPACE);
    let observer = Observer::start(users.clone());
    let all: Vec<String> = (0..args.users).map(name).collect();
    let mut stages: Vec<Stage> = Vec::new();
    let log = roster_testkit::repo_path(format!("target/bench/lifecycle-{}.log", args.users));
    std::fs::create_dir_all(log.parent().expect("a parent"))?;
    let _ = std::fs::remove_file(&log);

    // The raw figures: creates, a paginated LIST, a status apply loop at the
    // operator's concurrency and a merge patch loop at the waves' concurrency.
    eprintln!("creating {} DirectoryUsers", args.users);
    let created = create(&users, args.users, args.concurrency).await?;
    let raw_count = args.users.min(2_000);
    create(&raw_users, raw_count, args.concurrency).await?;
    let raw_list = crate::raw::list(&users).await?;
    let raw_status = measure(raw_count, args.operator_concurrency, |i| {
        let api = raw_users.clone();
        async move {
            let body = json!({
                "apiVersion": "roster.dev/v1alpha1", "kind": "DirectoryUser",
                "status": {"phase": "Active", "episode": 0},
            });
            api.patch_status(
                &name(i),
                &PatchParams::apply("raw-bench").force(),
                &Patch::Apply(&body),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    let raw_patch = measure(raw_count, args.concurrency, |i| {
        let api = raw_users.clone();
        async move {
            api.patch(
                &name(i),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"active": false}})),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "raw: create {:.0}/s, LIST {:.0} ms, status apply {:.0}/s ({} in flight), merge patch {:.0}/s ({} in flight)",
        created.per_second,
        ms(raw_list),
        raw_status.per_second,
        args.operator_concurrency,
        raw_patch.per_second,
        args.concurrency
    );

    let concurrency = args.operator_concurrency.to_string();
    let operator_args = ["--concurrency", concurrency.as_str()];
    let kubeconfig = plane.kubeconfig_path().to_path_buf();

    // First start: every user is new.
    let before = Requests::scrape(&client).await?;
    let started = Instant::now();
    let operator = Operator::start(NAMESPACE, &kubeconfig, &log, &operator_args).await?;
    observer.wait_all(&all, Seen::Active, limit).await?;
    let all_active = started.elapsed();
    operator
        .wait_idle(args.users as f64, Duration::from_secs(2))
        .await?;
    let first_idle = started.elapsed() - Duration::from_secs(2);
    let first = Requests::scrape(&client).await?.since(&before);
    let (rss_idle, rss_peak) = operator.rss_mib()?;
    eprintln!(
        "first start: all Active after {:.1} s, idle after {:.1} s; RSS {rss_idle:.0} MiB (peak {rss_peak:.0})",
        all_active.as_secs_f64(),
        first_idle.as_secs_f64()
    );
    stages.push(Stage {
        name: "first_start",
        figures: json!({
            "all_active_s": all_active.as_secs_f64(),
            "idle_s": first_idle.as_secs_f64(),
            "users_per_second": args.users as f64 / all_active.as_secs_f64(),
            "vs_raw_status_apply": (args.users as f64 / all_active.as_secs_f64()) / raw_status.per_second,
            "requests": per_user(&first, args.users),
            "rss_mib": rss_idle,
            "rss_peak_mib": rss_peak,
        }),
    });

    // At rest: nothing should be written.
    let before = Requests::scrape(&client).await?;
    tokio::time::sleep(Duration::from_secs(args.rest_seconds)).await;
    let rest = Requests::scrape(&client).await?.since(&before);
    let rest_per_minute = rest.roster_writes() * 60.0 / args.rest_seconds as f64;
    let (rss_rest, _) = operator.rss_mib()?;
    eprintln!(
        "at rest for {} s: {} writes ({rest_per_minute:.1}/min); RSS {rss_rest:.0} MiB",
        args.rest_seconds,
        rest.roster_writes()
    );
    stages.push(Stage {
        name: "at_rest",
        figures: json!({
            "seconds": args.rest_seconds,
            "writes_per_minute": rest_per_minute,
            "events": rest.events(),
            "rss_mib": rss_rest,
        }),
    });

    // Restart with settled users: every one is reconciled once, nothing changes. The
    // raw LIST of the same objects as they are now (status, finalizer and three field
    // managers each: several times the size of the new users listed above).
    let settled_list = crate::raw::list(&users).await?;
    operator.kill();
    let before = Requests::scrape(&client).await?;
    let started = Instant::now();
    let operator = Operator::start(NAMESPACE, &kubeconfig, &log, &operator_args).await?;
    // The process is up (serving /metrics): the rest is listing and reconciling.
    let serving = started.elapsed();
    operator
        .wait_idle(args.users as f64, Duration::from_secs(1))
        .await?;
    let restart_idle = started.elapsed() - Duration::from_secs(1);
    let restart_reconciles = operator.user_reconciles().await?;
    let restart = Requests::scrape(&client).await?.since(&before);
    let (rss_restart, _) = operator.rss_mib()?;
    eprintln!(
        "restart: serving after {:.2} s, idle after {:.2} s ({:.2}× the raw LIST of the settled users, {:.0} ms); {} writes; RSS {rss_restart:.0} MiB",
        serving.as_secs_f64(),
        restart_idle.as_secs_f64(),
        restart_idle.as_secs_f64() / settled_list.as_secs_f64(),
        ms(settled_list),
        restart.roster_writes()
    );
    stages.push(Stage {
        name: "restart",
        figures: json!({
            "idle_s": restart_idle.as_secs_f64(),
            "serving_s": serving.as_secs_f64(),
            "raw_list_settled_ms": ms(settled_list),
            "vs_raw_list": restart_idle.as_secs_f64() / settled_list.as_secs_f64(),
            "reconciles_per_user": restart_reconciles / args.users as f64,
            "writes": restart.roster_writes(),
            "requests": restart.json(),
            "rss_mib": rss_restart,
        }),
    });

    // First wave: deactivations at once, then the reversal.
    let first_wave: Vec<String> = (0..args.first_wave).map(name).collect();
    let wave = leave(
        &users,
        &observer,
        &first_wave,
        json!({"spec": {"active": false}}),
        args.concurrency,
        limit,
        &crate::cpu::Processes::new(operator.pid(), &plane),
    )
    .await?;
    eprintln!("first wave: {}", wave.summary(&raw_patch));
    stages.push(Stage {
        name: "first_wave",
        figures: wave.json(&raw_patch),
    });
    observer.forget(&first_wave, &[Seen::Active]);
    let before = Requests::scrape(&client).await?;
    let started = Instant::now();
    measure(first_wave.len(), args.concurrency, |i| {
        let api = users.clone();
        async move {
            api.patch(
                &name(i),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"active": true}})),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    observer.wait_all(&first_wave, Seen::Active, limit).await?;
    let reversal = started.elapsed();
    let reversed = Requests::scrape(&client).await?.since(&before);
    eprintln!(
        "reversal of the first wave: all Active after {:.1} s",
        reversal.as_secs_f64()
    );
    stages.push(Stage {
        name: "reversal",
        figures: json!({
            "users": first_wave.len(),
            "all_active_s": reversal.as_secs_f64(),
            "requests": per_user(&reversed, first_wave.len()),
        }),
    });
    operator.wait_idle(0.0, Duration::from_secs(1)).await?;

    // Second wave: termination dates (yesterday) set at once. Every leaver's purge
    // deadline counts from the start of that day, so one policy change puts all of
    // their deadlines in the same second.
    let second_wave: Vec<String> = (0..args.second_wave).map(name).collect();
    let today = Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("a day before today");
    let wave = leave(
        &users,
        &observer,
        &second_wave,
        json!({"spec": {"terminationDate": yesterday.to_string()}}),
        args.concurrency,
        limit,
        &crate::cpu::Processes::new(operator.pid(), &plane),
    )
    .await?;
    eprintln!("second wave: {}", wave.summary(&raw_patch));
    stages.push(Stage {
        name: "second_wave",
        figures: wave.json(&raw_patch),
    });
    operator.wait_idle(0.0, Duration::from_secs(1)).await?;

    // What a status write of the operator's size costs the API server, by server-side
    // apply (as the operator writes) and by JSON patch, on users it does not watch.
    let sample = users
        .get(&name(0))
        .await?
        .status
        .context("a leaver's status")?;
    let sample = serde_json::to_value(&sample)?;
    let size = sample.to_string().len();
    let full_apply = measure(raw_count, args.operator_concurrency, |i| {
        let (api, sample) = (raw_users.clone(), sample.clone());
        async move {
            let body = json!({"apiVersion": "roster.dev/v1alpha1", "kind": "DirectoryUser", "status": sample});
            api.patch_status(&name(i), &PatchParams::apply("raw-bench").force(), &Patch::Apply(&body))
                .await?;
            Ok(())
        }
    })
    .await?;
    let full_json_patch = measure(raw_count, args.operator_concurrency, |i| {
        let (client, sample) = (client.clone(), sample.clone());
        async move {
            let patch = json!([{"op": "add", "path": "/status", "value": sample}]);
            let request = http::Request::patch(format!(
                "/apis/roster.dev/v1alpha1/namespaces/{RAW_NAMESPACE}/directoryusers/{}/status?fieldManager=raw-bench",
                name(i)
            ))
            .header("content-type", "application/json-patch+json")
            .body(serde_json::to_vec(&patch)?)?;
            client.request_text(request).await?;
            Ok(())
        }
    })
    .await?;
    // An Event as the operator writes them (one it wrote, like the status above), each
    // a new one about a user it does not watch: a revocation costs the API server this too.
    let sample_event = Api::<Event>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().limit(1))
        .await?
        .items
        .into_iter()
        .next()
        .context("an Event the operator wrote")?;
    let event_create = measure(raw_count, args.operator_concurrency, |i| {
        let api = Api::<Event>::namespaced(client.clone(), RAW_NAMESPACE);
        let mut event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.raw-bench", name(i))),
                ..Default::default()
            },
            series: None,
            ..sample_event.clone()
        };
        if let Some(regarding) = &mut event.regarding {
            regarding.namespace = Some(RAW_NAMESPACE.into());
            regarding.name = Some(name(i));
            regarding.uid = None;
            regarding.resource_version = None;
        }
        async move {
            api.create(&PostParams::default(), &event).await?;
            Ok(())
        }
    })
    .await?;
    // The same status without its conditions (the six kstatus conditions are half of
    // it, and a third of the object with their managedFields), applied to new users as
    // the full one was: what a smaller status would save the API server per write.
    // (A profile of kube-apiserver during a wave: decoding, schema coercion,
    // validation and encoding of the whole object are most of a write's cost.)
    let mut lean = sample.clone();
    if let Some(fields) = lean.as_object_mut() {
        fields.remove("conditions");
    }
    let lean_size = lean.to_string().len();
    create_from(&raw_users, raw_count, raw_count, args.concurrency).await?;
    let lean_apply = measure(raw_count, args.operator_concurrency, |i| {
        let (api, lean) = (raw_users.clone(), lean.clone());
        async move {
            let body = json!({"apiVersion": "roster.dev/v1alpha1", "kind": "DirectoryUser", "status": lean});
            api.patch_status(&name(raw_count + i), &PatchParams::apply("raw-bench").force(), &Patch::Apply(&body))
                .await?;
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "a status of the operator's size ({size} bytes of JSON): server-side apply {:.0}/s, JSON patch {:.0}/s; without its conditions ({lean_size} bytes) server-side apply {:.0}/s; an Event created {:.0}/s ({} in flight)",
        full_apply.per_second,
        full_json_patch.per_second,
        lean_apply.per_second,
        event_create.per_second,
        args.operator_concurrency
    );
    stages.push(Stage {
        name: "raw_full_status",
        figures: json!({
            "status_bytes": size,
            "server_side_apply": full_apply.json(),
            "json_patch": full_json_patch.json(),
            "without_conditions_bytes": lean_size,
            "without_conditions_server_side_apply": lean_apply.json(),
            "event_create": event_create.json(),
        }),
    });

    // Long enough for the policy change's one write per leaver (the wave needed that
    // and an Event each).
    let margin = (wave.elapsed * 3 / 2).max(Duration::from_secs(20));
    let start_of_yesterday = yesterday.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    // A whole second, as the policy's durations are.
    let due = DateTime::from_timestamp((Utc::now() + margin).timestamp(), 0).expect("a time");
    let after = (due - start_of_yesterday).num_seconds();
    let period = format!("{}h{}m{}s", after / 3600, (after % 3600) / 60, after % 60);
    let before = Requests::scrape(&client).await?;
    Api::<DeprovisionPolicy>::namespaced(client.clone(), NAMESPACE)
        .patch(
            "standard",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"quarantinePeriod": period, "purgeDeadline": period}})),
        )
        .await?;
    // CPU from the second the deadlines fall due (the observer records on its own).
    let processes = crate::cpu::Processes::new(operator.pid(), &plane);
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default()).await;
    let cpu_before = processes.sample();
    observer
        .wait_all(&second_wave, Seen::Deprovisioning, limit + margin)
        .await?;
    let transitions_done = Utc::now();
    let deadlines_cpu = processes.sample().since(&cpu_before);
    let purged_in_time = observer
        .wait_all(
            &second_wave,
            Seen::Purged,
            Duration::from_secs(args.purge_limit_seconds),
        )
        .await
        .is_ok();
    let purged = observer.times(&second_wave, Seen::Purged).len();
    let deadlines = Requests::scrape(&client).await?.since(&before);
    let dues = observer.deprovision_due(&second_wave);
    let on_time_due = dues.iter().filter(|d| **d == Some(due)).count();
    let mut lateness: Vec<f64> = observer
        .times(&second_wave, Seen::Deprovisioning)
        .iter()
        .map(|(_, at)| (*at - due).num_milliseconds() as f64 / 1000.0)
        .collect();
    lateness.sort_by(f64::total_cmp);
    let purged_last = observer
        .times(&second_wave, Seen::Purged)
        .iter()
        .map(|(_, at)| (*at - due).num_milliseconds() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let (rss_end, rss_end_peak) = operator.rss_mib()?;
    let all_transitioned_after = (transitions_done - due).num_milliseconds() as f64 / 1000.0;
    eprintln!(
        "deadlines: all transitioned {all_transitioned_after:.1} s after; {purged} of {} purged{}",
        second_wave.len(),
        if purged_in_time {
            ""
        } else {
            " within the purge limit"
        }
    );
    eprintln!(
        "deadlines: {} of {} due in the same second; lateness p50 {:.2} s, p99 {:.2} s, max {:.2} s; last purged {purged_last:.1} s after; RSS {rss_end:.0} MiB (peak {rss_end_peak:.0}); until all transitioned: {}",
        on_time_due,
        second_wave.len(),
        quantile(&lateness, 0.5),
        quantile(&lateness, 0.99),
        lateness.last().copied().unwrap_or_default(),
        crate::cpu::summary(&deadlines_cpu),
    );
    stages.push(Stage {
        name: "deadlines",
        figures: json!({
            "users": second_wave.len(),
            "due_in_the_same_second": on_time_due,
            "margin_s": margin.as_secs_f64(),
            "lateness_p50_s": quantile(&lateness, 0.5),
            "lateness_p99_s": quantile(&lateness, 0.99),
            "lateness_max_s": lateness.last().copied().unwrap_or_default(),
            "last_purged_after_s": purged_last,
            "purged": purged,
            "all_purged": purged_in_time,
            "requests": per_user(&deadlines, second_wave.len()),
            "cpu": deadlines_cpu,
            "rss_mib": rss_end,
            "rss_peak_mib": rss_end_peak,
        }),
    });
    operator.kill();

    let report = json!({
        "users": args.users,
        "operator_concurrency": args.operator_concurrency,
        "concurrency": args.concurrency,
        "raw": {
            "create": created.json(),
            "list_ms": ms(raw_list),
            "status_apply": raw_status.json(),
            "merge_patch": raw_patch.json(),
        },
        "stages": stages.iter().map(|s| (s.name.to_string(), s.figures.clone())).collect::<serde_json::Map<_, _>>(),
    });
    let file = roster_testkit::repo_path(format!("target/bench/lifecycle-{}.json", args.users));
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
    print_summary(&report);
    println!(
        "(written to {}; the operator's log: {})",
        file.display(),
        log.display()
    );
    plane.stop();
    Ok(())
}

/// A wave of leavers: `patch` applied to every one of `names` at once (`concurrency`
/// in flight), then every one seen with its access revoked.
struct Wave {
    users: usize,
    elapsed: Duration,
    latency_p50: f64,
    latency_p99: f64,
    latency_max: f64,
    requests: Value,
    /// CPU time of each process of the run while the wave lasted.
    cpu: Value,
}

impl Wave {
    fn rate(&self) -> f64 {
        self.users as f64 / self.elapsed.as_secs_f64()
    }

    fn summary(&self, raw: &Figures) -> String {
        format!(
            "{} leavers all revoked after {:.1} s ({:.0}/s, {:.2}× the raw merge patch); trigger → revoked p50 {:.3} s, p99 {:.3} s, max {:.3} s; {}",
            self.users,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.rate() / raw.per_second,
            self.latency_p50,
            self.latency_p99,
            self.latency_max,
            crate::cpu::summary(&self.cpu)
        )
    }

    fn json(&self, raw: &Figures) -> Value {
        json!({
            "users": self.users,
            "all_revoked_s": self.elapsed.as_secs_f64(),
            "users_per_second": self.rate(),
            "vs_raw_merge_patch": self.rate() / raw.per_second,
            "trigger_to_revoked_p50_s": self.latency_p50,
            "trigger_to_revoked_p99_s": self.latency_p99,
            "trigger_to_revoked_max_s": self.latency_max,
            "requests": self.requests,
            "cpu": self.cpu,
        })
    }
}

async fn leave(
    users: &Api<DirectoryUser>,
    observer: &Observer,
    names: &[String],
    patch: Value,
    concurrency: usize,
    limit: Duration,
    processes: &crate::cpu::Processes,
) -> anyhow::Result<Wave> {
    use futures::StreamExt as _;
    let client = &users.clone().into_client();
    observer.forget(names, &[Seen::Revoked, Seen::Deprovisioning, Seen::Purged]);
    let before = Requests::scrape(client).await?;
    let cpu_before = processes.sample();
    let started = Instant::now();
    let acknowledged: BTreeMap<String, DateTime<Utc>> = futures::stream::iter(names.iter())
        .map(|n| {
            let (api, patch) = (users.clone(), patch.clone());
            async move {
                api.patch(n, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                anyhow::Ok((n.clone(), Utc::now()))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    observer.wait_all(names, Seen::Revoked, limit).await?;
    let elapsed = started.elapsed();
    let cpu = processes.sample().since(&cpu_before);
    let requests = Requests::scrape(client).await?.since(&before);
    let mut latency: Vec<f64> = observer
        .times(names, Seen::Revoked)
        .iter()
        .map(|(n, at)| (*at - acknowledged[n]).num_milliseconds() as f64 / 1000.0)
        .collect();
    latency.sort_by(f64::total_cmp);
    Ok(Wave {
        users: names.len(),
        elapsed,
        latency_p50: quantile(&latency, 0.5),
        latency_p99: quantile(&latency, 0.99),
        latency_max: latency.last().copied().unwrap_or_default(),
        requests: per_user(&requests, names.len()),
        cpu,
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The API server's count of what the stage cost, per user, and in full.
fn per_user(requests: &Requests, users: usize) -> Value {
    let n = users.max(1) as f64;
    json!({
        "writes_per_user": requests.roster_writes() / n,
        "status_writes_per_user": requests.status_writes() / n,
        "reads_per_user": requests.roster_reads() / n,
        "events_per_user": requests.events() / n,
        "all": requests.json(),
    })
}

async fn create(
    api: &Api<DirectoryUser>,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    create_from(api, 0, count, concurrency).await
}

/// Creates the users `first..first + count`.
async fn create_from(
    api: &Api<DirectoryUser>,
    first: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    measure(count, concurrency, |i| {
        let (api, i) = (api.clone(), first + i);
        async move {
            api.create(
                &PostParams::default(),
                &DirectoryUser::new(&name(i), spec(i)),
            )
            .await?;
            Ok(())
        }
    })
    .await
}

async fn setup(client: &Client) -> anyhow::Result<()> {
    for namespace in [NAMESPACE, RAW_NAMESPACE] {
        crate::raw::create_namespace(client, namespace).await?;
    }
    crate::raw::create_credentials_secret(client, NAMESPACE, "lms", "bench").await?;
    crate::raw::create_unguarded_policy(client, NAMESPACE, "720h", "720h").await?;
    let spec: roster_api::TenantSpec = serde_json::from_value(json!({
        "displayName": "Acme",
        "policyRef": {"name": "standard"},
        "learningPlatform": {"endpoint": "http://127.0.0.1:9", "credentialsSecretRef": {"name": "lms", "key": "token"}},
        "deletionProtection": false,
    }))?;
    Api::<Tenant>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &Tenant::new("acme", spec))
        .await?;
    Ok(())
}

/// The run's figures beside the API server's, as `docs/performance.md` shows them. The
/// fair baseline for a status write is a status write of the operator's own size (the
/// API server's cost grows with the object), so each rate is also given as a share of
/// what that write rate allows for the writes the stage needed per user.
fn print_summary(report: &Value) {
    let stage = |name: &str, key: &str| report["stages"][name][key].as_f64().unwrap_or_default();
    let per_user = |name: &str, key: &str| {
        report["stages"][name]["requests"][key]
            .as_f64()
            .unwrap_or_default()
    };
    let per_second = |figures: &Value| figures["per_second"].as_f64().unwrap_or_default();
    let full_write = per_second(&report["stages"]["raw_full_status"]["server_side_apply"]);
    let list_s = report["raw"]["list_ms"].as_f64().unwrap_or_default() / 1000.0;
    // Users per second the API server allows at `writes` status writes per user.
    let allows = |writes: f64| full_write / writes.max(1.0);
    println!(
        "roster at {} users ({} reconciles at once); the API server: LIST {:.2} s, a status write of the operator's size ({} bytes) {:.0}/s",
        report["users"],
        report["operator_concurrency"],
        list_s,
        report["stages"]["raw_full_status"]["status_bytes"],
        full_write
    );
    let lean_write =
        per_second(&report["stages"]["raw_full_status"]["without_conditions_server_side_apply"]);
    if lean_write > 0.0 {
        println!(
            "  the same status without its conditions ({} bytes): {lean_write:.0}/s, {:.2}× the full one",
            report["stages"]["raw_full_status"]["without_conditions_bytes"],
            lean_write / full_write.max(f64::MIN_POSITIVE)
        );
    }
    println!("| figure | roster | the API server's own | ratio |");
    println!("|---|---|---|---|");
    // The restart lists the settled users (status, finalizer, three field managers):
    // its baseline is a LIST of them, taken just before; older reports have only the
    // LIST of the new users.
    let settled_s = match stage("restart", "raw_list_settled_ms") {
        ms if ms > 0.0 => ms / 1000.0,
        _ => list_s,
    };
    println!(
        "| restart to idle ({:.1} reconciles per user) | {:.2} s | paginated LIST of the settled users {:.2} s | {:.2}× |",
        stage("restart", "reconciles_per_user"),
        stage("restart", "idle_s"),
        settled_s,
        stage("restart", "idle_s") / settled_s
    );
    for (name, what, rate_key) in [
        ("first_start", "first start (new users)", "users_per_second"),
        (
            "first_wave",
            "first wave (deactivations)",
            "users_per_second",
        ),
        (
            "second_wave",
            "second wave (termination dates)",
            "users_per_second",
        ),
    ] {
        // Every write the operator needed (a new user's finalizer too: it costs the API
        // server what a status write does), at the rate of a status write of this size.
        // A wave's own trigger patches are the bench's, not the operator's.
        let writes = if name == "first_start" {
            per_user(name, "writes_per_user")
        } else {
            per_user(name, "status_writes_per_user")
        };
        let rate = stage(name, rate_key);
        println!(
            "| {what}: {} users | {rate:.0} users/s ({writes:.1} writes, {:.1} reads, {:.1} Events per user) | {:.0} users/s at {writes:.1} writes each | {:.2}× |",
            report["stages"][name]["users"]
                .as_u64()
                .unwrap_or(report["users"].as_u64().unwrap_or_default()),
            per_user(name, "reads_per_user"),
            per_user(name, "events_per_user"),
            allows(writes),
            rate / allows(writes)
        );
    }
    for name in ["first_wave", "second_wave"] {
        println!(
            "| {name}: trigger → access revoked | p50 {:.2} s, p99 {:.2} s | all of them written at that rate: {:.2} s | |",
            stage(name, "trigger_to_revoked_p50_s"),
            stage(name, "trigger_to_revoked_p99_s"),
            stage(name, "users") / allows(per_user(name, "status_writes_per_user")),
        );
    }
    // What else a wave costs the one API server, at its own rates measured alone: the
    // triggers (the bench's merge patches, as a feed or SCIM would send them) and an
    // Event per revocation. Each rate was measured with the API server to itself, so
    // their sum is the wave's floor were its requests served one kind after another.
    let merge = per_second(&report["raw"]["merge_patch"]);
    let event = per_second(&report["stages"]["raw_full_status"]["event_create"]);
    if merge > 0.0 && event > 0.0 && full_write > 0.0 {
        for name in ["first_wave", "second_wave"] {
            let users = stage(name, "users");
            let floor = users
                * (1.0 / merge
                    + per_user(name, "status_writes_per_user") / full_write
                    + per_user(name, "events_per_user") / event);
            println!(
                "| {name}: every request of the wave (trigger patch {merge:.0}/s, status writes, Events {event:.0}/s) | all revoked after {:.2} s | those requests one after another at the API server's own rates: {floor:.2} s | {:.2}× |",
                stage(name, "all_revoked_s"),
                floor / stage(name, "all_revoked_s").max(f64::EPSILON),
            );
        }
    }
    println!(
        "| {} deadlines in the same second: lateness | p50 {:.2} s, p99 {:.2} s | one write each at that rate: {:.2} s | |",
        stage("deadlines", "users"),
        stage("deadlines", "lateness_p50_s"),
        stage("deadlines", "lateness_p99_s"),
        stage("deadlines", "users") / full_write.max(1.0)
    );
    // Who had the machine's cores while each stage ran (older reports have no figures).
    for name in ["first_wave", "second_wave", "deadlines"] {
        let cpu = &report["stages"][name]["cpu"];
        if cpu.is_object() {
            println!("| {name}: CPU | {} | | |", crate::cpu::summary(cpu));
        }
    }
    println!(
        "| RSS idle / after the waves | {:.0} / {:.0} MiB | | |",
        stage("at_rest", "rss_mib"),
        stage("deadlines", "rss_peak_mib")
    );
    println!(
        "| writes at rest | {:.1}/min | | |",
        stage("at_rest", "writes_per_minute")
    );
}
