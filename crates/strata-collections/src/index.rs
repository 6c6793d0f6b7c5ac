//! The HNSW index of a collection version, built and searched with the `usearch` crate and
//! stored as one blob in usearch's own serialization.
//!
//! Points enter the index under their 64-bit key (see `CollectionConfig::next_key`), never
//! under their id. The index keeps f32 copies of the vectors, so the blob is about as large as
//! the vectors blobs together plus the graph.
//!
//! usearch searches with one candidate list size per index, set before the search, and with
//! one of a fixed number of per-thread contexts. A gate admits searches while both fit: any
//! number of searches with the current size, up to the number of contexts, and a search with
//! another size once the running ones are done. Large insertions run on several threads.

use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use usearch::{Index, IndexOptions, ScalarKind};

use crate::config::IndexSettings;
use crate::error::{CollectionError, Result};
use crate::metric::Metric;

/// Insertions of fewer points than this per thread run on one thread.
const MIN_POINTS_PER_THREAD: usize = 4096;

/// An HNSW index over f32 vectors of one dimension and metric.
pub(crate) struct HnswIndex {
    inner: Index,
    /// Threads that may search or insert at once; usearch has a context for each.
    threads: usize,
    gate: Mutex<Gate>,
    gate_changed: Condvar,
}

/// The searches running, and the candidate list size usearch is set to.
#[derive(Debug, Default)]
struct Gate {
    ef: usize,
    running: usize,
}

/// A search admitted by the gate; dropping it lets the next ones in.
struct Admitted<'a> {
    index: &'a HnswIndex,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.index.gate().running -= 1;
        self.index.gate_changed.notify_all();
    }
}

impl HnswIndex {
    /// Builds an empty index.
    pub(crate) fn new(dim: usize, metric: Metric, settings: IndexSettings) -> Result<HnswIndex> {
        let options = IndexOptions {
            dimensions: dim,
            metric: metric.index_kind(),
            quantization: ScalarKind::F32,
            connectivity: settings.connectivity,
            expansion_add: settings.expansion_add,
            expansion_search: 0,
            multi: false,
        };
        let inner = Index::new(&options).map_err(|e| CollectionError::index("create", e))?;
        HnswIndex::with_contexts(inner)
    }

    /// Wraps a usearch index, giving it a context for each thread this process may run.
    fn with_contexts(inner: Index) -> Result<HnswIndex> {
        let threads = thread::available_parallelism().map_or(1, usize::from);
        inner
            .reserve_capacity_and_threads(inner.capacity().max(inner.size()), threads)
            .map_err(|e| CollectionError::index("reserve", e))?;
        Ok(HnswIndex {
            inner,
            threads,
            gate: Mutex::new(Gate::default()),
            gate_changed: Condvar::new(),
        })
    }

    /// Loads an index from its blob and checks that it fits the collection.
    pub(crate) fn from_bytes(
        bytes: &[u8],
        dim: usize,
        settings: IndexSettings,
    ) -> Result<HnswIndex> {
        // usearch 2.26 takes the graph degree from the graph's header while loading, but it
        // returns before applying it when the graph is empty, so `restore_from_buffer` gave an
        // empty index usearch's default degree. Building the index from the settings first
        // keeps them in that case too.
        let load = |e| CollectionError::index("load", e);
        let metadata = Index::metadata_from_buffer(bytes).map_err(load)?;
        let mut options = IndexOptions::from(metadata);
        options.connectivity = settings.connectivity;
        options.expansion_add = settings.expansion_add;
        let inner = Index::new(&options).map_err(load)?;
        inner.load_from_buffer(bytes).map_err(load)?;
        if inner.dimensions() != dim {
            let message = format!(
                "the blob has dimension {}, expected {dim}",
                inner.dimensions()
            );
            return Err(CollectionError::Index {
                operation: "load",
                message,
            });
        }
        // usearch's file header does not record the insertion setting.
        inner.change_expansion_add(settings.expansion_add);
        HnswIndex::with_contexts(inner)
    }

    /// Serializes the index into the bytes of its blob.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = vec![0; self.inner.serialized_length()];
        self.inner
            .save_to_buffer(&mut bytes)
            .map_err(|e| CollectionError::index("save", e))?;
        Ok(bytes)
    }

    /// Number of live points.
    pub(crate) fn len(&self) -> usize {
        self.inner.size()
    }

    /// Makes room for `additional` more points, which usearch needs before any insertion.
    pub(crate) fn reserve_additional(&self, additional: usize) -> Result<()> {
        let required = self.inner.size() + additional;
        if required <= self.inner.capacity() {
            return Ok(());
        }
        self.inner
            .reserve_capacity_and_threads(required, self.threads)
            .map_err(|e| CollectionError::index("reserve", e))
    }

    /// Inserts every (key, vector) pair, on several threads when there are many. No key may be
    /// in the index. With several threads the graph depends on the order in which they insert,
    /// so two builds of the same points may differ.
    pub(crate) fn add_all(&self, points: &[(u64, Vec<f32>)]) -> Result<()> {
        self.reserve_additional(points.len())?;
        let threads = (points.len() / MIN_POINTS_PER_THREAD).clamp(1, self.threads);
        if threads == 1 {
            return points
                .iter()
                .try_for_each(|(key, vector)| self.add(*key, vector));
        }

        tracing::debug!(points = points.len(), threads, "inserting into the index");
        let chunk = points.len().div_ceil(threads);
        thread::scope(|scope| {
            let workers: Vec<_> = points
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .try_for_each(|(key, vector)| self.add(*key, vector))
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<()>>>()
                .map(drop)
        })
    }

    /// Inserts `vector` under `key`, which must not be in the index.
    pub(crate) fn add(&self, key: u64, vector: &[f32]) -> Result<()> {
        self.inner
            .add(key, vector)
            .map_err(|e| CollectionError::index("add vector", e))
    }

    /// Removes `key`; usearch reuses its node for a later insertion.
    ///
    /// NOTE: until then the node stays in the graph as a tombstone that searches walk through.
    /// The index is never rebuilt or compacted, so many deletions without insertions may lower
    /// recall; no test measures by how much.
    pub(crate) fn remove(&self, key: u64) -> Result<()> {
        self.inner
            .remove(key)
            .map(drop)
            .map_err(|e| CollectionError::index("remove vector", e))
    }

    /// Returns the keys of up to `count` approximate nearest neighbours, nearest first, exploring
    /// `ef` candidates.
    pub(crate) fn search(&self, query: &[f32], count: usize, ef: usize) -> Result<Vec<u64>> {
        let _admitted = self.admit(ef);
        let matches = self
            .inner
            .search(query, count)
            .map_err(|e| CollectionError::index("search", e))?;
        Ok(matches.keys)
    }

    /// Like [`HnswIndex::search`], but returns only keys that `keep` accepts. The graph walk
    /// passes through rejected points, and `keep` decides only which ones are returned.
    pub(crate) fn filtered_search(
        &self,
        query: &[f32],
        count: usize,
        ef: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<u64>> {
        let _admitted = self.admit(ef);
        let matches = self
            .inner
            .filtered_search(query, count, keep)
            .map_err(|e| CollectionError::index("filtered search", e))?;
        Ok(matches.keys)
    }
}

impl HnswIndex {
    /// Waits until a search with candidate list size `ef` may run, and sets usearch to it.
    fn admit(&self, ef: usize) -> Admitted<'_> {
        let mut gate = self.gate();
        while gate.running == self.threads || (gate.running > 0 && gate.ef != ef) {
            gate = self
                .gate_changed
                .wait(gate)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if gate.ef != ef {
            self.inner.change_expansion_search(ef);
            gate.ef = ef;
        }
        gate.running += 1;
        Admitted { index: self }
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dimensions", &self.inner.dimensions())
            .field("size", &self.inner.size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(points: &[(u64, [f32; 2])]) -> HnswIndex {
        let index = HnswIndex::new(2, Metric::L2, IndexSettings::default()).unwrap();
        index.reserve_additional(points.len()).unwrap();
        for (key, vector) in points {
            index.add(*key, vector).unwrap();
        }
        index
    }

    #[test]
    fn index_survives_serialization() {
        let index = index_of(&[(1, [0.0, 0.0]), (2, [5.0, 5.0]), (3, [1.0, 0.0])]);
        let bytes = index.to_bytes().unwrap();
        let loaded = HnswIndex::from_bytes(&bytes, 2, IndexSettings::default()).unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.search(&[0.9, 0.0], 2, 16).unwrap(), vec![3, 1]);
    }

    #[test]
    fn removed_keys_can_return() {
        let index = index_of(&[(1, [0.0, 0.0]), (2, [5.0, 5.0])]);
        index.remove(1).unwrap();
        assert_eq!(index.len(), 1);
        assert_eq!(index.search(&[0.0, 0.0], 2, 16).unwrap(), vec![2]);

        index.reserve_additional(1).unwrap();
        index.add(1, &[9.0, 9.0]).unwrap();
        assert_eq!(index.search(&[9.0, 9.0], 1, 16).unwrap(), vec![1]);
    }

    #[test]
    fn loaded_index_accepts_additions() {
        let index = index_of(&[(1, [0.0, 0.0])]);
        let loaded =
            HnswIndex::from_bytes(&index.to_bytes().unwrap(), 2, IndexSettings::default()).unwrap();
        loaded.reserve_additional(1).unwrap();
        loaded.add(2, &[3.0, 3.0]).unwrap();
        assert_eq!(loaded.search(&[3.0, 3.0], 1, 16).unwrap(), vec![2]);
    }

    #[test]
    fn filtered_search_returns_only_kept_keys() {
        let index = index_of(&[(1, [0.0, 0.0]), (2, [1.0, 1.0]), (3, [2.0, 2.0])]);
        let keys = index
            .filtered_search(&[0.0, 0.0], 3, 16, |key| key != 1)
            .unwrap();
        assert_eq!(keys, vec![2, 3]);
    }

    #[test]
    fn empty_index_keeps_connectivity() {
        let settings = IndexSettings {
            connectivity: 8,
            expansion_add: 32,
        };
        let index = HnswIndex::new(2, Metric::L2, settings).unwrap();
        let loaded = HnswIndex::from_bytes(&index.to_bytes().unwrap(), 2, settings).unwrap();
        assert_eq!(loaded.inner.connectivity(), 8);
        assert_eq!(loaded.inner.expansion_add(), 32);
    }

    #[test]
    fn wrong_dimension_blob_is_rejected() {
        let bytes = index_of(&[(1, [0.0, 0.0])]).to_bytes().unwrap();
        let error = HnswIndex::from_bytes(&bytes, 3, IndexSettings::default()).unwrap_err();
        assert!(
            error.to_string().contains("dimension 2, expected 3"),
            "{error}"
        );
    }
}
