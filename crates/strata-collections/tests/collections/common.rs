//! Fixtures shared by the tests: stores in temporary folders, seeded random points and
//! snapshots of the store's files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use strata_collections::{Collections, Point, SearchOptions};
use strata_store::Store;
use tempfile::TempDir;

/// A store in its own temporary folder, with its collections.
pub(crate) struct Fixture {
    pub(crate) _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) collections: Collections,
}

pub(crate) fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let collections = Collections::open(&store);
    Fixture {
        _dir: dir,
        store,
        collections,
    }
}

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Draws a vector of `dim` values uniformly from [-1, 1).
pub(crate) fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Builds points `p0`, `p1`, … with random vectors and the payload `payload(i)`.
pub(crate) fn random_points(
    rng: &mut StdRng,
    count: usize,
    dim: usize,
    payload: impl Fn(usize) -> Value,
) -> Vec<Point> {
    (0..count)
        .map(|i| {
            Point::new(format!("p{i}"), random_vector(rng, dim)).with_payload(object(payload(i)))
        })
        .collect()
}

pub(crate) fn object(value: Value) -> Map<String, Value> {
    value.as_object().expect("a JSON object").clone()
}

/// Returns search options for the `top_k` nearest points.
pub(crate) fn top(top_k: usize) -> SearchOptions {
    SearchOptions {
        top_k,
        ..SearchOptions::default()
    }
}

/// Returns search options for an exact search.
pub(crate) fn exact(top_k: usize) -> SearchOptions {
    SearchOptions {
        top_k,
        exact: true,
        ..SearchOptions::default()
    }
}

/// The bytes of `index.json` and of every blob, to compare before and after an operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StoreFiles {
    pub(crate) index: Vec<u8>,
    pub(crate) blobs: BTreeMap<String, Vec<u8>>,
}

pub(crate) fn store_files(store: &Store) -> StoreFiles {
    let index = fs::read(store.root().join("index.json")).unwrap();
    let mut blobs = BTreeMap::new();
    for entry in fs::read_dir(store.root().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        blobs.insert(name, fs::read(entry.path()).unwrap());
    }
    StoreFiles { index, blobs }
}

/// Returns the names of every blob in the store.
pub(crate) fn blob_names(store: &Store) -> BTreeSet<String> {
    store_files(store).blobs.into_keys().collect()
}

/// Returns the fraction of `expected` ids that `found` contains.
pub(crate) fn recall(found: &[String], expected: &[String]) -> f64 {
    let found: BTreeSet<&String> = found.iter().collect();
    let hits = expected.iter().filter(|id| found.contains(id)).count();
    hits as f64 / expected.len().max(1) as f64
}
