//! Versions: upsert and delete, copy-on-write segments, the log and removal.

use std::collections::BTreeSet;

use serde_json::json;
use strata_collections::media::{
    COLLECTION_CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE, PAYLOADS_MEDIA_TYPE, SEGMENT_ANNOTATION,
    VECTORS_MEDIA_TYPE,
};
use strata_collections::{CollectionError, CollectionSpec, Metric, Point};
use strata_store::{Digest, Manifest, Store};

use crate::common::{blob_names, exact, fixture, object, random_points, rng};

fn spec(dim: usize, segment_points: usize) -> CollectionSpec {
    let mut spec = CollectionSpec::new(dim, Metric::Cosine).with_embedder("test-embedder");
    spec.segment_points = segment_points;
    spec
}

fn manifest(store: &Store, digest: &Digest) -> Manifest {
    store.read_manifest(digest).unwrap()
}

/// Returns the `org.strata.collection.segment` annotation of each vectors layer.
fn serials(manifest: &Manifest) -> Vec<u32> {
    manifest
        .layers
        .iter()
        .filter(|layer| layer.media_type == VECTORS_MEDIA_TYPE)
        .map(|layer| layer.annotations[SEGMENT_ANNOTATION].parse().unwrap())
        .collect()
}

#[test]
fn upsert_replaces_and_delete_removes() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("docs", spec(3, 4096)).unwrap();
    let points = random_points(&mut rng(20), 50, 3, |i| json!({"n": i}));
    collections.upsert("docs", points).unwrap();
    assert_eq!(collections.info("docs").unwrap().points, 50);

    let changed = Point::new("p3", vec![0.0, 0.0, 1.0]).with_payload(object(json!({"n": "new"})));
    collections.upsert("docs", vec![changed.clone()]).unwrap();
    assert_eq!(collections.info("docs").unwrap().points, 50);
    assert_eq!(collections.get("docs", "p3").unwrap(), changed);
    let found = collections
        .search("docs", &[0.0, 0.0, 1.0], &exact(1))
        .unwrap();
    assert_eq!(found.hits[0].id, "p3");
    assert_eq!(found.hits[0].payload["n"], "new");
    let found = collections
        .search("docs", &[0.0, 0.0, 1.0], &crate::common::top(1))
        .unwrap();
    assert_eq!(found.hits[0].id, "p3");

    collections.delete("docs", ["p3", "p4"]).unwrap();
    assert_eq!(collections.info("docs").unwrap().points, 48);
    let error = collections.get("docs", "p3").unwrap_err();
    assert!(
        matches!(error, CollectionError::PointNotFound { .. }),
        "{error}"
    );
    for options in [exact(48), crate::common::top(48)] {
        let found = collections
            .search("docs", &[0.0, 0.0, 1.0], &options)
            .unwrap();
        let ids: BTreeSet<String> = found.hits.into_iter().map(|hit| hit.id).collect();
        assert!(!ids.contains("p3"));
        assert!(!ids.contains("p4"));
        assert!(ids.contains("p5"));
    }
}

#[test]
fn one_changed_point_writes_one_segment() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("docs", spec(8, 100)).unwrap();
    let points = random_points(&mut rng(21), 350, 8, |i| json!({"n": i}));
    let first = collections.upsert("docs", points).unwrap();
    let before = blob_names(&fixture.store);
    let old = manifest(&fixture.store, &first);
    assert_eq!(serials(&old), [0, 1, 2, 3]);

    let changed = Point::new("p150", vec![1.0; 8]).with_payload(object(json!({"n": -1})));
    let second = collections.upsert("docs", vec![changed]).unwrap();
    let new = manifest(&fixture.store, &second);
    let added: BTreeSet<String> = blob_names(&fixture.store)
        .difference(&before)
        .cloned()
        .collect();

    let mut kinds: Vec<&str> = Vec::new();
    for layer in new.layers.iter().chain([&new.config]) {
        if added.contains(layer.digest.hex()) {
            kinds.push(&layer.media_type);
        }
    }
    kinds.sort();
    let mut expected = vec![
        COLLECTION_CONFIG_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        PAYLOADS_MEDIA_TYPE,
        VECTORS_MEDIA_TYPE,
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    assert!(added.contains(second.hex()), "the manifest is new");
    assert_eq!(
        added.len(),
        5,
        "vectors, payloads, index, config and manifest"
    );

    assert_eq!(new.layers[0], old.layers[0], "segment 0 vectors kept");
    assert_eq!(new.layers[1], old.layers[1], "segment 0 payloads kept");
    assert_ne!(new.layers[2], old.layers[2], "segment 1 vectors rewritten");
    assert_ne!(new.layers[3], old.layers[3], "segment 1 payloads rewritten");
    assert_eq!(new.layers[4..8], old.layers[4..8], "segments 2 and 3 kept");
}

#[test]
fn new_points_fill_last_segment() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("docs", spec(4, 100)).unwrap();
    let mut rng = rng(22);
    let first = collections
        .upsert("docs", random_points(&mut rng, 150, 4, |_| json!({})))
        .unwrap();
    let old = manifest(&fixture.store, &first);
    assert_eq!(serials(&old), [0, 1]);

    let more: Vec<Point> = (0..60)
        .map(|i| Point::new(format!("q{i}"), crate::common::random_vector(&mut rng, 4)))
        .collect();
    let second = collections.upsert("docs", more).unwrap();
    let new = manifest(&fixture.store, &second);
    assert_eq!(serials(&new), [0, 1, 2]);
    assert_eq!(
        new.layers[0..2],
        old.layers[0..2],
        "the full segment is kept"
    );
    let info = collections.info("docs").unwrap();
    assert_eq!((info.points, info.segments), (210, 3));
    let counts: Vec<&str> = new
        .layers
        .iter()
        .filter(|layer| layer.media_type == VECTORS_MEDIA_TYPE)
        .map(|layer| layer.annotations["org.strata.collection.points"].as_str())
        .collect();
    assert_eq!(counts, ["100", "100", "10"]);
}

#[test]
fn emptied_segment_is_dropped() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("docs", spec(4, 10)).unwrap();
    let points = random_points(&mut rng(23), 25, 4, |i| json!({"n": i}));
    collections.upsert("docs", points).unwrap();

    let doomed: Vec<String> = (10..20).map(|i| format!("p{i}")).collect();
    let digest = collections.delete("docs", doomed).unwrap();
    assert_eq!(serials(&manifest(&fixture.store, &digest)), [0, 2]);
    assert_eq!(collections.info("docs").unwrap().points, 15);

    let point = Point::new("late", vec![1.0, 2.0, 3.0, 4.0]);
    let digest = collections.upsert("docs", vec![point.clone()]).unwrap();
    assert_eq!(serials(&manifest(&fixture.store, &digest)), [0, 2]);
    assert_eq!(collections.get("docs", "late").unwrap(), point);
    let found = collections
        .search("docs", &[1.0, 2.0, 3.0, 4.0], &crate::common::top(1))
        .unwrap();
    assert_eq!(found.hits[0].id, "late");
}

#[test]
fn log_lists_versions_newest_first() {
    let fixture = fixture();
    let collections = &fixture.collections;
    let created = collections.create("docs", spec(2, 10)).unwrap();
    let first = collections
        .upsert("docs", vec![Point::new("a", vec![1.0, 0.0])])
        .unwrap();
    let second = collections
        .upsert("docs", vec![Point::new("b", vec![0.0, 1.0])])
        .unwrap();
    let third = collections.delete("docs", ["a"]).unwrap();

    let log = collections.log("docs").unwrap();
    let digests: Vec<&Digest> = log.iter().map(|version| &version.digest).collect();
    assert_eq!(digests, [&third, &second, &first, &created.digest]);
    let points: Vec<usize> = log.iter().map(|version| version.points).collect();
    assert_eq!(points, [1, 2, 1, 0]);
    assert_eq!(log[0].parent.as_ref(), Some(&second));
    assert_eq!(log[3].parent, None);
}

#[test]
fn info_and_list_describe_collections() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("zeta", spec(2, 10)).unwrap();
    collections
        .create("alpha", CollectionSpec::new(5, Metric::Dot))
        .unwrap();

    let names: Vec<String> = collections
        .list()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    let info = collections.info("zeta").unwrap();
    assert_eq!((info.dim, info.metric, info.points), (2, Metric::Cosine, 0));
    assert_eq!(info.embedder.as_deref(), Some("test-embedder"));
    assert_eq!(info.segment_points, 10);
    let tag = fixture
        .store
        .resolve(&strata_store::Reference::parse("collection/zeta").unwrap());
    assert_eq!(tag.unwrap().digest, info.digest);
}

#[test]
fn remove_drops_tag_and_database() {
    let fixture = fixture();
    let collections = &fixture.collections;
    let created = collections.create("docs", spec(2, 10)).unwrap();
    collections
        .upsert("docs", vec![Point::new("a", vec![1.0, 0.0])])
        .unwrap();
    let db = collections.database_path("docs").unwrap();
    assert!(db.exists());

    let removed = collections.remove("docs").unwrap();
    assert_ne!(removed, created.digest);
    assert!(!db.exists());
    let error = collections.info("docs").unwrap_err();
    assert!(matches!(error, CollectionError::NotFound { .. }), "{error}");
    assert!(collections.list().unwrap().is_empty());
    assert!(fixture.store.has_blob(&removed), "blobs stay until gc");

    collections.create("docs", spec(2, 10)).unwrap();
    assert_eq!(collections.info("docs").unwrap().points, 0);
    let found = collections.search("docs", &[1.0, 0.0], &exact(5)).unwrap();
    assert!(found.hits.is_empty());
    let found = collections
        .search("docs", &[1.0, 0.0], &crate::common::top(5))
        .unwrap();
    assert!(found.hits.is_empty());
}

#[test]
fn gc_keeps_every_logged_version() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections.create("docs", spec(2, 10)).unwrap();
    collections
        .upsert("docs", vec![Point::new("a", vec![1.0, 0.0])])
        .unwrap();
    collections
        .upsert("docs", vec![Point::new("a", vec![0.0, 1.0])])
        .unwrap();
    fixture.store.gc().unwrap();

    assert_eq!(collections.log("docs").unwrap().len(), 3);
    let report = fixture.store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(collections.get("docs", "a").unwrap().vector, [0.0, 1.0]);
}
