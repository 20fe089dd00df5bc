//! The pointwise kernels against the scalar reference: random geometries (proptest) and the
//! layer shapes of DESIGN.md at a reduced batch. Between them they run every path: the column
//! product (images under 256 pixels, the weight read in place or packed from 1024 columns on),
//! its backward-weight (both orientations; over all columns at once below 1024 columns, in
//! chunks of 256 split between the cores from there on, strided or not, with a partial last
//! chunk), the row tiles (forward and backward-data of larger images at unit stride, with and
//! without a partial last tile), and one GEMM per image (strided forward and backward-data)
//! on rayon threads (small GEMMs) and on matrixmultiply's threads.

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

fn pointwise(batch: usize, in_channels: usize, out_channels: usize, size: usize) -> Conv2dGeometry {
    Conv2dGeometry::new(batch, in_channels, out_channels, (size, size), (1, 1))
}

#[test]
fn design_shapes_at_batch_two() {
    check_all(&pointwise(2, 128, 256, 16), 1, true);
    check_all(&pointwise(2, 256, 256, 16), 2, false);
    check_all(&pointwise(3, 728, 728, 8), 3, true);
    // ResNet downsampling shortcut: 1x1 stride 2.
    check_all(&pointwise(2, 64, 128, 15).with_stride((2, 2)), 4, true);
    // The same at 40 x 40: 400 output pixels, a GEMM per image large enough for
    // matrixmultiply's threads.
    check_all(&pointwise(2, 64, 128, 40).with_stride((2, 2)), 13, true);
    // Enough columns (1088) to pack the matrix, and outputs large enough (728 channels) that
    // each task holds a single image.
    check_all(&pointwise(17, 300, 728, 8), 12, true);
}

#[test]
fn single_images_small_channels_and_odd_strides() {
    // One image: the column product below 256 pixels, a GEMM from 256 on.
    check_all(&pointwise(1, 96, 80, 12), 5, true);
    check_all(&pointwise(1, 33, 17, 9).with_stride((3, 2)), 6, true);
    check_all(&pointwise(1, 40, 24, 17), 9, true);
    // No input channels: every output is its bias (small images, then the row tiles).
    check_all(&pointwise(2, 0, 5, 3), 10, true);
    check_all(&pointwise(2, 0, 5, 17), 11, true);
    // At least 256 pixels but few channels: images spread over rayon threads.
    check_all(&pointwise(3, 5, 7, 17), 7, true);
    check_all(&pointwise(4, 6, 9, 40).with_stride((2, 2)), 8, false);
}

prop_compose! {
    fn geometries()(
        batch in 1usize..=4,
        in_channels in 1usize..=19,
        out_channels in 1usize..=19,
        stride in (1usize..=3, 1usize..=3),
        dilation in (1usize..=2, 1usize..=2),
        size in (1usize..=24, 1usize..=24),
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, in_channels, out_channels, size, (1, 1))
            .with_stride(stride)
            .with_dilation(dilation)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn matches_reference(g in geometries(), seed in any::<u64>(), with_bias in any::<bool>()) {
        prop_assume!(g.validate().is_ok());
        check_all(&g, seed, with_bias);
    }
}

prop_compose! {
    /// Images of at least 256 pixels at unit stride: the row tiles of `rows.rs`, whose last tile
    /// is partial unless the pixel count is a multiple of 16.
    fn large_images()(
        batch in 1usize..=3,
        in_channels in 1usize..=19,
        out_channels in 1usize..=19,
        size in (16usize..=26, 16usize..=27),
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, in_channels, out_channels, size, (1, 1))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn large_images_match_reference(g in large_images(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_all(&g, seed, with_bias);
    }
}

prop_compose! {
    /// Small images, but at least 1024 columns over the batch: the column product on packed
    /// panels of the matrix, with a partial last panel unless the rows are a multiple of the
    /// panel height (6, or 8 with AVX-512).
    fn packed_products()(
        batch in 16usize..=20,
        in_channels in 1usize..=40,
        out_channels in 1usize..=40,
        size in (8usize..=15, 8usize..=15),
    ) -> Conv2dGeometry {
        Conv2dGeometry::new(batch, in_channels, out_channels, size, (1, 1))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn packed_products_match_reference(g in packed_products(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_all(&g, seed, with_bias);
    }
}
