//! `strata rm`: untag models; their blobs are removed by the next `strata gc`.

use std::path::Path;

use anyhow::Context;

use crate::cli::RmArgs;
use crate::commands::import::parse_tag_reference;
use crate::home;

/// Runs `strata rm MODEL…`.
pub(crate) fn run(home: &Path, args: &RmArgs) -> anyhow::Result<()> {
    let references = args
        .models
        .iter()
        .map(|text| parse_tag_reference(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = home::open_store(home)?;
    for reference in &references {
        store
            .remove_tag(reference)
            .with_context(|| format!("cannot remove `{reference}`"))?;
        eprintln!("deleted `{reference}`");
    }
    Ok(())
}
