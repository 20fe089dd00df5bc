//! The direct kernel against the scalar reference: random geometries (proptest) and the DESIGN
//! layer shapes at a reduced batch.

use super::{backward_data, backward_weight, forward};
use crate::conv::reference;
use crate::Conv2dGeometry;
use proptest::prelude::*;

/// A small xorshift generator, so the tests need no `rand`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn fill(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}

/// Fails unless `max |fast - reference| <= 1e-4 * max(1, max |reference|)`.
fn assert_close(what: &str, g: &Conv2dGeometry, fast: &[f32], reference: &[f32]) {
    assert_eq!(fast.len(), reference.len());
    let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    let (worst, at) = fast
        .iter()
        .zip(reference)
        .enumerate()
        .map(|(i, (a, b))| ((a - b).abs(), i))
        .fold((0.0f32, 0), |m, x| if x.0 > m.0 { x } else { m });
    assert!(
        worst <= 1e-4 * scale,
        "{what} differs by {worst} at {at} (scale {scale}) for {g:?}: fast {} reference {}",
        fast[at],
        reference[at]
    );
}

/// Runs all three passes of the direct kernel and the reference and compares them. Outputs start
/// as garbage, so a pass that does not overwrite everything fails.
fn check_all_passes(g: &Conv2dGeometry, seed: u64, with_bias: bool) {
    let mut rng = Rng::new(seed);
    let input = rng.fill(g.input_len());
    let weight = rng.fill(g.weight_len());
    let bias = rng.fill(g.out_channels);
    let bias = with_bias.then_some(&bias[..]);
    let grad_output = rng.fill(g.output_len());

    let mut expected = vec![0.0; g.output_len()];
    let mut got = vec![f32::NAN; g.output_len()];
    reference::conv2d_forward(g, &input, &weight, bias, &mut expected);
    forward(g, &input, &weight, bias, &mut got);
    assert_close("forward", g, &got, &expected);

    let mut expected = vec![0.0; g.input_len()];
    let mut got = vec![f32::NAN; g.input_len()];
    reference::conv2d_backward_data(g, &grad_output, &weight, &mut expected);
    backward_data(g, &grad_output, &weight, &mut got);
    assert_close("backward_data", g, &got, &expected);

    let mut expected = vec![0.0; g.weight_len()];
    let mut expected_bias = vec![0.0; g.out_channels];
    let mut got = vec![f32::NAN; g.weight_len()];
    let mut got_bias = vec![f32::NAN; g.out_channels];
    reference::conv2d_backward_weight(
        g,
        &input,
        &grad_output,
        &mut expected,
        Some(&mut expected_bias),
    );
    backward_weight(g, &input, &grad_output, &mut got, Some(&mut got_bias));
    assert_close("backward_weight", g, &got, &expected);
    assert_close("backward_bias", g, &got_bias, &expected_bias);
    // Without a bias gradient the weight gradient is the same.
    let mut again = vec![f32::NAN; g.weight_len()];
    backward_weight(g, &input, &grad_output, &mut again, None);
    assert_eq!(got, again);
}

/// Random direct geometries: groups, asymmetric kernels, stride up to 3 (also past the kernel),
/// padding per axis (also past half the kernel), dilation up to 2, odd widths and channels,
/// 1x1 images, 1x1 kernels with padding.
fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=3, 1usize..=3, 1usize..=12, 1usize..=40),
        (1usize..=11, 1usize..=11, 1usize..=7, 1usize..=7),
        (
            1usize..=3,
            1usize..=3,
            0usize..=4,
            0usize..=4,
            1usize..=2,
            1usize..=2,
        ),
    )
        .prop_filter_map(
            "not a valid direct geometry",
            |(
                (batch, groups, in_per_group, out_per_group),
                (h, w, kh, kw),
                (sy, sx, py, px, dy, dx),
            )| {
                let g = Conv2dGeometry::new(
                    batch,
                    groups * in_per_group,
                    groups * out_per_group,
                    (h, w),
                    (kh, kw),
                )
                .with_stride((sy, sx))
                .with_padding((py, px))
                .with_dilation((dy, dx))
                .with_groups(groups);
                let direct = g.kind() == crate::ConvKind::Direct;
                (direct && g.validate().is_ok()).then_some(g)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn all_passes_match_the_reference(g in geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_all_passes(&g, seed, with_bias);
    }
}

#[test]
fn design_shapes_at_small_batch_match_the_reference() {
    let shapes = [
        // 3x3 pad 1 at three widths, 3x3 stride 2, LeNet 5x5, the 7x7 stride-2 stem (cropped).
        Conv2dGeometry::new(2, 64, 64, (32, 32), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(1, 128, 128, (16, 16), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(1, 256, 256, (8, 8), (3, 3)).with_padding((1, 1)),
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
    let shapes = [
        // No images, no input channels, no output channels, an input of zero rows and columns
        // that padding turns into a 3 x 3 output.
        Conv2dGeometry::new(0, 4, 4, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 0, 5, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 4, 0, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 3, 5, (0, 0), (1, 1)).with_padding((1, 1)),
    ];
    for (i, g) in shapes.iter().enumerate() {
        assert!(g.validate().is_ok(), "{g:?}");
        check_all_passes(g, 200 + i as u64, true);
    }
}
