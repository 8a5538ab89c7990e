//! Process wiring for `roster run`: the probe/metrics server, the watches, the SCIM
//! endpoint, leader election and the controllers. Every replica serves probes and SCIM
//! and keeps the caches warm; only the Lease holder reconciles, and a
//! replica that loses the lease exits so that it restarts clean (its deadlines live in
//! status, so nothing is moved or skipped by the handover).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{info, warn};

use crate::apiserver::ApiServerHealth;
use crate::clock::SystemClock;
use crate::controller::{self, Options, Watches};
use crate::effects::Effects;
use crate::metrics::Metrics;
use crate::probes::{Health, router};

/// Leader-election settings.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// Namespace of the Lease (the operator's own namespace).
    pub namespace: String,
    pub lease_name: String,
    /// Seconds a lease stays valid without renewal; a new leader takes over within this.
    pub duration_seconds: u64,
}

/// What `roster run` runs.
pub struct Process {
    /// Observed into `metrics` and `apiserver` (see [`crate::apiserver::client`]).
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub apiserver: Arc<ApiServerHealth>,
    pub effects: Arc<dyn Effects>,
    pub options: Options,
    pub leadership: Option<Leadership>,
    pub http_addr: SocketAddr,
    pub scim: Option<crate::scim::Settings>,
    /// Take only the namespaces labelled into this shard ([`crate::shard`]).
    pub shard: Option<String>,
}

/// Runs the operator until SIGINT/SIGTERM (or until leadership is lost, or its shard's
/// namespaces change).
pub async fn run(process: Process) -> anyhow::Result<()> {
    let Process {
        client,
        metrics,
        apiserver,
        effects,
        mut options,
        leadership,
        http_addr,
        scim,
        shard,
    } = process;
    tokio::spawn(crate::memory::trim_periodically());
    tokio::spawn(crate::apiserver::probe_while_down(
        client.clone(),
        apiserver.clone(),
    ));
    // A shard's namespaces are fixed for the life of the process; a change ends it.
    let shard_changed = match &shard {
        None => futures::FutureExt::shared(futures::FutureExt::boxed(std::future::pending())),
        Some(shard) => {
            let serving = crate::shard::namespaces(&client, shard)
                .await
                .context("list the shard's namespaces")?;
            info!(shard, namespaces = serving.len(), "serving a shard");
            options.namespaces = serving.iter().cloned().collect();
            futures::FutureExt::shared(futures::FutureExt::boxed(crate::shard::changed(
                client.clone(),
                shard.clone(),
                serving,
            )))
        }
    };
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    if shard.is_some() && options.namespaces.is_empty() {
        // Watching no namespace is not watching all of them: wait for the first.
        serve_probes(
            http_addr,
            Arc::new(Health {
                apiserver,
                ..Health::default()
            }),
            metrics,
        )
        .await?;
        info!("the shard has no namespace yet; waiting for one to be labelled into it");
        tokio::select! {
            _ = shard_changed => {},
            _ = shutdown_signal() => {},
        }
        return Ok(());
    }
    // Every replica watches (the SCIM endpoint reads the caches; a standby that takes
    // over starts on warm stores); only the leader runs the controllers on them.
    let watches = Watches::start(&client, &options.namespaces);
    if let Some(settings) = scim {
        let serving = crate::scim::start(
            client.clone(),
            clock.clone(),
            metrics.clone(),
            &watches,
            settings,
        )
        .await?;
        info!(addr = %serving.addr, "serving SCIM");
    }
    let health = Arc::new(Health {
        apiserver,
        ..Health::default()
    });
    serve_probes(http_addr, health, metrics.clone()).await?;

    let lost_leadership: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> =
        match leadership {
            None => Box::pin(std::future::pending()),
            Some(lease) => {
                let manager = LeaseManagerBuilder::new(client.clone(), &lease.lease_name)
                    .with_namespace(&lease.namespace)
                    .with_duration(lease.duration_seconds)
                    .with_grace(lease.duration_seconds.div_ceil(3).max(1))
                    .with_identity(
                        options
                            .instance
                            .clone()
                            .unwrap_or_else(|| format!("roster-{}", std::process::id())),
                    )
                    .build()
                    .await
                    .context("create the lease manager")?;
                let (mut leader, _task) = manager.watch().await;
                info!(lease = lease.lease_name, "waiting for leadership");
                while !*leader.borrow_and_update() {
                    tokio::select! {
                        changed = leader.changed() => changed.context("lease watcher stopped")?,
                        _ = shutdown_signal() => return Ok(()),
                        _ = shard_changed.clone() => return Ok(()),
                    }
                }
                info!("acquired leadership");
                metrics.leader.set(1);
                Box::pin(async move {
                    while *leader.borrow_and_update() {
                        if leader.changed().await.is_err() {
                            break;
                        }
                    }
                })
            }
        };

    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let reason = tokio::select! {
            _ = shutdown_signal() => "signal",
            _ = lost_leadership => "lost leadership",
            _ = shard_changed => "shard changed",
        };
        let _ = stopped_tx.send(reason);
    });
    let (reason_tx, mut reason_rx) = tokio::sync::watch::channel("");
    controller::run_on(
        &watches,
        client,
        effects,
        clock,
        metrics.clone(),
        options,
        async move {
            let reason = stopped_rx.await.unwrap_or("signal");
            let _ = reason_tx.send(reason);
        },
    )
    .await;
    metrics.leader.set(0);
    let reason = *reason_rx.borrow_and_update();
    if reason == "lost leadership" {
        anyhow::bail!("lost the leader lease; exiting so a fresh process can compete again");
    }
    info!("roster stopped");
    Ok(())
}

/// Serves the probes and metrics, ready at once: a standby replica is ready to take over.
async fn serve_probes(
    http_addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("bind {http_addr}"))?;
    let app = router(health.clone(), metrics);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "probe server stopped");
        }
    });
    health.ready.store(true, Ordering::Relaxed);
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (Kubernetes stopping the pod).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
