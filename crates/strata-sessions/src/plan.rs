//! Choosing a snapshot's blocks: reuse the parent's where the tokens agree, encode the rest.
//!
//! New blocks end on multiples of the block size, so a session saved again and again fills its
//! last block in a few small pieces and then starts full-size ones. When one block-size window
//! already holds [`MAX_PIECES`] reused pieces, the window is encoded again as one block, which
//! bounds how many files a restore opens.

use std::ops::Range;

/// Most reused pieces one window may hold before it is encoded again as one block.
pub(crate) const MAX_PIECES: usize = 4;

/// One block of the snapshot being saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Planned {
    /// The parent's block at this index, referenced as it is.
    Reuse(usize),
    /// Positions to encode from the live cache.
    Encode(Range<usize>),
}

/// Plans blocks covering `0..total`.
///
/// `parent` lists the parent's blocks as position ranges in order. The first `shared` tokens of
/// the session equal the parent's, so any parent block inside `0..shared` contains the same keys
/// and values.
pub(crate) fn plan_blocks(
    parent: &[Range<usize>],
    shared: usize,
    total: usize,
    block_tokens: usize,
) -> Vec<Planned> {
    let limit = shared.min(total);
    let mut reused: Vec<usize> = Vec::new();
    let mut end = 0;
    for (index, block) in parent.iter().enumerate() {
        if block.start != end || block.end > limit || block.is_empty() {
            break;
        }
        reused.push(index);
        end = block.end;
    }

    let window = end / block_tokens * block_tokens;
    let pieces = reused
        .iter()
        .filter(|&&i| parent[i].start >= window)
        .count();
    if pieces >= MAX_PIECES {
        while reused.last().is_some_and(|&i| parent[i].start >= window) {
            reused.pop();
        }
        end = reused.last().map_or(0, |&i| parent[i].end);
    }

    let mut plan: Vec<Planned> = reused.into_iter().map(Planned::Reuse).collect();
    while end < total {
        let boundary = (end / block_tokens + 1) * block_tokens;
        let next = boundary.min(total);
        plan.push(Planned::Encode(end..next));
        end = next;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(plan: &[Planned], parent: &[Range<usize>]) -> Vec<Range<usize>> {
        plan.iter()
            .map(|block| match block {
                Planned::Reuse(i) => parent[*i].clone(),
                Planned::Encode(range) => range.clone(),
            })
            .collect()
    }

    #[test]
    fn a_fresh_session_is_cut_on_the_grid() {
        let plan = plan_blocks(&[], 0, 1000, 256);
        let expected = [0..256, 256..512, 512..768, 768..1000];
        assert_eq!(ranges(&plan, &[]), expected);
    }

    #[test]
    fn a_continued_session_reuses_every_shared_block() {
        let parent = [0..256, 256..512, 512..768, 768..1000];
        let plan = plan_blocks(&parent, 1000, 1050, 256);
        assert_eq!(plan[..4], [0, 1, 2, 3].map(Planned::Reuse));
        assert_eq!(
            plan[4..],
            [Planned::Encode(1000..1024), Planned::Encode(1024..1050)]
        );
    }

    #[test]
    fn a_block_past_the_shared_prefix_is_encoded_again() {
        let parent = [0..256, 256..512, 512..700];
        let plan = plan_blocks(&parent, 600, 650, 256);
        assert_eq!(ranges(&plan, &parent), [0..256, 256..512, 512..650]);
        assert_eq!(plan[2], Planned::Encode(512..650));
    }

    #[test]
    fn a_shorter_session_keeps_only_whole_blocks() {
        let parent = [0..256, 256..300];
        let plan = plan_blocks(&parent, 300, 280, 256);
        assert_eq!(plan, [Planned::Reuse(0), Planned::Encode(256..280)]);
    }

    #[test]
    fn a_fragmented_window_is_encoded_as_one_block() {
        let parent = [0..256, 256..270, 270..290, 290..300, 300..310];
        let plan = plan_blocks(&parent, 310, 320, 256);
        assert_eq!(plan, [Planned::Reuse(0), Planned::Encode(256..320)]);
    }

    #[test]
    fn an_empty_session_has_no_blocks() {
        assert!(plan_blocks(&[0..5, 5..10], 0, 0, 256).is_empty());
    }
}
