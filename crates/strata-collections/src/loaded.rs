//! A collection version loaded for searching: every vector in memory, for exact search and for
//! scoring, the ids and payloads with an index of payload fields for filters, and the HNSW
//! index. A version never changes, so one loaded state serves every search of that version,
//! from any number of threads, without the payload database or a lock.

use std::collections::HashMap;
use std::fmt;

use strata_store::{Digest, Store};

use crate::config::CollectionConfig;
use crate::error::{CollectionError, Result};
use crate::index::HnswIndex;
use crate::metric::{Metric, norm};
use crate::payload_index::PayloadIndex;
use crate::version::Version;

/// A key → row table is a plain array while the largest key is below this many times the
/// number of points (plus a margin), and a hash map otherwise.
const DENSE_KEYS_FACTOR: u64 = 4;
const DENSE_KEYS_MARGIN: u64 = 1024;

/// The searchable state of one version. Rows are the points in segment order.
pub(crate) struct Loaded {
    /// The version's manifest digest.
    pub(crate) digest: Digest,
    /// The version's config.
    pub(crate) config: CollectionConfig,
    /// The distance metric.
    pub(crate) metric: Metric,
    dim: usize,
    keys: Vec<u64>,
    ids: Vec<String>,
    vectors: Vec<f32>,
    norms: Vec<f32>,
    rows: KeyRows,
    /// The payloads and their field index.
    pub(crate) payloads: PayloadIndex,
    /// The HNSW index.
    pub(crate) index: HnswIndex,
}

/// The row of each index key.
enum KeyRows {
    /// `rows[key]`, or `u32::MAX` for a key no point has.
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u32>),
}

impl Loaded {
    /// Reads every segment and the index of `version`.
    pub(crate) fn load(store: &Store, version: &Version) -> Result<Loaded> {
        let config = version.config.clone();
        let dim = config.dim;
        let mut loaded = Loaded {
            digest: version.digest().clone(),
            metric: config.metric,
            dim,
            keys: Vec::with_capacity(config.points),
            ids: Vec::with_capacity(config.points),
            vectors: Vec::with_capacity(config.points * dim),
            norms: Vec::with_capacity(config.points),
            rows: KeyRows::Sparse(HashMap::new()),
            payloads: PayloadIndex::default(),
            index: version.read_index(store)?,
            config,
        };
        for layers in &version.segments {
            let segment = version.read_segment(store, layers)?;
            loaded.keys.extend_from_slice(&segment.keys);
            loaded.ids.extend(segment.ids);
            loaded.vectors.extend_from_slice(&segment.vectors);
            segment
                .payloads
                .iter()
                .for_each(|p| loaded.payloads.push(p));
        }
        loaded.payloads.finish();
        loaded.check_index_size()?;
        loaded.norms = loaded.vectors.chunks_exact(dim).map(norm).collect();
        loaded.rows = KeyRows::new(&loaded.keys);
        tracing::debug!(digest = %loaded.digest, points = loaded.keys.len(), "loaded collection");
        Ok(loaded)
    }

    fn check_index_size(&self) -> Result<()> {
        if self.index.len() == self.keys.len() {
            return Ok(());
        }
        Err(CollectionError::InvalidVersion {
            digest: self.digest.clone(),
            reason: format!(
                "the index has {} points but the segments have {}",
                self.index.len(),
                self.keys.len()
            ),
        })
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
        self.rows.get(key)
    }

    /// Returns the score of `row` against `query`, whose norm is `query_norm`.
    pub(crate) fn score(&self, query: &[f32], query_norm: f32, row: usize) -> f32 {
        let vector = &self.vectors[row * self.dim..(row + 1) * self.dim];
        self.metric
            .score(query, query_norm, vector, self.norms[row])
    }
}

impl KeyRows {
    /// Maps each key of `keys` to its position.
    fn new(keys: &[u64]) -> KeyRows {
        let count = keys.len() as u64;
        let largest = keys.iter().copied().max().unwrap_or(0);
        let row = |position: usize| u32::try_from(position).expect("fewer than 2^32 points");
        if largest < count.saturating_mul(DENSE_KEYS_FACTOR) + DENSE_KEYS_MARGIN {
            let mut rows = vec![u32::MAX; largest as usize + 1];
            for (position, &key) in keys.iter().enumerate() {
                rows[key as usize] = row(position);
            }
            return KeyRows::Dense(rows);
        }
        let pairs = keys.iter().enumerate();
        KeyRows::Sparse(pairs.map(|(position, &key)| (key, row(position))).collect())
    }
}

impl KeyRows {
    /// Returns the row of `key`.
    fn get(&self, key: u64) -> Option<usize> {
        let row = match self {
            KeyRows::Dense(rows) => *usize::try_from(key).ok().and_then(|key| rows.get(key))?,
            KeyRows::Sparse(rows) => *rows.get(&key)?,
        };
        (row != u32::MAX).then_some(row as usize)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rows_find_dense_and_sparse_keys() {
        let dense = KeyRows::new(&[3, 0, 7]);
        assert!(matches!(dense, KeyRows::Dense(_)));
        assert_eq!(dense.get(7), Some(2));
        assert_eq!(dense.get(1), None);
        assert_eq!(dense.get(99), None);

        let sparse = KeyRows::new(&[1 << 40, 5]);
        assert!(matches!(sparse, KeyRows::Sparse(_)));
        assert_eq!(sparse.get(1 << 40), Some(0));
        assert_eq!(sparse.get(6), None);
    }
}
