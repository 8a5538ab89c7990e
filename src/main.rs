//! The `roster` command: the operator and its tools.

use clap::{Parser, Subcommand};

/// roster runs the leaver lifecycle of a learning platform's users on Kubernetes.
#[derive(Parser)]
#[command(name = "roster", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (what `crds/roster.yaml` holds).
    Crd,
    /// Build (or reuse) and start a local kube-apiserver + etcd on loopback, print
    /// the kubeconfig path, and run until interrupted.
    Controlplane,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => print!("{}", roster::crd::to_yaml()),
        Command::Controlplane => {
            let plane = tokio::task::spawn_blocking(roster::controlplane::ControlPlane::start).await??;
            println!("kubeconfig: {}", plane.kubeconfig_path().display());
            println!("KUBECONFIG={} kubectl get ns", plane.kubeconfig_path().display());
            tokio::signal::ctrl_c().await?;
            plane.stop();
        }
    }
    Ok(())
}
