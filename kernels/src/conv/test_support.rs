//! The check every convolution family's tests share: all three passes against the scalar
//! reference on random data, with outputs that start as NaN so that a pass which leaves any
//! element unwritten (or accumulates instead of overwriting) fails.

use super::reference;
use crate::test_support::{assert_close, TestRng};
use crate::Conv2dGeometry;

/// `forward(g, input, weight, bias, output)`.
type Forward = fn(&Conv2dGeometry, &[f32], &[f32], Option<&[f32]>, &mut [f32]);
/// `backward_data(g, grad_output, weight, grad_input)`.
type BackwardData = fn(&Conv2dGeometry, &[f32], &[f32], &mut [f32]);
/// `backward_weight(g, input, grad_output, grad_weight, grad_bias)`.
type BackwardWeight = fn(&Conv2dGeometry, &[f32], &[f32], &mut [f32], Option<&mut [f32]>);

/// The three passes of a kernel family, as its module exposes them.
pub(crate) struct Family {
    pub forward: Forward,
    pub backward_data: BackwardData,
    pub backward_weight: BackwardWeight,
}

/// Runs forward, backward-data and backward-weight (with and without the bias gradient) of
/// `family` and of the reference on the same random data; each must agree within
/// `1e-4 * max(1, max |reference|)`.
pub(crate) fn check_passes(family: &Family, g: &Conv2dGeometry, seed: u64, with_bias: bool) {
    let mut rng = TestRng::new(seed);
    let input = rng.vec(g.input_len(), -1.0, 1.0);
    let weight = rng.vec(g.weight_len(), -1.0, 1.0);
    let bias = rng.vec(g.out_channels, -1.0, 1.0);
    let bias = with_bias.then_some(bias.as_slice());
    let grad_output = rng.vec(g.output_len(), -1.0, 1.0);
    let what = |pass: &str| format!("{pass} for {g:?}");

    let mut fast = vec![f32::NAN; g.output_len()];
    let mut expected = vec![0.0; g.output_len()];
    (family.forward)(g, &input, &weight, bias, &mut fast);
    reference::conv2d_forward(g, &input, &weight, bias, &mut expected);
    assert_close(&what("forward"), &fast, &expected);

    let mut fast = vec![f32::NAN; g.input_len()];
    let mut expected = vec![0.0; g.input_len()];
    (family.backward_data)(g, &grad_output, &weight, &mut fast);
    reference::conv2d_backward_data(g, &grad_output, &weight, &mut expected);
    assert_close(&what("backward_data"), &fast, &expected);

    let mut fast = vec![f32::NAN; g.weight_len()];
    let mut fast_bias = vec![f32::NAN; g.out_channels];
    let mut expected = vec![0.0; g.weight_len()];
    let mut expected_bias = vec![0.0; g.out_channels];
    (family.backward_weight)(g, &input, &grad_output, &mut fast, Some(&mut fast_bias));
    reference::conv2d_backward_weight(
        g,
        &input,
        &grad_output,
        &mut expected,
        Some(&mut expected_bias),
    );
    assert_close(&what("backward_weight"), &fast, &expected);
    assert_close(&what("backward_bias"), &fast_bias, &expected_bias);
    // Without a bias gradient the weight gradient is the same.
    let mut again = vec![f32::NAN; g.weight_len()];
    (family.backward_weight)(g, &input, &grad_output, &mut again, None);
    assert_eq!(again, fast, "{}", what("backward_weight without bias"));
}

/// The empty cases a family must handle: no images, no input channels, no output channels, and
/// an input of zero rows and columns that `padding` turns into an output of `kernel`'s size or
/// less (all bias).
pub(crate) fn check_empty_shapes(
    family: &Family,
    (kernel, padding): ((usize, usize), (usize, usize)),
    seed: u64,
) {
    let shapes = [
        Conv2dGeometry::new(0, 4, 4, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 0, 5, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 4, 0, (5, 5), (3, 3)),
        Conv2dGeometry::new(2, 3, 5, (0, 0), kernel).with_padding(padding),
    ];
    for (i, g) in shapes.iter().enumerate() {
        assert!(g.validate().is_ok(), "{g:?}");
        check_passes(family, g, seed + i as u64, true);
    }
}

/// DESIGN.md's three 3 x 3, stride-1 layers (64 channels at 32 x 32, 128 at 16 x 16, 256 at
/// 8 x 8, padding 1) at batches of 2, 1 and 1.
pub(crate) fn design_3x3_shapes() -> [Conv2dGeometry; 3] {
    [
        Conv2dGeometry::new(2, 64, 64, (32, 32), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(1, 128, 128, (16, 16), (3, 3)).with_padding((1, 1)),
        Conv2dGeometry::new(1, 256, 256, (8, 8), (3, 3)).with_padding((1, 1)),
    ]
}
