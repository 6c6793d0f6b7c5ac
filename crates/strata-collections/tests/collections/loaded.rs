//! Searches return hits from the version kept in memory while the tag points to it, and see a
//! new version as soon as any handle or process moves the tag.

use std::thread;

use serde_json::json;
use strata_collections::{CollectionSpec, Collections, Metric, Point, SearchOptions};

use crate::common::{fixture, random_points, random_vector, rng, top};

fn ids(collections: &Collections, query: &[f32], options: &SearchOptions) -> Vec<String> {
    let found = collections.search("docs", query, options).unwrap();
    found.hits.into_iter().map(|hit| hit.id).collect()
}

#[test]
fn search_sees_version_another_handle_wrote() {
    let fixture = fixture();
    let searcher = &fixture.collections;
    searcher
        .create("docs", CollectionSpec::new(3, Metric::L2))
        .unwrap();
    let points = random_points(&mut rng(40), 50, 3, |i| json!({"n": i}));
    searcher.upsert("docs", points).unwrap();
    let far = [50.0, 50.0, 50.0];
    assert_ne!(ids(searcher, &far, &top(1)), ["far"]);

    let writer = Collections::open(&fixture.store);
    let point = Point::new("far", far.to_vec());
    writer.upsert("docs", vec![point]).unwrap();
    assert_eq!(ids(searcher, &far, &top(1)), ["far"]);

    writer.delete("docs", ["far"]).unwrap();
    assert_ne!(ids(searcher, &far, &top(1)), ["far"]);
    writer.remove("docs").unwrap();
    let error = searcher.search("docs", &far, &top(1)).unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[test]
fn parallel_searches_with_different_ef_match_serial_ones() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("docs", CollectionSpec::new(8, Metric::Cosine))
        .unwrap();
    let points = random_points(&mut rng(41), 2_000, 8, |i| json!({"n": i}));
    collections.upsert("docs", points).unwrap();

    let mut rng = rng(42);
    let queries: Vec<Vec<f32>> = (0..40).map(|_| random_vector(&mut rng, 8)).collect();
    let options = |q: usize| SearchOptions {
        ef: Some(if q.is_multiple_of(2) { 8 } else { 200 }),
        ..top(10)
    };
    let serial: Vec<Vec<String>> = (0..queries.len())
        .map(|q| ids(collections, &queries[q], &options(q)))
        .collect();

    let parallel: Vec<Vec<String>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (queries, options) = (&queries, &options);
                scope.spawn(move || {
                    (t..queries.len())
                        .step_by(4)
                        .map(|q| (q, ids(collections, &queries[q], &options(q))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut found = vec![Vec::new(); queries.len()];
        for worker in workers {
            for (q, hits) in worker.join().unwrap() {
                found[q] = hits;
            }
        }
        found
    });
    assert_eq!(parallel, serial);
}
