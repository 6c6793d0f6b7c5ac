//! `strata fsck`: verify every reachable blob and manifest.

use std::path::Path;

use crate::exit::{ExitError, STORE_DAMAGED};
use crate::home;

/// Formats `count` with `noun`, adding an `s` unless the count is one.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Runs `strata fsck`; exits with [`STORE_DAMAGED`] when problems are found.
pub(crate) fn run(home: &Path) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let report = store.fsck()?;
    for problem in &report.problems {
        println!("{problem}");
    }
    let sessions = strata_sessions::check_all(&store)?;
    for problem in &sessions {
        println!("{problem}");
    }
    let problems = report.problems.len() + sessions.len();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "checked {} ({}), {}",
        plural(report.blobs_checked, "blob"),
        crate::commands::import::human_bytes(report.bytes_checked),
        plural(problems, "problem")
    );
    if problems == 0 {
        return Ok(());
    }
    Err(ExitError {
        code: STORE_DAMAGED,
        message: format!(
            "{}: the store has {}",
            home.display(),
            plural(problems, "problem")
        ),
    }
    .into())
}
