//! `roster import csv FILE --tenant NAMESPACE`: a one-off import of a local file
//! through the same path as the scheduled one (read → plan → apply → status and
//! Events). `--dry-run` only prints the plan; `--output-dir` writes the desired
//! DirectoryUsers as manifests (for Git) instead of applying them.
//!
//! What it prints names users by object name and rows by number, never a value; the
//! manifests in `--output-dir` are the records themselves (that is what they are for).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use anyhow::{Context as _, bail};
use kube::api::ListParams;
use kube::runtime::events::Reporter;
use kube::{Api, Client, ResourceExt};
use roster_api::Tenant;
use roster_feeds::Change;

use super::Source;
use super::sync::{self, Applied, Feeds};
use crate::clock::Clock;

/// The command's settings.
#[derive(Clone, Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// The tenant's namespace (it holds one Tenant).
    pub namespace: String,
    pub dry_run: bool,
    pub output_dir: Option<PathBuf>,
}

/// Runs the import and prints what it did to `out`. Fails when the file or the
/// Tenant cannot be read; rejected rows are printed, the others still apply.
pub async fn import_csv(
    client: Client,
    clock: Arc<dyn Clock>,
    args: &ImportArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let tenants: Vec<Tenant> = Api::<Tenant>::namespaced(client.clone(), &args.namespace)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("list the Tenants of namespace {}", args.namespace))?
        .items;
    let tenant = match tenants.as_slice() {
        [one] => one.clone(),
        [] => bail!("namespace {} has no Tenant", args.namespace),
        _ => bail!(
            "namespace {} has {} Tenants; a tenant namespace holds one",
            args.namespace,
            tenants.len()
        ),
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("read {}", args.file.display()))?;
    let write_nothing = args.dry_run || args.output_dir.is_some();
    let result = sync::apply_bytes(
        &client,
        &tenant,
        Source::Csv,
        &bytes,
        write_nothing,
        clock.now(),
    )
    .await;
    if write_nothing {
        let applied = result.map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        print_plan(out, &applied, args.dry_run)?;
        if let Some(dir) = &args.output_dir {
            let written = write_manifests(dir, &tenant, &applied)?;
            writeln!(out, "wrote {written} manifests to {}", dir.display())?;
        }
        return Ok(());
    }
    let feeds = Feeds {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "roster".into(),
                instance: Some("roster-import".into()),
            },
            clock.clone(),
        ),
        clock,
        endpoints: Default::default(),
        timeout: Duration::from_secs(30),
    };
    let failure = result.as_ref().err().map(|e| e.message());
    let outcome = sync::conclude(&feeds, &tenant, Source::Csv, result).await;
    if let Some(message) = failure {
        bail!("{message}");
    }
    let s = &outcome.sync;
    writeln!(
        out,
        "{}: {} rows read, {} created, {} updated, {} removed from the feed, {} rejected, {} unchanged",
        tenant.name_any(),
        s.rows_read.unwrap_or(0),
        s.created,
        s.updated,
        s.removed,
        s.rejected,
        s.unchanged.unwrap_or(0)
    )?;
    if let Some(held) = &outcome.held {
        writeln!(out, "  {}", held.note())?;
    }
    for row in outcome.rejected.iter().chain(&outcome.notes) {
        writeln!(out, "  {row}")?;
    }
    Ok(())
}

fn print_plan(
    out: &mut dyn std::io::Write,
    applied: &Applied,
    dry_run: bool,
) -> anyhow::Result<()> {
    let plan = &applied.plan;
    writeln!(
        out,
        "{}{} rows read: {} to create, {} to update, {} to reactivate, {} removed from the feed, {} rejected, {} unchanged",
        if dry_run { "dry run: " } else { "" },
        applied.snapshot.rows_read,
        plan.count(Change::Create),
        plan.count(Change::Update),
        plan.count(Change::Reactivate),
        plan.count(Change::Remove),
        applied.snapshot.rejected_rows(),
        plan.unchanged
    )?;
    for write in &plan.writes {
        writeln!(out, "  {} {}", write.change.as_str(), write.name)?;
    }
    for row in applied.snapshot.errors.iter().chain(&plan.notes) {
        writeln!(out, "  {row}")?;
    }
    Ok(())
}

/// One YAML manifest per desired DirectoryUser (written or not): `DIR/<name>.yaml`.
fn write_manifests(dir: &Path, tenant: &Tenant, applied: &Applied) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let namespace = tenant.namespace().unwrap_or_default();
    for write in &applied.plan.desired {
        let manifest = serde_json::json!({
            "apiVersion": "roster.dev/v1alpha1",
            "kind": "DirectoryUser",
            "metadata": { "name": write.name, "namespace": namespace },
            "spec": write.spec,
        });
        let path = dir.join(format!("{}.yaml", write.name));
        let yaml = serde_yaml_ng::to_string(&manifest).context("serialize a manifest")?;
        std::fs::write(&path, yaml).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(applied.plan.desired.len())
}
