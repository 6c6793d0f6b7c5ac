//! Caches of finished requests, kept so that the next request of the same conversation feeds
//! only what is new (the previous answer and the new message).

use strata_runtime::Sequence;

/// Cache positions the pool keeps allocated in all, about 750 MB of f32 keys and values for
/// SmolLM2-135M; a longer cache is dropped rather than pooled.
pub(super) const POOL_POSITIONS: usize = 16_384;

/// Finished sequences, oldest first.
#[derive(Debug)]
pub(super) struct SequencePool {
    sequences: Vec<Sequence>,
    capacity: usize,
    max_positions: usize,
}

impl SequencePool {
    /// Creates a pool that keeps at most `capacity` sequences whose caches have room for at most
    /// `max_positions` positions together.
    pub(super) fn new(capacity: usize, max_positions: usize) -> SequencePool {
        SequencePool {
            sequences: Vec::new(),
            capacity,
            max_positions,
        }
    }

    /// Keeps `sequence`, dropping the oldest ones while the pool is over its limits.
    pub(super) fn put(&mut self, sequence: Sequence) {
        let positions = sequence.cache().capacity();
        if self.capacity == 0 || positions > self.max_positions {
            return;
        }
        self.sequences.push(sequence);
        while self.sequences.len() > self.capacity || self.positions() > self.max_positions {
            self.sequences.remove(0);
        }
    }

    /// Positions allocated by the pooled caches.
    fn positions(&self) -> usize {
        self.sequences
            .iter()
            .map(|sequence| sequence.cache().capacity())
            .sum()
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
