//! The soak: a tenant of `--users` people on the real control plane, the `roster`
//! binary with HTTP effects against the learning-platform stand-in (in this process,
//! so that its call log and duplicate check can be read), and for `--minutes` a steady
//! churn of joiners, movers, leavers and reversals under injected faults (error rates,
//! lost responses, 429s and latency at the stand-in, outages of it, `kill -9` of the
//! operator). Every minute: the operator's RSS, users per phase, the API server's count
//! of status writes. At the end: RSS first/last/max, each purge's lateness against its
//! persisted deadline, the stand-in's duplicates, and lost work (every leaver purged,
//! each of its operations applied exactly once; every mover's last profile at the
//! platform). The calendar is left out: its stand-ins need per-user calendar seeds and
//! its steps are covered by the integration tests.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use rand::Rng as _;
use roster_api::{DirectoryUser, DirectoryUserSpec, Phase, StepState, Tenant};
use roster_standins::lms::{Fault, LmsSeed, LmsStandIn, LmsState};
use serde_json::{Value, json};

use crate::apiserver::Requests;
use crate::operator::Operator;

#[derive(clap::Args)]
pub struct Args {
    /// People in the tenant at the start (the first `--managers` of them are managers
    /// and never churn).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// How long the churn runs, in minutes (fractions allowed).
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Write the machine-readable summary (JSON) here too (always written to
    /// `target/bench/soak-<users>.json`).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Managers: the movers' and leavers' managers (rules are transferred to them).
    #[arg(long, default_value_t = 100)]
    managers: usize,
    /// New people per minute (created as DirectoryUsers; the operator creates their
    /// platform accounts).
    #[arg(long, default_value_t = 20.0)]
    joiners_per_minute: f64,
    /// Profile changes per minute (title, department and manager at once).
    #[arg(long, default_value_t = 60.0)]
    movers_per_minute: f64,
    /// Deactivations per minute.
    #[arg(long, default_value_t = 20.0)]
    leavers_per_minute: f64,
    /// Reactivations per minute of leavers still in quarantine.
    #[arg(long, default_value_t = 4.0)]
    reversals_per_minute: f64,
    /// The policy's quarantine (a leaver's stage 2 starts this long after it left).
    #[arg(long, default_value = "2m")]
    quarantine: String,
    /// The policy's purge deadline (counted from the deactivation).
    #[arg(long, default_value = "5m")]
    purge_deadline: String,
    /// Share of the stand-in's calls answered 503 before they are applied.
    #[arg(long, default_value_t = 0.05)]
    error_rate: f64,
    /// Share answered 503 after they were applied (the response is lost).
    #[arg(long, default_value_t = 0.02)]
    lost_response_rate: f64,
    /// Share answered 429 with `Retry-After: 1`.
    #[arg(long, default_value_t = 0.02)]
    throttle_rate: f64,
    /// Latency added to every call of the stand-in, in milliseconds.
    #[arg(long, default_value_t = 10)]
    latency_ms: u64,
    /// Every this many minutes the stand-in answers every call 503 for
    /// `--outage-seconds` (0: no outages).
    #[arg(long, default_value_t = 20.0)]
    outage_every_minutes: f64,
    #[arg(long, default_value_t = 30)]
    outage_seconds: u64,
    /// Every this many minutes the operator is killed with SIGKILL and started again
    /// (0: never).
    #[arg(long, default_value_t = 15.0)]
    kill_every_minutes: f64,
    /// A purge (or stage 2) this much later than its persisted deadline is a miss.
    /// The operator starts a purge at its deadline, so some lateness is inherent: what
    /// a reconcile, the calls and their retries take.
    #[arg(long, default_value_t = 120.0)]
    deadline_slack_seconds: f64,
    /// RSS is flat when the last sample is within this share of the post-warm-up one.
    #[arg(long, default_value_t = 10.0)]
    rss_tolerance_percent: f64,
    /// Churn minutes before the RSS baseline is taken (the populations of quarantined
    /// and deprovisioning leavers reach their steady size first); at most a third of
    /// `--minutes`.
    #[arg(long, default_value_t = 8.0)]
    warmup_minutes: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    sample_seconds: u64,
    /// Longest wait after the churn for the last leavers to be purged, in minutes.
    #[arg(long, default_value_t = 10.0)]
    drain_minutes: f64,
    /// Requests in flight when the soak creates the initial users.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The operator's reconciles at once (`roster run --concurrency`).
    #[arg(long, default_value_t = 16)]
    operator_concurrency: usize,
    /// The operator's calls per second to the platform (`roster run --rate-limit`).
    #[arg(long, default_value_t = 1000)]
    rate_limit: u32,
}

const NAMESPACE: &str = "soak";
const TOKEN: &str = "soak-token";
const DEPARTMENTS: [&str; 4] = ["Sales", "Support", "Engineering", "Finance"];

fn name(i: usize) -> String {
    format!("s-{i}")
}

fn employee_id(i: usize) -> String {
    format!("S{i:06}")
}

fn email(i: usize) -> String {
    format!("person.s{i}@example.com")
}

/// The person `i`'s record; non-managers report to manager `i % managers`.
fn spec(i: usize, managers: usize) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: employee_id(i),
        full_name: format!("Person S{i}"),
        email: email(i),
        department: Some(DEPARTMENTS[i % DEPARTMENTS.len()].into()),
        title: Some("Staff".into()),
        manager_email: (i >= managers).then(|| email(i % managers)),
        active: true,
        ..Default::default()
    }
}

/// The platform before roster: every initial person with an account, and each
/// non-manager with something to hand over: a rule they assign, a seat in an event,
/// a group membership and an outstanding assignment.
fn seed(users: usize, managers: usize) -> anyhow::Result<LmsSeed> {
    let mut yaml = String::from("users:\n");
    for i in 0..users {
        let manager = if i >= managers {
            format!(", managerEmployeeId: {}", employee_id(i % managers))
        } else {
            String::new()
        };
        yaml += &format!(
            "  - {{ employeeId: {}, fullName: Person S{i}, email: {}, department: {}, title: Staff, calendarAccess: true{manager} }}\n",
            employee_id(i),
            email(i),
            DEPARTMENTS[i % DEPARTMENTS.len()],
        );
    }
    let staff: Vec<String> = (managers..users).map(employee_id).collect();
    yaml += "events:\n";
    for i in managers..users {
        yaml += &format!(
            "  - {{ id: ev-{id}, title: Course, startsAt: \"+5d\", organizer: {}, capacity: 3, attendees: [{id}] }}\n",
            employee_id(i % managers),
            id = employee_id(i),
        );
    }
    yaml += "rules:\n";
    for id in &staff {
        yaml += &format!(
            "  - {{ id: rule-{id}, name: Rule, assignerEmployeeId: {id}, contentId: c-1 }}\n"
        );
    }
    yaml += &format!(
        "groups:\n  - {{ id: everyone, name: Everyone, members: [{}] }}\n",
        staff.join(", ")
    );
    yaml += "assignments:\n";
    for id in &staff {
        yaml += &format!(
            "  - {{ id: as-{id}, employeeId: {id}, contentId: c-2, status: outstanding }}\n"
        );
    }
    LmsSeed::from_yaml_str(&yaml).map_err(|e| anyhow::anyhow!("the soak's seed: {e}"))
}

/// What the soak's own watch last saw of one user.
#[derive(Clone, Debug, Default)]
struct Tracked {
    phase: Phase,
    /// No step pending or failed.
    settled: bool,
    provisioned: bool,
    deleted: bool,
    trigger_time: Option<DateTime<Utc>>,
    deprovision_due: Option<DateTime<Utc>>,
    deprovisioned: Option<DateTime<Utc>>,
    purge_due: Option<DateTime<Utc>>,
    purged: Option<DateTime<Utc>>,
    reversals: i32,
}

#[derive(Clone, Default)]
struct Tracker {
    users: Arc<Mutex<HashMap<String, Tracked>>>,
}

impl Tracker {
    fn start(api: Api<DirectoryUser>) -> Self {
        let tracker = Self::default();
        let users = tracker.users.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let (object, deleted) = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(_) => continue,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let Some(name) = object.metadata.name.clone() else {
                    continue;
                };
                let mut users = users.lock().expect("tracker lock");
                let user = users.entry(name).or_default();
                user.deleted = deleted;
                if let Some(s) = &object.status {
                    user.phase = s.phase;
                    user.settled = s
                        .steps
                        .iter()
                        .all(|st| matches!(st.state, StepState::Succeeded | StepState::Skipped));
                    user.provisioned = s.account.provisioned.is_some();
                    user.trigger_time = s.trigger_time;
                    user.deprovision_due = s.deprovision_due_time;
                    user.deprovisioned = s.deprovisioned_time;
                    user.purge_due = s.purge_due_time;
                    user.purged = s.purged_time;
                    user.reversals = s.reversals;
                }
            }
        });
        tracker
    }

    fn get(&self, name: &str) -> Option<Tracked> {
        self.users.lock().expect("tracker lock").get(name).cloned()
    }

    /// Users (not deleted) per phase.
    fn phases(&self) -> BTreeMap<String, usize> {
        let users = self.users.lock().expect("tracker lock");
        let mut counts = BTreeMap::new();
        for user in users.values().filter(|u| !u.deleted) {
            *counts.entry(format!("{:?}", user.phase)).or_insert(0) += 1;
        }
        counts
    }

    /// Whether every one of `names` is Active with nothing pending and an account.
    fn all_settled(&self, names: impl Iterator<Item = String>) -> bool {
        let users = self.users.lock().expect("tracker lock");
        names.into_iter().all(|n| {
            users
                .get(&n)
                .is_some_and(|u| u.phase == Phase::Active && u.settled && u.provisioned)
        })
    }
}

/// One leaver episode the soak started.
struct Leaver {
    left_at: Instant,
    reversed: bool,
    /// Seen Purged (and its object deleted).
    done: bool,
}

/// What the soak did, counted.
#[derive(Default)]
struct Churn {
    joiners: usize,
    movers: usize,
    leavers: usize,
    reversals: usize,
    kills: usize,
    outages: usize,
    /// The soak's own writes that failed (retried at the next tick).
    write_errors: usize,
    restart_ms: Vec<f64>,
}

struct Soak {
    args: Args,
    users: Api<DirectoryUser>,
    tracker: Tracker,
    lms: LmsStandIn,
    /// The next index for a joiner.
    next: usize,
    /// Everyone who is not a manager and has not left for good.
    pool: Vec<usize>,
    /// Leaver episodes by person (the last one).
    leavers: HashMap<usize, Leaver>,
    /// Reversals done per person.
    reversed: HashMap<usize, i32>,
    /// Every finished leaver episode, by person.
    purged: Vec<usize>,
    /// The last record sent for each mover.
    moved: HashMap<usize, DirectoryUserSpec>,
    churn: Churn,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.managers > 0 && args.managers < args.users,
        "--managers must be between 1 and --users"
    );
    crate::operator::binary()?;
    let plane = tokio::task::spawn_blocking(roster_testkit::ControlPlane::start)
        .await?
        .context("start the control plane")?;
    let client = plane.client().await?;
    roster_testkit::install_crds(&client, "roster-bench", Duration::from_secs(60)).await?;
    eprintln!(
        "seeding the learning-platform stand-in with {} people",
        args.users
    );
    let lms = LmsStandIn::start(LmsState::with_seed(
        TOKEN,
        seed(args.users, args.managers)?,
    )?)
    .await?;
    setup(&client, &args, &lms).await?;
    let users: Api<DirectoryUser> = Api::namespaced(client.clone(), NAMESPACE);
    let tracker = Tracker::start(users.clone());
    let log = roster_testkit::repo_path(format!("target/bench/soak-{}.log", args.users));
    std::fs::create_dir_all(log.parent().expect("a parent"))?;
    let _ = std::fs::remove_file(&log);

    eprintln!("creating {} DirectoryUsers", args.users);
    crate::stats::measure(args.users, args.concurrency, |i| {
        let (api, spec) = (users.clone(), spec(i, args.managers));
        async move {
            api.create(&PostParams::default(), &DirectoryUser::new(&name(i), spec))
                .await?;
            Ok(())
        }
    })
    .await?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let concurrency = args.operator_concurrency.to_string();
    let rate_limit = args.rate_limit.to_string();
    let operator_args = [
        "--concurrency",
        concurrency.as_str(),
        "--rate-limit",
        rate_limit.as_str(),
    ];
    let start_operator =
        || Operator::start_with_effects(NAMESPACE, &kubeconfig, &log, "http", &operator_args);
    let started = Instant::now();
    let mut operator = Some(start_operator().await?);
    loop {
        if tracker.all_settled((0..args.users).map(name)) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the initial users were not all Active with an account within an hour"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let adopted_s = started.elapsed().as_secs_f64();
    let (rss, _) = operator.as_ref().expect("running").rss_mib()?;
    eprintln!(
        "all {} users Active with their accounts adopted after {adopted_s:.1} s; RSS {rss:.0} MiB",
        args.users
    );

    let mut soak = Soak {
        pool: (args.managers..args.users).collect(),
        next: args.users,
        users,
        tracker,
        lms,
        leavers: HashMap::new(),
        reversed: HashMap::new(),
        purged: Vec::new(),
        moved: HashMap::new(),
        churn: Churn::default(),
        args,
    };
    let faults = install_faults(&soak.args, soak.lms.state());

    // The churn.
    let churn_for = Duration::from_secs_f64(soak.args.minutes * 60.0);
    let warmup = Duration::from_secs_f64(
        (soak.args.warmup_minutes * 60.0).min(churn_for.as_secs_f64() / 3.0),
    );
    let sample_every = Duration::from_secs(soak.args.sample_seconds);
    let every = |minutes: f64| (minutes > 0.0).then(|| Duration::from_secs_f64(minutes * 60.0));
    let kill_every = every(soak.args.kill_every_minutes);
    let outage_every = every(soak.args.outage_every_minutes);
    let churn_started = Instant::now();
    let mut process_started = churn_started;
    let mut last_tick = churn_started;
    let mut next_sample = churn_started + sample_every;
    let mut next_kill = kill_every.map(|d| churn_started + d);
    let mut next_outage = outage_every.map(|d| churn_started + d);
    let mut outage: Option<(u64, Instant)> = None;
    let mut due = [0.0_f64; 4];
    let mut samples: Vec<Value> = Vec::new();
    let mut last_requests = Requests::scrape(&client).await?;
    let mut baseline: Option<f64> = None;
    eprintln!(
        "churn for {:.1} min: {} joiners, {} movers, {} leavers, {} reversals per minute; faults: {:.0} % 503, {:.0} % lost responses, {:.0} % 429, {} ms latency; outages every {:?}, kill -9 every {:?}",
        soak.args.minutes,
        soak.args.joiners_per_minute,
        soak.args.movers_per_minute,
        soak.args.leavers_per_minute,
        soak.args.reversals_per_minute,
        soak.args.error_rate * 100.0,
        soak.args.lost_response_rate * 100.0,
        soak.args.throttle_rate * 100.0,
        soak.args.latency_ms,
        outage_every,
        kill_every,
    );
    while churn_started.elapsed() < churn_for {
        let now = Instant::now();
        let minutes = now.duration_since(last_tick).as_secs_f64() / 60.0;
        last_tick = now;
        for (slot, rate) in [
            soak.args.joiners_per_minute,
            soak.args.movers_per_minute,
            soak.args.leavers_per_minute,
            soak.args.reversals_per_minute,
        ]
        .into_iter()
        .enumerate()
        {
            due[slot] += rate * minutes;
        }
        while due[0] >= 1.0 {
            due[0] -= 1.0;
            soak.join().await;
        }
        while due[1] >= 1.0 {
            due[1] -= 1.0;
            soak.mover().await;
        }
        while due[2] >= 1.0 {
            due[2] -= 1.0;
            soak.leave().await;
        }
        while due[3] >= 1.0 {
            due[3] -= 1.0;
            soak.reverse().await;
        }
        soak.collect_purged().await;

        if next_kill.is_some_and(|at| now >= at) {
            operator.take().expect("running").kill();
            let restart = Instant::now();
            operator = Some(start_operator().await?);
            soak.churn.kills += 1;
            soak.churn
                .restart_ms
                .push(restart.elapsed().as_secs_f64() * 1000.0);
            process_started = Instant::now();
            next_kill = kill_every.map(|d| now + d);
            eprintln!(
                "[{:>5.1} min] kill -9 of the operator; started again",
                churn_started.elapsed().as_secs_f64() / 60.0
            );
        }
        if let Some((id, until)) = outage
            && now >= until
        {
            soak.lms.state().remove_fault(id);
            outage = None;
        }
        if next_outage.is_some_and(|at| now >= at) && outage.is_none() {
            let id = soak.lms.state().add_fault(Fault::on("*").fail(503));
            outage = Some((id, now + Duration::from_secs(soak.args.outage_seconds)));
            soak.churn.outages += 1;
            next_outage = outage_every.map(|d| now + d);
            eprintln!(
                "[{:>5.1} min] the learning platform is down for {} s",
                churn_started.elapsed().as_secs_f64() / 60.0,
                soak.args.outage_seconds
            );
        }
        if now >= next_sample {
            next_sample += sample_every;
            let requests = Requests::scrape(&client).await?;
            let window = requests.since(&last_requests);
            last_requests = requests;
            let per_minute = 60.0 / sample_every.as_secs_f64();
            let running = operator.as_ref().expect("running");
            let (rss, hwm) = running.rss_mib()?;
            let at = churn_started.elapsed().as_secs_f64() / 60.0;
            if baseline.is_none() && churn_started.elapsed() >= warmup {
                baseline = Some(rss);
            }
            let phases = soak.tracker.phases();
            let sample = json!({
                "minute": at,
                "rss_mib": rss,
                "rss_peak_mib": hwm,
                "pid": running.pid(),
                "process_age_s": process_started.elapsed().as_secs_f64(),
                "phases": phases,
                "status_writes_per_minute": window.status_writes() * per_minute,
                "roster_writes_per_minute": window.roster_writes() * per_minute,
                "events_per_minute": window.events() * per_minute,
                "leavers_in_progress": soak.leavers.values().filter(|l| !l.done && !l.reversed).count(),
            });
            eprintln!(
                "[{at:>5.1} min] RSS {rss:.0} MiB (pid {}); {}; status writes {:.0}/min; churn so far: {} joiners, {} movers, {} leavers ({} purged), {} reversals",
                running.pid(),
                phases
                    .iter()
                    .map(|(p, n)| format!("{p} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                window.status_writes() * per_minute,
                soak.churn.joiners,
                soak.churn.movers,
                soak.churn.leavers,
                soak.purged.len(),
                soak.churn.reversals,
            );
            samples.push(sample);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let churned = churn_started.elapsed();

    // Drain: no more faults; every leaver still in progress should finish.
    if let Some((id, _)) = outage.take() {
        soak.lms.state().remove_fault(id);
    }
    for id in faults {
        soak.lms.state().remove_fault(id);
    }
    eprintln!("churn over; faults removed; waiting for the leavers in progress");
    let drain_started = Instant::now();
    let drain_limit = Duration::from_secs_f64(soak.args.drain_minutes * 60.0);
    loop {
        soak.collect_purged().await;
        let open = soak
            .leavers
            .values()
            .filter(|l| !l.done && !l.reversed)
            .count();
        if open == 0 || drain_started.elapsed() >= drain_limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let running = operator.as_ref().expect("running");
    running.wait_idle(0.0, Duration::from_secs(5)).await?;
    let drained_s = drain_started.elapsed().as_secs_f64();
    let (rss_end, hwm_end) = running.rss_mib()?;

    let report = soak.report(ReportInput {
        samples,
        baseline,
        rss_end,
        hwm_end,
        adopted_s,
        churned,
        drained_s,
    });
    let file = roster_testkit::repo_path(format!("target/bench/soak-{}.json", soak.args.users));
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&file, &text)?;
    if let Some(path) = &soak.args.summary {
        std::fs::write(path, &text)?;
    }
    print_summary(&report);
    println!(
        "(written to {}; the operator's log: {})",
        soak.args
            .summary
            .as_ref()
            .map_or_else(|| file.display().to_string(), |p| p.display().to_string()),
        log.display()
    );
    drop(operator);
    plane.stop();
    Ok(())
}

/// The steady fault mix for the whole churn; returns the faults' IDs.
fn install_faults(args: &Args, state: &LmsState) -> Vec<u64> {
    let mut ids = Vec::new();
    if args.latency_ms > 0 {
        ids.push(state.add_fault(Fault::on("*").latency(Duration::from_millis(args.latency_ms))));
    }
    if args.error_rate > 0.0 {
        ids.push(state.add_fault(Fault::on("*").fail_rate(args.error_rate, 503)));
    }
    if args.lost_response_rate > 0.0 {
        ids.push(
            state.add_fault(
                Fault::on("*")
                    .fail_rate(args.lost_response_rate, 503)
                    .after_apply(),
            ),
        );
    }
    if args.throttle_rate > 0.0 {
        ids.push(
            state.add_fault(
                Fault::on("*").throttle_rate(args.throttle_rate, Duration::from_secs(1)),
            ),
        );
    }
    ids
}

struct ReportInput {
    samples: Vec<Value>,
    baseline: Option<f64>,
    rss_end: f64,
    hwm_end: f64,
    adopted_s: f64,
    churned: Duration,
    drained_s: f64,
}

impl Soak {
    fn note_error(&mut self, what: &str, err: impl std::fmt::Display) {
        self.churn.write_errors += 1;
        eprintln!("the soak's own {what} failed (skipped): {err}");
    }

    /// A random person of the pool who is Active with nothing pending.
    fn pick(&self) -> Option<usize> {
        let mut rng = rand::rng();
        for _ in 0..50 {
            let i = self.pool[rng.random_range(0..self.pool.len())];
            if self.leavers.get(&i).is_some_and(|l| !l.reversed) {
                continue;
            }
            let ok = self
                .tracker
                .get(&name(i))
                .is_some_and(|u| u.phase == Phase::Active && u.settled && u.provisioned);
            if ok {
                return Some(i);
            }
        }
        None
    }

    async fn join(&mut self) {
        let i = self.next;
        self.next += 1;
        let user = DirectoryUser::new(&name(i), spec(i, self.args.managers));
        match self.users.create(&PostParams::default(), &user).await {
            Ok(_) => {
                self.pool.push(i);
                self.churn.joiners += 1;
            }
            Err(err) => self.note_error("create", err),
        }
    }

    async fn mover(&mut self) {
        let Some(i) = self.pick() else { return };
        let mut rng = rand::rng();
        let mut spec = self
            .moved
            .get(&i)
            .cloned()
            .unwrap_or_else(|| spec(i, self.args.managers));
        spec.title = Some(format!("Title {}", rng.random_range(0..1000)));
        spec.department = Some(DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())].into());
        spec.manager_email = Some(email(rng.random_range(0..self.args.managers)));
        let patch = json!({"spec": {
            "title": spec.title, "department": spec.department, "managerEmail": spec.manager_email,
        }});
        match self
            .users
            .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.moved.insert(i, spec);
                self.churn.movers += 1;
            }
            Err(err) => self.note_error("profile change", err),
        }
    }

    async fn leave(&mut self) {
        let Some(i) = self.pick() else { return };
        let patch = json!({"spec": {"active": false}});
        match self
            .users
            .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.leavers.insert(
                    i,
                    Leaver {
                        left_at: Instant::now(),
                        reversed: false,
                        done: false,
                    },
                );
                self.churn.leavers += 1;
            }
            Err(err) => self.note_error("deactivation", err),
        }
    }

    /// Reactivates a leaver still early in its quarantine (in the first half, so that
    /// the reversal lands before stage 2 even with the operator restarting).
    async fn reverse(&mut self) {
        let half = roster_lifecycle_duration(&self.args.quarantine) / 2;
        let candidate = self.leavers.iter().find_map(|(i, l)| {
            let quarantined = self
                .tracker
                .get(&name(*i))
                .is_some_and(|u| u.phase == Phase::Quarantined && u.settled);
            (!l.reversed && !l.done && quarantined && l.left_at.elapsed() < half).then_some(*i)
        });
        let Some(i) = candidate else { return };
        let patch = json!({"spec": {"active": true}});
        match self
            .users
            .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if let Some(l) = self.leavers.get_mut(&i) {
                    l.reversed = true;
                }
                *self.reversed.entry(i).or_insert(0) += 1;
                self.churn.reversals += 1;
            }
            Err(err) => self.note_error("reactivation", err),
        }
    }

    /// Leavers seen Purged: recorded, and their objects deleted (as HR removes a
    /// record after the purge), so that the population stays near `--users`.
    async fn collect_purged(&mut self) {
        let purged: Vec<usize> = self
            .leavers
            .iter()
            .filter(|(i, l)| {
                !l.done
                    && !l.reversed
                    && self
                        .tracker
                        .get(&name(**i))
                        .is_some_and(|u| u.phase == Phase::Purged)
            })
            .map(|(i, _)| *i)
            .collect();
        for i in purged {
            match self.users.delete(&name(i), &DeleteParams::default()).await {
                Ok(_) => {
                    if let Some(l) = self.leavers.get_mut(&i) {
                        l.done = true;
                    }
                    self.pool.retain(|p| *p != i);
                    self.purged.push(i);
                }
                Err(err) => self.note_error("delete of a purged user", err),
            }
        }
    }

    fn report(&self, input: ReportInput) -> Value {
        let slack = self.args.deadline_slack_seconds;
        // Lateness of each finished leaver against its persisted deadlines.
        let mut purge_late: Vec<(String, f64)> = Vec::new();
        let mut stage2_late: Vec<f64> = Vec::new();
        let mut unscheduled: Vec<String> = Vec::new();
        for i in &self.purged {
            let Some(u) = self.tracker.get(&name(*i)) else {
                continue;
            };
            match (u.purge_due, u.purged) {
                (Some(due), Some(at)) => {
                    purge_late.push((name(*i), (at - due).num_milliseconds() as f64 / 1000.0))
                }
                _ => unscheduled.push(name(*i)),
            }
            if let (Some(due), Some(at)) = (u.deprovision_due, u.deprovisioned) {
                stage2_late.push((at - due).num_milliseconds() as f64 / 1000.0);
            }
        }
        let mut purge_sorted: Vec<f64> = purge_late.iter().map(|(_, s)| *s).collect();
        purge_sorted.sort_by(f64::total_cmp);
        stage2_late.sort_by(f64::total_cmp);
        let misses: Vec<Value> = purge_late
            .iter()
            .filter(|(_, s)| *s > slack)
            .map(|(n, s)| json!({"user": n, "late_s": s}))
            .collect();
        let stage2_misses = stage2_late.iter().filter(|s| **s > slack).count();

        // Lost work: every leaver purged, each operation applied once per episode.
        let calls = self.lms.state().calls();
        let mut applied: HashMap<(String, String), usize> = HashMap::new();
        let mut faults: BTreeMap<String, usize> = BTreeMap::new();
        for call in &calls {
            if call.applied {
                let subject = call
                    .employee_id
                    .clone()
                    .unwrap_or_else(|| call.path.clone());
                *applied
                    .entry((call.operation.clone(), subject))
                    .or_insert(0) += 1;
            }
            if let Some(fault) = &call.fault {
                for part in fault.split(", ") {
                    let kind = if part.starts_with("latency") {
                        "latency"
                    } else {
                        part
                    };
                    *faults.entry(kind.to_string()).or_insert(0) += 1;
                }
            }
        }
        let count = |op: &str, subject: String| {
            applied
                .get(&(op.to_string(), subject))
                .copied()
                .unwrap_or(0)
        };
        let not_purged: Vec<String> = self
            .leavers
            .iter()
            .filter(|(_, l)| !l.done && !l.reversed)
            .map(|(i, _)| name(*i))
            .collect();
        let mut wrong_counts: Vec<Value> = Vec::new();
        for i in &self.purged {
            let id = employee_id(*i);
            let reversals = self.reversed.get(i).copied().unwrap_or(0) as usize;
            let seeded = *i < self.args.users;
            let once_if = |b: bool| usize::from(b);
            let expected = [
                ("revokeAccess", id.clone(), reversals + 1),
                ("restoreAccess", id.clone(), reversals),
                ("anonymizeUser", id.clone(), 1),
                ("purgeUser", id.clone(), 1),
                (
                    "transferRule",
                    format!("/rules/rule-{id}/transfer"),
                    once_if(seeded),
                ),
                ("removeEventAttendee", id.clone(), once_if(seeded)),
                ("removeGroupMember", id.clone(), once_if(seeded)),
                (
                    "deleteAssignment",
                    format!("/assignments/as-{id}"),
                    once_if(seeded),
                ),
            ];
            for (op, subject, want) in expected {
                let got = count(op, subject);
                if got != want {
                    wrong_counts.push(json!({"user": name(*i), "operation": op, "expected": want, "applied": got}));
                }
            }
        }
        // Reversed people who stayed: access revoked and restored as often as they left.
        for (i, n) in &self.reversed {
            if self.leavers.get(i).is_some_and(|l| l.reversed) {
                let id = employee_id(*i);
                let (revoked, restored) = (
                    count("revokeAccess", id.clone()),
                    count("restoreAccess", id),
                );
                if revoked != *n as usize || restored != *n as usize {
                    wrong_counts.push(json!({"user": name(*i), "operation": "revokeAccess/restoreAccess", "expected": n, "applied": [revoked, restored]}));
                }
            }
        }
        // Movers who stayed: the platform holds their last record.
        let mut profile_drift: Vec<Value> = Vec::new();
        for (i, spec) in &self.moved {
            if self.leavers.get(i).is_some_and(|l| !l.reversed) {
                continue;
            }
            let Some(user) = self.lms.state().user(&employee_id(*i)) else {
                profile_drift.push(json!({"user": name(*i), "field": "account"}));
                continue;
            };
            let manager = spec
                .manager_email
                .as_deref()
                .and_then(|e| e.strip_prefix("person.s"))
                .and_then(|e| e.strip_suffix("@example.com"))
                .and_then(|n| n.parse::<usize>().ok())
                .map(employee_id);
            for (field, ok) in [
                ("title", user.title == spec.title),
                ("department", user.department == spec.department),
                ("manager", user.manager_employee_id == manager),
            ] {
                if !ok {
                    profile_drift.push(json!({"user": name(*i), "field": field}));
                }
            }
        }
        let joiners_without_account = (self.args.users..self.next)
            .filter(|i| self.lms.state().user(&employee_id(*i)).is_none())
            .count();
        let duplicates = self.lms.state().duplicates();

        let rss: Vec<f64> = input
            .samples
            .iter()
            .filter_map(|s| s["rss_mib"].as_f64())
            .collect();
        let first = input.baseline.or(rss.first().copied()).unwrap_or_default();
        let max = rss.iter().copied().fold(input.rss_end, f64::max);
        let last = input.rss_end;
        let flat = last <= first * (1.0 + self.args.rss_tolerance_percent / 100.0);
        let writes: Vec<f64> = input
            .samples
            .iter()
            .filter_map(|s| s["status_writes_per_minute"].as_f64())
            .collect();
        let mean_writes = writes.iter().sum::<f64>() / writes.len().max(1) as f64;
        let failed_calls = calls.iter().filter(|c| c.status >= 400).count();
        let mut failed_by: BTreeMap<String, usize> = BTreeMap::new();
        for c in calls.iter().filter(|c| c.status >= 400) {
            *failed_by
                .entry(format!("{} {}", c.operation, c.status))
                .or_insert(0) += 1;
        }
        json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "users": self.args.users,
            "minutes": input.churned.as_secs_f64() / 60.0,
            "initial_adoption_s": input.adopted_s,
            "drain_s": input.drained_s,
            "policy": {"quarantine": self.args.quarantine, "purge_deadline": self.args.purge_deadline},
            "rates_per_minute": {
                "joiners": self.args.joiners_per_minute, "movers": self.args.movers_per_minute,
                "leavers": self.args.leavers_per_minute, "reversals": self.args.reversals_per_minute,
            },
            "churn": {
                "joiners": self.churn.joiners, "movers": self.churn.movers,
                "leavers": self.churn.leavers, "reversals": self.churn.reversals,
                "purged": self.purged.len(), "soak_write_errors": self.churn.write_errors,
            },
            "faults": {
                "config": {
                    "error_rate": self.args.error_rate, "lost_response_rate": self.args.lost_response_rate,
                    "throttle_rate": self.args.throttle_rate, "latency_ms": self.args.latency_ms,
                    "outage_every_minutes": self.args.outage_every_minutes, "outage_seconds": self.args.outage_seconds,
                    "kill_every_minutes": self.args.kill_every_minutes,
                },
                "kills": self.churn.kills,
                "restart_to_metrics_ms": self.churn.restart_ms,
                "outages": self.churn.outages,
                "calls": calls.len(),
                "failed_calls": failed_calls,
                "failed_by_operation_and_status": failed_by,
                "injected": faults,
            },
            "rss_mib": {
                "post_warmup": first, "last": last, "max": max, "peak_of_last_process": input.hwm_end,
                "tolerance_percent": self.args.rss_tolerance_percent, "flat": flat,
            },
            "status_writes_per_minute_mean": mean_writes,
            "deadlines": {
                "slack_s": slack,
                "purges": purge_late.len(),
                "purge_lateness_p50_s": quantile(&purge_sorted, 0.5),
                "purge_lateness_p99_s": quantile(&purge_sorted, 0.99),
                "purge_lateness_max_s": purge_sorted.last().copied().unwrap_or_default(),
                "stage2_lateness_p50_s": quantile(&stage2_late, 0.5),
                "stage2_lateness_p99_s": quantile(&stage2_late, 0.99),
                "stage2_lateness_max_s": stage2_late.last().copied().unwrap_or_default(),
                "stage2_misses": stage2_misses,
                "misses": misses,
                "without_deadline": unscheduled,
            },
            "duplicates": serde_json::to_value(&duplicates).unwrap_or_default(),
            "lost": {
                "leavers_not_purged": not_purged,
                "wrong_operation_counts": wrong_counts,
                "mover_profile_drift": profile_drift,
                "joiners_without_account": joiners_without_account,
            },
            "samples": input.samples,
        })
    }
}

/// The policy's duration syntax (`2m`, `1h30m`, `90s`), for the soak's own timing.
fn roster_lifecycle_duration(text: &str) -> Duration {
    let mut total = 0u64;
    let mut number = 0u64;
    for c in text.chars() {
        match c {
            '0'..='9' => number = number * 10 + u64::from(c as u8 - b'0'),
            'h' => (total, number) = (total + number * 3600, 0),
            'm' => (total, number) = (total + number * 60, 0),
            's' => (total, number) = (total + number, 0),
            _ => {}
        }
    }
    Duration::from_secs(total + number)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn setup(client: &Client, args: &Args, lms: &LmsStandIn) -> anyhow::Result<()> {
    crate::raw::create_namespace(client, NAMESPACE).await?;
    crate::raw::create_credentials_secret(client, NAMESPACE, "lms", TOKEN).await?;
    crate::raw::create_unguarded_policy(client, NAMESPACE, &args.quarantine, &args.purge_deadline)
        .await?;
    let spec: roster_api::TenantSpec = serde_json::from_value(json!({
        "displayName": "Acme",
        "policyRef": {"name": "standard"},
        "learningPlatform": {"endpoint": lms.base_url().as_str(), "credentialsSecretRef": {"name": "lms", "key": "token"}},
        "timeZone": "UTC",
        "deletionProtection": false,
    }))?;
    Api::<Tenant>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &Tenant::new("acme", spec))
        .await?;
    Ok(())
}

/// The human-readable lines of a soak's summary.
fn print_summary(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or_default();
    println!(
        "soak: {} users for {:.1} min (initial adoption {:.1} s, drain {:.1} s)",
        r["users"],
        f(&r["minutes"]),
        f(&r["initial_adoption_s"]),
        f(&r["drain_s"])
    );
    let c = &r["churn"];
    println!(
        "churn: {} joiners, {} movers, {} leavers ({} purged), {} reversals",
        c["joiners"], c["movers"], c["leavers"], c["purged"], c["reversals"]
    );
    let fa = &r["faults"];
    println!(
        "faults: {} kill -9, {} outages, {} calls to the platform ({} failed); injected {}",
        fa["kills"], fa["outages"], fa["calls"], fa["failed_calls"], fa["injected"]
    );
    let m = &r["rss_mib"];
    println!(
        "RSS: post-warm-up {:.0} MiB, last {:.0} MiB, max {:.0} MiB: {}",
        f(&m["post_warmup"]),
        f(&m["last"]),
        f(&m["max"]),
        if m["flat"].as_bool() == Some(true) {
            format!("flat (within {} %)", m["tolerance_percent"])
        } else {
            format!("GROWING (more than {} %)", m["tolerance_percent"])
        }
    );
    println!(
        "status writes: {:.0}/min on average",
        f(&r["status_writes_per_minute_mean"])
    );
    let d = &r["deadlines"];
    println!(
        "deadlines: {} purges; lateness p50 {:.1} s, p99 {:.1} s, max {:.1} s (stage 2: p50 {:.1} s, p99 {:.1} s, max {:.1} s); misses (> {} s): {} purges, {} stage 2",
        d["purges"],
        f(&d["purge_lateness_p50_s"]),
        f(&d["purge_lateness_p99_s"]),
        f(&d["purge_lateness_max_s"]),
        f(&d["stage2_lateness_p50_s"]),
        f(&d["stage2_lateness_p99_s"]),
        f(&d["stage2_lateness_max_s"]),
        d["slack_s"],
        d["misses"].as_array().map_or(0, Vec::len),
        d["stage2_misses"],
    );
    for miss in d["misses"].as_array().into_iter().flatten().take(20) {
        println!(
            "  missed: {} {:.1} s late",
            miss["user"],
            f(&miss["late_s"])
        );
    }
    let dup = r["duplicates"].as_array().map_or(0, Vec::len);
    println!("duplicates at the platform: {dup}");
    for d in r["duplicates"].as_array().into_iter().flatten().take(20) {
        println!("  duplicate: {d}");
    }
    let l = &r["lost"];
    let n = |v: &Value| v.as_array().map_or(0, Vec::len);
    println!(
        "lost: {} leavers not purged, {} wrong operation counts, {} mover fields not at the platform, {} joiners without an account",
        n(&l["leavers_not_purged"]),
        n(&l["wrong_operation_counts"]),
        n(&l["mover_profile_drift"]),
        l["joiners_without_account"]
    );
    for w in l["wrong_operation_counts"]
        .as_array()
        .into_iter()
        .flatten()
        .take(20)
    {
        println!("  {w}");
    }
}
