//! The im2col kernels against the scalar reference: random one-group geometries (proptest, any
//! map size, so chunking, dropped taps and strided views are all exercised) and the small maps
//! of ResNet-18 and Inception on small inputs.

use super::{backward_data, backward_weight, forward, Lowering, COLUMN_BUDGET};
use crate::conv::test_support::{check_passes, Family};
use crate::Conv2dGeometry;
use proptest::prelude::*;

const FAMILY: Family = Family {
    forward,
    backward_data,
    backward_weight,
};

fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=4, 1usize..=20, 1usize..=20),
        (1usize..=9, 1usize..=9, 1usize..=5, 1usize..=5),
        (
            1usize..=3,
            1usize..=3,
            0usize..=3,
            0usize..=3,
            1usize..=2,
            1usize..=2,
        ),
    )
        .prop_filter_map(
            "not a valid geometry",
            |((batch, in_channels, out_channels), (h, w, kh, kw), (sy, sx, py, px, dy, dx))| {
                let g = Conv2dGeometry::new(batch, in_channels, out_channels, (h, w), (kh, kw))
                    .with_stride((sy, sx))
                    .with_padding((py, px))
                    .with_dilation((dy, dx));
                g.validate().is_ok().then_some(g)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn all_passes_match_the_reference(g in geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_passes(&FAMILY, &g, seed, with_bias);
    }
}

#[test]
fn small_maps_of_resnet_and_inception_match_the_reference() {
    let shapes = [
        // ResNet-18 at 32 x 32: 4 x 4, 2 x 2 (and stride 2 into it), 1 x 1 (only the centre tap).
        Conv2dGeometry::new(3, 32, 40, (4, 4), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(3, 32, 40, (4, 4), (3, 3))
            .with_stride((2, 2))
            .with_padding((1, 1)),
        Conv2dGeometry::new(5, 48, 24, (1, 1), (3, 3)).with_padding((1, 1)),
        // Inception's 1 x 7 and 7 x 1 on a 2 x 2 map: most taps dropped along one axis.
        Conv2dGeometry::new(2, 16, 24, (2, 2), (1, 7)).with_padding((0, 3)),
        Conv2dGeometry::new(2, 16, 24, (2, 2), (7, 1)).with_padding((3, 0)),
        // A 5 x 5 kernel where a ring of taps only ever reads padding.
        Conv2dGeometry::new(2, 8, 8, (2, 3), (5, 5)).with_padding((2, 2)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        check_passes(&FAMILY, g, 300 + i as u64, i % 2 == 0);
    }
}

#[test]
fn a_batch_larger_than_one_chunk_matches_the_reference() {
    // 2000 channels x 9 taps x 36 pixels: three images per chunk, so the weight gradient sums
    // several GEMMs.
    let g = Conv2dGeometry::new(9, 2000, 4, (6, 6), (3, 3)).with_padding((1, 1));
    let lowering = Lowering::new(&g);
    assert!(
        lowering.chunk < g.batch,
        "chunk {} for {COLUMN_BUDGET}",
        lowering.chunk
    );
    check_passes(&FAMILY, &g, 400, true);
}

#[test]
fn only_taps_that_touch_the_image_are_kept() {
    let g = Conv2dGeometry::new(1, 4, 4, (1, 1), (3, 3)).with_padding((1, 1));
    assert_eq!(Lowering::new(&g).taps, [(1, 1)]);
    let g = Conv2dGeometry::new(1, 4, 4, (2, 2), (3, 3)).with_padding((1, 1));
    assert_eq!(Lowering::new(&g).taps.len(), 9);
    let g = Conv2dGeometry::new(1, 4, 4, (0, 0), (1, 1)).with_padding((1, 1));
    assert!(Lowering::new(&g).taps.is_empty());
}

#[test]
fn degenerate_shapes_match_the_reference() {
    let shapes = [
        Conv2dGeometry::new(0, 4, 4, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 0, 5, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 4, 0, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 3, 5, (0, 0), (1, 1)).with_padding((1, 1)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        assert!(g.validate().is_ok(), "{g:?}");
        check_passes(&FAMILY, g, 500 + i as u64, true);
    }
}
