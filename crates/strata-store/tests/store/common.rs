//! Fixtures shared by the test modules: a store in a fresh temporary directory and small models.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata_store::{Descriptor, Digest, Manifest, Reference, Store};
use tempfile::TempDir;

/// Media type of the test config, a JSON document, so its `digest` fields count for gc.
pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.test.config.v1+json";
/// Media type of the test layers.
pub(crate) const LAYER_MEDIA_TYPE: &str = "application/vnd.strata.test.layer.v1.raw";

/// Opens a new store in `<temp>/store`; keep the `TempDir` alive for the test.
pub(crate) fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let store = Store::open(dir.path().join("store")).expect("open new store");
    (dir, store)
}

/// The blobs of one saved test model.
#[derive(Debug)]
pub(crate) struct SavedModel {
    pub(crate) manifest: Descriptor,
    pub(crate) config: Digest,
    pub(crate) layers: Vec<Digest>,
    pub(crate) tokenizer: Digest,
}

/// Stores `layers`, a tokenizer blob named only from the config, the config and the manifest.
pub(crate) fn put_model(store: &Store, layers: &[&[u8]], tokenizer: &[u8]) -> SavedModel {
    put_model_with(store, layers, tokenizer, json!({}), None)
}

/// Like [`put_model`], with extra config fields and an optional subject.
pub(crate) fn put_model_with(
    store: &Store,
    layers: &[&[u8]],
    tokenizer: &[u8],
    extra: serde_json::Value,
    subject: Option<Descriptor>,
) -> SavedModel {
    let tokenizer_digest = store.put_blob(tokenizer).expect("put tokenizer");
    let layer_descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|bytes| {
            let digest = store.put_blob(bytes).expect("put layer");
            Descriptor::new(LAYER_MEDIA_TYPE, digest, bytes.len() as u64)
        })
        .collect();
    let config = json!({
        "extra": extra,
        "strata": { "tokenizer": { "digest": tokenizer_digest, "size": tokenizer.len() } },
    });
    let config_bytes = serde_json::to_vec(&config).expect("serialize config");
    let config_digest = store.put_blob(&config_bytes).expect("put config");
    let config_descriptor = Descriptor::new(
        CONFIG_MEDIA_TYPE,
        config_digest.clone(),
        config_bytes.len() as u64,
    );
    let mut manifest = Manifest::new(config_descriptor, layer_descriptors.clone());
    manifest.artifact_type = Some("application/vnd.strata.test.artifact.v1".to_string());
    manifest.subject = subject;
    let descriptor = store.put_manifest(&manifest).expect("put manifest");
    SavedModel {
        manifest: descriptor,
        config: config_digest,
        layers: layer_descriptors
            .into_iter()
            .map(|layer| layer.digest)
            .collect(),
        tokenizer: tokenizer_digest,
    }
}

/// Stores a model and tags it `reference`.
pub(crate) fn save_tagged(store: &Store, reference: &str, layers: &[&[u8]]) -> SavedModel {
    let model = put_model(
        store,
        layers,
        format!("tokenizer of {reference}").as_bytes(),
    );
    let reference = Reference::parse(reference).expect("valid reference");
    store.set_tag(&reference, &model.manifest).expect("set tag");
    model
}

/// Lists every path under `root`, relative to it, recursively.
pub(crate) fn listing(root: &Path) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list directory") {
            let path = entry.expect("read directory entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            paths.insert(
                path.strip_prefix(root)
                    .expect("path under root")
                    .to_path_buf(),
            );
        }
    }
    paths
}

/// Returns the tags of the store as `name:tag` strings.
pub(crate) fn tag_names(store: &Store) -> Vec<String> {
    let tags = store.list_tags().expect("list tags");
    tags.iter()
        .map(|entry| entry.reference.to_string())
        .collect()
}
