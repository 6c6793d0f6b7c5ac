//! CPU kernels for quantized matrix multiplication.
//!
//! candle 0.11.1 multiplies Q4_1 weights with a scalar loop, which makes it the slowest part of
//! decoding SmolLM2-class models stored as Q4_1. This module multiplies Q4_0, Q4_1 and Q8_0
//! weights straight from their GGML blocks, with AVX2 on x86_64 and portable scalar code on other
//! CPUs. [`QuantMatMul`] wraps both as a candle custom op, so its output composes with the rest
//! of a candle graph.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod format;
mod matmul;
#[cfg(test)]
mod tests;

pub use matmul::{Backend, DENSE_MIN_ROWS, QuantMatMul};
