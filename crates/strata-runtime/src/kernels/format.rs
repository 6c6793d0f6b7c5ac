//! GGML block layouts that the kernels read, the 8-bit activation blocks they multiply with, and
//! the portable scalar dot products.
//!
//! Every supported weight format stores a row of `k` values as `k / 32` blocks of 32, each block
//! an f16 scale (and for Q4_1 an f16 offset) followed by packed integers, little-endian, with no
//! padding (ggml's `block_q4_0`, `block_q4_1` and `block_q8_0`). Activations are quantized once
//! per call into blocks of 32 signed bytes with an f32 scale, like ggml's `block_q8_1` but with
//! f32 in place of f16 for the scale and the block sum. The scalar code here is the reference that
//! the SIMD code must match and the path used on CPUs without AVX2.

use strata_model::GgmlType;

/// Values per block in every supported format.
pub(crate) const BLOCK: usize = 32;

/// A GGML block format the kernels can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WeightFormat {
    /// `{ f16 d; u8 qs[16] }`: value `d·(q − 8)` for 4-bit `q`.
    Q4_0,
    /// `{ f16 d; f16 m; u8 qs[16] }`: value `d·q + m` for 4-bit `q`.
    Q4_1,
    /// `{ f16 d; i8 qs[32] }`: value `d·q`.
    Q8_0,
}

impl WeightFormat {
    /// Returns the format of a stored dtype, or `None` when the kernels do not read it.
    pub(crate) fn from_dtype(dtype: GgmlType) -> Option<WeightFormat> {
        match dtype {
            GgmlType::Q4_0 => Some(WeightFormat::Q4_0),
            GgmlType::Q4_1 => Some(WeightFormat::Q4_1),
            GgmlType::Q8_0 => Some(WeightFormat::Q8_0),
            _ => None,
        }
    }

    /// Bytes per block of 32 values.
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q8_0 => 34,
        }
    }
}

/// Rows of f32 activations quantized to blocks of 32 signed bytes.
///
/// Block `b` of a row holds `quants[32b..32b + 32]` with `x ≈ scale · q`, and `scales[b]` is
/// `[scale, scale · Σq]`. The sum lets a Q4_0 or Q4_1 dot product apply its per-block offset
/// with one multiplication.
#[derive(Debug, Default)]
pub(crate) struct Q8Activations {
    quants: Vec<i8>,
    scales: Vec<[f32; 2]>,
    blocks_per_row: usize,
}

/// One quantized activation row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Q8Row<'a> {
    /// `32 · blocks` signed bytes.
    pub(crate) quants: &'a [i8],
    /// `[scale, scale · Σq]` per block.
    pub(crate) scales: &'a [[f32; 2]],
}

impl Q8Activations {
    /// Quantizes `x`, a row-major `[rows, k]` matrix with `k` a multiple of 32.
    pub(crate) fn quantize(x: &[f32], k: usize) -> Q8Activations {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK),
            "row width {k} is not a multiple of 32"
        );
        assert!(
            x.len().is_multiple_of(k),
            "{} values do not fill rows of {k}",
            x.len()
        );
        let blocks = x.len() / BLOCK;
        let mut activations = Q8Activations {
            quants: vec![0; x.len()],
            scales: vec![[0.0; 2]; blocks],
            blocks_per_row: k / BLOCK,
        };
        let quant_blocks = activations.quants.chunks_exact_mut(BLOCK);
        for ((values, quants), scale) in x
            .chunks_exact(BLOCK)
            .zip(quant_blocks)
            .zip(&mut activations.scales)
        {
            *scale = quantize_block(values, quants);
        }
        activations
    }

    /// Row `row` of the quantized matrix.
    pub(crate) fn row(&self, row: usize) -> Q8Row<'_> {
        let blocks = self.blocks_per_row;
        Q8Row {
            quants: &self.quants[row * blocks * BLOCK..(row + 1) * blocks * BLOCK],
            scales: &self.scales[row * blocks..(row + 1) * blocks],
        }
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.scales
            .len()
            .checked_div(self.blocks_per_row)
            .unwrap_or(0)
    }
}

/// Rounds 32 values to `scale · q` with `q` in [−127, 127], the scale set by the largest
/// magnitude, and returns `[scale, scale · Σq]`.
fn quantize_block(values: &[f32], quants: &mut [i8]) -> [f32; 2] {
    let max_abs = values
        .iter()
        .fold(0.0f32, |max, value| max.max(value.abs()));
    let scale = max_abs / 127.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let mut sum = 0i32;
    for (quant, value) in quants.iter_mut().zip(values) {
        // `round` rounds halves away from zero, as ggml's `roundf` does.
        let rounded = (value * inverse).round() as i8;
        *quant = rounded;
        sum += i32::from(rounded);
    }
    [scale, scale * sum as f32]
}

/// Reads the little-endian f16 at `offset` as f32.
pub(crate) fn f16_at(bytes: &[u8], offset: usize) -> f32 {
    half::f16::from_le_bytes([bytes[offset], bytes[offset + 1]]).to_f32()
}

/// Sets `out[i · stride]` to the dot product of weight row `i` with `activations`, for every row
/// in `weights` (whole rows of `row_bytes` bytes).
pub(crate) fn dot_rows_scalar(
    format: WeightFormat,
    weights: &[u8],
    row_bytes: usize,
    activations: Q8Row<'_>,
    out: &mut [f32],
    stride: usize,
) {
    for (row, weight_row) in weights.chunks_exact(row_bytes).enumerate() {
        out[row * stride] = match format {
            WeightFormat::Q4_0 => dot_q4_scalar(weight_row, activations, false),
            WeightFormat::Q4_1 => dot_q4_scalar(weight_row, activations, true),
            WeightFormat::Q8_0 => dot_q8_0_scalar(weight_row, activations),
        };
    }
}

/// Q4_0 or Q4_1 row · activation row. Per block, `Σ (d·q + m)·(s·a) = d·s·Σ q·a + m·(s·Σa)`,
/// where Q4_0 is the case `m = −8·d`.
fn dot_q4_scalar(row: &[u8], activations: Q8Row<'_>, has_offset: bool) -> f32 {
    let block_bytes = if has_offset { 20 } else { 18 };
    let quant_start = block_bytes - 16;
    let mut total = 0.0f32;
    let blocks = row.chunks_exact(block_bytes);
    let activation_blocks = activations.quants.chunks_exact(BLOCK);
    for ((block, quants), &[scale, sum]) in blocks.zip(activation_blocks).zip(activations.scales) {
        let d = f16_at(block, 0);
        let m = if has_offset {
            f16_at(block, 2)
        } else {
            -8.0 * d
        };
        let packed = &block[quant_start..];
        // Byte j contains value j in its low nibble and value j + 16 in its high nibble.
        let mut dot = 0i32;
        for (j, &byte) in packed.iter().enumerate() {
            dot += i32::from(byte & 0x0f) * i32::from(quants[j]);
            dot += i32::from(byte >> 4) * i32::from(quants[j + 16]);
        }
        total += d * scale * dot as f32 + m * sum;
    }
    total
}

/// Q8_0 row · activation row: per block `d·s·Σ q·a`.
fn dot_q8_0_scalar(row: &[u8], activations: Q8Row<'_>) -> f32 {
    let mut total = 0.0f32;
    let blocks = row.chunks_exact(34);
    let activation_blocks = activations.quants.chunks_exact(BLOCK);
    for ((block, quants), &[scale, _]) in blocks.zip(activation_blocks).zip(activations.scales) {
        let mut dot = 0i32;
        for (&weight, &activation) in block[2..].iter().zip(quants) {
            dot += i32::from(weight as i8) * i32::from(activation);
        }
        total += f16_at(block, 0) * scale * dot as f32;
    }
    total
}

/// Expands whole blocks of `format` to f32 values, in order.
pub(crate) fn dequantize(format: WeightFormat, bytes: &[u8]) -> Vec<f32> {
    let block_bytes = format.block_bytes();
    let mut values = Vec::with_capacity(bytes.len() / block_bytes * BLOCK);
    for block in bytes.chunks_exact(block_bytes) {
        let d = f16_at(block, 0);
        match format {
            WeightFormat::Q4_0 => push_nibbles(&mut values, &block[2..], d, -8.0 * d),
            WeightFormat::Q4_1 => push_nibbles(&mut values, &block[4..], d, f16_at(block, 2)),
            WeightFormat::Q8_0 => values.extend(block[2..].iter().map(|&q| d * f32::from(q as i8))),
        }
    }
    values
}

/// Appends `d·q + m` for the 32 nibbles of `packed`: all low nibbles, then all high ones.
fn push_nibbles(values: &mut Vec<f32>, packed: &[u8], d: f32, m: f32) {
    values.extend(packed.iter().map(|&byte| d * f32::from(byte & 0x0f) + m));
    values.extend(packed.iter().map(|&byte| d * f32::from(byte >> 4) + m));
}
