//! A collection version loaded for searching: every vector in memory, for exact search and for
//! scoring, and the HNSW index.

use std::collections::HashMap;
use std::fmt;

use strata_store::{Digest, Store};

use crate::error::{CollectionError, Result};
use crate::index::HnswIndex;
use crate::metric::{Metric, norm};
use crate::segment::decode_vectors;
use crate::version::Version;

/// The searchable state of one version. Rows are the points in segment order.
pub(crate) struct Loaded {
    /// The version's manifest digest.
    pub(crate) digest: Digest,
    /// The distance metric.
    pub(crate) metric: Metric,
    dim: usize,
    keys: Vec<u64>,
    ids: Vec<String>,
    vectors: Vec<f32>,
    norms: Vec<f32>,
    rows: HashMap<u64, usize>,
    /// The HNSW index.
    pub(crate) index: HnswIndex,
}

impl Loaded {
    /// Reads every vectors blob and the index of `version`.
    pub(crate) fn load(store: &Store, version: &Version) -> Result<Loaded> {
        let dim = version.config.dim;
        let mut loaded = Loaded {
            digest: version.digest().clone(),
            metric: version.config.metric,
            dim,
            keys: Vec::with_capacity(version.config.points),
            ids: Vec::with_capacity(version.config.points),
            vectors: Vec::with_capacity(version.config.points * dim),
            norms: Vec::with_capacity(version.config.points),
            rows: HashMap::with_capacity(version.config.points),
            index: version.read_index(store)?,
        };
        for segment in &version.segments {
            let bytes = store.read_blob(&segment.vectors.digest)?;
            let decoded = decode_vectors(&segment.vectors.digest, &bytes, dim)?;
            loaded.keys.extend_from_slice(&decoded.keys);
            loaded.ids.extend(decoded.ids);
            loaded.vectors.extend_from_slice(&decoded.vectors);
        }
        if loaded.index.len() != loaded.keys.len() {
            return Err(CollectionError::InvalidVersion {
                digest: loaded.digest,
                reason: format!(
                    "the index has {} points but the segments have {}",
                    loaded.index.len(),
                    loaded.keys.len()
                ),
            });
        }
        loaded.norms = loaded.vectors.chunks_exact(dim).map(norm).collect();
        loaded.rows = loaded
            .keys
            .iter()
            .enumerate()
            .map(|(row, &key)| (key, row))
            .collect();
        tracing::debug!(digest = %loaded.digest, points = loaded.keys.len(), "loaded collection");
        Ok(loaded)
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns the key of `row`.
    pub(crate) fn key(&self, row: usize) -> u64 {
        self.keys[row]
    }

    /// Returns the id of `row`.
    pub(crate) fn id(&self, row: usize) -> &str {
        &self.ids[row]
    }

    /// Returns the row of `key`, when the version has it.
    pub(crate) fn row(&self, key: u64) -> Option<usize> {
        self.rows.get(&key).copied()
    }

    /// Returns the score of `row` against `query`, whose norm is `query_norm`.
    pub(crate) fn score(&self, query: &[f32], query_norm: f32, row: usize) -> f32 {
        let vector = &self.vectors[row * self.dim..(row + 1) * self.dim];
        self.metric
            .score(query, query_norm, vector, self.norms[row])
    }
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("digest", &self.digest)
            .field("points", &self.keys.len())
            .field("index", &self.index)
            .finish()
    }
}
