//! Points as callers give them, and the checks every vector and id passes before anything is
//! written or searched.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::config::CollectionConfig;
use crate::error::{CollectionError, Result};
use crate::metric::{Metric, norm};

/// Maximum length of a point id, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// A vector with its id and payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Unique id within the collection: 1 to [`MAX_ID_LEN`] bytes of UTF-8 without control
    /// characters.
    pub id: String,
    /// The embedding, with as many values as the collection's dimension.
    pub vector: Vec<f32>,
    /// JSON fields that filters can test.
    pub payload: Map<String, Value>,
}

impl Point {
    /// Builds a point with an empty payload.
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Point {
        Point {
            id: id.into(),
            vector,
            payload: Map::new(),
        }
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: Map<String, Value>) -> Point {
        self.payload = payload;
        self
    }
}

/// Checks a batch of points for `config`'s collection: ids valid and distinct, vectors of the
/// right dimension, finite and, for cosine, not all zeros.
pub(crate) fn check_points(points: &[Point], config: &CollectionConfig) -> Result<()> {
    let mut seen = HashSet::with_capacity(points.len());
    for point in points {
        check_id(&point.id)?;
        if !seen.insert(point.id.as_str()) {
            let id = point.id.clone();
            return Err(CollectionError::DuplicateId { id });
        }
        let label = format!("point `{}`", point.id);
        check_vector(&point.vector, &label, config)?;
    }
    Ok(())
}

/// Checks a batch of ids to delete: valid and distinct.
pub(crate) fn check_ids(ids: &[String]) -> Result<()> {
    let mut seen = HashSet::with_capacity(ids.len());
    for id in ids {
        check_id(id)?;
        if !seen.insert(id.as_str()) {
            let id = id.clone();
            return Err(CollectionError::DuplicateId { id });
        }
    }
    Ok(())
}

/// Checks a query vector for `config`'s collection.
pub(crate) fn check_query(query: &[f32], config: &CollectionConfig) -> Result<()> {
    check_vector(query, "the query vector", config)
}

fn check_id(id: &str) -> Result<()> {
    let invalid = |reason: &str| CollectionError::InvalidId {
        id: id.to_string(),
        reason: reason.to_string(),
    };
    if id.is_empty() {
        return Err(invalid("it is empty; give each point a non-empty id"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid("it contains a control character"));
    }
    Ok(())
}

/// Checks one vector; `label` names it in errors.
fn check_vector(vector: &[f32], label: &str, config: &CollectionConfig) -> Result<()> {
    if vector.len() != config.dim {
        let hint = match &config.embedder {
            Some(embedder) => format!("embed it with `{embedder}`, the collection's embedder"),
            None => format!("give vectors of {} values", config.dim),
        };
        return Err(CollectionError::DimensionMismatch {
            name: config.name.clone(),
            vector: label.to_string(),
            expected: config.dim,
            actual: vector.len(),
            hint,
        });
    }
    if let Some(index) = vector.iter().position(|value| !value.is_finite()) {
        return Err(CollectionError::NonFinite {
            vector: label.to_string(),
            index,
            value: vector[index].to_string(),
        });
    }
    if config.metric == Metric::Cosine && norm(vector) == 0.0 {
        let vector = label.to_string();
        return Err(CollectionError::ZeroVector { vector });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::CollectionSpec;

    fn config() -> CollectionConfig {
        let spec = CollectionSpec::new(2, Metric::Cosine).with_embedder("minilm");
        CollectionConfig::new("docs", &spec)
    }

    fn error_of(points: &[Point]) -> String {
        check_points(points, &config()).unwrap_err().to_string()
    }

    #[test]
    fn wrong_dimension_names_sizes_and_embedder() {
        let error = error_of(&[Point::new("a", vec![1.0, 2.0, 3.0])]);
        assert!(error.contains("point `a` has 3 values"), "{error}");
        assert!(error.contains("dimension 2"), "{error}");
        assert!(error.contains("`minilm`"), "{error}");
    }

    #[test]
    fn non_finite_values_are_named() {
        let error = error_of(&[Point::new("a", vec![1.0, f32::NAN])]);
        assert!(error.contains("NaN at index 1"), "{error}");
        let error = error_of(&[Point::new("b", vec![f32::NEG_INFINITY, 1.0])]);
        assert!(error.contains("-inf at index 0"), "{error}");
    }

    #[test]
    fn zero_vector_is_rejected_for_cosine() {
        let error = error_of(&[Point::new("a", vec![0.0, 0.0])]);
        assert!(error.contains("point `a` is all zeros"), "{error}");
    }

    #[test]
    fn ids_must_be_valid_and_distinct() {
        let error = error_of(&[Point::new("", vec![1.0, 0.0])]);
        assert!(error.contains("invalid point id ``"), "{error}");
        let error = error_of(&[Point::new("a\n", vec![1.0, 0.0])]);
        assert!(error.contains("control character"), "{error}");
        let twice = [
            Point::new("a", vec![1.0, 0.0]),
            Point::new("a", vec![0.0, 1.0]),
        ];
        assert!(error_of(&twice).contains("`a` appears twice"));
        let error = check_ids(&["x".to_string(), "x".to_string()]).unwrap_err();
        assert!(error.to_string().contains("`x` appears twice"), "{error}");
    }
}
