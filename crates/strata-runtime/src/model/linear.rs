//! Linear layers over stored weights, with an optional LoRA adapter.
//!
//! A [`Linear`] keeps its base weight either as an f32 tensor (f32, f16 and bf16 files) or as
//! GGML blocks, so single-row inputs of quantized models are not expanded to f32. Q4_0, Q4_1
//! and Q8_0 blocks run on strata's SIMD kernels, other block types on candle's quantized matmul.
//! [`Linear::from_view`] is the one place that picks the kernel for a stored tensor. A LoRA
//! adapter adds `scale · (x·Aᵀ)·Bᵀ` to the base output; it stays in f32 so it can be trained.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use strata_model::{GgmlType, TensorView};

use crate::error::{Error, LoadError, Result};
use crate::kernels::QuantMatMul;

/// A low-rank update `scale · B·A` added to a linear layer's weight.
#[derive(Clone, Debug)]
pub struct LoraAdapter {
    /// Down projection, `[rank, in_features]`.
    pub a: Tensor,
    /// Up projection, `[out_features, rank]`.
    pub b: Tensor,
    /// Factor on the adapter's output, usually `alpha / rank`.
    pub scale: f64,
}

/// The kernel behind a linear layer's base weight.
#[derive(Clone, Debug)]
enum Weight {
    /// `[out, in]` f32.
    Float(Tensor),
    /// Q4_0, Q4_1 or Q8_0 blocks run by strata's SIMD kernels, with their own f32 copy for
    /// multi-row inputs.
    Blocks(QuantMatMul),
    /// GGML blocks of an `[out, in]` matrix, plus an f32 copy made on the first multi-row
    /// input: one prompt row at a time the blocks are cheapest to read, while many rows at once
    /// run faster, and without 8-bit rounding of the activations, through f32 gemm.
    Quantized {
        kernel: QMatMul,
        view: TensorView,
        dense: Arc<OnceLock<Tensor>>,
    },
}

/// Inputs with at least this many rows use the f32 copy of a quantized weight.
// NOTE: 2 was picked when candle's scalar Q4_1 loop made even two rows faster in f32. strata's
// SIMD kernels are faster than f32 gemm up to about 16 rows (`examples/kernel_bench.rs`), but
// multi-row inputs stay on f32 so that a prompt's logits carry no 8-bit activation rounding.
const DENSE_MIN_ROWS: usize = 2;

/// Which kernel a layer with a quantized weight runs an input through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The block kernels for one row, the f32 copy for more ([`Linear::forward`]).
    ByRows,
    /// Always the f32 copy ([`Linear::forward_dense`]).
    Dense,
    /// Always the block kernels, each row computed as if alone ([`Linear::forward_rows`]).
    Blocks,
}

/// A bias-optional linear layer `y = x·Wᵀ + b`, with an optional LoRA adapter.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
    lora: Option<LoraAdapter>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Builds a layer from a stored `[out, in]` weight, choosing the kernel for its dtype: float
    /// weights become f32 tensors, Q4_0, Q4_1 and Q8_0 go to strata's SIMD kernels, other GGML
    /// block types to candle's quantized matmul.
    pub fn from_view(view: &TensorView, device: &Device) -> Result<Linear> {
        let (out_features, in_features) = matrix_dims(view)?;
        let weight = if view.dtype.is_float() {
            Weight::Float(float_tensor(view, device)?)
        } else if let Some(kernel) = QuantMatMul::from_view(view) {
            check_byte_length(view)?;
            Weight::Blocks(kernel)
        } else {
            Weight::Quantized {
                kernel: QMatMul::from_qtensor(qtensor(view, device)?)?,
                view: view.clone(),
                dense: Arc::new(OnceLock::new()),
            }
        };
        let kernel = match &weight {
            Weight::Float(_) => "f32",
            Weight::Blocks(_) => "strata blocks",
            Weight::Quantized { .. } => "candle qmatmul",
        };
        tracing::debug!(tensor = %view.name, dtype = view.dtype.name(), kernel, "loaded linear weight");
        Ok(Linear {
            weight,
            bias: None,
            lora: None,
            in_features,
            out_features,
        })
    }

    /// Adds a bias of shape `[out_features]`.
    pub fn with_bias(mut self, bias: Tensor) -> Linear {
        self.bias = Some(bias);
        self
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// True when the base weight is run by the quantized kernel.
    pub fn is_quantized(&self) -> bool {
        matches!(self.weight, Weight::Quantized { .. } | Weight::Blocks(_))
    }

    /// Returns the bias, when the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Returns the base weight as f32, `[out, in]`, dequantizing GGML blocks (the same copy
    /// multi-row inputs use, so it is made once).
    pub fn dense_weight(&self, device: &Device) -> Result<Tensor> {
        match &self.weight {
            Weight::Float(weight) => Ok(weight.clone()),
            Weight::Blocks(kernel) => Ok(kernel.dense_weight(device)?),
            Weight::Quantized { view, dense, .. } => Ok(dense_weight(dense, view, device)?.clone()),
        }
    }

    /// Returns the attached adapter, if any.
    pub fn lora(&self) -> Option<&LoraAdapter> {
        self.lora.as_ref()
    }

    /// Attaches an adapter, replacing any previous one; rejects shapes that do not fit.
    pub fn set_lora(&mut self, adapter: LoraAdapter) -> Result<()> {
        let a = adapter.a.dims().to_vec();
        let b = adapter.b.dims().to_vec();
        let fits = a.len() == 2
            && b.len() == 2
            && a[1] == self.in_features
            && b[0] == self.out_features
            && a[0] == b[1];
        if !fits {
            return Err(Error::LoraShape {
                a,
                b,
                in_features: self.in_features,
                out_features: self.out_features,
            });
        }
        self.lora = Some(adapter);
        Ok(())
    }

    /// Removes the adapter and returns it.
    pub fn clear_lora(&mut self) -> Option<LoraAdapter> {
        self.lora.take()
    }

    /// Applies the layer to `x` of shape `[..., in_features]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_inner(x, rows(x) >= DENSE_MIN_ROWS)
    }

    /// Applies the layer with an f32 copy of a quantized weight, whatever the row count.
    ///
    /// The decoder uses it for the logits that end a prompt, so the first answer token does not
    /// depend on the 8-bit rounding of the activations that the block kernels do.
    pub fn forward_dense(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_inner(x, true)
    }

    /// Applies the layer with the kernel `kernel` picks.
    pub fn forward_with(&self, x: &Tensor, kernel: Kernel) -> Result<Tensor> {
        match kernel {
            Kernel::ByRows => self.forward(x),
            Kernel::Dense => self.forward_dense(x),
            Kernel::Blocks => self.forward_rows(x),
        }
    }

    /// Applies the layer so that every row's output is exactly what a one-row call gives,
    /// whatever the row count: quantized weights stay on their block kernels.
    ///
    /// Batched decoding uses it, so a sequence's tokens do not depend on which other sequences
    /// share its steps.
    pub fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Blocks(kernel) if x.device().is_cpu() => {
                let output = kernel.forward_blocks(x)?;
                self.add_bias_and_lora(x, output)
            }
            _ => self.forward_inner(x, false),
        }
    }

    fn forward_inner(&self, x: &Tensor, use_dense: bool) -> Result<Tensor> {
        let output = match &self.weight {
            Weight::Float(weight) => matmul_transposed(x, weight)?,
            Weight::Blocks(kernel) if use_dense => kernel.forward_dense(x)?,
            Weight::Blocks(kernel) => kernel.forward(x)?,
            Weight::Quantized {
                kernel,
                view,
                dense,
            } => {
                if use_dense {
                    matmul_transposed(x, dense_weight(dense, view, x.device())?)?
                } else {
                    kernel.forward(x)?
                }
            }
        };
        self.add_bias_and_lora(x, output)
    }

    /// Adds the bias and the adapter's update to the base output of `x`.
    fn add_bias_and_lora(&self, x: &Tensor, mut output: Tensor) -> Result<Tensor> {
        if let Some(bias) = &self.bias {
            output = output.broadcast_add(bias)?;
        }
        if let Some(lora) = &self.lora {
            let down = matmul_transposed(x, &lora.a)?;
            let up = matmul_transposed(&down, &lora.b)?;
            output = (output + (up * lora.scale)?)?;
        }
        Ok(output)
    }
}

/// Number of rows of `x` once its leading dimensions are folded together.
fn rows(x: &Tensor) -> usize {
    let in_features = x.dims().last().copied().unwrap_or(1).max(1);
    x.elem_count() / in_features
}

/// The f32 copy of a quantized weight, dequantized on first use.
fn dense_weight<'a>(
    dense: &'a OnceLock<Tensor>,
    view: &TensorView,
    device: &Device,
) -> Result<&'a Tensor> {
    if let Some(weight) = dense.get() {
        return Ok(weight);
    }
    let weight = float_tensor(view, device)?;
    tracing::debug!(tensor = %view.name, "dequantized weight for multi-row inputs");
    Ok(dense.get_or_init(|| weight))
}

/// Computes `x·Wᵀ` for `x` of any rank by folding the leading dimensions into one.
fn matmul_transposed(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let in_features = dims[dims.len() - 1];
    let rows = x.elem_count() / in_features.max(1);
    let flat = x.reshape((rows, in_features))?;
    let output = flat.matmul(&weight.t()?)?;

    let mut output_dims = dims.to_vec();
    *output_dims
        .last_mut()
        .expect("a matmul input has at least one dimension") = weight.dim(0)?;
    Ok(output.reshape(output_dims)?)
}

/// Returns `(out, in)` of a matrix view.
fn matrix_dims(view: &TensorView) -> Result<(usize, usize)> {
    match view.shape[..] {
        [rows, columns] => Ok((rows, columns)),
        _ => Err(LoadError::ShapeMismatch {
            name: view.name.clone(),
            expected: vec![0, 0],
            actual: view.shape.clone(),
        }
        .into()),
    }
}

/// Decodes any stored tensor to f32: floats are read directly, GGML blocks are dequantized.
pub fn float_tensor(view: &TensorView, device: &Device) -> Result<Tensor> {
    check_byte_length(view)?;
    let bytes = view.bytes();
    let values: Vec<f32> = match view.dtype {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        GgmlType::Bf16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return Ok(qtensor(view, device)?.dequantize(device)?),
    };
    Ok(Tensor::from_vec(values, view.shape.clone(), device)?)
}

/// Encodes an f32 tensor as `dtype`: float types as little-endian values, GGML block types
/// quantized by candle (rows must be whole blocks).
pub fn encode_tensor(tensor: &Tensor, dtype: GgmlType) -> Result<Vec<u8>> {
    let values = tensor.flatten_all()?.to_vec1::<f32>()?;
    let bytes = match dtype {
        GgmlType::F32 => values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect(),
        GgmlType::F16 => values
            .iter()
            .flat_map(|value| half::f16::from_f32(*value).to_le_bytes())
            .collect(),
        GgmlType::Bf16 => values
            .iter()
            .flat_map(|value| half::bf16::from_f32(*value).to_le_bytes())
            .collect(),
        _ => {
            let quantized = QTensor::quantize(tensor, candle_dtype(dtype))?;
            quantized.data()?.into_owned()
        }
    };
    Ok(bytes)
}

/// Copies GGML blocks into a candle `QTensor` of the view's shape (outermost first, the order
/// `QTensor` expects).
pub(crate) fn qtensor(view: &TensorView, device: &Device) -> Result<QTensor> {
    check_byte_length(view)?;
    let row = view.shape.last().copied().unwrap_or(1);
    let block = view.dtype.block_size();
    if !row.is_multiple_of(block) {
        return Err(LoadError::PartialBlock {
            name: view.name.clone(),
            dtype: view.dtype,
            row,
            block,
        }
        .into());
    }

    // candle reinterprets the bytes as block structs and panics on a misaligned pointer. Blob
    // maps are page-aligned and GGUF aligns tensor data to 32 bytes, so the copy below only runs
    // for odd owned buffers.
    let bytes = view.bytes();
    let data = if bytes.as_ptr().align_offset(8) == 0 {
        Cow::Borrowed(bytes)
    } else {
        Cow::Owned(bytes.to_vec())
    };
    let storage = QStorage::from_data(data, device, candle_dtype(view.dtype))?;
    Ok(QTensor::new(storage, view.shape.clone())?)
}

fn check_byte_length(view: &TensorView) -> Result<()> {
    let expected = view
        .dtype
        .byte_len(view.elements() as u64)
        .map(|len| len as usize);
    let actual = view.bytes().len();
    if expected == Some(actual) {
        return Ok(());
    }
    Err(LoadError::ByteLength {
        name: view.name.clone(),
        dtype: view.dtype,
        shape: view.shape.clone(),
        expected: expected.unwrap_or(0),
        actual,
    }
    .into())
}

fn candle_dtype(dtype: GgmlType) -> GgmlDType {
    match dtype {
        GgmlType::F32 => GgmlDType::F32,
        GgmlType::F16 => GgmlDType::F16,
        GgmlType::Bf16 => GgmlDType::BF16,
        GgmlType::Q4_0 => GgmlDType::Q4_0,
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q5_0 => GgmlDType::Q5_0,
        GgmlType::Q5_1 => GgmlDType::Q5_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        GgmlType::Q8_1 => GgmlDType::Q8_1,
        GgmlType::Q2K => GgmlDType::Q2K,
        GgmlType::Q3K => GgmlDType::Q3K,
        GgmlType::Q4K => GgmlDType::Q4K,
        GgmlType::Q5K => GgmlDType::Q5K,
        GgmlType::Q6K => GgmlDType::Q6K,
        GgmlType::Q8K => GgmlDType::Q8K,
    }
}
