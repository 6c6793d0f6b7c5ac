//! Importing the tiny GGUF llama and the tiny Hugging Face directory into a store, loading them
//! back, and importing the real SmolLM2 file when `STRATA_TEST_GGUF` names it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use common::gguf::{GgufWriter, Value, set_vocabulary, tiny_llama};
use common::{hf, listing};
use strata_model::gguf::GgufFile;
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
        3 * 32 * 4,
        "the four f32 norms of ones are stored once"
    );
    assert_eq!(calls.last(), Some(&(total, total)));
    assert_eq!(
        tensor_blobs(&store, &outcome).len(),
        writer.tensors.len() - 3
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
        assert_eq!(shape, tensor.shape, "{}", tensor.name);
        assert_eq!(view.dtype.gguf_id(), tensor.type_id, "{}", tensor.name);
    }
    assert_eq!(
        model.tensors.get("blk.1.ffn_up.weight").unwrap().dtype,
        GgmlType::Q4_1
    );
    assert_eq!(
        model.tensors.get("blk.1.attn_q.weight").unwrap().dtype,
        GgmlType::Q8_0
    );
    assert_eq!(model.chat_template.as_deref(), Some(common::CHAT_TEMPLATE));
    let json = std::str::from_utf8(&model.tokenizer_json).expect("tokenizer.json is UTF-8");
    let tokenizer = tokenizers::Tokenizer::from_str(json).expect("tokenizer.json loads");
    assert_eq!(tokenizer.get_vocab_size(true), common::TOKENS.len());
    let encoding = tokenizer.encode("ab", false).expect("encode");
    assert_eq!(encoding.get_ids(), [5], "the merge `a b` gives token 5");

    let file_model = GgufFile::open(&path).unwrap().model().unwrap();
    let hp = &model.config.strata.hyperparameters;
    assert_eq!(*hp, file_model.hyperparameters);
    assert_eq!(hp.num_hidden_layers, 2);
    assert_eq!(hp.num_attention_heads, 4);
    assert_eq!(hp.num_key_value_heads, 2);
    assert!(hp.tie_word_embeddings);

    let config = &model.config;
    assert_eq!(config.descriptor.family, "llama");
    assert_eq!(config.descriptor.name.as_deref(), Some("tiny llama"));
    assert_eq!(config.config.format, "gguf");
    assert_eq!(config.config.quantization, "f32");
    assert_eq!(config.config.param_size, "19K");
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

    let report = store.fsck().expect("fsck");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert!(report.blobs_checked > 0);
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
    writer.set("tokenizer.ggml.token_type", Value::I32s(vec![1, 1]));
    failed_import_leaves_store_unchanged(
        &writer,
        "tokenizer: invalid tokenizer.ggml.token_type: 2 entries for 10 entries in \
         tokenizer.ggml.tokens, expected one type per token",
    );
}

#[test]
fn token_types_shorter_than_tokens_are_rejected_naming_both_lengths() {
    let mut writer = tiny_llama();
    set_vocabulary(&mut writer, &["a", "b", "c"]);
    writer.set("tokenizer.ggml.token_type", Value::I32s(vec![1, 1]));
    failed_import_leaves_store_unchanged(
        &writer,
        "tokenizer: invalid tokenizer.ggml.token_type: 2 entries for 3 entries in \
         tokenizer.ggml.tokens, expected one type per token",
    );
}

/// A gpt2 vocabulary with no special-token ids imports by decision: the tokenizer works, and the
/// config records no special tokens and no stop ids, so generation ends only at the token limit.
#[test]
fn vocabulary_without_special_ids_imports_without_stop_ids() {
    let dir = TempDir::new().unwrap();
    let mut writer = tiny_llama();
    set_vocabulary(&mut writer, &["a", "b"]);
    let path = writer.write(dir.path(), "two-tokens.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    import_gguf(&store, &path, "two-tokens");

    let model = LoadedModel::open(&store, &reference("two-tokens")).expect("load");
    let tokenizer_info = &model.config.strata.tokenizer;
    assert_eq!(tokenizer_info.bos_token, None);
    assert_eq!(tokenizer_info.eos_token, None);
    assert!(tokenizer_info.stop_token_ids.is_empty());
    assert!(!tokenizer_info.add_bos_token);
    assert_eq!(model.config.strata.hyperparameters.vocab_size, 2);
    let json = std::str::from_utf8(&model.tokenizer_json).unwrap();
    let tokenizer = tokenizers::Tokenizer::from_str(json).expect("tokenizer.json loads");
    let encoding = tokenizer.encode("ba", false).expect("encode");
    assert_eq!(encoding.get_ids(), [1, 0]);
}

#[test]
fn unsupported_gguf_architecture_is_rejected_by_name() {
    let mut writer = tiny_llama();
    writer.set("general.architecture", Value::Str("mamba".into()));
    failed_import_leaves_store_unchanged(
        &writer,
        "gguf: architecture \"mamba\" is not supported; llama and qwen2 are",
    );
}

#[test]
fn missing_gguf_hyperparameter_is_rejected_by_key() {
    let mut writer = tiny_llama();
    writer.remove("llama.feed_forward_length");
    failed_import_leaves_store_unchanged(
        &writer,
        "gguf: key \"llama.feed_forward_length\" is missing; it is required for llama models",
    );
}

#[test]
fn zero_head_count_is_rejected() {
    let mut writer = tiny_llama();
    writer.set("llama.attention.head_count_kv", Value::U32(0));
    failed_import_leaves_store_unchanged(
        &writer,
        "hyperparameter num_key_value_heads is 0; it must be positive",
    );
}

#[test]
fn non_finite_rope_base_is_rejected() {
    // JSON has no NaN: the config would store `null` and the version would never load.
    let mut writer = tiny_llama();
    writer.set("llama.rope.freq_base", Value::F32(f32::NAN));
    failed_import_leaves_store_unchanged(
        &writer,
        "hyperparameter rope_theta is NaN; it must be a finite positive number",
    );
}

#[test]
fn infinite_rms_epsilon_is_rejected() {
    let mut writer = tiny_llama();
    writer.set(
        "llama.attention.layer_norm_rms_epsilon",
        Value::F32(f32::INFINITY),
    );
    failed_import_leaves_store_unchanged(
        &writer,
        "hyperparameter rms_norm_eps is inf; it must be a finite number, zero or more",
    );
}

#[test]
fn huge_block_count_fails_at_the_first_missing_layer() {
    // A layer count far past the tensors present must fail fast, not list 2^40 layers' names.
    let mut writer = tiny_llama();
    writer.set("llama.block_count", Value::U64(1 << 40));
    failed_import_leaves_store_unchanged(
        &writer,
        "tensor \"blk.2.attn_norm.weight\" is missing; a llama model needs it",
    );
}

#[test]
fn head_width_overflow_is_rejected() {
    let mut writer = tiny_llama();
    writer.set("llama.attention.key_length", Value::U64(1 << 62));
    failed_import_leaves_store_unchanged(
        &writer,
        "hyperparameter head_dim is 4611686018427387904; 4 heads of it overflow a usize",
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
    let path = Path::new(&path);
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let outcome = import_gguf(&store, path, "smollm2");
    assert_eq!(outcome.tensors, 272);

    let manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();
    let media_types: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert_eq!(manifest.layers.len(), 274);
    assert!(
        media_types[..272]
            .iter()
            .all(|&media_type| media_type == media::WEIGHT_MEDIA_TYPE)
    );
    assert_eq!(media_types[272], media::TOKENIZER_MEDIA_TYPE);
    assert_eq!(media_types[273], media::CHAT_TEMPLATE_MEDIA_TYPE);

    let model = LoadedModel::open(&store, &reference("smollm2")).expect("load");
    let hp = &model.config.strata.hyperparameters;
    assert_eq!(hp.hidden_size, 576);
    assert_eq!(hp.num_hidden_layers, 30);
    assert_eq!(hp.num_attention_heads, 9);
    assert_eq!(hp.num_key_value_heads, 3);
    assert_eq!(hp.head_dim, 64);
    assert_eq!(hp.vocab_size, 49152);
    assert!(hp.tie_word_embeddings);
    assert!(!hp.attention_bias);
    assert_eq!(hp.rope_style, RopeStyle::Interleaved);
    assert_eq!(model.config.config.param_size, "135M");
    assert_eq!(model.config.config.quantization, "q4_1");
    assert_eq!(model.tensors.len(), 272);
    assert!(model.chat_template.is_some());
    let json = std::str::from_utf8(&model.tokenizer_json).unwrap();
    let tokenizer = tokenizers::Tokenizer::from_str(json).expect("tokenizer.json loads");
    assert_eq!(tokenizer.get_vocab_size(true), 49152);

    for view in model.tensors.iter() {
        let expected = if view.name == "token_embd.weight" {
            GgmlType::Q8_0
        } else if view.name.ends_with("norm.weight") {
            GgmlType::F32
        } else {
            GgmlType::Q4_1
        };
        assert_eq!(view.dtype, expected, "{}", view.name);
    }
    let embedding = model.tensors.get("token_embd.weight").unwrap();
    assert_eq!(embedding.shape, vec![49152, 576]);

    let file_set = GgufFile::open(path).unwrap().tensor_set();
    assert_eq!(file_set.len(), 272);
    for name in [
        "token_embd.weight",
        "output_norm.weight",
        "blk.0.attn_q.weight",
        "blk.29.ffn_down.weight",
    ] {
        let from_file = file_set.get(name).expect(name);
        let loaded = model.tensors.get(name).expect(name);
        assert_eq!(loaded.bytes(), from_file.bytes(), "{name}");
        assert_eq!(loaded.shape, from_file.shape, "{name}");
        assert_eq!(loaded.dtype, from_file.dtype, "{name}");
    }

    let report = store.fsck().expect("fsck");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
