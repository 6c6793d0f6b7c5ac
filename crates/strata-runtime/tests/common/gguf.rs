//! Reads a GGUF file into a `TensorSet` of owned bytes, its hyperparameters and a tokenizer,
//! with candle's GGUF reader, for the real-model test.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, Value};
use strata_model::{GgmlType, Hyperparameters, RopeStyle, TensorSet, TensorView};

/// A GGUF file's tensors, hyperparameters and metadata.
pub(crate) struct GgufModel {
    pub(crate) config: Hyperparameters,
    pub(crate) tensors: TensorSet,
    pub(crate) metadata: HashMap<String, Value>,
}

/// A byte range of the file's contents, shared between the tensor views.
struct FileSlice {
    data: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for FileSlice {
    fn as_ref(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
}

/// Reads a llama-architecture GGUF file.
pub(crate) fn read(path: &Path) -> GgufModel {
    let data = Arc::new(std::fs::read(path).expect("read gguf"));
    let mut file = File::open(path).expect("open gguf");
    let content = Content::read(&mut file).expect("parse gguf");

    let mut tensors = TensorSet::default();
    for (name, info) in &content.tensor_infos {
        let dtype = ggml_type(info.ggml_dtype);
        let shape = info.shape.dims().to_vec();
        let elements: usize = shape.iter().product();
        let length = dtype.byte_len(elements as u64).unwrap() as usize;
        let start = (content.tensor_data_offset + info.offset) as usize;
        let bytes = FileSlice {
            data: data.clone(),
            start,
            end: start + length,
        };
        tensors.insert(TensorView::new(name.clone(), dtype, shape, Arc::new(bytes)));
    }

    let config = hyperparameters(&content.metadata, &tensors);
    GgufModel {
        config,
        tensors,
        metadata: content.metadata,
    }
}

fn hyperparameters(metadata: &HashMap<String, Value>, tensors: &TensorSet) -> Hyperparameters {
    let get = |key: &str| metadata.get(&format!("llama.{key}")).expect(key);
    let hidden_size = get("embedding_length").to_u32().unwrap() as usize;
    let num_attention_heads = get("attention.head_count").to_u32().unwrap() as usize;
    let vocab_size = tensors.get("token_embd.weight").unwrap().shape[0];
    Hyperparameters {
        vocab_size,
        hidden_size,
        intermediate_size: get("feed_forward_length").to_u32().unwrap() as usize,
        num_hidden_layers: get("block_count").to_u32().unwrap() as usize,
        num_attention_heads,
        num_key_value_heads: get("attention.head_count_kv").to_u32().unwrap() as usize,
        head_dim: hidden_size / num_attention_heads,
        rms_norm_eps: get("attention.layer_norm_rms_epsilon").to_f32().unwrap() as f64,
        rope_theta: get("rope.freq_base").to_f32().unwrap() as f64,
        rope_style: RopeStyle::Interleaved,
        max_position_embeddings: get("context_length").to_u32().unwrap() as usize,
        tie_word_embeddings: tensors.get("output.weight").is_none(),
        attention_bias: false,
    }
}

fn ggml_type(dtype: GgmlDType) -> GgmlType {
    match dtype {
        GgmlDType::F32 => GgmlType::F32,
        GgmlDType::F16 => GgmlType::F16,
        GgmlDType::BF16 => GgmlType::Bf16,
        GgmlDType::Q4_0 => GgmlType::Q4_0,
        GgmlDType::Q4_1 => GgmlType::Q4_1,
        GgmlDType::Q5_0 => GgmlType::Q5_0,
        GgmlDType::Q5_1 => GgmlType::Q5_1,
        GgmlDType::Q8_0 => GgmlType::Q8_0,
        GgmlDType::Q8_1 => GgmlType::Q8_1,
        GgmlDType::Q2K => GgmlType::Q2K,
        GgmlDType::Q3K => GgmlType::Q3K,
        GgmlDType::Q4K => GgmlType::Q4K,
        GgmlDType::Q5K => GgmlType::Q5K,
        GgmlDType::Q6K => GgmlType::Q6K,
        GgmlDType::Q8K => GgmlType::Q8K,
    }
}

/// Builds a byte-level BPE tokenizer from the file's `tokenizer.ggml.*` metadata, the way a
/// `tokenizer.json` of a GPT-2 style model describes it. Control tokens become special tokens.
pub(crate) fn tokenizer(metadata: &HashMap<String, Value>) -> tokenizers::Tokenizer {
    let strings = |key: &str| -> Vec<String> {
        let values = metadata.get(key).expect(key).to_vec().unwrap();
        values
            .iter()
            .map(|value| value.to_string().unwrap().clone())
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens");
    let merges = strings("tokenizer.ggml.merges");
    let token_types = metadata
        .get("tokenizer.ggml.token_type")
        .unwrap()
        .to_vec()
        .unwrap();

    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), id.into()))
        .collect();
    let added_tokens: Vec<serde_json::Value> = tokens
        .iter()
        .zip(token_types)
        .enumerate()
        .filter(|(_, (_, kind))| kind.to_i32().unwrap() == 3)
        .map(|(id, (token, _))| {
            serde_json::json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            })
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                 "use_regex": true}
            ]
        },
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    });
    json.to_string()
        .parse()
        .expect("tokenizer from gguf metadata")
}
