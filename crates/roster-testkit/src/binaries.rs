//! Builds `kube-apiserver`, `kubectl`, `kube-controller-manager` and `etcd` from the pinned upstream Go modules
//! in `controlplane/`, once per version, into a cache outside the repository.
//!
//! The cache key is the pinned version plus a hash of the module files, so bumping a
//! version (or a dependency in `go.sum`) builds afresh and anything else reuses the
//! binaries. An exclusive file lock serializes concurrent builders: the second one
//! waits and then finds the binaries in place.

use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use thiserror::Error;

/// Where the binaries of one pinned version live.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub kube_apiserver: PathBuf,
    pub kubectl: PathBuf,
    /// Run only for the tests that need its namespace controller.
    pub kube_controller_manager: PathBuf,
    pub etcd: PathBuf,
    /// Pinned versions, e.g. `v1.37.2` and `v3.6.16`.
    pub kubernetes_version: String,
    pub etcd_version: String,
}

#[derive(Debug, Error)]
pub enum BuildError {
    #[error("cannot read the Go module at {path}: {source}")]
    ReadModule {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{module}/go.mod does not pin {dependency}")]
    NoPin {
        module: &'static str,
        dependency: &'static str,
    },
    #[error("cannot use the cache directory {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run `go` (is the Go toolchain installed and on PATH?): {0}")]
    NoGo(std::io::Error),
    #[error("`go build` of {module} failed; see {log}:\n{tail}")]
    GoBuild {
        module: &'static str,
        log: PathBuf,
        tail: String,
    },
}

/// The directory holding the Go modules (`controlplane/` in the repository).
pub fn source_dir() -> PathBuf {
    std::env::var_os("ROSTER_CONTROLPLANE_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_path("controlplane"))
}

/// The cache root: `$ROSTER_CACHE_DIR`, else `$XDG_CACHE_HOME/roster`, else `~/.cache/roster`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROSTER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("roster");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("roster")
}

/// Returns the binaries, building whichever are missing.
pub fn ensure() -> Result<Binaries, BuildError> {
    let src = source_dir();
    let apiserver = GoModule::read(&src, "apiserver", "k8s.io/kubernetes")?;
    let etcd = GoModule::read(&src, "etcd", "go.etcd.io/etcd/server/v3")?;
    let (root, lock) = locked_cache()?;

    let (minor, major) = minor_major(&apiserver.version);
    let ldflags = format!(
        "-X k8s.io/component-base/version.gitVersion={v} -X k8s.io/component-base/version.gitMajor={major} -X k8s.io/component-base/version.gitMinor={minor} -X k8s.io/client-go/pkg/version.gitVersion={v} -X k8s.io/client-go/pkg/version.gitMajor={major} -X k8s.io/client-go/pkg/version.gitMinor={minor}",
        v = apiserver.version
    );
    let k8s_dir = apiserver.build(
        &root,
        &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kubectl",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
        ],
        &["kube-apiserver", "kubectl", "kube-controller-manager"],
        &ldflags,
    )?;
    let etcd_dir = etcd.build(&root, &["."], &["etcd"], "")?;
    drop(lock);

    Ok(Binaries {
        kube_apiserver: k8s_dir.join("kube-apiserver"),
        kubectl: k8s_dir.join("kubectl"),
        kube_controller_manager: k8s_dir.join("kube-controller-manager"),
        etcd: etcd_dir.join("etcd"),
        kubernetes_version: apiserver.version,
        etcd_version: etcd.version,
    })
}

/// Returns `kstatus` (sigs.k8s.io/cli-utils' status library as a command, from the Go
/// module in `controlplane/kstatus`), building it if missing. Apart from [`ensure`]
/// so that only the tests that read kstatus pay for its build (about 30 s, once).
pub fn ensure_kstatus() -> Result<PathBuf, BuildError> {
    let src = source_dir();
    let module = GoModule::read(&src, "kstatus", "sigs.k8s.io/cli-utils")?;
    let (root, lock) = locked_cache()?;
    let dir = module.build(&root, &["."], &["kstatus"], "")?;
    drop(lock);
    Ok(dir.join("kstatus"))
}

/// Returns `helm` (from the Go module in `controlplane/helm`), building it if missing,
/// for the tests that render the chart (about 90 s, once).
pub fn ensure_helm() -> Result<PathBuf, BuildError> {
    let src = source_dir();
    let module = GoModule::read(&src, "helm", "helm.sh/helm/v3")?;
    let (root, lock) = locked_cache()?;
    let dir = module.build(&root, &["helm.sh/helm/v3/cmd/helm"], &["helm"], "")?;
    drop(lock);
    Ok(dir.join("helm"))
}

/// The build cache, held exclusively until the returned lock is dropped.
fn locked_cache() -> Result<(PathBuf, File), BuildError> {
    let root = cache_dir().join("controlplane");
    fs::create_dir_all(&root).map_err(|source| BuildError::Cache {
        path: root.clone(),
        source,
    })?;
    let lock_path = root.join(".build.lock");
    let lock = File::create(&lock_path).map_err(|source| BuildError::Cache {
        path: lock_path.clone(),
        source,
    })?;
    lock.lock().map_err(|source| BuildError::Cache {
        path: lock_path,
        source,
    })?;
    Ok((root, lock))
}

/// `v1.37.2` → (`37`, `1`).
fn minor_major(version: &str) -> (String, String) {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("0").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    (minor, major)
}

struct GoModule {
    name: &'static str,
    dir: PathBuf,
    version: String,
    content_hash: u64,
}

impl GoModule {
    fn read(src: &Path, name: &'static str, dependency: &'static str) -> Result<Self, BuildError> {
        let dir = src.join(name);
        let mut hasher = DefaultHasher::new();
        let mut version = None;
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|source| BuildError::ReadModule {
                path: dir.clone(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in &files {
            let text = fs::read_to_string(file).map_err(|source| BuildError::ReadModule {
                path: file.clone(),
                source,
            })?;
            if file.ends_with("go.mod") {
                version = text.lines().find_map(|line| {
                    let mut words = line.trim().trim_start_matches("require").split_whitespace();
                    (words.next() == Some(dependency))
                        .then(|| words.next().map(str::to_string))
                        .flatten()
                });
            }
            file.file_name().hash(&mut hasher);
            text.hash(&mut hasher);
        }
        let version = version.ok_or(BuildError::NoPin {
            module: name,
            dependency,
        })?;
        Ok(Self {
            name,
            dir,
            version,
            content_hash: hasher.finish(),
        })
    }

    /// Builds `packages` into `<root>/<name>-<version>-<hash>/` unless every output is
    /// already there. Builds into a scratch directory and renames it, so an interrupted
    /// build never leaves a half-filled cache entry.
    fn build(
        &self,
        root: &Path,
        packages: &[&str],
        outputs: &[&str],
        ldflags: &str,
    ) -> Result<PathBuf, BuildError> {
        let target = root.join(format!(
            "{}-{}-{:016x}",
            self.name, self.version, self.content_hash
        ));
        if outputs.iter().all(|o| target.join(o).is_file()) {
            return Ok(target);
        }
        let scratch = root.join(format!(".building-{}-{}", self.name, std::process::id()));
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Cache { path, source }
        };
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).map_err(cache_err(&scratch))?;
        let log = root.join(format!("{}-build.log", self.name));
        let log_file = File::create(&log).map_err(cache_err(&log))?;
        let log_err = log_file.try_clone().map_err(cache_err(&log))?;
        eprintln!(
            "roster: building {} {} from the Go module in {} (first time only; a few minutes)",
            self.name,
            self.version,
            self.dir.display()
        );
        let started = Instant::now();
        let mut command = Command::new("go");
        command
            .current_dir(&self.dir)
            .env("CGO_ENABLED", "0")
            .arg("build")
            .arg("-trimpath")
            .arg("-o")
            .arg(format!("{}/", scratch.display()));
        if !ldflags.is_empty() {
            command.arg("-ldflags").arg(ldflags);
        }
        command.args(packages).stdout(log_file).stderr(log_err);
        // Spawned like the control plane itself, so an interrupted caller (Ctrl-C in
        // the demo, a killed test) does not leave a compiler running.
        let status = super::process::spawn(command)
            .and_then(|mut child| {
                let status = child.wait();
                super::process::unregister(child.id());
                status
            })
            .map_err(BuildError::NoGo)?;
        if !status.success() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            return Err(BuildError::GoBuild {
                module: self.name,
                log,
                tail,
            });
        }
        let _ = fs::remove_dir_all(&target);
        fs::rename(&scratch, &target).map_err(cache_err(&target))?;
        eprintln!(
            "roster: built {} {} in {:.0?}",
            self.name,
            self.version,
            started.elapsed()
        );
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_versions_are_read_from_go_mod() {
        let src = source_dir();
        let k8s = GoModule::read(&src, "apiserver", "k8s.io/kubernetes").unwrap();
        let etcd = GoModule::read(&src, "etcd", "go.etcd.io/etcd/server/v3").unwrap();
        assert_eq!(k8s.version, "v1.37.2");
        assert_eq!(etcd.version, "v3.6.16");
    }

    #[test]
    fn version_splits_into_major_and_minor() {
        assert_eq!(minor_major("v1.37.2"), ("37".to_string(), "1".to_string()));
    }
}
