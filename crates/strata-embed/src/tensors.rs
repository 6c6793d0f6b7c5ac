//! Tensor dtypes as safetensors, the store's annotations and candle name them, and turning raw
//! little-endian bytes into candle tensors.

use candle_core::{DType, Device, Tensor};
use safetensors::Dtype;

/// Returns the candle dtype and the lowercase name written in layer annotations for a
/// safetensors dtype, or `None` for a dtype the embedders cannot load.
pub(crate) fn from_safetensors(dtype: Dtype) -> Option<(DType, &'static str)> {
    let pair = match dtype {
        Dtype::F32 => (DType::F32, "f32"),
        Dtype::F16 => (DType::F16, "f16"),
        Dtype::BF16 => (DType::BF16, "bf16"),
        Dtype::F64 => (DType::F64, "f64"),
        Dtype::I64 => (DType::I64, "i64"),
        Dtype::U32 => (DType::U32, "u32"),
        Dtype::U8 => (DType::U8, "u8"),
        _ => return None,
    };
    Some(pair)
}

/// Parses a dtype name written by [`from_safetensors`].
pub(crate) fn from_name(name: &str) -> Option<DType> {
    let dtype = match name {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "f64" => DType::F64,
        "i64" => DType::I64,
        "u32" => DType::U32,
        "u8" => DType::U8,
        _ => return None,
    };
    Some(dtype)
}

/// Copies `bytes`, little-endian values of `dtype`, into a CPU tensor of `shape`.
///
/// Fails when the byte length is not the shape's element count times the dtype's size.
pub(crate) fn tensor_from_bytes(
    bytes: &[u8],
    dtype: DType,
    shape: &[usize],
) -> candle_core::Result<Tensor> {
    let elements: usize = shape.iter().product();
    let expected = elements * dtype.size_in_bytes();
    if bytes.len() != expected {
        candle_core::bail!(
            "tensor of shape {shape:?} and dtype {dtype:?} needs {expected} bytes, got {}",
            bytes.len()
        );
    }
    Tensor::from_raw_buffer(bytes, dtype, shape, &Device::Cpu)
}
