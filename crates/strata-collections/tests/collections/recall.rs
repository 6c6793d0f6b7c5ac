//! HNSW search against exact search, and exact search against a brute force written here.

use serde_json::json;
use strata_collections::{CollectionSpec, Metric, SearchMethod};

use crate::common::{exact, fixture, random_points, random_vector, recall, rng, top};

const POINTS: usize = 3_000;
const DIM: usize = 32;
const QUERIES: usize = 50;

fn ids(results: &strata_collections::SearchResults) -> Vec<String> {
    results.hits.iter().map(|hit| hit.id.clone()).collect()
}

/// Mean recall at 10 of HNSW search against exact search, for one metric.
fn mean_recall(metric: Metric, seed: u64) -> f64 {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("vectors", CollectionSpec::new(DIM, metric))
        .unwrap();
    let mut rng = rng(seed);
    let points = random_points(&mut rng, POINTS, DIM, |i| json!({ "i": i }));
    collections.upsert("vectors", points).unwrap();

    let mut total = 0.0;
    for _ in 0..QUERIES {
        let query = random_vector(&mut rng, DIM);
        let approximate = collections.search("vectors", &query, &top(10)).unwrap();
        let reference = collections.search("vectors", &query, &exact(10)).unwrap();
        assert_eq!(approximate.method, SearchMethod::Hnsw);
        assert_eq!(reference.method, SearchMethod::Exact);
        assert_eq!(reference.hits.len(), 10);
        total += recall(&ids(&approximate), &ids(&reference));
    }
    total / QUERIES as f64
}

#[test]
fn hnsw_recall_cosine_at_least_95() {
    let recall = mean_recall(Metric::Cosine, 1);
    assert!(recall >= 0.95, "cosine recall@10 is {recall}");
}

#[test]
fn hnsw_recall_l2_at_least_95() {
    let recall = mean_recall(Metric::L2, 2);
    assert!(recall >= 0.95, "l2 recall@10 is {recall}");
}

#[test]
fn hnsw_recall_dot_at_least_95() {
    let recall = mean_recall(Metric::Dot, 3);
    assert!(recall >= 0.95, "dot recall@10 is {recall}");
}

#[test]
fn exact_search_matches_brute_force() {
    let fixture = fixture();
    let collections = &fixture.collections;
    let mut rng = rng(4);
    for (name, metric) in [
        ("cos", Metric::Cosine),
        ("dot", Metric::Dot),
        ("l2", Metric::L2),
    ] {
        collections
            .create(name, CollectionSpec::new(8, metric))
            .unwrap();
        let points = random_points(&mut rng, 300, 8, |_| json!({}));
        collections.upsert(name, points.clone()).unwrap();

        let query = random_vector(&mut rng, 8);
        let mut expected: Vec<(f32, String)> = points
            .iter()
            .map(|point| {
                (
                    brute_force_score(metric, &query, &point.vector),
                    point.id.clone(),
                )
            })
            .collect();
        expected.sort_by(|a, b| match metric {
            Metric::L2 => a.0.total_cmp(&b.0),
            _ => b.0.total_cmp(&a.0),
        });
        expected.truncate(5);

        let found = collections.search(name, &query, &exact(5)).unwrap();
        let found_ids: Vec<&str> = found.hits.iter().map(|hit| hit.id.as_str()).collect();
        let expected_ids: Vec<&str> = expected.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(found_ids, expected_ids, "{metric}");
        for (hit, (score, _)) in found.hits.iter().zip(&expected) {
            assert!(
                (hit.score - score).abs() < 1e-4,
                "{metric}: {} vs {score}",
                hit.score
            );
        }
    }
}

/// Computes the metric's score in f64, independently of the crate.
fn brute_force_score(metric: Metric, query: &[f32], point: &[f32]) -> f32 {
    let dot: f64 = query
        .iter()
        .zip(point)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| *x as f64 * *x as f64).sum::<f64>().sqrt();
    let score = match metric {
        Metric::Cosine => dot / (norm(query) * norm(point)),
        Metric::Dot => dot,
        Metric::L2 => query
            .iter()
            .zip(point)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
    };
    score as f32
}

#[test]
fn hits_carry_payloads_and_scores() {
    let fixture = fixture();
    let collections = &fixture.collections;
    collections
        .create("small", CollectionSpec::new(2, Metric::L2))
        .unwrap();
    let points = vec![
        strata_collections::Point::new("near", vec![1.0, 0.0])
            .with_payload(crate::common::object(json!({"kind": "a"}))),
        strata_collections::Point::new("far", vec![5.0, 5.0]),
    ];
    collections.upsert("small", points).unwrap();

    let found = collections.search("small", &[1.0, 1.0], &top(2)).unwrap();
    assert_eq!(found.hits.len(), 2);
    assert_eq!(found.hits[0].id, "near");
    assert_eq!(found.hits[0].score, 1.0);
    assert_eq!(found.hits[0].payload["kind"], "a");
    assert_eq!(found.hits[1].id, "far");
    assert!(found.hits[1].payload.is_empty());
    assert_eq!(found.candidates, 2);
}
