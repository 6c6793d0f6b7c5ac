//! Fixtures of the snapshot tests: a store with the real SmolLM2 imported, an engine on it, and
//! helpers that feed tokens and read logits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strata_model::import;
use strata_model::load::LoadedModel;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::template::Message;
use strata_runtime::{SamplingParams, Sequence};
use strata_store::{Reference, Store};

/// Path of the real GGUF from `STRATA_TEST_GGUF`, or `None` (and a note) to skip.
pub(crate) fn real_gguf() -> Option<PathBuf> {
    match std::env::var_os("STRATA_TEST_GGUF") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("skipped: set STRATA_TEST_GGUF to the SmolLM2 GGUF to run this test");
            None
        }
    }
}

/// Imports `gguf` into a store at `home` as `name`.
pub(crate) fn import_model(home: &Path, gguf: &Path, name: &str) -> Store {
    let store = Store::open(home).expect("open store");
    let reference = Reference::parse(name).unwrap();
    import::import_gguf(&store, gguf, &reference, &mut |_, _| {}).expect("import");
    store
}

/// Loads `name` from `store`.
pub(crate) fn engine(store: &Store, name: &str) -> Engine {
    let loaded = LoadedModel::open(store, &Reference::parse(name).unwrap()).expect("load");
    Engine::load(&loaded).expect("engine")
}

/// Greedy settings with a small token limit.
pub(crate) fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens,
        repeat_penalty: 1.0,
        ..SamplingParams::default()
    }
}

/// The chat template's rendering of one user message, with the generation prompt.
pub(crate) fn prompt_tokens(engine: &Engine, text: &str) -> Vec<u32> {
    let messages = [Message::new("user", text)];
    engine
        .tokenizer()
        .encode_chat(engine.template(), &messages, true)
        .unwrap()
}

/// A sequence holding `tokens`, fed in one pass.
pub(crate) fn sequence_with(engine: &Engine, tokens: &[u32]) -> Sequence {
    let mut sequence = Sequence::new(engine.model().new_cache(tokens.len() + 64).unwrap());
    if !tokens.is_empty() {
        sequence.feed(engine.model(), tokens).unwrap();
    }
    sequence
}

/// Wraps a sequence in a chat with one user message, as a session would hold it.
pub(crate) fn chat_with(sequence: Sequence, text: &str) -> Chat {
    Chat::from_parts(None, vec![Message::new("user", text)], Some(sequence))
}

/// Takes the sequence back out of a chat.
pub(crate) fn sequence_of(chat: Chat) -> Sequence {
    chat.into_parts().2.expect("the chat has a sequence")
}

/// The logits of a forward pass as plain floats.
pub(crate) fn logits_vec(logits: &candle_core::Tensor) -> Vec<f32> {
    logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Index of the largest logit.
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let best = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    best.0 as u32
}

/// Greedy continuation of `count` tokens: the sampled ids, each fed before the next.
pub(crate) fn continue_greedy(
    engine: &Engine,
    sequence: &mut Sequence,
    first: &[f32],
    count: usize,
) -> Vec<u32> {
    let mut logits = first.to_vec();
    let mut out = Vec::new();
    for _ in 0..count {
        let token = argmax(&logits);
        out.push(token);
        logits = logits_vec(&sequence.feed(engine.model(), &[token]).unwrap());
    }
    out
}
