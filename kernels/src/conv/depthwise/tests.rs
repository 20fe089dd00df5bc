//! The depthwise kernels against the scalar reference: random geometries (proptest) and the
//! layer shapes of DESIGN.md at a reduced batch.

use super::{backward_data, backward_weight, forward};
use crate::conv::test_support::{check_passes, Family};
use crate::Conv2dGeometry;
use proptest::prelude::*;

const FAMILY: Family = Family {
    forward,
    backward_data,
    backward_weight,
};

fn check_all(g: &Conv2dGeometry, seed: u64, with_bias: bool) {
    check_passes(&FAMILY, g, seed, with_bias);
}

fn depthwise(batch: usize, channels: usize, size: usize, kernel: usize) -> Conv2dGeometry {
    Conv2dGeometry::new(batch, channels, channels, (size, size), (kernel, kernel))
        .with_groups(channels)
        .with_padding((kernel / 2, kernel / 2))
}

#[test]
fn design_shapes_at_batch_two() {
    check_all(&depthwise(2, 128, 32, 3), 1, true);
    check_all(&depthwise(2, 256, 16, 3), 2, true);
    check_all(&depthwise(2, 512, 8, 3), 3, false);
    check_all(&depthwise(2, 128, 32, 3).with_stride((2, 2)), 4, true);
}

#[test]
fn other_layer_shapes() {
    // MobileNet-v2 / Xception-like: 5x5, a 7x7 on a plane smaller than the kernel, odd widths.
    check_all(&depthwise(2, 24, 28, 5), 5, true);
    check_all(&depthwise(1, 16, 7, 7).with_stride((2, 2)), 6, true);
    check_all(&depthwise(3, 10, 13, 3).with_dilation((2, 2)), 7, false);
    // Asymmetric kernel, stride and padding, multiplier 2.
    let g = Conv2dGeometry::new(2, 6, 12, (11, 19), (1, 7))
        .with_groups(6)
        .with_padding((0, 3))
        .with_stride((1, 2));
    check_all(&g, 8, true);
    // A 1x1 image with padding larger than the kernel.
    let g = Conv2dGeometry::new(2, 3, 9, (1, 1), (3, 2))
        .with_groups(3)
        .with_padding((3, 2))
        .with_stride((2, 3));
    check_all(&g, 9, true);
}

prop_compose! {
    fn geometries()(
        batch in 1usize..=3,
        in_channels in 2usize..=5,
        multiplier in 1usize..=3,
        kernel in (1usize..=5, 1usize..=5),
        stride in (1usize..=3, 1usize..=3),
        dilation in (1usize..=2, 1usize..=2),
        extra_pad in (0usize..=1, 0usize..=1),
        pad_fraction in (0.0f64..1.0, 0.0f64..1.0),
        size in (1usize..=21, 1usize..=21),
    ) -> Conv2dGeometry {
        // Padding from 0 up to the kernel size (one more than the largest usual choice).
        let pad_h = (pad_fraction.0 * kernel.0 as f64) as usize + extra_pad.0;
        let pad_w = (pad_fraction.1 * kernel.1 as f64) as usize + extra_pad.1;
        Conv2dGeometry::new(batch, in_channels, in_channels * multiplier, size, kernel)
            .with_groups(in_channels)
            .with_stride(stride)
            .with_padding((pad_h, pad_w))
            .with_dilation(dilation)
    }
}

#[test]
fn small_maps_with_channels_in_lanes() {
    // The ends of MobileNet v2 at 32 x 32 (channel counts cut, one not a multiple of 8).
    check_all(&depthwise(2, 96, 1, 3), 10, true);
    check_all(&depthwise(3, 40, 2, 3), 11, true);
    check_all(&depthwise(2, 37, 2, 3).with_stride((2, 2)), 12, false);
    check_all(&depthwise(2, 24, 4, 3), 13, true);
    check_all(&depthwise(2, 24, 8, 3).with_stride((2, 2)), 14, true);
    // The largest plane the path takes (16 x 16, a 7-wide output) and one it leaves.
    check_all(&depthwise(1, 9, 16, 5).with_stride((3, 3)), 15, true);
    check_all(&depthwise(1, 9, 17, 3).with_stride((3, 3)), 16, true);
}

prop_compose! {
    /// One output channel per input channel, output rows under 8 wide: the channel-lane path
    /// (`channels.rs`), with channel counts around a vector and more.
    fn small_maps()(
        batch in 1usize..=3,
        channels in 1usize..=20,
        kernel in (1usize..=4, 1usize..=4),
        stride in (1usize..=3, 1usize..=3),
        dilation in (1usize..=2, 1usize..=2),
        padding in (0usize..=3, 0usize..=3),
        size in (1usize..=9, 1usize..=9),
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, channels, channels, size, kernel)
            .with_groups(channels)
            .with_stride(stride)
            .with_padding(padding)
            .with_dilation(dilation)
    }
}

prop_compose! {
    /// Planes whose rows are whole vectors under a 3 x 3 kernel with padding 1 (`narrow.rs`):
    /// 1 to 4 strips, any height (so planes with no inner row, one, and many), multipliers 1 to
    /// 3, several images, so the input's first and last rows, which have no neighbour in
    /// memory, are read too.
    fn narrow_planes()(
        batch in 1usize..=3,
        channels in 1usize..=6,
        multiplier in 1usize..=3,
        height in 1usize..=20,
        strips in 1usize..=4,
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, channels, channels * multiplier, (height, 8 * strips), (3, 3))
            .with_groups(channels)
            .with_padding((1, 1))
    }
}

prop_compose! {
    /// Stride-2 planes with rows of 16, 32 or 48 under a 3 x 3 kernel with padding 1
    /// (`stride_two.rs`): odd and even heights, several images, so the first strip's lane
    /// before the row and the last strip's lane past it read the next rows (or nothing).
    fn stride_two_planes()(
        batch in 1usize..=3,
        channels in 1usize..=6,
        height in 1usize..=20,
        strips in 1usize..=3,
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, channels, channels, (height, 16 * strips), (3, 3))
            .with_groups(channels)
            .with_padding((1, 1))
            .with_stride((2, 2))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn narrow_planes_match_reference(
        g in narrow_planes(),
        seed in any::<u64>(),
        with_bias in any::<bool>(),
    ) {
        prop_assert!(super::narrow::applies(&g));
        check_all(&g, seed, with_bias);
    }

    #[test]
    fn stride_two_planes_match_reference(
        g in stride_two_planes(),
        seed in any::<u64>(),
        with_bias in any::<bool>(),
    ) {
        prop_assert!(super::stride_two::applies(&g));
        check_all(&g, seed, with_bias);
    }

    #[test]
    fn matches_reference(g in geometries(), seed in any::<u64>(), with_bias in any::<bool>()) {
        prop_assume!(g.validate().is_ok());
        check_all(&g, seed, with_bias);
    }

    #[test]
    fn small_maps_match_reference(
        g in small_maps(),
        seed in any::<u64>(),
        with_bias in any::<bool>(),
    ) {
        prop_assume!(g.validate().is_ok());
        check_all(&g, seed, with_bias);
    }
}
