//! The direct kernel against the scalar reference: random geometries (proptest) and the DESIGN
//! layer shapes at a reduced batch.

use super::{backward_data, backward_weight, forward};
use crate::conv::test_support::{check_empty_shapes, check_passes, design_3x3_shapes, Family};
use crate::Conv2dGeometry;
use proptest::prelude::*;

const FAMILY: Family = Family {
    forward,
    backward_data,
    backward_weight,
};

fn check_all_passes(g: &Conv2dGeometry, seed: u64, with_bias: bool) {
    check_passes(&FAMILY, g, seed, with_bias);
}

/// Random direct geometries: groups, asymmetric kernels, stride up to 3 (also past the kernel),
/// padding per axis (also past half the kernel), dilation up to 2, odd widths and channels,
/// 1x1 images, 1x1 kernels with padding.
fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=3, 1usize..=3, 1usize..=12, 1usize..=40),
        (1usize..=11, 1usize..=11, 1usize..=7, 1usize..=7),
        steps(),
    )
        .prop_filter_map("not a valid direct geometry", |(counts, sizes, steps)| {
            let g = grouped_geometry(counts, sizes, steps);
            // Small maps go to im2col by default, but the direct kernel serves them too.
            let direct = matches!(g.kind(), crate::ConvKind::Direct | crate::ConvKind::Im2col);
            (direct && g.validate().is_ok()).then_some(g)
        })
}

/// `(stride y, x, padding y, x, dilation y, x)`: strides up to 3 (also past the kernel), padding
/// up to 4 (also past half the kernel), dilation up to 2.
fn steps() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    (
        1usize..=3,
        1usize..=3,
        0usize..=4,
        0usize..=4,
        1usize..=2,
        1usize..=2,
    )
}

/// `(batch, groups, in per group, out per group)`, `(h, w, kh, kw)` and
/// `(stride y, x, padding y, x, dilation y, x)` as a geometry.
fn grouped_geometry(
    (batch, groups, in_per_group, out_per_group): (usize, usize, usize, usize),
    (h, w, kh, kw): (usize, usize, usize, usize),
    (sy, sx, py, px, dy, dx): (usize, usize, usize, usize, usize, usize),
) -> Conv2dGeometry {
    Conv2dGeometry::new(
        batch,
        groups * in_per_group,
        groups * out_per_group,
        (h, w),
        (kh, kw),
    )
    .with_stride((sy, sx))
    .with_padding((py, px))
    .with_dilation((dy, dx))
    .with_groups(groups)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn all_passes_match_the_reference(g in geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_all_passes(&g, seed, with_bias);
    }
}

/// Geometries of the pixel-vectorised forward (`forward_pixels.rs`): at most 4 input channels
/// per group and output rows of at least 16 pixels, with every stride, padding and dilation.
fn few_channel_geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=2, 1usize..=2, 1usize..=4, 1usize..=13),
        (1usize..=6, 16usize..=70, 1usize..=7, 1usize..=7),
        steps(),
    )
        .prop_filter_map(
            "not a few-channel geometry with wide rows",
            |(counts, sizes, steps)| {
                let g = grouped_geometry(counts, sizes, steps);
                (g.validate().is_ok() && super::forward_pixels::applies(&g)).then_some(g)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn few_channel_passes_match_the_reference(g in few_channel_geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_all_passes(&g, seed, with_bias);
    }
}

#[test]
fn design_shapes_at_small_batch_match_the_reference() {
    // 3x3 pad 1 at three widths, then 3x3 stride 2, LeNet 5x5, the 7x7 stride-2 stem (cropped).
    let [c64, c128, c256] = design_3x3_shapes();
    let shapes = [
        c64,
        c128,
        c256,
        Conv2dGeometry::new(1, 64, 128, (32, 32), (3, 3))
            .with_stride((2, 2))
            .with_padding((1, 1)),
        Conv2dGeometry::new(3, 6, 16, (14, 14), (5, 5)),
        Conv2dGeometry::new(1, 3, 64, (40, 40), (7, 7))
            .with_stride((2, 2))
            .with_padding((3, 3)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        check_all_passes(g, i as u64, true);
    }
}

#[test]
fn stride_4_stems_match_the_reference() {
    // AlexNet's 11 x 11 stride-4 stem (cropped), whose forward splits each row in 4 column
    // phases; odd widths and every padding modulo 4, so each phase starts at another column.
    for (i, (width, pad)) in [(67, 2), (69, 1), (70, 3), (72, 0), (71, 4)]
        .into_iter()
        .enumerate()
    {
        let g = Conv2dGeometry::new(1, 3, 16, (23, width), (11, 11))
            .with_stride((4, 4))
            .with_padding((pad, pad));
        assert!(super::forward_pixels::applies(&g), "{g:?}");
        check_all_passes(&g, 30 + i as u64, i % 2 == 0);
    }
}

#[test]
fn inception_asymmetric_kernels_and_groups_match_the_reference() {
    let shapes = [
        Conv2dGeometry::new(2, 24, 20, (9, 9), (1, 7)).with_padding((0, 3)),
        Conv2dGeometry::new(2, 24, 20, (9, 9), (7, 1)).with_padding((3, 0)),
        Conv2dGeometry::new(1, 16, 48, (7, 5), (3, 3))
            .with_padding((1, 1))
            .with_groups(2),
        Conv2dGeometry::new(1, 12, 12, (1, 1), (1, 1)).with_padding((2, 1)),
        Conv2dGeometry::new(2, 10, 9, (13, 11), (2, 2)).with_stride((3, 3)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        check_all_passes(g, 100 + i as u64, i % 2 == 0);
    }
}

#[test]
fn degenerate_shapes_match_the_reference() {
    // The last: a 1 x 1 kernel with padding 1 on a 0 x 0 input, a 2 x 2 output.
    check_empty_shapes(&FAMILY, ((1, 1), (1, 1)), 200);
}

/// Batches of 4 images or more per thread, where the forward and backward-data tasks are
/// whole images and pad their own (the random geometries above have at most 3 images), with
/// several channel blocks, groups, stride, padding and dilation, and odd channel counts so the
/// last block is partial.
#[test]
fn large_batches_split_by_images_match_the_reference() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let layers = [
            Conv2dGeometry::new(8, 19, 40, (7, 9), (3, 3)).with_padding((1, 1)),
            Conv2dGeometry::new(9, 10, 66, (9, 6), (3, 2))
                .with_stride((2, 1))
                .with_padding((2, 0)),
            Conv2dGeometry::new(12, 14, 72, (8, 8), (3, 3))
                .with_groups(2)
                .with_dilation((2, 2))
                .with_padding((2, 2)),
        ];
        for (seed, g) in layers.iter().enumerate() {
            check_all_passes(g, seed as u64, seed % 2 == 0);
        }
    });
}
