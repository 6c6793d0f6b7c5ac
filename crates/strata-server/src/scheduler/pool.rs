//! Caches of finished requests, kept so that the next request of the same conversation feeds
//! only what is new (the previous answer and the new message).

use strata_runtime::Sequence;

/// Finished sequences, oldest first.
#[derive(Debug)]
pub(super) struct SequencePool {
    sequences: Vec<Sequence>,
    capacity: usize,
}

impl SequencePool {
    /// A pool that keeps at most `capacity` sequences.
    pub(super) fn new(capacity: usize) -> SequencePool {
        SequencePool {
            sequences: Vec::new(),
            capacity,
        }
    }

    /// Keeps `sequence`, dropping the oldest one when the pool is full.
    pub(super) fn put(&mut self, sequence: Sequence) {
        if self.capacity == 0 {
            return;
        }
        if self.sequences.len() == self.capacity {
            self.sequences.remove(0);
        }
        self.sequences.push(sequence);
    }

    /// Takes the sequence sharing the longest prefix with `prompt`, with that length, when one
    /// shares at least `min_shared` tokens.
    pub(super) fn take_best(
        &mut self,
        prompt: &[u32],
        min_shared: usize,
    ) -> Option<(Sequence, usize)> {
        let (index, shared) = self
            .sequences
            .iter()
            .enumerate()
            .map(|(index, sequence)| (index, shared_prefix(sequence.tokens(), prompt)))
            .max_by_key(|&(index, shared)| (shared, index))?;
        if shared < min_shared.max(1) {
            return None;
        }
        Some((self.sequences.remove(index), shared))
    }

    /// Takes the oldest sequence, to reuse its allocation.
    pub(super) fn take_oldest(&mut self) -> Option<Sequence> {
        (!self.sequences.is_empty()).then(|| self.sequences.remove(0))
    }
}

/// Number of leading tokens `left` and `right` share.
pub(super) fn shared_prefix(left: &[u32], right: &[u32]) -> usize {
    left.iter().zip(right).take_while(|(a, b)| a == b).count()
}
