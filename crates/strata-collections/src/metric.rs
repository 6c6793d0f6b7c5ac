//! Distance metrics: the metric names a collection records, the scores hits report, and the
//! matching metric of the HNSW index.
//!
//! Scores are computed here, in Rust, for both exact and HNSW search, so one point always gets
//! the same score whichever search found it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CollectionError;

/// A distance metric between two vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cosine similarity, so the score is in `[-1, 1]` and higher is closer.
    Cosine,
    /// Inner product; the score is the dot product and higher is closer.
    Dot,
    /// Euclidean distance; the score is the distance and lower is closer.
    L2,
}

impl Metric {
    /// Returns the metric's name as collections record it: `cosine`, `dot` or `l2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }

    /// True when a higher score means a closer point (cosine and dot), false for `l2`.
    pub fn higher_is_closer(self) -> bool {
        !matches!(self, Metric::L2)
    }

    /// Returns the score of `point` against `query`.
    ///
    /// `query_norm` and `point_norm` are the Euclidean norms of the two vectors; only cosine
    /// reads them, and it needs both to be non-zero.
    pub fn score(self, query: &[f32], query_norm: f32, point: &[f32], point_norm: f32) -> f32 {
        match self {
            Metric::Cosine => dot(query, point) / (query_norm * point_norm),
            Metric::Dot => dot(query, point),
            Metric::L2 => squared_distance(query, point).sqrt(),
        }
    }

    /// Orders two scores nearest first.
    pub fn nearest_first(self, left: f32, right: f32) -> Ordering {
        match self.higher_is_closer() {
            true => right.total_cmp(&left),
            false => left.total_cmp(&right),
        }
    }

    /// Returns the HNSW library's metric that ranks points as this one does.
    ///
    /// usearch's `Cos` is `1 - cosine`, `IP` is `1 - dot` and `L2sq` is the squared distance,
    /// each lower for closer points, so their order equals the order of [`Metric::score`].
    pub(crate) fn index_kind(self) -> usearch::MetricKind {
        match self {
            Metric::Cosine => usearch::MetricKind::Cos,
            Metric::Dot => usearch::MetricKind::IP,
            Metric::L2 => usearch::MetricKind::L2sq,
        }
    }
}

/// Returns the Euclidean norm of `vector`.
pub(crate) fn norm(vector: &[f32]) -> f32 {
    dot(vector, vector).sqrt()
}

fn dot(left: &[f32], right: &[f32]) -> f32 {
    lane_sum(left, right, |a, b| a * b)
}

fn squared_distance(left: &[f32], right: &[f32]) -> f32 {
    lane_sum(left, right, |a, b| (a - b) * (a - b))
}

/// Number of independent running sums. It is a multiple of the SIMD width, so the compiler
/// vectorizes the sums.
const LANES: usize = 8;

/// Sums `term` over the pairs of values in [`LANES`] independent sums, then adds those up.
/// A single running sum would fix the order of additions and keep the loop scalar.
fn lane_sum(left: &[f32], right: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut sums = [0.0f32; LANES];
    let (left_chunks, right_chunks) = (left.chunks_exact(LANES), right.chunks_exact(LANES));
    let tail: f32 = (left_chunks.remainder().iter())
        .zip(right_chunks.remainder())
        .map(|(a, b)| term(*a, *b))
        .sum();
    for (a, b) in left_chunks.zip(right_chunks) {
        for lane in 0..LANES {
            sums[lane] += term(a[lane], b[lane]);
        }
    }
    sums.iter().sum::<f32>() + tail
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = CollectionError;

    /// Parses `cosine`, `dot` or `l2`.
    fn from_str(s: &str) -> Result<Metric, CollectionError> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            "l2" => Ok(Metric::L2),
            _ => Err(CollectionError::UnknownMetric {
                value: s.to_string(),
            }),
        }
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Metric, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            assert_eq!(metric.as_str().parse::<Metric>().unwrap(), metric);
            let json = serde_json::to_string(&metric).unwrap();
            assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), metric);
        }
    }

    #[test]
    fn unknown_metric_names_value_and_choices() {
        let error = "manhattan".parse::<Metric>().unwrap_err().to_string();
        assert!(error.contains("`manhattan`"), "{error}");
        assert!(error.contains("`cosine`, `dot` or `l2`"), "{error}");
        let error = serde_json::from_str::<Metric>("\"Cosine\"").unwrap_err();
        assert!(error.to_string().contains("`Cosine`"), "{error}");
    }

    #[test]
    fn scores_follow_definitions() {
        let (a, b) = ([3.0, 4.0], [4.0, 3.0]);
        let (na, nb) = (norm(&a), norm(&b));
        assert_eq!(na, 5.0);
        assert!((Metric::Cosine.score(&a, na, &b, nb) - 24.0 / 25.0).abs() < 1e-6);
        assert_eq!(Metric::Dot.score(&a, na, &b, nb), 24.0);
        assert!((Metric::L2.score(&a, na, &b, nb) - 2f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn nearest_first_depends_on_direction() {
        assert_eq!(Metric::Dot.nearest_first(2.0, 1.0), Ordering::Less);
        assert_eq!(Metric::L2.nearest_first(2.0, 1.0), Ordering::Greater);
    }
}
