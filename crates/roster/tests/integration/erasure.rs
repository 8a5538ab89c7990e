//! Proof of erasure on the real API server: a person applied with `kubectl apply`
//! (client-side, so the last-applied-configuration annotation holds a copy of their
//! record) is purged; their signed receipt verifies with `roster verify-erasure`, an
//! altered receipt does not; and nothing of their name or email is left in any object
//! of the namespace (every kind the API server serves, Events, annotations,
//! managedFields) nor in the operator's logs.

use kube::api::{ListParams, Patch, PatchParams};
use roster_api::{DeprovisionPolicy, DeprovisionPolicySpec, ErasureReceipt, ErasureSystem, Phase};

use crate::joiners::{setup, standin, wait_settled};
use crate::support::{OperatorProcess, TestEnv, apply, kubectl, wait_status};
use crate::tenant_exit::{signing_key, verify_erasure};

const FULL_NAME: &str = "Ada Erasure-Testperson";
const EMAIL: &str = "ada.erasure-testperson@example.org";

#[tokio::test]
async fn a_purged_person_gets_a_verifiable_receipt_and_leaves_no_trace() {
    let env = TestEnv::new("erasure").await;
    let lms = standin(false).await;
    setup(&env, &lms).await;
    signing_key(&env).await;
    let policy = DeprovisionPolicy::new(
        "standard",
        DeprovisionPolicySpec {
            quarantine_period: "0s".into(),
            purge_deadline: "2s".into(),
            ..Default::default()
        },
    );
    apply(&env.api::<DeprovisionPolicy>(), "standard", &policy).await;
    let plane = crate::support::control_plane().await;
    let log = std::env::temp_dir().join(format!("roster-erasure-{}.log", env.namespace));
    let operator = OperatorProcess::start(&env.namespace, plane.kubeconfig_path(), &log);

    let manifest = std::env::temp_dir().join(format!("roster-erasure-{}.yaml", env.namespace));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: roster.dev/v1alpha1\nkind: DirectoryUser\nmetadata:\n  name: e-x001\nspec:\n  tenantRef: {{ name: acme }}\n  employeeID: X001\n  fullName: {FULL_NAME}\n  email: {EMAIL}\n  title: Engineer\n  department: Research\n"
        ),
    )
    .unwrap();
    kubectl(&[
        "apply",
        "-n",
        &env.namespace,
        "-f",
        manifest.to_str().unwrap(),
    ])
    .await
    .assert_success("kubectl apply (client-side)");
    let _ = std::fs::remove_file(&manifest);
    let applied = wait_settled(&env, "X001").await;
    assert!(
        applied
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/last-applied-configuration")),
        "kubectl apply left its annotation"
    );
    kubectl(&[
        "annotate",
        "du",
        "e-x001",
        "-n",
        &env.namespace,
        "roster.dev/deprovision-now=erasure-test",
    ])
    .await
    .assert_success("kubectl annotate");
    let purged = wait_status(&env, "e-x001", "purged with a receipt", |s| {
        s.phase == Phase::Purged && s.erasure_receipt.is_some()
    })
    .await;
    let status = purged.status.unwrap();
    let receipt_name = status.erasure_receipt.unwrap();
    let receipt = env
        .api::<ErasureReceipt>()
        .get(&receipt_name)
        .await
        .unwrap();
    println!(
        "receipt {receipt_name}: {}",
        serde_json::to_string_pretty(&receipt.spec).unwrap()
    );
    assert_eq!(receipt.spec.deadline, status.purge_due_time);
    assert!(receipt.spec.within_deadline);
    assert_eq!(receipt.spec.sequence, 1);
    assert!(receipt.spec.signature.is_some(), "signed");
    let systems: Vec<ErasureSystem> = receipt.spec.removals.iter().map(|r| r.system).collect();
    assert_eq!(
        systems,
        vec![
            ErasureSystem::LearningPlatform,
            ErasureSystem::Calendar,
            ErasureSystem::Cluster
        ]
    );
    let person = lms.state().user("X001").unwrap();
    assert!(person.anonymized && person.purged);

    let (ok, report) = verify_erasure(&env).await;
    assert!(ok, "verify-erasure: {report}");
    assert!(
        report.contains("1 receipt(s)") && report.contains("OK"),
        "{report}"
    );

    // Give the operator a moment to log whatever it logs after the purge, then stop it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    operator.kill_9();

    // The scan: every kind the API server lists in a namespace, with managedFields.
    let kinds = kubectl(&[
        "api-resources",
        "--namespaced",
        "--verbs=list",
        "-o",
        "name",
    ])
    .await;
    kinds.assert_success("kubectl api-resources");
    let mut objects = 0;
    let mut scanned_kinds = 0;
    let mut matches = Vec::new();
    for kind in kinds
        .stdout
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        let listed = kubectl(&[
            "get",
            kind,
            "-n",
            &env.namespace,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
        if !listed.success {
            continue; // e.g. a kind whose list is forbidden or not served here
        }
        scanned_kinds += 1;
        let list: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
        for item in list["items"].as_array().into_iter().flatten() {
            objects += 1;
            let text = item.to_string();
            for needle in [FULL_NAME, EMAIL, "Erasure-Testperson", "ada.erasure"] {
                if text.contains(needle) {
                    matches.push(format!(
                        "{kind}/{}: {needle}",
                        item["metadata"]["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    let logs = std::fs::read_to_string(&log).expect("read the operator log");
    let log_lines = logs.lines().count();
    for needle in [FULL_NAME, EMAIL, "Erasure-Testperson", "ada.erasure"] {
        if logs.contains(needle) {
            matches.push(format!("operator log: {needle}"));
        }
    }
    let _ = std::fs::remove_file(&log);
    println!(
        "PII scan after purge: {objects} objects of {scanned_kinds} kinds (Events, annotations, managedFields included) and {log_lines} operator log lines scanned; matches: {}",
        matches.len()
    );
    assert!(
        objects > 5 && log_lines > 3,
        "the scan saw too little to prove anything"
    );
    assert!(matches.is_empty(), "traces of the person: {matches:#?}");

    // An administrator (or an attacker) alters the receipt: verification fails.
    env.api::<ErasureReceipt>()
        .patch(
            &receipt_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "withinDeadline": false } })),
        )
        .await
        .unwrap();
    let (ok, report) = verify_erasure(&env).await;
    assert!(!ok, "an altered receipt verified");
    assert!(report.contains("#1 was altered"), "{report}");
    let receipts = env
        .api::<ErasureReceipt>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(receipts.items.len(), 1);
}
