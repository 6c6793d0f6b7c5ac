//! [`ImageEmbedder`]: EfficientNet-Lite0 that embeds an image as its globally average-pooled
//! 1280-wide head features, scaled to unit length for cosine search.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::config::ImageSettings;
use crate::efficientnet::EfficientNet;
use crate::embedder::{Embedder, unsupported_input};
use crate::error::{EmbedError, PackageError, Result};
use crate::input::{Embedded, Input, Modality};
use crate::pixels;
use crate::pooling::l2_normalize;
use crate::torch_legacy::read_torch_legacy;

/// The name of the EfficientNet-Lite0 embedder.
pub const EFFICIENTNET_LITE0_NAME: &str = "efficientnet-lite0";

/// The architecture name written in the configs of EfficientNet-Lite0 embedders.
pub(crate) const EFFICIENTNET_LITE0_ARCHITECTURE: &str = "efficientnet-lite0";

/// Returns the settings EfficientNet-Lite0 runs with: 224-pixel inputs, values
/// `(v - 127) / 128` as in TensorFlow's EfficientNet-Lite preprocessing, batch-norm epsilon
/// 1e-3 as in its training, and unit-length vectors.
pub fn efficientnet_lite0_settings() -> ImageSettings {
    ImageSettings {
        input_size: 224,
        pixel_mean: [127.0; 3],
        pixel_std: [128.0; 3],
        batch_norm_eps: 1e-3,
        normalize: true,
    }
}

/// An EfficientNet-Lite0 image embedder.
#[derive(Debug)]
pub struct ImageEmbedder {
    name: String,
    network: EfficientNet,
    settings: ImageSettings,
}

impl ImageEmbedder {
    /// Reads the legacy PyTorch checkpoint `efficientnet-lite0-57934424.pth` at `path`, without
    /// the store, and builds the embedder with [`efficientnet_lite0_settings`].
    pub fn from_checkpoint(path: &Path) -> Result<ImageEmbedder> {
        let tensors: HashMap<String, Tensor> = read_torch_legacy(path)
            .map_err(PackageError::from)?
            .into_iter()
            .collect();
        let embedder = ImageEmbedder::build(
            EFFICIENTNET_LITE0_NAME.to_string(),
            efficientnet_lite0_settings(),
            &tensors,
            path,
        )?;
        Ok(embedder)
    }

    /// Builds the embedder from a checkpoint's tensors; `source` names them in errors.
    pub(crate) fn build(
        name: String,
        settings: ImageSettings,
        tensors: &HashMap<String, Tensor>,
        source: &Path,
    ) -> Result<ImageEmbedder, PackageError> {
        let network =
            EfficientNet::new(tensors, settings.batch_norm_eps).map_err(|source_error| {
                PackageError::Model {
                    path: source.to_path_buf(),
                    source: source_error,
                }
            })?;
        if settings.input_size == 0 {
            return Err(PackageError::Unsupported {
                path: source.to_path_buf(),
                reason: "input_size is 0, expected the side of the model's input".to_string(),
            });
        }
        tracing::debug!(
            %name,
            dim = network.feature_dim(),
            input_size = settings.input_size,
            "built image embedder"
        );
        Ok(ImageEmbedder {
            name,
            network,
            settings,
        })
    }

    /// Returns the input size and normalisation settings.
    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }

    /// Embeds the PNG or JPEG file at `path`.
    ///
    /// A missing, unreadable, truncated or non-image file is an
    /// [`EmbedError::ImageInput`] naming the path.
    pub fn embed_file(&self, path: &Path) -> Result<Vec<f32>> {
        let image = pixels::decode_file(path)?;
        self.embed_image(&image)
    }

    /// Embeds raw RGB8 pixels: `width * height` pixels of three bytes, row by row from the top
    /// left, as `ffmpeg -pix_fmt rgb24` writes video frames.
    pub fn embed_rgb8(&self, width: u32, height: u32, pixels: &[u8]) -> Result<Vec<f32>> {
        let image = pixels::rgb8_image(width, height, pixels)?;
        self.embed_image(&image)
    }

    /// Returns the 1000 ImageNet logits of the PNG or JPEG file at `path`, to check the
    /// weights and the preprocessing against known photos.
    pub fn classify_file(&self, path: &Path) -> Result<Vec<f32>> {
        let image = pixels::decode_file(path)?;
        self.classify_image(&image)
    }

    /// Returns the 1000 ImageNet logits of raw RGB8 pixels; see [`embed_rgb8`](Self::embed_rgb8).
    pub fn classify_rgb8(&self, width: u32, height: u32, pixels: &[u8]) -> Result<Vec<f32>> {
        let image = pixels::rgb8_image(width, height, pixels)?;
        self.classify_image(&image)
    }

    /// Returns whether the checkpoint had the ImageNet classifier that
    /// [`classify_file`](Self::classify_file) and [`classify_rgb8`](Self::classify_rgb8) need.
    pub fn has_classifier(&self) -> bool {
        self.network.has_classifier()
    }

    fn classify_image(&self, image: &image::RgbImage) -> Result<Vec<f32>> {
        let pooled = self.pooled(image)?;
        let logits = self
            .network
            .classify(&pooled)
            .map_err(|e| self.model_error("classification", e))?;
        self.first_row(&logits)
    }

    fn embed_image(&self, image: &image::RgbImage) -> Result<Vec<f32>> {
        let mut pooled = self.pooled(image)?;
        if self.settings.normalize {
            pooled = l2_normalize(&pooled).map_err(|e| self.model_error("normalisation", e))?;
        }
        self.first_row(&pooled)
    }

    /// Squares, normalises and runs the image through the network to the pooled features.
    fn pooled(&self, image: &image::RgbImage) -> Result<Tensor> {
        let square = pixels::square(image, self.settings.input_size);
        let input = pixels::to_tensor(&square, &self.settings)
            .map_err(|e| self.model_error("build the input tensor", e))?;
        self.network
            .pooled_features(&input)
            .map_err(|e| self.model_error("forward pass", e))
    }

    fn first_row(&self, batch: &Tensor) -> Result<Vec<f32>> {
        batch
            .get(0)
            .and_then(|row| row.to_vec1::<f32>())
            .map_err(|e| self.model_error("copy vectors out", e))
    }

    fn model_error(&self, operation: &'static str, source: candle_core::Error) -> EmbedError {
        EmbedError::Model {
            embedder: self.name.clone(),
            operation,
            source,
        }
    }
}

impl Embedder for ImageEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.network.feature_dim()
    }

    fn modality(&self) -> Modality {
        Modality::Image
    }

    fn embed(&self, input: &Input) -> Result<Vec<Embedded>> {
        let Input::Image(path) = input else {
            return Err(unsupported_input(self, input));
        };
        let vector = self.embed_file(path)?;
        Ok(vec![Embedded::whole(vector)])
    }
}
