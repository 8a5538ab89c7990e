//! The Helm chart installs for real: everything `helm template` renders for each value
//! set in `charts/roster/ci/` (the ones `.ci/chart` lints) is accepted by the real API
//! server, server-side (CRDs and admission policy included); the Deployment's pod
//! passes the `restricted` Pod Security level the API server enforces; and the chart's
//! default image is what the release workflow publishes.
//! (The lifecycle under exactly the chart's RBAC is in `rbac.rs`; the image started as
//! the chart starts it is in `image.rs`.)

use serde_json::Value;

use crate::support::{TestEnv, kubectl};

/// The chart as `helm template` renders it (Helm built by the harness from
/// `controlplane/helm`), release "roster" in `namespace`, one JSON value per document.
pub async fn render(namespace: &str, args: &[&str]) -> Vec<Value> {
    let chart = roster_testkit::repo_path("charts/roster");
    let mut command = std::process::Command::new(
        tokio::task::spawn_blocking(roster_testkit::binaries::ensure_helm)
            .await
            .unwrap()
            .expect("build helm"),
    );
    command
        .arg("template")
        .arg("roster")
        .arg(&chart)
        .args(["--kube-version", "1.37.2", "--namespace", namespace])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("helm prints UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("the chart renders YAML"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

const CLUSTER_SCOPED: [&str; 5] = [
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// `kubectl apply --server-side` of every rendered document (with `--dry-run=server`
/// when `dry_run`), namespaced objects without a namespace going to `namespace` as
/// `helm install -n` puts them. Returns kubectl's report, one line per object.
pub async fn apply_rendered(docs: &[Value], namespace: &str, dry_run: bool) -> String {
    let mut yaml = String::new();
    for doc in docs {
        let mut doc = doc.clone();
        let cluster_scoped = CLUSTER_SCOPED.contains(&doc["kind"].as_str().unwrap());
        if doc["metadata"]["namespace"].is_null() && !cluster_scoped {
            doc["metadata"]["namespace"] = namespace.into();
        }
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml_ng::to_string(&doc).unwrap());
    }
    let file = std::env::temp_dir().join(format!(
        "roster-chart-{namespace}-{}.yaml",
        if dry_run { "dry-run" } else { "apply" }
    ));
    std::fs::write(&file, yaml).unwrap();
    let mut args = vec![
        "apply",
        "--server-side",
        // Helm's own field manager; the CRDs already installed by the test harness carry
        // the same content under another manager.
        "--field-manager=helm",
        "--force-conflicts",
        "-f",
        file.to_str().unwrap(),
    ];
    if dry_run {
        args.push("--dry-run=server");
    }
    let output = kubectl(&args).await;
    output.assert_success("kubectl apply --server-side of the rendered chart");
    output.stdout
}

/// A token for the ServiceAccount `account` in `namespace`, issued by the API server
/// (TokenRequest), as the kubelet mounts one into the chart's pod.
pub async fn service_account_token(
    client: &kube::Client,
    namespace: &str,
    account: &str,
) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    kube::Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(
            account,
            &Default::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec![]),
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("a token for the chart's ServiceAccount")
        .status
        .and_then(|status| status.token)
        .expect("the token")
}

/// The value sets of `charts/roster/ci/`, by name.
fn value_sets() -> Vec<(String, std::path::PathBuf)> {
    let dir = roster_testkit::repo_path("charts/roster/ci");
    let mut sets: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix("-values.yaml")?
                .to_string();
            Some((name, path))
        })
        .collect();
    sets.sort();
    assert!(sets.len() >= 3, "value sets in {}: {sets:?}", dir.display());
    sets
}

#[tokio::test]
async fn every_rendered_document_is_accepted_server_side_for_each_value_set() {
    let env = TestEnv::new("chart").await;
    for (name, values) in value_sets() {
        let docs = render(
            &env.namespace,
            &["--include-crds", "-f", values.to_str().unwrap()],
        )
        .await;
        // The tenant namespaces the value set names must exist for their Roles.
        let set: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&values).unwrap()).unwrap();
        let mut tenants: Vec<&str> = set["tenantNamespaces"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        tenants.extend(set["watchNamespace"].as_str());
        for tenant in tenants {
            let created = kubectl(&["create", "namespace", tenant]).await;
            assert!(
                created.success || created.stderr.contains("AlreadyExists"),
                "{created:?}"
            );
        }
        let report = apply_rendered(&docs, &env.namespace, true).await;
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        let accepted = report
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count();
        println!(
            "{name}: {} documents accepted server-side: {kinds:?}",
            docs.len()
        );
        assert_eq!(
            accepted,
            docs.len(),
            "{name}: every document accepted:\n{report}"
        );
        for kind in [
            "CustomResourceDefinition",
            "ValidatingAdmissionPolicy",
            "Deployment",
            "ServiceAccount",
        ] {
            assert!(
                kinds.contains(&kind) || (kind == "ServiceAccount" && name == "single-replica"),
                "{name} renders a {kind}: {kinds:?}"
            );
        }
    }
}

/// The Deployment's pod, created (server-side dry run) in a namespace where the API
/// server enforces the `restricted` Pod Security Standard, is admitted without a
/// warning: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp.
#[tokio::test]
async fn the_chart_pod_meets_the_restricted_pod_security_standard() {
    let env = TestEnv::new("chart-psa").await;
    kubectl(&[
        "label",
        "namespace",
        &env.namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ])
    .await
    .assert_success("label the namespace restricted");
    for (name, values) in value_sets() {
        let docs = render(&env.namespace, &["-f", values.to_str().unwrap()]).await;
        let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": format!("roster-{name}"), "namespace": env.namespace },
            "spec": deployment["spec"]["template"]["spec"],
        });
        let file = std::env::temp_dir().join(format!("roster-pod-{}-{name}.json", env.namespace));
        std::fs::write(&file, pod.to_string()).unwrap();
        let output = kubectl(&["create", "--dry-run=server", "-f", file.to_str().unwrap()]).await;
        output.assert_success(&format!("{name}: the pod under enforce=restricted"));
        assert!(
            !output.stderr.contains("Warning"),
            "{name}: no Pod Security warning: {}",
            output.stderr
        );
    }
}

/// The image reference is one: the chart's default (`image.repository` and the
/// appVersion as tag), what `.github/workflows/release.yml` pushes, the tag in the
/// Dockerfile's build command, and the workspace version.
#[test]
fn the_chart_image_is_what_the_release_workflow_publishes() {
    let read = |path: &str| std::fs::read_to_string(roster_testkit::repo_path(path)).unwrap();
    let values: Value = serde_yaml_ng::from_str(&read("charts/roster/values.yaml")).unwrap();
    let version = crate::image::app_version();
    let chart: Value = serde_yaml_ng::from_str(&read("charts/roster/Chart.yaml")).unwrap();
    let image = format!(
        "{}:{version}",
        values["image"]["repository"].as_str().unwrap()
    );
    assert_eq!(
        values["image"]["tag"], "",
        "the tag defaults to the appVersion"
    );
    assert_eq!(
        chart["version"],
        version.as_str(),
        "chart version and appVersion"
    );
    let workflow: Value = serde_yaml_ng::from_str(&read(".github/workflows/release.yml")).unwrap();
    assert_eq!(
        format!("{}:{version}", workflow["env"]["IMAGE"].as_str().unwrap()),
        image,
        "release.yml pushes the chart's default image"
    );
    assert!(
        read("Dockerfile").contains(&format!("docker build -t {image} .")),
        "the Dockerfile's build command tags {image}"
    );
    let cargo: Value = toml_version(&read("Cargo.toml"));
    assert_eq!(cargo, Value::from(version.as_str()), "workspace version");
}

/// `version = "…"` of `[workspace.package]` (no TOML parser in this crate's tests).
fn toml_version(text: &str) -> Value {
    let section = text
        .split("[workspace.package]")
        .nth(1)
        .expect("a [workspace.package] section");
    section
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("version")
                .and_then(|rest| rest.trim().strip_prefix('='))
                .map(|v| Value::from(v.trim().trim_matches('"')))
        })
        .expect("a workspace version")
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The figures behind the chart's memory request and limit (`values.yaml`,
/// docs/operations.md): the resident memory of the operator binary the image ships
/// (`.ci/image`'s static release build; the debug build when it is missing; another
/// with `ROSTER_RSS_BINARY`), idle,
/// then with each number of users in `ROSTER_RSS_USERS` (default 1000,10000) applied
/// and settled (each provisioned, `--effects memory`). Minutes, so not in `.ci/run`:
/// `cargo test -p roster --test integration operator_memory -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement of several minutes; run by hand"]
async fn operator_memory_idle_and_with_users() {
    use std::time::{Duration, Instant};
    let env = TestEnv::new("rss").await;
    let shipped = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| roster_testkit::repo_path("target"))
        .join("x86_64-unknown-linux-musl/release/roster");
    let binary = if let Some(binary) = std::env::var_os("ROSTER_RSS_BINARY") {
        std::path::PathBuf::from(binary)
    } else if shipped.is_file() {
        shipped
    } else {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_roster"))
    };
    println!("measuring {}", binary.display());
    let counts: Vec<usize> = std::env::var("ROSTER_RSS_USERS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("ROSTER_RSS_USERS: numbers"))
        .collect();

    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "lms", "labels": { "roster.dev/credentials": "true" } },
        "stringData": { "token": "t" },
    });
    let policy = serde_json::json!({
        "apiVersion": "roster.dev/v1alpha1", "kind": "DeprovisionPolicy",
        "metadata": { "name": "standard" }, "spec": {},
    });
    let tenant = serde_json::json!({
        "apiVersion": "roster.dev/v1alpha1", "kind": "Tenant",
        "metadata": { "name": "acme" },
        "spec": crate::support::tenant_spec("http://127.0.0.1:1/api/v1"),
    });
    let apply_list = |items: Vec<Value>, ns: String| async move {
        let file = std::env::temp_dir().join(format!("roster-rss-{ns}.json"));
        let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
        std::fs::write(&file, list.to_string()).unwrap();
        kubectl(&[
            "apply",
            "--server-side",
            "-n",
            &ns,
            "-f",
            file.to_str().unwrap(),
        ])
        .await
        .assert_success("apply");
    };
    apply_list(vec![secret, policy, tenant], env.namespace.clone()).await;

    let port = roster_testkit::process::free_port().unwrap();
    let plane = crate::support::control_plane().await;
    let log = std::fs::File::create(
        std::env::temp_dir().join(format!("roster-rss-{}.log", env.namespace)),
    )
    .unwrap();
    let mut command = std::process::Command::new(&binary);
    command
        .args(["run", "--namespace", &env.namespace, "--effects", "memory"])
        .args([
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .env("KUBECONFIG", plane.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut child = roster_testkit::process::spawn(command).expect("start roster");
    let pid = child.id();
    let http = reqwest::Client::new();
    crate::support::poll("/readyz", Duration::from_millis(100), || {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (idle, _) = rss_kib(pid);
    println!("idle (Tenant only): VmRSS {} MiB", idle / 1024);
    let tenants: kube::Api<roster_api::Tenant> = env.api();
    let mut applied = 0;
    for count in counts {
        let started = Instant::now();
        while applied < count {
            let chunk: Vec<Value> = (applied..count.min(applied + 500))
                .map(|i| {
                    serde_json::json!({
                        "apiVersion": "roster.dev/v1alpha1", "kind": "DirectoryUser",
                        "metadata": { "name": format!("e-{i:06}") },
                        "spec": {
                            "tenantRef": { "name": "acme" }, "employeeID": format!("{i:06}"),
                            "fullName": format!("Measured Person {i}"),
                            "email": format!("measured.person.{i}@example.com"),
                            "department": "Engineering", "title": "Engineer",
                            "location": "Berlin", "hireDate": "2024-01-15",
                            "managerEmail": "measured.person.0@example.com",
                            "active": true,
                        },
                    })
                })
                .collect();
            applied += chunk.len();
            apply_list(chunk, env.namespace.clone()).await;
        }
        // Settled: the Tenant counts every user Active, and the operator is idle again.
        let deadline = Instant::now() + Duration::from_secs(900);
        let mut peak = 0;
        loop {
            peak = peak.max(rss_kib(pid).0);
            let active = tenants
                .get("acme")
                .await
                .ok()
                .and_then(|t| t.status?.user_counts)
                .map_or(0, |c| c.active as usize);
            if active >= count {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{active} of {count} users Active in time"
            );
            assert!(child.try_wait().unwrap().is_none(), "the operator exited");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let took = started.elapsed();
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (settled, hwm) = rss_kib(pid);
        println!(
            "{count} users: applied and settled in {took:.0?}; VmRSS settled {} MiB, seen during {} MiB, peak (VmHWM) {} MiB",
            settled / 1024,
            peak / 1024,
            hwm / 1024
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
