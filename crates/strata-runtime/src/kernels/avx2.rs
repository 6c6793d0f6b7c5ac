//! AVX2 dot products of GGML weight rows with 8-bit activation rows, for x86_64 CPUs that have
//! AVX2, FMA and F16C.
//!
//! Each block of 32 products is summed in 32-bit integers with `vpmaddubsw` (unsigned × signed
//! bytes to pairs of 16-bit sums) and `vpmaddwd` (pairs to 32-bit sums), then scaled in f32 and
//! accumulated with FMA. Weights are read with unaligned loads straight from the mapped blob, so
//! no alignment is required. The results equal the scalar reference in `format` up to f32
//! summation order.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::format::{BLOCK, Q8Row, WeightFormat};

/// True when this CPU has every instruction set the kernels use.
pub(crate) fn is_supported() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// Sets `out[i · stride]` to the dot product of weight row `i` with `activations`, like
/// `format::dot_rows_scalar`.
///
/// # Panics
///
/// When the CPU lacks AVX2, FMA or F16C, or when `weights`, `activations` or `out` are shorter
/// than `row_bytes` and the row count imply.
pub(crate) fn dot_rows(
    format: WeightFormat,
    weights: &[u8],
    row_bytes: usize,
    activations: Q8Row<'_>,
    out: &mut [f32],
    stride: usize,
) {
    assert!(is_supported(), "the AVX2 kernels need AVX2, FMA and F16C");
    let blocks = row_bytes / format.block_bytes();
    assert_eq!(
        blocks * format.block_bytes(),
        row_bytes,
        "a row is not whole blocks"
    );
    assert!(
        activations.quants.len() >= blocks * BLOCK,
        "activation row too short"
    );
    assert!(
        activations.scales.len() >= blocks,
        "activation scales too short"
    );
    let rows = weights.len() / row_bytes;
    assert!(
        rows == 0 || out.len() > (rows - 1) * stride,
        "output too short"
    );

    for (row, weight_row) in weights.chunks_exact(row_bytes).enumerate() {
        // SAFETY: the CPU features were checked above, `weight_row` holds `blocks` whole blocks
        // and the activation row holds at least `blocks` blocks, so every load is in bounds.
        out[row * stride] = unsafe {
            match format {
                WeightFormat::Q4_0 => dot_q4::<false>(weight_row, activations, blocks),
                WeightFormat::Q4_1 => dot_q4::<true>(weight_row, activations, blocks),
                WeightFormat::Q8_0 => dot_q8_0(weight_row, activations, blocks),
            }
        };
    }
}

/// Q4_0 (`OFFSET` false) or Q4_1 (`OFFSET` true) row · activation row over `blocks` blocks.
///
/// Blocks are taken in pairs with separate accumulators, because each FMA chain would otherwise
/// wait on the previous block's result.
///
/// # Safety
///
/// The CPU has AVX2, FMA and F16C; `row` holds `blocks` blocks and `activations` at least as
/// many.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4<const OFFSET: bool>(row: &[u8], activations: Q8Row<'_>, blocks: usize) -> f32 {
    let mut even = Q4Sums::new();
    let mut odd = Q4Sums::new();
    let pairs = blocks / 2;
    for pair in 0..pairs {
        // SAFETY: 2·pair + 1 < blocks, so both blocks are in bounds.
        unsafe {
            even.add_block::<OFFSET>(row, activations, 2 * pair);
            odd.add_block::<OFFSET>(row, activations, 2 * pair + 1);
        }
    }
    if blocks % 2 == 1 {
        // SAFETY: blocks − 1 is the last block.
        unsafe { even.add_block::<OFFSET>(row, activations, blocks - 1) };
    }
    even.total() + odd.total()
}

/// Running sums of a Q4 dot product: `products` collects `d·s·Σ q·a` in eight lanes and lane 0
/// of `offsets` collects `m·(s·Σa)`.
#[derive(Clone, Copy)]
struct Q4Sums {
    products: __m256,
    offsets: __m128,
}

impl Q4Sums {
    #[target_feature(enable = "avx2,fma,f16c")]
    fn new() -> Q4Sums {
        Q4Sums {
            products: _mm256_setzero_ps(),
            offsets: _mm_setzero_ps(),
        }
    }

    /// Adds block `block` of `row` times the matching activation block.
    ///
    /// # Safety
    ///
    /// As for [`dot_q4`], with `block` below the block count.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn add_block<const OFFSET: bool>(
        &mut self,
        row: &[u8],
        activations: Q8Row<'_>,
        block: usize,
    ) {
        // SAFETY: the caller keeps `block` in bounds of `row` and of the activation row.
        unsafe {
            let weights = Q4Block::unpack::<OFFSET>(row, block);
            self.add_unpacked(&weights, activations, block);
        }
    }

    /// Adds an unpacked weight block times activation block `block`.
    ///
    /// # Safety
    ///
    /// The CPU has AVX2, FMA and F16C; `block` is in bounds of the activation row.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn add_unpacked(&mut self, weights: &Q4Block, activations: Q8Row<'_>, block: usize) {
        // SAFETY: the caller keeps `block` in bounds of the activation row.
        unsafe {
            let activation =
                _mm256_loadu_si256(activations.quants.as_ptr().add(block * BLOCK).cast());
            let scale_sum =
                _mm_castpd_ps(_mm_load_sd(activations.scales.as_ptr().add(block).cast()));

            let dot = _mm256_cvtepi32_ps(sum_products(weights.values, activation));
            let factor = _mm_mul_ss(weights.d, scale_sum);
            self.products = _mm256_fmadd_ps(_mm256_broadcastss_ps(factor), dot, self.products);
            // m · (s·Σa): move the block sum (lane 1) into lane 0 first.
            let sum = _mm_movehdup_ps(scale_sum);
            self.offsets = _mm_fmadd_ss(weights.m, sum, self.offsets);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn total(self) -> f32 {
        horizontal_sum(self.products) + _mm_cvtss_f32(self.offsets)
    }
}

/// One Q4 weight block unpacked: scale `d` and offset `m` in lane 0, and 32 values of 0..16.
struct Q4Block {
    d: __m128,
    m: __m128,
    values: __m256i,
}

impl Q4Block {
    /// Reads and unpacks block `block` of `row`.
    ///
    /// # Safety
    ///
    /// The CPU has AVX2, FMA and F16C; `row` holds more than `block` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn unpack<const OFFSET: bool>(row: &[u8], block: usize) -> Q4Block {
        let block_bytes = if OFFSET { 20 } else { 18 };
        // SAFETY: the caller keeps `block` in bounds of `row`.
        unsafe {
            let base = row.as_ptr().add(block * block_bytes);
            let (d, m) = read_scale_offset::<OFFSET>(base);
            let packed = _mm_loadu_si128(base.add(block_bytes - 16).cast());
            Q4Block {
                d,
                m,
                values: unpack_nibbles(packed),
            }
        }
    }
}

/// The dot products of one Q4 weight row with two activation rows. Each block is unpacked once
/// for both, and each row's sums are formed exactly as [`dot_q4`] forms them, so the results
/// equal two [`dot_q4`] calls bit for bit.
///
/// # Safety
///
/// As for [`dot_q4`], for both activation rows.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_pair<const OFFSET: bool>(
    row: &[u8],
    first: Q8Row<'_>,
    second: Q8Row<'_>,
    blocks: usize,
) -> (f32, f32) {
    let (mut even_first, mut odd_first) = (Q4Sums::new(), Q4Sums::new());
    let (mut even_second, mut odd_second) = (Q4Sums::new(), Q4Sums::new());
    let pairs = blocks / 2;
    for pair in 0..pairs {
        // SAFETY: 2·pair + 1 < blocks, so both blocks are in bounds.
        unsafe {
            let even = Q4Block::unpack::<OFFSET>(row, 2 * pair);
            even_first.add_unpacked(&even, first, 2 * pair);
            even_second.add_unpacked(&even, second, 2 * pair);
            let odd = Q4Block::unpack::<OFFSET>(row, 2 * pair + 1);
            odd_first.add_unpacked(&odd, first, 2 * pair + 1);
            odd_second.add_unpacked(&odd, second, 2 * pair + 1);
        }
    }
    if blocks % 2 == 1 {
        // SAFETY: blocks − 1 is the last block.
        unsafe {
            let last = Q4Block::unpack::<OFFSET>(row, blocks - 1);
            even_first.add_unpacked(&last, first, blocks - 1);
            even_second.add_unpacked(&last, second, blocks - 1);
        }
    }
    (
        even_first.total() + odd_first.total(),
        even_second.total() + odd_second.total(),
    )
}

/// Sets `out[i · stride]` and `out[i · stride + 1]` to the dot products of weight row `i` with
/// activation rows `first` and `first + 1`, for Q4_0 and Q4_1 weights, equal bit for bit to
/// [`dot_rows`] called on each row.
///
/// # Panics
///
/// As for [`dot_rows`]; also when `format` is not a Q4 format.
pub(crate) fn dot_rows_pair(
    format: WeightFormat,
    weights: &[u8],
    row_bytes: usize,
    activations: (Q8Row<'_>, Q8Row<'_>),
    out: &mut [f32],
    stride: usize,
) {
    assert!(is_supported(), "the AVX2 kernels need AVX2, FMA and F16C");
    let blocks = row_bytes / format.block_bytes();
    assert_eq!(
        blocks * format.block_bytes(),
        row_bytes,
        "a row is not whole blocks"
    );
    for activation in [activations.0, activations.1] {
        assert!(
            activation.quants.len() >= blocks * BLOCK,
            "activation row too short"
        );
        assert!(
            activation.scales.len() >= blocks,
            "activation scales too short"
        );
    }
    let rows = weights.len() / row_bytes;
    assert!(
        rows == 0 || out.len() > (rows - 1) * stride + 1,
        "output too short"
    );

    for (row, weight_row) in weights.chunks_exact(row_bytes).enumerate() {
        // SAFETY: the CPU features were checked above, `weight_row` holds `blocks` whole blocks
        // and both activation rows hold at least `blocks` blocks.
        let (first, second) = unsafe {
            match format {
                WeightFormat::Q4_0 => {
                    dot_q4_pair::<false>(weight_row, activations.0, activations.1, blocks)
                }
                WeightFormat::Q4_1 => {
                    dot_q4_pair::<true>(weight_row, activations.0, activations.1, blocks)
                }
                WeightFormat::Q8_0 => panic!("dot_rows_pair takes Q4 weights only"),
            }
        };
        out[row * stride] = first;
        out[row * stride + 1] = second;
    }
}

/// Q8_0 row · activation row over `blocks` blocks.
///
/// # Safety
///
/// As for [`dot_q4`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0(row: &[u8], activations: Q8Row<'_>, blocks: usize) -> f32 {
    let row = row.as_ptr();
    let quants = activations.quants.as_ptr();
    let scales = activations.scales.as_ptr();
    let mut products = _mm256_setzero_ps();
    for block in 0..blocks {
        // SAFETY: block < blocks, so the block's bytes and its activation block are in bounds.
        unsafe {
            let base = row.add(block * 34);
            let d = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                base.cast::<u16>().read_unaligned(),
            )));
            let weights = _mm256_loadu_si256(base.add(2).cast());
            let activation = _mm256_loadu_si256(quants.add(block * BLOCK).cast());
            let scale = _mm_load_ss(scales.add(block).cast());

            // vpmaddubsw needs one unsigned operand: move the weight's sign onto the activation.
            let magnitudes = _mm256_sign_epi8(weights, weights);
            let signed = _mm256_sign_epi8(activation, weights);
            let dot = _mm256_cvtepi32_ps(sum_products(magnitudes, signed));
            let factor = _mm_mul_ss(d, scale);
            products = _mm256_fmadd_ps(_mm256_broadcastss_ps(factor), dot, products);
        }
    }
    horizontal_sum(products)
}

/// Reads a Q4 block's scale `d` and offset `m` into lane 0 of two vectors; Q4_0 has no stored
/// offset, so `m = −8·d`.
///
/// # Safety
///
/// `base` points at a whole block.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn read_scale_offset<const OFFSET: bool>(base: *const u8) -> (__m128, __m128) {
    if OFFSET {
        // SAFETY: a Q4_1 block starts with two f16 values.
        let bits = unsafe { base.cast::<u32>().read_unaligned() };
        let pair = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
        (pair, _mm_movehdup_ps(pair))
    } else {
        // SAFETY: a Q4_0 block starts with one f16 value.
        let bits = unsafe { base.cast::<u16>().read_unaligned() };
        let d = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits)));
        (d, _mm_mul_ss(d, _mm_set_ss(-8.0)))
    }
}

/// Spreads 16 packed bytes into 32 bytes of 4-bit values: low nibbles (values 0..16) in the low
/// half, high nibbles (values 16..32) in the high half, matching the activation order.
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack_nibbles(packed: __m128i) -> __m256i {
    let mask = _mm_set1_epi8(0x0f);
    let low = _mm_and_si128(packed, mask);
    let high = _mm_and_si128(_mm_srli_epi16::<4>(packed), mask);
    _mm256_set_m128i(high, low)
}

/// Sums `unsigned[i] · signed[i]` over groups of four bytes into eight i32 lanes.
///
/// `vpmaddubsw` saturates 16-bit pair sums, but here the unsigned operand is at most 15 (4-bit
/// weights) or 128 (Q8_0 magnitudes) and activations are within ±127, so a pair sum stays within
/// ±2·128·127 = ±32512 and never saturates.
#[target_feature(enable = "avx2,fma,f16c")]
fn sum_products(unsigned: __m256i, signed: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(unsigned, signed);
    _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn horizontal_sum(values: __m256) -> f32 {
    let quad = _mm_add_ps(
        _mm256_castps256_ps128(values),
        _mm256_extractf128_ps::<1>(values),
    );
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    let single = _mm_add_ss(pair, _mm_movehdup_ps(pair));
    _mm_cvtss_f32(single)
}
