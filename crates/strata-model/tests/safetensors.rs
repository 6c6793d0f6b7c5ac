//! Hugging Face directories with broken safetensors files (header lengths past the file or the
//! limit) or configs: each import fails naming the cause and leaves the store as it was.

mod common;

use std::path::Path;

use common::{hf, listing};
use safetensors::Dtype;
use strata_model::import;
use strata_store::{Reference, Store};
use tempfile::TempDir;

/// Writes the tiny llama directory, lets `spoil` damage it, imports it into a fresh store and
/// returns the error message, checking that the store directory did not change.
fn import_error(spoil: impl FnOnce(&Path)) -> String {
    let dir = TempDir::new().unwrap();
    let model_dir = dir.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    hf::write_tiny_llama(&model_dir);
    spoil(&model_dir);

    let store = Store::open(dir.path().join("store")).unwrap();
    let before = listing(store.root());
    let reference = Reference::parse("bad").unwrap();
    let error = import::import_hf_dir(&store, &model_dir, &reference, &mut |_, _| {})
        .expect_err("the import accepted a bad directory");
    assert_eq!(
        listing(store.root()),
        before,
        "a failed import changed the store"
    );
    error.to_string()
}

/// Replaces the directory's weights with one `model.safetensors` holding `bytes`, and returns
/// its path as error messages show it.
fn replace_weights(dir: &Path, bytes: &[u8]) -> String {
    for index in 1..=2 {
        std::fs::remove_file(dir.join(format!("model-0000{index}-of-00002.safetensors"))).unwrap();
    }
    let path = dir.join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn all_ff_header_length_names_the_length_and_file_size() {
    let mut path = String::new();
    let message = import_error(|dir| path = replace_weights(dir, &[0xFF; 8]));
    assert_eq!(
        message,
        format!(
            "{path}: header length 18446744073709551615 does not fit: the file has 8 bytes and \
             headers are limited to 100000000 bytes"
        )
    );
}

#[test]
fn header_length_past_the_limit_names_the_length_and_file_size() {
    let mut bytes = 132_095_296u64.to_le_bytes().to_vec();
    assert_eq!(bytes, [0x40, 0x9D, 0xDF, 0x07, 0, 0, 0, 0]);
    bytes.extend([b' '; 10]);
    let message = import_error(|dir| {
        replace_weights(dir, &bytes);
    });
    assert!(message.contains("header length 132095296"), "{message}");
    assert!(message.contains("the file has 18 bytes"), "{message}");
    assert!(message.contains("limited to 100000000 bytes"), "{message}");
}

#[test]
fn header_length_past_the_end_of_the_file_names_both() {
    let mut bytes = 64u64.to_le_bytes().to_vec();
    bytes.resize(40, b' ');
    let message = import_error(|dir| {
        replace_weights(dir, &bytes);
    });
    assert!(
        message.contains("header length 64 does not fit"),
        "{message}"
    );
    assert!(message.contains("the file has 40 bytes"), "{message}");
    assert!(message.contains("limited to 100000000 bytes"), "{message}");
}

#[test]
fn bad_shard_is_rejected_beside_a_good_one() {
    let message = import_error(|dir| {
        let path = dir.join("model-00002-of-00002.safetensors");
        std::fs::write(path, [0xFF; 8]).unwrap();
    });
    assert!(
        message.contains("model-00002-of-00002.safetensors: header length"),
        "{message}"
    );
}

#[test]
fn file_shorter_than_the_header_length_is_rejected() {
    let message = import_error(|dir| {
        replace_weights(dir, &[1, 2, 3]);
    });
    assert!(message.ends_with("the file has 3 bytes, fewer than the 8-byte header length"));
}

#[test]
fn unsupported_dtype_names_the_tensor() {
    let message = import_error(|dir| {
        let mut shard = hf::tiny_llama_tensors()[0].clone();
        shard[0].1 = Dtype::I16;
        hf::write_safetensors(&dir.join("model-00001-of-00002.safetensors"), &shard);
    });
    assert!(
        message.ends_with(
            "tensor \"model.embed_tokens.weight\" has dtype I16; strata imports F32, F16 and BF16"
        ),
        "{message}"
    );
}

#[test]
fn tensor_in_two_shards_is_rejected() {
    let message = import_error(|dir| {
        let [first, _] = hf::tiny_llama_tensors();
        hf::write_safetensors(&dir.join("model-00003-of-00002.safetensors"), &first[..1]);
    });
    assert_eq!(message, "tensor \"token_embd.weight\" appears twice");
}

#[test]
fn unsupported_architecture_is_rejected() {
    let message = import_error(|dir| {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("LlamaForCausalLM", "MistralForCausalLM");
        std::fs::write(path, text.replace("\"llama\"", "\"mistral\"")).unwrap();
    });
    assert!(
        message.contains("model_type mistral with architectures MistralForCausalLM"),
        "{message}"
    );
    assert!(
        message.contains("llama (LlamaForCausalLM) and qwen2"),
        "{message}"
    );
}

#[test]
fn hyperparameter_of_the_wrong_type_names_the_key() {
    let message = import_error(|dir| {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace(
                "\"num_key_value_heads\": 1",
                "\"num_key_value_heads\": \"1\"",
            ),
        )
        .unwrap();
    });
    assert!(
        message.ends_with("num_key_value_heads is \"1\", expected a whole number"),
        "{message}"
    );
}

#[test]
fn misshaped_tensor_is_rejected_by_gguf_name() {
    let message = import_error(|dir| {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"intermediate_size\": 64", "\"intermediate_size\": 96"),
        )
        .unwrap();
    });
    assert_eq!(
        message,
        "tensor \"blk.0.ffn_gate.weight\" has shape [64, 32], expected [96, 32]"
    );
}

#[test]
fn invalid_tokenizer_json_is_rejected() {
    let message = import_error(|dir| {
        std::fs::write(dir.join("tokenizer.json"), "{\"model\": 3}").unwrap();
    });
    assert!(
        message.starts_with("the tokenizer does not load:"),
        "{message}"
    );
}

/// Rewrites `config.json` with `edit` applied to its JSON object.
fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(config.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn missing_hyperparameter_names_the_key() {
    let mut path = String::new();
    let message = import_error(|dir| {
        path = dir.join("config.json").display().to_string();
        edit_config(dir, |config| {
            config.remove("num_hidden_layers");
        });
    });
    assert_eq!(message, format!("{path}: num_hidden_layers is missing"));
}

#[test]
fn missing_output_tensor_of_an_untied_model_is_rejected() {
    let message = import_error(|dir| {
        let [_, mut second] = hf::tiny_llama_tensors();
        second.retain(|tensor| tensor.0 != "lm_head.weight");
        hf::write_safetensors(&dir.join("model-00002-of-00002.safetensors"), &second);
    });
    assert_eq!(
        message,
        "tensor \"output.weight\" is missing; a llama model needs it"
    );
}

#[test]
fn zero_attention_heads_are_rejected() {
    let message = import_error(|dir| {
        edit_config(dir, |config| {
            config.insert("num_attention_heads".into(), 0.into());
        });
    });
    assert_eq!(
        message,
        "hyperparameter num_attention_heads is 0; it must be positive"
    );
}

#[test]
fn missing_config_json_is_rejected_by_path() {
    let mut path = String::new();
    let message = import_error(|dir| {
        path = dir.join("config.json").display().to_string();
        std::fs::remove_file(dir.join("config.json")).unwrap();
    });
    assert!(
        message.starts_with(&format!("cannot read {path}")),
        "{message}"
    );
}
