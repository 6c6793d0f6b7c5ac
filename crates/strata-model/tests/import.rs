//! Importing the tiny GGUF llama and the tiny Hugging Face directory into a store, loading them
//! back, and importing the real SmolLM2 file when `STRATA_TEST_GGUF` names it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::gguf::{GgufWriter, tiny_llama};
use common::{hf, listing};
use strata_model::import::{self, ImportOutcome};
use strata_model::load::LoadedModel;
use strata_model::{GgmlType, RopeStyle, media};
use strata_store::{Digest, Reference, Store};
use tempfile::TempDir;

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn import_gguf(store: &Store, path: &Path, name: &str) -> ImportOutcome {
    import::import_gguf(store, path, &reference(name), &mut |_, _| {}).expect("import gguf")
}

fn tensor_blobs(store: &Store, outcome: &ImportOutcome) -> BTreeSet<Digest> {
    let manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();
    manifest
        .layers
        .iter()
        .filter(|layer| layer.media_type == media::WEIGHT_MEDIA_TYPE)
        .map(|layer| layer.digest.clone())
        .collect()
}

#[test]
fn tiny_gguf_imports_with_identical_tensors_stored_once() {
    let dir = TempDir::new().unwrap();
    let writer = tiny_llama();
    let path = writer.write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut calls = Vec::new();
    let outcome = import::import_gguf(&store, &path, &reference("tiny"), &mut |done, total| {
        calls.push((done, total))
    })
    .expect("import");

    let total: u64 = writer.tensors.iter().map(|t| t.data.len() as u64).sum();
    assert_eq!(outcome.tensors, writer.tensors.len());
    assert_eq!(outcome.bytes_written + outcome.bytes_deduplicated, total);
    assert_eq!(
        outcome.bytes_deduplicated,
        32 * 4,
        "ffn_norm repeats attn_norm's bytes"
    );
    assert_eq!(calls.last(), Some(&(total, total)));
    assert_eq!(
        tensor_blobs(&store, &outcome).len(),
        writer.tensors.len() - 1
    );
    assert_eq!(
        store.resolve(&reference("tiny")).unwrap().digest,
        outcome.descriptor.digest
    );
}

#[test]
fn tiny_gguf_manifest_has_one_annotated_layer_per_tensor_in_file_order() {
    let dir = TempDir::new().unwrap();
    let writer = tiny_llama();
    let path = writer.write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let outcome = import_gguf(&store, &path, "tiny");
    let manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();

    assert_eq!(
        manifest.artifact_type.as_deref(),
        Some(media::MODEL_ARTIFACT_TYPE)
    );
    assert_eq!(manifest.config.media_type, media::MODEL_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest.layers.len(), writer.tensors.len() + 2);
    for (layer, tensor) in manifest.layers.iter().zip(&writer.tensors) {
        assert_eq!(layer.media_type, media::WEIGHT_MEDIA_TYPE);
        assert_eq!(layer.annotations[media::TENSOR_NAME], tensor.name);
        assert_eq!(layer.size, tensor.data.len() as u64);
        let shape = serde_json::to_string(&tensor.shape).unwrap();
        assert_eq!(layer.annotations[media::TENSOR_SHAPE], shape);
    }
    let q = &manifest.layers[2];
    assert_eq!(q.annotations[media::TENSOR_DTYPE], "q8_0");
    let tail: Vec<(&str, &str)> = manifest.layers[writer.tensors.len()..]
        .iter()
        .map(|l| {
            (
                l.media_type.as_str(),
                l.annotations["org.opencontainers.image.title"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            (media::TOKENIZER_MEDIA_TYPE, "tokenizer.json"),
            (media::CHAT_TEMPLATE_MEDIA_TYPE, "chat_template.jinja")
        ]
    );
}

#[test]
fn tiny_gguf_loads_back_with_identical_bytes_and_config() {
    let dir = TempDir::new().unwrap();
    let writer = tiny_llama();
    let path = writer.write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let outcome = import_gguf(&store, &path, "tiny:v1");

    let model = LoadedModel::open(&store, &reference("tiny:v1")).expect("load");
    assert_eq!(model.manifest_digest, outcome.descriptor.digest);
    assert_eq!(model.tensors.len(), writer.tensors.len());
    for tensor in &writer.tensors {
        let view = model.tensors.get(&tensor.name).expect("tensor loaded");
        assert_eq!(view.bytes(), tensor.data.as_slice(), "{}", tensor.name);
        let shape: Vec<u64> = view.shape.iter().map(|&d| d as u64).collect();
        assert_eq!(shape, tensor.shape);
    }
    assert_eq!(
        model.tensors.get("blk.0.ffn_up.weight").unwrap().dtype,
        GgmlType::Q4_1
    );
    assert_eq!(model.chat_template.as_deref(), Some(common::CHAT_TEMPLATE));
    let tokenizer: serde_json::Value = serde_json::from_slice(&model.tokenizer_json).unwrap();
    assert_eq!(tokenizer["model"]["type"], "BPE");

    let config = &model.config;
    assert_eq!(config.descriptor.family, "llama");
    assert_eq!(config.descriptor.name.as_deref(), Some("tiny llama"));
    assert_eq!(config.config.format, "gguf");
    assert_eq!(config.config.quantization, "f32");
    assert_eq!(config.config.param_size, "10K");
    assert_eq!(config.strata.parent, None);
    assert_eq!(config.strata.source.file, "tiny.gguf");
    let file_digest = Digest::of(&std::fs::read(&path).unwrap());
    assert_eq!(config.strata.source.sha256, Some(file_digest));
    let manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();
    let layer_digests: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(config.modelfs.diff_ids, layer_digests);
    assert_eq!(
        config.strata.tokenizer.eos_token.as_deref(),
        Some("<|im_end|>")
    );
    assert_eq!(config.strata.tokenizer.stop_token_ids, vec![1]);
    assert_eq!(
        config.strata.hyperparameters.rope_style,
        RopeStyle::Interleaved
    );
}

#[test]
fn second_import_of_the_same_file_writes_no_tensor_blob() {
    let dir = TempDir::new().unwrap();
    let path = tiny_llama().write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let first = import_gguf(&store, &path, "tiny:a");
    let blobs = listing(&store.root().join("blobs"));
    let second = import_gguf(&store, &path, "tiny:b");

    assert_eq!(second.bytes_written, 0);
    assert_eq!(
        second.bytes_deduplicated,
        first.bytes_written + first.bytes_deduplicated
    );
    let new_blobs: Vec<String> = listing(&store.root().join("blobs"))
        .into_keys()
        .filter(|name| !blobs.contains_key(name))
        .collect();
    // Only the config (new creation time) and the manifest that names it are new.
    assert!(new_blobs.len() <= 2, "new blobs: {new_blobs:?}");
    assert_eq!(tensor_blobs(&store, &first), tensor_blobs(&store, &second));
}

fn failed_import_leaves_store_unchanged(writer: &GgufWriter, expected: &str) {
    let dir = TempDir::new().unwrap();
    let good = tiny_llama().write(dir.path(), "good.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    import_gguf(&store, &good, "tiny");
    let before = listing(store.root());
    let tags = store.list_tags().unwrap();

    let path = writer.write(dir.path(), "bad.gguf");
    let error = import::import_gguf(&store, &path, &reference("tiny"), &mut |_, _| {})
        .expect_err("bad model imported");
    assert_eq!(error.to_string(), expected);
    assert_eq!(listing(store.root()), before);
    assert_eq!(store.list_tags().unwrap().len(), tags.len());
    assert_eq!(
        store.resolve(&reference("tiny")).unwrap(),
        tags[0].descriptor
    );
}

#[test]
fn missing_decoder_tensor_is_an_import_error_naming_it() {
    let mut writer = tiny_llama();
    writer.tensors.retain(|t| t.name != "blk.0.ffn_up.weight");
    failed_import_leaves_store_unchanged(
        &writer,
        "tensor \"blk.0.ffn_up.weight\" is missing; a llama model needs it",
    );
}

#[test]
fn misshaped_decoder_tensor_is_an_import_error_naming_it() {
    let mut writer = tiny_llama();
    let k = writer
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.0.attn_k.weight")
        .unwrap();
    k.shape = vec![32, 16];
    failed_import_leaves_store_unchanged(
        &writer,
        "tensor \"blk.0.attn_k.weight\" has shape [32, 16], expected [16, 32]",
    );
}

#[test]
fn bad_tokenizer_metadata_is_an_import_error_naming_the_key() {
    let mut writer = tiny_llama();
    writer.set(
        "tokenizer.ggml.token_type",
        common::gguf::Value::I32s(vec![1, 1]),
    );
    failed_import_leaves_store_unchanged(
        &writer,
        "tokenizer: invalid tokenizer.ggml.token_type: 2 entries for 10 entries in \
         tokenizer.ggml.tokens, expected one type per token",
    );
}

#[test]
fn tiny_hf_directory_round_trips_with_gguf_names() {
    let dir = TempDir::new().unwrap();
    let model_dir = dir.path().join("tiny-hf");
    std::fs::create_dir(&model_dir).unwrap();
    hf::write_tiny_llama(&model_dir);
    let store = Store::open(dir.path().join("store")).unwrap();
    let outcome = import::import_hf_dir(&store, &model_dir, &reference("tiny-hf"), &mut |_, _| {})
        .expect("import hf");
    assert_eq!(
        outcome.tensors, 12,
        "the unused rotary_emb.inv_freq is left out"
    );

    let model = LoadedModel::open(&store, &reference("tiny-hf")).expect("load");
    let expected = [
        (
            "model.embed_tokens.weight",
            "token_embd.weight",
            GgmlType::Bf16,
        ),
        ("model.norm.weight", "output_norm.weight", GgmlType::F32),
        ("lm_head.weight", "output.weight", GgmlType::F16),
        (
            "model.layers.0.self_attn.q_proj.weight",
            "blk.0.attn_q.weight",
            GgmlType::F16,
        ),
        (
            "model.layers.0.mlp.down_proj.weight",
            "blk.0.ffn_down.weight",
            GgmlType::Bf16,
        ),
        (
            "model.layers.0.input_layernorm.weight",
            "blk.0.attn_norm.weight",
            GgmlType::F32,
        ),
        (
            "model.layers.0.post_attention_layernorm.weight",
            "blk.0.ffn_norm.weight",
            GgmlType::F32,
        ),
    ];
    let source: Vec<hf::HfTensor> = hf::tiny_llama_tensors().into_iter().flatten().collect();
    for (hf_name, gguf_name, dtype) in expected {
        let (_, _, shape, data) = source.iter().find(|t| t.0 == hf_name).unwrap();
        let view = model.tensors.get(gguf_name).expect(gguf_name);
        assert_eq!(view.dtype, dtype, "{gguf_name}");
        assert_eq!(&view.shape, shape, "{gguf_name}");
        assert_eq!(view.bytes(), data.as_slice(), "{gguf_name}");
    }

    let config = &model.config;
    let hp = &config.strata.hyperparameters;
    assert_eq!(hp.rope_style, RopeStyle::Half);
    assert!(!hp.tie_word_embeddings);
    assert_eq!(
        (hp.num_attention_heads, hp.num_key_value_heads, hp.head_dim),
        (2, 1, 16)
    );
    assert_eq!(config.config.format, "safetensors");
    assert_eq!(config.config.quantization, "bf16");
    assert_eq!(config.strata.source.file, "tiny-hf");
    assert_eq!(
        config.strata.tokenizer.bos_token.as_deref(),
        Some("<|endoftext|>")
    );
    assert_eq!(
        config.strata.tokenizer.eos_token.as_deref(),
        Some("<|im_end|>")
    );
    assert_eq!(config.strata.tokenizer.stop_token_ids, vec![1]);
    assert_eq!(model.tokenizer_json, hf::tokenizer_json().into_bytes());
    assert_eq!(model.chat_template.as_deref(), Some(common::CHAT_TEMPLATE));
}

#[test]
fn real_smollm2_imports_and_loads() {
    let Some(path) = std::env::var_os("STRATA_TEST_GGUF") else {
        eprintln!("note: STRATA_TEST_GGUF is unset; skipping the real-model import test");
        return;
    };
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let outcome = import_gguf(&store, Path::new(&path), "smollm2");
    assert_eq!(outcome.tensors, 272);
    let manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();
    let weights = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == media::WEIGHT_MEDIA_TYPE)
        .count();
    assert_eq!(weights, 272);

    let model = LoadedModel::open(&store, &reference("smollm2")).expect("load");
    let hp = &model.config.strata.hyperparameters;
    assert_eq!(hp.hidden_size, 576);
    assert_eq!(hp.num_hidden_layers, 30);
    assert_eq!(hp.num_attention_heads, 9);
    assert_eq!(hp.num_key_value_heads, 3);
    assert_eq!(hp.vocab_size, 49152);
    assert!(hp.tie_word_embeddings);
    assert_eq!(model.config.config.param_size, "135M");
    assert_eq!(model.config.config.quantization, "q4_1");
    assert_eq!(model.tensors.len(), 272);
    assert!(model.chat_template.is_some());
}
