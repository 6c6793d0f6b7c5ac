//! Committing a learned version: the parent's layers with the new adapter's tensors, a config
//! that records the lesson, and the tag moved only if it still names the parent.

use chrono::Utc;
use strata_model::{GgmlType, ModelConfig, media};
use strata_runtime::train::AdapterSet;
use strata_runtime::train::adapter::is_adapter_tensor;
use strata_store::{Descriptor, Digest, Manifest, Reference, Store, StoreError};

use crate::error::{LearnError, Result};
use crate::lineage::Version;
use crate::record::{LearningRecord, SOURCE_KIND};

/// Writes the new version and moves `reference` to it if it still points at `parent`.
///
/// Blobs are written under the store's writer guard and the tag moves last, so a failure leaves
/// every tag as it was.
pub fn commit(
    store: &Store,
    reference: &Reference,
    parent: &Version,
    adapters: &AdapterSet,
    record: &LearningRecord,
) -> Result<Descriptor> {
    let _guard = store.writer()?;
    let mut layers = Vec::with_capacity(parent.manifest.layers.len() + adapters.entries.len() * 2);
    let mut adapter_layers = Vec::new();
    for (name, shape, bytes) in adapters.to_tensors()? {
        adapter_layers.push(tensor_layer(store, &name, &shape, &bytes)?);
    }
    let mut inserted = false;
    for layer in &parent.manifest.layers {
        let name = layer.annotations.get(media::TENSOR_NAME);
        if name.is_some_and(|name| is_adapter_tensor(name)) {
            continue;
        }
        if layer.media_type != media::WEIGHT_MEDIA_TYPE && !inserted {
            layers.append(&mut adapter_layers);
            inserted = true;
        }
        layers.push(layer.clone());
    }
    layers.append(&mut adapter_layers);

    let config = child_config(&parent.config, &parent.digest, &layers, adapters, record)?;
    let config_bytes = serde_json::to_vec_pretty(&config)?;
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

/// Builds the child's config from the parent's.
fn child_config(
    parent: &ModelConfig,
    parent_digest: &Digest,
    layers: &[Descriptor],
    adapters: &AdapterSet,
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
    config.strata.adapter = Some(adapters.config.to_info());
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
