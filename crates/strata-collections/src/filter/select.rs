//! Evaluates a filter expression over the payload index of a loaded version, giving the set of
//! matching rows. It follows the rules of `eval.rs` exactly. A condition is true for a row when
//! some scalar element of the field satisfies it, and `!=` is the negation of `=`. The operators
//! `not`, `and` and `or` become the complement, intersection and union of row sets.

use crate::filter::Expr;
use crate::filter::eval::accepts;
use crate::filter::lexer::CompareOp;
use crate::payload_index::PayloadIndex;
use crate::rows::RowSet;

/// Returns the rows of `index` whose payload satisfies `expr`.
pub(crate) fn select(expr: &Expr, index: &PayloadIndex) -> RowSet {
    match expr {
        Expr::And(terms) => combine(terms, index, RowSet::intersect),
        Expr::Or(terms) => combine(terms, index, RowSet::union),
        Expr::Not(inner) => {
            let mut rows = select(inner, index);
            rows.complement();
            rows
        }
        Expr::Compare { field, op, value } => compare(index, field, *op, value),
        Expr::In { field, values } => {
            let mut rows = RowSet::empty(index.len());
            for value in values {
                rows.union(&compare(index, field, CompareOp::Eq, value));
            }
            rows
        }
    }
}

/// Folds the row sets of `terms` with `join`. A parsed `and` or `or` has two terms or more.
fn combine(terms: &[Expr], index: &PayloadIndex, join: fn(&mut RowSet, &RowSet)) -> RowSet {
    let mut terms = terms.iter().map(|term| select(term, index));
    let mut rows = terms.next().unwrap_or_else(|| RowSet::empty(index.len()));
    for term in terms {
        join(&mut rows, &term);
    }
    rows
}

/// Returns the rows where `field op literal` is true.
fn compare(
    index: &PayloadIndex,
    field: &str,
    op: CompareOp,
    literal: &serde_json::Value,
) -> RowSet {
    if op == CompareOp::Ne {
        let mut rows = compare(index, field, CompareOp::Eq, literal);
        rows.complement();
        return rows;
    }
    let mut rows = RowSet::empty(index.len());
    if let Some(field) = index.field(field) {
        field.select(literal, |order| accepts(op, order), &mut rows);
    }
    rows
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use crate::filter::Filter;
    use crate::payload_index::PayloadIndex;

    /// Payloads that mix kinds, arrays, objects, large integers and missing fields.
    fn payloads() -> Vec<Map<String, Value>> {
        let values = [
            json!(1),
            json!(1.0),
            json!(-2),
            json!(2.5),
            json!(u64::MAX),
            json!(9_007_199_254_740_993_i64),
            json!("a"),
            json!("b"),
            json!(""),
            json!(true),
            json!(false),
            json!(null),
            json!([1, "a", [2]]),
            json!(["b", null]),
            json!({"x": 1}),
        ];
        (0..values.len() * 3)
            .map(|i| {
                let mut payload = Map::new();
                if i % 3 != 2 {
                    payload.insert("f".to_string(), values[i % values.len()].clone());
                }
                payload.insert("g".to_string(), values[(i * 7) % values.len()].clone());
                payload
            })
            .collect()
    }

    #[test]
    fn select_agrees_with_matches() {
        let payloads = payloads();
        let mut index = PayloadIndex::default();
        payloads.iter().for_each(|payload| index.push(payload));
        index.finish();

        let literals = [
            "1",
            "1.0",
            "-2",
            "2.5",
            "0",
            "18446744073709551615",
            "9007199254740992",
            "9007199254740993",
            "'a'",
            "'b'",
            "''",
            "'ab'",
            "true",
            "false",
            "null",
        ];
        let mut filters = Vec::new();
        for literal in literals {
            let ordered = !matches!(literal, "true" | "false" | "null");
            let ops: &[&str] = match ordered {
                true => &["=", "!=", "<", "<=", ">", ">="],
                false => &["=", "!="],
            };
            for op in ops {
                filters.push(format!("f {op} {literal}"));
            }
        }
        filters.extend([
            "f in [1, 'a', null]".to_string(),
            "not f = 1 and g != 'b'".to_string(),
            "f = 'a' or g < 2 or not (g >= 'a')".to_string(),
        ]);

        for source in filters {
            let filter = Filter::parse(&source).unwrap();
            let expected: Vec<usize> = (0..payloads.len())
                .filter(|&row| filter.matches(&payloads[row]))
                .collect();
            let selected: Vec<usize> = filter.select(&index).iter().collect();
            assert_eq!(selected, expected, "{source}");
        }
    }
}
