//! The pointwise kernels against the scalar reference: random geometries (proptest) and the
//! layer shapes of DESIGN.md at a reduced batch. Between them they run every path: grouped
//! images (under 256 pixels), one GEMM per image on rayon threads (small GEMMs) and on
//! matrixmultiply's threads (the DESIGN.md shapes).

use super::{backward_data, backward_weight, forward};
use crate::conv::reference;
use crate::Conv2dGeometry;
use proptest::prelude::*;

/// SplitMix64: a tiny seeded generator so test data needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Uniform in [-1, 1).
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next_f32()).collect()
    }
}

fn assert_close(what: &str, g: &Conv2dGeometry, fast: &[f32], expected: &[f32]) {
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = fast
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max error {worst} (scale {scale}) for {g:?}"
    );
}

/// Runs all three passes, fast and reference, on random data and compares them.
fn check_all(g: &Conv2dGeometry, seed: u64, with_bias: bool) {
    let mut rng = Rng(seed);
    let input = rng.vec(g.input_len());
    let weight = rng.vec(g.weight_len());
    let bias = rng.vec(g.out_channels);
    let bias = with_bias.then_some(bias.as_slice());
    let grad_output = rng.vec(g.output_len());

    // Outputs start as garbage: every kernel must overwrite, not accumulate.
    let mut fast = vec![f32::NAN; g.output_len()];
    let mut expected = vec![0.0; g.output_len()];
    forward(g, &input, &weight, bias, &mut fast);
    reference::conv2d_forward(g, &input, &weight, bias, &mut expected);
    assert_close("forward", g, &fast, &expected);

    let mut fast = vec![f32::NAN; g.input_len()];
    let mut expected = vec![0.0; g.input_len()];
    backward_data(g, &grad_output, &weight, &mut fast);
    reference::conv2d_backward_data(g, &grad_output, &weight, &mut expected);
    assert_close("backward_data", g, &fast, &expected);

    let mut fast = vec![f32::NAN; g.weight_len()];
    let mut expected = vec![0.0; g.weight_len()];
    let mut fast_bias = vec![f32::NAN; g.out_channels];
    let mut expected_bias = vec![0.0; g.out_channels];
    backward_weight(g, &input, &grad_output, &mut fast, Some(&mut fast_bias));
    reference::conv2d_backward_weight(
        g,
        &input,
        &grad_output,
        &mut expected,
        Some(&mut expected_bias),
    );
    assert_close("backward_weight", g, &fast, &expected);
    assert_close("backward_bias", g, &fast_bias, &expected_bias);
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
}

#[test]
fn ungrouped_images_and_odd_strides() {
    // One image: a GEMM per image, whatever its size.
    check_all(&pointwise(1, 96, 80, 12), 5, true);
    check_all(&pointwise(1, 33, 17, 9).with_stride((3, 2)), 6, true);
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
