//! Fetching Resemblyzer's speaker encoder from PyPI: the wheel `Resemblyzer==0.1.4` carries
//! the weights as the member `resemblyzer/pretrained.pt`, unpacked like any pinned weights file
//! by [`fetch_pypi_weights`].

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fetch::{PypiWeights, fetch_pypi_weights};

/// PyPI package that ships the speaker encoder.
pub const RESEMBLYZER_PACKAGE: &str = "Resemblyzer";

/// Pinned version of [`RESEMBLYZER_PACKAGE`].
pub const RESEMBLYZER_VERSION: &str = "0.1.4";

/// sha256 of `pretrained.pt` in Resemblyzer 0.1.4, lowercase hex.
pub const RESEMBLYZER_WEIGHTS_SHA256: &str =
    "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e";

/// The speaker encoder's weights in Resemblyzer's wheel.
const RESEMBLYZER: PypiWeights = PypiWeights {
    package: RESEMBLYZER_PACKAGE,
    version: RESEMBLYZER_VERSION,
    member: "resemblyzer/pretrained.pt",
    sha256: RESEMBLYZER_WEIGHTS_SHA256,
};

/// Downloads Resemblyzer's wheel into `cache_dir` unless it is there, unpacks its weights to
/// `cache_dir/Resemblyzer-0.1.4/pretrained.pt` unless they are there with the pinned sha256,
/// and returns their path.
pub fn fetch_resemblyzer(cache_dir: &Path) -> Result<PathBuf> {
    fetch_pypi_weights(cache_dir, &RESEMBLYZER)
}
