//! Reading a WAV file into mono samples with `hound`.
//!
//! Integer PCM of 8 to 32 bits is scaled to [-1, 1) by dividing by 2^(bits-1), as libsndfile
//! (which librosa reads WAV files with) does. 32-bit float is taken as is. Channels are averaged
//! into one.

use std::path::Path;

use crate::error::AudioError;

/// Mono samples and their rate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clip {
    pub(crate) samples: Vec<f32>,
    pub(crate) sample_rate: u32,
}

/// Reads the WAV file at `path` and mixes its channels down to mono.
pub(crate) fn read_wav(path: &Path) -> Result<Clip, AudioError> {
    let decode_error = |error: hound::Error| AudioError::Decode {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let reader = hound::WavReader::open(path).map_err(decode_error)?;
    let spec = reader.spec();
    let interleaved = read_samples(reader, spec).map_err(decode_error)?;

    let channels = usize::from(spec.channels.max(1));
    let samples = mix_to_mono(&interleaved, channels);
    tracing::debug!(
        path = %path.display(),
        rate = spec.sample_rate,
        channels,
        bits = spec.bits_per_sample,
        samples = samples.len(),
        "read wav"
    );
    Ok(Clip {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Reads every sample as f32, still interleaved. A file cut short fails here.
fn read_samples<R: std::io::Read>(
    reader: hound::WavReader<R>,
    spec: hound::WavSpec,
) -> Result<Vec<f32>, hound::Error> {
    match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample.clamp(1, 32) - 1));
            reader
                .into_samples::<i32>()
                .map(|sample| sample.map(|value| (f64::from(value) * scale) as f32))
                .collect()
        }
    }
}

/// Averages each frame of `channels` interleaved samples. A trailing partial frame is dropped.
fn mix_to_mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, spec: hound::WavSpec, samples: &[i32]) {
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &sample in samples {
            match spec.bits_per_sample {
                8 => writer.write_sample(sample as i8).unwrap(),
                16 => writer.write_sample(sample as i16).unwrap(),
                _ => writer.write_sample(sample).unwrap(),
            }
        }
        writer.finalize().unwrap();
    }

    fn int_spec(channels: u16, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn stereo_16_bit_is_averaged_and_scaled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        write_wav(&path, int_spec(2, 16), &[16384, 0, -32768, -16384]);

        let clip = read_wav(&path).unwrap();

        assert_eq!(clip.sample_rate, 8000);
        assert_eq!(clip.samples, vec![0.25, -0.75]);
    }

    #[test]
    fn pcm_widths_scale_to_the_same_value() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, half) in [(8u16, 64i32), (16, 1 << 14), (24, 1 << 22), (32, 1 << 30)] {
            let path = dir.path().join(format!("{bits}.wav"));
            write_wav(&path, int_spec(1, bits), &[half, -half]);

            let clip = read_wav(&path).unwrap();

            assert_eq!(clip.samples, vec![0.5, -0.5], "{bits}-bit");
        }
    }

    #[test]
    fn float_samples_are_read_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("float.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        writer.write_sample(0.125f32).unwrap();
        writer.write_sample(-1.5f32).unwrap();
        writer.finalize().unwrap();

        assert_eq!(read_wav(&path).unwrap().samples, vec![0.125, -1.5]);
    }

    #[test]
    fn truncated_file_is_rejected_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        write_wav(&path, int_spec(1, 16), &[1000; 400]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 101]).unwrap();

        let message = read_wav(&path).unwrap_err().to_string();

        assert!(message.contains("cut.wav"), "{message}");
        assert!(message.contains("ffmpeg -i"), "{message}");
    }

    #[test]
    fn other_format_is_rejected_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("song.mp3");
        std::fs::write(&path, b"ID3\x04\x00\x00\x00\x00\x00\x00not a wave file").unwrap();

        let message = read_wav(&path).unwrap_err().to_string();

        assert!(message.contains("song.mp3"), "{message}");
        assert!(message.contains("-ar 16000 -ac 1"), "{message}");
    }

    #[test]
    fn file_without_samples_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wav");
        write_wav(&path, int_spec(1, 16), &[]);

        assert!(read_wav(&path).unwrap().samples.is_empty());
    }
}
