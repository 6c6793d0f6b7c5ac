//! `strata fsck`: verify every reachable blob and manifest.

use std::path::Path;

use crate::exit::{ExitError, STORE_DAMAGED};
use crate::home;

/// Runs `strata fsck`; exits with [`STORE_DAMAGED`] when problems are found.
pub(crate) fn run(home: &Path) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let report = store.fsck()?;
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!(
        "checked {} blobs ({}), {} problems",
        report.blobs_checked,
        crate::commands::import::human_bytes(report.bytes_checked),
        report.problems.len()
    );
    if report.problems.is_empty() {
        return Ok(());
    }
    Err(ExitError {
        code: STORE_DAMAGED,
        message: format!(
            "{}: the store has {} problems",
            home.display(),
            report.problems.len()
        ),
    }
    .into())
}
