//! Where the store lives: `--home`, then `$STRATA_HOME`, then `~/.strata`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Environment variable naming the store directory.
pub(crate) const HOME_ENV: &str = "STRATA_HOME";

/// Picks the store directory without creating it.
pub(crate) fn resolve(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(HOME_ENV).filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let Some(user_home) = std::env::var_os("HOME").filter(|value| !value.is_empty()) else {
        bail!("cannot find the store: `$HOME` is not set; set `$STRATA_HOME` or pass `--home DIR`");
    };
    Ok(PathBuf::from(user_home).join(".strata"))
}

/// Opens (creating if needed) the store at `home`.
pub(crate) fn open_store(home: &Path) -> anyhow::Result<strata_store::Store> {
    strata_store::Store::open(home)
        .with_context(|| format!("{}: cannot open the store", home.display()))
}
