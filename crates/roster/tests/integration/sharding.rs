//! Sharding (issue 13, point 3): two Deployments' worth of roster, `--shard a` and
//! `--shard b`, each with its own leader Lease, on tenant namespaces labelled
//! `roster.dev/shard`. Each shard reconciles exactly its own namespaces; labelling a
//! namespace into a shard restarts that shard's process, which then takes it too.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use roster_api::Phase;
use serde_json::json;

use crate::deprovisioning::deactivated_company;
use crate::support::{OperatorProcess, TestEnv, control_plane, wait_phase};

async fn label_into(env: &TestEnv, shard: &str) {
    Api::<Namespace>::all(env.client.clone())
        .patch(
            &env.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { roster::shard::LABEL: shard } } })),
        )
        .await
        .expect("label the namespace into its shard");
}

/// Who reported the namespace's Events (`reportingInstance` is the pod's name).
async fn reporters(env: &TestEnv) -> BTreeSet<String> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("roster"))
        .filter_map(|e| e.reporting_instance)
        .collect()
}

async fn start(shard: &str, lease_namespace: &str, log: &std::path::Path) -> OperatorProcess {
    let plane_kubeconfig = control_plane().await.kubeconfig_path().to_path_buf();
    let instance = format!("roster-shard-{shard}");
    OperatorProcess::start_with(
        // `--namespace` is refused beside `--shard`; the process's own namespace only
        // holds the Lease.
        "",
        &plane_kubeconfig,
        log,
        &[
            "--shard",
            shard,
            "--leader-election",
            "--lease-namespace",
            lease_namespace,
        ],
        &[("POD_NAME", instance.as_str())],
    )
}

#[tokio::test]
async fn each_shard_reconciles_its_own_namespaces_and_takes_a_new_one_on_restart() {
    let run = format!("{:04x}", rand::random::<u16>());
    let (shard_a, shard_b) = (format!("a{run}"), format!("b{run}"));
    let env_a = TestEnv::new("shard-a").await;
    let env_b = TestEnv::new("shard-b").await;
    label_into(&env_a, &shard_a).await;
    label_into(&env_b, &shard_b).await;
    let (lms_a, ids_a) = deactivated_company(&env_a, 3, "0s", "1s").await;
    let (lms_b, ids_b) = deactivated_company(&env_b, 3, "0s", "1s").await;
    let log = std::env::temp_dir().join(format!("roster-shards-{run}.log"));
    let mut a = start(&shard_a, &env_a.namespace, &log).await;
    let _b = start(&shard_b, &env_a.namespace, &log).await;

    for (env, ids) in [(&env_a, &ids_a), (&env_b, &ids_b)] {
        for id in ids {
            wait_phase(
                env,
                &format!("e-{}", id.to_ascii_lowercase()),
                Phase::Purged,
            )
            .await;
        }
    }
    assert_eq!(
        reporters(&env_a).await,
        BTreeSet::from([format!("roster-shard-{shard_a}")]),
        "shard a's namespace was reconciled by shard a alone"
    );
    assert_eq!(
        reporters(&env_b).await,
        BTreeSet::from([format!("roster-shard-{shard_b}")]),
        "shard b's namespace was reconciled by shard b alone"
    );
    for (lms, ids) in [(&lms_a, &ids_a), (&lms_b, &ids_b)] {
        assert!(lms.state().duplicates().is_empty());
        assert_eq!(lms.state().applied_count("purgeUser"), ids.len());
    }
    let leases: BTreeSet<String> = env_a
        .api::<Lease>()
        .list(&ListParams::default())
        .await
        .expect("list leases")
        .items
        .into_iter()
        .filter_map(|l| l.metadata.name)
        .collect();
    assert_eq!(
        leases,
        BTreeSet::from([
            format!("roster-leader-{shard_a}"),
            format!("roster-leader-{shard_b}")
        ]),
        "one leader Lease per shard"
    );

    // A new tenant namespace joins shard a: its process restarts and takes it.
    let env_c = TestEnv::new("shard-c").await;
    let (_lms_c, ids_c) = deactivated_company(&env_c, 1, "0s", "1s").await;
    let labelled = Instant::now();
    label_into(&env_c, &shard_a).await;
    let status = loop {
        if let Some(status) = a.exited() {
            break status;
        }
        assert!(
            labelled.elapsed() < Duration::from_secs(30),
            "shard a did not notice its new namespace"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "shard a ended {:.2} s after a namespace was labelled into it ({status})",
        labelled.elapsed().as_secs_f64()
    );
    assert!(status.success(), "a shard change is a clean exit: {status}");
    let _a = start(&shard_a, &env_a.namespace, &log).await;
    wait_phase(
        &env_c,
        &format!("e-{}", ids_c[0].to_ascii_lowercase()),
        Phase::Purged,
    )
    .await;
    println!(
        "its new namespace's leaver purged {:.2} s after the label",
        labelled.elapsed().as_secs_f64()
    );
    assert_eq!(
        reporters(&env_c).await,
        BTreeSet::from([format!("roster-shard-{shard_a}")])
    );
    let _ = std::fs::remove_file(&log);
}
