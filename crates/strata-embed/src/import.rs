//! Importing a sentence-transformers text package or Resemblyzer's speaker encoder into the
//! store as an embedder version, and the writing steps every embedder import shares.
//!
//! Import reads the whole package and builds the model from it first, so a package with a
//! missing tensor, a bad config or a bad tokenizer never touches the store. Then, holding the
//! store's writer guard, it stores one blob per tensor with the bytes as shipped (skipping bytes
//! already stored), for a text embedder the model's `config.json` and `tokenizer.json`, the
//! embedder config and the manifest, and moves the tag last. The speaker encoder's tensors are
//! stored as little-endian f32, the dtype of `pretrained.pt`. A failure or a crash before that leaves every tag as it was,
//! and the blobs written so far stay unreachable until `gc` removes them.

use std::path::Path;

use strata_store::{Descriptor, Digest, Manifest, Reference, Store};

use crate::audio::{AudioWeights, expected_settings};
use crate::config::{EmbedderConfig, EmbedderSource};
use crate::contents::{PackageContents, SourceTensor};
use crate::embedder::Embedder;
use crate::error::Result;
use crate::input::Modality;
use crate::media;
use crate::package::PackageFiles;

/// Summary of one import: the new manifest and how many bytes were new.
#[derive(Clone, Debug)]
pub struct EmbedderImport {
    /// The manifest of the imported version.
    pub descriptor: Descriptor,
    /// Number of tensors stored.
    pub tensors: usize,
    /// Tensor bytes written as new blobs.
    pub bytes_written: u64,
    /// Tensor bytes that were already in the store.
    pub bytes_deduplicated: u64,
}

/// Imports the sentence-transformers text package `files` and tags it `reference`, for example
/// `embedder/minilm:latest`.
pub fn import_text_embedder(
    store: &Store,
    files: &PackageFiles,
    reference: &Reference,
) -> Result<EmbedderImport> {
    let contents = PackageContents::read(files)?;
    let dim = contents.build_embedder()?.dim();
    let tensors = contents.tensors()?;

    let config = EmbedderConfig {
        name: files.name.clone(),
        modality: Modality::Text,
        architecture: "bert".to_string(),
        dim,
        text: Some(contents.settings.clone()),
        audio: None,
        image: None,
        source: EmbedderSource {
            kind: "sentence-transformers".to_string(),
            weights_file: file_name(&contents),
            weights_sha256: contents.weights_digest().hex().to_string(),
        },
    };
    let files = [
        LayerFile {
            bytes: &contents.config_json,
            media_type: media::MODEL_CONFIG_MEDIA_TYPE,
            title: "config.json",
        },
        LayerFile {
            bytes: &contents.tokenizer_json,
            media_type: media::TOKENIZER_MEDIA_TYPE,
            title: "tokenizer.json",
        },
    ];
    write_version(store, reference, &tensors, &files, &config)
}

/// Imports Resemblyzer's speaker encoder from its `pretrained.pt` at `weights` and tags it
/// `reference`, for example `embedder/ge2e:latest`.
pub fn import_audio_embedder(
    store: &Store,
    weights: &Path,
    reference: &Reference,
) -> Result<EmbedderImport> {
    let read = AudioWeights::read(weights)?;
    let dim = read.build_embedder()?.dim();
    let blobs = read.tensor_bytes()?;
    let tensors: Vec<SourceTensor<'_>> = blobs.iter().map(|blob| blob.source()).collect();

    let config = EmbedderConfig {
        name: read.name.clone(),
        modality: Modality::Audio,
        architecture: "ge2e".to_string(),
        dim,
        text: None,
        audio: Some(expected_settings()),
        image: None,
        source: EmbedderSource {
            kind: "resemblyzer".to_string(),
            weights_file: read.file_name.clone(),
            weights_sha256: read.sha256.hex().to_string(),
        },
    };
    write_version(store, reference, &tensors, &[], &config)
}

fn file_name(contents: &PackageContents) -> String {
    let weights = &contents.files.weights;
    weights.file_name().map_or_else(
        || "model.safetensors".to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// A file stored byte for byte as a layer, such as the model's `config.json`.
pub(crate) struct LayerFile<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) media_type: &'static str,
    /// The file name, written in the layer's title annotation.
    pub(crate) title: &'static str,
}

/// Stores the tensors, the files, the embedder config and the manifest, then moves the tag.
pub(crate) fn write_version(
    store: &Store,
    reference: &Reference,
    tensors: &[SourceTensor<'_>],
    files: &[LayerFile<'_>],
    config: &EmbedderConfig,
) -> Result<EmbedderImport> {
    let _guard = store.writer()?;
    let (mut bytes_written, mut bytes_deduplicated) = (0, 0);
    let mut layers = Vec::with_capacity(tensors.len() + files.len());
    for tensor in tensors {
        let (descriptor, was_new) = store_tensor(store, tensor)?;
        if was_new {
            bytes_written += descriptor.size;
        } else {
            bytes_deduplicated += descriptor.size;
        }
        layers.push(descriptor);
    }

    for file in files {
        layers.push(put_layer(store, file)?);
    }

    let config_bytes = serde_json::to_vec_pretty(config).expect("an embedder config serializes");
    let config_digest = store.put_blob(&config_bytes)?;
    let config_descriptor = Descriptor::new(
        media::EMBEDDER_CONFIG_MEDIA_TYPE,
        config_digest,
        config_bytes.len() as u64,
    );

    let mut manifest = Manifest::new(config_descriptor, layers);
    manifest.artifact_type = Some(media::EMBEDDER_ARTIFACT_TYPE.to_string());
    let descriptor = store.put_manifest(&manifest)?;
    store.set_tag(reference, &descriptor)?;
    tracing::info!(
        %reference,
        digest = %descriptor.digest,
        modality = %config.modality,
        tensors = tensors.len(),
        bytes_written,
        "imported embedder"
    );

    Ok(EmbedderImport {
        descriptor,
        tensors: tensors.len(),
        bytes_written,
        bytes_deduplicated,
    })
}

/// Stores one tensor's bytes; returns its layer descriptor and whether the blob is new.
fn store_tensor(store: &Store, tensor: &SourceTensor<'_>) -> Result<(Descriptor, bool)> {
    let digest = Digest::of(tensor.bytes);
    let was_new = !store.has_blob(&digest);
    if was_new {
        let mut reader = tensor.bytes;
        store.put_blob_from_reader(&mut reader, Some(&digest))?;
    }

    let size = tensor.bytes.len() as u64;
    let mut descriptor = Descriptor::new(media::WEIGHT_MEDIA_TYPE, digest, size);
    let shape = serde_json::to_string(&tensor.shape).expect("a shape serializes");
    let annotations = &mut descriptor.annotations;
    annotations.insert(media::TENSOR_NAME.to_string(), tensor.name.clone());
    annotations.insert(
        media::TENSOR_DTYPE.to_string(),
        tensor.dtype_name.to_string(),
    );
    annotations.insert(media::TENSOR_SHAPE.to_string(), shape);
    Ok((descriptor, was_new))
}

/// Stores a whole file as a layer titled with its file name.
fn put_layer(store: &Store, file: &LayerFile<'_>) -> Result<Descriptor> {
    let digest = store.put_blob(file.bytes)?;
    let mut descriptor = Descriptor::new(file.media_type, digest, file.bytes.len() as u64);
    descriptor
        .annotations
        .insert(media::TITLE_ANNOTATION.to_string(), file.title.to_string());
    Ok(descriptor)
}
