//! A minimal GGUF v2/v3 writer for building test files, valid or deliberately broken.

use std::path::{Path, PathBuf};

use super::{CHAT_TEMPLATE, MERGES, TOKEN_TYPES, TOKENS, bytes, f32_bytes};

/// GGUF type ids of the tensor types the fixtures use.
pub const F32: u32 = 0;
pub const Q4_1: u32 = 3;
pub const Q8_0: u32 = 8;

/// A metadata value, in the GGUF encodings the fixtures need.
#[derive(Clone, Debug)]
pub enum Value {
    U32(u32),
    U64(u64),
    F32(f32),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    I32s(Vec<i32>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::U64(v) => {
                out.extend(10u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::Bool(v) => {
                out.extend(7u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            Value::Str(v) => {
                out.extend(8u32.to_le_bytes());
                put_string(out, v);
            }
            Value::Strings(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| put_string(out, item));
            }
            Value::I32s(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(5u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| out.extend(item.to_le_bytes()));
            }
        }
    }
}

/// Appends a GGUF string: u64 length, then the bytes.
pub fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

/// The fixed header: magic, version, tensor count, metadata key count.
pub fn header(version: u32, tensor_count: u64, kv_count: u64) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(version.to_le_bytes());
    out.extend(tensor_count.to_le_bytes());
    out.extend(kv_count.to_le_bytes());
    out
}

/// One tensor to write; `shape` is outermost first, as strata reports it.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
}

/// A whole GGUF file: metadata, then tensor descriptions, then aligned tensor data.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            alignment: 32,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: Value) -> &mut GgufWriter {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value));
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut GgufWriter {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    pub fn tensor(&mut self, name: &str, shape: &[u64], type_id: u32, data: Vec<u8>) {
        self.tensors.push(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            type_id,
            data,
        });
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(
            self.version,
            self.tensors.len() as u64,
            self.metadata.len() as u64,
        );
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            value.encode(&mut out);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for tensor in &self.tensors {
            put_string(&mut out, &tensor.name);
            out.extend((tensor.shape.len() as u32).to_le_bytes());
            for dim in tensor.shape.iter().rev() {
                out.extend(dim.to_le_bytes());
            }
            out.extend(tensor.type_id.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + tensor.data.len() as u64).next_multiple_of(self.alignment);
        }
        let data_start = (out.len() as u64).next_multiple_of(self.alignment);
        for (tensor, offset) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + offset) as usize, 0);
            out.extend(&tensor.data);
        }
        out
    }

    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.to_bytes()).expect("write gguf");
        path
    }
}

/// Shapes of the tiny llama: hidden 32, 4 heads of 8, 2 kv heads, ffn 64, 2 layers, 10 tokens.
pub const HIDDEN: u64 = 32;
pub const FFN: u64 = 64;
pub const LAYERS: u64 = 2;
pub const HEADS: u64 = 4;
pub const KV_HEADS: u64 = 2;
pub const HEAD_DIM: u64 = HIDDEN / HEADS;
pub const KV_OUT: u64 = KV_HEADS * HEAD_DIM;

/// A valid two-layer llama GGUF with f32, q8_0 and q4_1 tensors, a 10-token gpt2 vocabulary and
/// tied embeddings (no `output.weight`).
///
/// Every `attn_norm` and `ffn_norm` contains the same bytes (all ones), so an import stores the four
/// of them as one blob.
pub fn tiny_llama() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::Str("llama".into()))
        .set("general.name", Value::Str("tiny llama".into()))
        .set("general.alignment", Value::U32(32))
        .set("llama.context_length", Value::U32(128))
        .set("llama.embedding_length", Value::U32(HIDDEN as u32))
        .set("llama.feed_forward_length", Value::U32(FFN as u32))
        .set("llama.block_count", Value::U32(LAYERS as u32))
        .set("llama.attention.head_count", Value::U32(HEADS as u32))
        .set("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32))
        .set("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
        .set("llama.rope.freq_base", Value::F32(100_000.0))
        .set("tokenizer.ggml.model", Value::Str("gpt2".into()))
        .set("tokenizer.ggml.pre", Value::Str("smollm".into()))
        .set("tokenizer.ggml.tokens", strings(&TOKENS))
        .set(
            "tokenizer.ggml.token_type",
            Value::I32s(TOKEN_TYPES.to_vec()),
        )
        .set("tokenizer.ggml.merges", strings(&MERGES))
        .set("tokenizer.ggml.bos_token_id", Value::U32(0))
        .set("tokenizer.ggml.eos_token_id", Value::U32(1))
        .set("tokenizer.ggml.add_bos_token", Value::Bool(false))
        .set("tokenizer.chat_template", Value::Str(CHAT_TEMPLATE.into()));

    let vocab = TOKENS.len() as u64;
    w.tensor(
        "token_embd.weight",
        &[vocab, HIDDEN],
        F32,
        bytes(f32_len(vocab * HIDDEN), 1),
    );
    for layer in 0..LAYERS {
        add_layer(&mut w, layer);
    }
    w.tensor(
        "output_norm.weight",
        &[HIDDEN],
        F32,
        f32_bytes(&[0.5; HIDDEN as usize]),
    );
    w
}

/// Adds the nine tensors of decoder layer `layer`: f32 norms, q8_0 and q4_1 linears.
fn add_layer(w: &mut GgufWriter, layer: u64) {
    let name = |suffix: &str| format!("blk.{layer}.{suffix}");
    let seed = |index: u64| 10 * (layer + 1) + index;
    let ones = f32_bytes(&[1.0; HIDDEN as usize]);
    let q8_0 = |rows: u64, cols: u64, seed: u64| bytes(block_len(rows * cols, 34), seed);
    let q4_1 = |rows: u64, cols: u64, seed: u64| bytes(block_len(rows * cols, 20), seed);

    w.tensor(&name("attn_norm.weight"), &[HIDDEN], F32, ones.clone());
    let q = q8_0(HIDDEN, HIDDEN, seed(1));
    w.tensor(&name("attn_q.weight"), &[HIDDEN, HIDDEN], Q8_0, q);
    let k = q8_0(KV_OUT, HIDDEN, seed(2));
    w.tensor(&name("attn_k.weight"), &[KV_OUT, HIDDEN], Q8_0, k);
    let v = q4_1(KV_OUT, HIDDEN, seed(3));
    w.tensor(&name("attn_v.weight"), &[KV_OUT, HIDDEN], Q4_1, v);
    let output = q4_1(HIDDEN, HIDDEN, seed(4));
    w.tensor(&name("attn_output.weight"), &[HIDDEN, HIDDEN], Q4_1, output);
    w.tensor(&name("ffn_norm.weight"), &[HIDDEN], F32, ones);
    let gate = q8_0(FFN, HIDDEN, seed(5));
    w.tensor(&name("ffn_gate.weight"), &[FFN, HIDDEN], Q8_0, gate);
    let up = q4_1(FFN, HIDDEN, seed(6));
    w.tensor(&name("ffn_up.weight"), &[FFN, HIDDEN], Q4_1, up);
    let down = bytes(f32_len(HIDDEN * FFN), seed(7));
    w.tensor(&name("ffn_down.weight"), &[HIDDEN, FFN], F32, down);
}

/// Byte length of `elements` f32 values.
fn f32_len(elements: u64) -> usize {
    elements as usize * 4
}

/// Byte length of `elements` values in 32-element blocks of `block_bytes` bytes.
fn block_len(elements: u64, block_bytes: usize) -> usize {
    elements as usize / 32 * block_bytes
}

/// Replaces the vocabulary of `w` with `tokens` (no merges, no special-token ids, no token types)
/// and resizes `token_embd.weight` to match, so that only the tokenizer metadata differs from a
/// valid model.
pub fn set_vocabulary(w: &mut GgufWriter, tokens: &[&str]) {
    w.set("tokenizer.ggml.tokens", strings(tokens))
        .remove("tokenizer.ggml.merges")
        .remove("tokenizer.ggml.token_type")
        .remove("tokenizer.ggml.bos_token_id")
        .remove("tokenizer.ggml.eos_token_id");
    let embedding = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "token_embd.weight")
        .expect("token_embd.weight");
    let vocab = tokens.len() as u64;
    embedding.shape = vec![vocab, HIDDEN];
    embedding.data = bytes(f32_len(vocab * HIDDEN), 1);
}

fn strings(items: &[&str]) -> Value {
    Value::Strings(items.iter().map(|item| item.to_string()).collect())
}
