//! [`AudioEmbedder`]: Resemblyzer's GE2E speaker encoder, which embeds the voice in a clip.
//!
//! A clip is read (WAV) or taken as samples, mixed to mono and resampled to 16 kHz. A whole clip
//! is embedded as Resemblyzer's `embed_utterance` embeds an utterance: volume raised to
//! -30 dBFS if quieter, partial utterances of 1.6 s every 1/1.3 s, each embedded by the
//! encoder, their mean scaled to unit length. For a collection, a clip is first cut into
//! segments of [`SEGMENT_SECONDS`], each embedded that way, so a long sound track gives one
//! vector per segment with its time offset.
//!
//! NOTE: Resemblyzer's `preprocess_wav` also trims long silences with webrtcvad, a C library.
//! That step is left out, so long pauses stay in the partial utterances and weigh on the vector. Trim them
//! beforehand (for example with `ffmpeg -af silenceremove`) to match Resemblyzer more closely.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::ge2e::{EMBEDDING_DIM, Ge2e, mean_direction};
use super::mel::{HOP, MelSpectrogram, N_MELS, SAMPLE_RATE};
use super::resample::resample;
use super::utterance::{PARTIAL_FRAMES, normalize_volume, padded_len, partial_starts, segments};
use super::wav::read_wav;
use crate::config::AudioSettings;
use crate::embedder::{Embedder, unsupported_input};
use crate::error::{AudioError, EmbedError, PackageError, Result};
use crate::input::{Embedded, Input, Modality};

/// Seconds of audio in one segment of a clip embedded for a collection. The last segment may be
/// up to half as long again.
pub const SEGMENT_SECONDS: u32 = 5;

/// Partial utterances run through the encoder in one batch.
const BATCH_PARTIALS: usize = 64;

/// Segments whose spectrograms are computed and encoded together. A 5 s segment has 5 partial
/// utterances, so 12 segments fill about one batch while a long sound track's spectrogram is
/// never held whole.
const SEGMENTS_PER_GROUP: usize = 12;

/// The GE2E speaker encoder with its mel spectrogram front end.
#[derive(Debug)]
pub struct AudioEmbedder {
    name: String,
    encoder: Ge2e,
    mel: MelSpectrogram,
}

impl AudioEmbedder {
    /// Builds the embedder from the encoder's tensors (`lstm.weight_ih_l0` … `linear.bias`),
    /// checking their shapes. `source` names where they come from in errors.
    pub(crate) fn build(
        name: String,
        tensors: HashMap<String, Tensor>,
        source: &Path,
    ) -> Result<AudioEmbedder, PackageError> {
        let encoder = Ge2e::new(tensors).map_err(|error| PackageError::Model {
            path: source.to_path_buf(),
            source: error,
        })?;
        tracing::debug!(%name, dim = EMBEDDING_DIM, "built audio embedder");
        Ok(AudioEmbedder {
            name,
            encoder,
            mel: MelSpectrogram::new(),
        })
    }

    /// Reads Resemblyzer's `pretrained.pt` at `path` (a legacy `torch.save` checkpoint),
    /// without the store.
    pub fn from_weights(path: &Path) -> Result<AudioEmbedder> {
        Ok(super::weights::AudioWeights::read(path)?.build_embedder()?)
    }

    /// Embeds the WAV file at `path`: one vector per segment of [`SEGMENT_SECONDS`], each with
    /// its offset in seconds.
    pub fn embed_file(&self, path: &Path) -> Result<Vec<Embedded>> {
        let clip = read_wav(path)?;
        self.embed_segments(&clip.samples, clip.sample_rate, &describe(path))
    }

    /// Embeds the whole WAV file at `path` as one utterance, for example a search query.
    pub fn embed_clip(&self, path: &Path) -> Result<Vec<f32>> {
        let clip = read_wav(path)?;
        self.embed_whole(&clip.samples, clip.sample_rate, &describe(path))
    }

    /// Embeds mono `samples` recorded at `sample_rate` Hz, such as a video's sound track decoded
    /// by ffmpeg: one vector per segment of [`SEGMENT_SECONDS`], each with its offset.
    pub fn embed_samples(&self, samples: &[f32], sample_rate: u32) -> Result<Vec<Embedded>> {
        self.embed_segments(samples, sample_rate, SAMPLE_BUFFER)
    }

    /// Embeds mono `samples` recorded at `sample_rate` Hz as one utterance.
    pub fn embed_samples_whole(&self, samples: &[f32], sample_rate: u32) -> Result<Vec<f32>> {
        self.embed_whole(samples, sample_rate, SAMPLE_BUFFER)
    }

    fn embed_whole(&self, samples: &[f32], sample_rate: u32, input: &str) -> Result<Vec<f32>> {
        let audio = prepare(samples, sample_rate, input)?;
        let mut vectors = self.embed_utterances(&[&audio])?;
        Ok(vectors.remove(0))
    }

    fn embed_segments(
        &self,
        samples: &[f32],
        sample_rate: u32,
        input: &str,
    ) -> Result<Vec<Embedded>> {
        let audio = prepare(samples, sample_rate, input)?;
        let segment_len = SEGMENT_SECONDS as usize * SAMPLE_RATE as usize;
        let ranges = segments(audio.len(), segment_len);

        let mut embedded = Vec::with_capacity(ranges.len());
        for group in ranges.chunks(SEGMENTS_PER_GROUP) {
            let parts: Vec<&[f32]> = group.iter().map(|&(a, b)| &audio[a..b]).collect();
            let vectors = self.embed_utterances(&parts)?;
            for (vector, &(start, _)) in vectors.into_iter().zip(group) {
                embedded.push(Embedded {
                    vector,
                    offset_seconds: Some(start as f64 / f64::from(SAMPLE_RATE)),
                });
            }
        }
        Ok(embedded)
    }

    /// Embeds 16 kHz utterances, running the partials of all of them through the encoder in
    /// batches, and returns one unit vector per utterance.
    fn embed_utterances(&self, utterances: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let mut frames = Vec::new();
        let mut counts = Vec::with_capacity(utterances.len());
        for utterance in utterances {
            let partials = self.partial_mels(utterance);
            counts.push(partials.len() / (PARTIAL_FRAMES * N_MELS));
            frames.extend(partials);
        }

        let partials = self.encode(&frames)?;
        let mut vectors = Vec::with_capacity(utterances.len());
        let mut first = 0;
        for count in counts {
            let combined = partials
                .narrow(0, first, count)
                .and_then(|own| mean_direction(&own))
                .and_then(|vector| vector.to_vec1::<f32>())
                .map_err(|e| self.model_error("average partials", e))?;
            vectors.push(combined);
            first += count;
        }
        Ok(vectors)
    }

    /// Normalises the volume, pads, computes the mel spectrogram and returns the frames of each
    /// partial utterance, one after the other.
    fn partial_mels(&self, utterance: &[f32]) -> Vec<f32> {
        let starts = partial_starts(utterance.len());
        let mut audio = utterance.to_vec();
        normalize_volume(&mut audio);
        audio.resize(padded_len(audio.len(), &starts), 0.0);

        let mel = self.mel.compute(&audio);
        let mut frames = Vec::with_capacity(starts.len() * PARTIAL_FRAMES * N_MELS);
        for start in starts {
            frames.extend(&mel[start * N_MELS..(start + PARTIAL_FRAMES) * N_MELS]);
        }
        frames
    }

    /// Runs partial utterances (`PARTIAL_FRAMES × N_MELS` values each) through the encoder.
    fn encode(&self, frames: &[f32]) -> Result<Tensor> {
        let partial_len = PARTIAL_FRAMES * N_MELS;
        let mut outputs = Vec::new();
        for batch in frames.chunks(BATCH_PARTIALS * partial_len) {
            let count = batch.len() / partial_len;
            let output = Tensor::from_slice(batch, (count, PARTIAL_FRAMES, N_MELS), &Device::Cpu)
                .and_then(|mels| self.encoder.forward(&mels))
                .map_err(|e| self.model_error("forward pass", e))?;
            outputs.push(output);
        }
        Tensor::cat(&outputs, 0).map_err(|e| self.model_error("forward pass", e))
    }

    fn model_error(&self, operation: &'static str, source: candle_core::Error) -> EmbedError {
        EmbedError::Model {
            embedder: self.name.clone(),
            operation,
            source,
        }
    }
}

/// The settings stored with an audio embedder: the constants this implementation runs with.
pub(crate) fn expected_settings() -> AudioSettings {
    AudioSettings {
        sample_rate: SAMPLE_RATE,
        mel_channels: N_MELS,
        hop_length: HOP,
        partial_frames: PARTIAL_FRAMES,
        segment_seconds: SEGMENT_SECONDS,
    }
}

/// How errors name samples passed in memory.
const SAMPLE_BUFFER: &str = "the sample buffer";

/// How errors name an audio file.
fn describe(path: &Path) -> String {
    format!("audio `{}`", path.display())
}

/// Checks `samples` and resamples them to 16 kHz. `input` names them in errors.
fn prepare(samples: &[f32], sample_rate: u32, input: &str) -> Result<Vec<f32>, AudioError> {
    if sample_rate == 0 {
        return Err(AudioError::SampleRate {
            input: input.to_string(),
        });
    }
    if samples.is_empty() {
        return Err(AudioError::NoSamples {
            input: input.to_string(),
        });
    }
    if let Some(index) = samples.iter().position(|s| !s.is_finite()) {
        return Err(AudioError::NotFinite {
            input: input.to_string(),
            index,
        });
    }
    Ok(resample(samples, sample_rate, SAMPLE_RATE))
}

/// Computes the mel spectrogram the encoder reads from 16 kHz mono `samples`, as Resemblyzer's
/// `wav_to_mel_spectrogram`: `1 + len / 160` frames of 40 mel powers, frame after frame.
pub fn mel_spectrogram(samples: &[f32]) -> Vec<f32> {
    MelSpectrogram::new().compute(samples)
}

impl Embedder for AudioEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        EMBEDDING_DIM
    }

    fn modality(&self) -> Modality {
        Modality::Audio
    }

    fn embed(&self, input: &Input) -> Result<Vec<Embedded>> {
        let Input::Audio(path) = input else {
            return Err(unsupported_input(self, input));
        };
        self.embed_file(path)
    }
}
