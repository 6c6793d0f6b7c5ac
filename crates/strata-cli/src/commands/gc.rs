//! `strata gc`: remove unreachable blobs and leftover temporary files.

use std::path::Path;

use crate::commands::import::human_bytes;
use crate::home;

/// Runs `strata gc`.
pub(crate) fn run(home: &Path) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let report = store.gc()?;
    eprintln!(
        "removed {} blobs ({}) and {} temporary files",
        report.blobs_removed,
        human_bytes(report.bytes_freed),
        report.tmp_removed
    );
    Ok(())
}
