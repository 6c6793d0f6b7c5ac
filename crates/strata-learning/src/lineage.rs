//! A version's lineage: the chain of parents back to the imported base, and the facts its
//! lessons taught.

use strata_model::{ModelConfig, media};
use strata_store::{Descriptor, Digest, Manifest, Reference, Store};

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

/// Finds a version of `versions` (newest first) by `~N` (N versions back) or by a digest
/// prefix of at least 4 hex digits.
pub fn pick_version<'a>(versions: &'a [Version], text: &str) -> Result<&'a Version> {
    let reject = |reason: String| LearnError::Version {
        reference: text.to_owned(),
        reason,
    };
    if let Some(steps) = text.strip_prefix('~') {
        let steps: usize = steps
            .parse()
            .map_err(|_| reject("`~N` needs a number of versions back".to_owned()))?;
        return versions.get(steps).ok_or_else(|| {
            reject(format!(
                "past the lineage, which has {} versions",
                versions.len()
            ))
        });
    }
    let prefix = text.strip_prefix("sha256:").unwrap_or(text);
    if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(reject(
            "give `~N` or a digest (at least 4 hex digits) from `strata log`".to_owned(),
        ));
    }
    let matches: Vec<&Version> = versions
        .iter()
        .filter(|version| version.digest.hex().starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(reject(
            "no version of this lineage starts with it; see `strata log`, and to move a tag forward to a newer version, `strata tag NAME@sha256:… NAME`".to_owned(),
        )),
        _ => Err(reject(format!(
            "matches {} versions; give more digits",
            matches.len()
        ))),
    }
}

/// Moves the tag `reference` back to the version `version` (as [`pick_version`] reads it) of
/// its lineage, unless another writer moved the tag meanwhile. Deletes nothing. Returns the
/// digests the tag pointed to before and after.
pub fn rollback(store: &Store, reference: &Reference, version: &str) -> Result<(Digest, Digest)> {
    let current = store.resolve(reference)?;
    let versions = lineage(store, &current.digest)?;
    let target = pick_version(&versions, version)?;
    let mut descriptor = Descriptor::new(
        strata_store::MANIFEST_MEDIA_TYPE,
        target.digest.clone(),
        store.blob_size(&target.digest)?,
    );
    descriptor.artifact_type = target.manifest.artifact_type.clone();
    store.set_tag_if(reference, &descriptor, Some(&current.digest))?;
    Ok((current.digest, target.digest.clone()))
}
