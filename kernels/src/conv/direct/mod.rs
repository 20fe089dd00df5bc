//! The direct convolution: a register-blocked SIMD kernel for every geometry that is neither
//! pointwise nor depthwise (any groups, asymmetric kernels, stride, padding, dilation).
//!
//! # One micro-kernel for all three passes
//!
//! Every pass is written as the same small outer-product loop, `tile` (in `conv/tile.rs`, which
//! the pointwise kernel shares): `P` lanes (pixels, or kernel taps) each read one `f32` at
//! `source[lane_base[p] + offset[t]]`, broadcast it, and multiply-add it into `V` vectors of 8
//! channels packed at `weights[t]`, for `t` over a table of offsets. The `P x V` accumulators stay in registers: 6 x 2 = 12 for a 16-channel block with
//! AVX2's 16 registers, 6 x 4 = 24 for a 32-channel block when AVX-512VL gives 256-bit code 32
//! registers. Each offset costs `V` vector loads and `P` broadcasts for `P * V` FMAs.
//!
//! * **forward** ([`forward`]): lanes are 6 consecutive output pixels, flattened over rows (so a
//!   narrow image wastes little in the tail); offsets run over `(in_channel, ky, kx)` in a
//!   zero-padded copy of the image; weights are packed once per call as
//!   `[block][tap][32 output channels]`. Bias is added as results are stored. Groups of at most
//!   4 input channels with rows of at least 16 output pixels (RGB stems, LeNet-5's first layer)
//!   use `forward_pixels` instead: 8 consecutive output pixels per vector, the input's columns
//!   split by stride phase so those pixels read consecutive values.
//! * **backward-data** ([`backward_data`]) is a convolution of the zero-padded output gradient
//!   with the transposed, flipped weights. Stride is handled by splitting the input into
//!   `stride_h x stride_w` phases (`iy mod stride_h`, `ix mod stride_w`): within a phase only some
//!   taps contribute and the gather is a stride-1 convolution, so every input-gradient element is
//!   written exactly once and no zeros are inserted. Groups of at most 4 input channels (an RGB
//!   stem) would leave vectors mostly empty, so they use `pixel_tile` (also in `conv/tile.rs`)
//!   instead: 8 consecutive pixels per vector, one broadcast weight per channel.
//! * **backward-weight** ([`backward_weight`]): lanes are 6 kernel taps, offsets run over the
//!   output pixels, and the "weights" are the output gradient transposed to
//!   `[image][pixel][32 output channels]`. Work is split over (channel block, tap range) and each
//!   task sums over the whole batch, so no partial gradients need reducing. Groups of at most 4
//!   input channels at column stride 1 (the first layer of LeNet-5 or VGG: 25 or 27 taps) use
//!   `weight_pixels` instead: 8 consecutive output pixels per vector, summed in the vectors,
//!   reduced once per task; twice as fast on those layers.
//!
//! Padding is materialised in a padded copy of the input or output gradient, so the inner loop
//! has no border tests; the copy is small next to the arithmetic, and its buffer is reused by the
//! next call on the same thread (`PaddedPlanes`).
//!
//! # Threads
//! rayon, over (image, channel-block range) for forward and backward-data (whole images when the
//! batch is large, channel blocks as well when it is small, so batch 1 keeps both cores busy),
//! and over (channel block, tap range) for backward-weight.
//!
//! Preconditions for every public function: the geometry is valid and every slice has the length
//! the geometry implies (the dispatcher in `conv/mod.rs` checks both).

mod backward_data;
mod backward_weight;
mod forward;
mod forward_pixels;
#[cfg(test)]
mod tests;
mod weight_pixels;

pub use backward_data::backward_data;
pub use backward_weight::backward_weight;
pub use forward::forward;

// The register tiles and channel blocks, shared with the pointwise kernel; the passes below
// import them from here.
use crate::conv::padded::{PaddedImages, PaddedPlanes};
use crate::conv::tasks::{block_ranges, split_by_image_and_blocks};
use crate::conv::tile::{
    channel_blocks, dispatch_tile, lane_bases, pack_block_weights, pixel_tile, tile, tile_lanes,
    ChannelBlock, Taps, LANES,
};
use crate::Conv2dGeometry;

/// The input with every plane's padding (`g.padding` on each side) written out and `slack`
/// zeros after the last plane: what forward and backward-weight read their windows from.
struct PaddedInput {
    planes: PaddedPlanes,
    /// Padded plane height and width.
    height: usize,
    width: usize,
    /// Values per padded image (all its channels).
    image: usize,
}

impl PaddedInput {
    fn new(g: &Conv2dGeometry, input: &[f32], slack: usize) -> Self {
        let (pad_h, pad_w) = g.padding;
        let (height, width) = (g.in_height + 2 * pad_h, g.in_width + 2 * pad_w);
        let planes = PaddedPlanes::new(
            input,
            (g.in_height, g.in_width),
            (pad_h, pad_h, pad_w, pad_w),
            slack,
        );
        PaddedInput {
            planes,
            height,
            width,
            image: g.in_channels * height * width,
        }
    }
}
