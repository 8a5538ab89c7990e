//! HR feeds end to end: a real SFTP server (OpenSSH's sshd on loopback, from
//! `roster_testkit::sshd`), the HR report stand-in, and the real API server. The sync
//! path is the operator's own (`roster::feeds::sync::run`, which the scheduler calls);
//! one test lets the running operator's scheduler pick the source up by itself.
//!
//! The evidence is the API server's: which DirectoryUsers changed resourceVersion
//! (exactly the planned writes), their specs, the field manager, the Tenant's
//! `status.sourceSyncs` and its Events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::events::Reporter;
use roster::clock::SystemClock;
use roster::events::Recorder;
use roster::feeds::Source;
use roster::feeds::sync::{self, Feeds};
use roster_api::tenant::{
    AttributeMapping, CsvSource, HrApiSource, LocalObjectRef, ProfileField, SourceSync, SyncResult,
    Transform,
};
use roster_api::{
    DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, MassDeprovisionGuard, Tenant,
    TenantSpec,
};
use roster_connectors::endpoint::EndpointPolicy;
use roster_standins::hr::{HrStandIn, HrState};
use roster_testkit::sshd::Sshd;
use serde_json::json;

use crate::support::{Operator, TestEnv, apply, credentials_labels, poll};

const HEADER: &str = "Employee ID,Full Name,Email Address,Hire Date,Termination Date,Department,Title,Location,Manager\u{2019}s Email,Active\r\n";

/// Everyone at first: 00006 has left (inactive), 00001's manager is 00004 (who comes
/// later in the file).
const FIRST: &str = "\
00001,\"One, Ada\",ada@example.com,2020-01-06,,Engineering,Engineer,Berlin,00004,true\r\n\
00002,Bo Two,bo@example.com,2021-02-01,,Sales,Rep,Lisbon,,true\r\n\
00003,Cy Three,cy@example.com,,,,,,,true\r\n\
00004,Di Four,di@example.com,,,Engineering,Manager,,,true\r\n\
00005,Ed Five,ed@example.com,,,,,,,true\r\n\
00006,Flo Six,flo@example.com,2019-01-01,2024-12-31,,,,,false\r\n\
00007,Gus Seven,gus@example.com,,,,,,,true\r\n\
00010,Ivy Ten,ivy@example.com,,,,,,,true\r\n\
00011,Jo Eleven,jo@example.com,,,,,,,true\r\n";

/// A change (00001), bad rows (a bad email on line 3, a duplicate employee ID on
/// lines 4 and 5, a bad date on line 6, an unknown Active value on line 8), a rehire
/// (00006), a joiner (00008), people missing (00002, 00010) and one unchanged (00011).
const SECOND: &str = "\
00001,\"One, Ada\",ada@example.com,2020-01-06,,Engineering,Staff Engineer,Berlin,00004,true\r\n\
00003,Cy Three,cy-at-example.com,,,,,,,true\r\n\
00004,Di Four,di@example.com,,,Engineering,Manager,,,true\r\n\
00004,Di Dup,di.dup@example.com,,,,,,,true\r\n\
00005,Ed Five,ed@example.com,2025-13-01,,,,,,true\r\n\
00006,Flo Six,flo@example.com,2025-06-01,2024-12-31,,,,,true\r\n\
00007,Gus Seven,gus@example.com,,,,,,,maybe\r\n\
00008,Hal Eight,hal@example.com,2026-01-05,,,,,,true\r\n\
00011,Jo Eleven,jo@example.com,,,,,,,true\r\n";

/// Values of bad rows, which must appear in no report.
const BAD_VALUES: [&str; 4] = [
    "cy-at-example.com",
    "maybe",
    "2025-13-01",
    "di.dup@example.com",
];

async fn start_sshd() -> Sshd {
    tokio::task::spawn_blocking(Sshd::start)
        .await
        .expect("sshd start thread")
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn secret(env: &TestEnv, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(credentials_labels()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}

fn csv_source(sshd: &Sshd, path: &str, host_key: &str) -> CsvSource {
    CsvSource {
        host: "127.0.0.1".into(),
        port: i32::from(sshd.port()),
        path: path.into(),
        host_key: Some(host_key.into()),
        credentials_secret_ref: LocalObjectRef {
            name: "sftp".into(),
        },
        daily_at: None,
        interval: "24h".into(),
        date_format: "%Y-%m-%d".into(),
        columns: vec![],
        complete_snapshot: true,
    }
}

/// Policy, SFTP Secret and a Tenant whose CSV source is `csv`.
async fn setup_csv(env: &TestEnv, sshd: &Sshd, csv: CsvSource) -> Tenant {
    setup_csv_guarded(env, sshd, csv, None).await
}

async fn setup_csv_guarded(
    env: &TestEnv,
    sshd: &Sshd,
    csv: CsvSource,
    guard: Option<MassDeprovisionGuard>,
) -> Tenant {
    secret(
        env,
        "sftp",
        &[("username", sshd.user()), ("privateKey", sshd.client_key())],
    )
    .await;
    let mut spec = TenantSpec {
        ..crate::support::tenant_spec("http://127.0.0.1:9/api/v1")
    };
    spec.sources.csv = Some(csv);
    match guard {
        Some(guard) => tenant_with_guard(env, spec, guard).await,
        None => tenant(env, spec).await,
    }
}

/// The Tenant "acme" with `spec`, and its policy "standard", whose mass-deprovisioning
/// guard lets half of these small test tenants leave at once (the guard test sets its
/// own).
async fn tenant(env: &TestEnv, spec: TenantSpec) -> Tenant {
    tenant_with_guard(
        env,
        spec,
        MassDeprovisionGuard {
            enabled: true,
            max_users: 50,
            max_percent: 50,
        },
    )
    .await
}

async fn tenant_with_guard(env: &TestEnv, spec: TenantSpec, guard: MassDeprovisionGuard) -> Tenant {
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            mass_deprovision_guard: guard,
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    apply(&env.api::<Tenant>(), "acme", &Tenant::new("acme", spec)).await;
    env.api::<Tenant>().get("acme").await.expect("get tenant")
}

fn feeds(env: &TestEnv) -> Feeds {
    Feeds {
        client: env.client.clone(),
        recorder: Recorder::new(
            env.client.clone(),
            Reporter {
                controller: "roster".into(),
                instance: None,
            },
            Arc::new(SystemClock),
        ),
        clock: Arc::new(SystemClock),
        endpoints: EndpointPolicy::default(),
        timeout: Duration::from_secs(10),
    }
}

/// Every DirectoryUser's resourceVersion, by employee ID.
async fn versions(env: &TestEnv) -> BTreeMap<String, String> {
    env.api::<DirectoryUser>()
        .list(&ListParams::default())
        .await
        .expect("list users")
        .items
        .into_iter()
        .map(|u| {
            (
                u.spec.employee_id.clone(),
                u.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect()
}

async fn user(env: &TestEnv, employee_id: &str) -> DirectoryUser {
    env.api::<DirectoryUser>()
        .get(&roster_api::directory_user::object_name(employee_id))
        .await
        .unwrap_or_else(|e| panic!("get user {employee_id}: {e}"))
}

async fn source_sync(env: &TestEnv, source: roster_api::RecordSource) -> Option<SourceSync> {
    let tenant = env.api::<Tenant>().get("acme").await.expect("get tenant");
    tenant
        .status?
        .source_syncs
        .into_iter()
        .find(|s| s.source == source)
}

/// The notes of the tenant's Events with `reason`.
async fn event_notes(env: &TestEnv, reason: &str) -> Vec<String> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn a_second_csv_file_writes_exactly_its_changes_and_reports_every_bad_row() {
    let env = TestEnv::new("feeds-csv").await;
    let sshd = start_sshd().await;
    let path = sshd
        .put(
            "exports/people.csv",
            format!("\u{feff}{HEADER}{FIRST}").as_bytes(),
        )
        .unwrap();
    let tenant = setup_csv(&env, &sshd, csv_source(&sshd, &path, sshd.host_key())).await;
    let feeds = feeds(&env);

    // The first file creates everyone.
    let first = sync::run(&feeds, &tenant, Source::Csv).await;
    assert_eq!(
        first.result,
        SyncResult::Succeeded,
        "{first:?}\n{}",
        sshd.log()
    );
    assert_eq!(
        (
            first.rows_read,
            first.created,
            first.updated,
            first.removed,
            first.rejected
        ),
        (Some(9), 9, 0, 0, 0)
    );
    let ada = user(&env, "00001").await;
    assert_eq!(ada.spec.full_name, "One, Ada");
    assert_eq!(ada.spec.employee_id, "00001", "leading zeros survive");
    assert_eq!(ada.spec.source, roster_api::RecordSource::Csv);
    assert_eq!(
        ada.spec.manager_email.as_deref(),
        Some("di@example.com"),
        "the manager, later in the file, resolved in the second pass"
    );
    let managers: BTreeSet<String> = ada
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains("roster-csv"), "{managers:?}");
    assert!(!user(&env, "00006").await.spec.active);
    assert_eq!(
        source_sync(&env, roster_api::RecordSource::Csv)
            .await
            .as_ref(),
        Some(&first)
    );

    // The same file again writes nothing.
    let before = versions(&env).await;
    let again = sync::run(&feeds, &tenant, Source::Csv).await;
    assert_eq!(
        (again.created, again.updated, again.removed, again.unchanged),
        (0, 0, 0, Some(9))
    );
    assert_eq!(
        versions(&env).await,
        before,
        "an unchanged file makes no write"
    );

    // The second file.
    sshd.put("exports/people.csv", format!("{HEADER}{SECOND}").as_bytes())
        .unwrap();
    let second = sync::run(&feeds, &tenant, Source::Csv).await;
    assert_eq!(second.result, SyncResult::PartiallySucceeded, "{second:?}");
    assert_eq!(
        (
            second.rows_read,
            second.created,
            second.updated,
            second.removed,
            second.rejected,
            second.unchanged
        ),
        (Some(9), 1, 2, 2, 5, Some(1))
    );
    let after = versions(&env).await;
    let written: BTreeSet<&str> = after
        .iter()
        .filter(|(id, rv)| before.get(*id) != Some(rv))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        written,
        BTreeSet::from(["00001", "00002", "00006", "00008", "00010"]),
        "exactly the changed, rehired, new and missing people were written"
    );
    assert_eq!(
        user(&env, "00001").await.spec.title.as_deref(),
        Some("Staff Engineer")
    );
    for missing in ["00002", "00010"] {
        let u = user(&env, missing).await;
        assert!(!u.spec.active, "{missing} removed from the feed");
        assert!(!u.spec.full_name.is_empty(), "the rest of the record stays");
    }
    let flo = user(&env, "00006").await;
    assert!(flo.spec.active, "the rehire is active again");
    assert_eq!(
        flo.spec.hire_date.map(|d| d.to_string()).as_deref(),
        Some("2025-06-01")
    );
    for protected in ["00003", "00004", "00005", "00007"] {
        assert!(
            user(&env, protected).await.spec.active,
            "{protected}: a bad row removes nobody"
        );
    }

    // The report names every bad row: status and Events, row and column, no value.
    let reported: Vec<(i64, String)> = second
        .rejected_rows
        .iter()
        .map(|r| (r.row, r.column.clone()))
        .collect();
    assert_eq!(
        reported,
        [
            (3, "Email Address".to_string()),
            (4, "Employee ID".to_string()),
            (5, "Employee ID".to_string()),
            (6, "Hire Date".to_string()),
            (8, "Active".to_string()),
        ]
    );
    let notes = event_notes(&env, "CsvRowsRejected").await;
    let all = notes.join("\n");
    for needle in [
        "row 3, column \"Email Address\": not an email address",
        "row 4, column \"Employee ID\": duplicate employee ID (also on row 5)",
        "row 5, column \"Employee ID\": duplicate employee ID (also on row 4)",
        "row 6, column \"Hire Date\": not a date in the format %Y-%m-%d",
        "row 8, column \"Active\": unknown value",
    ] {
        assert!(all.contains(needle), "{needle} not in {all}");
    }
    let status =
        serde_json::to_string(&source_sync(&env, roster_api::RecordSource::Csv).await).unwrap();
    for value in BAD_VALUES {
        assert!(
            !all.contains(value) && !status.contains(value),
            "{value} leaked"
        );
    }
    let summary = event_notes(&env, "CsvSynced").await;
    assert!(
        summary.iter().any(|n| n == "CSV sync: 9 rows read, 1 created, 2 updated, 2 removed from the feed, 5 rejected, 1 unchanged"),
        "{summary:?}"
    );
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_and_nothing_is_fetched() {
    let env = TestEnv::new("feeds-hostkey").await;
    let sshd = start_sshd().await;
    let path = sshd
        .put("people.csv", format!("{HEADER}{FIRST}").as_bytes())
        .unwrap();
    let (_, impostor) = sshd.other_key().unwrap();
    let tenant = setup_csv(&env, &sshd, csv_source(&sshd, &path, &impostor)).await;
    let sync = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_eq!(sync.result, SyncResult::Failed);
    assert!(
        sync.message
            .as_deref()
            .unwrap_or_default()
            .contains("host key other than the one pinned"),
        "{sync:?}"
    );
    assert!(versions(&env).await.is_empty(), "nothing was applied");
    let failures = event_notes(&env, "CsvSyncFailed").await;
    assert!(
        failures.iter().any(|n| n.contains("(HostKeyMismatch)")),
        "{failures:?}"
    );
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no login happened:\n{}",
        sshd.log()
    );
}

/// An SFTP host the operator's endpoint policy does not allow is never contacted: the
/// sync fails with `EndpointRefused` before the Secret is read, and the Tenant says which
/// field the policy refuses (`EndpointsAllowed=False`).
#[tokio::test]
async fn an_sftp_host_the_endpoint_policy_refuses_is_reported_and_nothing_is_fetched() {
    use crate::support::wait_object;
    let env = TestEnv::new("feeds-sftp-policy").await;
    let sshd = start_sshd().await;
    let path = sshd
        .put("people.csv", format!("{HEADER}{FIRST}").as_bytes())
        .unwrap();
    let tenant = setup_csv(&env, &sshd, csv_source(&sshd, &path, sshd.host_key())).await;
    let policy = EndpointPolicy {
        allowed_hosts: vec!["sftp.hr.example.com".into()],
        allow_loopback_http: false,
        ..Default::default()
    };
    let refusing = Feeds {
        endpoints: policy.clone(),
        ..feeds(&env)
    };
    let sync = sync::run(&refusing, &tenant, Source::Csv).await;
    assert_eq!(sync.result, SyncResult::Failed, "{sync:?}");
    assert!(
        sync.message
            .as_deref()
            .unwrap_or_default()
            .contains("sources.csv.host is refused by the operator's endpoint policy"),
        "{sync:?}"
    );
    assert!(versions(&env).await.is_empty(), "nothing was applied");
    let failures = event_notes(&env, "CsvSyncFailed").await;
    assert!(
        failures.iter().any(|n| n.contains("(EndpointRefused)")),
        "{failures:?}"
    );
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no login happened:\n{}",
        sshd.log()
    );
    // The Tenant controller reports the same policy on the Tenant.
    let options = roster::controller::Options {
        namespaces: vec![env.namespace.clone()],
        endpoints: policy,
        ..Default::default()
    };
    let _operator = Operator::start_with(
        &env.client,
        options,
        Arc::new(roster::effects::memory::MemoryEffects::new()),
    );
    let tenant = wait_object(env.api::<Tenant>(), "acme", "EndpointsAllowed=False", |t| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "EndpointsAllowed" && c.reason == "EndpointRefused")
        })
    })
    .await
    .unwrap();
    let condition = tenant
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "EndpointsAllowed")
        .unwrap();
    assert!(
        condition
            .message
            .contains("spec.sources.csv.host host 127.0.0.1 is not among the operator's allowed endpoint hosts"),
        "{condition:?}"
    );
}

/// Password login: the Secret has `username` and `password` (no `privateKey`), and
/// OpenSSH's sshd checks the password against a real system user
/// (`roster_testkit::sshd::PASSWORD_USER`, created by the harness; needs root, as CI runs).
#[tokio::test]
async fn a_password_login_fetches_the_file() {
    let env = TestEnv::new("feeds-password").await;
    let sshd = tokio::task::spawn_blocking(Sshd::start_with_password_user)
        .await
        .expect("sshd start thread")
        .unwrap_or_else(|e| panic!("{e}"));
    let path = sshd
        .put("people.csv", format!("{HEADER}{FIRST}").as_bytes())
        .unwrap();
    let (user, password) = sshd.password_login().expect("a password user");
    secret(&env, "sftp", &[("username", user), ("password", password)]).await;
    let mut spec = crate::support::tenant_spec("http://127.0.0.1:9/api/v1");
    spec.sources.csv = Some(csv_source(&sshd, &path, sshd.host_key()));
    let tenant = tenant(&env, spec).await;
    let sync = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_ne!(sync.result, SyncResult::Failed, "{sync:?}");
    assert!(sync.created > 0, "{sync:?}");
    assert!(
        sshd.log()
            .contains(&format!("Accepted password for {user}")),
        "sshd accepted the password:\n{}",
        sshd.log()
    );

    // A wrong password is refused, and nothing changes.
    let before = versions(&env).await;
    env.api::<Secret>()
        .patch(
            "sftp",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"stringData": {"password": "wrong"}})),
        )
        .await
        .unwrap();
    let refused = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_eq!(refused.result, SyncResult::Failed, "{refused:?}");
    assert!(
        refused
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("refused the credentials"),
        "{refused:?}"
    );
    assert_eq!(versions(&env).await, before);
}

#[tokio::test]
async fn the_newest_file_matching_a_glob_wins() {
    let env = TestEnv::new("feeds-glob").await;
    let sshd = start_sshd().await;
    let old = format!("{HEADER}00001,Old One,old@example.com,,,,,,,true\r\n");
    let new = format!("{HEADER}00001,New One,new@example.com,,,,,,,true\r\n");
    sshd.put("drop/people-2026-03-01.csv", old.as_bytes())
        .unwrap();
    let newest = sshd
        .put("drop/people-2026-03-02.csv", new.as_bytes())
        .unwrap();
    // Make the older file older than the newer one, whatever the clock's resolution.
    let dir = std::path::Path::new(&newest)
        .parent()
        .unwrap()
        .to_path_buf();
    let older = std::fs::File::options()
        .write(true)
        .open(dir.join("people-2026-03-01.csv"))
        .unwrap();
    older
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let glob = format!("{}/people-*.csv", dir.display());
    let tenant = setup_csv(&env, &sshd, csv_source(&sshd, &glob, sshd.host_key())).await;
    let sync = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_eq!(sync.result, SyncResult::Succeeded, "{sync:?}");
    assert_eq!(user(&env, "00001").await.spec.full_name, "New One");
}

#[tokio::test]
async fn the_scheduler_pulls_a_tenants_file_and_records_the_sync() {
    let env = TestEnv::new("feeds-scheduler").await;
    let sshd = start_sshd().await;
    let path = sshd
        .put("people.csv", format!("{HEADER}{FIRST}").as_bytes())
        .unwrap();
    setup_csv(&env, &sshd, csv_source(&sshd, &path, sshd.host_key())).await;
    let operator = Operator::start(
        &env.client,
        &env.namespace,
        Arc::new(roster::effects::memory::MemoryEffects::new()),
    );
    let sync = poll(
        "the scheduled CSV sync",
        Duration::from_millis(200),
        || async { source_sync(&env, roster_api::RecordSource::Csv).await },
    )
    .await;
    assert_eq!(
        (sync.result, sync.created),
        (SyncResult::Succeeded, 9),
        "{sync:?}"
    );
    assert_eq!(versions(&env).await.len(), 9);
    operator.kill().await;
    // A restart takes the due time from status: the next sync is a day away, so the
    // new operator does not pull again (the Tenant controller's status writes keep
    // the entry, which only the CSV source's field manager owns).
    let restarted = Operator::start(
        &env.client,
        &env.namespace,
        Arc::new(roster::effects::memory::MemoryEffects::new()),
    );
    let tenant = poll(
        "the Tenant controller's status after the restart",
        Duration::from_millis(200),
        || async {
            let t = env.api::<Tenant>().get("acme").await.ok()?;
            let status = t.status.clone()?;
            (status.user_counts.as_ref().map(|c| c.active) == Some(8)).then_some(t)
        },
    )
    .await;
    let entry = tenant.status.unwrap().source_syncs;
    assert_eq!(entry.len(), 1);
    assert_eq!(
        entry[0].completion_time, sync.completion_time,
        "not pulled again"
    );
    drop(restarted);
}

#[tokio::test]
async fn an_hr_report_is_mapped_and_applied_under_its_own_field_manager() {
    let env = TestEnv::new("feeds-hrapi").await;
    let state = HrState::new("hr-token", "roster-client", "roster-secret");
    state.set_entries(vec![
        json!({"Employee_ID": "00042", "First_Name": "Alex", "Last_Name": "Example",
               "Work_Email": "Alex.Example@Example.com", "Hire_Date": "2025-03-17-08:00",
               "Manager_ID": "00007"}),
        json!({"Employee_ID": "00007", "First_Name": "Morgan", "Last_Name": "Manager",
               "Work_Email": "morgan@example.com", "Cost_Center": ""}),
        json!({"Employee_ID": "00099", "First_Name": "Bad", "Work_Email": "nope"}),
    ]);
    let hr = HrStandIn::start(state.clone()).await.unwrap();
    secret(
        &env,
        "hr",
        &[
            ("clientId", "roster-client"),
            ("clientSecret", "roster-secret"),
        ],
    )
    .await;
    let rule = |from: &str, to: ProfileField, transform: Transform| AttributeMapping {
        from: from.into(),
        concat: vec![],
        separator: None,
        to,
        transform,
        default: None,
    };
    let mut spec = crate::support::tenant_spec("http://127.0.0.1:9/api/v1");
    spec.sources.hr_api = Some(HrApiSource {
        url: hr.report_url(),
        credentials_secret_ref: LocalObjectRef { name: "hr".into() },
        token_url: Some(hr.token_url()),
        daily_at: None,
        interval: "24h".into(),
        complete_snapshot: true,
        mappings: vec![
            rule("Employee_ID", ProfileField::EmployeeId, Transform::Trim),
            AttributeMapping {
                concat: vec!["Last_Name".into()],
                ..rule("First_Name", ProfileField::FullName, Transform::Trim)
            },
            rule("Work_Email", ProfileField::Email, Transform::Lowercase),
            rule("Hire_Date", ProfileField::HireDate, Transform::DateOnly),
            AttributeMapping {
                default: Some("Unassigned".into()),
                ..rule("Cost_Center", ProfileField::Department, Transform::None)
            },
            rule("Manager_ID", ProfileField::ManagerEmail, Transform::None),
        ],
    });
    let tenant = tenant(&env, spec).await;
    let sync = sync::run(&feeds(&env), &tenant, Source::HrApi).await;
    assert_eq!(
        (sync.result, sync.rows_read, sync.created, sync.rejected),
        (SyncResult::PartiallySucceeded, Some(3), 2, 1),
        "{sync:?}"
    );
    assert_eq!(sync.rejected_rows[0].row, 3);
    assert_eq!(sync.rejected_rows[0].column, "Work_Email");
    let alex = user(&env, "00042").await;
    assert_eq!(alex.spec.full_name, "Alex Example");
    assert_eq!(alex.spec.email, "alex.example@example.com");
    assert_eq!(
        alex.spec.hire_date.map(|d| d.to_string()).as_deref(),
        Some("2025-03-17")
    );
    assert_eq!(alex.spec.department.as_deref(), Some("Unassigned"));
    assert_eq!(
        alex.spec.manager_email.as_deref(),
        Some("morgan@example.com")
    );
    assert_eq!(alex.spec.source, roster_api::RecordSource::HrApi);
    let managers: BTreeSet<String> = alex
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains("roster-hrapi"), "{managers:?}");

    // Morgan leaves the report: removed from the feed.
    state.set_entries(vec![json!({"Employee_ID": "00042", "First_Name": "Alex",
        "Last_Name": "Example", "Work_Email": "alex.example@example.com",
        "Hire_Date": "2025-03-17", "Manager_ID": "00007"})]);
    let second = sync::run(&feeds(&env), &tenant, Source::HrApi).await;
    assert_eq!(
        (second.created, second.updated, second.removed),
        (0, 0, 1),
        "{second:?}"
    );
    assert!(!user(&env, "00007").await.spec.active);
    assert_eq!(state.report_calls(), 2);
}

/// Runs `roster import csv` against the shared control plane.
async fn roster_import(args: Vec<String>) -> std::process::Output {
    let kubeconfig = crate::support::control_plane()
        .await
        .kubeconfig_path()
        .to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("import")
            .arg("csv")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("run roster import")
    })
    .await
    .expect("import thread")
}

#[tokio::test]
async fn roster_import_csv_dry_runs_writes_manifests_and_imports_like_the_scheduler() {
    let env = TestEnv::new("feeds-import").await;
    let mut spec = crate::support::tenant_spec("http://127.0.0.1:9/api/v1");
    spec.sources.csv = None;
    tenant(&env, spec).await;
    let dir = std::env::temp_dir().join(format!("roster-import-{}", env.namespace));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("people.csv");
    std::fs::write(&file, format!("{HEADER}{FIRST}")).unwrap();
    let file = file.display().to_string();

    let dry = roster_import(vec![
        file.clone(),
        "--tenant".into(),
        env.namespace.clone(),
        "--dry-run".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        stdout.starts_with("dry run: 9 rows read: 9 to create"),
        "{stdout}"
    );
    assert!(stdout.contains("  Create e-00001"), "{stdout}");
    assert!(
        !stdout.contains("ada@example.com"),
        "no values in the output"
    );
    assert!(versions(&env).await.is_empty(), "a dry run writes nothing");

    let manifests = dir.join("manifests");
    let out = roster_import(vec![
        file.clone(),
        "--tenant".into(),
        env.namespace.clone(),
        "--output-dir".into(),
        manifests.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ada: DirectoryUser =
        serde_yaml_ng::from_str(&std::fs::read_to_string(manifests.join("e-00001.yaml")).unwrap())
            .unwrap();
    assert_eq!(ada.spec.employee_id, "00001");
    assert_eq!(ada.spec.manager_email.as_deref(), Some("di@example.com"));
    assert_eq!(std::fs::read_dir(&manifests).unwrap().count(), 9);
    assert!(
        versions(&env).await.is_empty(),
        "manifests instead of writes"
    );

    let real = roster_import(vec![file, "--tenant".into(), env.namespace.clone()]).await;
    let stdout = String::from_utf8_lossy(&real.stdout);
    assert!(
        real.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(stdout.contains("9 rows read, 9 created"), "{stdout}");
    assert_eq!(versions(&env).await.len(), 9);
    let sync = source_sync(&env, roster_api::RecordSource::Csv)
        .await
        .expect("recorded");
    assert_eq!((sync.result, sync.created), (SyncResult::Succeeded, 9));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_truncated_file_deprovisions_nobody_until_the_hold_is_approved() {
    let env = TestEnv::new("feeds-guard").await;
    let sshd = start_sshd().await;
    let everyone: String = (1..=10)
        .map(|i| format!("{i:05},Person {i},p{i}@example.com,,,,,,,true\r\n"))
        .collect();
    let path = sshd
        .put("people.csv", format!("{HEADER}{everyone}").as_bytes())
        .unwrap();
    // The policy's default guard: at most 50 users or 20 % at once.
    let tenant = setup_csv_guarded(
        &env,
        &sshd,
        csv_source(&sshd, &path, sshd.host_key()),
        Some(MassDeprovisionGuard::default()),
    )
    .await;
    let operator = Operator::start(
        &env.client,
        &env.namespace,
        Arc::new(roster::effects::memory::MemoryEffects::new()),
    );
    let first = poll(
        "the first scheduled sync",
        Duration::from_millis(200),
        || async { source_sync(&env, roster_api::RecordSource::Csv).await },
    )
    .await;
    assert_eq!(first.created, 10, "{first:?}");
    for i in 1..=10 {
        crate::support::wait_status(&env, &format!("e-{i:05}"), "provisioned", |s| {
            s.account.provisioned.is_some()
        })
        .await;
    }

    // 60 % of the rows are missing: the guard (default: at most 20 %) trips before the
    // sync writes, and every one of the six is held, with their access.
    let truncated: String = everyone.lines().take(4).map(|l| format!("{l}\n")).collect();
    sshd.put("people.csv", format!("{HEADER}{truncated}").as_bytes())
        .unwrap();
    let held = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_eq!(
        (held.result, held.held, held.removed),
        (SyncResult::Succeeded, Some(6), 6),
        "{held:?}"
    );
    let message = held.message.clone().unwrap_or_default();
    assert!(
        message.contains(
            "6 removal(s) held by the mass-deprovisioning guard: 6 of 10 users (60 %) would leave Active within a minute, more than maxPercent 20"
        ),
        "{message}"
    );
    for i in 5..=10 {
        let du =
            crate::support::wait_phase(&env, &format!("e-{i:05}"), roster_api::Phase::Held).await;
        let status = du.status.unwrap();
        assert!(status.steps.is_empty(), "access is not revoked: {status:?}");
        let ready = crate::support::condition(&status, "Ready").unwrap();
        assert!(
            ready.message.contains("roster approve --tenant"),
            "{ready:?}"
        );
    }
    let events = event_notes(&env, "CsvRemovalsHeld").await;
    assert!(
        events.iter().any(|n| n.contains("roster approve")),
        "{events:?}"
    );
    let condition = poll(
        "the RemovalGuard condition",
        Duration::from_millis(200),
        || async {
            let t = env.api::<Tenant>().get("acme").await.ok()?;
            t.status?
                .conditions
                .into_iter()
                .find(|c| c.r#type == "RemovalGuard" && c.message.starts_with("6 user(s) held"))
        },
    )
    .await;
    assert_eq!(condition.reason, "RemovalsHeld");
    assert!(
        condition.message.contains("roster approve --reject"),
        "{condition:?}"
    );
    // The next scheduled sync of the same file writes nothing more and holds them still.
    let again = sync::run(&feeds(&env), &tenant, Source::Csv).await;
    assert_eq!(
        (again.removed, again.created, again.updated),
        (0, 0, 0),
        "{again:?}"
    );

    // `roster approve`: the six leave for their quarantine.
    let kubeconfig = crate::support::control_plane()
        .await
        .kubeconfig_path()
        .to_path_buf();
    let namespace = env.namespace.clone();
    let approved_at = std::time::Instant::now();
    let approve = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["approve", "--tenant", &namespace])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("run roster approve")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&approve.stdout);
    assert!(
        approve.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    assert!(
        stdout.contains("approved the held removals of 6 users"),
        "{stdout}"
    );
    for i in 5..=10 {
        crate::support::wait_phase(&env, &format!("e-{i:05}"), roster_api::Phase::Quarantined)
            .await;
    }
    eprintln!(
        "guard: 6 of 10 held; approval to all 6 Quarantined: {:?}",
        approved_at.elapsed()
    );
    assert_eq!(
        user(&env, "00001").await.status.map(|s| s.phase),
        Some(roster_api::Phase::Active)
    );
    poll(
        "the RemovalGuard condition to clear",
        Duration::from_millis(200),
        || async {
            let t = env.api::<Tenant>().get("acme").await.ok()?;
            t.status?
                .conditions
                .into_iter()
                .find(|c| c.r#type == "RemovalGuard" && c.reason == "Clear")
        },
    )
    .await;
    drop(operator);
}

/// The scale figure on the real API server: `ROSTER_FEED_ROWS` rows (default 10 000)
/// imported over SFTP, then the same file with 1 % of the rows changed. Prints the
/// times and counts the objects the second sync wrote (by resourceVersion). Ignored by
/// default (it takes a while); run with
/// `cargo test -p roster --test integration feeds::scale -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark: run explicitly"]
async fn scale_a_large_file_and_one_percent_changed() {
    let rows: usize = std::env::var("ROSTER_FEED_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = TestEnv::new("feeds-scale").await;
    let sshd = start_sshd().await;
    let body = |changed_every: Option<usize>| {
        let mut out = String::from(HEADER);
        for i in 0..rows {
            let title = match changed_every {
                Some(n) if i % n == 0 => "Senior Engineer",
                _ => "Engineer",
            };
            out.push_str(&format!(
                "{i:07},Person {i},person{i}@example.com,2020-01-06,,Engineering,{title},Berlin,,true\r\n"
            ));
        }
        out
    };
    let path = sshd.put("people.csv", body(None).as_bytes()).unwrap();
    let tenant = setup_csv(&env, &sshd, csv_source(&sshd, &path, sshd.host_key())).await;
    let feeds = feeds(&env);
    let started = std::time::Instant::now();
    let first = sync::run(&feeds, &tenant, Source::Csv).await;
    let first_took = started.elapsed();
    assert_eq!(first.created as usize, rows, "{first:?}");
    let before = versions(&env).await;
    sshd.put("people.csv", body(Some(100)).as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let second = sync::run(&feeds, &tenant, Source::Csv).await;
    let second_took = started.elapsed();
    let after = versions(&env).await;
    let written = after
        .iter()
        .filter(|(id, rv)| before.get(*id) != Some(rv))
        .count();
    println!(
        "feed scale: {rows} rows: first sync {first_took:?} ({} creates); 1 % changed: second sync {second_took:?}, {} updates, {written} objects written, {} unchanged",
        first.created,
        second.updated,
        second.unchanged.unwrap_or(0)
    );
    assert_eq!(written, rows.div_ceil(100));
}

#[tokio::test]
async fn an_hr_report_takes_a_bearer_token_and_a_refused_one_changes_nothing() {
    let env = TestEnv::new("feeds-hrapi-token").await;
    let state = HrState::new("the-right-token", "", "");
    state.set_entries(vec![json!({"Employee_ID": "7", "Name": "Sam Seven",
        "Email": "sam@example.com"})]);
    let hr = HrStandIn::start(state.clone()).await.unwrap();
    secret(&env, "hr", &[("token", "a-wrong-token")]).await;
    let rule = |from: &str, to: ProfileField| AttributeMapping {
        from: from.into(),
        concat: vec![],
        separator: None,
        to,
        transform: Transform::None,
        default: None,
    };
    let mut spec = crate::support::tenant_spec("http://127.0.0.1:9/api/v1");
    spec.sources.hr_api = Some(HrApiSource {
        url: hr.report_url(),
        credentials_secret_ref: LocalObjectRef { name: "hr".into() },
        token_url: None,
        daily_at: None,
        interval: "24h".into(),
        complete_snapshot: true,
        mappings: vec![
            rule("Employee_ID", ProfileField::EmployeeId),
            rule("Name", ProfileField::FullName),
            rule("Email", ProfileField::Email),
        ],
    });
    let tenant = tenant(&env, spec).await;
    let refused = sync::run(&feeds(&env), &tenant, Source::HrApi).await;
    assert_eq!(refused.result, SyncResult::Failed);
    assert_eq!(
        refused.message.as_deref(),
        Some("the server refused the credentials")
    );
    assert!(versions(&env).await.is_empty());
    // The Secret is fixed: the next sync applies.
    let secrets = env.api::<Secret>();
    secrets
        .delete("hr", &Default::default())
        .await
        .expect("delete secret");
    secret(&env, "hr", &[("token", "the-right-token")]).await;
    let ok = sync::run(&feeds(&env), &tenant, Source::HrApi).await;
    assert_eq!(
        (ok.result, ok.created),
        (SyncResult::Succeeded, 1),
        "{ok:?}"
    );
    assert_eq!(user(&env, "7").await.spec.full_name, "Sam Seven");
}
