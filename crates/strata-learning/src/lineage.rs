//! A version's lineage: the chain of parents back to the imported base, and the facts its
//! lessons taught.

use strata_model::{ModelConfig, media};
use strata_store::{Digest, Manifest, Store};

use crate::error::{LearnError, Result};
use crate::lesson::Fact;
use crate::record::LearningRecord;

/// One version of a lineage.
#[derive(Clone, Debug)]
pub struct Version {
    /// Manifest digest.
    pub digest: Digest,
    /// The manifest.
    pub manifest: Manifest,
    /// The config document.
    pub config: ModelConfig,
    /// The learning record, for a learned version.
    pub record: Option<LearningRecord>,
}

/// Reads one model version's manifest and config.
pub fn read_version(store: &Store, digest: &Digest) -> Result<Version> {
    let manifest = store.read_manifest(digest)?;
    if manifest.config.media_type != media::MODEL_CONFIG_MEDIA_TYPE {
        return Err(LearnError::Version {
            reference: digest.to_string(),
            reason: format!(
                "its config is `{}`, not a model config",
                manifest.config.media_type
            ),
        });
    }
    let config: ModelConfig = serde_json::from_slice(&store.read_blob(&manifest.config.digest)?)?;
    let record = LearningRecord::of(&config)?;
    Ok(Version {
        digest: digest.clone(),
        manifest,
        config,
        record,
    })
}

/// Returns `digest` and its ancestors, newest first. `gc` keeps every ancestor of a tagged
/// version, so a missing parent means a damaged store: the chain ends there with a warning.
pub fn lineage(store: &Store, digest: &Digest) -> Result<Vec<Version>> {
    let mut versions = vec![read_version(store, digest)?];
    while let Some(parent) = versions.last().and_then(|v| v.config.strata.parent.clone()) {
        if versions.iter().any(|version| version.digest == parent) {
            return Err(LearnError::Version {
                reference: digest.to_string(),
                reason: format!("its lineage loops back to {parent}"),
            });
        }
        match read_version(store, &parent) {
            Ok(version) => versions.push(version),
            Err(LearnError::Store(error)) => {
                tracing::warn!(%parent, %error, "lineage ends at a missing parent");
                break;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(versions)
}

/// Collects every fact the lineage's lessons taught, oldest first; a later fact with the same question
/// replaces an earlier one.
pub fn facts(lineage: &[Version]) -> Vec<Fact> {
    let mut facts: Vec<Fact> = Vec::new();
    for version in lineage.iter().rev() {
        let Some(record) = &version.record else {
            continue;
        };
        for fact in &record.lesson.facts {
            facts.retain(|known| known.question != fact.question);
            facts.push(fact.clone());
        }
    }
    facts
}
