//! The payload database: rebuilt from the blobs when it is missing, stale or unreadable.

use std::fs;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde_json::json;
use strata_collections::{CollectionSpec, Collections, Filter, Metric, Point, SearchOptions};

use crate::common::{fixture, object, random_points, rng};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");

/// Returns the manifest the database records and the number of ids it contains.
pub(crate) fn database_state(path: &Path) -> (String, u64) {
    let db = Database::open(path).unwrap();
    let read = db.begin_read().unwrap();
    let manifest = read
        .open_table(META)
        .unwrap()
        .get("manifest")
        .unwrap()
        .unwrap();
    let ids = read.open_table(IDS).unwrap().len().unwrap();
    (manifest.value().to_string(), ids)
}

fn filtered(filter: &str) -> SearchOptions {
    SearchOptions {
        top_k: 1_000,
        filter: Some(Filter::parse(filter).unwrap()),
        exact: true,
        ef: None,
    }
}

fn found_ids(collections: &Collections, filter: &str) -> Vec<String> {
    let found = collections
        .search("docs", &[1.0, 0.5, 0.25], &filtered(filter))
        .unwrap();
    let mut ids: Vec<String> = found.hits.into_iter().map(|hit| hit.id).collect();
    ids.sort();
    ids
}

#[test]
fn database_records_current_manifest() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(30), 40, 3, |i| json!({"even": i % 2 == 0}));
    let digest = collections.upsert("docs", points).unwrap();

    let (manifest, ids) = database_state(&collections.database_path("docs").unwrap());
    assert_eq!(manifest, digest.as_str());
    assert_eq!(ids, 40);
}

#[test]
fn deleted_database_is_rebuilt() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(31), 200, 3, |i| json!({"group": i % 10}));
    let digest = collections.upsert("docs", points).unwrap();
    let before = found_ids(collections, "group = 3");
    assert_eq!(before.len(), 20);

    let path = collections.database_path("docs").unwrap();
    fs::remove_file(&path).unwrap();
    let reopened = Collections::open(&fixture.store);
    assert_eq!(found_ids(&reopened, "group = 3"), before);
    assert_eq!(database_state(&path), (digest.to_string(), 200));
    assert_eq!(reopened.get("docs", "p13").unwrap().payload["group"], 3);
}

#[test]
fn stale_database_is_rebuilt() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(32), 100, 3, |_| json!({"state": "old"}));
    collections.upsert("docs", points).unwrap();
    let path = collections.database_path("docs").unwrap();
    let stale = fs::read(&path).unwrap();

    let renamed =
        Point::new("p5", vec![1.0, 0.5, 0.25]).with_payload(object(json!({"state": "new"})));
    let added =
        Point::new("fresh", vec![0.0, 1.0, 0.0]).with_payload(object(json!({"state": "new"})));
    let digest = collections.upsert("docs", vec![renamed, added]).unwrap();
    fs::write(&path, stale).unwrap();
    assert_ne!(
        database_state(&path).0,
        digest.to_string(),
        "the old file is back"
    );

    let reopened = Collections::open(&fixture.store);
    assert_eq!(found_ids(&reopened, "state = 'new'"), ["fresh", "p5"]);
    assert_eq!(database_state(&path), (digest.to_string(), 101));
    assert_eq!(
        reopened.get("docs", "fresh").unwrap().vector,
        [0.0, 1.0, 0.0]
    );
}

#[test]
fn unreadable_database_is_replaced() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(33), 30, 3, |i| json!({"n": i}));
    let digest = collections.upsert("docs", points).unwrap();

    let path = collections.database_path("docs").unwrap();
    fs::write(&path, b"this is not a redb file").unwrap();
    assert_eq!(found_ids(collections, "n < 3"), ["p0", "p1", "p2"]);
    assert_eq!(database_state(&path), (digest.to_string(), 30));
}

#[test]
fn write_after_rebuild_continues_history() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(34), 20, 3, |i| json!({"n": i}));
    let first = collections.upsert("docs", points).unwrap();
    fs::remove_file(collections.database_path("docs").unwrap()).unwrap();

    let second = collections.delete("docs", ["p0"]).unwrap();
    let log = collections.log("docs").unwrap();
    assert_eq!(log[0].digest, second);
    assert_eq!(log[0].parent, Some(first));
    let state = database_state(&collections.database_path("docs").unwrap());
    assert_eq!(state, (second.to_string(), 19));
}
