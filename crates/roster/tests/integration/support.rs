//! Shared equipment for the integration tests: one real control plane per test
//! process, the CRDs installed once, and a fresh namespace per test.
//!
//! Every test gets its own namespace, so tests run in parallel against the same
//! API server without seeing each other's objects. Nothing is cleaned up: the
//! control plane (and its etcd data) is thrown away when the test process exits.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use roster::clock::SystemClock;
use roster::controller::Options;
use roster::effects::Effects;
use roster_api::{DirectoryUser, Phase};
use roster_testkit::ControlPlane;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Field manager of every server-side apply the tests make.
pub const FIELD_MANAGER: &str = "roster-tests";

/// How long any single wait on the API server may take before the test fails.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The control plane of this test process, or why it could not be started (kept so
/// that a failed multi-minute build is reported by every test, not retried by each).
static PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// Set once the CRDs are applied and Established.
static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The shared control plane, started on first use. `ControlPlane::start` blocks
/// (it may build the binaries and polls readiness), so it runs on a blocking thread,
/// never on the test's runtime thread.
pub async fn control_plane() -> &'static ControlPlane {
    let plane = tokio::task::spawn_blocking(|| {
        PLANE.get_or_init(|| ControlPlane::start().map_err(|err| err.to_string()))
    })
    .await
    .expect("the control-plane start thread panicked");
    match plane {
        Ok(plane) => plane,
        Err(err) => panic!("cannot start the control plane: {err}"),
    }
}

/// A fresh admin client bound to the calling test's runtime (a kube client's
/// connection tasks belong to the runtime that created it, and each
/// `#[tokio::test]` has its own).
pub async fn client() -> Client {
    control_plane()
        .await
        .client()
        .await
        .expect("build an admin client for the control plane")
}

/// Applies roster's CRDs with server-side apply and waits until each is Established.
/// Runs once per process; later calls return at once.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| apply_crds(client)).await;
}

/// Applies what `crds/roster.yaml` holds and waits until every CRD is Established.
/// Idempotent: applying the same objects again is a no-op.
pub async fn apply_crds(client: &Client) {
    roster_testkit::install_crds(client, FIELD_MANAGER, WAIT_TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

/// Creates a namespace with a unique name that starts with `prefix` (shortened to fit
/// a DNS label) and returns its name.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let name = format!(
        "{}-{}-{:06x}",
        prefix.trim_matches('-'),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|err| panic!("create namespace {name}: {err}"));
    name
}

/// What most tests start with: an admin client, the CRDs installed, and a fresh
/// namespace named after the test.
pub struct TestEnv {
    pub client: Client,
    pub namespace: String,
}

impl TestEnv {
    pub async fn new(test_name: &str) -> Self {
        let client = client().await;
        install_crds(&client).await;
        let namespace = namespace(&client, test_name).await;
        Self { client, namespace }
    }

    /// A typed API for a namespaced resource in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Runs kubectl against the shared control plane and returns (success, stdout, stderr).
pub async fn kubectl(args: &[&str]) -> KubectlOutput {
    let mut command = control_plane().await.kubectl_command();
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("kubectl thread panicked")
        .expect("run kubectl");
    KubectlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    /// Panics with kubectl's output unless it succeeded.
    #[track_caller]
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.success,
            "{what} failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Repeats `attempt` until it returns `Some`, checking again every `interval`, for at
/// most [`WAIT_TIMEOUT`]. For state the API server publishes asynchronously and that
/// has no watchable condition (discovery, the OpenAPI document).
pub async fn poll<T, F, Fut>(what: &str, interval: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached within {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(interval).await;
    }
}

/// A running operator; stopped (gracefully) on `stop` or drop.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Operator {
    pub fn start(client: &Client, namespace: &str, effects: Arc<dyn Effects>) -> Self {
        let options = Options {
            namespaces: vec![namespace.to_string()],
            ..Options::default()
        };
        Self::start_with(client, options, effects)
    }

    /// Like [`Operator::start`], with the operator's settings (namespaces, endpoint
    /// policy) given.
    pub fn start_with(client: &Client, options: Options, effects: Arc<dyn Effects>) -> Self {
        // `ROSTER_TEST_LOG=1` shows the operator's logs (warnings and errors by default).
        if std::env::var_os("ROSTER_TEST_LOG").is_some() {
            roster::telemetry::init(roster::telemetry::LogFormat::Text);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(roster::controller::run(
            client.clone(),
            effects,
            Arc::new(SystemClock),
            Default::default(),
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops abruptly, like a crash: in-flight work is dropped.
    pub async fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The operator binary as a child process (so it can be killed with SIGKILL).
pub struct OperatorProcess {
    child: std::process::Child,
    /// Printed (its tail) when the process is dropped by a failing test.
    log: std::path::PathBuf,
    /// Its probe and metrics server, `http://127.0.0.1:<port>`.
    pub http: String,
}

impl OperatorProcess {
    pub fn start(namespace: &str, kubeconfig: &std::path::Path, log: &std::path::Path) -> Self {
        Self::start_with(namespace, kubeconfig, log, &[], &[])
    }

    /// Like [`start`](Self::start), with more arguments and environment variables; an
    /// empty `namespace` passes no `--namespace` (all namespaces, or a shard's).
    pub fn start_with(
        namespace: &str,
        kubeconfig: &std::path::Path,
        log: &std::path::Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let log_path = log.to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open operator log");
        let port = roster_testkit::process::free_port().expect("a free port");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["run", "--effects", "http", "--rate-limit", "1000"])
            .args(
                Some(format!("--namespace={namespace}"))
                    .filter(|_| !namespace.is_empty())
                    .as_slice(),
            )
            .args(["--log-format", "json"])
            .arg(format!("--http-addr=127.0.0.1:{port}"))
            .args(args)
            .envs(envs.iter().copied())
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start roster run");
        Self {
            child,
            log: log_path,
            http: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `GET` of one of its own endpoints (`/readyz`, `/metrics`): the status code and
    /// body, or `None` while it does not listen (yet).
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.http))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// The sum of one counter family's samples in `/metrics` whose labels contain
    /// `labels` (e.g. `code="429"`); 0 when absent.
    pub async fn counter(&self, family: &str, labels: &str) -> f64 {
        let Some((_, text)) = self.get("/metrics").await else {
            return 0.0;
        };
        text.lines()
            .filter(|line| line.starts_with(&format!("{family}{{")) && line.contains(labels))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            // An empty float sum is -0.0, which printed as "-0".
            .fold(0.0, |sum, value| sum + value)
    }

    /// Whether the process has exited (crashed or stopped), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no shutdown, no flush; in-flight calls and status writes are cut.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that fails while the operator runs: its own account explains why.
        if std::thread::panicking() {
            eprintln!(
                "--- the last lines of {}:\n{}",
                self.log.display(),
                roster_testkit::tail(&self.log, 40)
            );
        }
    }
}

/// The operator's HTTP effects as the tests use them: the stand-ins' calls are not
/// rate-limited.
pub fn effects(env: &TestEnv) -> Arc<roster::effects::platform::PlatformEffects> {
    use roster::effects::platform::{PlatformEffects, PlatformSettings};
    let settings = PlatformSettings {
        calls_per_second: std::num::NonZeroU32::new(1000).unwrap(),
        ..Default::default()
    };
    Arc::new(PlatformEffects::new(
        env.client.clone(),
        Arc::new(SystemClock),
        settings,
    ))
}

pub async fn apply<K: serde::Serialize + Clone + serde::de::DeserializeOwned + std::fmt::Debug>(
    api: &Api<K>,
    name: &str,
    object: &K,
) {
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|err| panic!("apply {name}: {err}"));
}

/// Waits (watching, no sleeps) until the user reaches `phase`.
pub async fn wait_phase(env: &TestEnv, name: &str, phase: Phase) -> DirectoryUser {
    wait_status(env, name, &format!("phase {phase}"), move |s| {
        s.phase == phase
    })
    .await
}

/// A Tenant spec as most tests need it: policy "standard", the learning platform at
/// `endpoint` with its token in Secret "lms" key "token", no calendar, UTC.
pub fn tenant_spec(endpoint: &str) -> roster_api::TenantSpec {
    use roster_api::tenant::{LearningPlatformConnection, LocalObjectRef, SecretKeyRef};
    roster_api::TenantSpec {
        display_name: "Acme Corp".into(),
        policy_ref: LocalObjectRef {
            name: "standard".into(),
        },
        learning_platform: LearningPlatformConnection {
            endpoint: endpoint.into(),
            credentials_secret_ref: SecretKeyRef {
                name: "lms".into(),
                key: "token".into(),
            },
        },
        calendar: Default::default(),
        locations: vec![],
        time_zone: "UTC".into(),
        group_rules: vec![],
        sources: Default::default(),
        suspend: false,
        deletion_protection: true,
        erasure_receipts: None,
    }
}

/// What kstatus (sigs.k8s.io/cli-utils, the library GitOps tools use) computes for
/// `object`: `Current`, `InProgress` or `Failed`, and its message. Builds the `kstatus`
/// command on first use.
pub async fn kstatus<K: serde::Serialize>(object: &K) -> (String, String) {
    use std::io::Write as _;
    let json = serde_json::to_vec(object).expect("serialize the object");
    tokio::task::spawn_blocking(move || {
        let binary = roster_testkit::binaries::ensure_kstatus().expect("build kstatus");
        let mut child = std::process::Command::new(binary)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kstatus");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(&json)
            .expect("write to kstatus");
        let output = child.wait_with_output().expect("kstatus output");
        assert!(
            output.status.success(),
            "kstatus failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let mut words = text.splitn(3, ' ');
        let _name = words.next();
        let status = words.next().unwrap_or_default().to_string();
        let message = words.next().unwrap_or_default().to_string();
        (status, message)
    })
    .await
    .expect("the kstatus thread panicked")
}

/// Waits until `name`'s status satisfies `check`, watching (never sleeping); on a
/// timeout the failure shows the status as it was.
pub async fn wait_status(
    env: &TestEnv,
    name: &str,
    what: &str,
    check: impl Fn(&roster_api::DirectoryUserStatus) -> bool + Send + 'static,
) -> DirectoryUser {
    let api = env.api::<DirectoryUser>();
    let seen = wait_for(api.clone(), name, move |user: Option<&DirectoryUser>| {
        user.and_then(|u| u.status.as_ref()).is_some_and(&check)
    })
    .await;
    match seen.flatten() {
        Some(user) => user,
        None => {
            let status = api.get(name).await.ok().and_then(|u| u.status);
            panic!("{name}: {what} not seen within {WAIT_TIMEOUT:?}; status: {status:#?}")
        }
    }
}

/// Watches the object `name` until `check` holds for it (or for its absence); returns
/// the object then, or `None` when [`WAIT_TIMEOUT`] passes first.
pub async fn wait_for<K>(
    api: Api<K>,
    name: &str,
    check: impl Fn(Option<&K>) -> bool + Send + 'static,
) -> Option<Option<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::time::timeout(WAIT_TIMEOUT, await_condition(api, name, check))
        .await
        .ok()
        .map(|watched| watched.expect("watch the object"))
}

/// Like [`wait_for`], but a timeout fails the test, naming `what` was awaited.
pub async fn wait_object<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    check: impl Fn(Option<&K>) -> bool + Send + 'static,
) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    wait_for(api, name, check)
        .await
        .unwrap_or_else(|| panic!("{name}: {what} not seen within {WAIT_TIMEOUT:?}"))
}

/// The condition `kind` of a user's status, if present.
pub fn condition<'a>(
    status: &'a roster_api::DirectoryUserStatus,
    kind: &str,
) -> Option<&'a roster_api::Condition> {
    status.conditions.iter().find(|c| c.r#type == kind)
}

/// The label a Secret needs for roster to use it (`roster.dev/credentials: "true"`).
pub fn credentials_labels() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([(
        roster_api::tenant::CREDENTIALS_LABEL.to_string(),
        "true".to_string(),
    )])
}

/// The learning platform's credentials Secret most tests' Tenants name ("lms", key
/// "token", labelled for roster), in `env`'s namespace.
pub async fn credentials_secret(env: &TestEnv) {
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            name: Some("lms".into()),
            labels: Some(credentials_labels()),
            ..Default::default()
        },
        string_data: Some(std::collections::BTreeMap::from([(
            "token".into(),
            "t".into(),
        )])),
        ..Default::default()
    };
    env.api::<k8s_openapi::api::core::v1::Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the credentials Secret");
}
