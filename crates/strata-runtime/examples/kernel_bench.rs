//! Micro-benchmark of `strata_runtime::kernels::QuantMatMul` against candle's `QMatMul` on the
//! same GGML bytes, for SmolLM2-135M's projection shapes.
//!
//! Run with `cargo run --release -p strata-runtime --example kernel_bench`. Each row prints the
//! median time per call over several batches and the weight bytes read per second. Weights are
//! random blocks of the stated dtype. Set `RAYON_NUM_THREADS` to change the pool size; the
//! `1 thread` rows run the same kernel inside a one-thread pool. An argument such as `1×576×`
//! keeps only the shapes whose label contains it.
//!
//! With `--model FILE.gguf` it measures the whole decoder instead, the way `llama-bench` does:
//! `pp N` feeds an N-token prompt into an empty cache, `tg 128` feeds 128 single tokens after a
//! one-token prompt, and `tg 128 @ d512` does the same after a 512-token prompt. Token ids are
//! fixed arbitrary values and nothing is sampled. A third argument, `pp` or `tg`, keeps only the
//! tests whose name starts with it.

#![allow(clippy::print_stdout)]

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use strata_model::gguf::GgufFile;
use strata_model::{GgmlType, TensorView};
use strata_runtime::Llama;
use strata_runtime::kernels::{Backend, QuantMatMul};

/// Minimum measuring time per row of the table.
const MEASURE_TIME: Duration = Duration::from_millis(400);

/// (dtype, rows, in, out): decode shapes first, then prompt shapes for the dense crossover.
const CASES: [(GgmlType, usize, usize, usize); 14] = [
    (GgmlType::Q4_1, 1, 576, 192),
    (GgmlType::Q4_1, 1, 576, 576),
    (GgmlType::Q4_1, 1, 576, 1536),
    (GgmlType::Q4_1, 1, 1536, 576),
    (GgmlType::Q8_0, 1, 576, 49152),
    (GgmlType::Q4_1, 2, 576, 1536),
    (GgmlType::Q4_1, 4, 576, 1536),
    (GgmlType::Q4_1, 7, 1536, 576),
    (GgmlType::Q4_1, 8, 576, 1536),
    (GgmlType::Q4_1, 16, 576, 1536),
    (GgmlType::Q4_1, 32, 576, 1536),
    (GgmlType::Q4_1, 128, 576, 1536),
    (GgmlType::Q4_1, 512, 576, 1536),
    (GgmlType::Q8_0, 128, 576, 49152),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match &arguments[..] {
        [flag, path] if flag == "--model" => return bench_model(Path::new(path), ""),
        [flag, path, only] if flag == "--model" => return bench_model(Path::new(path), only),
        _ => {}
    }
    // An optional argument keeps only the shapes whose `rows×in×out` label contains it.
    let filter = arguments.first().cloned().unwrap_or_default();
    println!("threads in pool: {}", rayon::current_num_threads());
    println!("| dtype | rows×in×out | kernel | µs/call | weight GB/s |");
    println!("|---|---|---|---:|---:|");
    for (dtype, rows, input, out) in CASES {
        if !format!("{rows}×{input}×{out}").contains(&filter) {
            continue;
        }
        bench_case(dtype, rows, input, out)?;
    }
    Ok(())
}

fn bench_case(dtype: GgmlType, rows: usize, input: usize, out: usize) -> candle_core::Result<()> {
    let view = random_view(dtype, out, input);
    let weight_bytes = view.bytes().len();
    let x = Tensor::randn(0f32, 1.0, (rows, input), &Device::Cpu)?;
    let label = format!("| {} | {rows}×{input}×{out} |", dtype.name());
    let report = |kernel: &str, time: Duration| {
        let micros = time.as_secs_f64() * 1e6;
        let gigabytes = weight_bytes as f64 / time.as_secs_f64() / 1e9;
        println!("{label} {kernel} | {micros:.1} | {gigabytes:.2} |");
    };

    let candle = QMatMul::from_qtensor(qtensor(&view)?)?;
    report("candle QMatMul", median_time(|| candle.forward(&x))?);

    let kernel = QuantMatMul::from_view(&view).expect("a kernel dtype");
    report("strata blocks", median_time(|| kernel.forward_blocks(&x))?);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    let time = single.install(|| median_time(|| kernel.forward_blocks(&x)))?;
    report("strata blocks, 1 thread", time);
    if rows == 1 {
        let scalar = kernel
            .with_backend(Backend::Scalar)
            .expect("scalar runs anywhere");
        report("strata scalar", median_time(|| scalar.forward_blocks(&x))?);
    } else {
        report(
            "strata dense f32 gemm",
            median_time(|| kernel.forward_dense(&x))?,
        );
    }
    Ok(())
}

/// Median time per call of `call` over batches, after one warm-up call.
fn median_time<F>(mut call: F) -> candle_core::Result<Duration>
where
    F: FnMut() -> candle_core::Result<Tensor>,
{
    call()?;
    let start = Instant::now();
    call()?;
    let estimate = start.elapsed().max(Duration::from_micros(1));
    let batch = (Duration::from_millis(20).as_secs_f64() / estimate.as_secs_f64()).ceil() as u32;
    let mut samples = Vec::new();
    let begin = Instant::now();
    while begin.elapsed() < MEASURE_TIME || samples.len() < 5 {
        let start = Instant::now();
        for _ in 0..batch {
            call()?;
        }
        samples.push(start.elapsed() / batch);
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// Builds random blocks of `dtype` for an `[out, in]` weight. Any byte pattern is a valid block
/// except in the scales, so those are set to small normal f16 values.
fn random_view(dtype: GgmlType, out: usize, input: usize) -> TensorView {
    let blocks = out * input / 32;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes: Vec<u8> = (0..blocks * dtype.type_size())
        .map(|_| {
            // xorshift64: a cheap deterministic byte stream.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let scale_bytes = match dtype {
        GgmlType::Q4_1 => 4,
        _ => 2,
    };
    for block in bytes.chunks_exact_mut(dtype.type_size()) {
        let scale = half::f16::from_f32(0.01).to_le_bytes();
        block[..2].copy_from_slice(&scale);
        if scale_bytes == 4 {
            block[2..4].copy_from_slice(&half::f16::from_f32(-0.08).to_le_bytes());
        }
    }
    TensorView::new("bench".into(), dtype, vec![out, input], Arc::new(bytes))
}

fn qtensor(view: &TensorView) -> candle_core::Result<QTensor> {
    let dtype = match view.dtype {
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        other => candle_core::bail!("no candle dtype for {other:?} in this benchmark"),
    };
    let storage = QStorage::from_data(Cow::Borrowed(view.bytes()), &Device::Cpu, dtype)?;
    QTensor::new(storage, view.shape.clone())
}

/// Prints prompt and decode tokens per second for the GGUF model at `path`, as the median of
/// [`MODEL_REPEATS`] runs.
fn bench_model(path: &Path, only: &str) -> Result<(), Box<dyn std::error::Error>> {
    let file = GgufFile::open(path)?;
    let model = file.model()?;
    let tensors = file.tensor_set();
    let config = &model.hyperparameters;
    let llama = Llama::load(config, model.architecture, &tensors, &Device::Cpu)?;
    let tokens: Vec<u32> = (0..1024u32)
        .map(|i| (i * 7919 + 13) % config.vocab_size as u32)
        .collect();

    println!(
        "model: {}, threads in pool: {}",
        path.display(),
        rayon::current_num_threads()
    );
    println!("| test | tokens/s |");
    println!("|---|---:|");
    let prompts: &[usize] = if "pp".starts_with(only) {
        &[128, 512]
    } else {
        &[]
    };
    let depths: &[usize] = if "tg".starts_with(only) {
        &[1, 512]
    } else {
        &[]
    };
    for &prompt in prompts {
        let rate = median_rate(|| {
            let mut cache = llama.new_cache(prompt)?;
            let start = Instant::now();
            llama.forward(&tokens[..prompt], &mut cache)?;
            Ok(prompt as f64 / start.elapsed().as_secs_f64())
        })?;
        println!("| pp {prompt} | {rate:.1} |");
    }
    for &depth in depths {
        let rate = median_rate(|| {
            let mut cache = llama.new_cache(depth + 128)?;
            llama.forward(&tokens[..depth], &mut cache)?;
            let start = Instant::now();
            for &token in &tokens[depth..depth + 128] {
                llama.forward(&[token], &mut cache)?;
            }
            Ok(128.0 / start.elapsed().as_secs_f64())
        })?;
        let label = if depth == 1 {
            String::new()
        } else {
            format!(" @ d{depth}")
        };
        println!("| tg 128{label} | {rate:.1} |");
    }
    Ok(())
}

/// Runs of each whole-model test; the first run also builds the f32 weight copies, so it is
/// run once more than counted and dropped.
const MODEL_REPEATS: usize = 3;

fn median_rate<F>(mut run: F) -> Result<f64, Box<dyn std::error::Error>>
where
    F: FnMut() -> strata_runtime::Result<f64>,
{
    run()?;
    let mut rates = (0..MODEL_REPEATS)
        .map(|_| run())
        .collect::<strata_runtime::Result<Vec<_>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}
