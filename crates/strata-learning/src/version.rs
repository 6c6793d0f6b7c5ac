//! Committing a learned version: the parent's layers with the new lesson's adapter and key
//! tensors, a config that records the lesson and its route, and the tag moved only if it still
//! names the parent.

use chrono::Utc;
use strata_model::{GgmlType, ModelConfig, media};
use strata_runtime::train::AdapterSet;
use strata_store::{Descriptor, Digest, Manifest, Reference, Store, StoreError};

use crate::error::{LearnError, Result};
use crate::lineage::Version;
use crate::record::{LearningRecord, SOURCE_KIND};
use crate::routing::{self, Router};

/// A lesson ready to commit: its number, adapters and keys, and the routes the new version has
/// with it added.
#[derive(Debug)]
pub struct RoutedLesson<'a> {
    /// The lesson's number.
    pub id: u32,
    /// Its adapters.
    pub adapters: &'a AdapterSet,
    /// Its keys, unit vectors of equal length.
    pub keys: &'a [Vec<f32>],
    /// The new version's routes, this lesson included.
    pub router: &'a Router,
}

/// Writes the new version, the parent's layers followed by the lesson's tensors, and moves
/// `reference` to it if it still points at `parent`.
///
/// Blobs are written under the store's writer guard and the tag moves last, so a failure leaves
/// every tag as it was.
pub fn commit_lesson(
    store: &Store,
    reference: &Reference,
    parent: &Version,
    lesson: &RoutedLesson,
    record: &LearningRecord,
) -> Result<Descriptor> {
    let _guard = store.writer()?;
    let mut added = Vec::new();
    for (name, shape, bytes) in lesson
        .adapters
        .to_prefixed(&routing::adapter_prefix(lesson.id))?
    {
        added.push(tensor_layer(store, &name, &shape, &bytes)?);
    }
    let dim = lesson.keys.first().map_or(0, Vec::len);
    let key_bytes: Vec<u8> = lesson
        .keys
        .iter()
        .flatten()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let keys_name = routing::keys_tensor(lesson.id);
    added.push(tensor_layer(
        store,
        &keys_name,
        &[lesson.keys.len(), dim],
        &key_bytes,
    )?);

    let mut layers = Vec::with_capacity(parent.manifest.layers.len() + added.len());
    let mut inserted = false;
    for layer in &parent.manifest.layers {
        if layer.media_type != media::WEIGHT_MEDIA_TYPE && !inserted {
            layers.append(&mut added);
            inserted = true;
        }
        layers.push(layer.clone());
    }
    layers.append(&mut added);

    let mut config = lineage_config(&parent.config, &parent.digest, &layers, record)?;
    config.strata.routes = Some(lesson.router.to_info());
    write_version(store, reference, parent, layers, &config)
}

/// Stores `config` and a manifest of `layers`, then moves the tag.
fn write_version(
    store: &Store,
    reference: &Reference,
    parent: &Version,
    layers: Vec<Descriptor>,
    config: &ModelConfig,
) -> Result<Descriptor> {
    let config_bytes = serde_json::to_vec_pretty(config)?;
    let config_digest = store.put_blob(&config_bytes)?;
    let config_descriptor = Descriptor::new(
        media::MODEL_CONFIG_MEDIA_TYPE,
        config_digest,
        config_bytes.len() as u64,
    );
    let mut manifest = Manifest::new(config_descriptor, layers);
    manifest.artifact_type = Some(media::MODEL_ARTIFACT_TYPE.to_string());
    let descriptor = store.put_manifest(&manifest)?;

    move_tag(store, reference, &descriptor, &parent.digest)?;
    tracing::info!(%reference, digest = %descriptor.digest, parent = %parent.digest, "committed learned version");
    Ok(descriptor)
}

/// Moves `reference` to `descriptor` only if it still names `parent`.
pub(crate) fn move_tag(
    store: &Store,
    reference: &Reference,
    descriptor: &Descriptor,
    parent: &Digest,
) -> Result<()> {
    match store.set_tag_if(reference, descriptor, Some(parent)) {
        Ok(_) => Ok(()),
        Err(StoreError::TagMoved {
            reference,
            expected,
            actual,
        }) => Err(LearnError::Moved {
            reference,
            expected,
            actual,
        }),
        Err(error) => Err(error.into()),
    }
}

/// Builds the child's config from the parent's: its layers, parent, source and record.
fn lineage_config(
    parent: &ModelConfig,
    parent_digest: &Digest,
    layers: &[Descriptor],
    record: &LearningRecord,
) -> Result<ModelConfig> {
    let mut config = parent.clone();
    config.descriptor.created_at = Utc::now();
    config.modelfs.diff_ids = layers.iter().map(|layer| layer.digest.clone()).collect();
    config.strata.parent = Some(parent_digest.clone());
    config.strata.source = strata_model::config::Source {
        kind: SOURCE_KIND.to_string(),
        file: record.lesson.summary(),
        sha256: None,
    };
    config.strata.learning = Some(serde_json::to_value(record)?);
    Ok(config)
}

/// Stores one f32 tensor as a weight layer.
fn tensor_layer(store: &Store, name: &str, shape: &[usize], bytes: &[u8]) -> Result<Descriptor> {
    let digest = store.put_blob(bytes)?;
    let size = bytes.len() as u64;
    Ok(media::tensor_layer(
        digest,
        size,
        name,
        GgmlType::F32,
        shape,
    ))
}
