//! Tags in `index.json`: setting, resolving, listing and removing them.

use std::fs;

use strata_store::{Digest, REF_NAME_ANNOTATION, Reference, StoreError};

use crate::common::{self, temp_store};

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

#[test]
fn set_tag_returns_previous_descriptor() {
    let (_dir, store) = temp_store();
    let first = common::put_model(&store, &[b"v1"], b"tok");
    let second = common::put_model(&store, &[b"v2"], b"tok");

    let none = store
        .set_tag(&reference("m:latest"), &first.manifest)
        .unwrap();
    let previous = store
        .set_tag(&reference("m:latest"), &second.manifest)
        .unwrap();

    assert!(none.is_none());
    assert_eq!(previous.unwrap().digest, first.manifest.digest);
    assert_eq!(
        store.resolve(&reference("m")).unwrap().digest,
        second.manifest.digest
    );
}

#[test]
fn index_entry_carries_ref_name_annotation() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "smollm2:latest", &[b"w"]);

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).unwrap()).unwrap();

    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"][REF_NAME_ANNOTATION], "smollm2:latest");
    assert_eq!(entry["digest"], model.manifest.digest.as_str());
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(entry["size"], model.manifest.size);
    assert_eq!(
        entry["artifactType"],
        "application/vnd.strata.test.artifact.v1"
    );
}

#[test]
fn tags_are_listed_and_stored_sorted() {
    let (_dir, store) = temp_store();
    for name in ["zeta:1", "alpha:2", "mid/name:x", "alpha:10"] {
        common::save_tagged(&store, name, &[name.as_bytes()]);
    }

    let listed = common::tag_names(&store);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).unwrap()).unwrap();
    let stored: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["annotations"][REF_NAME_ANNOTATION].as_str().unwrap())
        .collect();

    assert_eq!(listed, vec!["alpha:10", "alpha:2", "mid/name:x", "zeta:1"]);
    assert_eq!(stored, listed);
}

#[test]
fn digest_reference_resolves_stored_manifest() {
    let (_dir, store) = temp_store();
    let model = common::put_model(&store, &[b"w"], b"tok");
    let by_digest = Reference::digested("any-name", model.manifest.digest.clone()).unwrap();

    let resolved = store.resolve(&by_digest).unwrap();

    assert_eq!(resolved, model.manifest);
}

#[test]
fn unknown_digest_reference_is_not_found() {
    let (_dir, store) = temp_store();
    let absent = Digest::of(b"no such manifest");

    let error = store
        .resolve(&Reference::digested("m", absent.clone()).unwrap())
        .unwrap_err();

    assert!(error.is_not_found(), "{error}");
    assert!(error.to_string().contains(absent.as_str()), "{error}");
}

#[test]
fn unknown_tag_is_not_found() {
    let (_dir, store) = temp_store();

    let error = store.resolve(&reference("ghost:v1")).unwrap_err();

    assert!(matches!(error, StoreError::TagNotFound { .. }), "{error}");
    assert!(error.to_string().contains("ghost:v1"), "{error}");
}

#[test]
fn removed_tag_no_longer_resolves() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:old", &[b"w"]);
    common::save_tagged(&store, "m:new", &[b"w2"]);

    let removed = store.remove_tag(&reference("m:old")).unwrap();

    assert_eq!(removed.digest, model.manifest.digest);
    assert!(
        store
            .resolve(&reference("m:old"))
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(common::tag_names(&store), vec!["m:new"]);
    assert!(
        store.has_blob(&model.manifest.digest),
        "remove_tag must leave blobs to gc"
    );
}

#[test]
fn removing_unknown_tag_fails() {
    let (_dir, store) = temp_store();

    let error = store.remove_tag(&reference("m:none")).unwrap_err();

    assert!(matches!(error, StoreError::TagNotFound { .. }), "{error}");
}

#[test]
fn digest_reference_cannot_be_tagged() {
    let (_dir, store) = temp_store();
    let model = common::put_model(&store, &[b"w"], b"tok");
    let by_digest = Reference::digested("m", model.manifest.digest.clone()).unwrap();

    let set = store.set_tag(&by_digest, &model.manifest).unwrap_err();
    let removed = store.remove_tag(&by_digest).unwrap_err();

    assert!(matches!(set, StoreError::NotATag { .. }), "{set}");
    assert!(matches!(removed, StoreError::NotATag { .. }), "{removed}");
}

#[test]
fn tag_to_missing_manifest_is_rejected() {
    let (_dir, store) = temp_store();
    let mut model = common::put_model(&store, &[b"w"], b"tok");
    fs::remove_file(store.blob_path(&model.manifest.digest)).unwrap();

    let error = store
        .set_tag(&reference("m:v"), &model.manifest)
        .unwrap_err();
    model.manifest.media_type = "application/vnd.oci.image.index.v1+json".to_string();
    let wrong_type = store
        .set_tag(&reference("m:v"), &model.manifest)
        .unwrap_err();

    assert!(error.is_not_found(), "{error}");
    assert!(
        matches!(wrong_type, StoreError::InvalidManifest { .. }),
        "{wrong_type}"
    );
    assert!(store.list_tags().unwrap().is_empty());
}

#[test]
fn bare_tag_entries_are_kept() {
    let (_dir, store) = temp_store();
    let model = common::put_model(&store, &[b"w"], b"tok");
    let mut bare = model.manifest.clone();
    bare.annotations
        .insert(REF_NAME_ANNOTATION.to_string(), "latest".to_string());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [bare],
    });
    fs::write(store.root().join("index.json"), index.to_string()).unwrap();

    store.set_tag(&reference("m:v"), &model.manifest).unwrap();

    assert_eq!(common::tag_names(&store), vec!["m:v"]);
    let raw = fs::read_to_string(store.root().join("index.json")).unwrap();
    assert!(
        raw.contains("\"latest\""),
        "the bare-tag entry was dropped: {raw}"
    );
}

#[test]
fn set_tag_if_moves_only_from_the_expected_manifest() {
    let (_dir, store) = temp_store();
    let first = common::put_model(&store, &[b"v1"], b"tok");
    let second = common::put_model(&store, &[b"v2"], b"tok");
    let tag = reference("m:latest");

    store.set_tag_if(&tag, &first.manifest, None).unwrap();
    let error = store.set_tag_if(&tag, &second.manifest, None).unwrap_err();
    assert!(matches!(error, StoreError::TagMoved { .. }), "{error}");
    assert!(
        error.to_string().contains(first.manifest.digest.as_str()),
        "{error}"
    );

    let stale = Some(&second.manifest.digest);
    let error = store.set_tag_if(&tag, &second.manifest, stale).unwrap_err();
    assert!(matches!(error, StoreError::TagMoved { .. }), "{error}");
    assert_eq!(store.resolve(&tag).unwrap().digest, first.manifest.digest);

    let current = Some(&first.manifest.digest);
    store.set_tag_if(&tag, &second.manifest, current).unwrap();
    assert_eq!(store.resolve(&tag).unwrap().digest, second.manifest.digest);
}
