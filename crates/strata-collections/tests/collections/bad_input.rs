//! Bad input: each case fails with an error that names the value, and leaves `index.json`, every
//! blob and the payload database as they were.

use serde_json::json;
use strata_collections::{CollectionError, CollectionSpec, Filter, Metric, Point, SearchOptions};

use crate::common::{Fixture, exact, fixture, object, random_points, rng, store_files};
use crate::payload_db::database_state;

/// Builds a collection `docs` of dimension 3 with ten points whose payloads have `kind` and `year`.
fn populated() -> Fixture {
    let fixture = fixture();
    let spec = CollectionSpec::new(3, Metric::Cosine).with_embedder("minilm");
    fixture.collections.create("docs", spec).unwrap();
    let points = random_points(
        &mut rng(40),
        10,
        3,
        |i| json!({"kind": "a", "year": 2000 + i}),
    );
    fixture.collections.upsert("docs", points).unwrap();
    fixture
}

/// Runs `operation`, which must fail, and checks that nothing changed; returns the message.
fn fails_cleanly<T: std::fmt::Debug>(
    fixture: &Fixture,
    operation: impl FnOnce() -> Result<T, CollectionError>,
) -> String {
    let files = store_files(&fixture.store);
    let db = fixture.collections.database_path("docs").unwrap();
    let state = db.exists().then(|| database_state(&db));

    let error = operation().unwrap_err().to_string();

    assert!(
        store_files(&fixture.store) == files,
        "store files changed after: {error}"
    );
    assert_eq!(
        db.exists().then(|| database_state(&db)),
        state,
        "after: {error}"
    );
    error
}

#[test]
fn wrong_dimension_is_rejected() {
    let fixture = populated();
    let points = vec![
        Point::new("new", vec![1.0, 2.0]),
        Point::new("p1", vec![1.0, 2.0, 3.0]),
    ];
    let error = fails_cleanly(&fixture, || fixture.collections.upsert("docs", points));
    assert!(error.contains("point `new` has 2 values"), "{error}");
    assert!(error.contains("dimension 3"), "{error}");
    assert!(error.contains("`minilm`"), "{error}");

    let error = fails_cleanly(&fixture, || {
        fixture.collections.search("docs", &[1.0; 4], &exact(3))
    });
    assert!(error.contains("the query vector has 4 values"), "{error}");
}

#[test]
fn non_finite_values_are_rejected() {
    let fixture = populated();
    for (value, text) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let points = vec![
            Point::new("p2", vec![1.0, 0.0, 0.0]),
            Point::new("bad", vec![0.0, value, 1.0]),
        ];
        let error = fails_cleanly(&fixture, || fixture.collections.upsert("docs", points));
        assert!(
            error.contains(&format!("point `bad` has {text} at index 1")),
            "{error}"
        );

        let query = [value, 0.0, 1.0];
        let error = fails_cleanly(&fixture, || {
            fixture.collections.search("docs", &query, &exact(3))
        });
        assert!(
            error.contains(&format!("the query vector has {text} at index 0")),
            "{error}"
        );
    }
}

#[test]
fn zero_vector_is_rejected_for_cosine() {
    let fixture = populated();
    let points = vec![Point::new("zero", vec![0.0; 3])];
    let error = fails_cleanly(&fixture, || fixture.collections.upsert("docs", points));
    assert!(error.contains("point `zero` is all zeros"), "{error}");
}

#[test]
fn unknown_filter_field_is_rejected() {
    let fixture = populated();
    let options = SearchOptions {
        filter: Some(Filter::parse("kind = 'a' and colour = 'red'").unwrap()),
        ..SearchOptions::default()
    };
    let error = fails_cleanly(&fixture, || {
        fixture
            .collections
            .search("docs", &[1.0, 0.0, 0.0], &options)
    });
    assert!(error.contains("filter field `colour`"), "{error}");
    assert!(error.contains("known fields: kind, year"), "{error}");
}

#[test]
fn bad_collection_names_are_rejected() {
    let fixture = populated();
    for (name, reason) in [
        ("a/b", "`/` is not allowed"),
        ("..", "`..` is not allowed"),
        ("../docs", "`/` is not allowed"),
        ("x..y", "`..` is not allowed"),
        ("doc s", "` ` is not allowed"),
        ("docs:v1", "`:` is not allowed"),
        ("Docs", "`D` is uppercase"),
        ("", "empty"),
    ] {
        let spec = CollectionSpec::new(3, Metric::L2);
        let error = fails_cleanly(&fixture, || fixture.collections.create(name, spec));
        assert!(error.contains(&format!("`{name}`")), "{error}");
        assert!(error.contains(reason), "{name}: {error}");
        let points = vec![Point::new("x", vec![1.0, 0.0, 0.0])];
        fails_cleanly(&fixture, || fixture.collections.upsert(name, points));
    }
    let entries = std::fs::read_dir(fixture.store.root().join("collections")).unwrap();
    assert_eq!(entries.count(), 1, "only docs.redb");
}

#[test]
fn unknown_metric_is_rejected() {
    let error = "manhattan".parse::<Metric>().unwrap_err().to_string();
    assert!(error.contains("unknown metric `manhattan`"), "{error}");
    assert!(
        error.contains("expected `cosine`, `dot` or `l2`"),
        "{error}"
    );
    let error = "COSINE".parse::<Metric>().unwrap_err().to_string();
    assert!(error.contains("`COSINE`"), "{error}");
}

#[test]
fn invalid_spec_is_rejected() {
    let fixture = populated();
    let error = fails_cleanly(&fixture, || {
        fixture
            .collections
            .create("empty", CollectionSpec::new(0, Metric::L2))
    });
    assert!(error.contains("dim is 0"), "{error}");
    let error = fails_cleanly(&fixture, || {
        fixture
            .collections
            .create("docs", CollectionSpec::new(3, Metric::L2))
    });
    assert!(
        error.contains("collection `docs` already exists"),
        "{error}"
    );
}

#[test]
fn bad_ids_are_rejected() {
    let fixture = populated();
    let twice = vec![
        Point::new("dup", vec![1.0, 0.0, 0.0]),
        Point::new("dup", vec![0.0, 1.0, 0.0]),
    ];
    let error = fails_cleanly(&fixture, || fixture.collections.upsert("docs", twice));
    assert!(error.contains("`dup` appears twice"), "{error}");

    let empty = vec![Point::new("", vec![1.0, 0.0, 0.0])];
    let error = fails_cleanly(&fixture, || fixture.collections.upsert("docs", empty));
    assert!(error.contains("invalid point id ``"), "{error}");

    let error = fails_cleanly(&fixture, || {
        fixture.collections.delete("docs", ["p1", "ghost"])
    });
    assert!(
        error.contains("no point `ghost` in collection `docs`"),
        "{error}"
    );
}

#[test]
fn missing_collection_is_named() {
    let fixture = populated();
    let points = vec![Point::new("x", vec![1.0, 0.0, 0.0])];
    let error = fails_cleanly(&fixture, || fixture.collections.upsert("other", points));
    assert!(error.contains("no collection named `other`"), "{error}");
    let error = fails_cleanly(&fixture, || fixture.collections.remove("other"));
    assert!(error.contains("no collection named `other`"), "{error}");
}

#[test]
fn bad_search_options_are_rejected() {
    let fixture = populated();
    let options = SearchOptions {
        top_k: 0,
        ..SearchOptions::default()
    };
    let error = fails_cleanly(&fixture, || {
        fixture
            .collections
            .search("docs", &[1.0, 0.0, 0.0], &options)
    });
    assert!(error.contains("top_k is 0"), "{error}");

    let error = Filter::parse("kind = 'a' and year >")
        .unwrap_err()
        .to_string();
    assert!(error.contains("column 22"), "{error}");
    assert!(error.contains("`end of filter`"), "{error}");
}

#[test]
fn failed_upsert_keeps_points() {
    let fixture = populated();
    let before = fixture.collections.get("docs", "p1").unwrap();
    let points = vec![
        Point::new("p1", vec![9.0, 9.0, 9.0]).with_payload(object(json!({"kind": "changed"}))),
        Point::new("p2", vec![f32::NAN, 0.0, 0.0]),
    ];
    fails_cleanly(&fixture, || fixture.collections.upsert("docs", points));
    assert_eq!(fixture.collections.get("docs", "p1").unwrap(), before);
    assert_eq!(fixture.collections.info("docs").unwrap().points, 10);
}
