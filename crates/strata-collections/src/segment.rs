//! Segments: the points of a collection in groups of up to `segment_points`, each stored as one
//! vectors blob and one payloads blob.
//!
//! A vectors blob is little-endian binary:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `STRATAVS` |
//! | 8 | 4 | format version, `1` (u32) |
//! | 12 | 4 | `dim`, values per vector (u32) |
//! | 16 | 4 | `count`, points in the segment (u32) |
//! | 20 | 4 | `ids_len`, bytes of the id section (u32) |
//! | 24 | 8 × count | index key of each point (u64) |
//! | 24 + 8 × count | 4 × dim × count | the vectors, row after row (f32) |
//! | after the vectors | `ids_len` | each id as a u32 byte length and its UTF-8 bytes |
//!
//! The vectors start at a multiple of 8 bytes, so a mapped blob could be read in place. The blob
//! ends right after the id section. A payloads blob is a JSON array with one object per point,
//! in the same order: `{"id": ID, "payload": {...}}`, with object keys sorted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strata_store::Digest;

use crate::error::{CollectionError, Result};

/// First eight bytes of a vectors blob.
pub const VECTORS_MAGIC: [u8; 8] = *b"STRATAVS";

/// Format version a vectors blob records at [`VERSION_OFFSET`].
pub const VECTORS_VERSION: u32 = 1;

/// Byte offset of the format version.
pub const VERSION_OFFSET: usize = VECTORS_MAGIC.len();
/// Byte offset of `dim`.
pub const DIM_OFFSET: usize = VERSION_OFFSET + 4;
/// Byte offset of `count`.
pub const COUNT_OFFSET: usize = DIM_OFFSET + 4;
/// Byte offset of `ids_len`.
pub const IDS_LEN_OFFSET: usize = COUNT_OFFSET + 4;
/// Length of the header; the keys start here.
pub const HEADER_LEN: usize = IDS_LEN_OFFSET + 4;

/// The points of one segment, in slot order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Segment {
    /// Index key of each point.
    pub(crate) keys: Vec<u64>,
    /// Id of each point.
    pub(crate) ids: Vec<String>,
    /// The vectors, `dim` values per point, row after row.
    pub(crate) vectors: Vec<f32>,
    /// Payload of each point.
    pub(crate) payloads: Vec<Map<String, Value>>,
}

/// One element of a payloads blob.
#[derive(Serialize, Deserialize)]
struct PayloadEntry {
    id: String,
    payload: Map<String, Value>,
}

impl Segment {
    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns the vector in `slot`.
    pub(crate) fn vector(&self, slot: usize, dim: usize) -> &[f32] {
        &self.vectors[slot * dim..(slot + 1) * dim]
    }

    /// Appends a point.
    pub(crate) fn push(
        &mut self,
        key: u64,
        id: String,
        vector: &[f32],
        payload: Map<String, Value>,
    ) {
        self.keys.push(key);
        self.ids.push(id);
        self.vectors.extend_from_slice(vector);
        self.payloads.push(payload);
    }

    /// Replaces the vector and payload in `slot`, keeping its key and id.
    pub(crate) fn replace(&mut self, slot: usize, vector: &[f32], payload: Map<String, Value>) {
        let dim = vector.len();
        self.vectors[slot * dim..(slot + 1) * dim].copy_from_slice(vector);
        self.payloads[slot] = payload;
    }

    /// Removes the points whose slot `remove` marks, keeping the order of the rest.
    pub(crate) fn retain_slots(&mut self, dim: usize, remove: &[bool]) {
        let mut remaining = Segment::default();
        for (slot, &removed) in remove.iter().enumerate() {
            if removed {
                continue;
            }
            let payload = std::mem::take(&mut self.payloads[slot]);
            let id = std::mem::take(&mut self.ids[slot]);
            remaining.push(self.keys[slot], id, self.vector(slot, dim), payload);
        }
        *self = remaining;
    }

    /// Encodes the vectors blob.
    pub(crate) fn encode_vectors(&self, dim: usize) -> Vec<u8> {
        let ids_len: usize = self.ids.iter().map(|id| 4 + id.len()).sum();
        let total = HEADER_LEN + 8 * self.len() + 4 * self.vectors.len() + ids_len;
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(&VECTORS_MAGIC);
        bytes.extend_from_slice(&VECTORS_VERSION.to_le_bytes());
        bytes.extend_from_slice(&to_u32(dim).to_le_bytes());
        bytes.extend_from_slice(&to_u32(self.len()).to_le_bytes());
        bytes.extend_from_slice(&to_u32(ids_len).to_le_bytes());

        for key in &self.keys {
            bytes.extend_from_slice(&key.to_le_bytes());
        }
        for value in &self.vectors {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        for id in &self.ids {
            bytes.extend_from_slice(&to_u32(id.len()).to_le_bytes());
            bytes.extend_from_slice(id.as_bytes());
        }
        debug_assert_eq!(bytes.len(), total);
        bytes
    }

    /// Encodes the payloads blob as compact JSON.
    pub(crate) fn encode_payloads(&self) -> Vec<u8> {
        let entries: Vec<PayloadEntry> = self
            .ids
            .iter()
            .zip(&self.payloads)
            .map(|(id, payload)| PayloadEntry {
                id: id.clone(),
                payload: payload.clone(),
            })
            .collect();
        // Strings, maps and JSON values always serialize.
        serde_json::to_vec(&entries).expect("payload entries always serialize")
    }

    /// Decodes a segment from its two blobs, checking that they describe the same points.
    pub(crate) fn decode(
        vectors: (&Digest, &[u8]),
        payloads: (&Digest, &[u8]),
        dim: usize,
    ) -> Result<Segment> {
        let mut segment = decode_vectors(vectors.0, vectors.1, dim)?;
        let corrupt = |reason: String| CollectionError::Corrupt {
            digest: payloads.0.clone(),
            reason,
        };
        let entries: Vec<PayloadEntry> = serde_json::from_slice(payloads.1).map_err(|error| {
            corrupt(format!("expected a JSON array of payload entries: {error}"))
        })?;
        if entries.len() != segment.len() {
            let reason = format!(
                "it has {} payloads but the vectors blob {} has {} points",
                entries.len(),
                vectors.0,
                segment.len()
            );
            return Err(corrupt(reason));
        }
        for (slot, entry) in entries.into_iter().enumerate() {
            if entry.id != segment.ids[slot] {
                let reason = format!(
                    "payload {slot} is for id `{}` but the vectors blob has `{}` there",
                    entry.id, segment.ids[slot]
                );
                return Err(corrupt(reason));
            }
            segment.payloads.push(entry.payload);
        }
        Ok(segment)
    }
}

/// Decodes a vectors blob; the payloads are left empty.
pub(crate) fn decode_vectors(digest: &Digest, bytes: &[u8], dim: usize) -> Result<Segment> {
    let corrupt = |reason: String| CollectionError::Corrupt {
        digest: digest.clone(),
        reason,
    };
    let header = Header::read(bytes).map_err(corrupt)?;
    if header.dim != dim {
        let reason = format!("it has dimension {}, expected {dim}", header.dim);
        return Err(corrupt(reason));
    }
    let vectors_offset = HEADER_LEN + 8 * header.count;
    let ids_offset = vectors_offset + 4 * dim * header.count;
    let expected_len = ids_offset + header.ids_len;
    if bytes.len() != expected_len {
        let reason = format!(
            "it has {} bytes, but its header describes {expected_len}",
            bytes.len()
        );
        return Err(corrupt(reason));
    }

    let keys = bytes[HEADER_LEN..vectors_offset]
        .chunks_exact(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("chunks of 8 bytes")))
        .collect();
    let vectors = bytes[vectors_offset..ids_offset]
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("chunks of 4 bytes")))
        .collect();
    let ids = read_ids(&bytes[ids_offset..], header.count).map_err(corrupt)?;
    Ok(Segment {
        keys,
        ids,
        vectors,
        payloads: Vec::with_capacity(header.count),
    })
}

/// The fixed-size header of a vectors blob.
struct Header {
    dim: usize,
    count: usize,
    ids_len: usize,
}

impl Header {
    fn read(bytes: &[u8]) -> Result<Header, String> {
        if bytes.len() < HEADER_LEN {
            let found = bytes.len();
            return Err(format!(
                "it has {found} bytes, fewer than the {HEADER_LEN}-byte header"
            ));
        }
        if bytes[..VERSION_OFFSET] != VECTORS_MAGIC {
            return Err("it does not start with the magic `STRATAVS`".to_string());
        }
        let version = read_u32(bytes, VERSION_OFFSET);
        if version != VECTORS_VERSION {
            return Err(format!(
                "format version is {version}, expected {VECTORS_VERSION}"
            ));
        }
        Ok(Header {
            dim: read_u32(bytes, DIM_OFFSET) as usize,
            count: read_u32(bytes, COUNT_OFFSET) as usize,
            ids_len: read_u32(bytes, IDS_LEN_OFFSET) as usize,
        })
    }
}

/// Reads `count` length-prefixed UTF-8 ids that must fill `bytes` exactly.
fn read_ids(bytes: &[u8], count: usize) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(count);
    let mut offset = 0;
    for index in 0..count {
        if bytes.len() < offset + 4 {
            return Err(format!(
                "the id section ends inside the length of id {index}"
            ));
        }
        let len = read_u32(bytes, offset) as usize;
        offset += 4;
        let Some(raw) = bytes.get(offset..offset + len) else {
            return Err(format!("the id section ends inside id {index}"));
        };
        let id = std::str::from_utf8(raw).map_err(|_| format!("id {index} is not UTF-8"))?;
        ids.push(id.to_string());
        offset += len;
    }
    if offset != bytes.len() {
        return Err(format!("{} bytes follow the last id", bytes.len() - offset));
    }
    Ok(ids)
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

/// Converts a length that the spec limits keep far below 4 GiB.
fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("segment sizes are limited far below u32::MAX")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Segment {
        let mut segment = Segment::default();
        let payload = json!({"kind": "a", "year": 2020})
            .as_object()
            .unwrap()
            .clone();
        segment.push(7, "first".to_string(), &[1.0, -2.5], payload);
        segment.push(9, "second é".to_string(), &[0.25, 3.0], Map::new());
        segment
    }

    fn digest() -> Digest {
        Digest::of(b"test")
    }

    #[test]
    fn header_offsets_are_pinned() {
        assert_eq!((VERSION_OFFSET, DIM_OFFSET, COUNT_OFFSET), (8, 12, 16));
        assert_eq!((IDS_LEN_OFFSET, HEADER_LEN), (20, 24));
        assert_eq!(HEADER_LEN % 8, 0);
    }

    #[test]
    fn vectors_blob_layout_matches_table() {
        let bytes = sample().encode_vectors(2);
        assert_eq!(&bytes[..8], b"STRATAVS");
        assert_eq!(read_u32(&bytes, VERSION_OFFSET), 1);
        assert_eq!(read_u32(&bytes, DIM_OFFSET), 2);
        assert_eq!(read_u32(&bytes, COUNT_OFFSET), 2);
        let ids_len = 4 + "first".len() + 4 + "second é".len();
        assert_eq!(read_u32(&bytes, IDS_LEN_OFFSET) as usize, ids_len);
        assert_eq!(bytes[24..32], 7u64.to_le_bytes());
        assert_eq!(bytes[40..44], 1.0f32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 16 + ids_len);
    }

    #[test]
    fn segment_round_trips() {
        let segment = sample();
        let vectors = segment.encode_vectors(2);
        let payloads = segment.encode_payloads();
        let decoded = Segment::decode((&digest(), &vectors), (&digest(), &payloads), 2).unwrap();
        assert_eq!(decoded, segment);
    }

    #[test]
    fn damaged_vectors_blob_is_rejected() {
        let bytes = sample().encode_vectors(2);
        let cases: [(&[u8], &str); 3] = [
            (&bytes[..10], "fewer than the 24-byte header"),
            (&bytes[..bytes.len() - 1], "header describes"),
            (&[b"STRATAVX", &bytes[8..]].concat(), "magic"),
        ];
        for (damaged, reason) in cases {
            let error = decode_vectors(&digest(), damaged, 2)
                .unwrap_err()
                .to_string();
            assert!(error.contains(reason), "{error}");
        }
        let error = decode_vectors(&digest(), &bytes, 3)
            .unwrap_err()
            .to_string();
        assert!(error.contains("dimension 2, expected 3"), "{error}");
    }

    #[test]
    fn payloads_must_match_ids() {
        let segment = sample();
        let vectors = segment.encode_vectors(2);
        let mut other = segment.clone();
        other.ids[1] = "third".to_string();
        let payloads = other.encode_payloads();
        let error = Segment::decode((&digest(), &vectors), (&digest(), &payloads), 2)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`third`"), "{error}");
    }

    #[test]
    fn retain_keeps_order() {
        let mut segment = sample();
        segment.retain_slots(2, &[true, false]);
        assert_eq!(segment.keys, vec![9]);
        assert_eq!(segment.ids, vec!["second é".to_string()]);
        assert_eq!(segment.vectors, vec![0.25, 3.0]);
    }
}
