//! The learning-platform client against the learning-platform stand-in: every
//! operation of the contract, idempotency, "already gone is success", seats,
//! anonymization, rate limits, server errors, timeouts, authentication and the
//! absence of personal data from errors and logs. No Kubernetes API server needed.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;
use roster_connectors::lms::{
    Access, AssignmentStatus, CalendarLink, CreateOutcome, EngagementKind, EventRole,
    InvolvementKind, LmsClient, LmsError, ProfilePatch, Role, UpsertOutcome, UserProfile,
};
use roster_standins::lms::{
    DuplicateKind, Fault, LmsSeed, LmsStandIn, LmsState, OPERATIONS, RateLimit,
};
use url::Url;

const TOKEN: &str = "s3cret-test-token";

/// Personal data in the test seed; none of it may show up in errors or logs.
const PII: &[&str] = &[
    "Ada",
    "Lovelace-Example",
    "ada@example.com",
    "Bruno",
    "bruno@example.com",
    "https://pics.example.com/ada.png",
];

const SEED: &str = r#"
users:
  - employeeId: "E1"
    fullName: Ada Lovelace-Example
    email: ada@example.com
    pictureUrl: https://pics.example.com/ada.png
    department: Engineering
    title: Staff Engineer
    location: Lisbon
    managerEmployeeId: "E4"
    hireDate: 2019-04-01
    calendarAccess: true
  - employeeId: "E2"
    fullName: Bruno Example
    email: bruno@example.com
    calendarAccess: true
  - employeeId: "E3"
    fullName: Chidi Example
    email: chidi@example.com
  - employeeId: "E4"
    fullName: Dana Example
    email: dana@example.com
    calendarAccess: true
  - employeeId: "0042"
    fullName: Eero Example
    email: eero@example.com
events:
  - id: ev-full
    title: Full event
    startsAt: "+7d"
    organizer: "E1"
    coOrganizers: ["E4", "E2"]
    presenters: ["E1", "E2"]
    capacity: 3
    attendees: ["E1", "E3", "0042"]
    calendarEventId: cal-1
    calendarOwner: "E1"
  - id: ev-owned
    title: Owned only
    startsAt: "+8d"
    organizer: "E4"
    calendarEventId: cal-2
    calendarOwner: "E1"
  - id: ev-past
    title: Past event
    startsAt: "-2d"
    organizer: "E4"
    attendees: ["E1"]
sessions:
  - id: se-hosted
    title: Office hours
    startsAt: "+3d"
    host: "E1"
    capacity: 4
    attendees: ["E2", "0042"]
  - id: se-attended
    title: Mentoring
    startsAt: "+2d"
    host: "E4"
    capacity: 1
    attendees: ["E1"]
rules:
  - id: rule-1
    name: Security basics
    assignerEmployeeId: "E1"
    contentId: course-security
  - id: rule-2
    name: Code review
    assignerEmployeeId: "E1"
  - id: rule-3
    name: Sales onboarding
    assignerEmployeeId: "E4"
groups:
  - id: engineering
    name: Engineering
    members: ["E1", "E2", "E4"]
  - id: mentors
    members: ["E1"]
  - id: new hires/2024
    name: New hires 2024
assignments:
  - id: as-1
    employeeId: "E1"
    contentId: course-gdpr
    contentTitle: Data protection
    status: outstanding
  - id: as-2
    employeeId: "E1"
    contentId: course-security
    contentTitle: Security basics
    status: completed
    ruleId: rule-1
  - id: as-3
    employeeId: "E1"
    contentId: course-review
    contentTitle: Code review
engagement:
  - id: en-1
    employeeId: "E1"
    kind: completion
    itemId: course-security
    itemTitle: Security basics
    occurredAt: 2024-02-20T14:03:00Z
  - id: en-2
    employeeId: "E1"
    kind: score
    itemId: assessment-security
    occurredAt: 2024-02-20T14:10:00Z
    score: 0.92
  - id: en-3
    employeeId: "E1"
    kind: attendance
    itemId: ev-past
    occurredAt: 2025-01-15T10:00:00Z
  - id: en-4
    employeeId: "E2"
    kind: attendance
    itemId: ev-past
    occurredAt: 2025-01-15T10:00:00Z
"#;

async fn start() -> (LmsStandIn, LmsClient) {
    let seed = LmsSeed::from_yaml_str(SEED).expect("the test seed parses");
    let state = LmsState::with_seed(TOKEN, seed).expect("the test seed is valid");
    let standin = LmsStandIn::start(state).await.expect("start the stand-in");
    let client = standin.client(Duration::from_secs(5));
    (standin, client)
}

fn assert_no_pii(text: &str, what: &str) {
    for needle in PII {
        assert!(
            !text.contains(needle),
            "{what} contains personal data ({needle:?}): {text}"
        );
    }
}

fn assert_no_duplicates(standin: &LmsStandIn) {
    let duplicates = standin.state().duplicates();
    assert!(
        duplicates.is_empty(),
        "duplicate applications: {duplicates:?}"
    );
}

fn raw(standin: &LmsStandIn, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", standin.base_url()))
        .bearer_auth(TOKEN)
}

/// Joiners and movers: `createUser` refuses a second account for an employee ID,
/// `updateUser` is a merge patch of exactly the fields sent, and the platform keeps
/// only configured locations and known managers.
#[tokio::test]
async fn joiners_and_movers_through_the_client() {
    let mut seed = LmsSeed::from_yaml_str(SEED).unwrap();
    seed.locations = vec!["Lisbon".into(), "Berlin".into()];
    let standin = LmsStandIn::start(LmsState::with_seed(TOKEN, seed).unwrap())
        .await
        .unwrap();
    let lms = standin.client(Duration::from_secs(5));
    let profile = UserProfile {
        full_name: "Gil Example".into(),
        email: "gil@example.com".into(),
        title: Some("Analyst".into()),
        department: Some("Finance".into()),
        location: Some("berlin".into()),
        manager_employee_id: Some("E4".into()),
        ..UserProfile::default()
    };
    assert_eq!(
        lms.create_user("E7", &profile, "k-create-1").await,
        Ok(CreateOutcome::Created)
    );
    assert_eq!(
        lms.create_user("E7", &profile, "k-create-1").await,
        Ok(CreateOutcome::Created),
        "a retry is replayed"
    );
    assert_eq!(
        lms.create_user("E7", &profile, "k-create-2").await,
        Ok(CreateOutcome::Exists),
        "a second create of the same employee ID is refused (409 user-exists)"
    );
    let user = standin.state().user("E7").unwrap();
    assert_eq!(
        user.location.as_deref(),
        Some("Berlin"),
        "configured spelling"
    );
    let elsewhere = UserProfile {
        location: Some("Atlantis".into()),
        ..profile.clone()
    };
    lms.create_user("E8", &elsewhere, "k-create-3")
        .await
        .unwrap();
    assert_eq!(
        standin.state().user("E8").unwrap().location,
        None,
        "left blank"
    );

    // A mover: exactly the fields sent change; null clears.
    let patch = ProfilePatch {
        title: Some(Some("Senior Analyst".into())),
        department: Some(None),
        ..ProfilePatch::default()
    };
    lms.update_user("E7", &patch, "k-patch-1").await.unwrap();
    let user = standin.state().user("E7").unwrap();
    assert_eq!(user.title.as_deref(), Some("Senior Analyst"));
    assert_eq!(user.department, None);
    assert_eq!(user.email.as_deref(), Some("gil@example.com"), "kept");
    assert_eq!(user.manager_employee_id.as_deref(), Some("E4"), "kept");
    assert_eq!(standin.state().applied_count("updateUser"), 1);

    // What the platform refuses.
    let status = |e: LmsError| match e {
        LmsError::Rejected { status, .. } => status,
        LmsError::NotFound => 404,
        other => panic!("unexpected {other:?}"),
    };
    let unknown_manager = ProfilePatch {
        manager_employee_id: Some(Some("E404".into())),
        ..ProfilePatch::default()
    };
    let refused = [
        lms.update_user("E404", &patch, "k-patch-2")
            .await
            .unwrap_err(),
        lms.update_user("E7", &unknown_manager, "k-patch-3")
            .await
            .unwrap_err(),
        lms.create_user(
            "E9",
            &UserProfile {
                manager_employee_id: Some("E404".into()),
                ..profile.clone()
            },
            "k-create-4",
        )
        .await
        .unwrap_err(),
    ];
    assert_eq!(refused.map(status), [404, 422, 422]);
    assert!(standin.state().user("E9").is_none(), "nothing created");
    assert_eq!(
        standin
            .state()
            .user("E7")
            .unwrap()
            .manager_employee_id
            .as_deref(),
        Some("E4"),
        "a refused patch changes nothing"
    );

    // Raw requests: a merge patch must say so, and cannot clear the required fields.
    let http = reqwest::Client::new();
    let url = format!("{}/users/E7", standin.base_url());
    let send = |content_type: &'static str, body: &'static str, key: &'static str| {
        http.patch(&url)
            .bearer_auth(TOKEN)
            .header("Content-Type", content_type)
            .header("Idempotency-Key", key)
            .body(body)
            .send()
    };
    let wrong_type = send("application/json", r#"{"title":"X"}"#, "raw-1")
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let cleared = send("application/merge-patch+json", r#"{"email":null}"#, "raw-2")
        .await
        .unwrap();
    assert_eq!(cleared.status(), 422);
    let stranger = send("application/merge-patch+json", r#"{"salary":1}"#, "raw-3")
        .await
        .unwrap();
    assert_eq!(stranger.status(), 400);
    assert_eq!(
        standin.state().user("E7").unwrap().title.as_deref(),
        Some("Senior Analyst")
    );
    assert!(standin.state().duplicates().is_empty());
}

#[tokio::test]
async fn every_operation_works_through_the_client() {
    let (standin, lms) = start().await;

    // Profile.
    let profile = UserProfile {
        full_name: "Fay Example".into(),
        email: "fay@example.com".into(),
        department: Some("Sales".into()),
        manager_employee_id: Some("E4".into()),
        hire_date: NaiveDate::from_ymd_opt(2024, 5, 2),
        ..UserProfile::default()
    };
    assert_eq!(
        lms.upsert_user("E5", &profile, "k-put-1").await.unwrap(),
        UpsertOutcome::Created
    );
    let changed = UserProfile {
        title: Some("Account Executive".into()),
        department: None,
        ..profile.clone()
    };
    assert_eq!(
        lms.upsert_user("E5", &changed, "k-put-2").await.unwrap(),
        UpsertOutcome::Updated
    );
    let user = lms.get_user("E5").await.unwrap();
    assert_eq!(user.full_name.as_deref(), Some("Fay Example"));
    assert_eq!(user.title.as_deref(), Some("Account Executive"));
    assert_eq!(user.department, None, "PUT is a full replace");
    assert_eq!(user.access, Access::Granted);
    assert!(!user.anonymized && !user.purged && !user.calendar_access);
    assert_eq!(lms.get_user("nobody").await, Err(LmsError::NotFound));

    // Access.
    lms.revoke_access("E1", "k-revoke").await.unwrap();
    assert_eq!(lms.get_user("E1").await.unwrap().access, Access::Revoked);
    lms.restore_access("E1", "k-restore").await.unwrap();
    assert_eq!(lms.get_user("E1").await.unwrap().access, Access::Granted);
    assert_eq!(
        lms.restore_access("nobody", "k-restore-nobody").await,
        Err(LmsError::NotFound)
    );

    // Involvements: upcoming only, ordered by start, roles and people in order.
    let involvements = lms.involvements("E1").await.unwrap();
    let ids: Vec<&str> = involvements.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["se-attended", "se-hosted", "ev-full", "ev-owned"]);
    let full = &involvements[2];
    assert_eq!(full.kind, InvolvementKind::Event);
    assert_eq!(
        full.roles,
        [Role::Attendee, Role::Presenter, Role::Organizer]
    );
    assert_eq!(full.organizer.as_deref(), Some("E1"));
    assert_eq!(full.co_organizers, ["E4", "E2"]);
    assert_eq!(full.presenters, ["E1", "E2"]);
    assert_eq!((full.capacity, full.seats_taken), (Some(3), 3));
    assert_eq!(full.calendar_event_id.as_deref(), Some("cal-1"));
    assert_eq!(full.calendar_owner.as_deref(), Some("E1"));
    assert!(involvements[3].roles.is_empty(), "calendar ownership alone");
    assert_eq!(involvements[1].roles, [Role::Host]);
    assert_eq!(involvements[1].host.as_deref(), Some("E1"));
    assert_eq!(involvements[0].roles, [Role::Attendee]);
    assert_eq!(involvements[0].kind, InvolvementKind::Session);

    // Calendar links (after the calendar event moved).
    let link = CalendarLink {
        calendar_event_id: "cal-2-moved".into(),
        calendar_owner: "E4".into(),
    };
    lms.set_event_calendar_link("ev-owned", &link, "k-link-ev")
        .await
        .unwrap();
    let event = standin.state().event("ev-owned").unwrap();
    assert_eq!(event.calendar_owner.as_deref(), Some("E4"));
    assert_eq!(event.calendar_event_id.as_deref(), Some("cal-2-moved"));
    lms.set_session_calendar_link("se-hosted", &link, "k-link-se")
        .await
        .unwrap();
    assert_eq!(
        standin
            .state()
            .session("se-hosted")
            .unwrap()
            .calendar_owner
            .as_deref(),
        Some("E4")
    );
    let ineligible = CalendarLink {
        calendar_event_id: "x".into(),
        calendar_owner: "E3".into(),
    };
    assert!(matches!(
        lms.set_event_calendar_link("ev-owned", &ineligible, "k-link-bad")
            .await,
        Err(LmsError::Rejected { status: 422, .. })
    ));
    assert_eq!(
        lms.set_event_calendar_link("ev-none", &link, "k-link-none")
            .await,
        Err(LmsError::NotFound)
    );

    // Rules.
    let rules = lms.assigner_rules("E1").await.unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["rule-1", "rule-2"]);
    assert_eq!(rules[0].content_id.as_deref(), Some("course-security"));
    let moved = lms.transfer_rule("rule-1", "E4", "k-rule-1").await.unwrap();
    assert_eq!(moved.assigner_employee_id, "E4");
    assert_eq!(lms.assigner_rules("E1").await.unwrap().len(), 1);
    assert_eq!(lms.assigner_rules("E4").await.unwrap().len(), 2);
    assert_eq!(
        lms.transfer_rule("rule-x", "E4", "k-rule-x").await,
        Err(LmsError::NotFound)
    );
    assert!(matches!(
        lms.transfer_rule("rule-2", "nobody", "k-rule-nobody").await,
        Err(LmsError::Rejected { status: 422, .. })
    ));

    // Events and sessions.
    lms.remove_event_attendee("ev-full", "E1", "k-att")
        .await
        .unwrap();
    lms.remove_event_role("ev-full", EventRole::Presenter, "E1", "k-pres")
        .await
        .unwrap();
    lms.remove_event_role("ev-full", EventRole::Organizer, "E1", "k-org")
        .await
        .unwrap();
    lms.remove_event_role("ev-full", EventRole::CoOrganizer, "E4", "k-coorg")
        .await
        .unwrap();
    let event = standin.state().event("ev-full").unwrap();
    assert_eq!(event.attendees, ["E3", "0042"]);
    assert_eq!(event.presenters, ["E2"]);
    assert_eq!(event.organizer, None);
    assert_eq!(event.co_organizers, ["E2"]);
    lms.delete_session("se-hosted", "k-del-se").await.unwrap();
    assert!(standin.state().session("se-hosted").is_none());
    let notified: BTreeSet<String> = standin
        .state()
        .notifications()
        .into_iter()
        .filter(|n| n.session_id == "se-hosted" && n.kind == "sessionCancelled")
        .map(|n| n.employee_id)
        .collect();
    assert_eq!(
        notified,
        BTreeSet::from(["E2".to_string(), "0042".to_string()])
    );
    lms.remove_session_attendee("se-attended", "E1", "k-se-att")
        .await
        .unwrap();
    assert!(
        standin
            .state()
            .session("se-attended")
            .unwrap()
            .attendees
            .is_empty()
    );
    // What remains is the synced calendar event E1 still owns (no role left): the
    // calendar step moves it, not the removal step.
    let left = lms.involvements("E1").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "ev-full");
    assert!(left[0].roles.is_empty());
    assert_eq!(left[0].calendar_owner.as_deref(), Some("E1"));

    // Groups.
    lms.add_group_member("new hires/2024", "E5", "k-grp-add")
        .await
        .unwrap();
    let groups = lms.groups("E5").await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].id, "new hires/2024");
    assert_eq!(groups[0].member_count, 1);
    let groups = lms.groups("E1").await.unwrap();
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, ["engineering", "mentors"]);
    assert_eq!(groups[0].name, "Engineering");
    assert_eq!(groups[0].member_count, 3);
    assert_eq!(groups[1].name, "mentors", "name defaults to the ID");
    for group in ["engineering", "mentors"] {
        lms.remove_group_member(group, "E1", &format!("k-grp-{group}"))
            .await
            .unwrap();
    }
    assert!(lms.groups("E1").await.unwrap().is_empty());
    assert_eq!(
        lms.add_group_member("engineering", "nobody", "k-grp-nobody")
            .await,
        Err(LmsError::NotFound)
    );
    // Groups are set up at the platform; rules only fill them.
    assert_eq!(
        lms.add_group_member("no such group", "E5", "k-grp-unknown")
            .await,
        Err(LmsError::NotFound)
    );
    assert!(standin.state().group("no such group").is_none());

    // Assignments.
    let outstanding = lms.outstanding_assignments("E1").await.unwrap();
    let ids: Vec<&str> = outstanding.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["as-1", "as-3"]);
    assert!(
        outstanding
            .iter()
            .all(|a| a.status == AssignmentStatus::Outstanding)
    );
    assert_eq!(lms.assignments("E1", None).await.unwrap().len(), 3);
    let completed = lms
        .assignments("E1", Some(AssignmentStatus::Completed))
        .await
        .unwrap();
    assert_eq!(completed[0].rule_id.as_deref(), Some("rule-1"));
    for a in &outstanding {
        lms.delete_assignment(&a.id, &format!("k-as-{}", a.id))
            .await
            .unwrap();
    }
    assert!(lms.outstanding_assignments("E1").await.unwrap().is_empty());
    assert!(matches!(
        lms.delete_assignment("as-2", "k-as-completed").await,
        Err(LmsError::Rejected { status: 409, .. })
    ));

    // Personal data, engagement, tenant.
    lms.anonymize("E1", "k-anon").await.unwrap();
    lms.purge("E1", "k-purge").await.unwrap();
    let records = lms.engagement("E1").await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].kind, EngagementKind::Score);
    assert_eq!(records[1].score, Some(0.92));
    lms.delete_tenant("k-tenant").await.unwrap();
    assert!(lms.engagement("E1").await.unwrap().is_empty());

    assert_no_duplicates(&standin);
    standin.shutdown().await;
}

#[tokio::test]
async fn operations_match_the_openapi_document() {
    let path = roster_testkit::repo_path("docs/learning-platform.openapi.yaml");
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("read the OpenAPI file"))
            .expect("the OpenAPI file is YAML");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let id = operation["operationId"].as_str().expect("operationId");
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let takes_key = params
                .iter()
                .any(|p| p["$ref"] == "#/components/parameters/IdempotencyKey");
            documented.insert((
                method.to_uppercase(),
                template.clone(),
                id.to_string(),
                takes_key,
            ));
        }
    }
    let served: BTreeSet<(String, String, String, bool)> = OPERATIONS
        .iter()
        .map(|o| {
            (
                o.method.to_string(),
                o.template.to_string(),
                o.id.to_string(),
                o.mutating,
            )
        })
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn a_repeated_key_is_replayed_not_applied_again() {
    let (standin, lms) = start().await;

    lms.revoke_access("E1", "key-1").await.unwrap();
    lms.revoke_access("E1", "key-1").await.unwrap();
    let calls = standin.state().calls_of("revokeAccess");
    assert_eq!(calls.len(), 2);
    assert!(calls[0].applied && !calls[0].replayed);
    assert!(!calls[1].applied && calls[1].replayed);
    assert_eq!(standin.state().applied_count("revokeAccess"), 1);

    // A replay returns the stored status and body, with the replay header.
    let first = raw(&standin, reqwest::Method::POST, "/rules/rule-2/transfer")
        .header("Idempotency-Key", "key-rule")
        .json(&serde_json::json!({"newAssignerEmployeeId": "E4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    // Move the rule on, then repeat the first request: the stored answer comes back.
    lms.transfer_rule("rule-2", "E2", "key-rule-2")
        .await
        .unwrap();
    let again = raw(&standin, reqwest::Method::POST, "/rules/rule-2/transfer")
        .header("Idempotency-Key", "key-rule")
        .json(&serde_json::json!({"newAssignerEmployeeId": "E4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(
        standin.state().rule("rule-2").unwrap().assigner_employee_id,
        "E2",
        "the replay did not apply again"
    );

    // A created user replays as created.
    let profile = UserProfile {
        full_name: "Gus Example".into(),
        email: "gus@example.com".into(),
        ..UserProfile::default()
    };
    assert_eq!(
        lms.upsert_user("E9", &profile, "key-put").await.unwrap(),
        UpsertOutcome::Created
    );
    assert_eq!(
        lms.upsert_user("E9", &profile, "key-put").await.unwrap(),
        UpsertOutcome::Created
    );
    assert_eq!(standin.state().applied_count("upsertUser"), 1);

    // Reusing a key for another request is refused.
    assert!(matches!(
        lms.revoke_access("E2", "key-1").await,
        Err(LmsError::Rejected { status: 422, .. })
    ));
    assert_eq!(standin.state().user("E2").unwrap().access, Access::Granted);

    // A mutation without a key is refused.
    let response = raw(&standin, reqwest::Method::POST, "/users/E2/access/revoke")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    assert_no_duplicates(&standin);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_apply_once() {
    let (standin, lms) = start().await;
    standin
        .state()
        .add_fault(Fault::on("anonymizeUser").latency(Duration::from_millis(100)));
    let (a, b) = tokio::join!(lms.anonymize("E1", "same"), lms.anonymize("E1", "same"));
    for result in [a, b] {
        match result {
            Ok(()) | Err(LmsError::Unavailable { status: 409 }) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    assert_eq!(standin.state().applied_count("anonymizeUser"), 1);
    assert_no_duplicates(&standin);
}

#[tokio::test]
async fn removing_what_is_already_gone_succeeds() {
    let (standin, lms) = start().await;
    // Never there, or already removed: all 204.
    lms.remove_event_attendee("ev-full", "E2", "g1")
        .await
        .unwrap();
    lms.remove_event_attendee("ev-unknown", "E1", "g2")
        .await
        .unwrap();
    lms.remove_event_role("ev-full", EventRole::Presenter, "E3", "g3")
        .await
        .unwrap();
    lms.remove_event_role("ev-unknown", EventRole::Organizer, "E1", "g4")
        .await
        .unwrap();
    lms.delete_session("se-unknown", "g5").await.unwrap();
    lms.remove_session_attendee("se-hosted", "E3", "g6")
        .await
        .unwrap();
    lms.remove_group_member("engineering", "E3", "g7")
        .await
        .unwrap();
    lms.remove_group_member("no-such-group", "E1", "g8")
        .await
        .unwrap();
    lms.delete_assignment("as-unknown", "g9").await.unwrap();
    lms.revoke_access("nobody", "g10").await.unwrap();
    lms.anonymize("nobody", "g11").await.unwrap();
    lms.purge("nobody", "g12").await.unwrap();

    // Removed once, then asked again by a later step (its own key): still success.
    lms.delete_session("se-hosted", "g13").await.unwrap();
    lms.delete_session("se-hosted", "g14").await.unwrap();
    lms.delete_assignment("as-1", "g15").await.unwrap();
    lms.delete_assignment("as-1", "g16").await.unwrap();
    assert!(standin.state().calls().iter().all(|c| c.status == 204));

    // The call log notices the second application under a new key.
    let duplicates = standin.state().duplicates();
    assert_eq!(duplicates.len(), 2, "{duplicates:?}");
    assert!(
        duplicates
            .iter()
            .all(|d| d.kind == DuplicateKind::SameRequestDifferentKeys)
    );
    assert_eq!(duplicates[0].idempotency_keys, ["g13", "g14"]);

    // Started events and sessions, and completed assignments, are history: 409.
    for result in [
        lms.remove_event_attendee("ev-past", "E1", "h1").await,
        lms.delete_assignment("as-2", "h2").await,
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, LmsError::Rejected { status: 409, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(err.category(), "rejected");
    }
}

#[tokio::test]
async fn unenrolling_frees_a_seat() {
    let (standin, lms) = start().await;
    let seats = |id: &str, who: &'static str| {
        let lms = lms.clone();
        let id = id.to_string();
        async move {
            let all = lms.involvements(who).await.unwrap();
            let item = all.into_iter().find(|i| i.id == id).unwrap();
            (item.seats_taken, item.capacity)
        }
    };
    assert_eq!(seats("ev-full", "E3").await, (3, Some(3)));
    lms.remove_event_attendee("ev-full", "E1", "seat-1")
        .await
        .unwrap();
    assert_eq!(seats("ev-full", "E3").await, (2, Some(3)));
    assert!(
        !lms.involvements("E1")
            .await
            .unwrap()
            .iter()
            .find(|i| i.id == "ev-full")
            .unwrap()
            .has_role(Role::Attendee)
    );
    // The same key again frees nothing more.
    lms.remove_event_attendee("ev-full", "E1", "seat-1")
        .await
        .unwrap();
    assert_eq!(standin.state().event("ev-full").unwrap().attendees.len(), 2);

    assert_eq!(seats("se-hosted", "E2").await, (2, Some(4)));
    lms.remove_session_attendee("se-hosted", "0042", "seat-2")
        .await
        .unwrap();
    assert_eq!(seats("se-hosted", "E2").await, (1, Some(4)));
    assert_no_duplicates(&standin);
}

#[tokio::test]
async fn anonymization_keeps_engagement_records_by_employee_id() {
    let (standin, lms) = start().await;
    let before = lms.engagement("E1").await.unwrap();
    assert_eq!(before.len(), 3);

    lms.anonymize("E1", "anon").await.unwrap();
    let user = lms.get_user("E1").await.unwrap();
    assert!(user.anonymized && !user.purged);
    assert_eq!(
        (user.full_name, user.email, user.picture_url),
        (None, None, None)
    );
    assert_eq!(user.access, Access::Revoked);
    assert!(!user.calendar_access);
    assert_eq!(
        user.department.as_deref(),
        Some("Engineering"),
        "kept until purge"
    );
    assert_eq!(lms.engagement("E1").await.unwrap(), before);
    assert!(matches!(
        lms.restore_access("E1", "anon-restore").await,
        Err(LmsError::Rejected { status: 409, .. })
    ));
    assert!(matches!(
        lms.add_group_member("mentors", "E1", "anon-group").await,
        Err(LmsError::Rejected { status: 409, .. })
    ));

    lms.purge("E1", "purge").await.unwrap();
    let user = lms.get_user("E1").await.unwrap();
    assert!(user.anonymized && user.purged);
    assert_eq!(
        (
            user.department,
            user.title,
            user.location,
            user.manager_employee_id,
            user.hire_date
        ),
        (None, None, None, None, None)
    );
    assert_eq!(lms.engagement("E1").await.unwrap(), before);

    // No trace of the person's data anywhere in the stand-in.
    let everything = serde_json::to_string(&standin.state().export()).unwrap();
    for needle in ["Ada", "ada@example.com", "Lisbon", "Staff Engineer"] {
        assert!(!everything.contains(needle), "{needle} survived the purge");
    }

    // Rehire: the same employee ID gets a profile and access again.
    let profile = UserProfile {
        full_name: "Ada Lovelace-Example".into(),
        email: "ada@example.com".into(),
        ..UserProfile::default()
    };
    assert_eq!(
        lms.upsert_user("E1", &profile, "rehire").await.unwrap(),
        UpsertOutcome::Updated
    );
    lms.restore_access("E1", "rehire-access").await.unwrap();
    let user = lms.get_user("E1").await.unwrap();
    assert!(!user.anonymized && user.access == Access::Granted);

    // Only the tenant's full deletion removes engagement records.
    lms.delete_tenant("exit").await.unwrap();
    assert!(lms.engagement("E1").await.unwrap().is_empty());
    assert!(lms.engagement("E2").await.unwrap().is_empty());
    assert_eq!(lms.get_user("E1").await, Err(LmsError::NotFound));
    lms.delete_tenant("exit-again").await.unwrap();
    assert!(standin.state().export() == LmsSeed::default());
}

#[tokio::test]
async fn throttling_is_rate_limited_with_retry_after() {
    let (standin, lms) = start().await;
    standin.state().add_fault(
        Fault::on("listInvolvements")
            .throttle(Duration::from_secs(3))
            .times(1),
    );
    let err = lms.involvements("E1").await.unwrap_err();
    assert_eq!(
        err,
        LmsError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.category(), "rate_limited");
    assert!(lms.involvements("E1").await.is_ok(), "the fault was spent");

    // A mutation throttled is not applied; its retry with the same key is.
    standin.state().add_fault(
        Fault::on("POST /users/*")
            .throttle(Duration::from_secs(1))
            .times(1),
    );
    assert!(matches!(
        lms.revoke_access("E2", "thr").await,
        Err(LmsError::RateLimited { .. })
    ));
    assert_eq!(standin.state().user("E2").unwrap().access, Access::Granted);
    lms.revoke_access("E2", "thr").await.unwrap();
    assert_eq!(standin.state().applied_count("revokeAccess"), 1);

    // The headers of a 429.
    standin.state().add_fault(
        Fault::on("getUser")
            .throttle(Duration::from_secs(2))
            .times(1),
    );
    let response = raw(&standin, reqwest::Method::GET, "/users/E1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(response.headers().contains_key("ratelimit-limit"));
    assert_eq!(response.headers()["ratelimit-remaining"], "0");

    // A real limit: two requests per minute.
    standin.state().set_rate_limit(Some(RateLimit {
        limit: 2,
        window: Duration::from_secs(60),
    }));
    let ok = raw(&standin, reqwest::Method::GET, "/users/E1")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.headers()["ratelimit-limit"], "2");
    assert_eq!(ok.headers()["ratelimit-remaining"], "1");
    lms.get_user("E1").await.unwrap();
    match lms.get_user("E1").await {
        Err(LmsError::RateLimited {
            retry_after: Some(after),
        }) => assert!(after > Duration::ZERO && after <= Duration::from_secs(60)),
        other => panic!("expected a rate limit, got {other:?}"),
    }
    standin.state().set_rate_limit(None);
    lms.get_user("E1").await.unwrap();
    assert_no_duplicates(&standin);
}

#[tokio::test]
async fn server_errors_are_unavailable_and_retries_apply_once() {
    let (standin, lms) = start().await;
    standin
        .state()
        .add_fault(Fault::on("/users/{employeeId}/groups").fail(500).times(1));
    let err = lms.groups("E1").await.unwrap_err();
    assert_eq!(err, LmsError::Unavailable { status: 500 });
    assert!(err.is_retryable());
    assert_eq!(err.category(), "unavailable");
    assert!(lms.groups("E1").await.is_ok());

    // Failing before applying: nothing happened; the retry applies.
    standin
        .state()
        .add_fault(Fault::on("removeEventAttendee").fail(503).times(1));
    assert_eq!(
        lms.remove_event_attendee("ev-full", "E1", "r1").await,
        Err(LmsError::Unavailable { status: 503 })
    );
    assert_eq!(standin.state().event("ev-full").unwrap().attendees.len(), 3);
    lms.remove_event_attendee("ev-full", "E1", "r1")
        .await
        .unwrap();
    assert_eq!(standin.state().event("ev-full").unwrap().attendees.len(), 2);

    // Failing after applying (a lost response): the retry is a replay.
    standin
        .state()
        .add_fault(Fault::on("transferRule").fail(503).after_apply().times(1));
    assert_eq!(
        lms.transfer_rule("rule-1", "E4", "r2").await,
        Err(LmsError::Unavailable { status: 503 })
    );
    assert_eq!(
        standin.state().rule("rule-1").unwrap().assigner_employee_id,
        "E4"
    );
    let rule = lms.transfer_rule("rule-1", "E4", "r2").await.unwrap();
    assert_eq!(rule.assigner_employee_id, "E4");
    let calls = standin.state().calls_of("transferRule");
    assert_eq!(calls.len(), 2);
    assert!(calls[0].applied && calls[0].status == 503);
    assert!(calls[0].fault.as_deref().unwrap().contains("after apply"));
    assert!(calls[1].replayed && !calls[1].applied);

    // A fault rate: about half of 200 requests fail.
    let id = standin
        .state()
        .add_fault(Fault::on("getUser").fail_rate(0.5, 500));
    let mut failed = 0;
    for _ in 0..200 {
        if lms.get_user("E2").await.is_err() {
            failed += 1;
        }
    }
    assert!((40..=160).contains(&failed), "{failed} of 200 failed");
    assert!(standin.state().remove_fault(id));
    assert_no_duplicates(&standin);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (standin, _) = start().await;
    let lms = standin.client(Duration::from_millis(200));
    standin
        .state()
        .add_fault(Fault::on("getUser").latency(Duration::from_secs(2)));
    let err = lms.get_user("E1").await.unwrap_err();
    assert_eq!(err, LmsError::Timeout);
    assert!(err.is_retryable());
    assert_eq!(err.category(), "timeout");
    standin.state().clear_faults();
    assert!(lms.get_user("E1").await.is_ok());
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let (standin, _) = start().await;
    let intruder = LmsClient::new(
        standin.base_url(),
        "not-the-token".into(),
        Duration::from_secs(5),
    );
    for result in [
        intruder.revoke_access("E1", "x").await,
        intruder.get_user("E1").await.map(drop),
    ] {
        match result {
            Err(LmsError::Rejected { status: 401, title }) => assert_eq!(title, "Unauthorized"),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    assert_eq!(standin.state().user("E1").unwrap().access, Access::Granted);
    assert!(
        standin
            .state()
            .calls()
            .iter()
            .all(|c| c.status == 401 && !c.applied)
    );

    let response = reqwest::Client::new()
        .get(format!("{}/users/E1", standin.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let admin = reqwest::Client::new()
        .get(format!("{}/calls", standin.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
}

#[tokio::test]
async fn errors_and_logs_carry_no_personal_data() {
    let (standin, lms) = start().await;
    let mut texts = Vec::new();

    // Errors about requests that (wrongly) put personal data in the URL.
    for err in [
        lms.get_user("ada@example.com").await.map(drop).unwrap_err(),
        lms.restore_access("Ada", "r").await.unwrap_err(),
        lms.transfer_rule("rule-1", "bruno@example.com", "t")
            .await
            .map(drop)
            .unwrap_err(),
        lms.delete_assignment("as-2", "d").await.unwrap_err(),
        lms.add_group_member("ada@example.com", "nobody", "g")
            .await
            .unwrap_err(),
    ] {
        assert!(!err.is_retryable());
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    // The log records the URLs callers send (so that a test can catch a caller
    // addressing people by email); start a clean log for what follows.
    standin.state().clear_calls();

    // Invalid profiles that carry personal data.
    let profiles = [
        UserProfile {
            full_name: "Ada Lovelace-Example".into(),
            email: "Ada Lovelace-Example <ada@example.com>".into(),
            ..UserProfile::default()
        },
        UserProfile {
            full_name: "Ada Lovelace-Example".into(),
            email: "ada@example.com".into(),
            picture_url: Some("ftp://Ada/ada@example.com".into()),
            ..UserProfile::default()
        },
    ];
    for (i, profile) in profiles.iter().enumerate() {
        let err = lms
            .upsert_user("E1", profile, &format!("bad-profile-{i}"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LmsError::Rejected { status: 422, .. }),
            "{err:?}"
        );
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    // Bodies that are not JSON, or of the wrong shape, quoting personal data.
    for body in [
        r#"{"fullName": "Ada Lovelace-Example", "email": 42}"#,
        r#"{"fullName": "Ada Lovelace-Example", "email": "ada@example.com", "nickname": "Ada"}"#,
        "Ada Lovelace-Example <ada@example.com>",
    ]
    .into_iter()
    .enumerate()
    {
        let (i, body) = body;
        let response = raw(&standin, reqwest::Method::PUT, "/users/E1")
            .header("Idempotency-Key", format!("raw-{i}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        texts.push(response.text().await.unwrap());
    }
    for text in &texts {
        assert_no_pii(text, "an error");
    }

    // Connection failures carry no URL (it holds identifiers).
    let dead = LmsClient::new(
        Url::parse("http://127.0.0.1:9/api/v1").unwrap(),
        TOKEN.into(),
        Duration::from_secs(2),
    );
    let err = dead.get_user("E1").await.unwrap_err();
    assert!(
        matches!(err, LmsError::Transport(_) | LmsError::Timeout),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");

    // The call log, through the Rust API and over HTTP.
    lms.upsert_user(
        "E7",
        &UserProfile {
            full_name: "Ada Lovelace-Example".into(),
            email: "ada@example.com".into(),
            ..UserProfile::default()
        },
        "ok",
    )
    .await
    .unwrap();
    assert_no_pii(
        &serde_json::to_string(&standin.state().calls()).unwrap(),
        "the call log",
    );
    let calls = reqwest::Client::new()
        .get(format!("{}/calls", standin.admin_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(calls.status(), 200);
    let calls = calls.text().await.unwrap();
    assert!(calls.contains("upsertUser"));
    assert_no_pii(&calls, "the call log");
}

#[tokio::test]
async fn admin_routes_drive_faults_and_show_calls() {
    let (standin, lms) = start().await;
    let http = reqwest::Client::new();
    let admin = standin.admin_url();

    let added = http
        .post(format!("{admin}/faults"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!([
            {"target": "revokeAccess", "errorRate": 1.0, "errorStatus": 500, "times": 1},
            {"target": "DELETE /events/*", "throttleRate": 1.0, "retryAfterSecs": 4}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let ids: serde_json::Value = added.json().await.unwrap();
    assert_eq!(ids["ids"].as_array().unwrap().len(), 2);
    assert_eq!(standin.state().faults().len(), 2);

    assert_eq!(
        lms.revoke_access("E1", "a").await,
        Err(LmsError::Unavailable { status: 500 })
    );
    assert_eq!(
        lms.remove_event_attendee("ev-full", "E1", "b").await,
        Err(LmsError::RateLimited {
            retry_after: Some(Duration::from_secs(4))
        })
    );
    let invalid = http
        .post(format!("{admin}/faults"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"target": "x", "errorRate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let cleared = http
        .delete(format!("{admin}/faults"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    lms.remove_event_attendee("ev-full", "E1", "b")
        .await
        .unwrap();

    let calls: serde_json::Value = http
        .get(format!("{admin}/calls"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = calls["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[2]["route"],
        "/events/{eventId}/attendees/{employeeId}"
    );
    assert_eq!(items[2]["operation"], "removeEventAttendee");
    assert_eq!(items[2]["employeeId"], "E1");
    assert_eq!(items[2]["idempotencyKey"], "b");
    assert_eq!(items[2]["status"], 204);
    assert_eq!(items[2]["applied"], true);
    assert_eq!(items[2]["replayed"], false);

    let duplicates: serde_json::Value = http
        .get(format!("{admin}/duplicates"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(duplicates["items"], serde_json::json!([]));

    let limit = http
        .put(format!("{admin}/rate-limit"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"limit": 1, "windowMs": 60000}))
        .send()
        .await
        .unwrap();
    assert_eq!(limit.status(), 204);
    lms.get_user("E1").await.unwrap();
    assert!(matches!(
        lms.get_user("E1").await,
        Err(LmsError::RateLimited { .. })
    ));
}

#[tokio::test]
async fn the_wire_format_is_camel_case_json() {
    let (standin, _) = start().await;
    let user: serde_json::Value = raw(&standin, reqwest::Method::GET, "/users/E1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [
        "employeeId",
        "fullName",
        "email",
        "pictureUrl",
        "managerEmployeeId",
        "hireDate",
        "access",
        "anonymized",
        "purged",
        "calendarAccess",
    ] {
        assert!(user.get(key).is_some(), "user lacks {key}: {user}");
    }
    assert_eq!(user["access"], "granted");
    assert_eq!(user["hireDate"], "2019-04-01");

    let involvements: serde_json::Value =
        raw(&standin, reqwest::Method::GET, "/users/E1/involvements")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let event = &involvements["items"][2];
    assert_eq!(event["kind"], "event");
    assert_eq!(
        event["roles"],
        serde_json::json!(["attendee", "presenter", "organizer"])
    );
    assert_eq!(event["coOrganizers"], serde_json::json!(["E4", "E2"]));
    assert_eq!(event["seatsTaken"], 3);
    assert_eq!(event["calendarOwner"], "E1");
    assert_eq!(event["calendarEventId"], "cal-1");

    let missing = raw(&standin, reqwest::Method::GET, "/users/nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://roster.dev/problems/lms/user-not-found"
    );
    assert_eq!(problem["title"], "User not found");
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"].is_string());

    let rules = raw(&standin, reqwest::Method::GET, "/users/E1/rules")
        .send()
        .await
        .unwrap();
    assert_eq!(rules.status(), 400, "role=assigner is required");
    let unknown = raw(&standin, reqwest::Method::GET, "/no/such/route")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let calls = standin.state().calls();
    assert_eq!(calls.last().unwrap().operation, "unknown");
}

#[tokio::test]
async fn seeds_load_from_files_and_are_validated() {
    let path = roster_testkit::repo_path("examples/standins/lms-seed.yaml");
    let seed = LmsSeed::from_path(&path).expect("the example seed loads");
    assert!(seed.users.iter().all(|u| {
        u.email
            .as_deref()
            .is_some_and(|e| e.ends_with("@example.com"))
    }));
    let state = LmsState::with_seed(TOKEN, seed).expect("the example seed is valid");
    let standin = LmsStandIn::start(state).await.unwrap();
    let lms = standin.client(Duration::from_secs(5));
    let upcoming = lms.involvements("E1001").await.unwrap();
    assert!(upcoming.iter().any(|i| i.id == "ev-rust-101"));
    assert!(
        upcoming.iter().all(|i| i.id != "ev-retro-q1"),
        "past events are not upcoming"
    );
    assert_eq!(lms.get_user("00042").await.unwrap().employee_id, "00042");

    // A stand-in's export seeds an identical one.
    let copy = LmsState::with_seed(TOKEN, standin.state().export()).unwrap();
    assert_eq!(copy.export(), standin.state().export());

    // Broken seeds are refused, naming IDs only.
    let over = LmsSeed::from_yaml_str(
        r#"
users: [{employeeId: "A1", fullName: Ada, email: a@example.com}]
events: [{id: ev, startsAt: "+1d", capacity: 0, attendees: ["A1"]}]
"#,
    )
    .unwrap();
    let err = LmsState::with_seed(TOKEN, over).unwrap_err().to_string();
    assert!(err.contains("ev") && !err.contains("Ada"), "{err}");
    let dangling = LmsSeed::from_yaml_str(r#"groups: [{id: g, members: ["ghost"]}]"#).unwrap();
    assert!(LmsState::with_seed(TOKEN, dangling).is_err());
    let typo = LmsSeed::from_yaml_str("userz: []");
    assert!(typo.is_err());

    // Seeding over HTTP.
    let seeded = reqwest::Client::new()
        .post(format!("{}/seed", standin.admin_url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"users": [{"employeeId": "N1", "fullName": "New Example", "email": "n@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 204);
    assert!(lms.get_user("N1").await.is_ok());
}
