//! [`QuantMatMul`]: `y = x·Wᵀ` for a GGML-quantized `[out, in]` weight, read in place from the
//! tensor's bytes (normally a memory map of its blob) as a candle custom op.
//!
//! Inputs with few rows (decode) quantize each activation row to 8-bit blocks once, then take
//! one block dot product per output row, with output rows split across rayon's pool when the
//! call is large enough to pay for the scheduling. Inputs with many rows (prefill) multiply by
//! an f32 copy of the weight, made on first use, with candle's gemm, which is faster there.

use std::sync::{Arc, OnceLock};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use strata_model::{GgmlType, SharedBytes, TensorView};

use super::format::{self, BLOCK, Q8Activations, WeightFormat};

/// Inputs with at least this many rows go through the f32 copy of the weight and candle's gemm.
// NOTE: from `examples/kernel_bench.rs` on a 2-core AMD EPYC with AVX2, at 576×1536: 8 rows take
// 316 µs in the block kernel and 845 µs in gemm, 16 rows 675 µs and 626 µs. The block kernel
// unpacks each weight block again for every row, so its cost grows linearly with the rows.
pub const DENSE_MIN_ROWS: usize = 16;

/// Calls below this many multiply-adds run on the calling thread: splitting them across rayon's
/// pool costs more in scheduling than it saves.
// NOTE: measured with `examples/kernel_bench.rs --model` on SmolLM2-135M, 2 cores shared with
// other jobs (load average 3 to 5). With this value only the 49152×576 output projection is
// split, and decoding runs at 76 to 79 tokens/s. With 500k, which also splits the 576×1536
// projections, it runs at 55 to 57. On an idle machine, splitting smaller calls may pay off.
const PARALLEL_MIN_WORK: usize = 4_000_000;

/// Rayon tasks per pool thread, so an uneven split still keeps every thread busy.
const TASKS_PER_THREAD: usize = 4;

/// Weight rows multiplied with every activation row before moving on, so the rows stay in L1.
const TILE_ROWS: usize = 16;

/// The instruction set a [`QuantMatMul`] runs its block dot products with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Portable Rust, used on CPUs without the SIMD extensions below.
    Scalar,
    /// x86_64 AVX2 with FMA and F16C.
    Avx2,
}

impl Backend {
    /// Returns the fastest backend this CPU supports.
    pub fn detect() -> Backend {
        if Backend::Avx2.is_available() {
            Backend::Avx2
        } else {
            Backend::Scalar
        }
    }

    /// True when this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => super::avx2::is_supported(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 => false,
        }
    }
}

/// A quantized `[out, in]` linear weight multiplied in place from its GGML blocks.
///
/// Cloning is cheap and clones share the bytes and the f32 copy.
#[derive(Clone)]
pub struct QuantMatMul {
    weight: Arc<BlockWeight>,
    /// The same weight as a boxed custom op, built once so a call allocates nothing for it.
    op: Arc<Box<dyn CustomOp1 + Send + Sync>>,
}

/// The weight's bytes and geometry, shared by [`QuantMatMul`] and its custom op.
struct BlockWeight {
    name: String,
    format: WeightFormat,
    dtype: GgmlType,
    out_features: usize,
    in_features: usize,
    bytes: SharedBytes,
    backend: Backend,
    dense: OnceLock<Tensor>,
}

/// The custom op handed to candle.
struct BlockMatMulOp(Arc<BlockWeight>);

impl QuantMatMul {
    /// Wraps a stored `[out, in]` weight, or returns `None` when the kernels cannot run it.
    ///
    /// That is the case for a dtype other than Q4_0, Q4_1 or Q8_0, a shape that is not
    /// two-dimensional, an input width that is not a multiple of 32, and a byte length that does
    /// not match the shape.
    pub fn from_view(view: &TensorView) -> Option<QuantMatMul> {
        let format = WeightFormat::from_dtype(view.dtype)?;
        let [out_features, in_features] = view.shape[..] else {
            return None;
        };
        let row_bytes = in_features / BLOCK * format.block_bytes();
        let whole_blocks = in_features.is_multiple_of(BLOCK);
        if !whole_blocks || view.bytes().len() != out_features * row_bytes {
            return None;
        }
        let weight = BlockWeight {
            name: view.name.clone(),
            format,
            dtype: view.dtype,
            out_features,
            in_features,
            bytes: view.shared_bytes(),
            backend: Backend::detect(),
            dense: OnceLock::new(),
        };
        Some(QuantMatMul::from_weight(weight))
    }

    fn from_weight(weight: BlockWeight) -> QuantMatMul {
        let weight = Arc::new(weight);
        let op: Box<dyn CustomOp1 + Send + Sync> = Box::new(BlockMatMulOp(weight.clone()));
        QuantMatMul {
            weight,
            op: Arc::new(op),
        }
    }

    /// Returns a copy that runs on `backend`, or `None` when this CPU cannot run it. Benchmarks
    /// and tests use it to compare the scalar path with the SIMD one.
    pub fn with_backend(&self, backend: Backend) -> Option<QuantMatMul> {
        if !backend.is_available() {
            return None;
        }
        let weight = &self.weight;
        Some(QuantMatMul::from_weight(BlockWeight {
            name: weight.name.clone(),
            format: weight.format,
            dtype: weight.dtype,
            out_features: weight.out_features,
            in_features: weight.in_features,
            bytes: weight.bytes.clone(),
            backend,
            dense: OnceLock::new(),
        }))
    }

    /// Returns the backend the block dot products run on.
    pub fn backend(&self) -> Backend {
        self.weight.backend
    }

    /// Returns the stored element type.
    pub fn dtype(&self) -> GgmlType {
        self.weight.dtype
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.in_features
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.out_features
    }

    /// Computes `x·Wᵀ` for f32 `x` of shape `[..., in]`, returning `[..., out]`. Inputs with at
    /// least [`DENSE_MIN_ROWS`] rows, and inputs on other devices than the CPU, use
    /// [`forward_dense`](Self::forward_dense); the rest use
    /// [`forward_blocks`](Self::forward_blocks).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if rows(x) >= DENSE_MIN_ROWS || !x.device().is_cpu() {
            self.forward_dense(x)
        } else {
            self.forward_blocks(x)
        }
    }

    /// Computes `x·Wᵀ` with the block kernels: each row of `x` is rounded to 8-bit blocks
    /// (relative error up to 1/254 of the block's largest magnitude), as llama.cpp does.
    /// CPU only. The gradient with respect to `x` is `grad·W` with the f32 copy of `W`.
    pub fn forward_blocks(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1_arc(self.op.clone())
    }

    /// Returns the weight dequantized to f32, `[out, in]`, the copy multi-row inputs use.
    pub fn dense_weight(&self, device: &Device) -> candle_core::Result<Tensor> {
        self.weight.dense_weight(device)
    }

    /// Computes `x·Wᵀ` with an f32 copy of the weight, made on the first call on `x`'s device
    /// and kept. It avoids the 8-bit rounding of the activations.
    pub fn forward_dense(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let weight = self.weight.dense_weight(x.device())?;
        matmul_transposed(x, &weight)
    }
}

impl std::fmt::Debug for QuantMatMul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let weight = &self.weight;
        f.debug_struct("QuantMatMul")
            .field("name", &weight.name)
            .field("dtype", &weight.dtype)
            .field("shape", &[weight.out_features, weight.in_features])
            .field("backend", &weight.backend)
            .field("dense", &weight.dense.get().is_some())
            .finish()
    }
}

impl BlockWeight {
    fn row_bytes(&self) -> usize {
        self.in_features / BLOCK * self.format.block_bytes()
    }

    /// Returns the f32 copy of the weight, dequantizing it on first use.
    // NOTE: only the copy for the device of the first call is kept; every call on another device
    // dequantizes again.
    fn dense_weight(&self, device: &Device) -> candle_core::Result<Tensor> {
        if let Some(weight) = self.dense.get()
            && weight.device().same_device(device)
        {
            return Ok(weight.clone());
        }
        let values = format::dequantize(self.format, (*self.bytes).as_ref());
        let shape = (self.out_features, self.in_features);
        let weight = Tensor::from_vec(values, shape, device)?;
        if self.dense.set(weight.clone()).is_ok() {
            tracing::debug!(tensor = %self.name, "dequantized weight for multi-row inputs");
        }
        Ok(weight)
    }

    /// Writes `x·Wᵀ` for the row-major `[rows, in]` matrix `x` into `out`, `[rows, out]`.
    fn matmul(&self, x: &[f32], out: &mut [f32]) {
        let rows = x.len() / self.in_features;
        let activations = Q8Activations::quantize(x, self.in_features);
        if rows == 1 {
            self.matmul_transposed_out(&activations, out);
            return;
        }
        // Tasks own contiguous ranges of weight rows, so they write `outᵀ` and it is transposed
        // at the end.
        let mut transposed = vec![0.0f32; out.len()];
        self.matmul_transposed_out(&activations, &mut transposed);
        for (weight_row, values) in transposed.chunks_exact(rows).enumerate() {
            for (row, &value) in values.iter().enumerate() {
                out[row * self.out_features + weight_row] = value;
            }
        }
    }

    /// Writes `(x·Wᵀ)ᵀ`, `[out, rows]`, splitting the weight rows across rayon's pool when the
    /// call is large enough.
    fn matmul_transposed_out(&self, activations: &Q8Activations, out: &mut [f32]) {
        let rows = activations.rows();
        let work = self.out_features * self.in_features * rows;
        let threads = rayon::current_num_threads();
        if work < PARALLEL_MIN_WORK || threads == 1 {
            self.multiply_rows(0, activations, out);
            return;
        }
        let tasks = threads * TASKS_PER_THREAD;
        let rows_per_task = self.out_features.div_ceil(tasks).max(1);
        out.par_chunks_mut(rows_per_task * rows)
            .enumerate()
            .for_each(|(task, out)| self.multiply_rows(task * rows_per_task, activations, out));
    }

    /// Fills `out`, the `[weight rows, activation rows]` block starting at weight row `first`,
    /// a tile of weight rows at a time.
    fn multiply_rows(&self, first: usize, activations: &Q8Activations, out: &mut [f32]) {
        let rows = activations.rows();
        let row_bytes = self.row_bytes();
        let bytes: &[u8] = (*self.bytes).as_ref();
        let weight_rows = out.len() / rows;
        let weights = &bytes[first * row_bytes..(first + weight_rows) * row_bytes];
        let tiles = weights.chunks(TILE_ROWS * row_bytes);
        let paired = self.pairs_rows();
        for (tile, out) in tiles.zip(out.chunks_mut(TILE_ROWS * rows)) {
            let mut row = 0;
            while row < rows {
                if paired && row + 1 < rows {
                    self.dot_rows_pair(tile, activations, row, &mut out[row..]);
                    row += 2;
                } else {
                    self.dot_rows(tile, activations, row, &mut out[row..]);
                    row += 1;
                }
            }
        }
    }

    /// True when two activation rows can share each unpacked weight block.
    fn pairs_rows(&self) -> bool {
        self.backend == Backend::Avx2
            && matches!(self.format, WeightFormat::Q4_0 | WeightFormat::Q4_1)
    }

    /// Like [`BlockWeight::dot_rows`] for activation rows `row` and `row + 1` at once.
    #[cfg(target_arch = "x86_64")]
    fn dot_rows_pair(
        &self,
        weights: &[u8],
        activations: &Q8Activations,
        row: usize,
        out: &mut [f32],
    ) {
        let pair = (activations.row(row), activations.row(row + 1));
        let stride = activations.rows();
        super::avx2::dot_rows_pair(self.format, weights, self.row_bytes(), pair, out, stride);
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn dot_rows_pair(
        &self,
        weights: &[u8],
        activations: &Q8Activations,
        row: usize,
        out: &mut [f32],
    ) {
        self.dot_rows(weights, activations, row, out);
        self.dot_rows(weights, activations, row + 1, &mut out[1..]);
    }

    fn dot_rows(&self, weights: &[u8], activations: &Q8Activations, row: usize, out: &mut [f32]) {
        let row_bytes = self.row_bytes();
        let activation = activations.row(row);
        let stride = activations.rows();
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                super::avx2::dot_rows(self.format, weights, row_bytes, activation, out, stride)
            }
            _ => format::dot_rows_scalar(self.format, weights, row_bytes, activation, out, stride),
        }
    }
}

impl CustomOp1 for BlockMatMulOp {
    fn name(&self) -> &'static str {
        "strata-quant-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let weight = &self.0;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!(
                "quantized matmul of {}: input is not contiguous",
                weight.name
            )
        };
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!(
                "quantized matmul of {}: expected f32 input, got {:?}",
                weight.name,
                storage.dtype()
            )
        };
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&weight.in_features) {
            candle_core::bail!(
                "quantized matmul of {}: expected input [..., {}], got {:?}",
                weight.name,
                weight.in_features,
                dims
            )
        }
        let x = &values[start..end];
        let mut out = vec![0.0f32; x.len() / weight.in_features * weight.out_features];
        if !out.is_empty() {
            weight.matmul(x, &mut out);
        }
        *dims.last_mut().expect("checked above") = weight.out_features;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let weight = self.0.dense_weight(arg.device())?;
        let grad = matmul_transposed(grad_res, &weight.t()?)?;
        Ok(Some(grad))
    }
}

/// Number of rows of `x` once its leading dimensions are folded together.
fn rows(x: &Tensor) -> usize {
    let width = x.dims().last().copied().unwrap_or(1).max(1);
    x.elem_count() / width
}

/// Computes `x·Wᵀ` for `x` of any rank by folding the leading dimensions into one.
fn matmul_transposed(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    let Some(&in_features) = dims.last() else {
        candle_core::bail!(
            "matmul input is a scalar, expected [..., {}]",
            weight.dim(1)?
        )
    };
    let flat = x.reshape((rows(x), in_features))?;
    let output = flat.matmul(&weight.t()?)?;

    let mut output_dims = dims.to_vec();
    *output_dims.last_mut().expect("checked above") = weight.dim(0)?;
    output.reshape(output_dims)
}
