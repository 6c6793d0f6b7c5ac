//! Fixtures shared by the model tests: a small GGUF writer, a tiny llama model in GGUF and in
//! Hugging Face form, and a listing of a store directory to check that failed imports leave it
//! as it was.

#![allow(dead_code, unreachable_pub)]

pub mod gguf;
pub mod hf;

use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `root` with its size, so a test can compare a directory before and after.
pub fn listing(root: &Path) -> BTreeMap<String, u64> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                files.insert(format!("{relative}/"), 0);
                pending.push(path);
            } else {
                files.insert(relative, std::fs::metadata(&path).unwrap().len());
            }
        }
    }
    files
}

/// Deterministic pseudo-random bytes, different for each `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Little-endian f32 bytes of `values`.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// The 10-token byte-level vocabulary of the tiny models: two control tokens, then letters.
pub const TOKENS: [&str; 10] = [
    "<|endoftext|>",
    "<|im_end|>",
    "a",
    "b",
    "c",
    "ab",
    "Ġ",
    "Ġa",
    "1",
    "2",
];

/// GGUF token types of [`TOKENS`]: 3 marks a control token, 1 a normal one.
pub const TOKEN_TYPES: [i32; 10] = [3, 3, 1, 1, 1, 1, 1, 1, 1, 1];

/// BPE merges of [`TOKENS`].
pub const MERGES: [&str; 2] = ["a b", "Ġ a"];

/// Chat template stored with the tiny models.
pub const CHAT_TEMPLATE: &str = "{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}";
