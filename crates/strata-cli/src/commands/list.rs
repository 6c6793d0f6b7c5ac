//! `strata list`: one line per tag with its digest, size and creation time.

use std::io::Write;
use std::path::Path;

use strata_model::{ModelConfig, media};
use strata_store::{Store, TagEntry};

use crate::commands::import::human_bytes;
use crate::home;

/// Runs `strata list`.
pub(crate) fn run(home: &Path) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let mut out = std::io::stdout().lock();
    let tags = store.list_tags()?.into_iter().filter(is_model_tag);
    writeln!(out, "{:<32} {:<14} {:>10}  CREATED", "NAME", "ID", "SIZE")?;
    let mut unreadable = 0;
    for entry in tags {
        match describe(&store, &entry) {
            Ok(row) => writeln!(out, "{row}")?,
            Err(error) => {
                unreadable += 1;
                eprintln!("strata: `{}` cannot be read: {error:#}", entry.reference);
            }
        }
    }
    if unreadable > 0 {
        anyhow::bail!(
            "{}: {unreadable} tags cannot be read; run `strata fsck` to see what is damaged",
            home.display()
        );
    }
    Ok(())
}

/// Session snapshots have their own listing, `strata session list`.
fn is_model_tag(entry: &TagEntry) -> bool {
    !entry
        .reference
        .name
        .starts_with(strata_sessions::TAG_PREFIX)
}

fn describe(store: &Store, entry: &TagEntry) -> anyhow::Result<String> {
    let manifest = store.read_manifest(&entry.descriptor.digest)?;
    let size: u64 = manifest.layers.iter().map(|layer| layer.size).sum();
    let created = if manifest.config.media_type == media::MODEL_CONFIG_MEDIA_TYPE {
        let config: ModelConfig =
            serde_json::from_slice(&store.read_blob(&manifest.config.digest)?)?;
        config
            .descriptor
            .created_at
            .format("%Y-%m-%d %H:%M")
            .to_string()
    } else {
        "-".to_string()
    };
    Ok(format!(
        "{:<32} {:<14} {:>10}  {created}",
        entry.reference.to_string(),
        entry.descriptor.digest.short(),
        human_bytes(size)
    ))
}
