//! Payload filters: a small expression language over the top-level fields of a point's payload.
//!
//! ```text
//! kind = "image" and year >= 2020 and tag in ["a", "b"]
//! not (lang = "de" or lang = "fr") and score < 0.5
//! ```
//!
//! Conditions are `FIELD OP VALUE` with `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`, and
//! `FIELD in [VALUE, ...]`. They combine with `and`, `or`, `not` and parentheses; `not` binds
//! tightest and `or` loosest, and keywords are case-insensitive. A field name starts with a
//! letter or `_` and continues with letters, digits, `_`, `-` or `.`. The whole name is one
//! top-level payload key, so `a.b` does not look inside an object `a`. Values are quoted
//! strings (double or single quotes), numbers, `true`, `false` and `null`. The matching rules
//! are in `eval.rs`.

mod eval;
mod lexer;
mod parse;
mod select;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::FilterError;
use crate::payload_index::PayloadIndex;
use crate::rows::RowSet;
use lexer::CompareOp;

pub(crate) use eval::order_numbers;

/// A parsed payload filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    source: String,
    expr: Expr,
}

/// The expression tree of a filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    /// Every term holds.
    And(Vec<Expr>),
    /// At least one term holds.
    Or(Vec<Expr>),
    /// The inner expression does not hold.
    Not(Box<Expr>),
    /// `field op value`.
    Compare {
        field: String,
        op: CompareOp,
        value: Value,
    },
    /// `field in [values]`.
    In { field: String, values: Vec<Value> },
}

impl Filter {
    /// Parses a filter expression; an error names the column and the token where it failed.
    pub fn parse(source: &str) -> Result<Filter, FilterError> {
        let tokens = lexer::tokenize(source)?;
        let expr = parse::parse(&tokens)?;
        Ok(Filter {
            source: source.to_string(),
            expr,
        })
    }

    /// True when `payload` satisfies the filter.
    pub fn matches(&self, payload: &Map<String, Value>) -> bool {
        eval::matches(&self.expr, payload)
    }

    /// Returns the rows of `index` whose payload satisfies the filter; the same rows as
    /// [`Filter::matches`] on each payload.
    pub(crate) fn select(&self, index: &PayloadIndex) -> RowSet {
        select::select(&self.expr, index)
    }

    /// Returns the payload fields the filter names, sorted.
    pub fn fields(&self) -> BTreeSet<&str> {
        let mut fields = BTreeSet::new();
        collect_fields(&self.expr, &mut fields);
        fields
    }

    /// Returns the expression as it was given.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn collect_fields<'a>(expr: &'a Expr, fields: &mut BTreeSet<&'a str>) {
    match expr {
        Expr::And(terms) | Expr::Or(terms) => {
            for term in terms {
                collect_fields(term, fields);
            }
        }
        Expr::Not(inner) => collect_fields(inner, fields),
        Expr::Compare { field, .. } | Expr::In { field, .. } => {
            fields.insert(field);
        }
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn check(filter: &str, value: Value) -> bool {
        Filter::parse(filter).unwrap().matches(&payload(value))
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let filter = "a = 1 or b = 1 and c = 1";
        assert!(check(filter, json!({"a": 1})));
        assert!(!check(filter, json!({"b": 1})));
        assert!(!check("(a = 1 or b = 1) and c = 1", json!({"a": 1})));
    }

    #[test]
    fn not_negates_and_missing_fields_fail() {
        assert!(check("not a = 1", json!({"a": 2})));
        assert!(check("not a = 1", json!({})));
        assert!(!check("a = 1", json!({})));
        assert!(!check("a < 1", json!({})));
        assert!(check("a != 1", json!({})));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(check("a = 1", json!({"a": 1.0})));
        assert!(check("a >= -2", json!({"a": -2})));
        assert!(check(
            "a < 18446744073709551615",
            json!({"a": 18446744073709551614u64})
        ));
        assert!(!check("a > 0.5", json!({"a": 0.25})));
    }

    #[test]
    fn strings_order_by_bytes() {
        assert!(check("day >= '2024-01-01'", json!({"day": "2024-03-05"})));
        assert!(!check("day < 'B'", json!({"day": "a"})));
    }

    #[test]
    fn kinds_never_mix() {
        assert!(!check("a = 1", json!({"a": "1"})));
        assert!(!check("a < 'x'", json!({"a": 1})));
        assert!(check("a = true", json!({"a": true})));
        assert!(check("a = null", json!({"a": null})));
        assert!(!check("a = null", json!({})));
    }

    #[test]
    fn arrays_match_any_element() {
        let value = json!({"tags": ["x", "y"], "n": [1, 5]});
        assert!(check("tags = 'y'", value.clone()));
        assert!(check("tags in ['z', 'x']", value.clone()));
        assert!(check("n > 4", value.clone()));
        assert!(!check("tags != 'x'", value));
    }

    #[test]
    fn fields_lists_each_name_once() {
        let filter = Filter::parse("b = 1 or (a in [1] and not b < 2)").unwrap();
        assert_eq!(filter.fields().into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(filter.to_string(), "b = 1 or (a in [1] and not b < 2)");
    }

    #[test]
    fn parse_errors_name_column_and_token() {
        for (source, column, token, message) in [
            ("kind = ", 8, "end of filter", "expected a value"),
            (
                "kind = 'a' and",
                15,
                "end of filter",
                "expected a field name",
            ),
            ("(kind = 'a'", 12, "end of filter", "expected `)`"),
            (
                "kind 'a'",
                6,
                "'a'",
                "expected an operator after field `kind`",
            ),
            ("kind = 'a' year = 1", 12, "year", "expected `and`, `or`"),
            ("tag in ['a' 'b']", 13, "'b'", "expected `,` or `]`"),
            ("tag in 'a'", 8, "'a'", "expected `[`"),
            ("year > true", 8, "true", "compares numbers or strings"),
            ("= 1", 1, "=", "expected a field name"),
        ] {
            let error = Filter::parse(source).unwrap_err();
            assert_eq!(error.column, column, "{source}: {error}");
            assert_eq!(error.token, token, "{source}: {error}");
            assert!(error.message.contains(message), "{source}: {error}");
            let text = error.to_string();
            assert!(text.contains(&format!("column {column}")), "{text}");
        }
    }
}
