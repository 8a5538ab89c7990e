//! The operator's `/metrics`, as a platform team scrapes it: `roster run` (the binary,
//! without leader election) with HTTP effects against the learning-platform stand-in,
//! taking one leaver through the whole lifecycle (one step failing once on 503s).
//! Every series the docs list appears with values that follow from what happened, and
//! no label holds the people's names, emails, object names or a URL.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use roster_api::{
    DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec, Phase,
};
use roster_standins::lms::Fault;

use crate::joiners::{setup, standin};
use crate::support::{TestEnv, WAIT_TIMEOUT, apply, wait_phase};

const LEAVER_NAME: &str = "Grace Metrics-Testperson";
const LEAVER_EMAIL: &str = "grace.metrics-testperson@example.org";
const STAYER_NAME: &str = "Alan Metrics-Colleague";
const STAYER_EMAIL: &str = "alan.metrics-colleague@example.org";

/// `roster run` serving its probes and metrics on `port`; killed on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(
    namespace: &str,
    kubeconfig: &std::path::Path,
    port: u16,
    log: &std::path::Path,
) -> Running {
    let log = std::fs::File::create(log).expect("create the operator log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["run", "--namespace", namespace, "--effects", "http"])
        .args(["--rate-limit", "1000", "--log-format", "json"])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start roster run");
    Running(child)
}

/// One sample's value: the line that starts with `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The sum of every sample of `name` whose labels contain all of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn person(id: &str, full_name: &str, email: &str) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: id.into(),
        full_name: full_name.into(),
        email: email.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn metrics_follow_a_leaver_through_the_lifecycle_without_pii() {
    let env = TestEnv::new("metrics").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    apply(
        &env.api::<DeprovisionPolicy>(),
        "standard",
        &DeprovisionPolicy::new(
            "standard",
            DeprovisionPolicySpec {
                quarantine_period: "0s".into(),
                purge_deadline: "3s".into(),
                ..Default::default()
            },
        ),
    )
    .await;
    // The first anonymization fails on every try (4 × 503); the retry goes through.
    lms.state()
        .add_fault(Fault::on("anonymizeUser").fail(503).times(4));

    let plane = crate::support::control_plane().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("roster-metrics-{}.log", env.namespace));
    let _operator = start(&env.namespace, plane.kubeconfig_path(), port, &log);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = || async {
        match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            _ => None,
        }
    };

    let users = env.api::<DirectoryUser>();
    for (name, spec) in [
        ("e-m001", person("M001", LEAVER_NAME, LEAVER_EMAIL)),
        ("e-m002", person("M002", STAYER_NAME, STAYER_EMAIL)),
    ] {
        apply(&users, name, &DirectoryUser::new(name, spec)).await;
    }
    wait_phase(&env, "e-m001", Phase::Active).await;
    wait_phase(&env, "e-m002", Phase::Active).await;
    users
        .patch(
            "e-m001",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "metadata": { "annotations": {
                roster_api::DEPROVISION_NOW_ANNOTATION: "metrics-test"
            } } })),
        )
        .await
        .expect("annotate roster.dev/deprovision-now");
    wait_phase(&env, "e-m001", Phase::Purged).await;

    // The Tenant's counts follow within its debounce: poll the scrape until they do.
    let tenant = format!("{}/acme", env.namespace);
    let purged = format!(r#"roster_users{{tenant="{tenant}",phase="Purged"}}"#);
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    let text = loop {
        if let Some(text) = scrape().await
            && value(&text, &purged) == Some(1.0)
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{purged} 1 not scraped within {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{text}");

    // This process reconciles without a lease: it says so.
    assert_eq!(value(&text, "roster_leader"), Some(1.0));
    // Users per tenant and phase: the stayer is Active, the leaver Purged.
    let active = format!(r#"roster_users{{tenant="{tenant}",phase="Active"}}"#);
    assert_eq!(value(&text, &active), Some(1.0));
    for phase in ["Held", "Quarantined", "Deprovisioning", "Deprovisioned"] {
        let series = format!(r#"roster_users{{tenant="{tenant}",phase="{phase}"}}"#);
        assert_eq!(value(&text, &series), Some(0.0), "{series}");
    }
    // Transitions: the leaver went all the way.
    for (from, to) in [
        ("Active", "Quarantined"),
        ("Quarantined", "Deprovisioning"),
        ("Deprovisioning", "Deprovisioned"),
        ("Deprovisioned", "Purged"),
    ] {
        let labels = [format!(r#"from="{from}""#), format!(r#"to="{to}""#)];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert!(
            sum(&text, "roster_phase_transitions_total", &labels) >= 1.0,
            "{from} -> {to}"
        );
    }
    // Steps: each timed against the learning platform; the anonymization failed once
    // (the platform's 503s, in the connector's own category) and then succeeded.
    for step in ["RevokeAccess", "RemoveFromGroups", "Anonymize", "Purge"] {
        let series = format!(
            r#"roster_step_duration_seconds_count{{step="{step}",connector="learning-platform"}}"#
        );
        assert!(value(&text, &series).is_some_and(|n| n >= 1.0), "{series}");
    }
    let anonymize =
        r#"roster_step_duration_seconds_count{step="Anonymize",connector="learning-platform"}"#;
    assert_eq!(value(&text, anonymize), Some(2.0), "failed once, then done");
    let failed = r#"roster_step_failures_total{step="Anonymize",connector="learning-platform",category="unavailable"}"#;
    assert_eq!(value(&text, failed), Some(1.0));
    assert_eq!(
        sum(&text, "roster_step_failures_total", &[]),
        1.0,
        "no other step failed"
    );
    // Downstream: the four 503s, and successes, all timed.
    let unavailable =
        r#"roster_downstream_requests_total{connector="learning-platform",class="5xx",code="503"}"#;
    assert_eq!(value(&text, unavailable), Some(4.0));
    let succeeded = sum(
        &text,
        "roster_downstream_requests_total",
        &[r#"connector="learning-platform""#, r#"class="2xx""#],
    );
    assert!(
        succeeded >= 6.0,
        "provisioning twice, revoke, groups, anonymize, purge: {succeeded}"
    );
    let timed = r#"roster_downstream_request_duration_seconds_count{connector="learning-platform",class="2xx"}"#;
    assert_eq!(value(&text, timed), Some(succeeded));
    // Deadlines: both acted on, neither absurdly late (the purge waited for the retry).
    for deadline in ["quarantine-end", "purge"] {
        let count = format!(r#"roster_deadline_lateness_seconds_count{{deadline="{deadline}"}}"#);
        let total = format!(r#"roster_deadline_lateness_seconds_sum{{deadline="{deadline}"}}"#);
        assert_eq!(value(&text, &count), Some(1.0), "{count}");
        let late = value(&text, &total).unwrap();
        assert!((0.0..30.0).contains(&late), "{deadline} {late} s late");
    }
    // Queue and reconciles: reported per controller, idle once the leaver is done.
    for controller in ["directoryuser", "tenant"] {
        let in_flight = format!(r#"roster_reconciles_in_flight{{controller="{controller}"}}"#);
        assert!(value(&text, &in_flight).is_some(), "{in_flight}");
        let reconciles = format!(r#"roster_reconciles_total{{controller="{controller}"}}"#);
        assert!(
            value(&text, &reconciles).is_some_and(|n| n >= 1.0),
            "{reconciles}"
        );
    }
    for controller in ["directoryuser", "departure", "tenant"] {
        for state in ["queued", "delayed"] {
            let series =
                format!(r#"roster_reconcile_queue{{controller="{controller}",state="{state}"}}"#);
            assert!(value(&text, &series).is_some(), "{series}");
        }
    }
    assert_eq!(sum(&text, "roster_reconcile_errors_total", &[]), 0.0);
    // Nothing is left waiting once the work is done (a slot that leaked would stay).
    let idle = |text: &str| sum(text, "roster_reconcile_queue", &[r#"state="queued""#]) == 0.0;
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    while !scrape().await.is_some_and(|text| idle(&text)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reconcile queue not empty within {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No label holds a person, an object name of a user, or an address.
    for pii in [
        LEAVER_NAME,
        LEAVER_EMAIL,
        STAYER_NAME,
        STAYER_EMAIL,
        "Grace",
        "example.org",
        "e-m001",
        "M001",
        "127.0.0.1",
        "http://",
    ] {
        assert!(!text.contains(pii), "/metrics holds {pii:?}");
    }
}
