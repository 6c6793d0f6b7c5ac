//! Reachability: the blobs that `index.json` keeps alive, shared by `fsck` and `gc`.
//!
//! From every `index.json` entry the walk reaches the manifest, its config, its layers and its
//! subject. When the config's media type ends in `+json`, every string under a JSON key named
//! `digest`, anywhere in the config document, that parses as a digest is reached too. Two links
//! are walked as manifests in turn. The subject is one, so a session snapshot keeps its model.
//! Every string under a key named `parent` is the other, so a version or snapshot keeps its
//! ancestors and a rollback or an older session state stays readable. Each manifest is walked
//! once.

use std::collections::HashSet;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::oci::{Descriptor, ImageIndex, Manifest};
use crate::store::Store;

/// One use of a blob found by the walk.
#[derive(Debug)]
pub(crate) struct BlobUse {
    pub(crate) digest: Digest,
    /// Size in bytes the referrer declares; config `digest` fields may come without one.
    pub(crate) size: Option<u64>,
    /// Use of the blob in messages, for example "layer 3 of `a:latest`".
    pub(crate) role: String,
}

/// A manifest or config whose contents the walk could not read.
#[derive(Debug)]
pub(crate) struct WalkFailure {
    pub(crate) digest: Digest,
    /// Ref name of the index entry the walk started from, or `-` without one.
    pub(crate) root: String,
    pub(crate) error: StoreError,
}

/// Everything one walk found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub(crate) uses: Vec<BlobUse>,
    pub(crate) failures: Vec<WalkFailure>,
    /// Manifests already walked.
    walked: HashSet<Digest>,
    /// Manifests reached through a subject or a `parent` field, still to walk, with their root.
    pending: Vec<(Digest, String)>,
}

impl Store {
    /// Walks every `index.json` entry; only an unreadable index is an error.
    pub(crate) fn walk(&self) -> Result<Walk, StoreError> {
        let index = self.read_index()?;
        let mut walk = Walk::default();
        for entry in &index.manifests {
            let root = ImageIndex::ref_name(entry).unwrap_or("-").to_string();
            walk.add(entry, format!("manifest of `{root}`"));
            self.walk_digest(&entry.digest, &root, &mut walk);
            while let Some((digest, root)) = walk.pending.pop() {
                self.walk_digest(&digest, &root, &mut walk);
            }
        }
        Ok(walk)
    }

    fn walk_digest(&self, digest: &Digest, root: &str, walk: &mut Walk) {
        if !walk.walked.insert(digest.clone()) {
            return;
        }
        match self.read_manifest(digest) {
            Ok(manifest) => self.walk_manifest(&manifest, root, walk),
            Err(error) => walk.fail(digest, root, error),
        }
    }

    fn walk_manifest(&self, manifest: &Manifest, root: &str, walk: &mut Walk) {
        walk.add(&manifest.config, format!("config of `{root}`"));
        for (number, layer) in manifest.layers.iter().enumerate() {
            walk.add(layer, format!("layer {number} of `{root}`"));
        }
        if let Some(subject) = &manifest.subject {
            walk.add(subject, format!("subject of `{root}`"));
            walk.pending
                .push((subject.digest.clone(), root.to_string()));
        }
        if !manifest.config.media_type.ends_with("+json") {
            return;
        }
        match self.read_json_blob(&manifest.config.digest) {
            Ok(config) => {
                let role = format!("blob named by the config of `{root}`");
                collect_digest_fields(&config, &role, &mut walk.uses);
                for parent in parent_fields(&config) {
                    let role = format!("parent named by the config of `{root}`");
                    walk.uses.push(BlobUse {
                        digest: parent.clone(),
                        size: None,
                        role,
                    });
                    walk.pending.push((parent, root.to_string()));
                }
            }
            Err(error) => walk.fail(&manifest.config.digest, root, error),
        }
    }

    fn read_json_blob(&self, digest: &Digest) -> Result<Value, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(digest),
            expected: "a JSON config document",
            source,
        })
    }
}

impl Walk {
    fn add(&mut self, descriptor: &Descriptor, role: String) {
        let digest = descriptor.digest.clone();
        self.uses.push(BlobUse {
            digest,
            size: Some(descriptor.size),
            role,
        });
    }

    fn fail(&mut self, digest: &Digest, root: &str, error: StoreError) {
        let (digest, root) = (digest.clone(), root.to_string());
        self.failures.push(WalkFailure {
            digest,
            root,
            error,
        });
    }
}

/// Adds every string under a `digest` key of `value` that parses as a digest, with the number
/// under a `size` key of the same object when there is one.
fn collect_digest_fields(value: &Value, role: &str, uses: &mut Vec<BlobUse>) {
    match value {
        Value::Object(object) => {
            let digest = object.get("digest").and_then(Value::as_str);
            if let Some(digest) = digest.and_then(|text| Digest::parse(text).ok()) {
                let size = object.get("size").and_then(Value::as_u64);
                uses.push(BlobUse {
                    digest,
                    size,
                    role: role.to_string(),
                });
            }
            for child in object.values() {
                collect_digest_fields(child, role, uses);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_digest_fields(item, role, uses);
            }
        }
        _ => {}
    }
}

/// Returns every string under a `parent` key of `value` that parses as a digest.
fn parent_fields(value: &Value) -> Vec<Digest> {
    let mut parents = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(object) => {
                let parent = object.get("parent").and_then(Value::as_str);
                if let Some(digest) = parent.and_then(|text| Digest::parse(text).ok()) {
                    parents.push(digest);
                }
                stack.extend(object.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    parents
}
