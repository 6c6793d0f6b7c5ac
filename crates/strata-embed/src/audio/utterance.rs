//! How Resemblyzer prepares an utterance (volume normalisation and the split into partial
//! utterances of `PARTIAL_FRAMES` mel frames), and how strata splits a long clip into segments.

use super::mel::{HOP, SAMPLE_RATE};

/// Mel frames in a partial utterance: 1.6 s.
pub(crate) const PARTIAL_FRAMES: usize = 160;

/// Partial utterances per second of audio (`rate` of `embed_utterance`).
const PARTIALS_PER_SECOND: f64 = 1.3;

/// Share of a last partial that must hold audio for it to be kept (`min_coverage`).
const MIN_COVERAGE: f64 = 0.75;

/// Loudness utterances are raised to, in dB relative to full scale.
const TARGET_DBFS: f64 = -30.0;

/// Raises `samples` to `TARGET_DBFS` RMS when they are quieter, as `normalize_volume(wav, -30,
/// increase_only=True)` does. Louder or silent audio is left alone.
pub(crate) fn normalize_volume(samples: &mut [f32]) {
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len().max(1) as f64).sqrt();
    if rms == 0.0 {
        return;
    }
    let change_db = TARGET_DBFS - 20.0 * rms.log10();
    if change_db <= 0.0 {
        return;
    }
    let gain = 10f64.powf(change_db / 20.0);
    for sample in samples {
        *sample = (f64::from(*sample) * gain) as f32;
    }
}

/// First mel frame of each partial utterance of a clip of `samples` samples, as
/// `compute_partial_slices(samples, rate=1.3, min_coverage=0.75)` computes them. There is always
/// at least one partial. The last one may reach past the clip, so the caller pads the clip with
/// zeros up to [`padded_len`].
pub(crate) fn partial_starts(samples: usize) -> Vec<usize> {
    let frames = (samples + 1).div_ceil(HOP);
    let step = (f64::from(SAMPLE_RATE) / PARTIALS_PER_SECOND / HOP as f64).round() as usize;
    let end = (frames + step + 1).saturating_sub(PARTIAL_FRAMES).max(1);
    let mut starts: Vec<usize> = (0..end).step_by(step).collect();

    let last_start = starts[starts.len() - 1] * HOP;
    let coverage = (samples as f64 - last_start as f64) / (PARTIAL_FRAMES * HOP) as f64;
    if coverage < MIN_COVERAGE && starts.len() > 1 {
        starts.pop();
    }
    starts
}

/// Samples a clip must have for every partial in `starts` to be whole: Resemblyzer pads to
/// the end of the last partial.
pub(crate) fn padded_len(samples: usize, starts: &[usize]) -> usize {
    let last = starts.last().copied().unwrap_or(0);
    samples.max((last + PARTIAL_FRAMES) * HOP)
}

/// Splits `samples` samples into segments of `segment` samples, as `(start, end)` ranges. A
/// remainder shorter than half a segment joins the segment before it, so no segment is shorter
/// than half a segment unless the whole clip is.
pub(crate) fn segments(samples: usize, segment: usize) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < samples {
        let end = (start + segment).min(samples);
        let rest = samples - end;
        if rest > 0 && rest < segment / 2 {
            ranges.push((start, samples));
            break;
        }
        ranges.push((start, end));
        start = end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_audio_is_raised_to_minus_30_dbfs() {
        let mut samples = vec![0.001f32, -0.001, 0.001, -0.001];

        normalize_volume(&mut samples);

        let expected = 10f32.powf(-1.5);
        assert!((samples[0] - expected).abs() < 1e-6, "{}", samples[0]);
    }

    #[test]
    fn loud_and_silent_audio_are_left_alone() {
        let mut loud = vec![0.5f32, -0.5];
        let mut silent = vec![0.0f32; 3];

        normalize_volume(&mut loud);
        normalize_volume(&mut silent);

        assert_eq!(loud, vec![0.5, -0.5]);
        assert_eq!(silent, vec![0.0; 3]);
    }

    #[test]
    fn partials_step_77_frames_and_drop_a_thin_last_one() {
        assert_eq!(partial_starts(40_000), vec![0, 77]);
        assert_eq!(partial_starts(80_000), vec![0, 77, 154, 231, 308]);
        assert_eq!(partial_starts(100), vec![0]);
    }

    #[test]
    fn short_clip_is_padded_to_one_partial() {
        assert_eq!(padded_len(100, &partial_starts(100)), 25_600);
        assert_eq!(padded_len(40_000, &[0, 77]), 40_000);
    }

    #[test]
    fn short_remainder_joins_the_last_segment() {
        assert_eq!(segments(24, 10), vec![(0, 10), (10, 24)]);
        assert_eq!(segments(25, 10), vec![(0, 10), (10, 20), (20, 25)]);
        assert_eq!(segments(3, 10), vec![(0, 3)]);
        assert_eq!(segments(0, 10), Vec::<(usize, usize)>::new());
    }
}
