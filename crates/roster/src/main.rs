//! The `roster` command: the operator and its tools.

use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use roster::telemetry::{self, LogFormat};

/// roster runs the leaver lifecycle of a learning platform's users on Kubernetes:
/// access revoked at once, a reversible quarantine, commitments handed over,
/// PII anonymized and purged before the legal deadline.
#[derive(Parser)]
#[command(name = "roster", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster in KUBECONFIG (or the in-cluster config).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as YAML (what `crds/roster.yaml` holds).
    Crd,
    /// Import people from a file, the way the Tenant's scheduled source does.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Approve (or, with --reject, reject) the removals the mass-deprovisioning guard
    /// holds for a tenant.
    Approve {
        /// The tenant's namespace.
        #[arg(long = "tenant")]
        namespace: String,
        /// Reject instead: the held users go back to Active and stay there until their
        /// record changes again.
        #[arg(long)]
        reject: bool,
    },
    /// Check the erasure receipts of a tenant's namespace: every chain's sequence,
    /// links, hashes and signatures. Exits 1 when any chain has a gap, a reordering,
    /// an alteration or a bad or missing signature, 2 when there are no receipts.
    VerifyErasure {
        /// The tenant's namespace.
        #[arg(long = "tenant")]
        namespace: String,
        /// The signing key's Secret (`NAME/KEY`), instead of the one the chain names.
        #[arg(long, value_name = "NAME/KEY")]
        key_secret: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import an HR CSV file into a tenant (the CSV source's path: status, Events,
    /// field manager `roster-csv`).
    Csv {
        /// The CSV file.
        file: std::path::PathBuf,
        /// The tenant's namespace.
        #[arg(long = "tenant")]
        namespace: String,
        /// Print what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the desired DirectoryUsers as manifests here (for Git) instead of
        /// applying them.
        #[arg(long)]
        output_dir: Option<std::path::PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only these namespaces, comma-separated or repeated (default: all
    /// namespaces). Namespaced Roles in each are then enough (the Helm value
    /// `tenantNamespaces` renders them).
    #[arg(long = "namespace", env = "ROSTER_NAMESPACE", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Reconciles running at once per controller (and per watched namespace).
    #[arg(long, env = "ROSTER_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Log line format.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Where side effects go: `http` calls the learning platform and calendar APIs each
    /// Tenant names; `memory` only records them in-process (for trying roster out).
    #[arg(long, env = "ROSTER_EFFECTS", value_enum, default_value_t = EffectsKind::Http)]
    effects: EffectsKind,
    /// Calls per second per tenant and connector (learning platform, calendar).
    #[arg(long, env = "ROSTER_RATE_LIMIT", default_value_t = std::num::NonZeroU32::new(20).expect("non-zero"))]
    rate_limit: std::num::NonZeroU32,
    /// Hosts a Tenant's endpoints may name (`lms.example.com`, `*.googleapis.com`),
    /// comma-separated; empty allows any host not refused otherwise. Link-local and
    /// metadata addresses are always refused, also after DNS.
    #[arg(long, env = "ROSTER_ALLOWED_ENDPOINT_HOSTS", value_delimiter = ',')]
    allowed_endpoint_hosts: Vec<String>,
    /// Hosts that may be called over plain http (besides loopback), comma-separated.
    #[arg(long, env = "ROSTER_ALLOW_HTTP_HOSTS", value_delimiter = ',')]
    allow_http_hosts: Vec<String>,
    /// Refuse plain http to loopback too (it serves the stand-ins of tests and the demo).
    #[arg(long, env = "ROSTER_NO_LOOPBACK_HTTP")]
    no_loopback_http: bool,
    /// Bound on each outbound HTTP request, in seconds.
    #[arg(long, env = "ROSTER_HTTP_TIMEOUT_SECONDS", default_value_t = 10)]
    http_timeout_seconds: u64,
    /// Address of the health (`/healthz`, `/readyz`) and metrics (`/metrics`) server.
    #[arg(long, env = "ROSTER_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Only reconcile while holding a Lease, so several replicas can run (one active).
    #[arg(long, env = "ROSTER_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader Lease (default `roster-leader`, or `roster-leader-SHARD`).
    #[arg(long)]
    lease_name: Option<String>,
    /// Take only the tenant namespaces labelled `roster.dev/shard=SHARD`, beside other
    /// Deployments of roster that take other shards (docs/performance.md, scaling out).
    #[arg(long, env = "ROSTER_SHARD", conflicts_with = "namespaces", value_parser = shard_name)]
    shard: Option<String>,
    /// Seconds before a silent leader's lease can be taken over.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Serve SCIM 2.0 for identity providers on this address (plain HTTP: terminate
    /// TLS at an Ingress or a sidecar, docs/scim.md). Off when not given.
    #[arg(long, env = "ROSTER_SCIM_ADDR")]
    scim_addr: Option<std::net::SocketAddr>,
    /// SCIM requests per second per Tenant; above it, 429 with Retry-After.
    #[arg(long, env = "ROSTER_SCIM_RATE_LIMIT", default_value_t = std::num::NonZeroU32::new(50).expect("non-zero"))]
    scim_rate_limit: std::num::NonZeroU32,
    /// SCIM requests a Tenant may send at once above the rate.
    #[arg(long, env = "ROSTER_SCIM_BURST", default_value_t = std::num::NonZeroU32::new(100).expect("non-zero"))]
    scim_burst: std::num::NonZeroU32,
    /// The SCIM endpoint's public origin (`https://scim.example.com`), for `Location`.
    #[arg(long, env = "ROSTER_SCIM_PUBLIC_ORIGIN")]
    scim_public_origin: Option<String>,
}

fn shard_name(name: &str) -> Result<String, String> {
    roster::shard::check_name(name).map(|()| name.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
enum EffectsKind {
    Http,
    Memory,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => print!("{}", roster_api::to_yaml()),
        Command::Approve { namespace, reject } => {
            let client = kube::Client::try_default().await?;
            roster::feeds::approve::approve(
                client,
                &roster::clock::SystemClock,
                &namespace,
                if reject {
                    roster::feeds::approve::Answer::Reject
                } else {
                    roster::feeds::approve::Answer::Approve
                },
                &mut std::io::stdout(),
            )
            .await?;
        }
        Command::VerifyErasure {
            namespace,
            key_secret,
        } => {
            let key = match key_secret.as_deref().map(|s| s.split_once('/')) {
                None => None,
                Some(Some((name, key))) => Some(roster_api::tenant::SecretKeyRef {
                    name: name.into(),
                    key: key.into(),
                }),
                Some(None) => anyhow::bail!("--key-secret takes NAME/KEY, e.g. receipts-key/key"),
            };
            let client = kube::Client::try_default().await?;
            let reports =
                roster::receipts::verify::namespace(&client, &namespace, key.as_ref()).await?;
            if reports.is_empty() {
                println!("no erasure receipts in namespace {namespace}");
                std::process::exit(2);
            }
            for report in &reports {
                println!("{}", report.render());
            }
            if reports.iter().any(|r| !r.verification.ok()) {
                std::process::exit(1);
            }
        }
        Command::Import(ImportCommand::Csv {
            file,
            namespace,
            dry_run,
            output_dir,
        }) => {
            let client = kube::Client::try_default().await?;
            let args = roster::feeds::import::ImportArgs {
                file,
                namespace,
                dry_run,
                output_dir,
            };
            roster::feeds::import::import_csv(
                client,
                Arc::new(roster::clock::SystemClock),
                &args,
                &mut std::io::stdout(),
            )
            .await?;
        }
        Command::Run(args) => {
            telemetry::init(args.log_format);
            let metrics = Arc::new(roster::metrics::Metrics::default());
            let apiserver = Arc::new(roster::apiserver::ApiServerHealth::default());
            let client = roster::apiserver::client(metrics.clone(), apiserver.clone()).await?;
            // One policy for both: the effects enforce it, the Tenant controller reports it.
            let endpoints = roster_connectors::endpoint::EndpointPolicy {
                allowed_hosts: args.allowed_endpoint_hosts.clone(),
                http_hosts: args.allow_http_hosts.clone(),
                allow_loopback_http: !args.no_loopback_http,
            };
            let effects: Arc<dyn roster::effects::Effects> = match args.effects {
                EffectsKind::Memory => Arc::new(roster::effects::memory::MemoryEffects::unlogged()),
                EffectsKind::Http => Arc::new(roster::effects::platform::PlatformEffects::new(
                    client.clone(),
                    Arc::new(roster::clock::SystemClock),
                    roster::effects::platform::PlatformSettings {
                        calls_per_second: args.rate_limit,
                        timeout: std::time::Duration::from_secs(args.http_timeout_seconds),
                        endpoints: endpoints.clone(),
                        ..Default::default()
                    },
                )),
            };
            let options = roster::controller::Options {
                concurrency: args.concurrency,
                namespaces: args.namespaces,
                instance: std::env::var("POD_NAME").ok(),
                endpoints,
                apiserver: apiserver.clone(),
            };
            let leadership = args.leader_election.then(|| roster::operator::Leadership {
                namespace: args.lease_namespace.clone(),
                lease_name: args
                    .lease_name
                    .clone()
                    .unwrap_or_else(|| match &args.shard {
                        Some(shard) => format!("roster-leader-{shard}"),
                        None => "roster-leader".into(),
                    }),
                duration_seconds: args.lease_duration_seconds,
            });
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "roster starting");
            let scim = args.scim_addr.map(|addr| roster::scim::Settings {
                requests_per_second: args.scim_rate_limit,
                burst: args.scim_burst,
                public_origin: args.scim_public_origin.clone(),
                ..roster::scim::Settings::new(addr)
            });
            roster::operator::run(roster::operator::Process {
                client,
                metrics,
                apiserver,
                effects,
                options,
                leadership,
                http_addr: args.http_addr,
                scim,
                shard: args.shard,
            })
            .await?;
        }
    }
    Ok(())
}
