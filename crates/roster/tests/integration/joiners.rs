//! Joiners and movers end to end: the operator on the real API server provisions
//! people at the learning-platform stand-in, keeps their profiles in sync, resolves
//! their managers and applies the Tenant's group rules. The stand-in's call log is the
//! evidence: what was sent, how often, and that nothing was applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, ObjectMeta, PostParams};
use roster_api::tenant::{FieldCondition, FieldOperator, GroupRule, ProfileField};
use roster_api::{
    ConditionStatus, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec,
    Provisioning, Tenant, TenantSpec,
};
use roster_standins::lms::{Fault, LmsSeed, LmsStandIn, LmsState};

use crate::support::{
    Operator, OperatorProcess, TestEnv, apply, condition, effects, poll, wait_status,
};

const LMS_TOKEN: &str = "lms-joiners-token";

/// The platform's groups and configured locations (groups are set up there; rules
/// only fill them).
const SEED: &str = r#"
groups:
  - { id: engineers, name: Engineers }
  - { id: sales, name: Sales }
  - { id: london, name: London office }
locations: [London, Lisbon]
"#;

pub(crate) fn rule(group: &str, field: ProfileField, values: &[&str], remove: bool) -> GroupRule {
    GroupRule {
        group: group.into(),
        conditions: vec![FieldCondition {
            field,
            operator: FieldOperator::In,
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
        remove_when_unmatched: remove,
    }
}

/// Engineers join "engineers" (add-only, the vendor's default), Sales people join
/// "sales" and leave it when they move elsewhere, Londoners join "london".
pub(crate) fn rules() -> Vec<GroupRule> {
    vec![
        rule("engineers", ProfileField::Title, &["Engineer"], false),
        rule("sales", ProfileField::Department, &["Sales"], true),
        rule("london", ProfileField::Location, &["London"], false),
    ]
}

pub(crate) async fn setup(env: &TestEnv, lms: &LmsStandIn) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("lms".into()),
            labels: Some(crate::support::credentials_labels()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".into(), LMS_TOKEN.into())])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let policy = DeprovisionPolicy::new("standard", DeprovisionPolicySpec::default());
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let tenant = Tenant::new(
        "acme",
        TenantSpec {
            locations: vec!["London".into(), "Lisbon".into()],
            group_rules: rules(),
            ..crate::support::tenant_spec(lms.base_url().as_str())
        },
    );
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
}

pub(crate) async fn standin(faults: bool) -> LmsStandIn {
    let seed = LmsSeed::from_yaml_str(SEED).unwrap();
    let lms = LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, seed).unwrap())
        .await
        .unwrap();
    if faults {
        // 30 % of calls fail: 10 % with 503 before the change, 10 % with 503 after it
        // (the response is lost), 10 % with 429 and Retry-After.
        let state = lms.state();
        state.add_fault(Fault::on("*").fail_rate(0.10, 503));
        state.add_fault(Fault::on("*").fail_rate(0.10, 503).after_apply());
        state.add_fault(Fault::on("*").throttle_rate(0.10, Duration::from_secs(1)));
    }
    lms
}

pub(crate) fn employee_id(i: usize) -> String {
    format!("J{i:03}")
}

pub(crate) fn email(id: &str) -> String {
    format!("person.{}@example.com", id.to_ascii_lowercase())
}

pub(crate) fn name(id: &str) -> String {
    format!("e-{}", id.to_ascii_lowercase())
}

/// Joiner `i`: every second one an Engineer, every third one in Sales, every fourth in
/// London, the rest in Lisbon; J007 gives a location the tenant does not have.
pub(crate) fn joiner(i: usize) -> DirectoryUserSpec {
    let id = employee_id(i);
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        full_name: format!("Joiner {id}"),
        email: email(&id),
        title: Some(
            if i.is_multiple_of(2) {
                "Engineer"
            } else {
                "Analyst"
            }
            .into(),
        ),
        department: Some(
            if i.is_multiple_of(3) {
                "Sales"
            } else {
                "Finance"
            }
            .into(),
        ),
        location: Some(
            match i {
                7 => "Atlantis",
                _ if i.is_multiple_of(4) => "London",
                _ => "Lisbon",
            }
            .into(),
        ),
        hire_date: Some("2026-11-02".parse().unwrap()),
        employee_id: id,
        ..Default::default()
    }
}

/// The groups the rules give a record (before any move).
fn groups_of(spec: &DirectoryUserSpec) -> BTreeSet<&'static str> {
    let mut groups = BTreeSet::new();
    if spec.title.as_deref() == Some("Engineer") {
        groups.insert("engineers");
    }
    if spec.department.as_deref() == Some("Sales") {
        groups.insert("sales");
    }
    if spec.location.as_deref() == Some("London") {
        groups.insert("london");
    }
    groups
}

pub(crate) async fn create(env: &TestEnv, spec: &DirectoryUserSpec) {
    let name = name(&spec.employee_id);
    apply(
        &env.api::<DirectoryUser>(),
        &name,
        &DirectoryUser::new(&name, spec.clone()),
    )
    .await;
}

/// The stand-in's groups of `employee_id`.
pub(crate) fn platform_groups(lms: &LmsStandIn, employee_id: &str) -> BTreeSet<String> {
    ["engineers", "sales", "london"]
        .into_iter()
        .filter(|g| {
            lms.state()
                .group(g)
                .is_some_and(|g| g.members.iter().any(|m| m == employee_id))
        })
        .map(str::to_string)
        .collect()
}

/// Settled: provisioned, nothing pending or failing, Ready.
pub(crate) fn settled(status: &roster_api::DirectoryUserStatus) -> bool {
    status.account.provisioned.is_some()
        && status.account.failures == 0
        && status
            .groups
            .iter()
            .all(|g| status.account.groups.contains(g))
        && condition(status, "Ready").is_some_and(|c| c.status == ConditionStatus::True)
}

pub(crate) async fn wait_settled(env: &TestEnv, id: &str) -> DirectoryUser {
    wait_status(env, &name(id), "provisioned and settled", settled).await
}

/// Calls per operation since the log was last cleared, and how many took effect.
fn counts(lms: &LmsStandIn) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut sent = BTreeMap::new();
    let mut applied = BTreeMap::new();
    for call in lms.state().calls() {
        *sent.entry(call.operation.clone()).or_default() += 1;
        if call.applied {
            *applied.entry(call.operation).or_default() += 1;
        }
    }
    (sent, applied)
}

fn applied_map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| (op.to_string(), *n))
        .collect()
}

/// The three movers: J001 becomes an Engineer in Sales (joins both), J002 a Manager
/// (stays in "engineers": add-only), J003 moves from Sales to Support (leaves "sales",
/// whose rule removes) and becomes an Engineer.
fn moved(i: usize) -> DirectoryUserSpec {
    let mut spec = joiner(i);
    match i {
        1 => {
            spec.title = Some("Engineer".into());
            spec.department = Some("Sales".into());
        }
        2 => {
            spec.title = Some("Manager".into());
            spec.department = Some("Operations".into());
        }
        3 => {
            spec.title = Some("Engineer".into());
            spec.department = Some("Support".into());
        }
        _ => unreachable!(),
    }
    spec
}

fn moved_groups(i: usize) -> BTreeSet<String> {
    let set: &[&str] = match i {
        1 => &["engineers", "sales"],
        2 => &["engineers"],
        3 => &["engineers"],
        _ => unreachable!(),
    };
    set.iter().map(|g| g.to_string()).collect()
}

/// What the 20 joiners must produce at the platform: one account each with the
/// profile and groups of its record.
fn assert_joiners_at_the_platform(lms: &LmsStandIn) {
    for i in 1..=20 {
        let spec = joiner(i);
        let user = lms
            .state()
            .user(&spec.employee_id)
            .unwrap_or_else(|| panic!("{} has no account", spec.employee_id));
        assert_eq!(user.title, spec.title);
        assert_eq!(user.department, spec.department);
        assert_eq!(user.email.as_deref(), Some(spec.email.as_str()));
        assert_eq!(user.hire_date, spec.hire_date);
        let expected_location = if i == 7 { None } else { spec.location.clone() };
        assert_eq!(user.location, expected_location, "{}", spec.employee_id);
        let expected: BTreeSet<String> = groups_of(&spec).iter().map(|g| g.to_string()).collect();
        assert_eq!(
            platform_groups(lms, &spec.employee_id),
            expected,
            "{}",
            spec.employee_id
        );
    }
}

fn assert_movers_at_the_platform(lms: &LmsStandIn) {
    for i in 1..=3 {
        let spec = moved(i);
        let user = lms.state().user(&spec.employee_id).unwrap();
        assert_eq!(user.title, spec.title);
        assert_eq!(user.department, spec.department);
        assert_eq!(user.email.as_deref(), Some(spec.email.as_str()), "kept");
        assert_eq!(platform_groups(lms, &spec.employee_id), moved_groups(i));
    }
}

fn group_additions() -> usize {
    (1..=20).map(|i| groups_of(&joiner(i)).len()).sum()
}

#[tokio::test]
async fn twenty_joiners_three_movers_then_no_call_and_no_write() {
    let env = TestEnv::new("joiners").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    for i in 1..=20 {
        create(&env, &joiner(i)).await;
    }
    for i in 1..=20 {
        let user = wait_settled(&env, &employee_id(i)).await;
        let status = user.status.unwrap();
        assert_eq!(status.account.provisioned, Some(Provisioning::Created));
        let json = serde_json::to_string(&status).unwrap();
        assert!(!json.contains(&email(&employee_id(i))), "no PII in status");
        assert!(!json.contains("Joiner "), "no PII in status");
    }
    assert_joiners_at_the_platform(&lms);
    let (sent, applied) = counts(&lms);
    println!("20 joiners: calls {sent:?}, applied {applied:?}");
    assert_eq!(
        applied,
        applied_map(&[("createUser", 20), ("addGroupMember", group_additions())])
    );

    // The unknown location: blank downstream, and a condition that says why.
    let status = env
        .api::<DirectoryUser>()
        .get(&name("J007"))
        .await
        .unwrap()
        .status
        .unwrap();
    let located = condition(&status, "LocationMatched").expect("LocationMatched");
    assert_eq!(located.status, ConditionStatus::False);
    assert_eq!(located.reason, "UnknownLocation");
    assert!(
        located.message.contains("spec.location"),
        "{}",
        located.message
    );
    assert!(
        !located.message.contains("Atlantis"),
        "no record values in conditions"
    );

    // Three movers: exactly three profile updates and the group changes the rules imply.
    lms.state().clear_calls();
    for i in 1..=3 {
        create(&env, &moved(i)).await;
    }
    for i in 1..=3 {
        let spec = moved(i);
        poll("the mover synced", Duration::from_millis(100), || {
            let done = lms.state().user(&spec.employee_id).unwrap().title == spec.title
                && platform_groups(&lms, &spec.employee_id) == moved_groups(i);
            async move { done.then_some(()) }
        })
        .await;
        wait_settled(&env, &spec.employee_id).await;
    }
    assert_movers_at_the_platform(&lms);
    let (sent, applied) = counts(&lms);
    println!("3 movers: calls {sent:?}, applied {applied:?}");
    assert_eq!(
        sent,
        applied_map(&[
            ("updateUser", 3),
            ("addGroupMember", 3),
            ("removeGroupMember", 1)
        ]),
        "exactly the updates and group changes the edits imply"
    );

    // At rest: over the next 60 s, not one call and not one status write.
    lms.state().clear_calls();
    let versions = || async {
        env.api::<DirectoryUser>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|u| {
                (
                    u.metadata.name.unwrap(),
                    u.metadata.resource_version.unwrap(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let before = versions().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = versions().await;
    let calls = lms.state().calls().len();
    let writes = before
        .iter()
        .filter(|(n, v)| after.get(*n) != Some(v))
        .count();
    println!("at rest for 60 s: {calls} calls, {writes} status writes");
    if (calls, writes) != (0, 0) {
        let changed: Vec<&String> = before
            .iter()
            .filter(|(n, v)| after.get(*n) != Some(v))
            .map(|(n, _)| n)
            .collect();
        let calls: Vec<String> = lms
            .state()
            .calls()
            .iter()
            .map(|c| format!("{} {} {}", c.operation, c.path, c.status))
            .collect();
        for name in &changed {
            let user = env.api::<DirectoryUser>().get(name).await.unwrap();
            println!("{name} changed: {:#?}", user.status);
        }
        panic!("at rest: calls {calls:?}, changed {changed:?}");
    }
    assert!(lms.state().duplicates().is_empty());
}

#[tokio::test]
async fn a_manager_created_after_their_report_is_resolved_and_synced() {
    let env = TestEnv::new("joiners-manager").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    let report = DirectoryUserSpec {
        manager_email: Some(email("M001").to_uppercase()),
        ..joiner(1)
    };
    create(&env, &report).await;
    let user = wait_settled(&env, "J001").await;
    let manager = condition(user.status.as_ref().unwrap(), "ManagerResolved").unwrap();
    assert_eq!(
        (manager.status, manager.reason.as_str()),
        (ConditionStatus::False, "ManagerNotFound")
    );
    assert_eq!(lms.state().user("J001").unwrap().manager_employee_id, None);

    // The feed delivers the manager later: the report is resolved and synced then.
    let mut boss = joiner(2);
    boss.employee_id = "M001".into();
    boss.email = email("M001");
    create(&env, &boss).await;
    wait_status(&env, &name("J001"), "manager resolved", |s| {
        condition(s, "ManagerResolved").is_some_and(|c| c.status == ConditionStatus::True)
            && s.account.profile.manager.is_some()
    })
    .await;
    assert_eq!(
        lms.state()
            .user("J001")
            .unwrap()
            .manager_employee_id
            .as_deref(),
        Some("M001")
    );
    assert_eq!(lms.state().applied_count("updateUser"), 1);
    assert!(lms.state().duplicates().is_empty());
}

#[tokio::test]
async fn an_existing_account_is_adopted_and_only_what_differs_is_sent() {
    let env = TestEnv::new("joiners-adopt").await;
    let seed = LmsSeed::from_yaml_str(&format!(
        "{SEED}\nusers:\n  - {{ employeeId: J001, fullName: Joiner J001, email: {}, title: Intern, department: Finance, location: Lisbon, hireDate: 2026-11-02 }}\n",
        email("J001")
    ))
    .unwrap();
    let lms = LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, seed).unwrap())
        .await
        .unwrap();
    setup(&env, &lms).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    create(&env, &joiner(1)).await;
    let user = wait_settled(&env, "J001").await;
    assert_eq!(
        user.status.unwrap().account.provisioned,
        Some(Provisioning::Adopted)
    );
    let (sent, _) = counts(&lms);
    // One create refused as a duplicate, one read, one update of the title alone.
    assert_eq!(
        sent,
        applied_map(&[("createUser", 1), ("getUser", 1), ("updateUser", 1)])
    );
    assert_eq!(lms.state().applied_count("createUser"), 0);
    assert_eq!(
        lms.state().user("J001").unwrap().title.as_deref(),
        Some("Analyst")
    );
}

/// The same 20 joiners and 3 movers through 30 % failing calls and repeated
/// `kill -9` of the operator process: everything converges, nothing twice.
#[tokio::test]
async fn joiners_and_movers_survive_failures_and_kill_9() {
    let env = TestEnv::new("joiners-kill9").await;
    let lms = standin(true).await;
    lms.state()
        .add_fault(Fault::on("*").latency(Duration::from_millis(20)));
    setup(&env, &lms).await;
    for i in 1..=20 {
        create(&env, &joiner(i)).await;
    }
    let plane = crate::support::control_plane().await;
    let log = std::env::temp_dir().join(format!("roster-joiners-{}.log", env.namespace));
    let mut operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);
    let mut kills = 0;
    let mut crash_a_few_times = async |operator: &mut OperatorProcess| {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200 + rand::random::<u64>() % 600)).await;
            let old = std::mem::replace(
                operator,
                OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log),
            );
            old.kill_9();
            kills += 1;
        }
    };
    crash_a_few_times(&mut operator).await;
    for i in 1..=20 {
        wait_settled(&env, &employee_id(i)).await;
    }
    assert_joiners_at_the_platform(&lms);
    for i in 1..=3 {
        create(&env, &moved(i)).await;
    }
    crash_a_few_times(&mut operator).await;
    for i in 1..=3 {
        wait_status(
            &env,
            &name(&employee_id(i)),
            "moved and settled",
            move |s| {
                settled(s) && s.groups.iter().cloned().collect::<BTreeSet<_>>() == moved_groups(i)
            },
        )
        .await;
    }
    drop(operator);
    assert_movers_at_the_platform(&lms);
    let (sent, applied) = counts(&lms);
    let failed = lms
        .state()
        .calls()
        .iter()
        .filter(|c| c.status >= 400)
        .count();
    println!(
        "20 joiners + 3 movers, 30 % failures, {kills} x kill -9: calls {sent:?} ({failed} failed), applied {applied:?}, duplicates {:?}",
        lms.state().duplicates()
    );
    assert!(lms.state().duplicates().is_empty());
    assert_eq!(lms.state().applied_count("createUser"), 20);
    assert_eq!(lms.state().applied_count("updateUser"), 3);
    assert_eq!(
        lms.state().applied_count("addGroupMember"),
        group_additions() + 3
    );
    assert_eq!(lms.state().applied_count("removeGroupMember"), 1);
    let logs = std::fs::read_to_string(&log).expect("read operator log");
    for i in 1..=20 {
        let id = employee_id(i);
        assert!(!logs.contains(&email(&id)), "an email in the operator log");
        assert!(
            !logs.contains(&format!("Joiner {id}")),
            "a name in the operator log"
        );
    }
}

/// Editing the Tenant's rules re-evaluates its users, and only the memberships that
/// change are sent: no profile call, no call for an unaffected person.
#[tokio::test]
async fn a_rule_edit_converges_with_the_fewest_calls() {
    let env = TestEnv::new("joiners-rules").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    for i in 1..=6 {
        create(&env, &joiner(i)).await;
    }
    for i in 1..=6 {
        wait_settled(&env, &employee_id(i)).await;
    }
    lms.state().clear_calls();
    // "london" now takes Lisbon too (add-only); "sales" now means Marketing, and its
    // rule removes people it no longer matches.
    let mut tenant = env.api::<Tenant>().get("acme").await.unwrap();
    tenant.metadata.managed_fields = None;
    tenant.metadata.resource_version = None;
    tenant.status = None;
    tenant.spec.group_rules = vec![
        rule("engineers", ProfileField::Title, &["Engineer"], false),
        rule("sales", ProfileField::Department, &["Marketing"], true),
        rule(
            "london",
            ProfileField::Location,
            &["London", "Lisbon"],
            false,
        ),
    ];
    apply(&env.api::<Tenant>(), "acme", &tenant).await;
    for i in 1..=6 {
        let expected: BTreeSet<String> = {
            let spec = joiner(i);
            let mut g = BTreeSet::from(["london".to_string()]);
            if spec.title.as_deref() == Some("Engineer") {
                g.insert("engineers".into());
            }
            g
        };
        poll("the rule edit applied", Duration::from_millis(100), || {
            let done = platform_groups(&lms, &employee_id(i)) == expected;
            async move { done.then_some(()) }
        })
        .await;
        wait_settled(&env, &employee_id(i)).await;
    }
    let (sent, _) = counts(&lms);
    println!("rule edit over 6 people: calls {sent:?}");
    // Five Lisbon people join "london"; the two in Sales leave "sales".
    assert_eq!(
        sent,
        applied_map(&[("addGroupMember", 5), ("removeGroupMember", 2)])
    );
}

/// A rehire keeps the employee ID: the anonymized account gets its profile back and
/// then its access; no second account is created.
#[tokio::test]
async fn a_rehire_re_enables_the_same_account() {
    let env = TestEnv::new("joiners-rehire").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    let quick = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: "0s".into(),
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &quick).await;
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    let today = chrono::Utc::now().date_naive();
    let mut record = joiner(2);
    create(&env, &record).await;
    wait_settled(&env, "J002").await;
    record.termination_date = Some(today - chrono::Days::new(1));
    create(&env, &record).await;
    crate::support::wait_phase(&env, &name("J002"), roster_api::Phase::Deprovisioned).await;
    let gone = lms.state().user("J002").unwrap();
    assert!(gone.anonymized && gone.full_name.is_none());

    record.hire_date = Some(today);
    create(&env, &record).await;
    wait_status(&env, &name("J002"), "rehired and settled", |s| {
        s.phase == roster_api::Phase::Active
            && s.steps
                .iter()
                .all(|st| st.state == roster_api::StepState::Succeeded)
            && settled(s)
    })
    .await;
    let back = lms.state().user("J002").unwrap();
    assert!(!back.anonymized);
    assert_eq!(back.full_name.as_deref(), Some("Joiner J002"));
    assert_eq!(back.access, roster_connectors::lms::Access::Granted);
    assert_eq!(
        platform_groups(&lms, "J002"),
        BTreeSet::from(["engineers".to_string()])
    );
    assert_eq!(
        lms.state().applied_count("createUser"),
        1,
        "never a second account"
    );
    assert_eq!(lms.state().applied_count("restoreAccess"), 1);
    assert!(lms.state().duplicates().is_empty());
}
