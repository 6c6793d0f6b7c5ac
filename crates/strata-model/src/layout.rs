//! The tensors a llama-family decoder needs, by GGUF name and shape.
//!
//! Both import paths check a model against this list before writing anything, so a file that
//! would fail to load never becomes a version in the store.

use std::collections::BTreeMap;

use crate::config::{Architecture, Hyperparameters};
use crate::error::ImportError;

/// Expected `(name, shape)` of every tensor the decoder reads; biases only when `with_bias`.
pub fn expected_tensors(hp: &Hyperparameters, with_bias: bool) -> Vec<(String, Vec<usize>)> {
    let (hidden, ffn, vocab) = (hp.hidden_size, hp.intermediate_size, hp.vocab_size);
    let q_out = hp.num_attention_heads * hp.head_dim;
    let kv_out = hp.num_key_value_heads * hp.head_dim;
    let mut tensors = vec![
        ("token_embd.weight".to_string(), vec![vocab, hidden]),
        ("output_norm.weight".to_string(), vec![hidden]),
    ];
    if !hp.tie_word_embeddings {
        tensors.push(("output.weight".to_string(), vec![vocab, hidden]));
    }
    for layer in 0..hp.num_hidden_layers {
        let name = |suffix: &str| format!("blk.{layer}.{suffix}");
        tensors.push((name("attn_norm.weight"), vec![hidden]));
        tensors.push((name("attn_q.weight"), vec![q_out, hidden]));
        tensors.push((name("attn_k.weight"), vec![kv_out, hidden]));
        tensors.push((name("attn_v.weight"), vec![kv_out, hidden]));
        tensors.push((name("attn_output.weight"), vec![hidden, q_out]));
        tensors.push((name("ffn_norm.weight"), vec![hidden]));
        tensors.push((name("ffn_gate.weight"), vec![ffn, hidden]));
        tensors.push((name("ffn_up.weight"), vec![ffn, hidden]));
        tensors.push((name("ffn_down.weight"), vec![hidden, ffn]));
        if with_bias {
            tensors.push((name("attn_q.bias"), vec![q_out]));
            tensors.push((name("attn_k.bias"), vec![kv_out]));
            tensors.push((name("attn_v.bias"), vec![kv_out]));
        }
    }
    tensors
}

/// Checks that `shapes` (name → shape) has every tensor the decoder needs with the right shape.
pub fn check_tensors(
    architecture: Architecture,
    hp: &Hyperparameters,
    shapes: &BTreeMap<&str, &[usize]>,
) -> Result<(), ImportError> {
    for (name, expected) in expected_tensors(hp, hp.attention_bias) {
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
    if !hp.head_dim.is_multiple_of(2) {
        return Err(hyperparameter(
            "head_dim",
            hp.head_dim,
            "rotary embeddings need it even",
        ));
    }
    Ok(())
}

fn hyperparameter(name: &'static str, value: usize, reason: &str) -> ImportError {
    ImportError::Hyperparameter {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
