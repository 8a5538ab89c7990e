//! Python tools from PyPI (the SCIM conformance suites), installed into a virtualenv
//! cached outside the repository, keyed by a hash of their pinned requirements file,
//! so bumping a pin installs afresh and anything else reuses the venv.
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PythonError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use the cache directory {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {python:?} (is Python 3 on PATH? set ROSTER_PYTHON): {source}")]
    NoPython {
        python: String,
        source: std::io::Error,
    },
    #[error("`{step}` failed:\n{tail}")]
    Install { step: String, tail: String },
}

/// The `bin/` directory of a venv holding everything `requirements` (relative to the
/// repository) pins, creating it if missing.
pub fn ensure_venv(requirements: impl AsRef<Path>) -> Result<PathBuf, PythonError> {
    let requirements = crate::repo_path(requirements);
    let text = fs::read_to_string(&requirements).map_err(|source| PythonError::Read {
        path: requirements.clone(),
        source,
    })?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let root = crate::binaries::cache_dir().join("python");
    let venv = root.join(format!("{:016x}", hasher.finish()));
    let cache = |source| PythonError::Cache {
        path: root.clone(),
        source,
    };
    fs::create_dir_all(&root).map_err(cache)?;
    let lock = File::create(root.join(".install.lock")).map_err(cache)?;
    lock.lock().map_err(cache)?;
    let done = venv.join(".installed");
    if !done.exists() {
        let _ = fs::remove_dir_all(&venv);
        let python = std::env::var("ROSTER_PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            &python,
        )?;
        run(
            Command::new(venv.join("bin").join("pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "-r",
                ])
                .arg(&requirements),
            &python,
        )?;
        fs::write(&done, "").map_err(cache)?;
    }
    drop(lock);
    Ok(venv.join("bin"))
}

fn run(command: &mut Command, python: &str) -> Result<(), PythonError> {
    let step = format!("{command:?}");
    let out = command.output().map_err(|source| PythonError::NoPython {
        python: python.into(),
        source,
    })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(PythonError::Install {
            step,
            tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}
