//! The OCI image-spec documents the store reads and writes: descriptors, manifests and the image
//! index.
//!
//! Field names are the spec's camelCase ones. Optional fields are left out when `None` or empty,
//! and maps are `BTreeMap`s, so serializing the same value always gives the same bytes and
//! therefore the same digest.
//!
//! NOTE: descriptor fields the store does not model (`urls`, `data`, `platform`) are dropped when
//! a document is read and written back. strata writes none of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index, the type of `index.json`.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation on an `index.json` entry that carries its tag, written `name:tag`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The `schemaVersion` of every manifest and index.
pub const SCHEMA_VERSION: u32 = 2;

/// A pointer to a blob: its media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the blob.
    pub media_type: String,
    /// sha256 of the blob.
    pub digest: Digest,
    /// Length of the blob in bytes.
    pub size: u64,
    /// Free-form key-value metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Type of the artifact a manifest descriptor points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Builds a descriptor with no annotations and no artifact type.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }
}

/// An OCI image manifest: a config blob, the layers, and an optional subject.
///
/// `layers` is always serialized, even when empty, because the image spec requires the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always [`MANIFEST_MEDIA_TYPE`].
    pub media_type: String,
    /// Type of the artifact, for example a model manifest type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, in order.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Another manifest this one refers to, for example the base of an adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Free-form key-value metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Builds a manifest of `config` and `layers` with no artifact type, subject or annotations.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Serializes the manifest as compact JSON, the bytes its digest is taken over.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing plain structs, strings and BTreeMaps into memory cannot fail.
        serde_json::to_vec(self).expect("a manifest always serializes")
    }
}

/// An OCI image index; the store's `index.json` is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always [`INDEX_MEDIA_TYPE`] for files the store writes; optional in the spec.
    #[serde(default = "index_media_type")]
    pub media_type: String,
    /// One descriptor per tagged manifest, sorted by [`REF_NAME_ANNOTATION`].
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Free-form key-value metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Default for ImageIndex {
    fn default() -> ImageIndex {
        ImageIndex {
            schema_version: SCHEMA_VERSION,
            media_type: INDEX_MEDIA_TYPE.to_string(),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl ImageIndex {
    /// Serializes the index as indented JSON with a final newline, so it diffs well.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("an index always serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Returns the ref name annotation of an entry, if it has one.
    pub fn ref_name(entry: &Descriptor) -> Option<&str> {
        entry
            .annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

fn index_media_type() -> String {
    INDEX_MEDIA_TYPE.to_string()
}
