//! Collection versions in the store: reading a manifest into its config, segments and index,
//! and writing a new one.
//!
//! A version's manifest has artifact type
//! [`COLLECTION_ARTIFACT_TYPE`](crate::media::COLLECTION_ARTIFACT_TYPE), the config document as
//! its config, and as layers each segment's vectors blob then payloads blob, in ascending
//! segment serial, then the HNSW index last. Blobs are stored before the manifest that names
//! them, and the caller moves the tag after both.

use std::collections::BTreeMap;

use strata_store::{Descriptor, Digest, Manifest, Store, StoreError};

use crate::config::CollectionConfig;
use crate::error::{CollectionError, Result};
use crate::index::HnswIndex;
use crate::media::{
    COLLECTION_ARTIFACT_TYPE, COLLECTION_CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE, PAYLOADS_MEDIA_TYPE,
    POINTS_ANNOTATION, SEGMENT_ANNOTATION, VECTORS_MEDIA_TYPE,
};
use crate::name::CollectionName;
use crate::segment::Segment;

/// The two layers of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentRef {
    /// Serial number, unique within the collection and never reused.
    pub(crate) serial: u32,
    /// Number of points.
    pub(crate) points: usize,
    /// The vectors blob.
    pub(crate) vectors: Descriptor,
    /// The payloads blob.
    pub(crate) payloads: Descriptor,
}

/// One stored version of a collection.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    /// The manifest's descriptor.
    pub(crate) descriptor: Descriptor,
    /// The config document.
    pub(crate) config: CollectionConfig,
    /// The segments, by ascending serial.
    pub(crate) segments: Vec<SegmentRef>,
    /// The HNSW index blob.
    pub(crate) index: Descriptor,
}

impl Version {
    /// Returns the manifest digest.
    pub(crate) fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// Reads the version whose manifest `descriptor` names, checking its layout.
    pub(crate) fn read(store: &Store, descriptor: Descriptor) -> Result<Version> {
        let digest = descriptor.digest.clone();
        let manifest = store.read_manifest(&digest)?;
        let invalid = |reason: String| CollectionError::InvalidVersion {
            digest: digest.clone(),
            reason,
        };
        if manifest.artifact_type.as_deref() != Some(COLLECTION_ARTIFACT_TYPE) {
            let found = manifest.artifact_type.as_deref().unwrap_or("none");
            let reason =
                format!("artifactType is `{found}`, expected `{COLLECTION_ARTIFACT_TYPE}`");
            return Err(invalid(reason));
        }
        let config = read_config(store, &manifest.config)?;
        let (segments, index) = split_layers(&manifest.layers).map_err(invalid)?;
        let stored: usize = segments.iter().map(|segment| segment.points).sum();
        if stored != config.points {
            let reason = format!(
                "segments contain {stored} points, config says {}",
                config.points
            );
            return Err(invalid(reason));
        }
        Ok(Version {
            descriptor,
            config,
            segments,
            index,
        })
    }

    /// Reads and decodes one segment's blobs.
    pub(crate) fn read_segment(&self, store: &Store, segment: &SegmentRef) -> Result<Segment> {
        let vectors = store.read_blob(&segment.vectors.digest)?;
        let payloads = store.read_blob(&segment.payloads.digest)?;
        Segment::decode(
            (&segment.vectors.digest, &vectors),
            (&segment.payloads.digest, &payloads),
            self.config.dim,
        )
    }

    /// Reads the HNSW index blob.
    pub(crate) fn read_index(&self, store: &Store) -> Result<HnswIndex> {
        let bytes = store.read_blob(&self.index.digest)?;
        HnswIndex::from_bytes(&bytes, self.config.dim, self.config.index)
    }

    /// Returns the segment with `serial`.
    pub(crate) fn segment(&self, serial: u32) -> Option<&SegmentRef> {
        self.segments
            .iter()
            .find(|segment| segment.serial == serial)
    }
}

/// Returns the manifest descriptor the collection's tag points to, or `None` when there is no
/// such tag.
pub(crate) fn current(store: &Store, name: &CollectionName) -> Result<Option<Descriptor>> {
    match store.resolve(&name.reference()) {
        Ok(descriptor) => Ok(Some(descriptor)),
        Err(StoreError::TagNotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Reads the version the collection's tag points to.
pub(crate) fn read_current(store: &Store, name: &CollectionName) -> Result<Version> {
    let descriptor = current(store, name)?.ok_or_else(|| CollectionError::NotFound {
        name: name.to_string(),
    })?;
    Version::read(store, descriptor)
}

/// Reads and parses a config blob.
pub(crate) fn read_config(store: &Store, descriptor: &Descriptor) -> Result<CollectionConfig> {
    if descriptor.media_type != COLLECTION_CONFIG_MEDIA_TYPE {
        return Err(CollectionError::Corrupt {
            digest: descriptor.digest.clone(),
            reason: format!(
                "config media type is `{}`, expected `{COLLECTION_CONFIG_MEDIA_TYPE}`",
                descriptor.media_type
            ),
        });
    }
    let bytes = store.read_blob(&descriptor.digest)?;
    serde_json::from_slice(&bytes).map_err(|source| CollectionError::Json {
        document: format!("collection config {}", descriptor.digest),
        source,
    })
}

/// Stores a segment's two blobs and returns their layer descriptors.
pub(crate) fn store_segment(
    store: &Store,
    serial: u32,
    segment: &Segment,
    dim: usize,
) -> Result<SegmentRef> {
    let annotations = BTreeMap::from([
        (SEGMENT_ANNOTATION.to_string(), serial.to_string()),
        (POINTS_ANNOTATION.to_string(), segment.len().to_string()),
    ]);
    let layer = |media_type: &str, bytes: Vec<u8>| -> Result<Descriptor> {
        let digest = store.put_blob(&bytes)?;
        let mut descriptor = Descriptor::new(media_type, digest, bytes.len() as u64);
        descriptor.annotations = annotations.clone();
        Ok(descriptor)
    };
    let vectors = layer(VECTORS_MEDIA_TYPE, segment.encode_vectors(dim))?;
    let payloads = layer(PAYLOADS_MEDIA_TYPE, segment.encode_payloads())?;
    Ok(SegmentRef {
        serial,
        points: segment.len(),
        vectors,
        payloads,
    })
}

/// Stores the index blob, the config and the manifest of a new version, and returns the
/// manifest's descriptor. The tag is left for the caller to move.
pub(crate) fn store_version(
    store: &Store,
    config: &CollectionConfig,
    segments: &[SegmentRef],
    index: &HnswIndex,
) -> Result<Descriptor> {
    let index_bytes = index.to_bytes()?;
    let index_digest = store.put_blob(&index_bytes)?;
    let index = Descriptor::new(INDEX_MEDIA_TYPE, index_digest, index_bytes.len() as u64);

    let config_bytes = config.to_json_bytes();
    let config_digest = store.put_blob(&config_bytes)?;
    let config = Descriptor::new(
        COLLECTION_CONFIG_MEDIA_TYPE,
        config_digest,
        config_bytes.len() as u64,
    );

    let mut layers = Vec::with_capacity(2 * segments.len() + 1);
    for segment in segments {
        layers.push(segment.vectors.clone());
        layers.push(segment.payloads.clone());
    }
    layers.push(index);
    let mut manifest = Manifest::new(config, layers);
    manifest.artifact_type = Some(COLLECTION_ARTIFACT_TYPE.to_string());
    Ok(store.put_manifest(&manifest)?)
}

/// Splits manifest layers into segments and the index, checking their order.
fn split_layers(layers: &[Descriptor]) -> Result<(Vec<SegmentRef>, Descriptor), String> {
    let Some((index, segment_layers)) = layers.split_last() else {
        return Err("it has no layers, expected at least the index".to_string());
    };
    if index.media_type != INDEX_MEDIA_TYPE {
        let found = &index.media_type;
        return Err(format!(
            "last layer is `{found}`, expected `{INDEX_MEDIA_TYPE}`"
        ));
    }
    if segment_layers.len() % 2 != 0 {
        return Err("segment layers do not come in vectors and payloads pairs".to_string());
    }

    let mut segments: Vec<SegmentRef> = Vec::with_capacity(segment_layers.len() / 2);
    for pair in segment_layers.chunks_exact(2) {
        let segment = segment_of(&pair[0], &pair[1])?;
        if let Some(previous) = segments.last()
            && previous.serial >= segment.serial
        {
            return Err(format!(
                "segment {} follows segment {}, expected ascending serials",
                segment.serial, previous.serial
            ));
        }
        segments.push(segment);
    }
    Ok((segments, index.clone()))
}

/// Builds a segment from its vectors and payloads layers.
fn segment_of(vectors: &Descriptor, payloads: &Descriptor) -> Result<SegmentRef, String> {
    for (layer, expected) in [
        (vectors, VECTORS_MEDIA_TYPE),
        (payloads, PAYLOADS_MEDIA_TYPE),
    ] {
        if layer.media_type != expected {
            let found = &layer.media_type;
            return Err(format!(
                "layer {} is `{found}`, expected `{expected}`",
                layer.digest
            ));
        }
    }
    let serial: u32 = annotation(vectors, SEGMENT_ANNOTATION)?;
    let points: usize = annotation(vectors, POINTS_ANNOTATION)?;
    let payload_serial: u32 = annotation(payloads, SEGMENT_ANNOTATION)?;
    if payload_serial != serial {
        return Err(format!(
            "payloads layer of segment {serial} is annotated as segment {payload_serial}"
        ));
    }
    Ok(SegmentRef {
        serial,
        points,
        vectors: vectors.clone(),
        payloads: payloads.clone(),
    })
}

fn annotation<T: std::str::FromStr>(layer: &Descriptor, key: &str) -> Result<T, String> {
    let text = layer
        .annotations
        .get(key)
        .ok_or_else(|| format!("layer {} has no `{key}` annotation", layer.digest))?;
    text.parse().map_err(|_| {
        format!(
            "layer {} has `{key}` = `{text}`, expected a number",
            layer.digest
        )
    })
}
