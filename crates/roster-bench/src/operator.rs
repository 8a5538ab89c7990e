//! The operator as a user runs it: the `roster` binary of the same build, in its own
//! process (so that its memory is its own), with in-memory effects or, for the soak,
//! HTTP effects against the stand-ins.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

pub struct Operator {
    child: Child,
    /// Started under `ROSTER_BENCH_WRAPPER`: the child is the profiler, the operator
    /// its child, both in a process group of their own.
    wrapped: bool,
    metrics: String,
    http: reqwest::Client,
}

/// The `roster` binary beside this one (`target/<profile>/roster`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("roster");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it with the same profile first (cargo build [--release] -p roster --bin roster)",
        path.display()
    );
    Ok(path)
}

impl Operator {
    /// With in-memory effects: the figures are the operator's and the API server's.
    pub async fn start(
        namespace: &str,
        kubeconfig: &Path,
        log: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_with_effects(namespace, kubeconfig, log, "memory", extra).await
    }

    /// With `effects` (`memory` or `http`).
    pub async fn start_with_effects(
        namespace: &str,
        kubeconfig: &Path,
        log: &Path,
        effects: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .context("open the operator log")?;
        // ROSTER_BENCH_WRAPPER runs the operator under a profiler (`heaptrack`, `perf
        // record -g --`): its words come before the binary.
        let wrapper = std::env::var("ROSTER_BENCH_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(binary()?);
                c
            }
            None => Command::new(binary()?),
        };
        let wrapped = !wrapper.trim().is_empty();
        if wrapped {
            // A group of its own, so that the wrapper's children end with it. (Not
            // otherwise: a Ctrl-C of the bench then reaches the operator too.)
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let child = command
            .args(["run", "--namespace", namespace, "--effects", effects])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            // ROSTER_BENCH_LOG (a RUST_LOG filter) to see what the operator does.
            .env(
                "RUST_LOG",
                std::env::var("ROSTER_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("start roster run")?;
        let operator = Self {
            child,
            wrapped,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            http: reqwest::Client::new(),
        };
        for _ in 0..200 {
            if operator.metric_text().await.is_ok() {
                return Ok(operator);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the operator did not serve /metrics within 10 s")
    }

    async fn metric_text(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(&self.metrics)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// The sum of every sample of `name` whose labels include `label` (`key="value"`).
    pub async fn metric(&self, name: &str, label: &str) -> anyhow::Result<f64> {
        let text = self.metric_text().await?;
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines)?;
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        let value = value.trim_matches('"');
        Ok(scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| key.is_empty() || s.labels.get(key) == Some(value))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum())
    }

    /// Reconciles of the DirectoryUser controller so far.
    pub async fn user_reconciles(&self) -> anyhow::Result<f64> {
        self.metric("roster_reconciles_total", "controller=\"directoryuser\"")
            .await
    }

    /// Waits until the DirectoryUser controller has run at least `at_least` reconciles
    /// and then none for `quiet`: the operator is idle.
    pub async fn wait_idle(&self, at_least: f64, quiet: Duration) -> anyhow::Result<()> {
        let mut last = -1.0;
        let mut since = tokio::time::Instant::now();
        loop {
            let now = self.user_reconciles().await?;
            if now != last {
                last = now;
                since = tokio::time::Instant::now();
            } else if now >= at_least && since.elapsed() >= quiet {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory (`VmRSS`) and its peak (`VmHWM`), in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or an evicted pod.
    pub fn kill(self) {
        drop(self)
    }
}

impl Drop for Operator {
    /// SIGKILL, as a crash; under a wrapper SIGTERM to the whole group instead, so
    /// that the operator ends too (killing only the wrapper left it running) and a
    /// profiler writes out what it recorded.
    fn drop(&mut self) {
        if self.wrapped {
            let group = -(self.child.id() as libc::pid_t);
            // SAFETY: kill(2) with a pid and a signal; it touches no memory.
            unsafe { libc::kill(group, libc::SIGTERM) };
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
