//! Importing a GGUF file or a Hugging Face directory as a model version.
//!
//! Import validates the whole source first (header, tensors, hyperparameters, tokenizer), so a
//! bad file never touches the store. Then, holding the store's writer guard, it stores one blob
//! per tensor (skipping bytes already stored), the tokenizer and chat template blobs, the config
//! and the manifest, and moves the tag last: a failure or a crash before that leaves every tag
//! as it was, and the blobs written so far are unreachable until `gc` removes them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use chrono::Utc;
use strata_store::{Descriptor, Digest, DigestWriter, Manifest, Reference, Store};

use crate::config::{
    Architecture, BlobRef, Hyperparameters, ModelConfig, ModelDescriptor, ModelFormat, ModelFs,
    Source, StrataConfig, TokenizerInfo,
};
use crate::dtype::GgmlType;
use crate::error::{ImportError, Result};
use crate::gguf::GgufFile;
use crate::layout;
use crate::media;
use crate::tokenizer_json::{BuiltTokenizer, build_tokenizer_json};

/// Summary of one import: the new manifest and how many bytes were new.
#[derive(Clone, Debug)]
pub struct ImportOutcome {
    /// The new version's manifest.
    pub descriptor: Descriptor,
    /// Number of tensors in the version.
    pub tensors: usize,
    /// Tensor bytes written as new blobs.
    pub bytes_written: u64,
    /// Tensor bytes that were already in the store.
    pub bytes_deduplicated: u64,
}

/// Progress callback: bytes of tensor data handled so far, and in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// One tensor ready to be stored.
pub(crate) struct SourceTensor<'a> {
    pub(crate) name: String,
    pub(crate) dtype: GgmlType,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: &'a [u8],
}

/// Everything a version needs besides its tensors.
pub(crate) struct Draft {
    pub(crate) architecture: Architecture,
    pub(crate) hyperparameters: Hyperparameters,
    pub(crate) tokenizer: BuiltTokenizer,
    pub(crate) chat_template: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) source: Source,
}

/// Imports the GGUF file at `path` and tags it `reference`.
pub fn import_gguf(
    store: &Store,
    path: &Path,
    reference: &Reference,
    progress: Progress<'_>,
) -> Result<ImportOutcome> {
    let file = GgufFile::open(path)?;
    let model = file.model()?;
    layout::check_hyperparameters(&model.hyperparameters)?;
    let shapes: BTreeMap<&str, &[usize]> = file
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    layout::check_tensors(model.architecture, &model.hyperparameters, &shapes)?;
    let tokenizer = build_tokenizer_json(&model.tokenizer)?;

    let draft = Draft {
        architecture: model.architecture,
        hyperparameters: model.hyperparameters,
        tokenizer,
        chat_template: model.chat_template,
        name: model.name,
        source: Source {
            kind: "gguf".to_string(),
            file: file_name(path),
            sha256: Some(hash_file(path)?),
        },
    };
    let tensors = file
        .tensors()
        .iter()
        .map(|t| SourceTensor {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            bytes: file.tensor_bytes(t),
        })
        .collect();
    write_version(store, reference, draft, tensors, progress)
}

/// Imports the Hugging Face directory at `dir` and tags it `reference`.
pub fn import_hf_dir(
    store: &Store,
    dir: &Path,
    reference: &Reference,
    progress: Progress<'_>,
) -> Result<ImportOutcome> {
    let model = crate::hf::HfModel::open(dir)?;
    layout::check_hyperparameters(&model.hyperparameters)?;
    let tensors = model.tensors()?;
    let shapes: BTreeMap<&str, &[usize]> = tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    layout::check_tensors(model.architecture, &model.hyperparameters, &shapes)?;

    // Canonicalized so that `.` or `model/` still names the directory.
    let name = dir
        .canonicalize()
        .map_or_else(|_| file_name(dir), |dir| file_name(&dir));
    let draft = model.draft(name)?;
    write_version(store, reference, draft, tensors, progress)
}

/// The last component of `path`, never an absolute path.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
}

fn hash_file(path: &Path) -> Result<Digest> {
    let hash_error = |source| ImportError::Hash {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(hash_error)?;
    let mut writer = DigestWriter::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(hash_error)?;
        if read == 0 {
            break;
        }
        writer.update(&buffer[..read]);
    }
    Ok(writer.finalize())
}

/// Stores tensors, tokenizer, template, config and manifest, then moves the tag.
pub(crate) fn write_version(
    store: &Store,
    reference: &Reference,
    draft: Draft,
    tensors: Vec<SourceTensor<'_>>,
    progress: Progress<'_>,
) -> Result<ImportOutcome> {
    check_unique_names(&tensors)?;
    let _guard = store.writer()?;
    let total: u64 = tensors.iter().map(|t| t.bytes.len() as u64).sum();
    let mut done = 0;
    let (mut bytes_written, mut bytes_deduplicated) = (0, 0);
    let mut layers = Vec::with_capacity(tensors.len() + 2);
    for tensor in &tensors {
        let (descriptor, was_new) = store_tensor(store, tensor)?;
        let len = tensor.bytes.len() as u64;
        if was_new {
            bytes_written += len
        } else {
            bytes_deduplicated += len
        }
        done += len;
        progress(done, total);
        layers.push(descriptor);
    }

    let tokenizer_blob = put_layer(
        store,
        draft.tokenizer.json.as_bytes(),
        media::TOKENIZER_MEDIA_TYPE,
        "tokenizer.json",
    )?;
    let template_blob = match &draft.chat_template {
        Some(source) => Some(put_layer(
            store,
            source.as_bytes(),
            media::CHAT_TEMPLATE_MEDIA_TYPE,
            "chat_template.jinja",
        )?),
        None => None,
    };
    let config = build_config(
        &draft,
        &tensors,
        &layers,
        &tokenizer_blob,
        template_blob.as_ref(),
    );
    layers.push(tokenizer_blob);
    layers.extend(template_blob);

    let config_bytes = serde_json::to_vec_pretty(&config).expect("config serializes");
    let config_digest = store.put_blob(&config_bytes)?;
    let config_descriptor = Descriptor::new(
        media::MODEL_CONFIG_MEDIA_TYPE,
        config_digest,
        config_bytes.len() as u64,
    );
    let mut manifest = Manifest::new(config_descriptor, layers);
    manifest.artifact_type = Some(media::MODEL_ARTIFACT_TYPE.to_string());
    let descriptor = store.put_manifest(&manifest)?;
    store.set_tag(reference, &descriptor)?;
    tracing::info!(%reference, digest = %descriptor.digest, tensors = tensors.len(), "imported");

    Ok(ImportOutcome {
        descriptor,
        tensors: tensors.len(),
        bytes_written,
        bytes_deduplicated,
    })
}

/// Fails when two tensors share a name, as two shards of one directory may.
fn check_unique_names(tensors: &[SourceTensor<'_>]) -> Result<()> {
    let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(ImportError::DuplicateTensor {
            tensor: pair[0].to_string(),
        }
        .into()),
        None => Ok(()),
    }
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
    let descriptor = media::tensor_layer(digest, size, &tensor.name, tensor.dtype, &tensor.shape);
    Ok((descriptor, was_new))
}

fn put_layer(store: &Store, bytes: &[u8], media_type: &str, title: &str) -> Result<Descriptor> {
    let digest = store.put_blob(bytes)?;
    let mut descriptor = Descriptor::new(media_type, digest, bytes.len() as u64);
    descriptor.annotations.insert(
        "org.opencontainers.image.title".to_string(),
        title.to_string(),
    );
    Ok(descriptor)
}

fn build_config(
    draft: &Draft,
    tensors: &[SourceTensor<'_>],
    layers: &[Descriptor],
    tokenizer: &Descriptor,
    template: Option<&Descriptor>,
) -> ModelConfig {
    let family = format!("{:?}", draft.architecture).to_lowercase();
    let mut diff_ids: Vec<Digest> = layers.iter().map(|layer| layer.digest.clone()).collect();
    diff_ids.push(tokenizer.digest.clone());
    diff_ids.extend(template.map(|t| t.digest.clone()));
    ModelConfig {
        descriptor: ModelDescriptor {
            created_at: Utc::now(),
            family,
            name: draft.name.clone(),
        },
        config: ModelFormat {
            architecture: "transformer".to_string(),
            format: draft.source.kind.clone(),
            param_size: param_size(tensors),
            quantization: dominant_dtype(tensors),
        },
        modelfs: ModelFs {
            kind: "layers".to_string(),
            diff_ids,
        },
        strata: StrataConfig {
            architecture: draft.architecture,
            hyperparameters: draft.hyperparameters.clone(),
            tokenizer: TokenizerInfo {
                digest: tokenizer.digest.clone(),
                size: tokenizer.size,
                bos_token: draft.tokenizer.bos_token.clone(),
                eos_token: draft.tokenizer.eos_token.clone(),
                stop_token_ids: draft.tokenizer.stop_token_ids.clone(),
                add_bos_token: draft.tokenizer.add_bos_token,
            },
            chat_template: template.map(|t| BlobRef {
                digest: t.digest.clone(),
                size: t.size,
            }),
            parent: None,
            source: draft.source.clone(),
            adapter: None,
            routes: None,
            learning: None,
        },
    }
}

/// Parameter count rounded for display: `135M`, `1.5B`, `10K`.
fn param_size(tensors: &[SourceTensor<'_>]) -> String {
    let count: usize = tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let count = count as f64;
    if count >= 1e9 {
        format!("{:.1}B", count / 1e9)
    } else if count >= 1e6 {
        format!("{:.0}M", count / 1e6)
    } else if count >= 1e3 {
        format!("{:.0}K", count / 1e3)
    } else {
        format!("{count}")
    }
}

/// The dtype covering the most bytes.
fn dominant_dtype(tensors: &[SourceTensor<'_>]) -> String {
    let mut bytes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for tensor in tensors {
        *bytes.entry(tensor.dtype.name()).or_default() += tensor.bytes.len();
    }
    let top = bytes.into_iter().max_by_key(|(_, len)| *len);
    top.map_or_else(|| "none".to_string(), |(name, _)| name.to_string())
}
