//! What an operator sees with kubectl: printer columns and `kubectl explain`.

use std::time::Duration;

use kube::api::PostParams;
use roster_api::{DirectoryUser, DirectoryUserSpec};

use crate::support::{self, KubectlOutput, TestEnv};

/// Runs kubectl until it succeeds, for requests that can race the API server
/// publishing a new CRD (discovery and the OpenAPI document lag Established).
async fn kubectl_when_published(args: &[&str]) -> KubectlOutput {
    support::poll(
        &format!("kubectl {}", args.join(" ")),
        Duration::from_millis(200),
        || async {
            let output = support::kubectl(args).await;
            output.success.then_some(output)
        },
    )
    .await
}

fn header(output: &KubectlOutput) -> Vec<String> {
    output
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn get_directoryusers_shows_phase_ready_tenant_next_deadline_and_age() {
    let env = TestEnv::new("printcolumns").await;
    let user = DirectoryUser::new(
        "e-00042",
        DirectoryUserSpec {
            tenant_ref: "acme".into(),
            employee_id: "00042".into(),
            full_name: "Alex Example".into(),
            email: "alex.example@example.com".into(),
            active: true,
            ..Default::default()
        },
    );
    env.api::<DirectoryUser>()
        .create(&PostParams::default(), &user)
        .await
        .expect("create a DirectoryUser");

    let plain = kubectl_when_published(&["get", "directoryusers", "-n", &env.namespace]).await;
    assert_eq!(
        header(&plain),
        ["NAME", "PHASE", "READY", "TENANT", "NEXT-DEADLINE", "AGE"],
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains("e-00042"), "{}", plain.stdout);
    assert!(plain.stdout.contains("acme"), "{}", plain.stdout);

    let wide = kubectl_when_published(&["get", "du", "-o", "wide", "-n", &env.namespace]).await;
    let columns = header(&wide);
    assert_eq!(
        columns,
        [
            "NAME",
            "PHASE",
            "READY",
            "TENANT",
            "NEXT-DEADLINE",
            "EMPLOYEE-ID",
            "TRIGGER",
            "AGE",
            "MESSAGE"
        ],
        "{}",
        wide.stdout
    );
    assert!(wide.stdout.contains("00042"), "{}", wide.stdout);
}

/// Collapses runs of whitespace, since kubectl re-wraps descriptions.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn explain_prints_the_field_documentation() {
    let env = TestEnv::new("explain").await;
    let cases = [
        (
            "directoryusers.spec.employeeID",
            "Identifier of the person in the HR system: the mapping key, unique in the tenant and immutable once set.",
        ),
        (
            "directoryusers.spec.terminationDate",
            "A future date schedules deprovisioning; a date that has arrived triggers it at once.",
        ),
        (
            "tenants.spec.timeZone",
            "IANA time zone in which date-only HR fields (termination date) are read",
        ),
        (
            "tenants.spec.calendar.fallbackOwner",
            "Receives events (and, per the policy, rules) when nobody in the policy's order is eligible",
        ),
        (
            "deprovisionpolicies.spec.purgeDeadline",
            "PII is fully removed no later than this after termination, as a Go duration.",
        ),
        (
            "deprovisionpolicies.spec.massDeprovisionGuard.maxPercent",
            "Okta's import safeguard uses 20",
        ),
    ];
    for (field, doc) in cases {
        let output = kubectl_when_published(&["explain", field, "-n", &env.namespace]).await;
        assert!(
            words(&output.stdout).contains(&words(doc)),
            "`kubectl explain {field}` lacks {doc:?}:\n{}",
            output.stdout
        );
    }
}
