//! The files of a sentence-transformers package and the settings they configure.
//!
//! A package directory contains the Hugging Face `config.json`, `tokenizer.json` and
//! `model.safetensors`, plus sentence-transformers' `modules.json`, `sentence_bert_config.json`
//! and `1_Pooling/config.json`. This crate implements the module list
//! `Transformer, Pooling[, Normalize]` with mean pooling, the list all-MiniLM-L6-v2 uses. Any
//! other module or pooling mode is rejected.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Pooling, TextSettings};
use crate::error::PackageError;

/// The `type` of a module in `modules.json` that runs the Hugging Face model.
const TRANSFORMER_MODULE: &str = "sentence_transformers.models.Transformer";
/// The `type` of the pooling module.
const POOLING_MODULE: &str = "sentence_transformers.models.Pooling";
/// The `type` of the normalisation module.
const NORMALIZE_MODULE: &str = "sentence_transformers.models.Normalize";

/// Paths of the files of a sentence-transformers text package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageFiles {
    /// The embedder's name, for example `all-MiniLM-L6-v2`.
    pub name: String,
    /// The Hugging Face `config.json`.
    pub config: PathBuf,
    /// The Hugging Face `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// The weights, `model.safetensors`.
    pub weights: PathBuf,
    /// `sentence_bert_config.json`, which sets `max_seq_length`.
    pub sentence_config: Option<PathBuf>,
    /// `modules.json`, the list of modules.
    pub modules: Option<PathBuf>,
    /// The pooling module's `config.json`.
    pub pooling: Option<PathBuf>,
}

impl PackageFiles {
    /// Names the files of the package directory `dir`, taking the embedder's name from the
    /// directory's name. The sentence-transformers files are `None` when they do not exist.
    pub fn in_dir(dir: &Path) -> PackageFiles {
        let optional = |relative: &str| Some(dir.join(relative)).filter(|path| path.is_file());
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|dir| Some(dir.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "text-embedder".to_string());
        PackageFiles {
            name,
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
            sentence_config: optional("sentence_bert_config.json"),
            modules: optional("modules.json"),
            pooling: optional("1_Pooling/config.json"),
        }
    }

    /// Reads the sentence-transformers settings, checking them against the model's
    /// `hidden_size` and `max_position_embeddings`.
    ///
    /// Without `modules.json` the package is read as sentence-transformers reads a plain
    /// Hugging Face model: mean pooling and no normalisation. Without
    /// `sentence_bert_config.json`, texts are truncated to `max_position_embeddings`.
    pub(crate) fn read_settings(
        &self,
        hidden_size: usize,
        max_position_embeddings: usize,
    ) -> Result<TextSettings, PackageError> {
        let normalize = match &self.modules {
            Some(path) => read_modules(path)?,
            None => false,
        };
        if let Some(path) = &self.pooling {
            check_pooling(path, hidden_size)?;
        }
        let max_seq_length = match &self.sentence_config {
            Some(path) => read_max_seq_length(path)?.unwrap_or(max_position_embeddings),
            None => max_position_embeddings,
        };
        if max_seq_length == 0 || max_seq_length > max_position_embeddings {
            return Err(PackageError::Unsupported {
                path: self.sentence_config.clone().unwrap_or_default(),
                reason: format!(
                    "max_seq_length is {max_seq_length}, expected 1 to \
                     max_position_embeddings ({max_position_embeddings})"
                ),
            });
        }
        Ok(TextSettings {
            max_seq_length,
            pooling: Pooling::Mean,
            normalize,
        })
    }
}

/// Reads the whole file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, PackageError> {
    fs::read(path).map_err(|source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    expected: &'static str,
) -> Result<T, PackageError> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|source| PackageError::Json {
        path: path.to_path_buf(),
        expected,
        source,
    })
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

/// Checks that `modules.json` lists a transformer, a pooling module and optionally a normalise
/// module, in that order, and returns whether it normalises.
fn read_modules(path: &Path) -> Result<bool, PackageError> {
    let modules: Vec<Module> = read_json(path, "a sentence-transformers modules.json")?;
    let kinds: Vec<&str> = modules.iter().map(|module| module.kind.as_str()).collect();
    match kinds.as_slice() {
        [TRANSFORMER_MODULE, POOLING_MODULE] => Ok(false),
        [TRANSFORMER_MODULE, POOLING_MODULE, NORMALIZE_MODULE] => Ok(true),
        _ => Err(PackageError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "modules are {kinds:?}, expected Transformer, Pooling and optionally Normalize"
            ),
        }),
    }
}

#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// Checks that the pooling module pools by mean alone over vectors of `hidden_size`.
fn check_pooling(path: &Path, hidden_size: usize) -> Result<(), PackageError> {
    let config: PoolingConfig = read_json(path, "a sentence-transformers pooling config")?;
    let unsupported = |reason: String| PackageError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    if config.word_embedding_dimension != hidden_size {
        return Err(unsupported(format!(
            "word_embedding_dimension is {}, but the model's hidden_size is {hidden_size}",
            config.word_embedding_dimension
        )));
    }
    let other_modes = config.pooling_mode_cls_token
        || config.pooling_mode_max_tokens
        || config.pooling_mode_mean_sqrt_len_tokens;
    if !config.pooling_mode_mean_tokens || other_modes {
        return Err(unsupported(
            "only pooling_mode_mean_tokens alone is supported".to_string(),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: Option<usize>,
}

fn read_max_seq_length(path: &Path) -> Result<Option<usize>, PackageError> {
    let config: SentenceConfig = read_json(path, "a sentence_bert_config.json")?;
    Ok(config.max_seq_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM_MODULES: &str = r#"[
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]"#;

    const MEAN_POOLING: &str = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
        "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false}"#;

    /// Writes the sentence-transformers files of a package into a fresh directory.
    fn package(
        modules: &str,
        pooling: &str,
        sentence_config: &str,
    ) -> (tempfile::TempDir, PackageFiles) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        fs::write(dir.path().join("modules.json"), modules).unwrap();
        fs::write(dir.path().join("1_Pooling/config.json"), pooling).unwrap();
        fs::write(
            dir.path().join("sentence_bert_config.json"),
            sentence_config,
        )
        .unwrap();
        let files = PackageFiles::in_dir(dir.path());
        (dir, files)
    }

    fn unsupported_reason(error: PackageError) -> String {
        match error {
            PackageError::Unsupported { reason, .. } => reason,
            other => panic!("expected an unsupported-package error, got {other:?}"),
        }
    }

    #[test]
    fn minilm_settings_are_read() {
        let (_dir, files) = package(MINILM_MODULES, MEAN_POOLING, r#"{"max_seq_length": 256}"#);

        let settings = files.read_settings(384, 512).unwrap();

        assert_eq!(settings.max_seq_length, 256);
        assert_eq!(settings.pooling, Pooling::Mean);
        assert!(settings.normalize);
    }

    #[test]
    fn missing_sentence_files_mean_plain_mean_pooling() {
        let dir = tempfile::tempdir().unwrap();
        let files = PackageFiles::in_dir(dir.path());

        let settings = files.read_settings(384, 512).unwrap();

        assert_eq!(files.modules, None);
        assert_eq!(settings.max_seq_length, 512);
        assert!(!settings.normalize);
    }

    #[test]
    fn dense_module_is_rejected() {
        let modules = MINILM_MODULES.replace("models.Normalize", "models.Dense");
        let (_dir, files) = package(&modules, MEAN_POOLING, "{}");

        let reason = unsupported_reason(files.read_settings(384, 512).unwrap_err());

        assert!(
            reason.contains("sentence_transformers.models.Dense"),
            "{reason}"
        );
    }

    #[test]
    fn cls_pooling_is_rejected() {
        let pooling = MEAN_POOLING.replace(
            "\"pooling_mode_cls_token\": false",
            "\"pooling_mode_cls_token\": true",
        );
        let (_dir, files) = package(MINILM_MODULES, &pooling, "{}");

        let reason = unsupported_reason(files.read_settings(384, 512).unwrap_err());

        assert!(
            reason.contains("pooling_mode_mean_tokens alone"),
            "{reason}"
        );
    }

    #[test]
    fn pooling_width_must_match_hidden_size() {
        let (_dir, files) = package(MINILM_MODULES, MEAN_POOLING, "{}");

        let reason = unsupported_reason(files.read_settings(768, 512).unwrap_err());

        assert!(
            reason.contains("word_embedding_dimension is 384"),
            "{reason}"
        );
    }

    #[test]
    fn max_seq_length_beyond_positions_is_rejected() {
        let (_dir, files) = package(MINILM_MODULES, MEAN_POOLING, r#"{"max_seq_length": 1024}"#);

        let reason = unsupported_reason(files.read_settings(384, 512).unwrap_err());

        assert!(reason.contains("max_seq_length is 1024"), "{reason}");
    }
}
