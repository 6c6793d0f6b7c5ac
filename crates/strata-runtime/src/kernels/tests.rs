//! Tests of the quantized matmul kernels against candle's dequantized f32 reference, the scalar
//! path against the SIMD one, and, when `STRATA_TEST_GGUF` names SmolLM2-135M-Instruct's GGUF
//! file, the model's own weights.
//!
//! The block kernels round every activation to 8 bits, so each result may differ from the exact
//! product by up to `Σ_i |w_i|·step_i/2`, where `step_i` is the quantization step of the block
//! holding `x_i` (its largest magnitude / 127). The tests compute that bound per output and add
//! `1e-4·Σ|w_i·x_i|` for f32 summation order.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_model::gguf::GgufFile;
use strata_model::{GgmlType, TensorView};

use super::format::{BLOCK, Q8Activations, WeightFormat, dequantize, dot_rows_scalar};
use super::{Backend, QuantMatMul};

/// Random GGML blocks for an `[out, in]` weight with realistic scales.
fn random_view(dtype: GgmlType, out: usize, input: usize, seed: u64) -> TensorView {
    let mut rng = StdRng::seed_from_u64(seed);
    let blocks = out * input / BLOCK;
    let mut bytes = Vec::with_capacity(blocks * dtype.type_size());
    for _ in 0..blocks {
        let d = half::f16::from_f32(rng.random_range(0.001..0.02));
        bytes.extend_from_slice(&d.to_le_bytes());
        match dtype {
            GgmlType::Q4_1 => {
                let m = half::f16::from_f32(rng.random_range(-0.15..0.0));
                bytes.extend_from_slice(&m.to_le_bytes());
                bytes.extend((0..16).map(|_| rng.random::<u8>()));
            }
            GgmlType::Q4_0 => bytes.extend((0..16).map(|_| rng.random::<u8>())),
            GgmlType::Q8_0 => bytes.extend((0..32).map(|_| rng.random::<u8>())),
            _ => unreachable!("no random blocks for {dtype:?}"),
        }
    }
    TensorView::new(
        format!("test.{}", dtype.name()),
        dtype,
        vec![out, input],
        Arc::new(bytes),
    )
}

fn random_input(rows: usize, input: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * input)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect()
}

fn candle_dtype(dtype: GgmlType) -> GgmlDType {
    match dtype {
        GgmlType::Q4_0 => GgmlDType::Q4_0,
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        _ => unreachable!("not a kernel dtype: {dtype:?}"),
    }
}

/// Copies the view into a candle `QTensor`, because candle requires aligned block data.
fn qtensor(view: &TensorView) -> QTensor {
    let bytes = std::borrow::Cow::Owned(view.bytes().to_vec());
    let storage = QStorage::from_data(bytes, &Device::Cpu, candle_dtype(view.dtype)).unwrap();
    QTensor::new(storage, view.shape.clone()).unwrap()
}

/// Row-major f32 weight from candle's own dequantization.
fn reference_weight(view: &TensorView) -> Vec<f32> {
    let weight = qtensor(view).dequantize(&Device::Cpu).unwrap();
    weight.flatten_all().unwrap().to_vec1().unwrap()
}

/// Checks `actual` (`[rows, out]`) against `x·Wᵀ` in f64 within the 8-bit rounding bound.
fn assert_close_to_reference(actual: &[f32], x: &[f32], weight: &[f32], input: usize, label: &str) {
    let out = weight.len() / input;
    let rows = x.len() / input;
    assert_eq!(actual.len(), rows * out, "{label}: output length");
    for row in 0..rows {
        let x_row = &x[row * input..(row + 1) * input];
        let half_steps: Vec<f32> = x_row
            .chunks_exact(BLOCK)
            .map(|block| block.iter().fold(0.0f32, |max, v| max.max(v.abs())) / 127.0 / 2.0)
            .collect();
        for column in 0..out {
            let w_row = &weight[column * input..(column + 1) * input];
            let mut exact = 0.0f64;
            let mut magnitude = 0.0f64;
            let mut rounding = 0.0f64;
            for (i, (&w, &v)) in w_row.iter().zip(x_row).enumerate() {
                exact += f64::from(w) * f64::from(v);
                magnitude += f64::from((w * v).abs());
                rounding += f64::from(w.abs() * half_steps[i / BLOCK]);
            }
            let bound = rounding * 1.001 + 1e-4 * magnitude + 1e-6;
            let error = (f64::from(actual[row * out + column]) - exact).abs();
            assert!(
                error <= bound,
                "{label}: row {row} column {column}: got {}, expected {exact} within {bound}",
                actual[row * out + column]
            );
        }
    }
}

fn run_blocks(kernel: &QuantMatMul, x: &[f32], rows: usize) -> Vec<f32> {
    let input = kernel.in_features();
    let tensor = Tensor::from_slice(x, (rows, input), &Device::Cpu).unwrap();
    let output = kernel.forward_blocks(&tensor).unwrap();
    assert_eq!(output.dims(), &[rows, kernel.out_features()]);
    output.flatten_all().unwrap().to_vec1().unwrap()
}

/// Shapes as (rows, in, out): SmolLM2-135M's projections, odd row counts and odd widths.
const SHAPES: [(usize, usize, usize); 8] = [
    (1, 576, 576),
    (1, 576, 1536),
    (7, 1536, 576),
    (1, 576, 49152),
    (3, 576, 192),
    (5, 64, 37),
    (1, 32, 1),
    (9, 96, 33),
];

fn check_shapes(dtype: GgmlType, backend: Backend) {
    for (index, &(rows, input, out)) in SHAPES.iter().enumerate() {
        let seed = index as u64;
        let view = random_view(dtype, out, input, seed);
        let kernel = QuantMatMul::from_view(&view)
            .unwrap()
            .with_backend(backend)
            .unwrap();
        let x = random_input(rows, input, seed + 100);
        let actual = run_blocks(&kernel, &x, rows);
        let label = format!("{dtype:?} {backend:?} {rows}x{input}x{out}");
        assert_close_to_reference(&actual, &x, &reference_weight(&view), input, &label);
    }
}

#[test]
fn scalar_q4_1_matches_reference() {
    check_shapes(GgmlType::Q4_1, Backend::Scalar);
}

#[test]
fn scalar_q4_0_matches_reference() {
    check_shapes(GgmlType::Q4_0, Backend::Scalar);
}

#[test]
fn scalar_q8_0_matches_reference() {
    check_shapes(GgmlType::Q8_0, Backend::Scalar);
}

#[test]
fn avx2_q4_1_matches_reference() {
    if avx2_available() {
        check_shapes(GgmlType::Q4_1, Backend::Avx2);
    }
}

#[test]
fn avx2_q4_0_matches_reference() {
    if avx2_available() {
        check_shapes(GgmlType::Q4_0, Backend::Avx2);
    }
}

#[test]
fn avx2_q8_0_matches_reference() {
    if avx2_available() {
        check_shapes(GgmlType::Q8_0, Backend::Avx2);
    }
}

fn avx2_available() -> bool {
    let available = Backend::Avx2.is_available();
    if !available {
        eprintln!("skipped: this CPU has no AVX2, FMA and F16C");
    }
    available
}

/// The SIMD and scalar dot products see the same quantized activations, so they may differ
/// only by f32 summation order.
#[test]
fn avx2_dot_matches_scalar_dot() {
    if !avx2_available() {
        return;
    }
    for dtype in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
        let (out, input) = (67, 1536);
        let view = random_view(dtype, out, input, 7);
        let x = random_input(1, input, 8);
        let scalar = QuantMatMul::from_view(&view)
            .unwrap()
            .with_backend(Backend::Scalar);
        let simd = QuantMatMul::from_view(&view)
            .unwrap()
            .with_backend(Backend::Avx2);
        let expected = run_blocks(&scalar.unwrap(), &x, 1);
        let actual = run_blocks(&simd.unwrap(), &x, 1);
        for (column, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "{dtype:?} column {column}: {a} vs {e}"
            );
        }
    }
}

#[test]
fn dequantize_matches_candle() {
    for dtype in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
        let view = random_view(dtype, 5, 64, 3);
        let format = WeightFormat::from_dtype(dtype).unwrap();
        assert_eq!(
            dequantize(format, view.bytes()),
            reference_weight(&view),
            "{dtype:?}"
        );
    }
}

#[test]
fn activation_quantization_keeps_block_sums() {
    let x = random_input(2, 64, 4);
    let activations = Q8Activations::quantize(&x, 64);
    assert_eq!(activations.rows(), 2);
    let row = activations.row(1);
    for (block, &[scale, sum]) in row.quants.chunks_exact(BLOCK).zip(row.scales) {
        let quant_sum: i32 = block.iter().map(|&q| i32::from(q)).sum();
        assert_eq!(sum, scale * quant_sum as f32);
        assert!(
            block.iter().any(|&q| q.unsigned_abs() == 127),
            "the largest value maps to ±127"
        );
    }
}

#[test]
fn zero_activations_give_zero_output() {
    let view = random_view(GgmlType::Q8_0, 4, 64, 5);
    let activations = Q8Activations::quantize(&[0.0; 64], 64);
    let mut out = [1.0f32; 4];
    dot_rows_scalar(
        WeightFormat::Q8_0,
        view.bytes(),
        68,
        activations.row(0),
        &mut out,
        1,
    );
    assert_eq!(out, [0.0; 4]);
}

#[test]
fn from_view_rejects_unsupported_weights() {
    let q6k = TensorView::new(
        "q6k".into(),
        GgmlType::Q6K,
        vec![1, 256],
        Arc::new(vec![0; 210]),
    );
    assert!(
        QuantMatMul::from_view(&q6k).is_none(),
        "Q6_K is not a kernel dtype"
    );

    let f32_view = TensorView::new(
        "f32".into(),
        GgmlType::F32,
        vec![1, 32],
        Arc::new(vec![0; 128]),
    );
    assert!(
        QuantMatMul::from_view(&f32_view).is_none(),
        "f32 has no blocks"
    );

    let vector = TensorView::new(
        "vector".into(),
        GgmlType::Q8_0,
        vec![32],
        Arc::new(vec![0; 34]),
    );
    assert!(
        QuantMatMul::from_view(&vector).is_none(),
        "a vector is not a matrix"
    );

    let short = TensorView::new(
        "short".into(),
        GgmlType::Q8_0,
        vec![2, 32],
        Arc::new(vec![0; 34]),
    );
    assert!(
        QuantMatMul::from_view(&short).is_none(),
        "bytes for one row of two"
    );

    let partial = TensorView::new(
        "partial".into(),
        GgmlType::Q8_0,
        vec![1, 48],
        Arc::new(vec![0; 51]),
    );
    assert!(
        QuantMatMul::from_view(&partial).is_none(),
        "48 columns are not whole blocks"
    );
}

#[test]
fn forward_keeps_leading_dimensions() {
    let view = random_view(GgmlType::Q4_1, 40, 64, 6);
    let kernel = QuantMatMul::from_view(&view).unwrap();
    let x = Tensor::from_vec(random_input(6, 64, 9), (2, 3, 64), &Device::Cpu).unwrap();
    let blocks = kernel.forward_blocks(&x).unwrap();
    assert_eq!(blocks.dims(), &[2, 3, 40]);
    let flat: Vec<f32> = blocks.flatten_all().unwrap().to_vec1().unwrap();
    let x_flat: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    assert_close_to_reference(&flat, &x_flat, &reference_weight(&view), 64, "rank 3");
}

#[test]
fn forward_accepts_transposed_input() {
    let view = random_view(GgmlType::Q4_1, 8, 32, 10);
    let kernel = QuantMatMul::from_view(&view).unwrap();
    let x = Tensor::from_vec(random_input(3, 32, 11), (32, 3), &Device::Cpu)
        .unwrap()
        .t()
        .unwrap();
    let output: Vec<f32> = kernel
        .forward_blocks(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let x_flat: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    assert_close_to_reference(&output, &x_flat, &reference_weight(&view), 32, "transposed");
}

#[test]
fn forward_rejects_wrong_width() {
    let kernel = QuantMatMul::from_view(&random_view(GgmlType::Q8_0, 4, 64, 12)).unwrap();
    let x = Tensor::zeros((1, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    let error = kernel.forward_blocks(&x).unwrap_err().to_string();
    assert!(error.contains("expected input [..., 64]"), "{error}");
}

#[test]
fn dense_forward_matches_f32_matmul() {
    let view = random_view(GgmlType::Q4_1, 24, 64, 13);
    let kernel = QuantMatMul::from_view(&view).unwrap();
    let x = Tensor::from_vec(random_input(16, 64, 14), (16, 64), &Device::Cpu).unwrap();
    let weight = Tensor::from_vec(reference_weight(&view), (24, 64), &Device::Cpu).unwrap();
    let expected = x.matmul(&weight.t().unwrap()).unwrap();
    let actual = kernel.forward(&x).unwrap();
    let difference: f32 = (actual - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(difference < 1e-4, "max difference {difference}");
}

#[test]
fn block_forward_propagates_gradient() {
    let view = random_view(GgmlType::Q4_1, 12, 32, 15);
    let kernel = QuantMatMul::from_view(&view).unwrap();
    let x = candle_core::Var::from_vec(random_input(1, 32, 16), (1, 32), &Device::Cpu).unwrap();
    let loss = kernel
        .forward_blocks(x.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap();
    let gradients = loss.backward().unwrap();
    let gradient: Vec<f32> = gradients
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    // d(Σ_j Σ_i w_ji x_i)/dx_i = Σ_j w_ji
    let weight = reference_weight(&view);
    for (i, &g) in gradient.iter().enumerate() {
        let expected: f32 = (0..12).map(|j| weight[j * 32 + i]).sum();
        assert!((g - expected).abs() < 1e-4, "column {i}: {g} vs {expected}");
    }
}

// ---- the real SmolLM2 weights, when STRATA_TEST_GGUF names the GGUF file ----

fn real_model() -> Option<GgufFile> {
    let Some(path) = std::env::var_os("STRATA_TEST_GGUF").map(PathBuf::from) else {
        eprintln!("skipped: set STRATA_TEST_GGUF to SmolLM2-135M-Instruct's GGUF file");
        return None;
    };
    Some(GgufFile::open(&path).unwrap())
}

/// Both the kernel and candle's `QMatMul` stay within the rounding bound of the f32 product
/// for the model's Q4_1 projections and its Q8_0 embedding used as output projection.
#[test]
fn real_weights_match_reference_and_candle() {
    let Some(file) = real_model() else {
        return;
    };
    let tensors = file.tensor_set();
    let names = [
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.0.ffn_up.weight",
        "blk.0.ffn_down.weight",
        "token_embd.weight",
    ];
    for name in names {
        let view = tensors.get(name).unwrap();
        let kernel = QuantMatMul::from_view(view).unwrap();
        let input = kernel.in_features();
        let weight = reference_weight(view);
        let x = random_input(1, input, 17);
        let actual = run_blocks(&kernel, &x, 1);
        assert_close_to_reference(&actual, &x, &weight, input, name);

        let candle = QMatMul::from_qtensor(qtensor(view)).unwrap();
        let tensor = Tensor::from_slice(&x, (1, input), &Device::Cpu).unwrap();
        let candle_out: Vec<f32> = candle
            .forward(&tensor)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_close_to_reference(&candle_out, &x, &weight, input, &format!("candle {name}"));
    }
}

#[test]
fn many_rows_equal_single_rows_bit_for_bit() {
    // Even rows pair up and share each unpacked weight block; the odd last row runs alone.
    // Batched decoding relies on both giving exactly what one row alone gives.
    for dtype in [GgmlType::Q4_1, GgmlType::Q4_0, GgmlType::Q8_0] {
        let view = random_view(dtype, 48, 96, 21);
        let kernel = QuantMatMul::from_view(&view).unwrap();
        let input = random_input(5, 96, 22);
        let x = Tensor::from_vec(input.clone(), (5, 96), &Device::Cpu).unwrap();
        let together: Vec<Vec<f32>> = kernel.forward_blocks(&x).unwrap().to_vec2().unwrap();

        for (row, expected) in together.iter().enumerate() {
            let alone = Tensor::from_vec(
                input[row * 96..(row + 1) * 96].to_vec(),
                (1, 96),
                &Device::Cpu,
            )
            .unwrap();
            let alone: Vec<Vec<f32>> = kernel.forward_blocks(&alone).unwrap().to_vec2().unwrap();
            assert_eq!(&alone[0], expected, "{dtype:?} row {row}");
        }
    }
}
