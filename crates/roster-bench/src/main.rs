//! `roster-bench`: roster's speed measured on a real kube-apiserver + etcd (built and
//! started by roster-testkit), each figure printed beside the API server's own figure
//! for the same kind of request in the same run, since these machines are noisy:
//! ratios, not absolute times. Results also go to `target/bench/*.json`.
//!
//! ```text
//! cargo run --release -p roster-bench -- scim --users 10000
//! cargo build --release -p roster --bin roster && cargo run --release -p roster-bench -- lifecycle --users 10000
//! cargo build --release -p roster --bin roster && cargo run --release -p roster-bench -- soak --users 10000 --minutes 60
//! ```
mod apiserver;
mod cpu;
mod lifecycle;
mod observer;
mod operator;
mod raw;
mod scim;
mod soak;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "roster-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SCIM: `userName eq` lookups and deactivation PATCHes against a tenant of N
    /// users, beside raw GETs and merge patches of the same objects.
    Scim(scim::Args),
    /// The operator at scale: first start, restart, memory, writes at rest, waves of
    /// leavers and simultaneous deadlines, beside raw LISTs and patches.
    Lifecycle(lifecycle::Args),
    /// An hour (by default) at N users with steady churn (joiners, movers, leavers,
    /// reversals) and injected faults, HTTP effects against the learning-platform
    /// stand-in: RSS, deadlines, duplicates and lost work at the end.
    Soak(soak::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Scim(args) => scim::run(args).await,
        Command::Lifecycle(args) => lifecycle::run(args).await,
        Command::Soak(args) => soak::run(args).await,
    }
}
