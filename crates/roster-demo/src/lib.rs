//! `roster demo`: the leaver lifecycle end to end on one machine, in about a minute.
//!
//! It builds (or reuses) the local control plane, installs the CRDs, applies
//! `examples/` into a fresh namespace, starts the learning-platform and Google Calendar
//! stand-ins seeded with a small fictional company ([`company`]), points the Tenant at
//! them, shortens the policy to demo-length durations, and runs the operator
//! in-process with its SCIM endpoint. An identity provider's request sequence creates,
//! updates and deactivates one person over SCIM, a joiner and a mover arrive. Then a few people leave in different ways — the examples' past
//! termination date, deactivation and deprovision-now, plus a scripted object deletion
//! and a deactivation reversed during its quarantine — while [`view`] shows phases,
//! deadlines, step results and Events (a live table on a terminal, plain lines
//! otherwise). It ends with a summary of what changed downstream, read from the
//! stand-ins.
//!
//! Ctrl-C (SIGINT) or SIGTERM at any moment stops the operator, the stand-ins and the
//! control plane within 10 s; the control plane's processes also die with this one
//! whatever happens (see [`roster_testkit::process`]).
//!
//! Output names people by object name (`e-<employeeID>`) or by role, never by name
//! or email.

pub mod company;
pub mod view;

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};

use company::{Changes, Company, People, Snapshot, clock, object_name};
use roster::clock::SystemClock;
use roster::effects::platform::{PlatformEffects, PlatformSettings};
use roster_api::tenant::SecretKeyRef;
use roster_api::{DeprovisionPolicy, DirectoryUser, Phase, Tenant};
use roster_standins::calendar::GoogleCalendarStandin;
use roster_standins::hr::{HrStandIn, HrState};
use roster_standins::lms::{LmsStandIn, LmsState};
use roster_testkit::{ControlPlane, process};
use view::{Line, Row, Tracker};

/// Field manager of everything the demo writes.
const MANAGER: &str = "roster-demo";
/// Who leaves by having their object deleted (a GitOps prune, `kubectl delete`).
const DELETED: &str = "1011";
/// Who is deactivated and reinstated during the quarantine.
const REVERSED: &str = "1013";
/// The new hire the demo adds (not at the platform yet: a joiner).
const JOINER: &str = "1015";
/// Who moves from Engineering (remote) to Sales in Berlin.
const MOVER: &str = "1004";
/// Who an identity provider creates, updates and deactivates over SCIM.
const IDP_USER: &str = "1030";
/// The people the HR report stand-in delivers (employee IDs); the Tenant's hrAPI source
/// creates them.
const HR_PEOPLE: [&str; 2] = ["2101", "2102"];
/// The HR report's bearer token (Secret `hr-api`).
const HR_TOKEN: &str = "demo-hr-token";

/// `roster demo` options.
#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {
    /// Give up this long after the operator starts if not every scripted leaver is
    /// Purged (or back to Active) by then; the summary is printed either way.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The demo's quarantine period (the policy's `quarantinePeriod`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub quarantine: Duration,
    /// The demo's purge deadline (the policy's `purgeDeadline`).
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub purge_deadline: Duration,
    /// Namespace the demo tenant lives in.
    #[arg(long, default_value = "roster-demo")]
    pub namespace: String,
    /// Directory with the manifests to apply and `standins/demo-*-seed.yaml`
    /// (default: the repository's `examples/`).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// Print plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// After the summary, keep everything running until Ctrl-C, to explore with kubectl.
    #[arg(long)]
    pub keep_running: bool,
}

/// Runs the demo; returns the process exit code (0 done, 1 failed or timed out, 130
/// interrupted). The caller should exit with it at once: background work is not
/// waited for.
pub async fn run(args: DemoArgs) -> i32 {
    if std::env::var_os("RUST_LOG").is_some() {
        roster::telemetry::init(roster::telemetry::LogFormat::Text);
    }
    // Installed before anything starts, so Ctrl-C is ours from the first moment.
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => (int, term),
        _ => {
            eprintln!("roster demo: cannot install the signal handlers");
            return 1;
        }
    };
    let live = !args.plain
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let out = Out {
        live,
        started: Instant::now(),
        started_at: Utc::now(),
    };
    let mut stack = Stack::default();
    let result = tokio::select! {
        result = demo(&args, &mut stack, &out) => Some(result),
        _ = sigint.recv() => None,
        _ = sigterm.recv() => None,
    };
    view::silence();
    stack.abort_tasks();
    if live {
        out.raw("\x1b[?25h");
    }
    let mut code = match result {
        None => {
            out.say("");
            out.step("interrupted: stopping the operator, the stand-ins and the control plane");
            130
        }
        Some(Ok(true)) => 0,
        Some(Ok(false)) => 1,
        Some(Err(error)) => {
            let _ = std::io::stdout().flush();
            eprintln!("roster demo: {error:#}");
            1
        }
    };
    if code != 130 && args.keep_running && stack.plane.is_some() {
        out.step("--keep-running: everything stays up; press Ctrl-C to stop");
        tokio::select! {
            _ = sigint.recv() => {},
            _ = sigterm.recv() => {},
        }
    }
    if stack.plane.is_some() || code == 130 {
        let stopping = Instant::now();
        tokio::select! {
            _ = stack.stop() => {},
            _ = sigint.recv() => code = 130,
            _ = tokio::time::sleep(Duration::from_secs(9)) => {},
        }
        out.step(format!(
            "stopped in {:.1}s; nothing left running",
            stopping.elapsed().as_secs_f64()
        ));
    }
    let _ = std::io::stdout().flush();
    code
}

/// Output helpers: setup lines carry the seconds since start.
struct Out {
    live: bool,
    started: Instant,
    started_at: chrono::DateTime<Utc>,
}

impl Out {
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn step(&self, text: impl AsRef<str>) {
        println!("[{:>5.1}s] {}", self.elapsed(), text.as_ref());
    }

    fn say(&self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
    }

    fn raw(&self, text: &str) {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

/// What the demo started, stopped in reverse order.
#[derive(Default)]
struct Stack {
    plane: Option<ControlPlane>,
    lms: Option<LmsStandIn>,
    calendar: Option<GoogleCalendarStandin>,
    hr: Option<HrStandIn>,
    operator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    tasks: Vec<AbortHandle>,
}

impl Stack {
    fn abort_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    async fn stop(&mut self) {
        self.abort_tasks();
        if let Some((stop, task)) = self.operator.take() {
            let _ = stop.send(());
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // Dropping a stand-in stops its server.
        self.lms.take();
        self.calendar.take();
        self.hr.take();
        if let Some(plane) = self.plane.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(6),
                tokio::task::spawn_blocking(move || plane.stop()),
            )
            .await;
        }
    }
}

/// What a user is expected to end as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Purged,
    /// Purged and its object deleted: the deleted user's Departure, which goes only
    /// after the purge (the demo shows that nothing of the person is left).
    Gone,
    BackToActive,
    /// Provisioned (created) at the platform, groups applied.
    Joined,
    /// Edited, and the edit synced to the platform.
    Moved,
}

fn reached(row: Option<&Row>, expect: Expect) -> bool {
    row.is_some_and(|row| match expect {
        Expect::Purged => row.phase == Phase::Purged || row.gone,
        Expect::Gone => row.gone,
        Expect::BackToActive => row.reversals > 0 && row.phase == Phase::Active && row.restored,
        Expect::Joined => row.provisioned == Some(roster_api::Provisioning::Created) && row.in_sync,
        Expect::Moved => row.generation > 1 && row.in_sync && !row.left,
    })
}

/// The demo proper; returns whether every scripted leaver finished in time.
async fn demo(args: &DemoArgs, stack: &mut Stack, out: &Out) -> anyhow::Result<bool> {
    if args.quarantine > args.purge_deadline
        || args.purge_deadline > Duration::from_secs(720 * 3600)
    {
        bail!("--quarantine must not be longer than --purge-deadline, which must be at most 720h");
    }
    let examples = examples_dir(args)?;
    let ns = args.namespace.as_str();
    out.say(
        "roster demo: the leaver lifecycle end to end, on a local kube-apiserver + etcd, with \
         stand-ins for the learning platform and Google Calendar and the operator in-process.",
    );
    out.step(
        "control plane: starting kube-apiserver + etcd (the first run builds them from the \
         pinned Go modules, which takes a few minutes; later runs reuse them)",
    );
    let plane = tokio::task::spawn_blocking(ControlPlane::start)
        .await
        .context("the control-plane thread panicked")?
        .context("start the control plane")?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    out.step(format!(
        "control plane ready: kube-apiserver {} at {}",
        plane.binaries().kubernetes_version,
        plane.server_url()
    ));
    out.say(format!(
        "          export KUBECONFIG={}",
        kubeconfig.display()
    ));
    out.say(format!(
        "          kubectl get directoryusers -n {ns} -w     # in another terminal, while the demo runs"
    ));
    let plane = stack.plane.insert(plane);
    let client = plane.client().await.context("connect to the API server")?;

    install_crds(&client).await?;
    out.step("CRDs installed: Tenant, DeprovisionPolicy, DirectoryUser (roster.dev/v1alpha1)");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("create namespace {ns}"))?;
    let applied = kubectl_apply(plane, ns, &examples).await?;
    out.step(format!(
        "namespace {ns}: kubectl apply -f {} applied {applied}",
        examples.display()
    ));

    // The Tenant the examples define, and the credentials it names.
    let tenants = Api::<Tenant>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    let Some(tenant) = tenants.items.into_iter().next() else {
        bail!("{} defines no Tenant", examples.display());
    };
    let tenant_name = tenant.name_any();
    let lms_token = secret(
        &client,
        ns,
        &tenant.spec.learning_platform.credentials_secret_ref,
    )
    .await?;
    let policy_name = tenant.spec.policy_ref.name.clone();

    // The company: the seeds, plus a platform record for any example user they lack.
    let users = Api::<DirectoryUser>::namespaced(client.clone(), ns);
    let mut company = Company::load(&examples, Utc::now())?;
    let applied_users = users.list(&ListParams::default()).await?.items;
    for user in &applied_users {
        if company.email_of(&user.spec.employee_id).is_none() {
            let manager = user.spec.manager_email.as_deref().and_then(|m| {
                applied_users
                    .iter()
                    .find(|u| u.spec.email.eq_ignore_ascii_case(m))
                    .map(|u| u.spec.employee_id.clone())
            });
            company
                .lms
                .users
                .push(company::platform_user(&user.spec, manager));
        }
    }
    let (lms, calendar, calendar_ids) = start_standins(&company, &applied_users, lms_token).await?;
    // The calendar credentials are what Google issues: a service-account key file. The
    // stand-in issues one and the demo puts it in the Secret the Tenant names, as an
    // administrator would; the operator mints per-user tokens with it.
    if let Some(reference) = &tenant.spec.calendar.credentials_secret_ref {
        let key = calendar.issue_service_account_key("roster-demo");
        store_secret(&client, ns, reference, &key).await?;
        out.step(format!(
            "Secret {}: key {} now holds a service-account key issued by the Google Calendar stand-in (tokens are minted at {})",
            reference.name,
            reference.key,
            calendar.token_uri()
        ));
    }
    let seed = &company.lms;
    out.step(format!(
        "learning-platform stand-in at {}: {} people, {} events, {} sessions, {} rules, {} groups, {} assignments, {} engagement records",
        lms.base_url(),
        seed.users.len(),
        seed.events.len(),
        seed.sessions.len(),
        seed.rules.len(),
        seed.groups.len(),
        seed.assignments.len(),
        seed.engagement.len()
    ));
    let series = company
        .calendar
        .events
        .iter()
        .filter(|e| e.recurrence.is_some())
        .count();
    out.step(format!(
        "Google Calendar stand-in at {}: {} events ({series} recurring series) in {} calendars",
        calendar.base_url(),
        calendar_ids.len(),
        company.calendar.users.len()
    ));

    // Point the Tenant at the stand-ins; demo-length durations.
    let quarantine = go_duration(args.quarantine);
    let purge = go_duration(args.purge_deadline);
    configure(
        &client,
        ns,
        &tenant_name,
        &policy_name,
        &lms.base_url(),
        calendar.base_url(),
        &quarantine,
        &purge,
    )
    .await?;
    out.step(format!(
        "tenant {tenant_name}: learningPlatform.endpoint and calendar (provider Google) now point at the stand-ins"
    ));
    out.step(format!(
        "policy {policy_name}: quarantinePeriod {quarantine}, purgeDeadline {purge} (demo-length; the defaults are 168h and 720h)"
    ));

    // DirectoryUsers for the rest of the company, named after employee IDs.
    let known: HashSet<String> = applied_users
        .iter()
        .map(|u| u.spec.employee_id.clone())
        .collect();
    let mut generated = Vec::new();
    for person in &seed.users {
        if known.contains(&person.employee_id) {
            continue;
        }
        let user = company.directory_user(person, &tenant_name);
        let name = user.name_any();
        users
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&user),
            )
            .await
            .with_context(|| format!("create DirectoryUser {name}"))?;
        generated.push(name);
    }
    out.step(format!(
        "{} DirectoryUsers generated from the seed ({}), next to the {} of examples/users.yaml",
        generated.len(),
        range(&generated),
        applied_users.len()
    ));

    // Who is expected to leave, and how.
    let directory = users.list(&ListParams::default()).await?.items;
    let people = People::from_directory(
        &directory,
        tenant
            .spec
            .calendar
            .fallback_owner
            .as_ref()
            .map(|f| f.employee_id.as_str()),
    );
    let zone: chrono_tz::Tz = tenant.spec.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let plan = Plan::new(&directory, zone, Utc::now());
    if !plan.leaving.is_empty() {
        out.step(format!(
            "leaving as soon as the operator runs (examples/users.yaml): {}",
            plan.leaving.join(", ")
        ));
    }
    if !plan.scheduled.is_empty() {
        out.step(format!(
            "scheduled, staying Active for now: {}",
            plan.scheduled.join(", ")
        ));
    }
    if let Some((deleted, reversed)) = &plan.script {
        out.step(format!(
            "then the demo deletes {deleted} (like a GitOps prune) and deactivates {reversed}, reinstating it during its quarantine"
        ));
    }
    // The HR feed: a Workday-style report the Tenant pulls on the operator's first sync.
    let hr = start_hr_feed(&client, ns, &tenant_name).await?;
    out.step(format!(
        "HR report stand-in at {} (Workday style): the Tenant's hrAPI source pulls {} people from it ({}) on the operator's first sync",
        hr.report_url(),
        HR_PEOPLE.len(),
        HR_PEOPLE.map(object_name).join(", ")
    ));
    stack.hr = Some(hr);
    let mut plan = plan;
    for id in HR_PEOPLE {
        plan.expected.insert(object_name(id), Expect::Joined);
    }
    let expected = &plan.expected;

    let before = Snapshot::take(lms.state(), &calendar, &calendar_ids);
    stack.lms = Some(lms);
    stack.calendar = Some(calendar);

    // Watch and show; then start the operator and the script.
    let header = vec![
        format!(
            "roster demo · namespace {ns} · tenant {tenant_name} · quarantine {quarantine} · purge deadline {purge}"
        ),
        format!(
            "export KUBECONFIG={} · Ctrl-C stops everything",
            kubeconfig.display()
        ),
    ];
    let watched: HashSet<String> = expected.keys().cloned().collect();
    let (progress_tx, mut progress) = watch::channel(BTreeMap::<String, Row>::new());
    let (notes_tx, notes_rx) = mpsc::unbounded_channel::<Line>();
    let (stop_monitor, monitor_stopped) = oneshot::channel::<()>();
    let monitor = tokio::spawn(monitor(
        client.clone(),
        ns.to_string(),
        out.live,
        header.clone(),
        watched.clone(),
        notes_rx,
        progress_tx,
        monitor_stopped,
    ));
    stack.tasks.push(monitor.abort_handle());
    if out.live {
        out.raw("\x1b[?25l");
    }

    let scim_token = enable_scim(&client, ns, &tenant_name).await?;
    let (operator, scim_base) = start_operator(&client, ns).await?;
    stack.operator = Some(operator);
    let operator_started = out.elapsed();
    if !out.live {
        out.step(format!(
            "operator running in-process, watching namespace {ns}"
        ));
        out.say("");
    }
    if !out.live {
        out.step(format!(
            "SCIM 2.0 served at {scim_base} (the Tenant's token from Secret scim): an identity provider will create, update and deactivate e-{IDP_USER}"
        ));
    }
    let idp = tokio::spawn(identity_provider(
        scim_base,
        scim_token,
        progress.clone(),
        notes_tx.clone(),
    ));
    stack.tasks.push(idp.abort_handle());
    let intake = tokio::spawn(joiner_and_mover(
        users.clone(),
        notes_tx.clone(),
        tenant_name.clone(),
        names_in(&directory).contains(&object_name(MOVER)),
    ));
    stack.tasks.push(intake.abort_handle());
    if let Some((deleted, reversed)) = plan.script.clone() {
        let script = tokio::spawn(script(
            users.clone(),
            progress.clone(),
            notes_tx.clone(),
            deleted,
            reversed,
            args.quarantine,
        ));
        stack.tasks.push(script.abort_handle());
    }

    let finished = tokio::time::timeout(
        args.timeout,
        progress.wait_for(|rows| {
            expected
                .iter()
                .all(|(name, expect)| reached(rows.get(name), *expect))
        }),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let done_at = out.elapsed();
    let _ = stop_monitor.send(());
    let tracker = monitor.await.context("the progress view stopped")?;
    if out.live {
        out.raw("\x1b[?25h");
    }
    let after = Snapshot::take(
        stack.lms.as_ref().expect("started above").state(),
        stack.calendar.as_ref().expect("started above"),
        &calendar_ids,
    );
    let report = Report {
        ns,
        finished,
        timeout: args.timeout,
        expected,
        tracker: &tracker,
        changes: Changes::between(&before, &after, &people),
        operator_started,
        done_at,
    };
    report.print(out, &client).await;
    Ok(finished)
}

/// The learning-platform and Google Calendar stand-ins, seeded with the company;
/// returns them and the calendar events' ids.
async fn start_standins(
    company: &Company,
    directory: &[DirectoryUser],
    lms_token: String,
) -> anyhow::Result<(LmsStandIn, GoogleCalendarStandin, Vec<String>)> {
    let state = LmsState::with_seed(lms_token, company.lms.clone())
        .context("seed the learning-platform stand-in")?;
    let lms = LmsStandIn::start(state)
        .await
        .context("start the learning-platform stand-in")?;
    let calendar = GoogleCalendarStandin::start()
        .await
        .context("start the Google Calendar stand-in")?;
    let ids = calendar
        .seed(&company.calendar)
        .context("seed the Google Calendar stand-in")?;
    for user in directory {
        calendar.add_user(&user.spec.email);
    }
    Ok((lms, calendar, ids))
}

/// Points the Tenant at the stand-ins (calendar provider Google) and gives its policy
/// demo-length durations.
#[allow(clippy::too_many_arguments)]
async fn configure(
    client: &Client,
    ns: &str,
    tenant: &str,
    policy: &str,
    lms_url: &url::Url,
    calendar_url: &str,
    quarantine: &str,
    purge: &str,
) -> anyhow::Result<()> {
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    Api::<Tenant>::namespaced(client.clone(), ns)
        .patch(
            tenant,
            &params,
            &Patch::Merge(json!({
                "spec": {
                    "learningPlatform": { "endpoint": lms_url.as_str() },
                    "calendar": { "provider": "Google", "endpoint": calendar_url },
                }
            })),
        )
        .await
        .with_context(|| format!("point Tenant {tenant} at the stand-ins"))?;
    Api::<DeprovisionPolicy>::namespaced(client.clone(), ns)
        .patch(
            policy,
            &params,
            &Patch::Merge(json!({
                "spec": {
                    "quarantinePeriod": quarantine,
                    "purgeDeadline": purge,
                    "dryRun": false,
                    // A quarter of this small company leaves at once: let them.
                    "massDeprovisionGuard": { "maxPercent": 50 },
                }
            })),
        )
        .await
        .with_context(|| format!("set demo-length durations on DeprovisionPolicy {policy}"))?;
    Ok(())
}

/// Who the demo expects to leave, and how.
struct Plan {
    expected: BTreeMap<String, Expect>,
    /// `e-00044 (termination date in the past)`.
    leaving: Vec<String>,
    /// Future termination dates.
    scheduled: Vec<String>,
    /// The users the script deletes and reverses, when both exist.
    script: Option<(String, String)>,
}

impl Plan {
    fn new(directory: &[DirectoryUser], zone: chrono_tz::Tz, now: chrono::DateTime<Utc>) -> Self {
        let mut plan = Plan {
            expected: BTreeMap::new(),
            leaving: Vec::new(),
            scheduled: Vec::new(),
            script: None,
        };
        for user in directory {
            let requested = user
                .annotations()
                .contains_key(roster_api::DEPROVISION_NOW_ANNOTATION);
            let triggers = roster_lifecycle::trigger::evaluate(
                &user.spec,
                false,
                Default::default(),
                zone,
                now,
            )
            .with_deprovision_now(requested);
            if let Some(trigger) = triggers.active {
                plan.expected.insert(user.name_any(), Expect::Purged);
                plan.leaving
                    .push(format!("{} ({})", user.name_any(), how(trigger)));
            } else if let Some(at) = triggers.scheduled {
                plan.scheduled.push(format!(
                    "{} (termination date: leaves at {})",
                    user.name_any(),
                    at.format("%Y-%m-%d %H:%MZ")
                ));
            }
        }
        let (deleted, reversed) = (object_name(DELETED), object_name(REVERSED));
        let names: HashSet<String> = directory.iter().map(ResourceExt::name_any).collect();
        if names.contains(&deleted) && names.contains(&reversed) {
            plan.expected.insert(deleted.clone(), Expect::Gone);
            plan.expected.insert(reversed.clone(), Expect::BackToActive);
            plan.script = Some((deleted, reversed));
        }
        plan.expected.insert(object_name(JOINER), Expect::Joined);
        plan.expected.insert(object_name(IDP_USER), Expect::Purged);
        if names.contains(&object_name(MOVER)) {
            plan.expected.insert(object_name(MOVER), Expect::Moved);
        }
        plan
    }
}

/// The operator, in-process, scoped to the demo's namespace, against the stand-ins,
/// with its SCIM endpoint on a free loopback port; returns it and the tenant's SCIM
/// base URL.
async fn start_operator(
    client: &Client,
    ns: &str,
) -> anyhow::Result<((oneshot::Sender<()>, JoinHandle<()>), String)> {
    let effects = Arc::new(PlatformEffects::new(
        client.clone(),
        Arc::new(SystemClock),
        PlatformSettings::default(),
    ));
    let metrics = Arc::new(roster::metrics::Metrics::default());
    let watches = roster::controller::Watches::start(client, &[ns.to_string()]);
    let scim = roster::scim::start(
        client.clone(),
        Arc::new(SystemClock),
        metrics.clone(),
        &watches,
        roster::scim::Settings::new("127.0.0.1:0".parse()?),
    )
    .await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let client = client.clone();
    let options = roster::controller::Options {
        namespaces: vec![ns.to_string()],
        instance: Some(MANAGER.into()),
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        roster::controller::run_on(
            &watches,
            client,
            effects,
            Arc::new(SystemClock),
            metrics,
            options,
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    Ok(((stop, task), format!("http://{}/scim/v2/{ns}", scim.addr)))
}

/// Starts the HR report stand-in with [`HR_PEOPLE`] and points the Tenant's hrAPI
/// source at it (bearer token in Secret `hr-api`, labelled for roster; the report's
/// aliases mapped to profile fields).
async fn start_hr_feed(client: &Client, ns: &str, tenant: &str) -> anyhow::Result<HrStandIn> {
    let state = HrState::new(HR_TOKEN, "demo-client", "demo-secret");
    state.set_entries(
        HR_PEOPLE
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let first = ["Hana", "Ravi"][i % 2];
                json!({
                    "Employee_ID": id,
                    "First_Name": first,
                    "Last_Name": "Hrfeed",
                    "Work_Email": format!("person.{id}@example.com"),
                    "Hire_Date": format!("{}-08:00", Utc::now().date_naive()),
                    "Cost_Center": "Engineering",
                    "Job_Title": "Analyst",
                })
            })
            .collect(),
    );
    let hr = HrStandIn::start(state)
        .await
        .context("start the HR report stand-in")?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("hr-api".into()),
            labels: Some(
                [(
                    roster_api::tenant::CREDENTIALS_LABEL.to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        string_data: Some([("token".to_string(), HR_TOKEN.to_string())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            "hr-api",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .context("store the HR report's token in Secret hr-api")?;
    let rule = |from: &str, to: &str, transform: &str| json!({"from": from, "to": to, "transform": transform});
    let source = json!({
        "url": hr.report_url(),
        "credentialsSecretRef": {"name": "hr-api"},
        "interval": "1h",
        "mappings": [
            rule("Employee_ID", "employeeID", "Trim"),
            {"from": "First_Name", "concat": ["Last_Name"], "to": "fullName"},
            rule("Work_Email", "email", "Lowercase"),
            rule("Hire_Date", "hireDate", "DateOnly"),
            rule("Cost_Center", "department", "Trim"),
            rule("Job_Title", "title", "Trim"),
        ],
    });
    Api::<Tenant>::namespaced(client.clone(), ns)
        .patch(
            tenant,
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"sources": {"hrAPI": source}}})),
        )
        .await
        .with_context(|| format!("add the hrAPI source to Tenant {tenant}"))?;
    Ok(hr)
}

/// Turns SCIM on for the Tenant: a fresh bearer token in Secret `scim` (labelled for
/// roster), named by `spec.sources.scim`. Returns the token.
async fn enable_scim(client: &Client, ns: &str, tenant: &str) -> anyhow::Result<String> {
    use rand::Rng as _;
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::rng().random::<u8>()))
        .collect();
    let reference = SecretKeyRef {
        name: "scim".into(),
        key: "token".into(),
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(reference.name.clone()),
            labels: Some(BTreeMap::from([(
                roster_api::tenant::CREDENTIALS_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(reference.key.clone(), token.clone())])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            &reference.name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .context("store the SCIM token in Secret scim")?;
    Api::<Tenant>::namespaced(client.clone(), ns)
        .patch(
            tenant,
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"sources": {"scim": {"tokenSecretRef": reference}}}})),
        )
        .await
        .with_context(|| format!("turn SCIM on for Tenant {tenant}"))?;
    Ok(token)
}

/// An identity provider's request sequence, as Okta sends it: a lookup before the
/// create, the create, a full PUT when the person's title changes, and the
/// deactivation as a path-less replace. Each request and its answer is a line.
async fn identity_provider(
    base: String,
    token: String,
    mut progress: watch::Receiver<BTreeMap<String, Row>>,
    notes: mpsc::UnboundedSender<Line>,
) {
    let note = |text: String| {
        let _ = notes.send(Line::new(Utc::now(), "okta", text));
    };
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    (status, body)
                }
                Err(_) => (0, serde_json::Value::Null),
            }
        }
    };
    let id = object_name(IDP_USER);
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext],
        "userName": "sam.scimson@example.com",
        "name": {"givenName": "Sam", "familyName": "Scimson"},
        "emails": [{"value": "sam.scimson@example.com", "type": "work", "primary": true}],
        "title": "Engineer",
        "active": true,
        "addresses": [{"type": "work", "locality": "Berlin"}],
        ext: {"employeeNumber": IDP_USER, "department": "Engineering", "manager": {"value": "e-1002"}}
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = send(
        reqwest::Method::GET,
        "/Users?filter=userName%20eq%20%22sam.scimson%40example.com%22".into(),
        None,
    )
    .await;
    note(format!(
        "GET /Users?filter=userName eq \"…\" → {status}, {} found: not there yet",
        body["totalResults"]
    ));
    let (status, _) = send(reqwest::Method::POST, "/Users".into(), Some(user.clone())).await;
    note(format!(
        "POST /Users (employeeNumber {IDP_USER}, Engineering, Berlin, manager e-1002) → {status}, id {id}"
    ));
    if status != 201 {
        return;
    }
    let joined = progress
        .wait_for(|rows| rows.get(&id).is_some_and(|r| r.in_sync))
        .await
        .is_ok();
    if !joined {
        return;
    }
    let synced = progress.borrow().get(&id).map_or(0, |r| r.sync_calls);
    user["title"] = json!("Staff Engineer");
    let (status, _) = send(reqwest::Method::PUT, format!("/Users/{id}"), Some(user)).await;
    note(format!("PUT /Users/{id} (title changed) → {status}"));
    let _ = progress
        .wait_for(|rows| {
            rows.get(&id)
                .is_some_and(|r| r.in_sync && r.sync_calls > synced)
        })
        .await;
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    });
    let (status, body) = send(
        reqwest::Method::PATCH,
        format!("/Users/{id}"),
        Some(deactivate),
    )
    .await;
    note(format!(
        "PATCH /Users/{id} {{\"op\":\"replace\",\"value\":{{\"active\":false}}}} → {status}, active {}: the deactivation",
        body["active"]
    ));
}

/// How the demo ended: where everyone is, what changed downstream, the Events, the
/// timeline.
struct Report<'a> {
    ns: &'a str,
    finished: bool,
    timeout: Duration,
    expected: &'a BTreeMap<String, Expect>,
    tracker: &'a Tracker,
    changes: Changes,
    operator_started: f64,
    done_at: f64,
}

impl Report<'_> {
    async fn print(&self, out: &Out, client: &Client) {
        let Report {
            ns,
            finished,
            expected,
            tracker,
            operator_started,
            done_at,
            ..
        } = *self;
        out.say("");
        if finished {
            out.step(
                "every scripted leaver is Purged or back to Active; the joiner, the mover and the HR feed's people are in sync at the learning platform",
            );
        } else {
            let pending: Vec<String> = expected
                .iter()
                .filter(|(name, expect)| !reached(tracker.rows.get(*name), **expect))
                .map(|(name, expect)| {
                    let phase = tracker
                        .rows
                        .get(name)
                        .map_or("not seen".to_string(), |r| format!("{:?}", r.phase));
                    let expected = match expect {
                        Expect::Purged => "Purged",
                        Expect::Gone => "Purged and its Departure deleted",
                        Expect::BackToActive => "back to Active after a reversal",
                        Expect::Joined => "provisioned at the learning platform",
                        Expect::Moved => "its edit synced to the learning platform",
                    };
                    format!("{name} is {phase} (expected {expected})")
                })
                .collect();
            out.step(format!(
                "timed out after {}: {}",
                humantime::format_duration(self.timeout),
                pending.join("; ")
            ));
        }

        // Where everyone ended up, and what changed downstream.
        let mut phases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, row) in &tracker.rows {
            let phase = if row.gone {
                "Purged and deleted".to_string()
            } else if row.reversals > 0 && row.phase == Phase::Active {
                "Active again after a reversal".to_string()
            } else {
                format!("{:?}", row.phase)
            };
            phases.entry(phase).or_default().push(name.clone());
        }
        out.say("");
        out.say(format!(
            "DirectoryUsers in {ns} (kubectl get directoryusers -n {ns}):"
        ));
        for (phase, names) in &phases {
            let list = if phase == "Active" && names.len() > 6 {
                format!("{} users", names.len())
            } else {
                names.join(", ")
            };
            out.say(format!("  {phase:<30} {list}"));
        }
        out.say("");
        out.say(
            "What changed downstream (read from the stand-ins; people by role, never by name):",
        );
        for line in self.changes.lines() {
            out.say(format!("  {line}"));
        }
        out.say("");
        let purged: Vec<&String> = tracker
            .rows
            .iter()
            .filter(|(_, row)| reached(Some(row), Expect::Purged))
            .map(|(name, _)| name)
            .collect();
        let events: Vec<String> = event_counts(client, ns, &purged)
            .await
            .unwrap_or_else(|_| tracker.event_counts.clone())
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        out.say(format!(
            "Kubernetes Events (kubectl get events -n {ns}): {}",
            if events.is_empty() {
                "none".to_string()
            } else {
                events.join(", ")
            }
        ));
        let first_purged = tracker
            .first_purged
            .map(|at| format!("{:.1}s", (at - out.started_at).as_seconds_f64()))
            .unwrap_or_else(|| "-".into());
        out.say(format!(
        "Timeline: operator started at {operator_started:.1}s, first Purged user at {first_purged}, done at {done_at:.1}s"
    ));
    }
}

/// Kubernetes Events in the namespace, by reason; waits (up to 2 s) for the PIIPurged
/// Events of `purged`, which roster publishes just after the status the demo waited for.
async fn event_counts(
    client: &Client,
    ns: &str,
    purged: &[&String],
) -> anyhow::Result<BTreeMap<String, usize>> {
    let api = Api::<KubeEvent>::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let events = api.list(&ListParams::default()).await?.items;
        let complete = purged.iter().all(|name| {
            events.iter().any(|e| {
                e.reason.as_deref() == Some("PIIPurged")
                    && e.regarding.as_ref().and_then(|r| r.name.as_ref()) == Some(*name)
            })
        });
        if complete || Instant::now() > deadline {
            let mut counts = BTreeMap::new();
            for event in &events {
                let n = event.series.as_ref().map_or(1, |s| s.count.max(1)) as usize;
                *counts
                    .entry(event.reason.clone().unwrap_or_default())
                    .or_default() += n;
            }
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches users and Events, prints lines (or redraws the table), publishes progress.
#[allow(clippy::too_many_arguments)]
async fn monitor(
    client: Client,
    ns: String,
    live: bool,
    header: Vec<String>,
    watched: HashSet<String>,
    mut notes: mpsc::UnboundedReceiver<Line>,
    progress: watch::Sender<BTreeMap<String, Row>>,
    mut stop: oneshot::Receiver<()>,
) -> Tracker {
    let mut users = watcher(
        Api::<DirectoryUser>::namespaced(client.clone(), &ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut departures = watcher(
        Api::<roster_api::Departure>::namespaced(client.clone(), &ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut events = watcher(
        Api::<KubeEvent>::namespaced(client, &ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut tracker = Tracker::default();
    let mut view = view::Live::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let frame = |tracker: &Tracker| {
        let now = Utc::now();
        let mut header = header.clone();
        if let Some(first) = header.first_mut() {
            first.push_str(&format!(" · {}", clock(now)));
        }
        tracker.frame(&header, &watched, now)
    };
    loop {
        let lines = tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(line) = notes.recv() => tracker.note(line),
            Some(event) = users.next() => match event {
                Ok(watcher::Event::Apply(user) | watcher::Event::InitApply(user)) => {
                    tracker.apply(&user, Utc::now())
                }
                Ok(watcher::Event::Delete(user)) => tracker.deleted(&user, Utc::now()),
                Ok(_) | Err(_) => Vec::new(),
            },
            // A deleted user's lifecycle goes on in its Departure (same name).
            Some(event) = departures.next() => match event {
                Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                    tracker.apply(&d.as_directory_user(), Utc::now())
                }
                Ok(watcher::Event::Delete(d)) => tracker.departure_gone(&d, Utc::now()),
                Ok(_) | Err(_) => Vec::new(),
            },
            Some(event) = events.next() => match event {
                Ok(watcher::Event::Apply(event) | watcher::Event::InitApply(event)) => {
                    tracker.event(&event, Utc::now())
                }
                Ok(_) | Err(_) => Vec::new(),
            },
            _ = tick.tick(), if live => {
                view.draw(&frame(&tracker));
                continue;
            }
        };
        if !live {
            let mut stdout = std::io::stdout().lock();
            for line in &lines {
                let _ = writeln!(stdout, "{}", line.render());
            }
        }
        progress.send_replace(tracker.rows.clone());
    }
    if live {
        view.draw(&frame(&tracker));
        view.finish();
    }
    tracker
}

fn names_in(directory: &[DirectoryUser]) -> HashSet<String> {
    directory.iter().map(ResourceExt::name_any).collect()
}

/// The scripted joiner and mover: a new hire's record arrives (as a people source
/// would write it), and an engineer moves to Sales in Berlin.
async fn joiner_and_mover(
    users: Api<DirectoryUser>,
    notes: mpsc::UnboundedSender<Line>,
    tenant: String,
    with_mover: bool,
) {
    let note = |text: String| {
        let _ = notes.send(Line::new(Utc::now(), "demo", text));
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let joiner = object_name(JOINER);
    note(format!(
        "kubectl apply -f {joiner}.yaml    # a new hire (joiner): Engineering, Berlin, reports to e-1002"
    ));
    let record = DirectoryUser::new(
        &joiner,
        roster_api::DirectoryUserSpec {
            tenant_ref: tenant.as_str().into(),
            employee_id: JOINER.into(),
            full_name: "Robin Newhire".into(),
            email: "robin.newhire@example.com".into(),
            department: Some("Engineering".into()),
            title: Some("Software Engineer".into()),
            location: Some("Berlin".into()),
            manager_email: Some("priya.notareal@example.com".into()),
            hire_date: Some(Utc::now().date_naive()),
            ..Default::default()
        },
    );
    if let Err(error) = users
        .patch(
            &joiner,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&record),
        )
        .await
    {
        note(format!("could not create {joiner}: {error}"));
    }
    if !with_mover {
        return;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mover = object_name(MOVER);
    note(format!(
        "kubectl patch directoryuser {mover} --type=merge -p '{{\"spec\":{{\"department\":\"Sales\",\"title\":\"Sales Engineer\",\"location\":\"Berlin\"}}}}'    # a mover"
    ));
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let patch = Patch::Merge(json!({ "spec": {
        "department": "Sales",
        "title": "Sales Engineer",
        "location": "Berlin",
    } }));
    if let Err(error) = users.patch(&mover, &params, &patch).await {
        note(format!("could not move {mover}: {error}"));
    }
}

/// The scripted leavers: an object deletion, and a deactivation reversed in time.
async fn script(
    users: Api<DirectoryUser>,
    mut progress: watch::Receiver<BTreeMap<String, Row>>,
    notes: mpsc::UnboundedSender<Line>,
    deleted: String,
    reversed: String,
    quarantine: Duration,
) {
    let note = |text: String| {
        let _ = notes.send(Line::new(Utc::now(), "demo", text));
    };
    let active = |on: bool| {
        (
            PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            Patch::Merge(json!({ "spec": { "active": on } })),
        )
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    note(format!(
        "kubectl delete directoryuser {deleted}    # object deletion, like a GitOps prune"
    ));
    if let Err(error) = users.delete(&deleted, &DeleteParams::default()).await {
        note(format!("could not delete {deleted}: {error}"));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    note(format!(
        "kubectl patch directoryuser {reversed} --type=merge -p '{{\"spec\":{{\"active\":false}}}}'    # an HR deactivation"
    ));
    let (params, patch) = active(false);
    if let Err(error) = users.patch(&reversed, &params, &patch).await {
        note(format!("could not deactivate {reversed}: {error}"));
        return;
    }
    let quarantined = progress
        .wait_for(|rows| {
            rows.get(&reversed)
                .is_some_and(|r| r.phase == Phase::Quarantined)
        })
        .await
        .is_ok();
    if !quarantined {
        return;
    }
    tokio::time::sleep((quarantine * 2 / 5).min(Duration::from_secs(4))).await;
    note(format!(
        "kubectl patch directoryuser {reversed} --type=merge -p '{{\"spec\":{{\"active\":true}}}}'    # reinstated during the quarantine"
    ));
    let (params, patch) = active(true);
    if let Err(error) = users.patch(&reversed, &params, &patch).await {
        note(format!("could not reinstate {reversed}: {error}"));
    }
}

/// The repository's `examples/`, or `--examples`.
fn examples_dir(args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let candidates = match &args.examples {
        Some(dir) => vec![dir.clone()],
        None => vec![
            roster_testkit::repo_path("examples"),
            PathBuf::from("examples"),
        ],
    };
    candidates
        .into_iter()
        .find(|dir| dir.join("standins").join(company::LMS_SEED).is_file())
        .context(
            "cannot find the examples directory (with standins/demo-lms-seed.yaml); pass --examples <dir>",
        )
}

/// Applies the CRDs and the admission policy shipped with them (Tenant deletion
/// protection), and waits until each CRD is Established.
async fn install_crds(client: &Client) -> anyhow::Result<()> {
    roster_testkit::install_crds(client, MANAGER, Duration::from_secs(60)).await?;
    Ok(())
}

/// `kubectl apply -n <ns> -f <dir>`, retried while discovery catches up with the
/// CRDs; returns what was applied, counted by kind.
async fn kubectl_apply(plane: &ControlPlane, ns: &str, dir: &Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut command = plane.kubectl_command();
        command
            .args(["apply", "-n", ns, "-f"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Through the control plane's spawner: it dies with the demo.
        let child = process::spawn(command).context("run kubectl")?;
        let pid = child.id();
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .context("the kubectl thread panicked")?
            .context("run kubectl")?;
        process::unregister(pid);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for line in stdout.lines() {
                let object = line.split_whitespace().next().unwrap_or_default();
                let kind = object.split(['/', '.']).next().unwrap_or(object);
                *kinds.entry(kind.to_string()).or_default() += 1;
            }
            return Ok(kinds
                .iter()
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect::<Vec<_>>()
                .join(", "));
        }
        let discovery_lag = stderr.contains("ensure CRDs are installed first");
        if !discovery_lag || Instant::now() > deadline {
            bail!("kubectl apply -f {} failed:\n{stderr}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn secret(client: &Client, ns: &str, reference: &SecretKeyRef) -> anyhow::Result<String> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(&reference.name)
        .await
        .with_context(|| format!("read Secret {}", reference.name))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .with_context(|| format!("Secret {} has no key {}", reference.name, reference.key))?;
    Ok(String::from_utf8_lossy(&value.0).trim().to_string())
}

/// Writes `value` under the key `reference` names in its Secret (a merge patch of
/// `stringData`: the Secret's other keys stay).
async fn store_secret(
    client: &Client,
    ns: &str,
    reference: &SecretKeyRef,
    value: &str,
) -> anyhow::Result<()> {
    let mut data = serde_json::Map::new();
    data.insert(reference.key.clone(), value.into());
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            &reference.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": data })),
        )
        .await
        .with_context(|| {
            format!(
                "store the calendar credentials in Secret {}",
                reference.name
            )
        })?;
    Ok(())
}

/// A duration as the policy spells it: `10s`, `2m`, `1h30m`.
fn go_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

fn how(trigger: roster_api::Trigger) -> &'static str {
    match trigger {
        roster_api::Trigger::Deactivated => "active: false",
        roster_api::Trigger::TerminationDate => "termination date in the past",
        roster_api::Trigger::DeprovisionNow => "annotated roster.dev/deprovision-now",
        roster_api::Trigger::ObjectDeleted => "being deleted",
    }
}

/// `e-1001 … e-1014`.
fn range(names: &[String]) -> String {
    match names {
        [] => "none".into(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spelled_like_the_policy() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn expectations() {
        let purged = Row {
            phase: Phase::Purged,
            ..Default::default()
        };
        assert!(reached(Some(&purged), Expect::Purged));
        let gone = Row {
            phase: Phase::Deprovisioned,
            gone: true,
            ..Default::default()
        };
        assert!(reached(Some(&gone), Expect::Purged));
        assert!(reached(Some(&gone), Expect::Gone));
        assert!(
            !reached(Some(&purged), Expect::Gone),
            "its Departure not deleted yet"
        );
        let back = Row {
            reversals: 1,
            restored: true,
            ..Default::default()
        };
        assert!(reached(Some(&back), Expect::BackToActive));
        assert!(!reached(Some(&Row::default()), Expect::BackToActive));
        assert!(!reached(None, Expect::Purged));
    }
}
