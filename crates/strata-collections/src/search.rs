//! Nearest-neighbour search over a loaded version: exact (brute force) search, which is also the
//! reference the HNSW search is measured against, and HNSW search with or without a filter.
//!
//! A filter is evaluated over the loaded payload index first, giving the set of matching rows.
//! When that set is small, in count or as a share of the points, HNSW's graph walk would pass
//! through mostly rejected points and miss matches, so those searches score the matching points
//! exactly instead. Otherwise the set becomes usearch's filter predicate, and the candidate list
//! grows as the share shrinks. Every hit's score is computed from the stored vector, so exact
//! and HNSW search agree on the score of a point.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{CollectionError, Result};
use crate::filter::Filter;
use crate::loaded::Loaded;
use crate::metric::norm;
use crate::rows::RowSet;

/// Hits returned unless the options set another number.
pub const DEFAULT_TOP_K: usize = 10;

/// Maximum hits one search returns.
pub const MAX_TOP_K: usize = 10_000;

/// HNSW candidate list size (usearch's `expansion_search`) unless the options set another.
pub const DEFAULT_EF: usize = 64;

/// Maximum HNSW candidate list size.
pub const MAX_EF: usize = 100_000;

/// A filter that matches fewer points than this is searched exactly.
pub const EXACT_FALLBACK_POINTS: usize = 2_000;

/// A filter that matches a smaller share of the points than this is searched exactly.
pub const EXACT_FALLBACK_FRACTION: f64 = 0.05;

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Number of hits to return, from 1 to [`MAX_TOP_K`].
    pub top_k: usize,
    /// Only points whose payload satisfies this filter are returned.
    pub filter: Option<Filter>,
    /// Score every (matching) point instead of walking the HNSW graph.
    pub exact: bool,
    /// HNSW candidate list size, from 1 to [`MAX_EF`]; [`DEFAULT_EF`] when `None`. It is raised
    /// to `top_k` when smaller, and scaled up for filters that match a small share of points.
    pub ef: Option<usize>,
}

impl Default for SearchOptions {
    /// Returns options for the [`DEFAULT_TOP_K`] nearest points by HNSW, without a filter.
    fn default() -> SearchOptions {
        SearchOptions {
            top_k: DEFAULT_TOP_K,
            filter: None,
            exact: false,
            ef: None,
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The point's id.
    pub id: String,
    /// Cosine similarity, dot product or Euclidean distance, by the collection's metric.
    pub score: f32,
    /// The point's payload.
    pub payload: Map<String, Value>,
}

/// The search that produced the hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchMethod {
    /// HNSW over every point.
    Hnsw,
    /// HNSW with the filter as a predicate on each candidate.
    FilteredHnsw,
    /// Exact search, because the options asked for it.
    Exact,
    /// Exact search over the matching points, because the filter matched few of them.
    ExactFallback,
}

/// The hits of a search, nearest first, and how they were found.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResults {
    /// Up to `top_k` hits, nearest first; ties are ordered by id.
    pub hits: Vec<Hit>,
    /// The search that ran.
    pub method: SearchMethod,
    /// Points that passed the filter, or every point without one.
    pub candidates: usize,
}

/// Checks `top_k` and `ef` against their ranges.
pub(crate) fn check_options(options: &SearchOptions) -> Result<()> {
    let invalid = |reason: String| Err(CollectionError::InvalidSearch { reason });
    if !(1..=MAX_TOP_K).contains(&options.top_k) {
        return invalid(format!(
            "top_k is {}, expected 1 to {MAX_TOP_K}",
            options.top_k
        ));
    }
    if let Some(ef) = options.ef
        && !(1..=MAX_EF).contains(&ef)
    {
        return invalid(format!("ef is {ef}, expected 1 to {MAX_EF}"));
    }
    Ok(())
}

/// Chooses the search for `candidates` matching points out of `total`.
pub(crate) fn choose_method(
    exact: bool,
    filtered: bool,
    candidates: usize,
    total: usize,
) -> SearchMethod {
    if exact {
        return SearchMethod::Exact;
    }
    if !filtered {
        return SearchMethod::Hnsw;
    }
    let share = candidates as f64 / total.max(1) as f64;
    if candidates < EXACT_FALLBACK_POINTS || share < EXACT_FALLBACK_FRACTION {
        return SearchMethod::ExactFallback;
    }
    SearchMethod::FilteredHnsw
}

/// Runs `method` and returns (row, score) pairs, nearest first. `keep` is the set of rows that
/// passed the filter, when there is one.
pub(crate) fn run(
    loaded: &Loaded,
    query: &[f32],
    options: &SearchOptions,
    method: SearchMethod,
    keep: Option<&RowSet>,
) -> Result<Vec<(usize, f32)>> {
    let query_norm = norm(query);
    let ef = options.ef.unwrap_or(DEFAULT_EF).max(options.top_k);
    let keys = match method {
        SearchMethod::Exact | SearchMethod::ExactFallback => {
            return Ok(exact(loaded, query, query_norm, options.top_k, keep));
        }
        SearchMethod::Hnsw => loaded.index.search(query, options.top_k, ef)?,
        SearchMethod::FilteredHnsw => {
            let keep = keep.expect("a filtered search has a row set");
            let ef = filtered_ef(ef, keep.count(), loaded.len());
            let accept = |key| loaded.row(key).is_some_and(|row| keep.contains(row));
            loaded
                .index
                .filtered_search(query, options.top_k, ef, accept)?
        }
    };
    let mut scored = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(row) = loaded.row(key) else {
            return Err(CollectionError::Index {
                operation: "search",
                message: format!("the index returned key {key}, which no point of the version has"),
            });
        };
        scored.push((row, loaded.score(query, query_norm, row)));
    }
    scored.sort_by(|a, b| nearest_first(loaded, *a, *b));
    Ok(scored)
}

/// Scores every row that `keep` contains (every row without it) and returns the `top_k`
/// nearest.
fn exact(
    loaded: &Loaded,
    query: &[f32],
    query_norm: f32,
    top_k: usize,
    keep: Option<&RowSet>,
) -> Vec<(usize, f32)> {
    let score = |row| (row, loaded.score(query, query_norm, row));
    let mut scored: Vec<(usize, f32)> = match keep {
        Some(keep) => keep.iter().map(score).collect(),
        None => (0..loaded.len()).map(score).collect(),
    };
    if scored.len() > top_k {
        scored.select_nth_unstable_by(top_k - 1, |a, b| nearest_first(loaded, *a, *b));
        scored.truncate(top_k);
    }
    scored.sort_by(|a, b| nearest_first(loaded, *a, *b));
    scored
}

/// Scales the candidate list by the inverse share of matching points, so the walk meets about
/// `ef` matching candidates, capped at the number of points.
fn filtered_ef(ef: usize, candidates: usize, total: usize) -> usize {
    let share = candidates.max(1) as f64 / total.max(1) as f64;
    let scaled = (ef as f64 / share).ceil() as usize;
    scaled.clamp(ef, total.max(ef)).min(MAX_EF)
}

/// Orders (row, score) pairs nearest first, then by id.
fn nearest_first(loaded: &Loaded, left: (usize, f32), right: (usize, f32)) -> Ordering {
    let by_score = loaded.metric.nearest_first(left.1, right.1);
    by_score.then_with(|| loaded.id(left.0).cmp(loaded.id(right.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selective_filters_fall_back_to_exact() {
        let choose = |candidates| choose_method(false, true, candidates, 100_000);
        assert_eq!(choose(1_999), SearchMethod::ExactFallback);
        assert_eq!(choose(4_999), SearchMethod::ExactFallback);
        assert_eq!(choose(5_000), SearchMethod::FilteredHnsw);
        assert_eq!(
            choose_method(false, true, 2_500, 3_000),
            SearchMethod::FilteredHnsw
        );
        assert_eq!(choose_method(false, false, 10, 10), SearchMethod::Hnsw);
        assert_eq!(
            choose_method(true, true, 90_000, 100_000),
            SearchMethod::Exact
        );
    }

    #[test]
    fn filtered_ef_grows_as_share_shrinks() {
        assert_eq!(filtered_ef(64, 5_000, 10_000), 128);
        assert_eq!(filtered_ef(64, 10_000, 10_000), 64);
        assert_eq!(filtered_ef(64, 1, 100), 100);
    }

    #[test]
    fn options_out_of_range_are_named() {
        let zero = SearchOptions {
            top_k: 0,
            ..SearchOptions::default()
        };
        let error = check_options(&zero).unwrap_err().to_string();
        assert!(error.contains("top_k is 0"), "{error}");
        let no_ef = SearchOptions {
            ef: Some(0),
            ..SearchOptions::default()
        };
        let error = check_options(&no_ef).unwrap_err().to_string();
        assert!(error.contains("ef is 0"), "{error}");
    }
}
