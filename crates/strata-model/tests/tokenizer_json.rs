//! Builds `tokenizer.json` documents from small GGUF tokenizer specs and loads them with the
//! `tokenizers` crate, checking the encodings and every validation error.

use std::str::FromStr;

use strata_model::tokenizer_json::{
    BuiltTokenizer, GgufTokenizerSpec, TokenizerJsonError, build_tokenizer_json,
};
use tokenizers::Tokenizer;

/// Returns a byte-level vocabulary: a control token, a user-defined token, letters, digits and `Ġ`
/// (GPT-2's spelling of a space), with merges for `ab`, ` a` and `12`.
fn tiny_spec() -> GgufTokenizerSpec {
    let tokens = [
        "<|endoftext|>",
        "<|im_end|>",
        "<think>",
        "a",
        "b",
        "ab",
        "Ġ",
        "Ġa",
        "1",
        "2",
        "12",
    ];
    GgufTokenizerSpec {
        model: "gpt2".to_owned(),
        pre: Some("smollm".to_owned()),
        tokens: tokens.iter().map(|token| token.to_string()).collect(),
        token_types: Some(vec![3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1]),
        merges: vec!["a b".to_owned(), "Ġ a".to_owned(), "1 2".to_owned()],
        bos_token_id: Some(0),
        eos_token_id: Some(0),
        eot_token_id: Some(1),
        ..GgufTokenizerSpec::default()
    }
}

fn build(spec: &GgufTokenizerSpec) -> BuiltTokenizer {
    build_tokenizer_json(spec).expect("build tokenizer.json")
}

fn load(built: &BuiltTokenizer) -> Tokenizer {
    Tokenizer::from_str(&built.json).expect("load tokenizer.json")
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer
        .encode(text, false)
        .expect("encode")
        .get_ids()
        .to_vec()
}

fn build_error(spec: &GgufTokenizerSpec) -> String {
    match build_tokenizer_json(spec) {
        Ok(_) => panic!("expected an error for {spec:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn gpt2_spec_encodes_with_merges() {
    let tokenizer = load(&build(&tiny_spec()));
    assert_eq!(encode(&tokenizer, "ab a"), vec![5, 7]);
}

#[test]
fn gpt2_spec_decodes_byte_level_spaces() {
    let tokenizer = load(&build(&tiny_spec()));
    assert_eq!(tokenizer.decode(&[5, 7], false).expect("decode"), "ab a");
}

#[test]
fn control_token_encodes_as_one_special_id() {
    let tokenizer = load(&build(&tiny_spec()));
    assert_eq!(encode(&tokenizer, "a<|im_end|>"), vec![3, 1]);
    let decoder = tokenizer.get_added_tokens_decoder();
    assert!(decoder[&1].special);
}

#[test]
fn user_defined_token_is_added_but_not_special() {
    let tokenizer = load(&build(&tiny_spec()));
    assert_eq!(encode(&tokenizer, "<think>"), vec![2]);
    let decoder = tokenizer.get_added_tokens_decoder();
    assert!(!decoder[&2].special);
}

#[test]
fn smollm_pre_tokenizer_splits_digits() {
    let tokenizer = load(&build(&tiny_spec()));
    assert_eq!(encode(&tokenizer, "12"), vec![8, 9]);
}

#[test]
fn default_pre_tokenizer_merges_digits() {
    let spec = GgufTokenizerSpec {
        pre: None,
        ..tiny_spec()
    };
    let tokenizer = load(&build(&spec));
    assert_eq!(encode(&tokenizer, "12"), vec![10]);
}

#[test]
fn qwen2_and_llama_bpe_pre_tokenizers_load() {
    for pre in ["qwen2", "llama-bpe", "some-future-name"] {
        let spec = GgufTokenizerSpec {
            pre: Some(pre.to_owned()),
            ..tiny_spec()
        };
        let tokenizer = load(&build(&spec));
        assert_eq!(
            encode(&tokenizer, "ab a"),
            vec![5, 7],
            "pre-tokenizer {pre}"
        );
    }
}

#[test]
fn special_token_texts_come_from_vocab() {
    let built = build(&tiny_spec());
    assert_eq!(built.bos_token.as_deref(), Some("<|endoftext|>"));
    assert_eq!(built.eos_token.as_deref(), Some("<|endoftext|>"));
}

#[test]
fn add_bos_token_defaults_to_false() {
    assert!(!build(&tiny_spec()).add_bos_token);
    let spec = GgufTokenizerSpec {
        add_bos_token: Some(true),
        ..tiny_spec()
    };
    assert!(build(&spec).add_bos_token);
}

#[test]
fn stop_ids_are_deduplicated_in_key_order() {
    let spec = GgufTokenizerSpec {
        eom_token_id: Some(0),
        ..tiny_spec()
    };
    assert_eq!(build(&spec).stop_token_ids, vec![0, 1]);
}

#[test]
fn missing_special_ids_build_without_stop_ids() {
    let spec = GgufTokenizerSpec {
        model: "gpt2".to_owned(),
        tokens: vec!["a".to_owned(), "b".to_owned()],
        ..GgufTokenizerSpec::default()
    };
    let built = build(&spec);
    assert!(built.stop_token_ids.is_empty());
    assert_eq!(built.eos_token, None);
    assert_eq!(encode(&load(&built), "ab"), vec![0, 1]);
}

#[test]
fn token_type_count_mismatch_is_rejected() {
    let spec = GgufTokenizerSpec {
        token_types: Some(vec![1, 1]),
        ..tiny_spec()
    };
    let message = build_error(&spec);
    assert!(message.contains("tokenizer.ggml.token_type"), "{message}");
    assert!(message.contains("2 entries"), "{message}");
    assert!(message.contains("11 entries"), "{message}");
}

#[test]
fn out_of_range_special_id_is_rejected() {
    let spec = GgufTokenizerSpec {
        padding_token_id: Some(11),
        ..tiny_spec()
    };
    let message = build_error(&spec);
    assert!(
        message.contains("tokenizer.ggml.padding_token_id"),
        "{message}"
    );
    assert!(message.contains("token id 11"), "{message}");
    assert!(message.contains("vocabulary of 11 tokens"), "{message}");
}

#[test]
fn unknown_model_is_rejected_by_name() {
    let spec = GgufTokenizerSpec {
        model: "rwkv".to_owned(),
        ..tiny_spec()
    };
    let message = build_error(&spec);
    assert!(message.contains("`rwkv`"), "{message}");
    assert!(message.contains("tokenizer.ggml.model"), "{message}");
}

#[test]
fn merge_without_space_is_rejected() {
    let spec = GgufTokenizerSpec {
        merges: vec!["ab".to_owned()],
        ..tiny_spec()
    };
    let error = build_tokenizer_json(&spec).expect_err("merge without a space");
    assert!(
        matches!(error, TokenizerJsonError::InvalidMerge { index: 0, .. }),
        "{error}"
    );
}

#[test]
fn merge_of_unknown_token_fails_to_load() {
    let spec = GgufTokenizerSpec {
        merges: vec!["x y".to_owned()],
        ..tiny_spec()
    };
    let error = build_tokenizer_json(&spec).expect_err("merge of tokens outside the vocabulary");
    assert!(matches!(error, TokenizerJsonError::Load { .. }), "{error}");
}

#[test]
fn empty_vocabulary_is_rejected() {
    let spec = GgufTokenizerSpec {
        model: "gpt2".to_owned(),
        ..GgufTokenizerSpec::default()
    };
    let error = build_tokenizer_json(&spec).expect_err("empty vocabulary");
    assert!(
        matches!(error, TokenizerJsonError::EmptyVocabulary),
        "{error}"
    );
}
