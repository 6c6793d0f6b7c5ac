//! The tensors a llama-family decoder needs, by GGUF name and shape.
//!
//! Both import paths check a model against this list before writing anything, so a file that
//! would fail to load never becomes a version in the store.

use std::collections::BTreeMap;

use crate::config::{Architecture, Hyperparameters};
use crate::error::ImportError;

/// Expected `(name, shape)` of every tensor the decoder reads; biases only when `with_bias`.
pub fn expected_tensors(hp: &Hyperparameters, with_bias: bool) -> Vec<(String, Vec<usize>)> {
    let mut tensors = model_tensors(hp);
    for layer in 0..hp.num_hidden_layers {
        tensors.extend(layer_tensors(hp, layer, with_bias));
    }
    tensors
}

/// Lists the tensors outside the decoder layers: embedding, final norm and, when untied, output.
fn model_tensors(hp: &Hyperparameters) -> Vec<(String, Vec<usize>)> {
    let (hidden, vocab) = (hp.hidden_size, hp.vocab_size);
    let mut tensors = vec![
        ("token_embd.weight".to_string(), vec![vocab, hidden]),
        ("output_norm.weight".to_string(), vec![hidden]),
    ];
    if !hp.tie_word_embeddings {
        tensors.push(("output.weight".to_string(), vec![vocab, hidden]));
    }
    tensors
}

/// Lists the tensors of decoder layer `layer`.
fn layer_tensors(hp: &Hyperparameters, layer: usize, with_bias: bool) -> Vec<(String, Vec<usize>)> {
    let (hidden, ffn) = (hp.hidden_size, hp.intermediate_size);
    let q_out = hp.num_attention_heads * hp.head_dim;
    let kv_out = hp.num_key_value_heads * hp.head_dim;
    let name = |suffix: &str| format!("blk.{layer}.{suffix}");
    let mut tensors = vec![
        (name("attn_norm.weight"), vec![hidden]),
        (name("attn_q.weight"), vec![q_out, hidden]),
        (name("attn_k.weight"), vec![kv_out, hidden]),
        (name("attn_v.weight"), vec![kv_out, hidden]),
        (name("attn_output.weight"), vec![hidden, q_out]),
        (name("ffn_norm.weight"), vec![hidden]),
        (name("ffn_gate.weight"), vec![ffn, hidden]),
        (name("ffn_up.weight"), vec![ffn, hidden]),
        (name("ffn_down.weight"), vec![hidden, ffn]),
    ];
    if with_bias {
        tensors.push((name("attn_q.bias"), vec![q_out]));
        tensors.push((name("attn_k.bias"), vec![kv_out]));
        tensors.push((name("attn_v.bias"), vec![kv_out]));
    }
    tensors
}

/// Checks that `shapes` (name → shape) has every tensor the decoder needs with the right shape.
///
/// Layers are checked one at a time, so a layer count far beyond the tensors present fails at the
/// first missing layer instead of listing every expected name first.
pub fn check_tensors(
    architecture: Architecture,
    hp: &Hyperparameters,
    shapes: &BTreeMap<&str, &[usize]>,
) -> Result<(), ImportError> {
    check_shapes(architecture, model_tensors(hp), shapes)?;
    for layer in 0..hp.num_hidden_layers {
        let expected = layer_tensors(hp, layer, hp.attention_bias);
        check_shapes(architecture, expected, shapes)?;
    }
    Ok(())
}

fn check_shapes(
    architecture: Architecture,
    expected: Vec<(String, Vec<usize>)>,
    shapes: &BTreeMap<&str, &[usize]>,
) -> Result<(), ImportError> {
    for (name, expected) in expected {
        let Some(actual) = shapes.get(name.as_str()) else {
            return Err(ImportError::MissingTensor {
                tensor: name,
                architecture: format!("{architecture:?}").to_lowercase(),
            });
        };
        if *actual != expected.as_slice() {
            return Err(ImportError::TensorShape {
                tensor: name,
                expected,
                actual: actual.to_vec(),
            });
        }
    }
    Ok(())
}

/// Checks hyperparameters the decoder divides by or indexes with.
pub fn check_hyperparameters(hp: &Hyperparameters) -> Result<(), ImportError> {
    let positive = [
        ("vocab_size", hp.vocab_size),
        ("hidden_size", hp.hidden_size),
        ("intermediate_size", hp.intermediate_size),
        ("num_hidden_layers", hp.num_hidden_layers),
        ("num_attention_heads", hp.num_attention_heads),
        ("num_key_value_heads", hp.num_key_value_heads),
        ("head_dim", hp.head_dim),
        ("max_position_embeddings", hp.max_position_embeddings),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(hyperparameter(name, value, "it must be positive"));
        }
    }
    if !hp
        .num_attention_heads
        .is_multiple_of(hp.num_key_value_heads)
    {
        return Err(hyperparameter(
            "num_key_value_heads",
            hp.num_key_value_heads,
            &format!(
                "it must divide num_attention_heads ({})",
                hp.num_attention_heads
            ),
        ));
    }
    // The projection widths are products of these; a product past `usize` would wrap in a
    // release build and could match a tensor by accident.
    let widest_heads = hp.num_attention_heads.max(hp.num_key_value_heads);
    if widest_heads.checked_mul(hp.head_dim).is_none() {
        return Err(hyperparameter(
            "head_dim",
            hp.head_dim,
            &format!("{widest_heads} heads of it overflow a usize"),
        ));
    }
    if !hp.head_dim.is_multiple_of(2) {
        return Err(hyperparameter(
            "head_dim",
            hp.head_dim,
            "rotary embeddings need it even",
        ));
    }
    check_floats(hp)
}

/// Checks the float hyperparameters: the config document is JSON, which has no NaN or infinity
/// (serde_json writes them as `null`), so such a value would store a version that never loads.
fn check_floats(hp: &Hyperparameters) -> Result<(), ImportError> {
    if !(hp.rope_theta.is_finite() && hp.rope_theta > 0.0) {
        return Err(hyperparameter(
            "rope_theta",
            hp.rope_theta,
            "it must be a finite positive number",
        ));
    }
    if !(hp.rms_norm_eps.is_finite() && hp.rms_norm_eps >= 0.0) {
        return Err(hyperparameter(
            "rms_norm_eps",
            hp.rms_norm_eps,
            "it must be a finite number, zero or more",
        ));
    }
    Ok(())
}

fn hyperparameter(name: &'static str, value: impl ToString, reason: &str) -> ImportError {
    ImportError::Hyperparameter {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
