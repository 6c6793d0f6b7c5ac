//! Reading a Hugging Face model directory: `config.json`, `*.safetensors`, `tokenizer.json`
//! and `tokenizer_config.json`.
//!
//! Tensor bytes are kept exactly as stored (F32, F16 or BF16); only names change, from the
//! Hugging Face tree (`model.layers.3.mlp.up_proj.weight`) to GGUF's (`blk.3.ffn_up.weight`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use memmap2::Mmap;
use serde_json::Value;

use crate::config::{Architecture, Hyperparameters, RopeStyle, Source};
use crate::dtype::GgmlType;
use crate::error::{ImportError, ModelError, Result, SafetensorsError};
use crate::import::{Draft, SourceTensor};
use crate::mapped;
use crate::tokenizer_json::BuiltTokenizer;

/// Largest safetensors header accepted, as the `safetensors` crate limits it (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A parsed Hugging Face directory.
#[derive(Debug)]
pub struct HfModel {
    dir: PathBuf,
    /// Decoder variant from `config.json`.
    pub architecture: Architecture,
    /// Hyperparameters from `config.json`.
    pub hyperparameters: Hyperparameters,
    shards: Vec<(PathBuf, Arc<Mmap>)>,
    tokenizer_json: String,
    tokenizer_config: Value,
}

impl HfModel {
    /// Reads and validates the directory's files; tensor data stays mapped, not copied.
    pub fn open(dir: &Path) -> Result<HfModel> {
        let config = read_json(&dir.join("config.json"))?;
        let (architecture, hyperparameters) = hyperparameters(&dir.join("config.json"), &config)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_json =
            std::fs::read_to_string(&tokenizer_path).map_err(|source| SafetensorsError::Io {
                path: tokenizer_path,
                source,
            })?;
        let tokenizer_config_path = dir.join("tokenizer_config.json");
        let tokenizer_config = if tokenizer_config_path.exists() {
            read_json(&tokenizer_config_path)?
        } else {
            Value::Object(Default::default())
        };
        let shards = shard_paths(dir)?
            .into_iter()
            .map(|path| {
                let map = mapped::map_file(&path).map_err(|source| SafetensorsError::Io {
                    path: path.clone(),
                    source,
                })?;
                check_header_length(&path, &map)?;
                Ok((path, map))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(HfModel {
            dir: dir.to_path_buf(),
            architecture,
            hyperparameters,
            shards,
            tokenizer_json,
            tokenizer_config,
        })
    }

    /// Every tensor of every shard, renamed to GGUF names.
    pub(crate) fn tensors(&self) -> Result<Vec<SourceTensor<'_>>> {
        let mut tensors = Vec::new();
        for (path, map) in &self.shards {
            let parsed = safetensors::SafeTensors::deserialize(map).map_err(|error| {
                SafetensorsError::Invalid {
                    path: path.clone(),
                    message: error.to_string(),
                }
            })?;
            // `SafeTensors::tensors` comes in hash order; sorting by position in the file keeps
            // the manifest, and so its digest, the same from one import to the next.
            let mut views = parsed.tensors();
            views.sort_by_key(|(_, view)| view.data().as_ptr() as usize);
            for (name, view) in views {
                let Some(gguf_name) = gguf_name(&name) else {
                    tracing::debug!(tensor = %name, "skipping tensor the decoder does not use");
                    continue;
                };
                let dtype = match view.dtype() {
                    safetensors::Dtype::F32 => GgmlType::F32,
                    safetensors::Dtype::F16 => GgmlType::F16,
                    safetensors::Dtype::BF16 => GgmlType::Bf16,
                    other => {
                        return Err(SafetensorsError::UnsupportedDtype {
                            path: path.clone(),
                            tensor: name,
                            dtype: format!("{other:?}"),
                        }
                        .into());
                    }
                };
                tensors.push(SourceTensor {
                    name: gguf_name,
                    dtype,
                    shape: view.shape().to_vec(),
                    bytes: view.data(),
                });
            }
        }
        Ok(tensors)
    }

    /// The version draft: tokenizer, chat template and source.
    pub(crate) fn draft(&self, file: String) -> Result<Draft> {
        let tokenizer = self.tokenizer()?;
        let chat_template = self.chat_template()?;
        Ok(Draft {
            architecture: self.architecture,
            hyperparameters: self.hyperparameters.clone(),
            tokenizer,
            chat_template,
            name: Some(file.clone()),
            source: Source {
                kind: "safetensors".to_string(),
                file,
                sha256: None,
            },
        })
    }

    /// The chat template: `chat_template` of `tokenizer_config.json` (a string, or a list of
    /// named templates of which strata takes `default`), else the file `chat_template.jinja`.
    fn chat_template(&self) -> Result<Option<String>> {
        match self.tokenizer_config.get("chat_template") {
            Some(Value::String(template)) => return Ok(Some(template.clone())),
            Some(Value::Array(named)) => {
                let default = named
                    .iter()
                    .find(|entry| entry.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|entry| entry.get("template")?.as_str());
                return Ok(default.map(str::to_string));
            }
            _ => {}
        }
        let path = self.dir.join("chat_template.jinja");
        if !path.is_file() {
            return Ok(None);
        }
        let template = std::fs::read_to_string(&path)
            .map_err(|source| SafetensorsError::Io { path, source })?;
        Ok(Some(template))
    }

    /// The directory's `tokenizer.json` as is, with special tokens from `tokenizer_config.json`.
    fn tokenizer(&self) -> Result<BuiltTokenizer> {
        let path = self.dir.join("tokenizer.json");
        let parsed: Value = serde_json::from_str(&self.tokenizer_json).map_err(|error| {
            SafetensorsError::Config {
                path: path.clone(),
                message: error.to_string(),
            }
        })?;
        tokenizers::Tokenizer::from_str(&self.tokenizer_json).map_err(|error| {
            ImportError::InvalidTokenizer {
                message: format!("{}: {error}", path.display()),
            }
        })?;
        let token = |key: &str| special_token(self.tokenizer_config.get(key));
        let bos_token = token("bos_token");
        let eos_token = token("eos_token");
        let mut stop_token_ids = Vec::new();
        for text in eos_token
            .iter()
            .chain(["<|im_end|>".to_string(), "<|eot_id|>".to_string()].iter())
        {
            if let Some(id) = added_token_id(&parsed, text)
                && !stop_token_ids.contains(&id)
            {
                stop_token_ids.push(id);
            }
        }
        let add_bos_token = self
            .tokenizer_config
            .get("add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(BuiltTokenizer {
            json: self.tokenizer_json.clone(),
            bos_token,
            eos_token,
            stop_token_ids,
            add_bos_token,
        })
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| SafetensorsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|error| {
        SafetensorsError::Config {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
        .into()
    })
}

/// A special token in `tokenizer_config.json`: a string or `{"content": …}`.
fn special_token(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => map
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

fn added_token_id(tokenizer: &Value, content: &str) -> Option<u32> {
    let added = tokenizer.get("added_tokens")?.as_array()?;
    added
        .iter()
        .find(|token| token.get("content").and_then(Value::as_str) == Some(content))
        .and_then(|token| token.get("id")?.as_u64())
        .and_then(|id| u32::try_from(id).ok())
}

/// Checks the 8-byte header length against the file size and the limit before parsing.
fn check_header_length(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_len = bytes.len() as u64;
    let header_error = |declared| SafetensorsError::HeaderLength {
        path: path.to_path_buf(),
        declared,
        file_len,
        limit: MAX_HEADER_BYTES,
    };
    let Some(prefix) = bytes.get(..8) else {
        return Err(SafetensorsError::Invalid {
            path: path.to_path_buf(),
            message: format!("the file has {file_len} bytes, fewer than the 8-byte header length"),
        }
        .into());
    };
    let declared = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if declared > MAX_HEADER_BYTES || declared > file_len - 8 {
        return Err(header_error(declared).into());
    }
    Ok(())
}

fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| SafetensorsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(SafetensorsError::NoWeights {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    Ok(paths)
}

/// Maps a Hugging Face tensor name to its GGUF name; `None` for tensors the decoder ignores.
pub fn gguf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(fixed) = fixed {
        return Some(fixed.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let mapped = match suffix {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{mapped}"))
}

fn hyperparameters(path: &Path, config: &Value) -> Result<(Architecture, Hyperparameters)> {
    let fields = ConfigFields { path, config };
    let architecture = architecture(&fields)?;
    let hidden_size = fields.usize("hidden_size")?;
    let num_attention_heads = fields.usize("num_attention_heads")?;
    let head_dim = match fields.opt_usize("head_dim")? {
        Some(head_dim) => head_dim,
        None => hidden_size.checked_div(num_attention_heads).unwrap_or(0),
    };
    let hyperparameters = Hyperparameters {
        vocab_size: fields.usize("vocab_size")?,
        hidden_size,
        intermediate_size: fields.usize("intermediate_size")?,
        num_hidden_layers: fields.usize("num_hidden_layers")?,
        num_attention_heads,
        num_key_value_heads: fields
            .opt_usize("num_key_value_heads")?
            .unwrap_or(num_attention_heads),
        head_dim,
        rms_norm_eps: fields.f64_or("rms_norm_eps", 1e-6)?,
        rope_theta: fields.f64_or("rope_theta", 10_000.0)?,
        rope_style: RopeStyle::Half,
        max_position_embeddings: fields.usize("max_position_embeddings")?,
        tie_word_embeddings: fields.bool_or("tie_word_embeddings", false)?,
        // Qwen2 configs have no `attention_bias` key: their q, k and v projections always
        // carry biases.
        attention_bias: fields.bool_or("attention_bias", architecture == Architecture::Qwen2)?,
    };
    Ok((architecture, hyperparameters))
}

/// The decoder variant from `model_type`, checked against `architectures` when present.
fn architecture(fields: &ConfigFields<'_>) -> Result<Architecture> {
    let model_type = fields.opt_str("model_type")?;
    let classes: Vec<&str> = match fields.config.get("architectures") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(fields.error("architectures is not a list of class names")),
    };
    let known = [
        ("llama", "LlamaForCausalLM", Architecture::Llama),
        ("qwen2", "Qwen2ForCausalLM", Architecture::Qwen2),
    ];
    let found = known.iter().find(|(kind, class, _)| match model_type {
        Some(model_type) => model_type == *kind,
        None => classes.first() == Some(class),
    });
    let Some(&(_, class, architecture)) = found else {
        let model_type = model_type.unwrap_or("(missing)");
        let classes = if classes.is_empty() {
            "(none)".to_string()
        } else {
            classes.join(", ")
        };
        return Err(fields.error(format!(
            "model_type {model_type} with architectures {classes} is not supported; \
             llama (LlamaForCausalLM) and qwen2 (Qwen2ForCausalLM) are"
        )));
    };
    if !classes.is_empty() && !classes.contains(&class) {
        return Err(fields.error(format!(
            "architectures is {classes:?}; a {model_type:?} model must list {class}"
        )));
    }
    Ok(architecture)
}

/// Typed access to `config.json` with errors naming the key.
struct ConfigFields<'a> {
    path: &'a Path,
    config: &'a Value,
}

impl ConfigFields<'_> {
    fn error(&self, message: impl Into<String>) -> ModelError {
        SafetensorsError::Config {
            path: self.path.to_path_buf(),
            message: message.into(),
        }
        .into()
    }

    /// The value of `key`, treating `null` as absent.
    fn get(&self, key: &str) -> Option<&Value> {
        self.config.get(key).filter(|value| !value.is_null())
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let number = value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.error(format!("{key} is {value}, expected a whole number")))?;
        Ok(Some(number))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| self.error(format!("{key} is missing")))
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_f64()
                .ok_or_else(|| self.error(format!("{key} is {value}, expected a number"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.error(format!("{key} is {value}, expected true or false"))),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(Some)
                .ok_or_else(|| self.error(format!("{key} is {value}, expected a string"))),
        }
    }
}
