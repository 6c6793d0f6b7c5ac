//! A matmul with a frozen weight whose backward pass computes only the input's gradient.
//!
//! A plain candle matmul computes the gradient of both operands even when one is a constant,
//! which for a frozen weight doubles the backward pass's work for nothing.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

/// `x·Wᵀ` for a frozen `[out, in]` f32 weight.
#[derive(Clone)]
pub(crate) struct FrozenMatmul {
    op: Arc<Box<dyn CustomOp1 + Send + Sync>>,
}

impl std::fmt::Debug for FrozenMatmul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrozenMatmul")
    }
}

/// The custom op behind [`FrozenMatmul`].
struct FrozenOp {
    weight: Tensor,
}

impl FrozenMatmul {
    /// Wraps a contiguous `[out, in]` f32 weight.
    pub(crate) fn new(weight: Tensor) -> candle_core::Result<FrozenMatmul> {
        let op: Box<dyn CustomOp1 + Send + Sync> = Box::new(FrozenOp {
            weight: weight.contiguous()?,
        });
        Ok(FrozenMatmul { op: Arc::new(op) })
    }

    /// Applies the weight to `x` of shape `[rows, in]`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1_arc(self.op.clone())
    }
}

impl CustomOp1 for FrozenOp {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("frozen-matmul expects f32 input");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-matmul expects a contiguous input");
        };
        let x = Tensor::from_slice(&values[start..end], layout.dims(), &Device::Cpu)?;
        let output = x.matmul(&self.weight.t()?)?;
        let shape = output.shape().clone();
        let values = output.flatten_all()?.to_vec1::<f32>()?;
        Ok((CpuStorage::F32(values), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.weight)?))
    }
}
