//! Filtered search: each operator against a reference written in plain Rust, the exact fallback
//! for selective filters, and filtered HNSW for broad ones.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use strata_collections::{
    CollectionSpec, Filter, Metric, Point, SearchMethod, SearchOptions, SearchResults,
};

use crate::common::{fixture, object, random_points, random_vector, recall, rng};

const KINDS: [&str; 3] = ["image", "text", "audio"];
const TAGS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Returns the payload of point `i`. Every seventh point has no `year`.
fn payload(i: usize) -> Value {
    let mut payload = json!({
        "kind": KINDS[i % 3],
        "tag": TAGS[(i / 3) % 5],
        "score": (i % 100) as f64 / 100.0,
        "flag": i.is_multiple_of(4),
        "labels": [format!("l{}", i % 6), format!("m{}", i % 5)],
    });
    if !i.is_multiple_of(7) {
        payload["year"] = json!(2000 + (i % 26));
    }
    payload
}

fn with_filter(filter: &str, top_k: usize, exact: bool) -> SearchOptions {
    SearchOptions {
        top_k,
        filter: Some(Filter::parse(filter).unwrap()),
        exact,
        ef: None,
    }
}

fn year(payload: &Map<String, Value>) -> Option<i64> {
    payload.get("year").and_then(Value::as_i64)
}

fn text(payload: &Map<String, Value>, field: &str) -> String {
    payload[field].as_str().unwrap().to_string()
}

type Reference = fn(&Map<String, Value>) -> bool;

/// Returns each filter with the same condition written in Rust.
fn cases() -> Vec<(&'static str, Reference)> {
    vec![
        ("kind = \"image\"", |p| text(p, "kind") == "image"),
        ("kind == 'text'", |p| text(p, "kind") == "text"),
        ("kind != \"image\"", |p| text(p, "kind") != "image"),
        ("year < 2010", |p| year(p).is_some_and(|y| y < 2010)),
        ("year <= 2010", |p| year(p).is_some_and(|y| y <= 2010)),
        ("year > 2020", |p| year(p).is_some_and(|y| y > 2020)),
        ("year >= 2020", |p| year(p).is_some_and(|y| y >= 2020)),
        ("year != 2005", |p| year(p) != Some(2005)),
        ("score < 0.25", |p| p["score"].as_f64().unwrap() < 0.25),
        ("flag = true", |p| p["flag"] == json!(true)),
        ("tag in [\"a\", \"b\"]", |p| {
            ["a", "b"].contains(&text(p, "tag").as_str())
        }),
        ("labels = 'l2'", |p| p["labels"][0] == "l2"),
        ("labels in ['m1', 'l5']", |p| {
            p["labels"][1] == "m1" || p["labels"][0] == "l5"
        }),
        (
            "kind = \"image\" and year >= 2015 and tag in [\"a\", \"c\"]",
            |p| {
                text(p, "kind") == "image"
                    && year(p).is_some_and(|y| y >= 2015)
                    && ["a", "c"].contains(&text(p, "tag").as_str())
            },
        ),
        ("kind = 'text' or tag = 'e'", |p| {
            text(p, "kind") == "text" || text(p, "tag") == "e"
        }),
        (
            "(kind = 'audio' or kind = 'text') and not flag = true",
            |p| text(p, "kind") != "image" && p["flag"] == json!(false),
        ),
        ("not (year >= 2005 and year < 2010)", |p| {
            !year(p).is_some_and(|y| (2005..2010).contains(&y))
        }),
    ]
}

#[test]
fn each_operator_matches_reference() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("items", CollectionSpec::new(4, Metric::Cosine))
        .unwrap();
    let points = random_points(&mut rng(10), 600, 4, payload);
    collections.upsert("items", points.clone()).unwrap();
    let query = [0.5, -0.5, 0.25, 1.0];

    for (source, reference) in cases() {
        let expected: BTreeSet<&str> = points
            .iter()
            .filter(|point| reference(&point.payload))
            .map(|point| point.id.as_str())
            .collect();
        assert!(!expected.is_empty(), "{source} matches nothing");
        assert!(expected.len() < points.len(), "{source} matches everything");

        let filter = Filter::parse(source).unwrap();
        let matched = points
            .iter()
            .filter(|point| filter.matches(&point.payload))
            .count();
        assert_eq!(matched, expected.len(), "Filter::matches for {source}");

        let found = collections
            .search("items", &query, &with_filter(source, 600, true))
            .unwrap();
        let found: BTreeSet<&str> = found.hits.iter().map(|hit| hit.id.as_str()).collect();
        assert_eq!(found, expected, "search for {source}");
    }
}

/// Builds points whose `bucket` is `i % 100`, so `bucket = N` matches 1% of them.
fn bucketed(count: usize, dim: usize, seed: u64) -> (crate::common::Fixture, Vec<Point>) {
    let fixture = fixture();
    fixture
        .collections
        .create("buckets", CollectionSpec::new(dim, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(seed), count, dim, |i| json!({"bucket": i % 100}));
    fixture
        .collections
        .upsert("buckets", points.clone())
        .unwrap();
    (fixture, points)
}

fn hit_ids(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|hit| hit.id.clone()).collect()
}

#[test]
fn one_percent_filter_equals_exact_search() {
    let (fixture, points) = bucketed(3_000, 16, 11);
    let collections = &fixture.collections;
    let mut rng = rng(12);
    for bucket in [7, 42, 99] {
        let query = random_vector(&mut rng, 16);
        let filter = format!("bucket = {bucket}");
        let found = collections
            .search("buckets", &query, &with_filter(&filter, 10, false))
            .unwrap();
        let reference = collections
            .search("buckets", &query, &with_filter(&filter, 10, true))
            .unwrap();

        assert_eq!(found.method, SearchMethod::ExactFallback);
        assert_eq!(found.candidates, 30);
        assert_eq!(found.hits, reference.hits);
        assert_eq!(found.hits.len(), 10);

        let mut nearest: Vec<(f32, &str)> = points
            .iter()
            .filter(|point| point.payload["bucket"] == json!(bucket))
            .map(|point| (distance(&query, &point.vector), point.id.as_str()))
            .collect();
        nearest.sort_by(|a, b| a.0.total_cmp(&b.0));
        let expected: Vec<&str> = nearest.iter().take(10).map(|(_, id)| *id).collect();
        assert_eq!(hit_ids(&found), expected, "bucket {bucket}");
    }
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

#[test]
fn broad_filter_uses_hnsw_with_high_recall() {
    let (fixture, _) = bucketed(5_000, 16, 13);
    let collections = &fixture.collections;
    let mut rng = rng(14);
    let mut total = 0.0;
    const QUERIES: usize = 30;
    for _ in 0..QUERIES {
        let query = random_vector(&mut rng, 16);
        let options = with_filter("bucket < 60", 10, false);
        let found = collections.search("buckets", &query, &options).unwrap();
        let reference = collections
            .search("buckets", &query, &with_filter("bucket < 60", 10, true))
            .unwrap();

        assert_eq!(found.method, SearchMethod::FilteredHnsw);
        assert_eq!(found.candidates, 3_000);
        assert_eq!(found.hits.len(), 10);
        for hit in &found.hits {
            assert!(
                hit.payload["bucket"].as_u64().unwrap() < 60,
                "{} passed",
                hit.id
            );
        }
        total += recall(&hit_ids(&found), &hit_ids(&reference));
    }
    let mean = total / QUERIES as f64;
    assert!(mean >= 0.95, "filtered recall@10 is {mean}");
}

#[test]
fn filter_matching_nothing_returns_no_hits() {
    let (fixture, _) = bucketed(200, 4, 15);
    let options = with_filter("bucket > 1000", 10, false);
    let found = fixture
        .collections
        .search("buckets", &[0.0; 4], &options)
        .unwrap();
    assert!(found.hits.is_empty());
    assert_eq!(found.candidates, 0);
}

#[test]
fn filters_see_upserted_payloads() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(2, Metric::L2))
        .unwrap();
    let point = Point::new("x", vec![1.0, 1.0]).with_payload(object(json!({"state": "draft"})));
    collections.upsert("docs", vec![point.clone()]).unwrap();
    let published = point.with_payload(object(json!({"state": "published"})));
    collections.upsert("docs", vec![published]).unwrap();

    let draft = collections.search(
        "docs",
        &[1.0, 1.0],
        &with_filter("state = 'draft'", 5, false),
    );
    assert!(draft.unwrap().hits.is_empty());
    let found = collections
        .search(
            "docs",
            &[1.0, 1.0],
            &with_filter("state = 'published'", 5, false),
        )
        .unwrap();
    assert_eq!(hit_ids(&found), ["x"]);
}
