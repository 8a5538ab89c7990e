//! `roster-controlplane` (`cargo controlplane`): builds (or reuses) and starts a local
//! kube-apiserver + etcd on loopback, prints the kubeconfig path, and runs until
//! interrupted. Test equipment: for poking at the CRDs by hand with kubectl.
//!
//! `roster-controlplane helm-path` instead builds (or reuses) Helm from
//! `controlplane/helm` and prints its path, for `.ci/chart` (`helm lint`, `helm
//! template`); nothing is started.

fn main() {
    if std::env::args().nth(1).as_deref() == Some("helm-path") {
        match roster_testkit::binaries::ensure_helm() {
            Ok(helm) => println!("{}", helm.display()),
            Err(error) => {
                eprintln!("roster-controlplane: {error}");
                std::process::exit(1);
            }
        }
        return;
    }
    let plane = match roster_testkit::ControlPlane::start() {
        Ok(plane) => plane,
        Err(error) => {
            eprintln!("roster-controlplane: {error}");
            std::process::exit(1);
        }
    };
    println!(
        "kube-apiserver {} is ready at {}",
        plane.binaries().kubernetes_version,
        plane.server_url()
    );
    println!("export KUBECONFIG={}", plane.kubeconfig_path().display());
    println!("Press Ctrl-C to stop it.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a signal-handling runtime");
    if let Err(error) = runtime.block_on(tokio::signal::ctrl_c()) {
        eprintln!("roster-controlplane: cannot wait for Ctrl-C: {error}");
    }
    plane.stop();
}
