//! The config document of a stored embedder version, the blob its manifest's `config` names.
//!
//! It contains no timestamp, so importing the same files twice gives the same config digest,
//! the same manifest digest, and no new blob.

use serde::{Deserialize, Serialize};

use crate::input::Modality;

/// How token vectors become one vector per text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over the real tokens (attention mask 1), `[CLS]` and `[SEP]` included.
    Mean,
}

/// The sentence-transformers settings a text embedder runs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSettings {
    /// Word pieces a text is truncated to, `[CLS]` and `[SEP]` included.
    pub max_seq_length: usize,
    /// How token vectors are pooled.
    pub pooling: Pooling,
    /// Whether pooled vectors are scaled to unit L2 norm.
    pub normalize: bool,
}

/// The settings an audio embedder runs with, fixed by the GE2E encoder and checked on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioSettings {
    /// Samples per second the encoder reads. Other rates are resampled to it.
    pub sample_rate: u32,
    /// Mel channels per spectrogram frame.
    pub mel_channels: usize,
    /// Samples between spectrogram frames.
    pub hop_length: usize,
    /// Spectrogram frames in one partial utterance.
    pub partial_frames: usize,
    /// Seconds of audio in one segment of a clip embedded for a collection.
    pub segment_seconds: u32,
}

/// The settings an image embedder runs with.
///
/// An image is cut to its centred square, resized to `input_size` pixels a side, and each
/// 0-255 channel value `v` becomes `(v - pixel_mean) / pixel_std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSettings {
    /// Side of the square input the model reads, in pixels.
    pub input_size: u32,
    /// Per-channel value subtracted from red, green and blue.
    pub pixel_mean: [f32; 3],
    /// Per-channel divisor of red, green and blue after the mean is subtracted.
    pub pixel_std: [f32; 3],
    /// Epsilon added to the variance of every batch norm.
    pub batch_norm_eps: f64,
    /// Whether pooled vectors are scaled to unit L2 norm.
    pub normalize: bool,
}

/// Where a stored embedder came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderSource {
    /// The kind of package, `sentence-transformers`, `resemblyzer` or `torch-legacy`.
    pub kind: String,
    /// File name of the weights, for example `model.safetensors` or `pretrained.pt`.
    pub weights_file: String,
    /// sha256 of the weights file, lowercase hex.
    pub weights_sha256: String,
}

/// The config document of an embedder version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedderConfig {
    /// The embedder's name, for example `all-MiniLM-L6-v2`.
    pub name: String,
    /// The modality it embeds.
    pub modality: Modality,
    /// The model architecture, `bert`, `ge2e` or `efficientnet-lite0`.
    pub architecture: String,
    /// Length of every vector.
    pub dim: usize,
    /// Tokenization, pooling and normalisation, for a text embedder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSettings>,
    /// Sample rate, framing and segmenting, for an audio embedder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioSettings>,
    /// Input size and pixel normalisation, for an image embedder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSettings>,
    /// The package it was imported from.
    pub source: EmbedderSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text embedder's config as imports wrote it before audio embedders existed.
    const TEXT_CONFIG: &str = r#"{
        "name": "all-MiniLM-L6-v2", "modality": "text", "architecture": "bert", "dim": 384,
        "text": {"max_seq_length": 256, "pooling": "mean", "normalize": true},
        "source": {"kind": "sentence-transformers", "weights_file": "model.safetensors",
                   "weights_sha256": "53aa"}
    }"#;

    #[test]
    fn text_config_without_audio_parses_and_writes_back_unchanged() {
        let config: EmbedderConfig = serde_json::from_str(TEXT_CONFIG).unwrap();

        let written: serde_json::Value = serde_json::to_value(&config).unwrap();
        let original: serde_json::Value = serde_json::from_str(TEXT_CONFIG).unwrap();

        assert_eq!(config.audio, None);
        assert_eq!(config.text.map(|text| text.max_seq_length), Some(256));
        assert_eq!(written, original);
    }

    #[test]
    fn audio_config_has_no_text_field() {
        let config = EmbedderConfig {
            name: "resemblyzer-ge2e".to_string(),
            modality: Modality::Audio,
            architecture: "ge2e".to_string(),
            dim: 256,
            text: None,
            image: None,
            audio: Some(AudioSettings {
                sample_rate: 16000,
                mel_channels: 40,
                hop_length: 160,
                partial_frames: 160,
                segment_seconds: 5,
            }),
            source: EmbedderSource {
                kind: "resemblyzer".to_string(),
                weights_file: "pretrained.pt".to_string(),
                weights_sha256: "3937".to_string(),
            },
        };

        let json = serde_json::to_value(&config).unwrap();

        assert!(json.get("text").is_none(), "{json}");
        assert_eq!(json["audio"]["sample_rate"], 16000);
        assert_eq!(
            serde_json::from_value::<EmbedderConfig>(json).unwrap(),
            config
        );
    }

    /// A text embedder's config as stored before image settings existed.
    const STORED_TEXT_CONFIG: &str = r#"{
  "name": "all-MiniLM-L6-v2",
  "modality": "text",
  "architecture": "bert",
  "dim": 384,
  "text": {
    "max_seq_length": 256,
    "pooling": "mean",
    "normalize": true
  },
  "source": {
    "kind": "sentence-transformers",
    "weights_file": "model.safetensors",
    "weights_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  }
}"#;

    #[test]
    fn stored_text_config_round_trips_byte_for_byte() {
        let config: EmbedderConfig = serde_json::from_str(STORED_TEXT_CONFIG).unwrap();

        let written = serde_json::to_string_pretty(&config).unwrap();

        assert_eq!(config.image, None);
        assert_eq!(config.text.as_ref().map(|t| t.max_seq_length), Some(256));
        assert_eq!(written, STORED_TEXT_CONFIG);
    }

    #[test]
    fn image_config_has_no_text_field() {
        let config = EmbedderConfig {
            name: "efficientnet-lite0".to_string(),
            modality: Modality::Image,
            architecture: "efficientnet-lite0".to_string(),
            dim: 1280,
            text: None,
            audio: None,
            image: Some(ImageSettings {
                input_size: 224,
                pixel_mean: [127.0; 3],
                pixel_std: [128.0; 3],
                batch_norm_eps: 1e-3,
                normalize: true,
            }),
            source: EmbedderSource {
                kind: "torch-legacy".to_string(),
                weights_file: "efficientnet-lite0-57934424.pth".to_string(),
                weights_sha256: "5793".to_string(),
            },
        };

        let written = serde_json::to_string(&config).unwrap();
        let read: EmbedderConfig = serde_json::from_str(&written).unwrap();

        assert!(!written.contains("\"text\""), "{written}");
        assert!(written.contains("\"input_size\":224"), "{written}");
        assert_eq!(read, config);
    }
}
