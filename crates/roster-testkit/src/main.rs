//! `roster-controlplane` (`cargo controlplane`): builds (or reuses) and starts a local
//! kube-apiserver + etcd on loopback, prints the kubeconfig path, and runs until
//! interrupted. Test equipment: for poking at the CRDs by hand with kubectl.

fn main() {
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
