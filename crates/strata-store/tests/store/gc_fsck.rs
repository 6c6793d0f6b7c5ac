//! `fsck` finding damage and `gc` removing exactly the unreachable blobs and leftover files.

use std::fs::{self, File, OpenOptions};

use serde_json::json;
use strata_store::{Digest, FsckProblem, Reference, StoreError};

use crate::common::{self, temp_store};

fn flip_first_byte(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn healthy_store_has_no_problems() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer one", b"layer two"]);

    let report = store.fsck().unwrap();

    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Manifest, config, two layers and the tokenizer named from the config.
    assert_eq!(report.blobs_checked, 5);
    let expected_bytes: u64 = [&model.manifest.digest, &model.config, &model.tokenizer]
        .into_iter()
        .chain(&model.layers)
        .map(|digest| store.blob_size(digest).unwrap())
        .sum();
    assert_eq!(report.bytes_checked, expected_bytes);
}

#[test]
fn corrupt_blob_is_reported() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer one", b"layer two"]);
    let damaged = &model.layers[1];
    flip_first_byte(&store.blob_path(damaged));

    let report = store.fsck().unwrap();

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        matches!(&report.problems[0], FsckProblem::Corrupt { digest, .. } if digest == damaged)
    );
    assert!(report.problems[0].to_string().contains(damaged.as_str()));
}

#[test]
fn missing_blob_is_reported() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer one", b"layer two"]);
    let removed = &model.layers[0];
    fs::remove_file(store.blob_path(removed)).unwrap();

    let report = store.fsck().unwrap();

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(matches!(problem, FsckProblem::Missing { digest, .. } if digest == removed));
    assert!(problem.to_string().contains(removed.as_str()), "{problem}");
    assert!(
        problem.to_string().contains("layer 0 of `m:v`"),
        "{problem}"
    );
}

#[test]
fn truncated_blob_is_reported_with_size() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer one"]);
    let truncated = &model.layers[0];
    fs::write(store.blob_path(truncated), b"layer").unwrap();

    let report = store.fsck().unwrap();

    let wrong_size = report.problems.iter().any(|problem| {
        matches!(problem, FsckProblem::WrongSize { digest, expected: 9, actual: 5, .. }
            if digest == truncated)
    });
    assert!(wrong_size, "{:?}", report.problems);
}

#[test]
fn missing_blob_named_by_config_is_reported() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer"]);
    fs::remove_file(store.blob_path(&model.tokenizer)).unwrap();

    let report = store.fsck().unwrap();

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .to_string()
            .contains(model.tokenizer.as_str())
    );
}

#[test]
fn missing_manifest_is_reported_once() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer"]);
    fs::remove_file(store.blob_path(&model.manifest.digest)).unwrap();

    let report = store.fsck().unwrap();

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(
        matches!(problem, FsckProblem::Missing { digest, .. } if *digest == model.manifest.digest)
    );
}

#[test]
fn leftover_tmp_file_is_noted_and_collected() {
    let (_dir, store) = temp_store();
    common::save_tagged(&store, "m:v", &[b"layer"]);
    let leftover = store.root().join("tmp/blob-00000000deadbeef");
    fs::write(&leftover, b"half a blob").unwrap();

    let report = store.fsck().unwrap();
    let collected = store.gc().unwrap();

    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("blob-00000000deadbeef"))
    );
    assert_eq!(collected.tmp_removed, 1);
    assert_eq!(collected.blobs_removed, 0);
    assert!(!leftover.exists());
}

#[test]
fn locked_tmp_file_is_left_alone() {
    let (_dir, store) = temp_store();
    let in_use = store.root().join("tmp/blob-00000000cafef00d");
    let file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&in_use)
        .unwrap();
    file.lock().unwrap();

    let report = store.fsck().unwrap();
    let collected = store.gc().unwrap();

    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(collected.tmp_removed, 0);
    assert!(in_use.exists());
}

#[test]
fn gc_keeps_reachable_and_removes_unreachable() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer one", b"layer two"]);
    let unreachable = store.put_blob(b"orphan").unwrap();
    let before = store.fsck().unwrap();

    let report = store.gc().unwrap();

    assert_eq!(report.blobs_removed, 1);
    assert_eq!(report.bytes_freed, 6);
    assert!(!store.has_blob(&unreachable));
    let tagged_blobs = [&model.manifest.digest, &model.config, &model.tokenizer];
    for digest in tagged_blobs.into_iter().chain(&model.layers) {
        assert!(store.has_blob(digest), "gc removed reachable blob {digest}");
    }
    assert!(
        before
            .notes
            .iter()
            .any(|note| note.contains("1 unreachable blobs"))
    );
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn gc_after_remove_tag_keeps_shared_blobs() {
    let (_dir, store) = temp_store();
    let old = common::save_tagged(&store, "m:old", &[b"shared", b"only old"]);
    let new = common::save_tagged(&store, "m:new", &[b"shared", b"only new"]);
    store
        .remove_tag(&Reference::parse("m:old").unwrap())
        .unwrap();

    let report = store.gc().unwrap();

    // The old manifest, its config, its tokenizer and its own layer go; the shared layer stays.
    assert_eq!(report.blobs_removed, 4);
    assert!(!store.has_blob(&old.manifest.digest));
    assert!(!store.has_blob(&old.layers[1]));
    assert!(store.has_blob(&new.layers[0]));
    assert_eq!(new.layers[0], old.layers[0]);
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn gc_removes_nothing_when_a_manifest_is_unreadable() {
    let (_dir, store) = temp_store();
    let model = common::save_tagged(&store, "m:v", &[b"layer"]);
    let orphan = store.put_blob(b"orphan").unwrap();
    flip_first_byte(&store.blob_path(&model.manifest.digest));

    let error = store.gc().unwrap_err();

    assert!(matches!(error, StoreError::Unwalkable { .. }), "{error}");
    assert!(
        error.to_string().contains(model.manifest.digest.as_str()),
        "{error}"
    );
    assert!(store.has_blob(&orphan));
    assert!(store.has_blob(&model.layers[0]));
}

#[test]
fn subject_manifest_is_walked_like_a_tagged_one() {
    let (_dir, store) = temp_store();
    let base = common::save_tagged(&store, "base:v1", &[b"base weights"]);
    let adapter = common::put_model_with(
        &store,
        &[b"adapter weights"],
        b"adapter tokenizer",
        json!({}),
        Some(base.manifest.clone()),
    );
    store
        .set_tag(&Reference::parse("adapter:v1").unwrap(), &adapter.manifest)
        .unwrap();
    store
        .remove_tag(&Reference::parse("base:v1").unwrap())
        .unwrap();

    store.gc().unwrap();

    assert!(
        store.has_blob(&base.manifest.digest),
        "the subject manifest was removed"
    );
    assert!(
        store.has_blob(&base.layers[0]),
        "an untagged subject's layers were removed"
    );
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn parent_field_keeps_the_ancestor_readable() {
    let (_dir, store) = temp_store();
    let parent = common::save_tagged(&store, "m:v1", &[b"v1 weights"]);
    let extra = json!({ "parent": parent.manifest.digest });
    let child = common::put_model_with(&store, &[b"v2 weights"], b"tok", extra, None);
    store
        .set_tag(&Reference::parse("m:v2").unwrap(), &child.manifest)
        .unwrap();
    store
        .remove_tag(&Reference::parse("m:v1").unwrap())
        .unwrap();

    store.gc().unwrap();

    assert!(store.has_blob(&parent.manifest.digest));
    assert!(
        store.has_blob(&parent.layers[0]),
        "the ancestor's layers were removed"
    );
    assert!(store.has_blob(&child.manifest.digest));
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn config_digest_fields_keep_blobs() {
    let (_dir, store) = temp_store();
    let adapter_bytes = b"adapter weights named only by the config";
    let adapter = store.put_blob(adapter_bytes).unwrap();
    let absent = Digest::of(b"a digest that names no stored blob");
    let extra = json!({
        "strata.blobs": [{ "mediaType": "application/octet-stream", "digest": adapter, "size": adapter_bytes.len() }],
        "deep": { "list": [{ "digest": "sha256:not-a-digest" }] },
        "history": { "digest": absent },
    });
    let model = common::put_model_with(&store, &[b"w"], b"tok", extra, None);
    store
        .set_tag(&Reference::parse("m:v").unwrap(), &model.manifest)
        .unwrap();

    store.gc().unwrap();
    let report = store.fsck().unwrap();

    assert!(store.has_blob(&adapter));
    assert!(store.has_blob(&model.tokenizer));
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].to_string().contains(absent.as_str()));
}
