//! Fetching Resemblyzer's speaker encoder from PyPI: the wheel `Resemblyzer==0.1.4` carries
//! the weights as the member `resemblyzer/pretrained.pt`.
//!
//! pip downloads the wheel into the cache directory, as for text embedders. Python's `zipfile`
//! copies the member to `CACHE/Resemblyzer-0.1.4/pretrained.pt.partial-PID`, which is renamed to
//! `pretrained.pt` only once its sha256 matches the pin. So an interrupted fetch never leaves a
//! file that looks complete.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{FetchError, Result};
use crate::fetch::{create_dir, download_wheel, sha256_file, stderr_text};

/// PyPI package that ships the speaker encoder.
pub const RESEMBLYZER_PACKAGE: &str = "Resemblyzer";

/// Pinned version of [`RESEMBLYZER_PACKAGE`].
pub const RESEMBLYZER_VERSION: &str = "0.1.4";

/// sha256 of `pretrained.pt` in Resemblyzer 0.1.4, lowercase hex.
pub const RESEMBLYZER_WEIGHTS_SHA256: &str =
    "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e";

/// The weights' path inside the wheel.
const WEIGHTS_MEMBER: &str = "resemblyzer/pretrained.pt";

/// Copies one member out of a wheel. Arguments: wheel, member, output file.
const EXTRACT_SCRIPT: &str = r#"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, open(out, "wb") as sink:
    shutil.copyfileobj(source, sink, 1 << 20)
"#;

/// Downloads Resemblyzer's wheel into `cache_dir` unless it is there, unpacks its weights to
/// `cache_dir/Resemblyzer-0.1.4/pretrained.pt` unless they are there with the pinned sha256,
/// and returns their path.
pub fn fetch_resemblyzer(cache_dir: &Path) -> Result<PathBuf> {
    let dir = cache_dir.join(format!("{RESEMBLYZER_PACKAGE}-{RESEMBLYZER_VERSION}"));
    let weights = dir.join("pretrained.pt");
    if weights.is_file() && sha256_file(&weights)? == RESEMBLYZER_WEIGHTS_SHA256 {
        tracing::debug!(path = %weights.display(), "using unpacked speaker encoder");
        return Ok(weights);
    }

    create_dir(&dir)?;
    let wheel = download_wheel(cache_dir, RESEMBLYZER_PACKAGE, RESEMBLYZER_VERSION)?;
    let partial = dir.join(format!("pretrained.pt.partial-{}", std::process::id()));
    let unpacked = extract(&wheel, &partial)
        .and_then(|()| check_sha256(&partial, &wheel))
        .and_then(|()| rename(&partial, &weights));
    if unpacked.is_err() {
        let _ = fs::remove_file(&partial);
    }
    unpacked?;
    tracing::info!(path = %weights.display(), "unpacked speaker encoder");
    Ok(weights)
}

fn extract(wheel: &Path, out: &Path) -> Result<(), FetchError> {
    let output = Command::new("python3")
        .args(["-c", EXTRACT_SCRIPT])
        .arg(wheel)
        .arg(WEIGHTS_MEMBER)
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

fn check_sha256(path: &Path, wheel: &Path) -> Result<(), FetchError> {
    let actual = sha256_file(path)?;
    if actual != RESEMBLYZER_WEIGHTS_SHA256 {
        return Err(FetchError::Checksum {
            path: path.to_path_buf(),
            wheel: wheel.to_path_buf(),
            expected: RESEMBLYZER_WEIGHTS_SHA256,
            actual,
        });
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), FetchError> {
    fs::rename(from, to).map_err(|source| FetchError::Io {
        operation: "rename unpacked weights to",
        path: to.to_path_buf(),
        source,
    })
}
