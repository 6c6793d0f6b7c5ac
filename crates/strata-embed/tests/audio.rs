//! Tests of the GE2E audio embedder against Resemblyzer's real weights.
//!
//! They need `pretrained.pt` of Resemblyzer 0.1.4 in `STRATA_TEST_RESEMBLYZER`, and print a note
//! and pass when it is unset. The speech test also needs `espeak-ng`. The reference values in
//! `reference/ge2e_reference.json` were computed by `reference/ge2e_reference.py`, an
//! independent numpy and librosa implementation in float64, from the signal `test_signal`
//! rebuilds here.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use strata_embed::{
    AUDIO_EMBEDDER_TAG, AudioEmbedder, EmbedError, Embedder, Input, Modality,
    default_audio_embedder, fetch_resemblyzer, import_audio_embedder, load_audio_embedder,
    mel_spectrogram,
};
use strata_store::{Reference, Store};

/// Largest relative difference allowed between a mel value and the float64 reference, on top
/// of `MEL_FLOOR` of the frame's largest value.
const MEL_RELATIVE_TOLERANCE: f64 = 1e-5;

/// Absolute slack of the mel comparison, relative to the frame's largest value.
const MEL_FLOOR: f64 = 1e-6;

/// Largest difference allowed between an embedding component and the float64 reference.
const EMBEDDING_TOLERANCE: f32 = 1e-5;

/// Smallest gap required between the least similar clips of one voice and the most similar
/// clips of two voices.
const VOICE_MARGIN: f32 = 0.1;

#[derive(Deserialize)]
struct Fixture {
    samples: usize,
    gain: f64,
    mel_frames: usize,
    mel: std::collections::BTreeMap<String, Vec<f64>>,
    embedding: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/ge2e_reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn weights_path() -> Option<PathBuf> {
    match std::env::var_os("STRATA_TEST_RESEMBLYZER") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("note: STRATA_TEST_RESEMBLYZER is unset; skipping a test that needs it");
            None
        }
    }
}

/// Builds the embedder from the weights file, once per test binary.
fn embedder(path: &Path) -> &'static AudioEmbedder {
    static EMBEDDER: OnceLock<AudioEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| AudioEmbedder::from_weights(path).unwrap())
}

/// The signal of `ge2e_reference.py`: a gliding eight-harmonic tone with a 3 Hz envelope and
/// LCG noise, 40000 samples at 16 kHz, before volume normalisation.
fn test_signal(count: usize) -> Vec<f64> {
    let (rate, start_hz, end_hz) = (16000.0, 110.0, 190.0);
    let duration = count as f64 / rate;
    let mut state: u64 = 1;
    (0..count)
        .map(|n| {
            let t = n as f64 / rate;
            let phase = 2.0 * PI * (start_hz * t + (end_hz - start_hz) * t * t / (2.0 * duration));
            let voice: f64 = (1..=8).map(|k| (k as f64 * phase).sin() / k as f64).sum();
            let envelope = 0.5 + 0.5 * (2.0 * PI * 3.0 * t).sin();
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            0.01 * (envelope * voice + 0.05 * noise)
        })
        .collect()
}

fn to_f32(samples: &[f64]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn mel_spectrogram_matches_reference() {
    let fixture = fixture();
    let scaled: Vec<f64> = test_signal(fixture.samples)
        .iter()
        .map(|s| s * fixture.gain)
        .collect();

    let mel = mel_spectrogram(&to_f32(&scaled));

    assert_eq!(mel.len(), fixture.mel_frames * 40);
    let mut worst: f64 = 0.0;
    for (frame, expected) in &fixture.mel {
        let start = frame.parse::<usize>().unwrap() * 40;
        let actual = &mel[start..start + 40];
        let peak = expected.iter().fold(0.0f64, |a, &b| a.max(b));
        for (channel, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let error = (f64::from(a) - e).abs() / (e.abs() + MEL_FLOOR * peak);
            worst = worst.max(error);
            assert!(
                error < MEL_RELATIVE_TOLERANCE,
                "frame {frame} channel {channel}: {a} against {e}"
            );
        }
    }
    eprintln!("mel: worst relative difference {worst:.2e}");
}

#[test]
fn embedding_matches_reference() {
    let Some(path) = weights_path() else { return };
    let fixture = fixture();
    let signal = to_f32(&test_signal(fixture.samples));

    let vector = embedder(&path).embed_samples_whole(&signal, 16000).unwrap();

    let difference = max_difference(&vector, &fixture.embedding);
    eprintln!(
        "embedding: max difference {difference:.2e}, cosine {:.8}",
        cosine(&vector, &fixture.embedding)
    );
    assert!(difference < EMBEDDING_TOLERANCE, "differs by {difference}");
}

/// Speaks `text` with espeak-ng's voice `voice` into `path`. Returns false when espeak-ng is
/// missing.
fn speak(voice: &str, text: &str, path: &Path) -> bool {
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(path)
        .arg(text)
        .status();
    match status {
        Ok(status) => {
            assert!(status.success(), "espeak-ng -v {voice} failed: {status}");
            true
        }
        Err(_) => {
            eprintln!("note: espeak-ng is not installed; skipping the speech test");
            false
        }
    }
}

const SENTENCES: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember to bring your umbrella tomorrow because it might rain.",
    "Seven small boats sailed across the quiet harbour before sunrise.",
];

/// A male and a female espeak-ng voice, each saying three sentences: every pair of one voice
/// must be more similar than any pair of the two voices.
#[test]
fn same_voice_is_nearer_than_another_voice() {
    let Some(path) = weights_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut vectors = Vec::new();
    for voice in ["en-us", "en-us+f3"] {
        for (index, sentence) in SENTENCES.iter().enumerate() {
            let wav = dir.path().join(format!("{voice}-{index}.wav"));
            if !speak(voice, sentence, &wav) {
                return;
            }
            vectors.push((voice, embedder(&path).embed_clip(&wav).unwrap()));
        }
    }

    let (mut same_min, mut other_max) = (f32::MAX, f32::MIN);
    for (i, (voice_a, a)) in vectors.iter().enumerate() {
        for (voice_b, b) in &vectors[i + 1..] {
            let similarity = cosine(a, b);
            if voice_a == voice_b {
                same_min = same_min.min(similarity);
            } else {
                other_max = other_max.max(similarity);
            }
        }
    }
    eprintln!("voices: same voice at least {same_min:.3}, other voice at most {other_max:.3}");
    assert!(
        same_min - other_max > VOICE_MARGIN,
        "same voice {same_min}, other voice {other_max}"
    );
}

#[test]
fn long_clip_gives_a_vector_per_segment() {
    let Some(path) = weights_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for sample in test_signal(22050 * 12) {
        let value = (sample * 20.0 * 32767.0) as i16;
        writer.write_sample(value).unwrap();
        writer.write_sample(value).unwrap();
    }
    writer.finalize().unwrap();

    let embedded = embedder(&path).embed(&Input::Audio(wav)).unwrap();

    let offsets: Vec<Option<f64>> = embedded.iter().map(|e| e.offset_seconds).collect();
    assert_eq!(offsets, vec![Some(0.0), Some(5.0)]);
    for vector in embedded.iter().map(|e| &e.vector) {
        assert_eq!(vector.len(), 256);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn segment_offsets_continue_past_twelve_segments() {
    let Some(path) = weights_path() else { return };
    let signal = to_f32(&test_signal(8000 * 66));

    let embedded = embedder(&path).embed_samples(&signal, 8000).unwrap();

    let offsets: Vec<f64> = embedded.iter().filter_map(|e| e.offset_seconds).collect();
    let expected: Vec<f64> = (0..13).map(|i| f64::from(i) * 5.0).collect();
    assert_eq!(offsets, expected);
}

#[test]
fn bad_inputs_are_rejected_with_the_fix() {
    let Some(path) = weights_path() else { return };
    let embedder = embedder(&path);
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("talk.mp3");
    std::fs::write(&mp3, b"ID3\x04\x00\x00\x00\x00\x00\x00frames").unwrap();

    let not_wav = embedder.embed(&Input::Audio(mp3)).unwrap_err().to_string();
    let text = embedder.embed(&Input::from("hello")).unwrap_err();
    let empty = embedder.embed_samples(&[], 16000).unwrap_err().to_string();
    let no_rate = embedder.embed_samples(&[0.1], 0).unwrap_err().to_string();

    assert!(not_wav.contains("talk.mp3"), "{not_wav}");
    assert!(
        not_wav.contains("ffmpeg -i FILE -ar 16000 -ac 1 OUT.wav"),
        "{not_wav}"
    );
    assert!(
        matches!(text, EmbedError::UnsupportedInput { .. }),
        "{text:?}"
    );
    assert!(empty.contains("has no samples"), "{empty}");
    assert!(no_rate.contains("sample rate 0 Hz"), "{no_rate}");
    assert_eq!(embedder.modality(), Modality::Audio);
    assert_eq!(embedder.dim(), 256);
}

#[test]
fn silence_gives_a_unit_vector() {
    let Some(path) = weights_path() else { return };

    let vector = embedder(&path)
        .embed_samples_whole(&vec![0.0; 16000 * 2], 16000)
        .unwrap();

    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn import_twice_writes_nothing_and_loads_the_same_model() {
    let Some(path) = weights_path() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let reference = Reference::parse("embedder/ge2e:latest").unwrap();

    let first = import_audio_embedder(&store, &path, &reference).unwrap();
    let blobs = blob_count(&store);
    let second = import_audio_embedder(&store, &path, &reference).unwrap();
    let loaded = load_audio_embedder(&store, &reference).unwrap();

    assert_eq!(first.descriptor.digest, second.descriptor.digest);
    assert_eq!(first.tensors, 14);
    assert_eq!(second.bytes_written, 0);
    assert_eq!(blob_count(&store), blobs);
    let signal = to_f32(&test_signal(16000 * 2));
    let from_store = loaded.embed_samples_whole(&signal, 16000).unwrap();
    let from_file = embedder(&path).embed_samples_whole(&signal, 16000).unwrap();
    assert_eq!(from_store, from_file);
}

/// Copies the wheel named by `STRATA_TEST_RESEMBLYZER_WHEEL` into a fresh cache, so unpacking
/// and the checksum run without a download.
#[test]
fn fetch_unpacks_cached_wheel() {
    let Some(wheel) = std::env::var_os("STRATA_TEST_RESEMBLYZER_WHEEL").map(PathBuf::from) else {
        eprintln!("note: STRATA_TEST_RESEMBLYZER_WHEEL is unset; skipping the fetch test");
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    std::fs::copy(&wheel, cache.path().join(wheel.file_name().unwrap())).unwrap();

    let weights = fetch_resemblyzer(cache.path()).unwrap();
    let again = fetch_resemblyzer(cache.path()).unwrap();

    assert_eq!(weights, again);
    assert!(weights.ends_with("Resemblyzer-0.1.4/pretrained.pt"));
    let leftovers: Vec<_> = std::fs::read_dir(weights.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Puts the wheel named by `STRATA_TEST_RESEMBLYZER_WHEEL` in a fresh store's wheel cache, so
/// the default embedder is unpacked, imported and tagged without a download.
#[test]
fn default_embedder_is_imported_on_first_use() {
    let Some(wheel) = std::env::var_os("STRATA_TEST_RESEMBLYZER_WHEEL").map(PathBuf::from) else {
        eprintln!("note: STRATA_TEST_RESEMBLYZER_WHEEL is unset; skipping the default test");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let cache = store.root().join("cache/pypi-v1");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(&wheel, cache.join(wheel.file_name().unwrap())).unwrap();

    let first = default_audio_embedder(&store).unwrap();
    let blobs = blob_count(&store);
    let second = default_audio_embedder(&store).unwrap();

    let reference = Reference::parse(AUDIO_EMBEDDER_TAG).unwrap();
    assert!(store.resolve(&reference).is_ok());
    assert_eq!(blob_count(&store), blobs);
    assert_eq!(first.name(), "resemblyzer-ge2e");
    assert_eq!(second.dim(), 256);
}

/// Prints seconds of audio embedded per second of wall time over 60 s of audio at 16 kHz.
/// Run with `cargo test --release -p strata-embed --test audio -- --ignored --nocapture`.
#[test]
#[ignore = "measures speed; run on demand"]
fn embedding_speed() {
    let Some(path) = weights_path() else { return };
    let embedder = embedder(&path);
    let seconds = 60;
    let signal = to_f32(&test_signal(16000 * seconds));
    embedder.embed_samples(&signal[..16000 * 5], 16000).unwrap();

    let start = Instant::now();
    let embedded = embedder.embed_samples(&signal, 16000).unwrap();
    let elapsed = start.elapsed().as_secs_f64();

    assert_eq!(embedded.len(), seconds / 5);
    eprintln!(
        "{seconds} s of audio in {elapsed:.2} s: {:.1} s of audio per second",
        seconds as f64 / elapsed
    );
}
