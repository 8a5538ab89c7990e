//! Test equipment: a real local control plane, `etcd` + `kube-apiserver` on loopback.
//!
//! Architecture invariant: never a dependency of the operator (`.ci/run` checks the
//! operator's dependency tree); tests and the demo use it, production never does.
//!
//! Tests and the demo run against this, never against a fake API server. The
//! binaries are built from the upstream Go modules pinned in `controlplane/`
//! ([`binaries`]); this module starts them on free ports with generated credentials,
//! waits for `/readyz`, writes a kubeconfig, and stops them again ([`process`]
//! guarantees no orphans, also when the caller panics or is killed).
//!
//! No controller-manager runs unless a test asks for its namespace controller
//! ([`ControlPlane::start_namespace_controller`]); owner references are never
//! garbage-collected, which roster's tests do not rely on.

pub mod binaries;
mod install;
pub mod process;
pub mod python;
pub mod sshd;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use thiserror::Error;

pub use binaries::Binaries;
pub use install::{InstallError, install_crds};

/// A path inside this repository (the workspace root), for tests and tools that read
/// checked-in files (examples, charts, the Go modules of `controlplane/`).
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(relative)
}

/// How long the API server may take to become ready (it is ~1.5 s on 2 cores).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts with fresh ports, in case another process grabbed a port we picked.
const START_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum ControlPlaneError {
    #[error(transparent)]
    Build(#[from] binaries::BuildError),
    #[error("control plane I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate credentials: {0}")]
    Credentials(#[from] rcgen::Error),
    #[error("{process} exited before the API server was ready; last log lines:\n{log}")]
    Exited { process: &'static str, log: String },
    #[error("the API server was not ready within {0:?}")]
    NotReady(Duration),
}

/// Identities the API server accepts (static bearer tokens).
#[derive(Clone, Debug)]
pub struct Identities {
    /// In `system:masters`.
    pub admin_token: String,
    /// Authenticated but without any RBAC grant, for least-privilege tests.
    pub unprivileged_token: String,
    /// User `roster-operator`, in no group: not exempt from API Priority and Fairness
    /// (as `system:masters` is), so a test can have the API server throttle it. It has no
    /// RBAC grant until a test binds one.
    pub operator_token: String,
}

/// A running etcd + kube-apiserver pair (and, once asked for, a kube-controller-manager
/// running only the namespace controller). Stopped on drop.
pub struct ControlPlane {
    dir: PathBuf,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    /// How each was started, so a fault test can kill it and start it again on the same
    /// ports, certificates and data.
    etcd_command: Launch,
    apiserver_command: Launch,
    controller_manager: std::sync::Mutex<Option<Child>>,
    kubeconfig: PathBuf,
    server: String,
    identities: Identities,
    binaries: Binaries,
}

impl ControlPlane {
    /// Builds (or reuses) the binaries and starts a fresh control plane. Blocking: it
    /// spawns processes and polls readiness, so call it from a plain thread or with
    /// `spawn_blocking` inside async code.
    pub fn start() -> Result<Self, ControlPlaneError> {
        let binaries = binaries::ensure()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binaries) {
                Ok(plane) => return Ok(plane),
                Err(err @ ControlPlaneError::Exited { .. }) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or(ControlPlaneError::NotReady(READY_TIMEOUT)))
    }

    fn start_once(binaries: &Binaries) -> Result<Self, ControlPlaneError> {
        let dir = std::env::temp_dir().join(format!(
            "roster-controlplane-{}-{:08x}",
            std::process::id(),
            rand::rng().random::<u32>()
        ));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ControlPlaneError::Io { path, source }
        };
        fs::create_dir_all(dir.join("certs")).map_err(io(&dir))?;
        process::remove_at_exit(dir.clone());

        let identities = Identities {
            admin_token: random_token(),
            unprivileged_token: random_token(),
            operator_token: random_token(),
        };
        let tokens = dir.join("tokens.csv");
        fs::write(
            &tokens,
            format!(
                "{},roster-admin,roster-admin,\"system:masters\"\n{},roster-unprivileged,roster-unprivileged,\n{},roster-operator,roster-operator,\n",
                identities.admin_token, identities.unprivileged_token, identities.operator_token
            ),
        )
        .map_err(io(&tokens))?;
        // The signing key is PKCS#8, which the API server reads for signing but not as a
        // verification key (it only takes PKIX public keys or SEC1/PKCS#1 private keys
        // there), so the public half goes into a file of its own.
        let sa_keypair = rcgen::KeyPair::generate()?;
        let sa_key = dir.join("service-account.key");
        fs::write(&sa_key, sa_keypair.serialize_pem()).map_err(io(&sa_key))?;
        let sa_pub = dir.join("service-account.pub");
        fs::write(&sa_pub, sa_keypair.public_key_pem()).map_err(io(&sa_pub))?;

        let etcd_client = process::free_port().map_err(io(&dir))?;
        let etcd_peer = process::free_port().map_err(io(&dir))?;
        let secure_port = process::free_port().map_err(io(&dir))?;

        let etcd_log = dir.join("etcd.log");
        let mut etcd = Command::new(&binaries.etcd);
        etcd.arg("--name=roster")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!(
                "--listen-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
            ))
            .arg(format!(
                "--initial-cluster=roster=http://127.0.0.1:{etcd_peer}"
            ))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let etcd_command = Launch::of(&etcd, etcd_log);
        let etcd = etcd_command.spawn()?;

        let apiserver_log = dir.join("kube-apiserver.log");
        let cert_dir = dir.join("certs");
        let mut apiserver = Command::new(&binaries.kube_apiserver);
        apiserver
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_client}"))
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg(format!("--secure-port={secure_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg("--endpoint-reconciler-type=none")
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", sa_pub.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                sa_key.display()
            ))
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--authorization-mode=RBAC")
            .arg(format!("--token-auth-file={}", tokens.display()))
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--profiling=false")
            .arg("--v=0");
        let apiserver_command = Launch::of(&apiserver, apiserver_log);
        let mut plane = Self {
            etcd: Some(etcd),
            apiserver: None,
            etcd_command,
            apiserver_command,
            controller_manager: std::sync::Mutex::new(None),
            kubeconfig: dir.join("kubeconfig"),
            server: format!("https://127.0.0.1:{secure_port}"),
            identities,
            binaries: binaries.clone(),
            dir,
        };
        plane.apiserver = Some(plane.apiserver_command.spawn()?);
        plane.write_kubeconfig(&cert_dir.join("apiserver.crt"))?;
        plane.wait_ready()?;
        Ok(plane)
    }

    fn write_kubeconfig(&self, ca: &Path) -> Result<(), ControlPlaneError> {
        for (path, current) in [
            (&self.kubeconfig, "roster-local"),
            (&self.operator_kubeconfig(), "roster-operator"),
        ] {
            let text = self.kubeconfig_text(ca, current);
            fs::write(path, text).map_err(|source| ControlPlaneError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn kubeconfig_text(&self, ca: &Path, current_context: &str) -> String {
        let mut text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: roster-local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n",
            server = self.server,
            ca = ca.display(),
        );
        let identities = [
            ("roster-local", "roster-admin", &self.identities.admin_token),
            (
                "roster-unprivileged",
                "roster-unprivileged",
                &self.identities.unprivileged_token,
            ),
            (
                "roster-operator",
                "roster-operator",
                &self.identities.operator_token,
            ),
        ];
        for (_, user, token) in identities {
            let _ = write!(text, "- name: {user}\n  user:\n    token: {token}\n");
        }
        text += "contexts:\n";
        for (context, user, _) in identities {
            let _ = write!(
                text,
                "- name: {context}\n  context:\n    cluster: roster-local\n    user: {user}\n    namespace: default\n"
            );
        }
        let _ = writeln!(text, "current-context: {current_context}");
        text
    }

    fn operator_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig-operator")
    }

    /// Polls `/readyz` through kubectl (which also proves the kubeconfig works).
    fn wait_ready(&mut self) -> Result<(), ControlPlaneError> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            for (name, child) in [
                ("etcd", &mut self.etcd),
                ("kube-apiserver", &mut self.apiserver),
            ] {
                if let Some(child) = child
                    && let Ok(Some(_)) = child.try_wait()
                {
                    let log = tail(&self.dir.join(format!("{name}.log")), 30);
                    return Err(ControlPlaneError::Exited { process: name, log });
                }
            }
            let ready = self
                .kubectl_command()
                .args(["get", "--raw=/readyz", "--request-timeout=2s"])
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"ok"));
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ControlPlaneError::NotReady(READY_TIMEOUT))
    }

    /// Path of a kubeconfig whose current context is the admin (`system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig whose current context is the `roster-operator` user
    /// ([`Identities::operator_token`]), for running the operator as an identity that API
    /// Priority and Fairness treats like a real operator's service account.
    pub fn operator_kubeconfig_path(&self) -> PathBuf {
        self.operator_kubeconfig()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// A `kubectl` command bound to this control plane's kubeconfig.
    /// Its discovery cache lives with the control plane, so it neither fills
    /// `~/.kube/cache` nor sees a previous control plane that used the same port.
    pub fn kubectl_command(&self) -> Command {
        let mut command = Command::new(&self.binaries.kubectl);
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .env_remove("KUBERNETES_SERVICE_HOST");
        command
    }

    /// A kube client authenticated as the admin identity.
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        self.client_for_context("roster-local").await
    }

    /// A kube client with no RBAC grants.
    pub async fn unprivileged_client(&self) -> Result<kube::Client, kube::Error> {
        self.client_for_context("roster-unprivileged").await
    }

    async fn client_for_context(&self, context: &str) -> Result<kube::Client, kube::Error> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let kubeconfig =
            Kubeconfig::read_from(&self.kubeconfig).map_err(kube::Error::InferKubeconfig)?;
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(kube::Error::InferKubeconfig)?;
        kube::Client::try_from(config)
    }

    /// Starts kube-controller-manager with only the namespace controller, so that
    /// deleted namespaces are emptied and finalized as on a real cluster. Idempotent.
    /// Off by default: most tests never delete a namespace, and every other
    /// controller would act on their objects.
    pub fn start_namespace_controller(&self) -> Result<(), ControlPlaneError> {
        let mut running = self
            .controller_manager
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            return Ok(());
        }
        let log = self.dir.join("kube-controller-manager.log");
        let mut command = Command::new(&self.binaries.kube_controller_manager);
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--controllers=namespace")
            .arg("--leader-elect=false")
            .arg("--secure-port=0")
            .arg("--concurrent-namespace-syncs=4")
            .arg("--v=0");
        *running = Some(spawn_logged(command, &log)?);
        Ok(())
    }

    /// The process IDs of kube-apiserver and etcd while they run (a benchmark accounts
    /// their CPU time).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        [("kube-apiserver", &self.apiserver), ("etcd", &self.etcd)]
            .into_iter()
            .filter_map(|(name, child)| Some((name, child.as_ref()?.id())))
            .collect()
    }

    /// SIGKILLs kube-apiserver (a fault test's crash of the control plane): clients see
    /// refused connections until [`start_apiserver`](Self::start_apiserver).
    pub fn kill_apiserver(&mut self) {
        if let Some(child) = self.apiserver.take() {
            kill_child(child);
        }
    }

    /// Starts kube-apiserver again on the same port, certificates and etcd, and waits
    /// until it is ready. A no-op while it runs.
    pub fn start_apiserver(&mut self) -> Result<(), ControlPlaneError> {
        if self.apiserver.is_none() {
            self.apiserver = Some(self.apiserver_command.spawn()?);
        }
        self.wait_ready()
    }

    /// SIGKILLs etcd: the API server stays up, but every request that needs storage
    /// fails (5xx) or waits until [`start_etcd`](Self::start_etcd).
    pub fn kill_etcd(&mut self) {
        if let Some(child) = self.etcd.take() {
            kill_child(child);
        }
    }

    /// Starts etcd again on the same ports and data directory, and waits until the API
    /// server is ready on it again. A no-op while it runs.
    pub fn start_etcd(&mut self) -> Result<(), ControlPlaneError> {
        if self.etcd.is_none() {
            self.etcd = Some(self.etcd_command.spawn()?);
        }
        self.wait_ready()
    }

    /// Stops every process and removes the data directory.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let manager = self
            .controller_manager
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for child in [manager, self.apiserver.take(), self.etcd.take()]
            .into_iter()
            .flatten()
        {
            stop_child(child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A process's command line and log file, to start it (again).
struct Launch {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    log: PathBuf,
}

impl Launch {
    fn of(command: &Command, log: PathBuf) -> Self {
        Self {
            program: PathBuf::from(command.get_program()),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            log,
        }
    }

    /// Starts it, appending to its log (a restart keeps the earlier lines).
    fn spawn(&self) -> Result<Child, ControlPlaneError> {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        spawn_logged(command, &self.log)
    }
}

fn spawn_logged(mut command: Command, log: &Path) -> Result<Child, ControlPlaneError> {
    let io = |source| ControlPlaneError::Io {
        path: log.to_path_buf(),
        source,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io)?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(io)?)
        .stderr(file);
    process::spawn(command).map_err(io)
}

/// SIGTERM, then SIGKILL after a grace period; always reaps.
fn stop_child(mut child: Child) {
    let pid = child.id();
    // SAFETY: signalling a child we own.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            process::unregister(pid);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    process::unregister(pid);
}

/// SIGKILL, no grace: a crash.
fn kill_child(mut child: Child) {
    let pid = child.id();
    let _ = child.kill();
    let _ = child.wait();
    process::unregister(pid);
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `lines` lines of a log file (empty when it cannot be read): what a failing
/// test prints of a process it ran.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
