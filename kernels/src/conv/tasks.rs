//! How the passes split their work over threads: pieces of an output laid out
//! `[batch][channels][plane]`, one per (image, range of channel blocks), so that each rayon task
//! writes its own slice.

use crate::conv::tile::ChannelBlock;

/// Splits `data` (laid out `[batch][channels][plane]`) into one mutable piece per
/// (image, range of channel blocks), in order. `ranges` are ranges of block indices covering all
/// blocks; each piece is returned with its image and block range.
pub(in crate::conv) fn split_by_image_and_blocks<'a>(
    data: &'a mut [f32],
    batch: usize,
    blocks: &[ChannelBlock],
    ranges: &[std::ops::Range<usize>],
    plane: usize,
) -> Vec<(usize, std::ops::Range<usize>, &'a mut [f32])> {
    let mut pieces = Vec::with_capacity(batch * ranges.len());
    let mut rest = data;
    for image in 0..batch {
        for range in ranges {
            let channels: usize = blocks[range.clone()].iter().map(|b| b.len).sum();
            let (piece, tail) = rest.split_at_mut(channels * plane);
            pieces.push((image, range.clone(), piece));
            rest = tail;
        }
    }
    pieces
}

/// Ranges of block indices such that `batch * ranges` gives both cores several tasks.
pub(in crate::conv) fn block_ranges(
    batch: usize,
    block_count: usize,
) -> Vec<std::ops::Range<usize>> {
    let wanted_tasks = 4 * rayon::current_num_threads();
    let pieces = wanted_tasks.div_ceil(batch).clamp(1, block_count.max(1));
    (0..pieces)
        .map(|i| (i * block_count / pieces)..((i + 1) * block_count / pieces))
        .filter(|r| !r.is_empty())
        .collect()
}
