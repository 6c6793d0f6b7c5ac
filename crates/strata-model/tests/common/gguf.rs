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

/// Shapes of the tiny llama: hidden 32, 2 heads of 16, 1 kv head, ffn 64, 1 layer, 10 tokens.
pub const HIDDEN: u64 = 32;
pub const FFN: u64 = 64;
pub const KV_OUT: u64 = 16;

/// A valid one-layer llama GGUF with f32, q8_0 and q4_1 tensors and a 10-token gpt2 vocabulary.
///
/// `attn_norm` and `ffn_norm` hold the same bytes (all ones), so an import stores them once.
pub fn tiny_llama() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::Str("llama".into()))
        .set("general.name", Value::Str("tiny llama".into()))
        .set("general.alignment", Value::U32(32))
        .set("llama.context_length", Value::U32(128))
        .set("llama.embedding_length", Value::U32(HIDDEN as u32))
        .set("llama.feed_forward_length", Value::U32(FFN as u32))
        .set("llama.block_count", Value::U32(1))
        .set("llama.attention.head_count", Value::U32(2))
        .set("llama.attention.head_count_kv", Value::U32(1))
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

    let ones = f32_bytes(&[1.0; HIDDEN as usize]);
    let vocab = TOKENS.len() as u64;
    w.tensor(
        "token_embd.weight",
        &[vocab, HIDDEN],
        F32,
        bytes(4 * 320, 1),
    );
    w.tensor("blk.0.attn_norm.weight", &[HIDDEN], F32, ones.clone());
    w.tensor(
        "blk.0.attn_q.weight",
        &[HIDDEN, HIDDEN],
        Q8_0,
        bytes(32 * 34, 2),
    );
    w.tensor(
        "blk.0.attn_k.weight",
        &[KV_OUT, HIDDEN],
        Q8_0,
        bytes(16 * 34, 3),
    );
    w.tensor(
        "blk.0.attn_v.weight",
        &[KV_OUT, HIDDEN],
        Q4_1,
        bytes(16 * 20, 4),
    );
    w.tensor(
        "blk.0.attn_output.weight",
        &[HIDDEN, HIDDEN],
        Q4_1,
        bytes(32 * 20, 5),
    );
    w.tensor("blk.0.ffn_norm.weight", &[HIDDEN], F32, ones.clone());
    w.tensor(
        "blk.0.ffn_gate.weight",
        &[FFN, HIDDEN],
        Q8_0,
        bytes(64 * 34, 6),
    );
    w.tensor(
        "blk.0.ffn_up.weight",
        &[FFN, HIDDEN],
        Q4_1,
        bytes(64 * 20, 7),
    );
    w.tensor(
        "blk.0.ffn_down.weight",
        &[HIDDEN, FFN],
        F32,
        bytes(4 * 2048, 8),
    );
    w.tensor(
        "output_norm.weight",
        &[HIDDEN],
        F32,
        f32_bytes(&[0.5; HIDDEN as usize]),
    );
    w
}

fn strings(items: &[&str]) -> Value {
    Value::Strings(items.iter().map(|item| item.to_string()).collect())
}
