//! `roster-demo` (`cargo demo`): the whole people lifecycle on this machine in about a
//! minute, on a real kube-apiserver + etcd with stand-ins for the services roster calls.

use clap::Parser;

/// Shows the whole leaver lifecycle on this machine in about a minute.
///
/// Starts a local kube-apiserver + etcd, stand-ins for the learning platform and
/// Google Calendar seeded with a small fictional company, and the operator; a few
/// people leave in different ways; a summary of what changed downstream ends it.
/// Ctrl-C stops everything it started.
#[derive(Parser)]
#[command(name = "roster-demo", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    args: roster_demo::DemoArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    std::process::exit(roster_demo::run(cli.args).await);
}
