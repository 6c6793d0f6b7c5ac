//! Evaluates a filter expression against one point's payload.
//!
//! Only top-level payload fields are addressed. A condition on a field the payload lacks is
//! false, except `!=`, which is the negation of `=` and so true. When the field's value is an
//! array, a condition is true when any element satisfies it, so `tag = "a"` matches
//! `"tag": ["a", "b"]`.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::filter::Expr;
use crate::filter::lexer::CompareOp;

/// True when `payload` satisfies `expr`.
pub(crate) fn matches(expr: &Expr, payload: &Map<String, Value>) -> bool {
    match expr {
        Expr::And(terms) => terms.iter().all(|term| matches(term, payload)),
        Expr::Or(terms) => terms.iter().any(|term| matches(term, payload)),
        Expr::Not(inner) => !matches(inner, payload),
        Expr::Compare { field, op, value } => compare_field(payload.get(field), *op, value),
        Expr::In { field, values } => values
            .iter()
            .any(|value| compare_field(payload.get(field), CompareOp::Eq, value)),
    }
}

/// Applies `op` between the field's value (absent when `None`) and the literal.
fn compare_field(field: Option<&Value>, op: CompareOp, literal: &Value) -> bool {
    if op == CompareOp::Ne {
        return !compare_field(field, CompareOp::Eq, literal);
    }
    match field {
        None => false,
        Some(Value::Array(elements)) if !literal.is_array() => elements
            .iter()
            .any(|element| compare_value(element, op, literal)),
        Some(value) => compare_value(value, op, literal),
    }
}

/// Applies `op`, one of `=`, `<`, `<=`, `>` or `>=`, between two JSON values.
fn compare_value(value: &Value, op: CompareOp, literal: &Value) -> bool {
    order(value, literal).is_some_and(|order| accepts(op, order))
}

/// True when `op`, one of `=`, `<`, `<=`, `>` or `>=`, holds for a value that orders as `order`
/// against the literal.
pub(crate) fn accepts(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
    }
}

/// Orders two values of the same kind: numbers by value, strings by their bytes, booleans and
/// nulls by equality only. Values of different kinds have no order.
fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => order_numbers(a, b),
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Bool(a), Value::Bool(b)) => (a == b).then_some(Ordering::Equal),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// Compares integers exactly and everything else as f64, so `1` equals `1.0`.
pub(crate) fn order_numbers(left: &Number, right: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (left.as_i64(), right.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (left.as_u64(), right.as_u64()) {
        return Some(a.cmp(&b));
    }
    left.as_f64()?.partial_cmp(&right.as_f64()?)
}
