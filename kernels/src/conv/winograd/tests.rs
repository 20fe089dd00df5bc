//! The Winograd passes against the scalar reference: random 3 x 3, stride-1 geometries
//! (proptest), groups of tiles that span images, the DESIGN layer shapes at a reduced batch, and
//! empty shapes. Backward-weight is the direct kernel's, checked alongside.

use super::{backward_data, forward};
use crate::conv::direct::backward_weight;
use crate::conv::test_support::{check_empty_shapes, check_passes, design_3x3_shapes, Family};
use crate::Conv2dGeometry;
use proptest::prelude::*;

const FAMILY: Family = Family {
    forward,
    backward_data,
    backward_weight,
};

/// Random 3 x 3 geometries at unit stride: channel counts that are not multiples of the 6-channel
/// block, odd and even outputs (half-outside tiles), 1 x 1 outputs, padding 0 to 2, and enough
/// tiles per image for several groups and runs that end mid-vector.
fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=3, 1usize..=40, 1usize..=40),
        (1usize..=21, 1usize..=21, 0usize..=2, 0usize..=2),
    )
        .prop_filter_map(
            "output would be empty",
            |((batch, cin, cout), (h, w, py, px))| {
                let g =
                    Conv2dGeometry::new(batch, cin, cout, (h, w), (3, 3)).with_padding((py, px));
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
fn groups_spanning_images_match_the_reference() {
    // With 2 threads and 24 or 64 small images, a task takes several images and a group of
    // tiles crosses from one to the next, mid-row when the tile rows are odd.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let shapes = [
        Conv2dGeometry::new(24, 16, 20, (5, 3), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(64, 17, 16, (4, 4), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(32, 20, 18, (9, 7), (3, 3)).with_padding((2, 0)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        pool.install(|| check_passes(&FAMILY, g, 300 + i as u64, i % 2 == 0));
    }
}

#[test]
fn design_shapes_at_small_batch_match_the_reference() {
    for (i, g) in design_3x3_shapes().iter().enumerate() {
        check_passes(&FAMILY, g, 400 + i as u64, true);
    }
}

#[test]
fn empty_shapes_match_the_reference() {
    // The last: padding 2 on a 0 x 0 input, a 2 x 2 output.
    check_empty_shapes(&FAMILY, ((3, 3), (2, 2)), 500);
}

#[test]
fn the_dispatcher_sends_3x3_layers_here_and_leaves_the_rest() {
    // On 2 threads, as measured; `applies` asks for 2 images per thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let layer = Conv2dGeometry::new(8, 64, 64, (32, 32), (3, 3)).with_padding((1, 1));
        assert!(super::applies(&layer));
        assert!(!super::applies(&layer.with_stride((2, 2))));
        assert!(!super::applies(&layer.with_dilation((2, 2))));
        assert!(!super::applies(&layer.with_groups(2)));
        assert!(!super::applies(&layer.with_padding((3, 3))));
        // A stem's few input channels, and a map small enough for im2col.
        assert!(!super::applies(&Conv2dGeometry::new(
            8,
            3,
            64,
            (32, 32),
            (3, 3)
        )));
        assert!(!super::applies(&Conv2dGeometry::new(
            8,
            64,
            64,
            (4, 4),
            (3, 3)
        )));
        // One image per thread.
        assert!(!super::applies(&Conv2dGeometry { batch: 2, ..layer }));
        // 512 -> 512 channels on 16 images of 4 x 4: 64 tiles for 262,144 kernels, too few; on
        // 7 x 7, 256 tiles, enough.
        let deep = Conv2dGeometry::new(16, 512, 512, (4, 4), (3, 3)).with_padding((1, 1));
        assert!(!super::applies(&deep));
        assert!(super::applies(&Conv2dGeometry {
            in_height: 7,
            in_width: 7,
            ..deep
        }));
    });
}
