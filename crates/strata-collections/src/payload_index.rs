//! The payloads of a loaded version, kept in memory for searches. Each payload is kept as
//! compact JSON to return with hits. For each top-level field, the rows of each value are kept
//! in sorted lists, so a search evaluates its filter from those lists without parsing payloads.
//!
//! A field's values are indexed by kind: numbers in a list sorted by their value as `f64`,
//! strings in a sorted map, and booleans and nulls as lists of rows. An array value indexes each
//! of its scalar elements, because a condition on an array holds when any element satisfies it.
//! Objects, and arrays inside arrays, are never equal to or ordered against a filter literal, so
//! they are only counted as the field being present.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Map, Number, Value};

use crate::error::{CollectionError, Result};
use crate::filter::order_numbers;
use crate::rows::RowSet;

/// The payloads of every row of a loaded version.
#[derive(Debug, Default)]
pub(crate) struct PayloadIndex {
    /// Every payload as compact JSON, one after another.
    text: String,
    /// End of each row's payload in `text`.
    ends: Vec<usize>,
    /// The index of each top-level field some payload has.
    fields: BTreeMap<String, FieldIndex>,
}

/// The rows of each value of one top-level field.
#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    /// Number elements, sorted by their value as `f64`.
    numbers: Vec<NumberEntry>,
    /// Rows of each string element.
    strings: BTreeMap<String, Vec<u32>>,
    /// Rows with `true`, `false` and `null` elements.
    trues: Vec<u32>,
    falses: Vec<u32>,
    nulls: Vec<u32>,
}

/// One number element of a field.
#[derive(Debug)]
struct NumberEntry {
    /// The value as `f64`, the sort key.
    approx: f64,
    /// The value as written, for exact comparisons between integers.
    exact: Number,
    row: u32,
}

impl PayloadIndex {
    /// Adds the payload of the next row.
    pub(crate) fn push(&mut self, payload: &Map<String, Value>) {
        let row = u32::try_from(self.ends.len()).expect("a version holds fewer than 2^32 points");
        let json = serde_json::to_string(payload).expect("a JSON map always serializes");
        self.text.push_str(&json);
        self.ends.push(self.text.len());

        for (field, value) in payload {
            let index = self.fields.entry(field.clone()).or_default();
            match value {
                Value::Array(elements) => elements.iter().for_each(|e| index.add(e, row)),
                other => index.add(other, row),
            }
        }
    }

    /// Sorts the number lists; call once after the last [`PayloadIndex::push`].
    pub(crate) fn finish(&mut self) {
        for index in self.fields.values_mut() {
            index
                .numbers
                .sort_by(|a, b| a.approx.total_cmp(&b.approx).then(a.row.cmp(&b.row)));
        }
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Returns the payload of `row`.
    pub(crate) fn payload(&self, row: usize) -> Result<Map<String, Value>> {
        let start = row.checked_sub(1).map_or(0, |previous| self.ends[previous]);
        let text = &self.text[start..self.ends[row]];
        serde_json::from_str(text).map_err(|source| CollectionError::Json {
            document: format!("in-memory payload of row {row}"),
            source,
        })
    }

    /// Returns the index of `field`, when some payload has it.
    pub(crate) fn field(&self, field: &str) -> Option<&FieldIndex> {
        self.fields.get(field)
    }

    /// Returns every top-level field some payload has, sorted.
    pub(crate) fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }
}

impl FieldIndex {
    /// Indexes one scalar element of `row`; other elements never match a literal.
    fn add(&mut self, value: &Value, row: u32) {
        match value {
            // Every `Number` has an `f64` value unless serde_json's arbitrary precision is on.
            Value::Number(number) => {
                if let Some(approx) = number.as_f64() {
                    let exact = number.clone();
                    self.numbers.push(NumberEntry { approx, exact, row });
                }
            }
            Value::String(text) => self.strings.entry(text.clone()).or_default().push(row),
            Value::Bool(true) => self.trues.push(row),
            Value::Bool(false) => self.falses.push(row),
            Value::Null => self.nulls.push(row),
            Value::Array(_) | Value::Object(_) => {}
        }
    }

    /// Adds to `rows` every row with an element whose order against `literal` (the element
    /// first) `accept` accepts. Values of another kind than the literal have no order.
    pub(crate) fn select(
        &self,
        literal: &Value,
        accept: impl Fn(Ordering) -> bool,
        rows: &mut RowSet,
    ) {
        match literal {
            Value::Number(number) => self.select_numbers(number, accept, rows),
            Value::String(text) => self.select_strings(text, accept, rows),
            Value::Bool(flag) if accept(Ordering::Equal) => {
                let equal = if *flag { &self.trues } else { &self.falses };
                rows.extend(equal.iter().copied());
            }
            Value::Null if accept(Ordering::Equal) => rows.extend(self.nulls.iter().copied()),
            _ => {}
        }
    }

    /// Numbers below the literal as `f64` are below it exactly too, and likewise above,
    /// because converting to `f64` never reverses an order. Only the entries equal as `f64`
    /// are compared exactly.
    fn select_numbers(
        &self,
        literal: &Number,
        accept: impl Fn(Ordering) -> bool,
        rows: &mut RowSet,
    ) {
        let Some(target) = literal.as_f64() else {
            return;
        };
        let below = self.numbers.partition_point(|entry| entry.approx < target);
        let through = self.numbers.partition_point(|entry| entry.approx <= target);
        if accept(Ordering::Less) {
            rows.extend(self.numbers[..below].iter().map(|entry| entry.row));
        }
        if accept(Ordering::Greater) {
            rows.extend(self.numbers[through..].iter().map(|entry| entry.row));
        }
        for entry in &self.numbers[below..through] {
            if order_numbers(&entry.exact, literal).is_some_and(&accept) {
                rows.insert(entry.row as usize);
            }
        }
    }

    fn select_strings(&self, literal: &str, accept: impl Fn(Ordering) -> bool, rows: &mut RowSet) {
        let mut add = |range: (Bound<&str>, Bound<&str>)| {
            for posting in self.strings.range::<str, _>(range).map(|(_, rows)| rows) {
                rows.extend(posting.iter().copied());
            }
        };
        if accept(Ordering::Less) {
            add((Bound::Unbounded, Bound::Excluded(literal)));
        }
        if accept(Ordering::Equal) {
            add((Bound::Included(literal), Bound::Included(literal)));
        }
        if accept(Ordering::Greater) {
            add((Bound::Excluded(literal), Bound::Unbounded));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn index_of(payloads: &[Value]) -> PayloadIndex {
        let mut index = PayloadIndex::default();
        for payload in payloads {
            index.push(payload.as_object().unwrap());
        }
        index.finish();
        index
    }

    fn rows_where(
        index: &PayloadIndex,
        field: &str,
        literal: Value,
        order: Ordering,
    ) -> Vec<usize> {
        let mut rows = RowSet::empty(index.len());
        index
            .field(field)
            .unwrap()
            .select(&literal, |found| found == order, &mut rows);
        rows.iter().collect()
    }

    #[test]
    fn large_integers_compare_exactly() {
        let big = 9_007_199_254_740_993_i64;
        let index = index_of(&[json!({"n": big}), json!({"n": big - 1}), json!({"n": 1.5})]);
        assert_eq!(
            rows_where(&index, "n", json!(big - 1), Ordering::Equal),
            [1]
        );
        assert_eq!(
            rows_where(&index, "n", json!(big - 1), Ordering::Greater),
            [0]
        );
        assert_eq!(rows_where(&index, "n", json!(2), Ordering::Less), [2]);
    }

    #[test]
    fn arrays_index_each_scalar_element() {
        let index = index_of(&[
            json!({"t": ["a", 3, [4]]}),
            json!({"t": {"a": 1}}),
            json!({}),
        ]);
        assert_eq!(rows_where(&index, "t", json!("a"), Ordering::Equal), [0]);
        assert_eq!(rows_where(&index, "t", json!(3), Ordering::Equal), [0]);
        assert!(rows_where(&index, "t", json!(4), Ordering::Equal).is_empty());
        assert_eq!(index.field_names().collect::<Vec<_>>(), ["t"]);
    }

    #[test]
    fn payloads_read_back_as_given() {
        let index = index_of(&[json!({"b": [1, "x"], "a": null}), json!({})]);
        assert_eq!(
            Value::Object(index.payload(0).unwrap()),
            json!({"a": null, "b": [1, "x"]})
        );
        assert!(index.payload(1).unwrap().is_empty());
    }
}
