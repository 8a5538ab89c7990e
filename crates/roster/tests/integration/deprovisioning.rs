//! Full deprovisioning end to end: the operator on the real API server, talking HTTP
//! to the learning-platform and calendar stand-ins. What the stand-ins end up holding
//! is the evidence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use roster::clock::SystemClock;
use roster::effects::platform::{PlatformEffects, PlatformSettings};
use roster_api::tenant::{CalendarConnection, SecretKeyRef};
use roster_api::{
    CalendarProvider, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec,
    Phase, StepName, StepState, Tenant, TenantSpec,
};
use roster_standins::calendar::CalendarSeed;
use roster_standins::calendar::google::GoogleCalendarStandin;
use roster_standins::calendar::graph::GraphCalendarStandin;
use roster_standins::lms::{Fault, LmsSeed, LmsStandIn, LmsState};
use serde_json::json;

use crate::support::{Operator, OperatorProcess, TestEnv, apply, effects, wait_phase};

pub(crate) const LMS_TOKEN: &str = "lms-test-token";

pub(crate) fn email(employee_id: &str) -> String {
    format!("person.{}@example.com", employee_id.to_ascii_lowercase())
}

/// The calendar the Tenant uses: provider, endpoint and the credentials the
/// stand-in issued (a service-account key file, or app credentials).
pub(crate) struct CalendarAt<'a> {
    provider: CalendarProvider,
    endpoint: &'a str,
    credentials: String,
}

impl<'a> CalendarAt<'a> {
    /// Google: a key of the stand-in's service account (domain-wide delegation).
    pub(crate) fn google(standin: &'a GoogleCalendarStandin) -> Self {
        CalendarAt {
            provider: CalendarProvider::Google,
            endpoint: standin.base_url(),
            credentials: standin.issue_service_account_key("roster"),
        }
    }

    /// Microsoft: an app registered in the stand-in's tenant, with a client secret.
    pub(crate) fn graph(standin: &'a GraphCalendarStandin) -> Self {
        CalendarAt {
            provider: CalendarProvider::Microsoft,
            endpoint: standin.base_url(),
            credentials: standin.register_app(),
        }
    }
}

/// The Tenant "acme" pointing at the stand-ins, its Secrets and its policy.
pub(crate) async fn tenant(
    env: &TestEnv,
    lms: &LmsStandIn,
    calendar: Option<CalendarAt<'_>>,
    fallback: &str,
    quarantine: &str,
    purge: &str,
) {
    let calendar_credentials = calendar
        .as_ref()
        .map_or_else(String::new, |c| c.credentials.clone());
    for (name, key, value) in [
        ("lms", "token", LMS_TOKEN.to_string()),
        ("calendar", "credentials.json", calendar_credentials),
    ] {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(crate::support::credentials_labels()),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([(key.to_string(), value)])),
            ..Default::default()
        };
        env.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: quarantine.into(),
            purge_deadline: purge.into(),
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let calendar = match calendar {
        Some(CalendarAt {
            provider, endpoint, ..
        }) => CalendarConnection {
            provider,
            endpoint: Some(endpoint.to_string()),
            credentials_secret_ref: Some(SecretKeyRef {
                name: "calendar".into(),
                key: "credentials.json".into(),
            }),
            fallback_owner: Some(fallback.into()),
        },
        None => CalendarConnection::default(),
    };
    let tenant = Tenant::new(
        "acme",
        TenantSpec {
            calendar,
            ..crate::support::tenant_spec(lms.base_url().as_str())
        },
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
}

pub(crate) fn person(employee_id: &str, manager: Option<&str>) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: employee_id.into(),
        full_name: format!("Person {employee_id}"),
        email: email(employee_id),
        manager_email: manager.map(email),
        ..Default::default()
    }
}

pub(crate) async fn create_user(env: &TestEnv, spec: DirectoryUserSpec) -> String {
    let name = format!("e-{}", spec.employee_id.to_ascii_lowercase());
    apply(
        &env.api::<DirectoryUser>(),
        &name,
        &DirectoryUser::new(&name, spec),
    )
    .await;
    name
}

pub(crate) async fn deprovision_now(env: &TestEnv, name: &str) {
    env.api::<DirectoryUser>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                roster_api::DEPROVISION_NOW_ANNOTATION: "2026-01-01T00:00:00Z"
            } } })),
        )
        .await
        .expect("annotate roster.dev/deprovision-now");
}

/// A user whose object already asks to be deprovisioned now.
pub(crate) async fn create_leaving_user(env: &TestEnv, spec: DirectoryUserSpec) -> String {
    let name = create_user(env, spec).await;
    deprovision_now(env, &name).await;
    name
}

const LMS_SEED: &str = r#"
users:
  - { employeeId: E100, fullName: Leaver Person, email: person.e100@example.com, calendarAccess: true, managerEmployeeId: E103 }
  - { employeeId: E101, fullName: Co Organizer, email: person.e101@example.com, calendarAccess: true }
  - { employeeId: E102, fullName: Presenter Person, email: person.e102@example.com, calendarAccess: true }
  - { employeeId: E103, fullName: Manager Person, email: person.e103@example.com, calendarAccess: true }
  - { employeeId: E104, fullName: Attendee Person, email: person.e104@example.com, calendarAccess: false }
  - { employeeId: E001, fullName: Fallback Owner, email: person.e001@example.com, calendarAccess: true }
events:
  - { id: ev-co, title: With co-organizer, startsAt: "+7d", organizer: E100, coOrganizers: [E101], capacity: 10, attendees: [E104], calendarEventId: cal-co, calendarOwner: E100 }
  - { id: ev-pres, title: Presenters only, startsAt: "+8d", organizer: E100, presenters: [E102], capacity: 10, calendarEventId: cal-pres, calendarOwner: E100 }
  - { id: ev-alone, title: Nobody else, startsAt: "+9d", organizer: E100, capacity: 5, calendarEventId: cal-alone, calendarOwner: E100 }
  - { id: ev-series, title: Weekly series, startsAt: "+10d", organizer: E100, coOrganizers: [E101], calendarEventId: cal-series, calendarOwner: E100 }
  - { id: ev-attend, title: Seat holder, startsAt: "+6d", organizer: E103, capacity: 2, attendees: [E100, E104] }
  - { id: ev-speaker, title: Speaker, startsAt: "+5d", organizer: E103, presenters: [E100, E102] }
sessions:
  - { id: se-host, title: Hosted, startsAt: "+3d", host: E100, capacity: 2, attendees: [E104] }
  - { id: se-attend, title: Attended, startsAt: "+4d", host: E103, capacity: 1, attendees: [E100] }
rules:
  - { id: rule-1, name: Security basics, assignerEmployeeId: E100, contentId: course-1 }
  - { id: rule-2, name: Code review, assignerEmployeeId: E100, contentId: course-2 }
  - { id: rule-3, name: Sales, assignerEmployeeId: E103, contentId: course-3 }
groups:
  - { id: engineering, name: Engineering, members: [E100, E101] }
  - { id: everyone, name: Everyone, members: [E100, E101, E102, E103] }
assignments:
  - { id: as-open, employeeId: E100, contentId: course-9, status: outstanding }
  - { id: as-done, employeeId: E100, contentId: course-1, status: completed }
engagement:
  - { id: en-1, employeeId: E100, kind: completion, itemId: course-1, occurredAt: "2025-02-20T14:03:00Z" }
  - { id: en-2, employeeId: E100, kind: score, itemId: quiz-1, occurredAt: "2025-02-20T14:10:00Z", score: 0.9 }
"#;

const CALENDAR_SEED: &str = r#"
users: [person.e100@example.com, person.e101@example.com, person.e102@example.com, person.e103@example.com, person.e104@example.com, person.e001@example.com]
events:
  - { id: cal-co, organizer: person.e100@example.com, summary: With co-organizer, start: "2030-02-04T09:00:00Z", end: "2030-02-04T10:00:00Z", attendees: [{ email: person.e101@example.com }, { email: person.e104@example.com }] }
  - { id: cal-pres, organizer: person.e100@example.com, summary: Presenters only, start: "2030-02-05T09:00:00Z", end: "2030-02-05T10:00:00Z", attendees: [{ email: person.e102@example.com }] }
  - { id: cal-alone, organizer: person.e100@example.com, summary: Nobody else, start: "2030-02-06T09:00:00Z", end: "2030-02-06T10:00:00Z" }
  - id: cal-series
    organizer: person.e100@example.com
    summary: Weekly series
    start: "2030-02-07T09:00:00Z"
    end: "2030-02-07T09:30:00Z"
    recurrence: { frequency: weekly, count: 6, daysOfWeek: [thursday] }
    attendees: [{ email: person.e101@example.com }]
  - { id: cal-private, organizer: person.e100@example.com, summary: Private, start: "2030-02-08T09:00:00Z", end: "2030-02-08T10:00:00Z" }
"#;

#[tokio::test]
async fn a_leaver_hands_everything_over_and_is_anonymized() {
    let env = TestEnv::new("deprov-full").await;
    let lms = LmsStandIn::start(
        LmsState::with_seed(LMS_TOKEN, LmsSeed::from_yaml_str(LMS_SEED).unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let google = GoogleCalendarStandin::start().await.unwrap();
    google
        .seed(&CalendarSeed::from_yaml_str(CALENDAR_SEED).unwrap())
        .unwrap();
    tenant(
        &env,
        &lms,
        Some(CalendarAt::google(&google)),
        "E001",
        "1s",
        "3s",
    )
    .await;
    // Users exist before the operator starts, as after a restart.
    for (id, manager) in [
        ("E101", None),
        ("E102", None),
        ("E103", None),
        ("E104", None),
        ("E001", None),
        ("E100", Some("E103")),
    ] {
        create_user(&env, person(id, manager)).await;
    }
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    wait_phase(&env, "e-e001", Phase::Active).await;
    wait_phase(&env, "e-e100", Phase::Active).await;

    deprovision_now(&env, "e-e100").await;
    let user = wait_phase(&env, "e-e100", Phase::Purged).await;

    // Calendar: each synced event went to the first eligible person in the policy's order.
    let organizer = |id: &str| google.event(id).map(|e| e.organizer).unwrap_or_default();
    assert_eq!(organizer("cal-co"), email("E101"), "co-organizer first");
    assert_eq!(organizer("cal-pres"), email("E102"), "then presenters");
    assert_eq!(
        organizer("cal-alone"),
        email("E001"),
        "then the fallback owner"
    );
    assert_eq!(
        organizer("cal-series"),
        email("E101"),
        "a recurring series moves as one"
    );
    assert_eq!(
        organizer("cal-private"),
        email("E100"),
        "events the platform does not know stay"
    );
    let state = lms.state();
    assert_eq!(
        state.event("ev-co").unwrap().calendar_owner.as_deref(),
        Some("E101"),
        "the platform knows the new calendar owner"
    );

    // Seats, roles and hosted sessions.
    let seat_holder = state.event("ev-attend").unwrap();
    assert_eq!(
        seat_holder.attendees,
        vec!["E104".to_string()],
        "the leaver's seat is free"
    );
    assert_eq!(
        state.event("ev-speaker").unwrap().presenters,
        vec!["E102".to_string()]
    );
    assert_eq!(state.event("ev-co").unwrap().organizer, None);
    assert!(state.session("se-host").is_none(), "hosted session deleted");
    assert!(state.session("se-attend").unwrap().attendees.is_empty());

    // Rules to the manager; groups and outstanding assignments gone; history kept.
    assert_eq!(state.rule("rule-1").unwrap().assigner_employee_id, "E103");
    assert_eq!(state.rule("rule-2").unwrap().assigner_employee_id, "E103");
    assert!(
        !state
            .group("engineering")
            .unwrap()
            .members
            .contains(&"E100".to_string())
    );
    assert!(
        !state
            .group("everyone")
            .unwrap()
            .members
            .contains(&"E100".to_string())
    );
    assert!(state.assignment("as-open").is_none());
    assert!(
        state.assignment("as-done").is_some(),
        "completed assignments are engagement history"
    );

    // Anonymized and purged, engagement still reachable by employee ID.
    let anonymized = state.user("E100").unwrap();
    assert_eq!(anonymized.full_name, None);
    assert_eq!(anonymized.email, None);
    assert!(anonymized.anonymized && anonymized.purged);
    assert_eq!(state.engagement_of("E100").len(), 2);

    // Every side effect exactly once.
    assert!(
        state.duplicates().is_empty(),
        "learning platform duplicates: {:?}",
        state.duplicates()
    );
    assert!(google.duplicates().is_empty(), "calendar duplicates");
    let steps = user.status.unwrap().steps;
    let summary = |name: StepName| {
        steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.summary.clone())
            .unwrap_or_default()
    };
    println!(
        "calendar step: {}",
        summary(StepName::TransferCalendarEvents)
    );
    println!("events step: {}", summary(StepName::RemoveFromEvents));
    assert!(summary(StepName::TransferCalendarEvents).starts_with("4 events transferred"));
    assert!(summary(StepName::RemoveFromEvents).contains("2 seats freed"));
    assert!(summary(StepName::TransferRules).contains("2 rules transferred to the manager"));
    for step in &steps {
        let text = format!("{step:?}");
        assert!(
            !text.contains("@example.com") && !text.contains("Person"),
            "status step holds PII: {text}"
        );
    }
}

/// The smallest downstream footprint that touches every stage-2 step.
pub(crate) fn small_company(leavers: usize) -> (LmsSeed, Vec<String>) {
    let mut yaml = String::from(
        "users:\n  - { employeeId: M000, fullName: Manager, email: person.m000@example.com, calendarAccess: true }\n",
    );
    let ids: Vec<String> = (1..=leavers).map(|i| format!("L{i:03}")).collect();
    for id in &ids {
        yaml += &format!(
            "  - {{ employeeId: {id}, fullName: Person {id}, email: {}, calendarAccess: true, managerEmployeeId: M000 }}\n",
            email(id)
        );
    }
    yaml += "events:\n";
    for id in &ids {
        yaml += &format!(
            "  - {{ id: ev-{id}, title: Course, startsAt: \"+5d\", organizer: M000, capacity: 3, attendees: [{id}] }}\n"
        );
    }
    yaml += "rules:\n";
    for id in &ids {
        yaml += &format!(
            "  - {{ id: rule-{id}, name: Rule, assignerEmployeeId: {id}, contentId: c-1 }}\n"
        );
    }
    yaml += &format!(
        "groups:\n  - {{ id: everyone, name: Everyone, members: [{}] }}\n",
        ids.join(", ")
    );
    yaml += "assignments:\n";
    for id in &ids {
        yaml += &format!(
            "  - {{ id: as-{id}, employeeId: {id}, contentId: c-2, status: outstanding }}\n"
        );
    }
    (LmsSeed::from_yaml_str(&yaml).unwrap(), ids)
}

/// Mutations a leaver needs at least: revoke, rule transfer, unenroll, leave group,
/// remove assignment, anonymize, purge.
pub(crate) const MUTATIONS_PER_LEAVER: usize = 7;

/// The learning-platform operations each leaver of [`small_company`] needs.
pub(crate) const LEAVER_OPERATIONS: [&str; MUTATIONS_PER_LEAVER] = [
    "revokeAccess",
    "transferRule",
    "removeEventAttendee",
    "removeGroupMember",
    "deleteAssignment",
    "anonymizeUser",
    "purgeUser",
];

/// Nothing twice, nothing lost: no duplicate at the stand-in, and each of
/// [`LEAVER_OPERATIONS`] applied exactly once per leaver.
pub(crate) fn assert_each_applied_once(state: &LmsState, leavers: usize) {
    assert!(
        state.duplicates().is_empty(),
        "duplicates: {:?}",
        state.duplicates()
    );
    for operation in LEAVER_OPERATIONS {
        assert_eq!(
            state.applied_count(operation),
            leavers,
            "{operation} applied exactly once per leaver"
        );
    }
}

pub(crate) fn report(label: &str, lms: &LmsStandIn, leavers: usize) {
    let calls = lms.state().calls();
    let mutations = calls.iter().filter(|c| c.method != "GET").count();
    let applied = calls.iter().filter(|c| c.applied).count();
    let failed = calls.iter().filter(|c| c.status >= 400).count();
    println!(
        "{label}: {} calls ({failed} failed), {mutations} mutations sent, {applied} applied; minimum {} mutations; duplicates {}",
        calls.len(),
        leavers * MUTATIONS_PER_LEAVER,
        lms.state().duplicates().len()
    );
}

#[tokio::test]
async fn fifty_leavers_complete_through_thirty_percent_failures() {
    let env = TestEnv::new("deprov-flaky").await;
    let (seed, ids) = small_company(50);
    let lms = LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, seed).unwrap())
        .await
        .unwrap();
    // 30 % of calls fail: 10 % with 503 before the change, 10 % with 503 after it
    // (a lost response), 10 % with 429 and Retry-After.
    lms.state().add_fault(Fault::on("*").fail_rate(0.10, 503));
    lms.state()
        .add_fault(Fault::on("*").fail_rate(0.10, 503).after_apply());
    lms.state()
        .add_fault(Fault::on("*").throttle_rate(0.10, Duration::from_secs(1)));
    tenant(&env, &lms, None, "M000", "0s", "2s").await;
    create_user(&env, person("M000", None)).await;
    for id in &ids {
        create_leaving_user(&env, person(id, Some("M000"))).await;
    }
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    for id in &ids {
        wait_phase(
            &env,
            &format!("e-{}", id.to_ascii_lowercase()),
            Phase::Purged,
        )
        .await;
    }
    report("50 leavers, 30 % failures", &lms, ids.len());
    let state = lms.state();
    assert_each_applied_once(state, ids.len());
    for id in &ids {
        assert!(state.user(id).unwrap().purged);
        assert_eq!(
            state
                .rule(&format!("rule-{id}"))
                .unwrap()
                .assigner_employee_id,
            "M000"
        );
    }
}

/// The stand-in with `leavers` deactivated people and their manager M000 (with 20 ms of
/// latency, so that kills land in the middle of calls), the Tenant and policy.
pub(crate) async fn deactivated_company(
    env: &TestEnv,
    leavers: usize,
    quarantine: &str,
    purge: &str,
) -> (LmsStandIn, Vec<String>) {
    let (seed, ids) = small_company(leavers);
    let lms = LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, seed).unwrap())
        .await
        .unwrap();
    lms.state()
        .add_fault(Fault::on("*").latency(Duration::from_millis(20)));
    tenant(env, &lms, None, "M000", quarantine, purge).await;
    create_user(env, person("M000", None)).await;
    for id in &ids {
        create_user(
            env,
            DirectoryUserSpec {
                active: false,
                ..person(id, Some("M000"))
            },
        )
        .await;
    }
    (lms, ids)
}

#[tokio::test]
async fn kill_9_at_twenty_random_moments_neither_repeats_nor_skips_work() {
    let env = TestEnv::new("deprov-kill9").await;
    let (lms, ids) = deactivated_company(&env, 100, "0s", "3s").await;
    let plane = crate::support::control_plane().await;
    let log = std::env::temp_dir().join(format!("roster-kill9-{}.log", env.namespace));
    let mut operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    let mut moments = Vec::new();
    for _ in 0..20 {
        let wait = Duration::from_millis(150 + rand::random::<u64>() % 600);
        tokio::time::sleep(wait).await; // the random moment of the next crash
        moments.push(wait.as_millis());
        operator.kill_9();
        operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    }
    println!("killed after (ms): {moments:?}");
    for id in &ids {
        wait_phase(
            &env,
            &format!("e-{}", id.to_ascii_lowercase()),
            Phase::Purged,
        )
        .await;
    }
    drop(operator);
    report("100 leavers, 20 x kill -9", &lms, ids.len());
    let state = lms.state();
    assert_each_applied_once(state, ids.len());
    // 21 operator processes logged at info level: not one name or address.
    let logs = std::fs::read_to_string(&log).expect("read operator log");
    println!("operator log: {} lines", logs.lines().count());
    assert!(
        logs.lines().count() > 100,
        "the operator logged too little to prove anything"
    );
    assert!(
        !logs.contains("@example.com") && !logs.contains("Person L"),
        "operator logs hold PII"
    );
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn microsoft_graph_events_are_re_created_for_the_new_owner_and_cancelled() {
    let env = TestEnv::new("deprov-graph").await;
    let lms_seed = r#"
users:
  - { employeeId: E100, fullName: Leaver Person, email: person.e100@example.com, calendarAccess: true }
  - { employeeId: E101, fullName: Co Organizer, email: person.e101@example.com, calendarAccess: true }
  - { employeeId: E001, fullName: Fallback Owner, email: person.e001@example.com, calendarAccess: true }
events:
  - { id: ev-co, title: With co-organizer, startsAt: "+7d", organizer: E100, coOrganizers: [E101], calendarEventId: cal-co, calendarOwner: E100 }
  - { id: ev-alone, title: Nobody else, startsAt: "+9d", organizer: E100, calendarEventId: cal-alone, calendarOwner: E100 }
"#;
    let calendar_seed = r#"
users: [person.e100@example.com, person.e101@example.com, person.e001@example.com]
events:
  - { id: cal-co, organizer: person.e100@example.com, summary: With co-organizer, start: "2030-02-04T09:00:00Z", end: "2030-02-04T10:00:00Z", attendees: [{ email: person.e101@example.com }, { email: guest@example.com }] }
  - { id: cal-alone, organizer: person.e100@example.com, summary: Nobody else, start: "2030-02-06T09:00:00Z", end: "2030-02-06T10:00:00Z", attendees: [{ email: guest@example.com }] }
"#;
    let lms = LmsStandIn::start(
        LmsState::with_seed(LMS_TOKEN, LmsSeed::from_yaml_str(lms_seed).unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let graph = GraphCalendarStandin::start().await.unwrap();
    graph
        .seed(&CalendarSeed::from_yaml_str(calendar_seed).unwrap())
        .unwrap();
    tenant(
        &env,
        &lms,
        Some(CalendarAt::graph(&graph)),
        "E001",
        "0s",
        "2s",
    )
    .await;
    for id in ["E101", "E001"] {
        create_user(&env, person(id, None)).await;
    }
    create_leaving_user(&env, person("E100", None)).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    wait_phase(&env, "e-e100", Phase::Purged).await;

    // Graph cannot change an organizer: each event was re-created in the new owner's
    // calendar with its attendees, and the original cancelled.
    let co = graph.events_organized_by(&email("E101"));
    assert_eq!(co.len(), 1);
    assert!(co[0].has_attendee("guest@example.com"));
    assert_eq!(
        graph.events_organized_by(&email("E001")).len(),
        1,
        "the fallback owner's copy"
    );
    assert!(
        graph.events_organized_by(&email("E100")).is_empty(),
        "the leaver's originals are gone"
    );
    let cancelled: Vec<String> = graph.cancelled().into_iter().map(|e| e.id).collect();
    assert!(
        cancelled.contains(&"cal-co".to_string()) && cancelled.contains(&"cal-alone".to_string())
    );
    let link = lms.state().event("ev-co").unwrap();
    assert_eq!(link.calendar_owner.as_deref(), Some("E101"));
    assert_ne!(
        link.calendar_event_id.as_deref(),
        Some("cal-co"),
        "the platform links the re-created event"
    );
    assert!(graph.duplicates().is_empty(), "an event was created twice");
    assert!(lms.state().duplicates().is_empty());
}

/// A leaver whose mailbox the calendar service no longer serves (licence removed):
/// their events cannot be handed over through the API. That is reported as events
/// nobody could take over (the step's summary and a Warning Event), not as a transfer;
/// the rest of the hand-over goes on.
#[tokio::test]
async fn a_leaver_whose_mailbox_is_unlicensed_is_reported_not_transferred() {
    use k8s_openapi::api::events::v1::Event;
    let env = TestEnv::new("deprov-mailbox").await;
    let (lms, graph, name, _operator) = graph_leaver(&env, "E100").await;
    let user = wait_phase(&env, &name, Phase::Purged).await;

    let steps = user.status.unwrap().steps;
    let calendar = steps
        .iter()
        .find(|s| s.name == StepName::TransferCalendarEvents)
        .expect("the calendar step ran");
    let summary = calendar.summary.clone().unwrap_or_default();
    assert_eq!(
        summary,
        "2 events could not be taken over (the leaver's mailbox is missing or unlicensed)"
    );
    // Nothing was re-created or cancelled: the events are where they were.
    assert_eq!(graph.events_organized_by(&email("E100")).len(), 2);
    assert!(graph.events_organized_by(&email("E101")).is_empty());
    assert!(graph.cancelled().is_empty());
    assert_eq!(
        lms.state()
            .event("ev-co")
            .unwrap()
            .calendar_owner
            .as_deref(),
        Some("E100"),
        "the platform is not told of a transfer that did not happen"
    );

    // An administrator is told, with a Warning Event.
    let warning = crate::support::poll(
        "a StepNeedsAttention Event",
        Duration::from_millis(200),
        || async {
            env.api::<Event>()
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("StepNeedsAttention")
                        && e.note
                            .as_deref()
                            .is_some_and(|n| n.contains("could not be taken over"))
                })
        },
    )
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let note = warning.note.unwrap_or_default();
    println!("warning: {note}");
    assert!(
        !note.contains("example.com"),
        "the Event names a person: {note}"
    );
}

/// A new owner without a licensed mailbox cannot receive an event: that one is
/// reported as not taken over, and the leaver's other events are still handed over.
#[tokio::test]
async fn an_event_whose_new_owner_has_no_mailbox_is_reported_and_the_rest_transferred() {
    let env = TestEnv::new("deprov-new-owner").await;
    // The co-organizer, first in line for cal-co, has no mailbox licence.
    let (_lms, graph, name, _operator) = graph_leaver(&env, "E101").await;
    let user = wait_phase(&env, &name, Phase::Purged).await;

    let steps = user.status.unwrap().steps;
    let summary = steps
        .iter()
        .find(|s| s.name == StepName::TransferCalendarEvents)
        .and_then(|s| s.summary.clone())
        .unwrap_or_default();
    println!("calendar step: {summary}");
    assert!(
        summary.ends_with("1 event could not be taken over (a mailbox is missing or unlicensed)"),
        "{summary}"
    );
    assert!(
        summary.starts_with("1 event transferred (1 to FallbackOwner)"),
        "{summary}"
    );
    // cal-alone went to the fallback owner; cal-co stayed with the leaver.
    assert_eq!(graph.events_organized_by(&email("E001")).len(), 1);
    assert!(graph.events_organized_by(&email("E101")).is_empty());
    let left: Vec<String> = graph
        .events_organized_by(&email("E100"))
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["cal-co"]);
    assert!(graph.duplicates().is_empty());
}

/// A step whose endpoint stays down makes the user Stalled, which kstatus (what Flux
/// and Argo CD read) reports as Failed; a `roster.dev/retry` request after the cause is
/// fixed runs it at once, and the user completes.
#[tokio::test]
async fn a_step_that_keeps_failing_stalls_the_user_until_a_retry_request() {
    use crate::support::{condition, kstatus, wait_status};
    use roster_api::ConditionStatus;
    let env = TestEnv::new("deprov-stalled").await;
    let seed = r#"
users:
  - { employeeId: E300, fullName: Leaver Person, email: person.e300@example.com, calendarAccess: true }
groups:
  - { id: broken, name: Broken, members: [E300] }
"#;
    let lms = LmsStandIn::start(
        LmsState::with_seed(LMS_TOKEN, LmsSeed::from_yaml_str(seed).unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let refusal = lms
        .state()
        .add_fault(Fault::on("removeGroupMember").fail(503));
    tenant(&env, &lms, None, "E300", "0s", "720h").await;
    let name = create_leaving_user(&env, person("E300", None)).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));

    let user = wait_status(&env, &name, "Stalled", |s| {
        condition(s, "Stalled").is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
    let status = user.status.as_ref().unwrap();
    assert_eq!(status.phase, Phase::Deprovisioning);
    let stalled = condition(status, "Stalled").unwrap();
    assert_eq!(stalled.reason, "StepFailing");
    assert!(
        stalled.message.contains("RemoveFromGroups failed"),
        "{}",
        stalled.message
    );
    // kstatus's abnormal-true conditions: present only while True.
    assert_eq!(condition(status, "Reconciling").map(|c| c.status), None);
    let (kstatus_says, message) = kstatus(&user).await;
    assert_eq!(kstatus_says, "Failed", "kstatus: {kstatus_says} {message}");
    println!("kstatus of a stalled user: {kstatus_says} ({message})");
    assert!(
        !message.contains("example.com"),
        "kstatus message holds PII"
    );

    // The administrator fixes the cause and asks for a retry.
    assert!(lms.state().remove_fault(refusal));
    env.api::<DirectoryUser>()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                roster_api::RETRY_ANNOTATION: "after-fixing-the-group"
            } } })),
        )
        .await
        .expect("annotate roster.dev/retry");
    let user = wait_phase(&env, &name, Phase::Deprovisioned).await;
    let status = user.status.as_ref().unwrap();
    assert_eq!(
        status.handled_requests.retry.as_deref(),
        Some("after-fixing-the-group")
    );
    assert_eq!(condition(status, "Stalled").map(|c| c.status), None);
    let (kstatus_says, _) = kstatus(&user).await;
    assert_eq!(kstatus_says, "Current");
}

/// A Tenant may name only Secrets that opt in (`roster.dev/credentials: "true"`): one
/// that does not is refused with a condition that says how to fix it, and nothing is
/// sent anywhere (the confused-deputy case: whoever may edit a Tenant could otherwise
/// ship any Secret of the namespace to an endpoint of their choosing).
#[tokio::test]
async fn a_secret_that_does_not_opt_in_is_never_sent() {
    use crate::support::wait_status;
    let env = TestEnv::new("deprov-optin").await;
    let lms = LmsStandIn::start(LmsState::new(LMS_TOKEN)).await.unwrap();
    tenant(&env, &lms, None, "E400", "0s", "720h").await;
    // The Secret loses its label: it was never meant for roster.
    env.api::<Secret>()
        .patch(
            "lms",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                roster_api::tenant::CREDENTIALS_LABEL: null
            } } })),
        )
        .await
        .unwrap();
    let name = create_leaving_user(&env, person("E400", None)).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));

    let refused = |t: Option<&Tenant>| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "CredentialsFound" && c.reason == "SecretNotOptedIn")
        })
    };
    let tenant =
        crate::support::wait_object(env.api::<Tenant>(), "acme", "SecretNotOptedIn", refused)
            .await
            .unwrap();
    let message = tenant
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "CredentialsFound")
        .unwrap()
        .message;
    assert!(
        message.contains("kubectl label secret lms roster.dev/credentials=true"),
        "{message}"
    );
    let user = wait_status(&env, &name, "a failed revocation", |s| {
        s.steps
            .iter()
            .any(|step| step.name == StepName::RevokeAccess && step.last_error.is_some())
    })
    .await;
    let error = user.status.unwrap().steps[0].last_error.clone().unwrap();
    assert!(
        error.contains("not labelled roster.dev/credentials=true"),
        "{error}"
    );
    assert!(
        !error.contains(LMS_TOKEN),
        "the error holds the Secret's value"
    );
    assert!(lms.state().calls().is_empty(), "nothing was sent");
}

/// A Tenant pointing roster at the cloud metadata service gets nothing: the endpoint
/// policy refuses it before the credentials are read, and the step says why.
#[tokio::test]
async fn an_endpoint_on_a_metadata_address_is_refused() {
    use crate::support::wait_status;
    let env = TestEnv::new("deprov-metadata").await;
    let lms = LmsStandIn::start(LmsState::new(LMS_TOKEN)).await.unwrap();
    tenant(&env, &lms, None, "E500", "0s", "720h").await;
    env.api::<Tenant>()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "learningPlatform": {
                "endpoint": "http://169.254.169.254/latest/api/v1"
            } } })),
        )
        .await
        .unwrap();
    let name = create_leaving_user(&env, person("E500", None)).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    let user = wait_status(&env, &name, "a refused revocation", |s| {
        s.steps
            .iter()
            .any(|step| step.name == StepName::RevokeAccess && step.last_error.is_some())
    })
    .await;
    let error = user.status.unwrap().steps[0].last_error.clone().unwrap();
    assert!(
        error.contains("learningPlatform.endpoint points at 169.254.169.254"),
        "{error}"
    );
    assert!(lms.state().calls().is_empty());
}

/// The Tenant itself says when the operator's endpoint policy refuses one of its
/// endpoints (`EndpointsAllowed=False`, reason `EndpointRefused`, naming the field and the
/// rule; Ready follows), and nothing reaches the service: first the cloud metadata
/// address, then the stand-in under a host name the operator does not allow. Pointed at
/// an allowed address, the same Tenant and user reach the stand-in, so the empty call log
/// before was the policy's doing.
#[tokio::test]
async fn a_refused_endpoint_is_reported_on_the_tenant_and_nothing_is_sent() {
    use crate::support::{wait_object, wait_status};
    use roster_api::ConditionStatus;
    use roster_connectors::endpoint::EndpointPolicy;

    let env = TestEnv::new("deprov-endpoint-condition").await;
    let lms = LmsStandIn::start(LmsState::new(LMS_TOKEN)).await.unwrap();
    tenant(&env, &lms, None, "E600", "0s", "720h").await;
    let allowed = lms.base_url();
    let mut not_allowed = allowed.clone();
    not_allowed.set_host(Some("localhost")).unwrap();
    let set_endpoint = |endpoint: String| {
        let tenants = env.api::<Tenant>();
        async move {
            tenants
                .patch(
                    "acme",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": { "learningPlatform": {
                        "endpoint": endpoint
                    } } })),
                )
                .await
                .unwrap()
        }
    };
    set_endpoint("http://169.254.169.254/latest/api/v1".into()).await;
    let name = create_leaving_user(&env, person("E600", None)).await;

    // Only 127.0.0.1 is allowed (over plain http, as the stand-in speaks it).
    let policy = EndpointPolicy {
        allowed_hosts: vec!["127.0.0.1".into()],
        http_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        allow_loopback_http: false,
    };
    let settings = PlatformSettings {
        calls_per_second: std::num::NonZeroU32::new(1000).unwrap(),
        endpoints: policy.clone(),
        ..Default::default()
    };
    let effects = Arc::new(PlatformEffects::new(
        env.client.clone(),
        Arc::new(SystemClock),
        settings,
    ));
    let options = roster::controller::Options {
        namespaces: vec![env.namespace.clone()],
        endpoints: policy,
        ..Default::default()
    };
    let _operator = Operator::start_with(&env.client, options, effects);

    // The condition for `check`, once it holds for the Tenant's current generation.
    async fn endpoints_condition(
        env: &TestEnv,
        what: &'static str,
        check: impl Fn(&roster_api::Condition) -> bool + Send + 'static,
    ) -> (roster_api::Condition, roster_api::Condition) {
        let tenant = wait_object(env.api::<Tenant>(), "acme", what, move |t| {
            t.is_some_and(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.observed_generation == t.metadata.generation
                        && s.conditions
                            .iter()
                            .any(|c| c.r#type == "EndpointsAllowed" && check(c))
                })
            })
        })
        .await
        .unwrap();
        let conditions = tenant.status.unwrap().conditions;
        let find = |kind: &str| conditions.iter().find(|c| c.r#type == kind).cloned();
        (find("EndpointsAllowed").unwrap(), find("Ready").unwrap())
    }

    let (refused, ready) = endpoints_condition(&env, "EndpointRefused (metadata)", |c| {
        c.reason == "EndpointRefused" && c.message.contains("169.254.169.254")
    })
    .await;
    assert_eq!(refused.status, ConditionStatus::False);
    assert!(
        refused
            .message
            .starts_with("spec.learningPlatform.endpoint points at 169.254.169.254, a link-local"),
        "{}",
        refused.message
    );
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(
        ready.message.contains("EndpointsAllowed"),
        "{}",
        ready.message
    );

    set_endpoint(not_allowed.to_string()).await;
    let (refused, ready) = endpoints_condition(&env, "EndpointRefused (host)", |c| {
        c.reason == "EndpointRefused" && c.message.contains("localhost")
    })
    .await;
    assert_eq!(refused.status, ConditionStatus::False);
    assert!(
        refused.message.contains(
            "spec.learningPlatform.endpoint host localhost is not among the operator's allowed endpoint hosts"
        ) && refused.message.contains("endpointPolicy.allowedHosts"),
        "{}",
        refused.message
    );
    assert_eq!(ready.status, ConditionStatus::False);
    // The effects refused it too, before reading the Secret: nothing was sent.
    wait_status(&env, &name, "a revocation refused for localhost", |s| {
        s.steps.iter().any(|step| {
            step.name == StepName::RevokeAccess
                && step
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("localhost"))
        })
    })
    .await;
    assert!(lms.state().calls().is_empty(), "nothing was sent");
    let text =
        serde_json::to_string(&env.api::<Tenant>().get("acme").await.unwrap().status).unwrap();
    assert!(
        !text.contains(LMS_TOKEN),
        "the Tenant status holds the token"
    );

    // Allowed: the condition clears, Ready follows, and the revocation goes through.
    set_endpoint(allowed.to_string()).await;
    let (allowed_now, ready) = endpoints_condition(&env, "EndpointsAllowed", |c| {
        c.status == ConditionStatus::True
    })
    .await;
    assert_eq!(allowed_now.reason, "EndpointsAllowed");
    assert_eq!(ready.status, ConditionStatus::True, "{}", ready.message);
    // The failed step waits out its backoff unless asked to retry now.
    env.api::<DirectoryUser>()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                roster_api::RETRY_ANNOTATION: "after-fixing-the-endpoint"
            } } })),
        )
        .await
        .expect("annotate roster.dev/retry");
    wait_status(&env, &name, "access revoked at the allowed endpoint", |s| {
        s.steps
            .iter()
            .any(|step| step.name == StepName::RevokeAccess && step.state == StepState::Succeeded)
    })
    .await;
    assert!(
        !lms.state().calls().is_empty(),
        "the allowed endpoint is called"
    );
}

/// A leaver (E100) with two Graph events, a co-organizer (E101) and the fallback owner
/// (E001), one of whose mailboxes is unlicensed; the operator runs.
async fn graph_leaver(
    env: &TestEnv,
    unlicensed: &str,
) -> (LmsStandIn, GraphCalendarStandin, String, Operator) {
    let lms_seed = r#"
users:
  - { employeeId: E100, fullName: Leaver Person, email: person.e100@example.com, calendarAccess: true }
  - { employeeId: E101, fullName: Co Organizer, email: person.e101@example.com, calendarAccess: true }
  - { employeeId: E001, fullName: Fallback Owner, email: person.e001@example.com, calendarAccess: true }
events:
  - { id: ev-co, title: With co-organizer, startsAt: "+7d", organizer: E100, coOrganizers: [E101], calendarEventId: cal-co, calendarOwner: E100 }
  - { id: ev-alone, title: Nobody else, startsAt: "+9d", organizer: E100, calendarEventId: cal-alone, calendarOwner: E100 }
"#;
    let calendar_seed = r#"
users: [person.e100@example.com, person.e101@example.com, person.e001@example.com]
events:
  - { id: cal-co, organizer: person.e100@example.com, summary: With co-organizer, start: "2030-02-04T09:00:00Z", end: "2030-02-04T10:00:00Z", attendees: [{ email: guest@example.com }] }
  - { id: cal-alone, organizer: person.e100@example.com, summary: Nobody else, start: "2030-02-06T09:00:00Z", end: "2030-02-06T10:00:00Z", attendees: [{ email: guest@example.com }] }
"#;
    let lms = LmsStandIn::start(
        LmsState::with_seed(LMS_TOKEN, LmsSeed::from_yaml_str(lms_seed).unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let graph = GraphCalendarStandin::start().await.unwrap();
    graph
        .seed(&CalendarSeed::from_yaml_str(calendar_seed).unwrap())
        .unwrap();
    graph.unlicense(&email(unlicensed));
    tenant(
        env,
        &lms,
        Some(CalendarAt::graph(&graph)),
        "E001",
        "0s",
        "2s",
    )
    .await;
    for id in ["E101", "E001"] {
        create_user(env, person(id, None)).await;
    }
    let name = create_leaving_user(env, person("E100", None)).await;
    let operator = Operator::start(&env.client, &env.namespace, effects(env));
    (lms, graph, name, operator)
}

/// Two operator processes with leader election (lease 10 s): the leader is killed with
/// SIGKILL mid-quarantine; the standby takes over within the lease duration plus 5 s,
/// never acts before it holds the lease, and finishes every leaver with no side effect
/// applied twice and no deadline moved.
#[tokio::test]
async fn killing_the_leader_hands_over_within_the_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    let env = TestEnv::new("deprov-failover").await;
    let (lms, ids) = deactivated_company(&env, 30, "12s", "20s").await;
    let plane = crate::support::control_plane().await;
    let log = |who: &str| {
        std::env::temp_dir().join(format!("roster-failover-{}-{who}.log", env.namespace))
    };
    // 10 s (renewed 4 s before it ends): CI shares one API server between the suite's
    // tests on 2 cores, where a 5 s lease's renewal can be late enough for the standby
    // to take over before the kill.
    const LEASE_SECONDS: u64 = 10;
    let lease_seconds = LEASE_SECONDS.to_string();
    let lease_args = [
        "--leader-election",
        "--lease-namespace",
        env.namespace.as_str(),
        "--lease-duration-seconds",
        lease_seconds.as_str(),
    ];
    let start = |who: &str| {
        OperatorProcess::start_with(
            &env.namespace,
            plane.kubeconfig_path(),
            &log(who),
            &lease_args,
            &[("POD_NAME", who)],
        )
    };
    let mut processes = BTreeMap::from([
        ("roster-a", start("roster-a")),
        ("roster-b", start("roster-b")),
    ]);
    let names: Vec<String> = ids
        .iter()
        .map(|id| format!("e-{}", id.to_ascii_lowercase()))
        .collect();
    let mut deadlines = BTreeMap::new();
    for name in &names {
        let user = wait_phase(&env, name, Phase::Quarantined).await;
        let status = user.status.unwrap();
        deadlines.insert(
            name.clone(),
            (status.deprovision_due_time, status.purge_due_time),
        );
    }
    let leases = env.api::<Lease>();
    let holder = |lease: Lease| {
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()
    };
    let leader = holder(leases.get("roster-leader").await.expect("the leader Lease"));
    let standby = if leader == "roster-a" {
        "roster-b"
    } else {
        "roster-a"
    };
    for (who, process) in processes.iter_mut() {
        assert!(
            process.exited().is_none(),
            "{who} exited before the kill (leader: {leader})"
        );
    }
    let killed_at = chrono::Utc::now();
    let started = tokio::time::Instant::now();
    processes
        .remove(leader.as_str())
        .expect("the leader is one of the two")
        .kill_9();
    crate::support::poll(
        "the standby holds the lease",
        Duration::from_millis(100),
        || {
            let leases = leases.clone();
            async move {
                let now = holder(leases.get("roster-leader").await.ok()?);
                (now == standby).then_some(())
            }
        },
    )
    .await;
    let handover = started.elapsed();
    println!(
        "leader {leader} killed; {standby} took over after {handover:?} (lease {LEASE_SECONDS} s)"
    );
    assert!(
        handover <= Duration::from_secs(LEASE_SECONDS + 5),
        "handover took {handover:?}"
    );
    for name in &names {
        let user = wait_phase(&env, name, Phase::Purged).await;
        let status = user.status.unwrap();
        assert_eq!(
            deadlines[name],
            (status.deprovision_due_time, status.purge_due_time),
            "{name}: a deadline moved"
        );
    }
    drop(processes);
    let state = lms.state();
    assert!(state.duplicates().is_empty(), "{:?}", state.duplicates());
    for operation in ["revokeAccess", "anonymizeUser", "purgeUser", "transferRule"] {
        assert_eq!(state.applied_count(operation), ids.len(), "{operation}");
    }
    // The standby acquired leadership only after the leader was gone.
    let logs = std::fs::read_to_string(log(standby)).expect("the standby's log");
    let acquired: Vec<chrono::DateTime<chrono::Utc>> = logs
        .lines()
        .filter(|l| l.contains("acquired leadership"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["timestamp"].as_str()?.parse().ok())
        .collect();
    assert_eq!(acquired.len(), 1, "the standby led once");
    assert!(
        acquired[0] > killed_at,
        "the standby led before the leader was gone"
    );
    println!(
        "standby acquired the lease {:?} after the kill",
        acquired[0] - killed_at
    );
}
