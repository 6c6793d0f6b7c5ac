//! Blob writes, reads and maps, manifests, and opening or creating a layout.

use std::fs;

use strata_store::{Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, Store, StoreError, TMP_DIR};

use crate::common::{self, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, temp_store};

#[test]
fn blob_round_trip() {
    let (_dir, store) = temp_store();
    let bytes = b"weights of layer zero".to_vec();

    let digest = store.put_blob(&bytes).unwrap();

    assert_eq!(digest, Digest::of(&bytes));
    assert!(store.has_blob(&digest));
    assert_eq!(store.blob_size(&digest).unwrap(), bytes.len() as u64);
    assert_eq!(store.read_blob(&digest).unwrap(), bytes);
    assert_eq!(&store.map_blob(&digest).unwrap()[..], &bytes[..]);
    assert_eq!(
        store.blob_path(&digest),
        store.root().join("blobs/sha256").join(digest.hex())
    );
}

#[test]
fn identical_bytes_stored_once() {
    let (_dir, store) = temp_store();

    let first = store.put_blob(b"same bytes").unwrap();
    let second = store.put_blob(b"same bytes").unwrap();
    let (third, size) = store
        .put_blob_from_reader(&mut &b"same bytes"[..], None)
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(first, third);
    assert_eq!(size, 10);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(fs::read_dir(store.root().join(TMP_DIR)).unwrap().count(), 0);
}

#[test]
fn empty_blob_maps_to_empty_slice() {
    let (_dir, store) = temp_store();

    let digest = store.put_blob(b"").unwrap();
    let map = store.map_blob(&digest).unwrap();

    assert_eq!(map.len(), 0);
    assert_eq!(store.read_blob(&digest).unwrap(), Vec::<u8>::new());
}

#[test]
fn streamed_blob_with_wrong_digest_leaves_nothing() {
    let (_dir, store) = temp_store();
    let claimed = Digest::of(b"what the registry promised");

    let error = store
        .put_blob_from_reader(&mut &b"what arrived"[..], Some(&claimed))
        .unwrap_err();

    assert!(
        matches!(error, StoreError::DigestMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(claimed.as_str()), "{error}");
    assert!(!store.has_blob(&claimed));
    assert!(!store.has_blob(&Digest::of(b"what arrived")));
    assert_eq!(fs::read_dir(store.root().join(TMP_DIR)).unwrap().count(), 0);
}

#[test]
fn streamed_blob_with_expected_digest_is_stored() {
    let (_dir, store) = temp_store();
    let bytes = vec![7u8; 3 << 20];
    let expected = Digest::of(&bytes);

    let (digest, size) = store
        .put_blob_from_reader(&mut &bytes[..], Some(&expected))
        .unwrap();

    assert_eq!(digest, expected);
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(store.read_blob(&digest).unwrap(), bytes);
}

#[test]
fn missing_blob_error_names_digest() {
    let (_dir, store) = temp_store();
    let digest = Digest::of(b"never stored");

    let error = store.read_blob(&digest).unwrap_err();

    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    assert!(error.is_not_found());
    assert!(error.to_string().contains(digest.as_str()), "{error}");
    assert!(store.map_blob(&digest).unwrap_err().is_not_found());
    assert!(store.blob_size(&digest).unwrap_err().is_not_found());
}

#[test]
fn manifest_round_trip() {
    let (_dir, store) = temp_store();

    let model = common::put_model(&store, &[b"layer a", b"layer b"], b"tokenizer");
    let manifest = store.read_manifest(&model.manifest.digest).unwrap();

    assert_eq!(model.manifest.media_type, MANIFEST_MEDIA_TYPE);
    assert_eq!(model.manifest.artifact_type, manifest.artifact_type);
    assert!(model.manifest.artifact_type.is_some());
    assert_eq!(manifest.config.digest, model.config);
    assert_eq!(manifest.config.media_type, CONFIG_MEDIA_TYPE);
    let layers: Vec<Digest> = manifest
        .layers
        .iter()
        .map(|layer| layer.digest.clone())
        .collect();
    assert_eq!(layers, model.layers);
    assert_eq!(
        store.blob_size(&model.manifest.digest).unwrap(),
        model.manifest.size
    );
}

#[test]
fn manifest_json_is_deterministic_and_camel_case() {
    let config = Descriptor::new(CONFIG_MEDIA_TYPE, Digest::of(b"{}"), 2);
    let manifest = Manifest::new(config, Vec::new());

    let text = String::from_utf8(manifest.to_json_bytes()).unwrap();

    let expected = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_MEDIA_TYPE}\",\"config\":{{\"mediaType\":\
         \"{CONFIG_MEDIA_TYPE}\",\"digest\":\"{}\",\"size\":2}},\"layers\":[]}}",
        Digest::of(b"{}")
    );
    assert_eq!(text, expected);
    assert_eq!(manifest.to_json_bytes(), manifest.clone().to_json_bytes());
}

#[test]
fn manifest_with_missing_layer_is_rejected() {
    let (_dir, store) = temp_store();
    let config_digest = store.put_blob(b"{}").unwrap();
    let config = Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, 2);
    let absent = Digest::of(b"layer never stored");
    let layer = Descriptor::new(LAYER_MEDIA_TYPE, absent.clone(), 18);

    let error = store
        .put_manifest(&Manifest::new(config, vec![layer]))
        .unwrap_err();

    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains(absent.as_str()), "{error}");
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn manifest_with_wrong_layer_size_is_rejected() {
    let (_dir, store) = temp_store();
    let config_digest = store.put_blob(b"{}").unwrap();
    let layer_digest = store.put_blob(b"four").unwrap();
    let config = Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, 2);
    let layer = Descriptor::new(LAYER_MEDIA_TYPE, layer_digest, 5);

    let error = store
        .put_manifest(&Manifest::new(config, vec![layer]))
        .unwrap_err();

    assert!(
        matches!(
            error,
            StoreError::SizeMismatch {
                expected: 5,
                actual: 4,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn manifest_with_other_media_type_is_rejected() {
    let (_dir, store) = temp_store();
    let config_digest = store.put_blob(b"{}").unwrap();
    let mut manifest = Manifest::new(Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, 2), vec![]);
    manifest.media_type = "application/vnd.docker.distribution.manifest.v2+json".to_string();

    let error = store.put_manifest(&manifest).unwrap_err();

    assert!(
        matches!(error, StoreError::InvalidManifest { .. }),
        "{error}"
    );
}

#[test]
fn manifest_blob_with_other_content_fails_to_read() {
    let (_dir, store) = temp_store();
    let not_a_manifest = store.put_blob(b"{\"hello\":1}").unwrap();

    let error = store.read_manifest(&not_a_manifest).unwrap_err();

    assert!(matches!(error, StoreError::Json { .. }), "{error}");
}

#[test]
fn new_store_is_an_oci_layout() {
    let (_dir, store) = temp_store();

    let layout: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("oci-layout")).unwrap()).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).unwrap()).unwrap();

    assert_eq!(layout, serde_json::json!({ "imageLayoutVersion": "1.0.0" }));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"], serde_json::json!([]));
    for dir in ["blobs/sha256", "tmp", "locks"] {
        assert!(store.root().join(dir).is_dir(), "{dir} is missing");
    }
}

#[test]
fn reopened_store_keeps_tags() {
    let (_dir, store) = temp_store();
    common::save_tagged(&store, "kept:v1", &[b"layer"]);

    let reopened = Store::open(store.root()).unwrap();

    assert_eq!(common::tag_names(&reopened), vec!["kept:v1"]);
}

#[test]
fn other_layout_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();

    let error = Store::open(dir.path()).unwrap_err();

    assert!(
        matches!(error, StoreError::UnsupportedLayout { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("2.0.0"), "{error}");
}

#[test]
fn non_empty_directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "not a store").unwrap();

    let error = Store::open(dir.path()).unwrap_err();

    assert!(matches!(error, StoreError::NotAStore { .. }), "{error}");
    assert_eq!(common::listing(dir.path()).len(), 1);
}

#[test]
fn half_created_store_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
    fs::create_dir(dir.path().join("tmp")).unwrap();

    let store = Store::open(dir.path()).unwrap();

    assert!(store.root().join("oci-layout").is_file());
    assert!(store.root().join("index.json").is_file());
    assert!(store.list_tags().unwrap().is_empty());
}

#[test]
fn layout_without_tmp_and_locks_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();

    let store = Store::open(dir.path()).unwrap();
    let model = common::save_tagged(&store, "other:tool", &[b"layer"]);

    assert!(store.root().join("tmp").is_dir());
    assert!(store.root().join("locks").is_dir());
    assert!(store.has_blob(&model.manifest.digest));
}

#[test]
fn put_blob_repairs_a_truncated_blob() {
    let (_dir, store) = temp_store();
    let bytes = b"a block that a crash or a disk error truncated";
    let digest = store.put_blob(bytes).unwrap();
    let path = store.blob_path(&digest);
    std::fs::write(&path, &bytes[..10]).unwrap();

    assert_eq!(store.put_blob(bytes).unwrap(), digest);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(store.fsck().unwrap().problems.is_empty());
}
