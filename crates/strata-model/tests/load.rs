//! Loading model versions whose manifests strata does not fully understand: each is rejected
//! with the reference and the offending media type, annotation or size.

mod common;

use common::gguf::tiny_llama;
use strata_model::import;
use strata_model::load::LoadedModel;
use strata_model::media;
use strata_store::{Manifest, Reference, Store};
use tempfile::TempDir;

/// Imports the tiny llama, lets `tamper` change its manifest, tags the result `tampered` and
/// returns the load error.
fn load_error(tamper: impl FnOnce(&Store, &mut Manifest)) -> String {
    let dir = TempDir::new().unwrap();
    let path = tiny_llama().write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let reference = Reference::parse("tiny").unwrap();
    let outcome = import::import_gguf(&store, &path, &reference, &mut |_, _| {}).unwrap();
    let mut manifest = store.read_manifest(&outcome.descriptor.digest).unwrap();
    tamper(&store, &mut manifest);
    let descriptor = store.put_manifest(&manifest).unwrap();
    let tampered = Reference::parse("tampered").unwrap();
    store.set_tag(&tampered, &descriptor).unwrap();
    LoadedModel::open(&store, &tampered)
        .expect_err("a tampered manifest loaded")
        .to_string()
}

#[test]
fn unknown_layer_media_type_is_named() {
    let message = load_error(|_, manifest| {
        manifest.layers[3].media_type = "application/vnd.example.lora+bin".to_string();
    });
    assert!(
        message.starts_with("tampered:latest: layer sha256:"),
        "{message}"
    );
    assert!(message.ends_with("has unknown media type \"application/vnd.example.lora+bin\""));
}

#[test]
fn foreign_config_media_type_is_named() {
    let message = load_error(|_, manifest| {
        manifest.config.media_type = "application/vnd.oci.image.config.v1+json".to_string();
    });
    assert_eq!(
        message,
        "tampered:latest is not a model: its config media type is \
         \"application/vnd.oci.image.config.v1+json\""
    );
}

#[test]
fn foreign_artifact_type_is_named() {
    let message = load_error(|_, manifest| {
        manifest.artifact_type = Some("application/vnd.example.dataset".to_string());
    });
    assert_eq!(
        message,
        "tampered:latest is not a model: its artifact type is \"application/vnd.example.dataset\""
    );
}

#[test]
fn shape_annotation_disagreeing_with_the_blob_is_rejected() {
    let message = load_error(|_, manifest| {
        let layer = &mut manifest.layers[0];
        layer
            .annotations
            .insert(media::TENSOR_SHAPE.to_string(), "[11,32]".to_string());
    });
    assert_eq!(
        message,
        "tampered:latest: tensor \"token_embd.weight\" is 1280 bytes, but its dtype and shape \
         need 1408"
    );
}

#[test]
fn unknown_dtype_annotation_is_rejected() {
    let message = load_error(|_, manifest| {
        let layer = &mut manifest.layers[0];
        layer
            .annotations
            .insert(media::TENSOR_DTYPE.to_string(), "f8".to_string());
    });
    assert!(message.ends_with(&format!(
        "has a missing or invalid {} annotation",
        media::TENSOR_DTYPE
    )));
}

#[test]
fn missing_tokenizer_layer_is_rejected() {
    let message = load_error(|_, manifest| {
        manifest
            .layers
            .retain(|layer| layer.media_type != media::TOKENIZER_MEDIA_TYPE);
    });
    assert_eq!(message, "tampered:latest: the tokenizer layer is missing");
}

#[test]
fn duplicate_tensor_layer_is_rejected() {
    let message = load_error(|_, manifest| {
        let copy = manifest.layers[0].clone();
        manifest.layers.insert(1, copy);
    });
    assert_eq!(
        message,
        "tampered:latest: tensor \"token_embd.weight\" appears in two layers"
    );
}

#[test]
fn loading_by_digest_gives_the_same_version() {
    let dir = TempDir::new().unwrap();
    let path = tiny_llama().write(dir.path(), "tiny.gguf");
    let store = Store::open(dir.path().join("store")).unwrap();
    let tagged = Reference::parse("tiny:v1").unwrap();
    let outcome = import::import_gguf(&store, &path, &tagged, &mut |_, _| {}).unwrap();
    let pinned = Reference::parse(&format!("tiny@{}", outcome.descriptor.digest)).unwrap();
    let model = LoadedModel::open(&store, &pinned).expect("load by digest");
    assert_eq!(model.manifest_digest, outcome.descriptor.digest);
    assert_eq!(model.reference, pinned);
}

#[test]
fn second_tokenizer_layer_is_rejected() {
    let message = load_error(|_, manifest| {
        let tokenizer = manifest
            .layers
            .iter()
            .find(|layer| layer.media_type == media::TOKENIZER_MEDIA_TYPE)
            .unwrap()
            .clone();
        manifest.layers.push(tokenizer);
    });
    assert_eq!(
        message,
        format!(
            "tampered:latest: the manifest has more than one layer of media type {:?}",
            media::TOKENIZER_MEDIA_TYPE
        )
    );
}

#[test]
fn second_chat_template_layer_is_rejected() {
    let message = load_error(|store, manifest| {
        let digest = store.put_blob(b"{{ messages }}").unwrap();
        let descriptor = strata_store::Descriptor::new(media::CHAT_TEMPLATE_MEDIA_TYPE, digest, 14);
        manifest.layers.push(descriptor);
    });
    assert_eq!(
        message,
        format!(
            "tampered:latest: the manifest has more than one layer of media type {:?}",
            media::CHAT_TEMPLATE_MEDIA_TYPE
        )
    );
}

#[test]
fn missing_shape_annotation_is_rejected() {
    let message = load_error(|_, manifest| {
        manifest.layers[1].annotations.remove(media::TENSOR_SHAPE);
    });
    assert!(
        message.starts_with("tampered:latest: tensor layer sha256:"),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "has a missing or invalid {} annotation",
            media::TENSOR_SHAPE
        )),
        "{message}"
    );
}

#[test]
fn dtype_annotation_disagreeing_with_the_blob_is_rejected() {
    let message = load_error(|_, manifest| {
        let layer = &mut manifest.layers[0];
        layer
            .annotations
            .insert(media::TENSOR_DTYPE.to_string(), "q4_1".to_string());
    });
    assert_eq!(
        message,
        "tampered:latest: tensor \"token_embd.weight\" is 1280 bytes, but its dtype and shape \
         need 200"
    );
}

#[test]
fn template_that_is_not_utf8_is_rejected() {
    let message = load_error(|store, manifest| {
        let digest = store.put_blob(&[0xFF, 0xFE]).unwrap();
        let template = manifest
            .layers
            .iter_mut()
            .find(|layer| layer.media_type == media::CHAT_TEMPLATE_MEDIA_TYPE)
            .unwrap();
        template.digest = digest;
        template.size = 2;
    });
    assert!(
        message.starts_with("tampered:latest: the chat template blob sha256:"),
        "{message}"
    );
    assert!(message.ends_with("is not valid UTF-8"), "{message}");
}
