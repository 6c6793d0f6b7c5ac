//! Loading from the store: what is rejected before any model is built. These tests need no model.

use strata_embed::{
    EmbedError, LoadError, load_audio_embedder, load_image_embedder, load_text_embedder,
};
use strata_store::{Descriptor, Manifest, Reference, Store, StoreError};

#[test]
fn load_rejects_other_artifact_type() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let config = b"{}";
    let digest = store.put_blob(config).unwrap();
    let mut manifest = Manifest::new(
        Descriptor::new("application/vnd.cncf.model.config.v1+json", digest, 2),
        Vec::new(),
    );
    manifest.artifact_type = Some("application/vnd.cncf.model.manifest.v1+json".to_string());
    let descriptor = store.put_manifest(&manifest).unwrap();
    let reference = Reference::parse("smollm2:latest").unwrap();
    store.set_tag(&reference, &descriptor).unwrap();

    let error = load_text_embedder(&store, &reference).unwrap_err();

    assert!(
        matches!(error, EmbedError::Load(LoadError::ArtifactType { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("smollm2:latest"), "{message}");
    assert!(
        message.contains("application/vnd.strata.embedder.v1+json"),
        "{message}"
    );
}

#[test]
fn load_of_missing_tag_is_not_found() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let reference = Reference::parse("embedder/minilm:latest").unwrap();

    let error = load_text_embedder(&store, &reference).unwrap_err();

    assert!(
        matches!(error, EmbedError::Store(StoreError::TagNotFound { .. })),
        "{error:?}"
    );
}

#[test]
fn image_load_rejects_text_embedder() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let config = br#"{"name": "all-MiniLM-L6-v2", "modality": "text", "architecture": "bert",
        "dim": 384, "text": {"max_seq_length": 256, "pooling": "mean", "normalize": true},
        "source": {"kind": "sentence-transformers", "weights_file": "model.safetensors",
        "weights_sha256": "00"}}"#;
    let digest = store.put_blob(config).unwrap();
    let mut manifest = Manifest::new(
        Descriptor::new(
            "application/vnd.strata.embedder.config.v1+json",
            digest,
            config.len() as u64,
        ),
        Vec::new(),
    );
    manifest.artifact_type = Some("application/vnd.strata.embedder.v1+json".to_string());
    let descriptor = store.put_manifest(&manifest).unwrap();
    let reference = Reference::parse("embedder/minilm:latest").unwrap();
    store.set_tag(&reference, &descriptor).unwrap();

    let error = load_image_embedder(&store, &reference).unwrap_err();

    assert!(
        matches!(error, EmbedError::Load(LoadError::Config { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("embedder/minilm:latest"), "{message}");
    assert!(
        message.contains("expected `efficientnet-lite0` for image input"),
        "{message}"
    );
}

#[test]
fn audio_load_rejects_text_embedder() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let config = br#"{"name": "all-MiniLM-L6-v2", "modality": "text", "architecture": "bert",
        "dim": 384, "text": {"max_seq_length": 256, "pooling": "mean", "normalize": true},
        "source": {"kind": "sentence-transformers", "weights_file": "model.safetensors",
        "weights_sha256": "00"}}"#;
    let digest = store.put_blob(config).unwrap();
    let mut manifest = Manifest::new(
        Descriptor::new(
            "application/vnd.strata.embedder.config.v1+json",
            digest,
            config.len() as u64,
        ),
        Vec::new(),
    );
    manifest.artifact_type = Some("application/vnd.strata.embedder.v1+json".to_string());
    let descriptor = store.put_manifest(&manifest).unwrap();
    let reference = Reference::parse("embedder/minilm:latest").unwrap();
    store.set_tag(&reference, &descriptor).unwrap();

    let error = load_audio_embedder(&store, &reference).unwrap_err();

    assert!(
        matches!(error, EmbedError::Load(LoadError::Config { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("embedder/minilm:latest"), "{message}");
    assert!(
        message.contains("expected `ge2e` for audio input"),
        "{message}"
    );
}
