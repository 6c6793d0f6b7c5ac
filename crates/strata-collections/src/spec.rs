//! What a collection is created with: its dimension, metric, embedder and segment size.

use crate::error::{CollectionError, Result};
use crate::metric::Metric;

/// Points per segment unless the spec sets another number.
pub const DEFAULT_SEGMENT_POINTS: usize = 4096;

/// Maximum dimension of a collection's vectors.
pub const MAX_DIM: usize = 65_536;

/// Maximum points per segment. A segment of this many points at [`MAX_DIM`] is 256 GiB, so the
/// cap mostly guards against a mistyped value.
pub const MAX_SEGMENT_POINTS: usize = 1 << 20;

/// The fixed properties of a collection, given at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionSpec {
    /// Number of values in every vector, from 1 to [`MAX_DIM`].
    pub dim: usize,
    /// How closeness is measured.
    pub metric: Metric,
    /// Name of the model that embeds the collection's points and queries, for example a strata
    /// model reference; recorded for the reader, not checked.
    pub embedder: Option<String>,
    /// Maximum points per segment, from 1 to [`MAX_SEGMENT_POINTS`]; a change to one point
    /// rewrites the segment that contains it.
    pub segment_points: usize,
}

impl CollectionSpec {
    /// Builds a spec with no embedder and [`DEFAULT_SEGMENT_POINTS`] points per segment.
    pub fn new(dim: usize, metric: Metric) -> CollectionSpec {
        CollectionSpec {
            dim,
            metric,
            embedder: None,
            segment_points: DEFAULT_SEGMENT_POINTS,
        }
    }

    /// Sets the embedder's name.
    pub fn with_embedder(mut self, embedder: impl Into<String>) -> CollectionSpec {
        self.embedder = Some(embedder.into());
        self
    }

    /// Checks every field against its range.
    pub(crate) fn check(&self) -> Result<()> {
        let invalid = |reason: String| Err(CollectionError::InvalidSpec { reason });
        if !(1..=MAX_DIM).contains(&self.dim) {
            return invalid(format!("dim is {}, expected 1 to {MAX_DIM}", self.dim));
        }
        if !(1..=MAX_SEGMENT_POINTS).contains(&self.segment_points) {
            return invalid(format!(
                "segment_points is {}, expected 1 to {MAX_SEGMENT_POINTS}",
                self.segment_points
            ));
        }
        if self
            .embedder
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return invalid("embedder is an empty name; give a name or none".to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_fields_are_named() {
        let zero_dim = CollectionSpec::new(0, Metric::L2);
        let error = zero_dim.check().unwrap_err().to_string();
        assert!(error.contains("dim is 0"), "{error}");

        let mut no_segment = CollectionSpec::new(4, Metric::L2);
        no_segment.segment_points = 0;
        let error = no_segment.check().unwrap_err().to_string();
        assert!(error.contains("segment_points is 0"), "{error}");

        let blank = CollectionSpec::new(4, Metric::L2).with_embedder(" ");
        let error = blank.check().unwrap_err().to_string();
        assert!(error.contains("embedder"), "{error}");

        assert!(CollectionSpec::new(4, Metric::Dot).check().is_ok());
    }
}
