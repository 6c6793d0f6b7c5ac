//! EfficientNet-Lite0 on candle, built from the tensors of the PyTorch checkpoint
//! `efficientnet-lite0-57934424.pth` (names as in lukemelas' `EfficientNet-PyTorch`).
//!
//! The network is a 3x3 stride-2 stem convolution to 32 channels, 16 MBConv blocks, a 1x1 head
//! convolution to 1280 channels and, when the checkpoint has one, a 1000-class ImageNet
//! classifier. The Lite variant has ReLU6 activations and no squeeze-and-excitation. A block
//! expands with a 1x1 convolution, except the first, whose expansion ratio is 1. It then
//! filters with a depthwise convolution and projects with a 1x1 convolution without
//! activation. It adds its input when its stride is 1 and its width does not change. Widths
//! and kernel sizes are read from the weights' shapes; the strides, which shapes do not show,
//! are Lite0's.
//!
//! Every batch norm runs in eval mode, so it is folded into the convolution before it:
//! `scale = gamma / sqrt(running_var + eps)`, weights times `scale`, bias
//! `beta - running_mean * scale`.

use std::collections::HashMap;

use candle_core::{D, DType, Result, Tensor};

use crate::depthwise::{DepthwiseKernel, same_padding};

/// Stride of each of EfficientNet-Lite0's 16 blocks: stages of 1, 2, 2, 3, 3, 4 and 1 blocks,
/// whose first block has stride 1, 2, 2, 2, 1, 2 and 1.
const LITE0_BLOCK_STRIDES: [usize; 16] = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1];

/// Stride of the stem convolution.
const STEM_STRIDE: usize = 2;

/// The checkpoint's tensors by name, with the batch-norm epsilon used to fold them.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    batch_norm_eps: f64,
}

impl Weights<'_> {
    /// Returns the f32 tensor `name` after checking its rank.
    fn get(&self, name: &str, rank: usize) -> Result<Tensor> {
        let Some(tensor) = self.tensors.get(name) else {
            candle_core::bail!("tensor `{name}` is missing from the EfficientNet-Lite0 weights");
        };
        if tensor.rank() != rank {
            candle_core::bail!(
                "tensor `{name}` has shape {:?}, expected {rank} dimensions",
                tensor.dims()
            );
        }
        tensor.to_dtype(DType::F32)
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Folds the batch norm `bn` into the convolution weight `conv` of shape (out, in, k, k)
    /// and returns the folded weight and the bias, of shape (out).
    fn conv_bn(&self, conv: &str, bn: &str) -> Result<(Tensor, Tensor)> {
        let weight = self.get(&format!("{conv}.weight"), 4)?;
        let out_channels = weight.dim(0)?;
        let param = |name: &str| -> Result<Tensor> {
            let full = format!("{bn}.{name}");
            let tensor = self.get(&full, 1)?;
            if tensor.dim(0)? != out_channels {
                candle_core::bail!(
                    "tensor `{full}` has {} values, but `{conv}.weight` has {out_channels} \
                     output channels",
                    tensor.dim(0)?
                );
            }
            Ok(tensor)
        };

        let gamma = param("weight")?;
        let beta = param("bias")?;
        let mean = param("running_mean")?;
        let variance = param("running_var")?;
        let scale = gamma.div(&(variance + self.batch_norm_eps)?.sqrt()?)?;
        let bias = beta.sub(&mean.mul(&scale)?)?;
        let weight = weight.broadcast_mul(&scale.reshape((out_channels, 1, 1, 1))?)?;
        Ok((weight, bias))
    }
}

/// What follows a convolution's bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activation {
    /// Nothing, for a block's projection.
    Linear,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

/// Adds one bias per channel to `output` of shape (batch, channels, ...) and applies
/// `activation`, in one pass over the values. candle's broadcast add and its clamp, which
/// compares against broadcast scalar tensors, took several times longer than the matrix
/// products they follow.
fn bias_activation(output: &Tensor, bias: &[f32], activation: Activation) -> Result<Tensor> {
    let dims = output.dims().to_vec();
    let mut values = output.flatten_all()?.to_vec1::<f32>()?;
    let plane = dims[2..].iter().product::<usize>();
    for (index, chunk) in values.chunks_mut(plane).enumerate() {
        let bias = bias[index % bias.len()];
        for value in chunk.iter_mut() {
            *value += bias;
            if activation == Activation::Relu6 {
                *value = value.clamp(0.0, 6.0);
            }
        }
    }
    Tensor::from_vec(values, dims, output.device())
}

/// A 1x1 convolution with its batch norm folded in, run as a matrix product.
#[derive(Debug)]
struct Pointwise {
    /// Shape (out, in).
    weight: Tensor,
    /// One value per output channel.
    bias: Vec<f32>,
}

impl Pointwise {
    fn new(weights: &Weights<'_>, conv: &str, bn: &str) -> Result<Pointwise> {
        let (weight, bias) = weights.conv_bn(conv, bn)?;
        let (out_channels, in_channels, kernel_h, kernel_w) = weight.dims4()?;
        if (kernel_h, kernel_w) != (1, 1) {
            candle_core::bail!("`{conv}.weight` has a {kernel_h}x{kernel_w} kernel, expected 1x1");
        }
        Ok(Pointwise {
            weight: weight.reshape((out_channels, in_channels))?,
            bias: bias.to_vec1::<f32>()?,
        })
    }

    fn in_channels(&self) -> Result<usize> {
        self.weight.dim(1)
    }

    fn out_channels(&self) -> Result<usize> {
        self.weight.dim(0)
    }

    /// Maps (batch, in, height, width) to (batch, out, height, width).
    fn forward(&self, input: &Tensor, activation: Activation) -> Result<Tensor> {
        let (batch, channels, height, width) = input.dims4()?;
        let pixels = input.reshape((batch, channels, height * width))?;
        let images = (0..batch)
            .map(|index| self.weight.matmul(&pixels.get(index)?))
            .collect::<Result<Vec<_>>>()?;
        let output = Tensor::stack(&images, 0)?;
        let output = bias_activation(&output, &self.bias, activation)?;
        output.reshape((batch, self.out_channels()?, height, width))
    }
}

/// The stem: a 3x3 stride-2 convolution with "SAME" padding, its batch norm and ReLU6.
#[derive(Debug)]
struct Stem {
    weight: Tensor,
    /// One value per output channel.
    bias: Vec<f32>,
}

impl Stem {
    fn new(weights: &Weights<'_>) -> Result<Stem> {
        let (weight, bias) = weights.conv_bn("_conv_stem", "_bn0")?;
        let in_channels = weight.dim(1)?;
        if in_channels != 3 {
            candle_core::bail!("`_conv_stem.weight` reads {in_channels} channels, expected 3");
        }
        Ok(Stem {
            weight,
            bias: bias.to_vec1::<f32>()?,
        })
    }

    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let (_, _, height, width) = input.dims4()?;
        let kernel = self.weight.dim(2)?;
        let rows = same_padding(height, kernel, STEM_STRIDE);
        let columns = same_padding(width, kernel, STEM_STRIDE);
        let padded = input
            .pad_with_zeros(2, rows.before, rows.after)?
            .pad_with_zeros(3, columns.before, columns.after)?;
        let output = padded.conv2d(&self.weight, 0, STEM_STRIDE, 1, 1)?;
        bias_activation(&output, &self.bias, Activation::Relu6)
    }
}

/// One MBConv block: expand, depthwise filter, project, and the skip connection.
#[derive(Debug)]
struct MbConv {
    expand: Option<Pointwise>,
    depthwise: DepthwiseKernel,
    project: Pointwise,
    skip: bool,
}

impl MbConv {
    fn new(weights: &Weights<'_>, index: usize, stride: usize) -> Result<MbConv> {
        let prefix = format!("_blocks.{index}");
        let expand = if weights.contains(&format!("{prefix}._expand_conv.weight")) {
            let conv = format!("{prefix}._expand_conv");
            Some(Pointwise::new(weights, &conv, &format!("{prefix}._bn0"))?)
        } else {
            None
        };
        let depthwise = depthwise_kernel(weights, &prefix, stride)?;
        let project = Pointwise::new(
            weights,
            &format!("{prefix}._project_conv"),
            &format!("{prefix}._bn2"),
        )?;

        let in_channels = match &expand {
            Some(expand) => expand.in_channels()?,
            None => depthwise.channels(),
        };
        let expanded = match &expand {
            Some(expand) => expand.out_channels()?,
            None => in_channels,
        };
        if depthwise.channels() != expanded || project.in_channels()? != expanded {
            candle_core::bail!(
                "block {index}: the expansion gives {expanded} channels, the depthwise \
                 convolution has {} and the projection reads {}",
                depthwise.channels(),
                project.in_channels()?
            );
        }
        let skip = stride == 1 && project.out_channels()? == in_channels;
        Ok(MbConv {
            expand,
            depthwise,
            project,
            skip,
        })
    }

    fn in_channels(&self) -> Result<usize> {
        match &self.expand {
            Some(expand) => expand.in_channels(),
            None => Ok(self.depthwise.channels()),
        }
    }

    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let expanded = match &self.expand {
            Some(expand) => expand.forward(input, Activation::Relu6)?,
            None => input.clone(),
        };
        let filtered = self.depthwise.forward_relu6(&expanded)?;
        let projected = self.project.forward(&filtered, Activation::Linear)?;
        if self.skip {
            projected + input
        } else {
            Ok(projected)
        }
    }
}

/// Folds block `prefix`'s depthwise convolution and batch norm into a [`DepthwiseKernel`].
fn depthwise_kernel(weights: &Weights<'_>, prefix: &str, stride: usize) -> Result<DepthwiseKernel> {
    let conv = format!("{prefix}._depthwise_conv");
    let (weight, bias) = weights.conv_bn(&conv, &format!("{prefix}._bn1"))?;
    let (_, per_group, kernel_h, kernel_w) = weight.dims4()?;
    if per_group != 1 || kernel_h != kernel_w {
        candle_core::bail!(
            "`{conv}.weight` has shape {:?}, expected (channels, 1, k, k)",
            weight.dims()
        );
    }
    Ok(DepthwiseKernel {
        weights: weight.flatten_all()?.to_vec1::<f32>()?,
        bias: bias.to_vec1::<f32>()?,
        kernel: kernel_h,
        stride,
    })
}

/// The ImageNet classifier: a linear layer on the pooled features.
#[derive(Debug)]
struct Classifier {
    /// Shape (features, classes), transposed once at build time.
    weight: Tensor,
    bias: Tensor,
}

/// EfficientNet-Lite0 with its batch norms folded, ready for inference.
#[derive(Debug)]
pub(crate) struct EfficientNet {
    stem: Stem,
    blocks: Vec<MbConv>,
    head: Pointwise,
    classifier: Option<Classifier>,
}

impl EfficientNet {
    /// Builds the network from a checkpoint's tensors, checking every name and shape.
    pub(crate) fn new(tensors: &HashMap<String, Tensor>, batch_norm_eps: f64) -> Result<Self> {
        let weights = Weights {
            tensors,
            batch_norm_eps,
        };
        let block_count = (0usize..)
            .take_while(|index| weights.contains(&format!("_blocks.{index}._project_conv.weight")))
            .count();
        if block_count != LITE0_BLOCK_STRIDES.len() {
            candle_core::bail!(
                "the weights have {block_count} blocks, expected the {} of EfficientNet-Lite0",
                LITE0_BLOCK_STRIDES.len()
            );
        }

        let stem = Stem::new(&weights)?;
        let blocks = LITE0_BLOCK_STRIDES
            .iter()
            .enumerate()
            .map(|(index, stride)| MbConv::new(&weights, index, *stride))
            .collect::<Result<Vec<_>>>()?;
        let head = Pointwise::new(&weights, "_conv_head", "_bn1")?;
        let classifier = classifier(&weights, head.out_channels()?)?;

        let network = EfficientNet {
            stem,
            blocks,
            head,
            classifier,
        };
        network.check_widths()?;
        Ok(network)
    }

    /// Checks that each layer reads as many channels as the layer before it writes.
    fn check_widths(&self) -> Result<()> {
        let mut channels = self.stem.weight.dim(0)?;
        for (index, block) in self.blocks.iter().enumerate() {
            if block.in_channels()? != channels {
                candle_core::bail!(
                    "block {index} reads {} channels, but the layer before writes {channels}",
                    block.in_channels()?
                );
            }
            channels = block.project.out_channels()?;
        }
        if self.head.in_channels()? != channels {
            candle_core::bail!(
                "`_conv_head.weight` reads {} channels, but the last block writes {channels}",
                self.head.in_channels()?
            );
        }
        Ok(())
    }

    /// Returns the width of the pooled features, 1280 for Lite0.
    pub(crate) fn feature_dim(&self) -> usize {
        self.head.weight.dims()[0]
    }

    /// Returns whether the checkpoint had the ImageNet classifier.
    pub(crate) fn has_classifier(&self) -> bool {
        self.classifier.is_some()
    }

    /// Maps normalised images (batch, 3, height, width) to the head's features averaged over
    /// the spatial grid, (batch, 1280).
    pub(crate) fn pooled_features(&self, images: &Tensor) -> Result<Tensor> {
        let mut x = self.stem.forward(images)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let head = self.head.forward(&x, Activation::Relu6)?;
        head.flatten_from(2)?.mean(D::Minus1)
    }

    /// Maps pooled features (batch, 1280) to ImageNet logits (batch, 1000).
    pub(crate) fn classify(&self, pooled: &Tensor) -> Result<Tensor> {
        let Some(classifier) = &self.classifier else {
            candle_core::bail!("the checkpoint has no `_fc` classifier");
        };
        pooled
            .matmul(&classifier.weight)?
            .broadcast_add(&classifier.bias)
    }
}

/// Reads the optional `_fc` layer, which must read `features` inputs.
fn classifier(weights: &Weights<'_>, features: usize) -> Result<Option<Classifier>> {
    if !weights.contains("_fc.weight") {
        return Ok(None);
    }
    let weight = weights.get("_fc.weight", 2)?;
    let bias = weights.get("_fc.bias", 1)?;
    let (classes, inputs) = weight.dims2()?;
    if inputs != features || bias.dim(0)? != classes {
        candle_core::bail!(
            "`_fc.weight` has shape {:?} and `_fc.bias` {:?}, expected ({classes}, {features}) \
             and ({classes})",
            weight.dims(),
            bias.dims()
        );
    }
    Ok(Some(Classifier {
        weight: weight.t()?.contiguous()?,
        bias,
    }))
}
