//! Pooling token vectors into one vector per text, and L2 normalisation.
//!
//! Both follow sentence-transformers: the mean divides by the number of real tokens, at least
//! 1e-9 so that an all-padding row gives zeros rather than NaN, and normalisation divides by the
//! L2 norm, at least 1e-12 as in `torch.nn.functional.normalize`.

use candle_core::{D, Result, Tensor};

/// Lower bound on the token count a mean divides by.
const MIN_TOKEN_COUNT: f64 = 1e-9;

/// Lower bound on the norm a vector is divided by.
const MIN_NORM: f64 = 1e-12;

/// Averages `hidden` (`[batch, seq, dim]`) over the positions where `mask` (`[batch, seq]`, any
/// dtype, 1 for a real token and 0 for padding) is 1, giving `[batch, dim]`.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (batch, seq_len, _dim) = hidden.dims3()?;
    let (mask_batch, mask_len) = mask.dims2()?;
    if (mask_batch, mask_len) != (batch, seq_len) {
        candle_core::bail!(
            "mean pool: mask shape [{mask_batch}, {mask_len}] does not match hidden states \
             [{batch}, {seq_len}, _]"
        );
    }

    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.maximum(MIN_TOKEN_COUNT)?;
    summed.broadcast_div(&counts)
}

/// Divides every row of `vectors` (`[batch, dim]`) by its L2 norm.
pub fn l2_normalize(vectors: &Tensor) -> Result<Tensor> {
    let norms = vectors.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    let norms = norms.maximum(MIN_NORM)?;
    vectors.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;

    fn rows(tensor: &Tensor) -> Vec<Vec<f32>> {
        tensor.to_vec2::<f32>().unwrap()
    }

    #[test]
    fn mean_pool_skips_padding() {
        let hidden = Tensor::new(
            &[
                [[1f32, 2.0], [3.0, 4.0], [100.0, 100.0]],
                [[5.0, 6.0], [-7.0, 8.0], [9.0, -10.0]],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1]], &Device::Cpu).unwrap();

        let pooled = rows(&mean_pool(&hidden, &mask).unwrap());

        assert_eq!(pooled[0], vec![2.0, 3.0]);
        assert_eq!(pooled[1], vec![7.0 / 3.0, 4.0 / 3.0]);
    }

    #[test]
    fn mean_pool_of_all_padding_is_zero() {
        let hidden = Tensor::ones((1, 2, 3), DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::zeros((1, 2), DType::U32, &Device::Cpu).unwrap();

        let pooled = rows(&mean_pool(&hidden, &mask).unwrap());

        assert_eq!(pooled[0], vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn mean_pool_rejects_mismatched_mask() {
        let hidden = Tensor::ones((1, 3, 2), DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, 2), DType::U32, &Device::Cpu).unwrap();

        let error = mean_pool(&hidden, &mask).unwrap_err().to_string();

        assert!(error.contains("mask shape [1, 2]"), "{error}");
    }

    #[test]
    fn l2_normalize_gives_unit_rows() {
        let vectors = Tensor::new(&[[3f32, 4.0], [0.0, -2.0]], &Device::Cpu).unwrap();

        let normalized = rows(&l2_normalize(&vectors).unwrap());

        assert_eq!(normalized[0], vec![0.6, 0.8]);
        assert_eq!(normalized[1], vec![0.0, -1.0]);
    }

    #[test]
    fn l2_normalize_keeps_zero_vector() {
        let vectors = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();

        let normalized = rows(&l2_normalize(&vectors).unwrap());

        assert_eq!(normalized[0], vec![0.0; 4]);
    }
}
