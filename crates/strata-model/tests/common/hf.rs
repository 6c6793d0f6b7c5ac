//! A tiny Hugging Face llama directory: `config.json`, two safetensors shards, `tokenizer.json`
//! and `tokenizer_config.json`.

use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;
use strata_model::tokenizer_json::{GgufTokenizerSpec, build_tokenizer_json};

use super::{CHAT_TEMPLATE, MERGES, TOKEN_TYPES, TOKENS, bytes};

/// One tensor of the directory: Hugging Face name, dtype, shape, bytes.
pub type HfTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// The tensors of the tiny llama in Hugging Face names, across two shards, plus one tensor the
/// decoder ignores (`rotary_emb.inv_freq`).
pub fn tiny_llama_tensors() -> [Vec<HfTensor>; 2] {
    let t = |name: &str, dtype: Dtype, shape: &[usize], seed: u64| {
        let len = shape.iter().product::<usize>() * dtype.bitsize() / 8;
        (name.to_string(), dtype, shape.to_vec(), bytes(len, seed))
    };
    let layer = |suffix: &str| format!("model.layers.0.{suffix}");
    let first = vec![
        t("model.embed_tokens.weight", Dtype::BF16, &[10, 32], 11),
        t(&layer("input_layernorm.weight"), Dtype::F32, &[32], 12),
        t(&layer("self_attn.q_proj.weight"), Dtype::F16, &[32, 32], 13),
        t(&layer("self_attn.k_proj.weight"), Dtype::F16, &[16, 32], 14),
        t(&layer("self_attn.v_proj.weight"), Dtype::F16, &[16, 32], 15),
        t(
            &layer("self_attn.o_proj.weight"),
            Dtype::BF16,
            &[32, 32],
            16,
        ),
        t(
            &layer("self_attn.rotary_emb.inv_freq"),
            Dtype::F32,
            &[8],
            17,
        ),
    ];
    let second = vec![
        t(
            &layer("post_attention_layernorm.weight"),
            Dtype::F32,
            &[32],
            18,
        ),
        t(&layer("mlp.gate_proj.weight"), Dtype::BF16, &[64, 32], 19),
        t(&layer("mlp.up_proj.weight"), Dtype::BF16, &[64, 32], 20),
        t(&layer("mlp.down_proj.weight"), Dtype::BF16, &[32, 64], 21),
        t("model.norm.weight", Dtype::F32, &[32], 22),
        t("lm_head.weight", Dtype::F16, &[10, 32], 23),
    ];
    [first, second]
}

/// Writes the tiny llama directory into `dir`.
pub fn write_tiny_llama(dir: &Path) {
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 10,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "max_position_embeddings": 128,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16"
    });
    write_json(&dir.join("config.json"), &config);
    for (index, shard) in tiny_llama_tensors().iter().enumerate() {
        let path = dir.join(format!("model-0000{}-of-00002.safetensors", index + 1));
        write_safetensors(&path, shard);
    }
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json()).unwrap();
    let tokenizer_config = json!({
        "add_bos_token": false,
        "bos_token": "<|endoftext|>",
        "eos_token": {"content": "<|im_end|>", "lstrip": false},
        "chat_template": CHAT_TEMPLATE
    });
    write_json(&dir.join("tokenizer_config.json"), &tokenizer_config);
}

/// Writes `tensors` as one safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[HfTensor]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let view = TensorView::new(*dtype, shape.clone(), data).expect("tensor view");
            (name.clone(), view)
        })
        .collect();
    let bytes = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(path, bytes).unwrap();
}

/// A `tokenizer.json` for [`TOKENS`], built the way a GGUF import builds one.
pub fn tokenizer_json() -> String {
    let spec = GgufTokenizerSpec {
        model: "gpt2".to_string(),
        pre: Some("smollm".to_string()),
        tokens: TOKENS.iter().map(|t| t.to_string()).collect(),
        token_types: Some(TOKEN_TYPES.to_vec()),
        merges: MERGES.iter().map(|m| m.to_string()).collect(),
        ..GgufTokenizerSpec::default()
    };
    build_tokenizer_json(&spec).expect("tokenizer").json
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}
