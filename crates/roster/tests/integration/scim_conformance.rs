//! Independent SCIM conformance suites from PyPI (pinned in
//! `tests/conformance/scim-requirements.txt`) against the operator's SCIM endpoint on
//! the real API server, with the controllers running: `scim2-tester` (through
//! `scim2 test`) and `scim-sanity probe`. Both must pass in full; their reports go to
//! `target/conformance/` and `.ci/run` prints the summaries.
use std::path::PathBuf;
use std::process::Command;

use crate::scim::{Scim, Settings, tenant};
use crate::support::TestEnv;

const TOKEN: &str = "conformance-token";

fn unlimited() -> Settings {
    Settings {
        rate: Some((100_000, 100_000)),
        ..Default::default()
    }
}

fn report_dir() -> PathBuf {
    let dir = roster_testkit::repo_path("target/conformance");
    std::fs::create_dir_all(&dir).expect("create target/conformance");
    dir
}

async fn tools() -> PathBuf {
    tokio::task::spawn_blocking(|| {
        roster_testkit::python::ensure_venv("tests/conformance/scim-requirements.txt")
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("install the SCIM conformance tools: {e}"))
}

/// Runs a tool to the end; its whole output goes to `target/conformance/{name}.txt`.
async fn run(name: &'static str, mut command: Command) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(report_dir().join(format!("{name}.txt")), &text).unwrap();
    (out.status.success(), text)
}

#[tokio::test]
async fn scim2_tester_passes_in_full() {
    let env = TestEnv::new("scim-conformance").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, TOKEN).await;
    // The suites send requests as fast as they can; the tenant's rate limit is not
    // what they test.
    let scim = Scim::start(&env, TOKEN, true, unlimited()).await;
    let bin = tools().await;
    let mut command = Command::new(bin.join("scim2"));
    command
        .args([
            "--url",
            &scim.base,
            "test",
            "--check-status-code",
            "--check-content-type",
        ])
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {TOKEN}"))
        .env("NO_COLOR", "1");
    let (ok, text) = run("scim2-tester", command).await;
    let succeeded = text.matches("SUCCESS").count();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("CRITICAL") || l.contains("FAIL"))
        .collect();
    let summary = format!(
        "scim2-tester: {succeeded} checks SUCCESS, {} not; exit {}",
        failed.len(),
        if ok { 0 } else { 1 }
    );
    std::fs::write(report_dir().join("scim2-tester.summary"), &summary).unwrap();
    assert!(
        ok && failed.is_empty() && succeeded >= 100,
        "{summary}\n{text}"
    );
}

#[tokio::test]
async fn scim_sanity_passes_in_full() {
    let env = TestEnv::new("scim-sanity").await;
    let lms = crate::joiners::standin(false).await;
    tenant(&env, &lms, TOKEN).await;
    // The suites send requests as fast as they can; the tenant's rate limit is not
    // what they test.
    let scim = Scim::start(&env, TOKEN, true, unlimited()).await;
    let bin = tools().await;
    let mut command = Command::new(bin.join("scim-sanity"));
    command
        .args([
            "probe",
            &scim.base,
            "--token",
            TOKEN,
            "--i-accept-side-effects",
        ])
        .env("NO_COLOR", "1");
    let (ok, text) = run("scim-sanity", command).await;
    let summary = text
        .lines()
        .filter(|l| l.to_lowercase().contains("passed") || l.to_lowercase().contains("failed"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ");
    let summary = format!("scim-sanity: {summary}; exit {}", if ok { 0 } else { 1 });
    std::fs::write(report_dir().join("scim-sanity.summary"), &summary).unwrap();
    assert!(ok, "{summary}\n{text}");
}
