//! Fixtures shared by the integration tests: a tiny random-weight llama built in memory, and a
//! reader for a real GGUF file named by `STRATA_TEST_GGUF`.

#![allow(dead_code)]

pub(crate) mod gguf;

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_model::{Architecture, GgmlType, Hyperparameters, RopeStyle, TensorSet, TensorView};
use strata_runtime::Llama;

/// Hyperparameters of the tiny test model: hidden 32, 2 layers, 4 heads over 2 kv heads.
pub(crate) fn tiny_config(rope_style: RopeStyle) -> Hyperparameters {
    Hyperparameters {
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_style,
        max_position_embeddings: 48,
        tie_word_embeddings: false,
        attention_bias: false,
    }
}

/// Random weights for `config`, seeded; `blk.0.attn_q` is stored as q8_0 and `blk.1.ffn_down`
/// as q4_1, everything else as f32.
pub(crate) fn tiny_tensors(config: &Hyperparameters, seed: u64) -> TensorSet {
    tiny_tensors_with(config, seed, true)
}

/// Random weights for `config`, seeded; with `quantized` false every tensor is f32.
pub(crate) fn tiny_tensors_with(config: &Hyperparameters, seed: u64, quantized: bool) -> TensorSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors = TensorSet::default();
    let hidden = config.hidden_size;
    let query_width = config.num_attention_heads * config.head_dim;
    let kv_width = config.num_key_value_heads * config.head_dim;
    let ffn = config.intermediate_size;

    let mut add = |name: &str, shape: Vec<usize>, dtype: GgmlType, rng: &mut StdRng| {
        let elements: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            (0..elements).map(|_| rng.random_range(0.8..1.2)).collect()
        } else {
            (0..elements).map(|_| rng.random_range(-0.3..0.3)).collect()
        };
        tensors.insert(view(name, shape, dtype, values));
    };

    add(
        "token_embd.weight",
        vec![config.vocab_size, hidden],
        GgmlType::F32,
        &mut rng,
    );
    add(
        "output.weight",
        vec![config.vocab_size, hidden],
        GgmlType::F32,
        &mut rng,
    );
    add("output_norm.weight", vec![hidden], GgmlType::F32, &mut rng);
    for layer in 0..config.num_hidden_layers {
        let name = |suffix: &str| format!("blk.{layer}.{suffix}");
        let q_dtype = if quantized && layer == 0 {
            GgmlType::Q8_0
        } else {
            GgmlType::F32
        };
        let down_dtype = if quantized && layer == 1 {
            GgmlType::Q4_1
        } else {
            GgmlType::F32
        };
        add(
            &name("attn_norm.weight"),
            vec![hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("ffn_norm.weight"),
            vec![hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("attn_q.weight"),
            vec![query_width, hidden],
            q_dtype,
            &mut rng,
        );
        add(
            &name("attn_k.weight"),
            vec![kv_width, hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("attn_v.weight"),
            vec![kv_width, hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("attn_output.weight"),
            vec![hidden, query_width],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("ffn_gate.weight"),
            vec![ffn, hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("ffn_up.weight"),
            vec![ffn, hidden],
            GgmlType::F32,
            &mut rng,
        );
        add(
            &name("ffn_down.weight"),
            vec![hidden, ffn],
            down_dtype,
            &mut rng,
        );
        if config.attention_bias {
            add(
                &name("attn_q.bias"),
                vec![query_width],
                GgmlType::F32,
                &mut rng,
            );
            add(
                &name("attn_k.bias"),
                vec![kv_width],
                GgmlType::F32,
                &mut rng,
            );
            add(
                &name("attn_v.bias"),
                vec![kv_width],
                GgmlType::F32,
                &mut rng,
            );
        }
    }
    tensors
}

/// A tensor view of `values` stored as `dtype` (f32, or a GGML block type quantized by candle).
pub(crate) fn view(name: &str, shape: Vec<usize>, dtype: GgmlType, values: Vec<f32>) -> TensorView {
    let bytes: Vec<u8> = match dtype {
        GgmlType::F32 => values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => quantize(&shape, values, GgmlDType::Q8_0),
        GgmlType::Q4_1 => quantize(&shape, values, GgmlDType::Q4_1),
        other => panic!("the fixture does not write {other:?}"),
    };
    TensorView::new(name.to_owned(), dtype, shape, Arc::new(bytes))
}

fn quantize(shape: &[usize], values: Vec<f32>, dtype: GgmlDType) -> Vec<u8> {
    let tensor = Tensor::from_vec(values, shape, &Device::Cpu).expect("fixture tensor");
    let quantized = QTensor::quantize(&tensor, dtype).expect("fixture quantization");
    quantized.data().expect("quantized bytes").into_owned()
}

/// The tiny llama with interleaved rotary embedding and seed 7.
pub(crate) fn tiny_model() -> Llama {
    tiny_model_with(RopeStyle::Interleaved, Architecture::Llama)
}

/// The tiny model with the given rotary pairing and architecture, seed 7.
pub(crate) fn tiny_model_with(rope_style: RopeStyle, architecture: Architecture) -> Llama {
    let mut config = tiny_config(rope_style);
    config.attention_bias = architecture == Architecture::Qwen2;
    let tensors = tiny_tensors(&config, 7);
    Llama::load(&config, architecture, &tensors, &Device::Cpu).expect("tiny model loads")
}

/// The tiny model with every weight in f32, so one-row and many-row inputs take the same
/// kernels and agree to float rounding.
pub(crate) fn tiny_float_model_with(rope_style: RopeStyle) -> Llama {
    let config = tiny_config(rope_style);
    let tensors = tiny_tensors_with(&config, 7, false);
    Llama::load(&config, Architecture::Llama, &tensors, &Device::Cpu).expect("tiny model loads")
}

/// Prompt tokens used across tests.
pub(crate) const TOKENS: [u32; 12] = [3, 17, 42, 8, 8, 63, 0, 25, 11, 40, 2, 19];

/// Largest absolute difference between two tensors of the same shape.
pub(crate) fn max_abs_diff(left: &Tensor, right: &Tensor) -> f32 {
    let difference = (left - right).expect("same shapes").abs().expect("abs");
    difference
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The tensor's values, flattened.
pub(crate) fn values(tensor: &Tensor) -> Vec<f32> {
    tensor.flatten_all().unwrap().to_vec1().unwrap()
}
