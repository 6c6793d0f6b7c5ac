//! Sets of rows of a loaded version, as bitsets: what a filter evaluates to, and what filtered
//! searches test each candidate against.

/// A set of rows out of `0..len`, one bit per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowSet {
    words: Vec<u64>,
    len: usize,
}

impl RowSet {
    /// Returns the empty set of rows out of `0..len`.
    pub(crate) fn empty(len: usize) -> RowSet {
        RowSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Adds `row`, which must be below the set's length.
    pub(crate) fn insert(&mut self, row: usize) {
        self.words[row / 64] |= 1 << (row % 64);
    }

    /// Adds every row of `rows`.
    pub(crate) fn extend(&mut self, rows: impl IntoIterator<Item = u32>) {
        for row in rows {
            self.insert(row as usize);
        }
    }

    /// True when `row` is in the set.
    pub(crate) fn contains(&self, row: usize) -> bool {
        self.words
            .get(row / 64)
            .is_some_and(|word| word & (1 << (row % 64)) != 0)
    }

    /// Number of rows in the set.
    pub(crate) fn count(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// Keeps only the rows that `other` also has.
    pub(crate) fn intersect(&mut self, other: &RowSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word &= other;
        }
    }

    /// Adds every row of `other`.
    pub(crate) fn union(&mut self, other: &RowSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word |= other;
        }
    }

    /// Replaces the set by the rows of `0..len` it lacks.
    pub(crate) fn complement(&mut self) {
        for word in &mut self.words {
            *word = !*word;
        }
        let tail = self.len % 64;
        if let Some(last) = self.words.last_mut()
            && tail != 0
        {
            *last &= (1 << tail) - 1;
        }
    }

    /// Returns the rows in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(index * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(len: usize, rows: &[u32]) -> RowSet {
        let mut set = RowSet::empty(len);
        set.extend(rows.iter().copied());
        set
    }

    #[test]
    fn complement_stays_within_length() {
        let mut rows = set(70, &[0, 64, 69]);
        rows.complement();
        assert_eq!(rows.count(), 67);
        assert!(!rows.contains(64));
        assert!(!rows.contains(70));
        assert_eq!(rows.iter().last(), Some(68));
    }

    #[test]
    fn set_operations_combine_rows() {
        let mut both = set(130, &[1, 5, 128]);
        both.intersect(&set(130, &[5, 128, 129]));
        assert_eq!(both.iter().collect::<Vec<_>>(), [5, 128]);
        both.union(&set(130, &[0]));
        assert_eq!(both.iter().collect::<Vec<_>>(), [0, 5, 128]);
    }
}
