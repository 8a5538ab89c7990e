//! Every manifest in `examples/` applies cleanly, as a user would apply it.

use std::time::Duration;

use crate::support::{self, TestEnv};

#[tokio::test]
async fn examples_apply_cleanly() {
    let env = TestEnv::new("examples").await;
    let dir = roster_testkit::repo_path("examples");
    let dir = dir.to_str().expect("a UTF-8 path");
    let args = ["apply", "-f", dir, "-n", &env.namespace];

    // kubectl resolves kinds through discovery, which may lag the CRDs becoming
    // Established by a moment; re-applying is harmless, so retry until it is current.
    let first = support::poll(
        "kubectl apply -f examples/",
        Duration::from_millis(200),
        || async {
            let output = support::kubectl(&args).await;
            let discovery_lag = output.stderr.contains("ensure CRDs are installed first");
            (output.success || !discovery_lag).then_some(output)
        },
    )
    .await;
    first.assert_success("kubectl apply -f examples/");
    assert!(
        !first.stderr.contains("Warning"),
        "kubectl apply warned:\n{}",
        first.stderr
    );
    for expected in [
        "tenant.roster.dev/acme",
        "deprovisionpolicy.roster.dev/standard",
        "directoryuser.roster.dev/e-00042",
    ] {
        assert!(
            first.stdout.contains(expected),
            "{expected} not applied:\n{}",
            first.stdout
        );
    }

    // Applying them again would change nothing: `kubectl diff` (a server-side dry
    // run compared with the live objects, defaults included) finds no difference.
    let diff = support::kubectl(&["diff", "-f", dir, "-n", &env.namespace]).await;
    assert!(
        diff.success && diff.stdout.is_empty(),
        "kubectl diff after apply:\n{}\n{}",
        diff.stdout,
        diff.stderr
    );

    // Server-side apply, as GitOps tools do, accepts them as well.
    let namespace = support::namespace(&env.client, "examples-ssa").await;
    support::kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=roster-tests",
        "-f",
        dir,
        "-n",
        &namespace,
    ])
    .await
    .assert_success("kubectl apply --server-side -f examples/");
}
