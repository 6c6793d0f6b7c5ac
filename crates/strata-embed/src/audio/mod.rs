//! The audio embedder: Resemblyzer's GE2E speaker encoder, from WAV reading and resampling
//! through the mel spectrogram to the LSTM network on candle.

mod embedder;
mod fetch;
mod ge2e;
mod mel;
mod resample;
mod utterance;
mod wav;
mod weights;

pub(crate) use embedder::expected_settings;
pub use embedder::{AudioEmbedder, SEGMENT_SECONDS, mel_spectrogram};
pub use fetch::{
    RESEMBLYZER_PACKAGE, RESEMBLYZER_VERSION, RESEMBLYZER_WEIGHTS_SHA256, fetch_resemblyzer,
};
pub(crate) use weights::AudioWeights;
