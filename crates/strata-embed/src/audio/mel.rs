//! The mel spectrogram Resemblyzer feeds its encoder, as librosa 0.9 computes it.
//!
//! This is `librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40)`
//! with the defaults of librosa 0.9.1, the lowest version Resemblyzer 0.1.4 accepts:
//!
//! - Frames are centred. The signal is padded with `N_FFT / 2` zeros on each side
//!   (`pad_mode="constant"`), so a clip of `n` samples gives `1 + n / HOP` frames.
//! - Each frame is weighted by a periodic Hann window of `N_FFT` samples.
//! - The power spectrum (`power=2`) goes through 40 triangular filters on the Slaney mel scale
//!   from 0 Hz to 8 kHz, each scaled to unit area (`htk=False`, `norm="slaney"`).
//!
//! The result is the power itself, not its log. Spectra are computed in f64 and returned as f32.

use std::sync::Arc;

use realfft::RealFftPlanner;

/// Samples per second the encoder expects.
pub(crate) const SAMPLE_RATE: u32 = 16_000;

/// FFT and window length: 25 ms.
pub(crate) const N_FFT: usize = 400;

/// Samples between frames: 10 ms.
pub(crate) const HOP: usize = 160;

/// Mel channels per frame.
pub(crate) const N_MELS: usize = 40;

/// Frequency bins of a one-sided spectrum.
const N_BINS: usize = N_FFT / 2 + 1;

/// Computes mel spectrograms with a fixed filterbank, window and FFT plan.
pub(crate) struct MelSpectrogram {
    filters: Vec<[f64; N_BINS]>,
    window: Vec<f64>,
    fft: Arc<dyn realfft::RealToComplex<f64>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpectrogram")
            .field("n_fft", &N_FFT)
            .field("hop", &HOP)
            .field("n_mels", &N_MELS)
            .finish()
    }
}

impl MelSpectrogram {
    /// Builds the filterbank, the window and the FFT plan.
    pub(crate) fn new() -> MelSpectrogram {
        MelSpectrogram {
            filters: slaney_filterbank(),
            window: periodic_hann(N_FFT),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Returns the number of frames of a clip of `samples` samples.
    pub(crate) fn frame_count(samples: usize) -> usize {
        1 + samples / HOP
    }

    /// Computes the spectrogram of 16 kHz `samples`: `frame_count` frames of `N_MELS` values,
    /// frame after frame.
    pub(crate) fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let padded = pad_centred(samples);
        let frames = Self::frame_count(samples.len());
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0.0f64; N_BINS];
        let mut out = Vec::with_capacity(frames * N_MELS);

        for frame in 0..frames {
            let start = frame * HOP;
            let chunk = &padded[start..start + N_FFT];
            for ((slot, &sample), &weight) in input.iter_mut().zip(chunk).zip(&self.window) {
                *slot = sample * weight;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan");
            for (bin, value) in power.iter_mut().zip(&spectrum) {
                *bin = value.norm_sqr();
            }
            out.extend(self.filters.iter().map(|filter| dot(filter, &power) as f32));
        }
        out
    }
}

/// Copies `samples` into f64 with `N_FFT / 2` zeros on each side.
fn pad_centred(samples: &[f32]) -> Vec<f64> {
    let pad = N_FFT / 2;
    let mut padded = vec![0.0; samples.len() + 2 * pad];
    for (slot, &sample) in padded[pad..].iter_mut().zip(samples) {
        *slot = f64::from(sample);
    }
    padded
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Hann window of `len` samples that repeats with period `len`, as scipy's
/// `get_window("hann", len, fftbins=True)`.
fn periodic_hann(len: usize) -> Vec<f64> {
    let step = 2.0 * std::f64::consts::PI / len as f64;
    (0..len)
        .map(|n| 0.5 - 0.5 * (step * n as f64).cos())
        .collect()
}

/// Hz per mel below 1 kHz on the Slaney scale.
const LINEAR_HZ_PER_MEL: f64 = 200.0 / 3.0;

/// Where the Slaney scale turns logarithmic.
const LOG_START_HZ: f64 = 1000.0;

/// The mel value at `LOG_START_HZ`.
const LOG_START_MEL: f64 = LOG_START_HZ / LINEAR_HZ_PER_MEL;

/// Mels per natural-log step above `LOG_START_HZ`: 27 mels per factor 6.4.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mels on the Slaney scale (librosa's `hz_to_mel` with `htk=False`).
fn hz_to_mel(hz: f64) -> f64 {
    if hz < LOG_START_HZ {
        return hz / LINEAR_HZ_PER_MEL;
    }
    LOG_START_MEL + (hz / LOG_START_HZ).ln() / log_step()
}

/// Mels to Hz on the Slaney scale.
fn mel_to_hz(mel: f64) -> f64 {
    if mel < LOG_START_MEL {
        return mel * LINEAR_HZ_PER_MEL;
    }
    LOG_START_HZ * (log_step() * (mel - LOG_START_MEL)).exp()
}

/// The triangular filters of `librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)`: edges
/// evenly spaced in mels from 0 Hz to the Nyquist frequency, each filter scaled by
/// 2 / (its width in Hz).
fn slaney_filterbank() -> Vec<[f64; N_BINS]> {
    let nyquist = f64::from(SAMPLE_RATE) / 2.0;
    let top = hz_to_mel(nyquist);
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz = nyquist / (N_BINS - 1) as f64;

    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let scale = 2.0 / (right - left);
            let mut filter = [0.0; N_BINS];
            for (bin, weight) in filter.iter_mut().enumerate() {
                let hz = bin as f64 * bin_hz;
                let rising = (hz - left) / (centre - left);
                let falling = (right - hz) / (right - centre);
                *weight = rising.min(falling).max(0.0) * scale;
            }
            filter
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_is_linear_below_1_khz_and_logarithmic_above() {
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        assert!((hz_to_mel(6400.0) - 42.0).abs() < 1e-12);
        assert!((mel_to_hz(hz_to_mel(3210.0)) - 3210.0).abs() < 1e-9);
    }

    #[test]
    fn frame_count_follows_centred_framing() {
        assert_eq!(MelSpectrogram::frame_count(0), 1);
        assert_eq!(MelSpectrogram::frame_count(159), 1);
        assert_eq!(MelSpectrogram::frame_count(160), 2);
        assert_eq!(MelSpectrogram::frame_count(40_000), 251);
    }

    #[test]
    fn a_tone_lands_in_the_filter_around_its_frequency() {
        let step = 2.0 * std::f64::consts::PI * 1000.0 / f64::from(SAMPLE_RATE);
        let samples: Vec<f32> = (0..1600).map(|n| (step * n as f64).sin() as f32).collect();

        let mel = MelSpectrogram::new().compute(&samples);

        let frame = &mel[5 * N_MELS..6 * N_MELS];
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        let centre = |m: usize| mel_to_hz(hz_to_mel(8000.0) * (m + 1) as f64 / 41.0);
        assert!(
            (centre(loudest) - 1000.0).abs() < 120.0,
            "{loudest}: {}",
            centre(loudest)
        );
    }
}
