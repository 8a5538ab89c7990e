//! The operator's OCI image (`.ci/image` builds it into `target/image/roster-oci`)
//! starts and serves as the chart runs it: the layout is unpacked as a container
//! runtime would (index → manifest → config → layers, every digest checked), and the
//! image's entrypoint runs in the unpacked root filesystem as the image's user, with
//! the chart's arguments and environment and the in-cluster credentials of the chart's
//! ServiceAccount (a token the API server issues, mounted where the kubelet mounts it),
//! against the real API server. It answers `/readyz`, and its operator checks a Tenant
//! with only the chart's RBAC.
//!
//! The test runs `.ci/image` first (a release build, minutes the first time; `.ci/run`
//! has built it by then, so only the 2 s pack remains).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use roster_api::{ConditionStatus, DeprovisionPolicy, DeprovisionPolicySpec, Tenant};
use serde_json::Value;

use crate::support::{TestEnv, apply, control_plane, wait_object};

/// The cargo target directory `.ci/image` writes to.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| roster_testkit::repo_path("target"))
}

/// The image's tag: the chart's appVersion.
pub fn app_version() -> String {
    let chart = std::fs::read_to_string(roster_testkit::repo_path("charts/roster/Chart.yaml"))
        .expect("read Chart.yaml");
    let chart: Value = serde_yaml_ng::from_str(&chart).expect("Chart.yaml is YAML");
    chart["appVersion"]
        .as_str()
        .expect("Chart.yaml has an appVersion")
        .to_string()
}

/// What a runtime needs of an image: its unpacked root filesystem and its config.
struct Unpacked {
    rootfs: PathBuf,
    config: Value,
    /// Bytes a node pulls (the compressed layers) and bytes unpacked.
    compressed: u64,
}

/// `sha256:<hex>` of a file, by coreutils' `sha256sum`.
fn digest_of(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(output.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8(output.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// The blob of `descriptor`, after checking that its digest and size are what the
/// descriptor says.
fn blob(layout: &Path, descriptor: &Value) -> PathBuf {
    let digest = descriptor["digest"].as_str().expect("a digest");
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    let path = layout.join("blobs").join(algorithm).join(hex);
    assert_eq!(digest_of(&path), digest, "blob {digest} is intact");
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        Some(size),
        descriptor["size"].as_u64(),
        "blob {digest}: size"
    );
    path
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("a JSON blob")
}

/// Unpacks the image tagged `tag` in the OCI layout `layout` into `into/rootfs`.
fn unpack(layout: &Path, tag: &str, into: &Path) -> Unpacked {
    assert_eq!(
        read_json(&layout.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = read_json(&layout.join("index.json"));
    let descriptor = index["manifests"]
        .as_array()
        .expect("index.json lists manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {index}"));
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest = read_json(&blob(layout, descriptor));
    let config = read_json(&blob(layout, &manifest["config"]));
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    let rootfs = into.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut compressed = 0;
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(layers.len(), diff_ids.len(), "one diff_id per layer");
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let path = blob(layout, layer);
        compressed += layer["size"].as_u64().unwrap();
        // The diff_id is the digest of the uncompressed layer.
        let tar = into.join("layer.tar");
        let status = Command::new("sh")
            .arg("-c")
            .arg("gzip -dc \"$0\" > \"$1\"")
            .arg(&path)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(status.success(), "gunzip the layer");
        assert_eq!(digest_of(&tar), diff_id.as_str().unwrap(), "diff_id");
        let status = Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(status.success(), "untar the layer");
        std::fs::remove_file(&tar).unwrap();
    }
    Unpacked {
        rootfs,
        config,
        compressed,
    }
}

/// The OCI layout, (re)built by `.ci/image` first: a no-op build and a 2 s pack when
/// `.ci/run` has just built it, and never a stale image of an older tree.
fn layout() -> PathBuf {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(roster_testkit::repo_path(".ci/image"))
        .status()
        .expect("run .ci/image");
    assert!(status.success(), ".ci/image failed");
    eprintln!(".ci/image took {:.0?}", started.elapsed());
    target_dir().join("image/roster-oci")
}

/// The size of a directory tree's files, in bytes.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += tree_size(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// Whether an ELF file asks for a program interpreter (is dynamically linked).
fn is_dynamic(binary: &Path) -> bool {
    let output = Command::new("readelf")
        .arg("-l")
        .arg(binary)
        .output()
        .expect("run readelf (binutils)");
    assert!(output.status.success(), "readelf {}", binary.display());
    String::from_utf8_lossy(&output.stdout).contains("INTERP")
}

#[tokio::test]
async fn the_image_starts_as_the_chart_runs_it_and_answers_readyz() {
    let env = TestEnv::new("image").await;
    let tenants = crate::support::namespace(&env.client, "image-tenant").await;
    let tag = app_version();
    let layout = tokio::task::spawn_blocking(layout).await.unwrap();
    let work = std::env::temp_dir().join(format!("roster-image-{}", env.namespace));
    let _ = std::fs::remove_dir_all(&work);
    roster_testkit::process::remove_at_exit(work.clone());
    let image = unpack(&layout, &tag, &work);
    let rootfs = image.rootfs.clone();
    let config = &image.config["config"];
    println!(
        "image {tag}: {} KiB compressed, {} KiB unpacked",
        image.compressed / 1024,
        tree_size(&rootfs) / 1024
    );

    // What the image is: the operator as the non-root user the chart names, nothing
    // else to run (no shell), a static binary (no libc in the image), CA certificates
    // and the SBOM.
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/roster"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    assert!(config["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    let entrypoint = rootfs.join("usr/local/bin/roster");
    assert!(
        !is_dynamic(&entrypoint),
        "the entrypoint is statically linked"
    );
    for absent in ["bin/sh", "usr/bin/sh", "lib", "usr/lib"] {
        assert!(
            !rootfs.join(absent).exists(),
            "/{absent} is not in the image"
        );
    }
    for present in [
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/doc/roster/sbom/roster.cdx.json",
        "etc/passwd",
    ] {
        assert!(rootfs.join(present).is_file(), "/{present} is in the image");
    }
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], tag.as_str());

    // The chart, installed with the tenant namespace (and plain http to loopback, where
    // this test's endpoints live); the Deployment is what the container is started from.
    let docs = crate::chart::render(
        &env.namespace,
        &[
            "--set",
            &format!("tenantNamespaces={{{tenants}}}"),
            "--set",
            "endpointPolicy.loopbackHttp=true",
        ],
    )
    .await;
    crate::chart::apply_rendered(&docs, &env.namespace, false).await;
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart renders a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/roster-dev/roster:{tag}"),
        "the chart's default image is the one this layout is tagged as"
    );
    assert_eq!(
        (
            pod["securityContext"]["runAsUser"].as_u64(),
            pod["securityContext"]["runAsGroup"].as_u64()
        ),
        (Some(65532), Some(65532)),
        "the chart runs the image's user"
    );
    let port = roster_testkit::process::free_port().unwrap();
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .map(|a| {
            if a.starts_with("--http-addr=") {
                // The chart's 0.0.0.0:8080 is the pod's own; here, a free loopback port.
                format!("--http-addr=127.0.0.1:{port}")
            } else {
                a
            }
        })
        .collect();

    // The ServiceAccount's credentials where the kubelet mounts them.
    let account = docs
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("the chart renders a ServiceAccount")
        .to_string();
    let token = crate::chart::service_account_token(&env.client, &env.namespace, &account).await;
    let plane = control_plane().await;
    let kubeconfig = kube::config::Kubeconfig::read_from(plane.kubeconfig_path()).unwrap();
    let ca = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.certificate_authority.clone())
        .expect("the control plane's CA file");
    let mount = rootfs.join("var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::write(mount.join("token"), &token).unwrap();
    std::fs::copy(&ca, mount.join("ca.crt")).unwrap();
    std::fs::write(mount.join("namespace"), &env.namespace).unwrap();
    let server = url::Url::parse(plane.server_url()).unwrap();

    // The environment: the image's, the chart's (its fieldRefs resolved as the kubelet
    // would) and the kubelet's service variables.
    let mut envs: BTreeMap<String, String> = config["Env"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|v| v.as_str()?.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_string();
        let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.name") => "roster-image-test-0".to_string(),
            Some("metadata.namespace") => env.namespace.clone(),
            Some(other) => panic!("the chart's env names a field this test does not know: {other}"),
            None => var["value"].as_str().unwrap_or_default().to_string(),
        };
        envs.insert(name, value);
    }
    envs.insert("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into());
    envs.insert(
        "KUBERNETES_SERVICE_PORT".into(),
        server.port().unwrap().to_string(),
    );
    envs.insert("RUST_LOG".into(), "info".into());

    let entry: Vec<String> = config["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let log_path = work.join("roster.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(&entry[0]);
    command
        .args(&entry[1..])
        .args(&args)
        .env_clear()
        .envs(&envs)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    assert!(
        root,
        "the image test runs the entrypoint in its root filesystem as its user, which needs root (chroot, setuid)"
    );
    let user: Vec<u32> = config["User"]
        .as_str()
        .unwrap()
        .split(':')
        .map(|n| n.parse().unwrap())
        .collect();
    let started = Instant::now();
    let mut child = roster_testkit::process::spawn_chrooted(command, &rootfs, user[0], user[1])
        .expect("start the image's entrypoint");

    // /readyz: 503 while starting, 200 once the lease watcher (leader election is on in
    // the chart) and the controllers run.
    let http = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let ready_after =
        crate::support::poll("the image's /readyz", Duration::from_millis(100), || {
            let http = http.clone();
            let readyz = readyz.clone();
            let child_exited = child.try_wait().ok().flatten();
            let log_path = log_path.clone();
            async move {
                if let Some(status) = child_exited {
                    panic!(
                        "the image's entrypoint exited with {status}:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                let response = http.get(&readyz).send().await.ok()?;
                (response.status() == 200).then(|| started.elapsed())
            }
        })
        .await;
    println!("the image answered /readyz 200 after {ready_after:.1?}");
    for path in ["healthz", "metrics"] {
        let response = http
            .get(format!("http://127.0.0.1:{port}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "/{path}");
    }

    // It works as the operator, with the chart's rules only: a Tenant is checked.
    let tenant_env = TestEnv {
        client: env.client.clone(),
        namespace: tenants.clone(),
    };
    crate::support::credentials_secret(&tenant_env).await;
    apply(
        &tenant_env.api::<DeprovisionPolicy>(),
        "standard",
        &DeprovisionPolicy::new("standard", DeprovisionPolicySpec::default()),
    )
    .await;
    apply(
        &tenant_env.api::<Tenant>(),
        "acme",
        &Tenant::new(
            "acme",
            crate::support::tenant_spec("http://127.0.0.1:1/api/v1"),
        ),
    )
    .await;
    wait_object(tenant_env.api::<Tenant>(), "acme", "Ready", |t| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "Ready" && c.status == ConditionStatus::True)
        })
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    roster_testkit::process::unregister(child.id());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "the chart's logFormat json: every log line is JSON:\n{logs}"
    );
    assert!(logs.contains("roster starting"), "{logs}");
}
