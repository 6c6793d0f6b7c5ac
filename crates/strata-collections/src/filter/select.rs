//! Evaluates a filter expression over the payload index of a loaded version, giving the set of
//! matching rows. It follows the rules of `eval.rs` exactly: a condition holds for a row when
//! some scalar element of the field satisfies it, `!=` is the negation of `=`, and `not`, `and`
//! and `or` become the complement, intersection and union of row sets.

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

/// Folds the row sets of `terms` with `join`; a filter's `and` and `or` have two terms or more.
fn combine(terms: &[Expr], index: &PayloadIndex, join: fn(&mut RowSet, &RowSet)) -> RowSet {
    let mut terms = terms.iter().map(|term| select(term, index));
    let mut rows = terms.next().unwrap_or_else(|| RowSet::empty(index.len()));
    for term in terms {
        join(&mut rows, &term);
    }
    rows
}

/// Returns the rows where `field op literal` holds.
fn compare(index: &PayloadIndex, field: &str, op: CompareOp, literal: &serde_json::Value) -> RowSet {
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
