//! What a collection is created with: its dimension, metric, embedder, segment size and HNSW
//! build settings.

use crate::config::IndexSettings;
use crate::error::{CollectionError, Result};
use crate::metric::Metric;

/// Points per segment unless the spec sets another number.
pub const DEFAULT_SEGMENT_POINTS: usize = 4096;

/// Maximum dimension of a collection's vectors.
pub const MAX_DIM: usize = 65_536;

/// Maximum points per segment. A segment of this many points at [`MAX_DIM`] is 256 GiB, so the
/// cap mostly guards against a mistyped value.
pub const MAX_SEGMENT_POINTS: usize = 1 << 20;

/// Maximum HNSW graph degree ([`IndexSettings::connectivity`]); the cap only guards against a
/// mistyped value.
pub const MAX_CONNECTIVITY: usize = 1_024;

/// Maximum candidate list size while inserting ([`IndexSettings::expansion_add`]).
pub const MAX_EXPANSION_ADD: usize = 100_000;

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
    /// Settings the HNSW index is built with, kept for the collection's life: connectivity
    /// from 2 to [`MAX_CONNECTIVITY`], expansion while inserting from 1 to
    /// [`MAX_EXPANSION_ADD`].
    pub index: IndexSettings,
}

impl CollectionSpec {
    /// Builds a spec with no embedder, [`DEFAULT_SEGMENT_POINTS`] points per segment and the
    /// default index settings.
    pub fn new(dim: usize, metric: Metric) -> CollectionSpec {
        CollectionSpec {
            dim,
            metric,
            embedder: None,
            segment_points: DEFAULT_SEGMENT_POINTS,
            index: IndexSettings::default(),
        }
    }

    /// Sets the embedder's name.
    pub fn with_embedder(mut self, embedder: impl Into<String>) -> CollectionSpec {
        self.embedder = Some(embedder.into());
        self
    }

    /// Sets the HNSW build settings.
    pub fn with_index(mut self, index: IndexSettings) -> CollectionSpec {
        self.index = index;
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
        self.check_index()
    }

    /// Checks the HNSW build settings; usearch rejects a graph degree below 2.
    fn check_index(&self) -> Result<()> {
        let invalid = |reason: String| Err(CollectionError::InvalidSpec { reason });
        let IndexSettings {
            connectivity,
            expansion_add,
        } = self.index;
        if !(2..=MAX_CONNECTIVITY).contains(&connectivity) {
            return invalid(format!(
                "index connectivity is {connectivity}, expected 2 to {MAX_CONNECTIVITY}"
            ));
        }
        if !(1..=MAX_EXPANSION_ADD).contains(&expansion_add) {
            return invalid(format!(
                "index expansion_add is {expansion_add}, expected 1 to {MAX_EXPANSION_ADD}"
            ));
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

    #[test]
    fn out_of_range_index_settings_are_named() {
        let degree_one = IndexSettings {
            connectivity: 1,
            ..IndexSettings::default()
        };
        let spec = CollectionSpec::new(4, Metric::L2).with_index(degree_one);
        let error = spec.check().unwrap_err().to_string();
        assert!(error.contains("connectivity is 1"), "{error}");

        let no_expansion = IndexSettings {
            expansion_add: 0,
            ..IndexSettings::default()
        };
        let spec = CollectionSpec::new(4, Metric::L2).with_index(no_expansion);
        let error = spec.check().unwrap_err().to_string();
        assert!(error.contains("expansion_add is 0"), "{error}");

        let wide = IndexSettings {
            connectivity: 32,
            expansion_add: 200,
        };
        assert!(
            CollectionSpec::new(4, Metric::L2)
                .with_index(wide)
                .check()
                .is_ok()
        );
    }
}
