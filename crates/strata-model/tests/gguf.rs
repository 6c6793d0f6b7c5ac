//! The GGUF reader against truncated and hostile files (headers whose counts and lengths exceed
//! the file, impossible tensor descriptions), and against the tiny valid llama file.

mod common;

use std::path::Path;

use common::gguf::{F32, GgufWriter, Q8_0, Value, header, put_string, tiny_llama};
use common::listing;
use strata_model::gguf::{GgufFile, GgufValue};
use strata_model::{GgmlType, RopeStyle, import};
use strata_store::{Reference, Store};
use tempfile::TempDir;

/// Writes `bytes` as a GGUF file, imports it into a fresh store and returns the error message,
/// checking that the failed import left the store directory exactly as it was.
fn import_error(bytes: &[u8]) -> String {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, bytes).unwrap();
    let open_error = GgufFile::open(&path).expect_err("the reader accepted a bad file");

    let store = Store::open(dir.path().join("store")).unwrap();
    let before = listing(store.root());
    let reference = Reference::parse("bad:latest").unwrap();
    let error = import::import_gguf(&store, &path, &reference, &mut |_, _| {})
        .expect_err("the import accepted a bad file");
    assert_eq!(
        listing(store.root()),
        before,
        "a failed import changed the store"
    );
    assert_eq!(error.to_string(), open_error.to_string());
    error.to_string()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

#[test]
fn magic_only_file_is_truncated_at_the_version() {
    let message = import_error(b"GGUF");
    assert_eq!(
        message,
        "gguf: truncated: version needs 4 bytes at offset 4, 0 are left"
    );
}

#[test]
fn key_length_past_the_end_of_the_file_is_rejected() {
    let mut bytes = header(3, 0, 1);
    bytes.extend(0xFFFF_FFFF_FFFFu64.to_le_bytes());
    bytes.extend([0u8; 20]);
    assert!(bytes.len() < 64);
    let message = import_error(&bytes);
    assert_eq!(
        message,
        "gguf: key #0 length 281474976710655 exceeds the 20 bytes left in the file"
    );
}

#[test]
fn key_count_larger_than_the_file_is_rejected() {
    let bytes = header(3, 0, 1 << 32);
    let message = import_error(&bytes);
    assert_mentions(
        &message,
        &["metadata key count", "4294967296", "0 bytes left"],
    );
}

#[test]
fn tensor_count_larger_than_the_file_is_rejected() {
    let mut bytes = header(3, u64::MAX, 0);
    bytes.extend([0u8; 40]);
    let message = import_error(&bytes);
    assert_mentions(
        &message,
        &["tensor count", &u64::MAX.to_string(), "40 bytes left"],
    );
}

#[test]
fn array_length_larger_than_the_file_is_rejected() {
    let mut bytes = header(3, 0, 1);
    put_string(&mut bytes, "tokenizer.ggml.tokens");
    bytes.extend(9u32.to_le_bytes()); // array
    bytes.extend(8u32.to_le_bytes()); // of strings
    bytes.extend((1u64 << 40).to_le_bytes());
    bytes.extend([0u8; 16]);
    let message = import_error(&bytes);
    assert_mentions(
        &message,
        &[
            "\"tokenizer.ggml.tokens\"",
            "1099511627776",
            "16 bytes left",
        ],
    );
}

/// A file with one tensor description whose dimension count and type id are given, and enough
/// zero bytes after it for any dimensions it claims to fit.
fn one_tensor(name: &str, n_dims: u32, type_id: u32) -> Vec<u8> {
    let mut bytes = header(3, 1, 0);
    put_string(&mut bytes, name);
    bytes.extend(n_dims.to_le_bytes());
    for _ in 0..n_dims.min(8) {
        bytes.extend(2u64.to_le_bytes());
    }
    bytes.extend(type_id.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.resize(bytes.len().next_multiple_of(32) + 1024, 0);
    bytes
}

#[test]
fn five_dimensions_are_rejected_with_the_tensor_name() {
    let message = import_error(&one_tensor("blk.0.attn_q.weight", 5, F32));
    assert_eq!(
        message,
        "gguf: tensor \"blk.0.attn_q.weight\" has 5 dimensions; at most 4 are supported"
    );
}

#[test]
fn huge_dimension_count_is_rejected_before_reading_dimensions() {
    let message = import_error(&one_tensor("x", u32::MAX, F32));
    assert_eq!(
        message,
        "gguf: tensor \"x\" has 4294967295 dimensions; at most 4 are supported"
    );
}

#[test]
fn unknown_tensor_type_is_rejected_with_the_known_ids() {
    let message = import_error(&one_tensor("x", 2, 0xFFFF));
    assert_eq!(
        message,
        "gguf: tensor \"x\" has type id 65535; supported ids are 0-3, 6-15 and 30"
    );
}

#[test]
fn retired_tensor_type_ids_are_rejected() {
    // Ids 4 and 5 were Q4_2 and Q4_3, which GGML dropped; 16 onwards are i-quants and integers.
    for type_id in [4, 5, 16, 29, 31] {
        let message = import_error(&one_tensor("x", 2, type_id));
        assert_eq!(
            message,
            format!("gguf: tensor \"x\" has type id {type_id}; supported ids are 0-3, 6-15 and 30")
        );
    }
}

#[test]
fn supported_type_ids_match_the_error_message() {
    let supported: Vec<u32> = (0..=3).chain(6..=15).chain([30]).collect();
    let mut ids: Vec<u32> = strata_model::dtype::ALL
        .iter()
        .map(|t| t.gguf_id())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, supported);
    for id in supported {
        assert!(GgmlType::from_gguf_id(id).is_some(), "id {id}");
    }
}

#[test]
fn truncated_dimension_names_the_tensor() {
    let mut bytes = header(3, 1, 0);
    put_string(&mut bytes, "blk.0.attn_q.weight");
    bytes.extend(2u32.to_le_bytes());
    bytes.extend(32u64.to_le_bytes());
    bytes.extend([0u8; 4]);
    bytes.resize(24 + 8 + 19 + 4 + 8 + 4, 0);
    let message = import_error(&bytes);
    assert_eq!(
        message,
        "gguf: truncated: dimension 1 of tensor \"blk.0.attn_q.weight\" needs 8 bytes at \
         offset 63, 4 are left"
    );
}

#[test]
fn empty_file_is_truncated_at_the_magic() {
    let message = import_error(b"");
    assert_eq!(
        message,
        "gguf: truncated: magic needs 4 bytes at offset 0, 0 are left"
    );
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = tiny_llama().to_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    let message = import_error(&bytes);
    assert_eq!(
        message,
        "gguf: not a GGUF file: the magic is [47, 47, 4d, 4c], expected \"GGUF\""
    );
}

#[test]
fn tensor_past_the_end_of_the_file_is_rejected() {
    let mut writer = GgufWriter::new();
    writer.tensor("x", &[8], F32, vec![0; 32]);
    let mut bytes = writer.to_bytes();
    bytes.truncate(bytes.len() - 4);
    let message = import_error(&bytes);
    assert_mentions(
        &message,
        &[
            "\"x\"",
            "past the end",
            &format!("{}-byte file", bytes.len()),
        ],
    );
}

#[test]
fn dimension_product_overflow_is_rejected() {
    let mut writer = GgufWriter::new();
    writer.tensor("x", &[1 << 40, 1 << 40], F32, vec![0; 32]);
    let message = import_error(&writer.to_bytes());
    assert_mentions(&message, &["\"x\"", "1099511627776"]);
}

#[test]
fn elements_not_filling_whole_blocks_are_rejected() {
    let mut writer = GgufWriter::new();
    writer.tensor("x", &[2, 20], Q8_0, vec![0; 68]);
    let message = import_error(&writer.to_bytes());
    assert_mentions(
        &message,
        &["\"x\"", "[2, 20]", "40 elements", "32-element q8_0"],
    );
}

#[test]
fn overlapping_tensors_are_rejected() {
    let mut writer = GgufWriter::new();
    writer.tensor("first", &[16], F32, vec![0; 64]);
    writer.tensor("second", &[16], F32, vec![0; 64]);
    let mut bytes = writer.to_bytes();
    // Point the second tensor's offset (the last 8 bytes of its description) at the first.
    let name_at = bytes.windows(6).rposition(|w| w == b"second").unwrap();
    let offset_at = name_at + 6 + 4 + 8 + 4;
    bytes[offset_at..offset_at + 8].copy_from_slice(&32u64.to_le_bytes());
    let message = import_error(&bytes);
    assert_eq!(message, "gguf: tensors \"first\" and \"second\" overlap");
}

#[test]
fn misaligned_tensor_offset_is_rejected() {
    let mut writer = GgufWriter::new();
    writer.set("general.alignment", Value::U32(64));
    writer.alignment = 32;
    writer.tensor("a", &[8], F32, vec![0; 32]);
    writer.tensor("b", &[8], F32, vec![0; 32]);
    let message = import_error(&writer.to_bytes());
    assert_eq!(
        message,
        "gguf: tensor \"b\" offset 32 is not a multiple of the alignment 64"
    );
}

#[test]
fn unsupported_version_is_rejected() {
    let mut writer = GgufWriter::new();
    writer.version = 1;
    let message = import_error(&writer.to_bytes());
    assert_eq!(
        message,
        "gguf: version 1 is not supported; versions 2 and 3 are"
    );
}

fn open_tiny(dir: &Path, writer: &GgufWriter) -> GgufFile {
    GgufFile::open(&writer.write(dir, "tiny.gguf")).expect("open tiny gguf")
}

#[test]
fn tiny_llama_metadata_and_tensors_read_back() {
    let dir = TempDir::new().unwrap();
    let file = open_tiny(dir.path(), &tiny_llama());
    assert_eq!(file.version(), 3);
    let metadata = file.metadata();
    assert_eq!(metadata["general.architecture"].as_str(), Some("llama"));
    assert_eq!(metadata["llama.block_count"].as_u64(), Some(2));
    assert!(
        matches!(&metadata["tokenizer.ggml.tokens"], GgufValue::Array(items) if items.len() == 10)
    );

    let q = &file.tensors()[2];
    assert_eq!(q.name, "blk.0.attn_q.weight");
    assert_eq!(q.dtype, GgmlType::Q8_0);
    assert_eq!(q.shape, vec![32, 32]);
    assert_eq!(q.range.len(), 32 * 34);
    assert_eq!(q.range.start % 32, 0);
    let down = file
        .tensors()
        .iter()
        .find(|t| t.name == "blk.0.ffn_down.weight")
        .unwrap();
    assert_eq!(down.shape, vec![32, 64], "shape is outermost first");
}

#[test]
fn tensor_set_views_share_the_file_bytes() {
    let dir = TempDir::new().unwrap();
    let writer = tiny_llama();
    let file = open_tiny(dir.path(), &writer);
    let set = file.tensor_set();
    assert_eq!(set.len(), writer.tensors.len());
    for tensor in &writer.tensors {
        let view = set.get(&tensor.name).expect("tensor in set");
        assert_eq!(view.bytes(), tensor.data.as_slice(), "{}", tensor.name);
    }
}

#[test]
fn hyperparameters_come_from_llama_metadata() {
    let dir = TempDir::new().unwrap();
    let model = open_tiny(dir.path(), &tiny_llama()).model().expect("model");
    let hp = model.hyperparameters;
    assert_eq!(hp.vocab_size, 10);
    assert_eq!(hp.hidden_size, 32);
    assert_eq!(hp.intermediate_size, 64);
    assert_eq!(hp.num_hidden_layers, 2);
    assert_eq!(hp.num_attention_heads, 4);
    assert_eq!(hp.num_key_value_heads, 2);
    assert_eq!(hp.head_dim, 8, "hidden ÷ heads when key_length is absent");
    assert_eq!(hp.max_position_embeddings, 128);
    assert_eq!(hp.rms_norm_eps, f64::from(1e-5f32));
    assert_eq!(hp.rope_theta, 100_000.0);
    assert_eq!(hp.rope_style, RopeStyle::Interleaved);
    assert!(hp.tie_word_embeddings);
    assert!(!hp.attention_bias);
    assert_eq!(model.chat_template.as_deref(), Some(common::CHAT_TEMPLATE));
}

#[test]
fn rope_base_defaults_and_qwen2_uses_half_rope() {
    let dir = TempDir::new().unwrap();
    let mut writer = tiny_llama();
    for (key, _) in writer.metadata.iter_mut() {
        if let Some(rest) = key.strip_prefix("llama.") {
            *key = format!("qwen2.{rest}");
        }
    }
    writer.set("general.architecture", Value::Str("qwen2".into()));
    writer.remove("qwen2.rope.freq_base");
    let hp = open_tiny(dir.path(), &writer)
        .model()
        .expect("model")
        .hyperparameters;
    assert_eq!(hp.rope_theta, 10_000.0);
    assert_eq!(hp.rope_style, RopeStyle::Half);
}

#[test]
fn version_2_files_read() {
    let dir = TempDir::new().unwrap();
    let mut writer = tiny_llama();
    writer.version = 2;
    assert_eq!(open_tiny(dir.path(), &writer).version(), 2);
}

#[test]
fn metadata_of_the_wrong_type_names_the_key() {
    let dir = TempDir::new().unwrap();
    let mut writer = tiny_llama();
    writer.set("llama.block_count", Value::Str("one".into()));
    let error = open_tiny(dir.path(), &writer)
        .model()
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "gguf: key \"llama.block_count\" is a string, expected an integer"
    );

    let mut writer = tiny_llama();
    writer.set("tokenizer.ggml.eos_token_id", Value::Str("1".into()));
    let error = open_tiny(dir.path(), &writer)
        .model()
        .unwrap_err()
        .to_string();
    assert_mentions(&error, &["tokenizer.ggml.eos_token_id", "string"]);
}

#[test]
fn missing_hyperparameter_names_the_key() {
    let dir = TempDir::new().unwrap();
    let mut writer = tiny_llama();
    writer.remove("llama.embedding_length");
    let error = open_tiny(dir.path(), &writer)
        .model()
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "gguf: key \"llama.embedding_length\" is missing; it is required for llama models"
    );
}
