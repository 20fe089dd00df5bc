//! Pooling tests: fast kernels against the reference over random geometries, finite-difference
//! gradient checks, and hand-computed PyTorch cases.

use proptest::prelude::*;

use super::*;
use crate::test_support::{assert_close, gradient_error, TestRng, GRADIENT_TOLERANCE};

fn pool(
    (batch, channels): (usize, usize),
    input: (usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Pool2dGeometry {
    Pool2dGeometry {
        stride,
        padding,
        ..Pool2dGeometry::new(batch, channels, input, kernel)
    }
}

/// Random pooling geometries: 1 x 1 to 11 x 11 images, kernels up to 4, strides up to 5 (so
/// sometimes larger than the kernel), padding up to half the kernel, dilation 1-2, both modes.
fn geometries(max_dilation: usize) -> impl Strategy<Value = Pool2dGeometry> {
    (
        (1usize..3, 1usize..4),
        (1usize..12, 1usize..12),
        (1usize..5, 1usize..5),
        (1usize..6, 1usize..6),
        (0usize..3, 0usize..3),
        (1..=max_dilation, 1..=max_dilation),
        any::<bool>(),
    )
        .prop_map(
            |(bc, input, kernel, stride, padding, dilation, ceil_mode)| {
                let padding = (padding.0.min(kernel.0 / 2), padding.1.min(kernel.1 / 2));
                Pool2dGeometry {
                    dilation,
                    ceil_mode,
                    ..pool(bc, input, kernel, stride, padding)
                }
            },
        )
        .prop_filter("window must fit", |g| g.validate().is_ok())
}

/// Values on a coarse grid so that windows often hold ties.
fn tie_prone_input(rng: &mut TestRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| (rng.uniform(-3.0, 3.0)).round()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn max_pool_matches_reference(g in geometries(2), seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let input = tie_prone_input(&mut rng, g.input_len());
        let (mut fast, mut fast_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        let (mut slow, mut slow_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        max_pool2d_forward(&g, &input, &mut fast, &mut fast_argmax).unwrap();
        reference::max_pool2d_forward(&g, &input, &mut slow, &mut slow_argmax);
        assert_close("max forward", &fast, &slow);
        prop_assert_eq!(&fast_argmax, &slow_argmax);

        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let (mut fast_grad, mut slow_grad) = (vec![9.0; g.input_len()], vec![9.0; g.input_len()]);
        max_pool2d_backward(&g, &upstream, &fast_argmax, &mut fast_grad).unwrap();
        reference::max_pool2d_backward(&g, &upstream, &slow_argmax, &mut slow_grad);
        assert_close("max backward", &fast_grad, &slow_grad);
    }

    /// The 2 x 2, stride-2 path (LeNet-5, VGG) on planes of even and odd sizes, in both modes
    /// (ceil mode on odd sizes leaves it for the general kernel), with ties, NaN and infinities.
    #[test]
    fn max_pool_2x2_stride_2_matches_reference(
        (batch, channels) in (1usize..3, 1usize..4),
        (height, width) in (2usize..30, 2usize..42),
        ceil_mode: bool,
        seed in any::<u64>(),
    ) {
        let g = Pool2dGeometry {
            ceil_mode,
            ..pool((batch, channels), (height, width), (2, 2), (2, 2), (0, 0))
        };
        let mut rng = TestRng::new(seed);
        let mut input = tie_prone_input(&mut rng, g.input_len());
        for (i, special) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY].into_iter().enumerate() {
            let at = (seed as usize).wrapping_mul(i + 7) % input.len();
            input[at] = special;
        }
        // One window of the first plane holds two NaN with different payloads: the later one
        // in tap order wins, as in PyTorch.
        let (wy, wx) = ((seed as usize / 3) % (height / 2), (seed as usize / 5) % (width / 2));
        let corner = 2 * wy * width + 2 * wx;
        input[corner + 1] = f32::from_bits(0x7fc0_0001);
        input[corner + width] = f32::from_bits(0x7fc0_0002);
        let (mut fast, mut fast_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        let (mut slow, mut slow_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        max_pool2d_forward(&g, &input, &mut fast, &mut fast_argmax).unwrap();
        reference::max_pool2d_forward(&g, &input, &mut slow, &mut slow_argmax);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&fast), bits(&slow));
        prop_assert_eq!(&fast_argmax, &slow_argmax);
    }

    #[test]
    fn avg_pool_matches_reference(
        g in geometries(1),
        count_include_pad in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let input = rng.vec(g.input_len(), -2.0, 2.0);
        let (mut fast, mut slow) = (vec![9.0; g.output_len()], vec![9.0; g.output_len()]);
        avg_pool2d_forward(&g, count_include_pad, &input, &mut fast).unwrap();
        reference::avg_pool2d_forward(&g, count_include_pad, &input, &mut slow);
        assert_close("avg forward", &fast, &slow);

        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let (mut fast_grad, mut slow_grad) = (vec![9.0; g.input_len()], vec![9.0; g.input_len()]);
        avg_pool2d_backward(&g, count_include_pad, &upstream, &mut fast_grad).unwrap();
        reference::avg_pool2d_backward(&g, count_include_pad, &upstream, &mut slow_grad);
        assert_close("avg backward", &fast_grad, &slow_grad);
    }

    #[test]
    fn adaptive_and_global_pooling_match_reference(
        (batch, channels) in (1usize..3, 1usize..4),
        input_size in (1usize..13, 1usize..13),
        output_size in (1usize..8, 1usize..8),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let g = AdaptivePool2dGeometry::new(batch, channels, input_size, output_size);
        let input = rng.vec(g.input_len(), -2.0, 2.0);
        let (mut fast, mut slow) = (vec![9.0; g.output_len()], vec![9.0; g.output_len()]);
        adaptive_avg_pool2d_forward(&g, &input, &mut fast).unwrap();
        reference::adaptive_avg_pool2d_forward(&g, &input, &mut slow);
        assert_close("adaptive forward", &fast, &slow);
        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let (mut fast_grad, mut slow_grad) = (vec![9.0; g.input_len()], vec![9.0; g.input_len()]);
        adaptive_avg_pool2d_backward(&g, &upstream, &mut fast_grad).unwrap();
        reference::adaptive_avg_pool2d_backward(&g, &upstream, &mut slow_grad);
        assert_close("adaptive backward", &fast_grad, &slow_grad);

        let shape = NchwShape::new(batch, channels, input_size);
        let (mut fast, mut slow) = (vec![9.0; batch * channels], vec![9.0; batch * channels]);
        global_avg_pool2d_forward(&shape, &input, &mut fast).unwrap();
        reference::global_avg_pool2d_forward(&shape, &input, &mut slow);
        assert_close("global forward", &fast, &slow);
        let upstream = rng.vec(batch * channels, -1.0, 1.0);
        global_avg_pool2d_backward(&shape, &upstream, &mut fast_grad).unwrap();
        reference::global_avg_pool2d_backward(&shape, &upstream, &mut slow_grad);
        assert_close("global backward", &fast_grad, &slow_grad);
    }

    #[test]
    fn max_pool_gradient_matches_finite_differences(g in geometries(2), seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        // Values 0.05 apart and a step of 0.01: no window changes its winner.
        let input = rng.distinct(g.input_len(), 0.05);
        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let (mut output, mut argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        max_pool2d_forward(&g, &input, &mut output, &mut argmax).unwrap();
        let mut grad = vec![0.0; g.input_len()];
        max_pool2d_backward(&g, &upstream, &argmax, &mut grad).unwrap();
        let forward = |x: &[f32]| {
            let (mut y, mut a) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
            max_pool2d_forward(&g, x, &mut y, &mut a).unwrap();
            // Empty windows output -inf; they carry no gradient, so leave them out of the loss.
            y.iter().map(|&v| if v.is_finite() { v } else { 0.0 }).collect::<Vec<_>>()
        };
        let error = gradient_error(forward, &input, &upstream, &grad, 0.01);
        prop_assert!(error <= GRADIENT_TOLERANCE, "error {}", error);
    }

    #[test]
    fn avg_pool_gradient_matches_finite_differences(
        g in geometries(1),
        count_include_pad in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let input = rng.vec(g.input_len(), -1.0, 1.0);
        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let mut grad = vec![0.0; g.input_len()];
        avg_pool2d_backward(&g, count_include_pad, &upstream, &mut grad).unwrap();
        let forward = |x: &[f32]| {
            let mut y = vec![0.0; g.output_len()];
            avg_pool2d_forward(&g, count_include_pad, x, &mut y).unwrap();
            y
        };
        let error = gradient_error(forward, &input, &upstream, &grad, 0.01);
        prop_assert!(error <= GRADIENT_TOLERANCE, "error {}", error);
    }

    #[test]
    fn adaptive_pool_gradient_matches_finite_differences(
        input_size in (1usize..9, 1usize..9),
        output_size in (1usize..6, 1usize..6),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let g = AdaptivePool2dGeometry::new(2, 2, input_size, output_size);
        let input = rng.vec(g.input_len(), -1.0, 1.0);
        let upstream = rng.vec(g.output_len(), -1.0, 1.0);
        let mut grad = vec![0.0; g.input_len()];
        adaptive_avg_pool2d_backward(&g, &upstream, &mut grad).unwrap();
        let forward = |x: &[f32]| {
            let mut y = vec![0.0; g.output_len()];
            adaptive_avg_pool2d_forward(&g, x, &mut y).unwrap();
            y
        };
        let error = gradient_error(forward, &input, &upstream, &grad, 0.01);
        prop_assert!(error <= GRADIENT_TOLERANCE, "error {}", error);
    }
}

#[test]
fn gradient_check_fails_on_a_wrong_gradient() {
    // Negative control: the check must reject a backward that is off by a little.
    let g = pool((1, 2), (5, 5), (3, 3), (2, 2), (1, 1));
    let mut rng = TestRng::new(7);
    let input = rng.vec(g.input_len(), -1.0, 1.0);
    let upstream = rng.vec(g.output_len(), -1.0, 1.0);
    let mut grad = vec![0.0; g.input_len()];
    avg_pool2d_backward(&g, false, &upstream, &mut grad).unwrap();
    let forward = |x: &[f32]| {
        let mut y = vec![0.0; g.output_len()];
        avg_pool2d_forward(&g, false, x, &mut y).unwrap();
        y
    };
    assert!(gradient_error(forward, &input, &upstream, &grad, 0.01) <= GRADIENT_TOLERANCE);
    // Dividing by the padded count instead of the real one is a classic slip.
    avg_pool2d_backward(&g, true, &upstream, &mut grad).unwrap();
    assert!(gradient_error(forward, &input, &upstream, &grad, 0.01) > GRADIENT_TOLERANCE);
}

#[test]
fn global_pool_gradient_matches_finite_differences() {
    let shape = NchwShape::new(2, 3, (3, 5));
    let mut rng = TestRng::new(11);
    let input = rng.vec(shape.len(), -1.0, 1.0);
    let upstream = rng.vec(6, -1.0, 1.0);
    let mut grad = vec![0.0; shape.len()];
    global_avg_pool2d_backward(&shape, &upstream, &mut grad).unwrap();
    let forward = |x: &[f32]| {
        let mut y = vec![0.0; 6];
        global_avg_pool2d_forward(&shape, x, &mut y).unwrap();
        y
    };
    assert!(gradient_error(forward, &input, &upstream, &grad, 0.01) <= GRADIENT_TOLERANCE);
}

#[test]
fn max_pool_ties_go_to_the_first_maximum() {
    // torch.nn.functional.max_pool2d(x, 2, 1, return_indices=True) on
    // x = [[3, 1, 3], [3, 3, 0]] gives values [[3, 3]] and indices [[0, 2]].
    let g = pool((1, 1), (2, 3), (2, 2), (1, 1), (0, 0));
    let input = [3.0, 1.0, 3.0, 3.0, 3.0, 0.0];
    let (mut output, mut argmax) = ([0.0; 2], [0u32; 2]);
    max_pool2d_forward(&g, &input, &mut output, &mut argmax).unwrap();
    assert_eq!(output, [3.0, 3.0]);
    assert_eq!(argmax, [0, 2]);
    // Both windows contain input 4 but neither routes its gradient there.
    let mut grad = [0.0; 6];
    max_pool2d_backward(&g, &[1.0, 10.0], &argmax, &mut grad).unwrap();
    assert_eq!(grad, [1.0, 0.0, 10.0, 0.0, 0.0, 0.0]);
}

#[test]
fn max_pool_propagates_nan_and_reports_first_real_element_of_an_all_minus_infinity_window() {
    let inf = f32::INFINITY;
    // 1 x 4 input, windows of 2 with stride 2: [NaN, 5] and [-inf, -inf].
    let g = pool((1, 1), (1, 4), (1, 2), (1, 2), (0, 0));
    let input = [f32::NAN, 5.0, -inf, -inf];
    let (mut output, mut argmax) = ([0.0; 2], [0u32; 2]);
    max_pool2d_forward(&g, &input, &mut output, &mut argmax).unwrap();
    assert!(output[0].is_nan());
    assert_eq!((argmax[0], output[1], argmax[1]), (0, -inf, 2));
    // Padding never wins, even against -inf: window [pad, -inf] reports the real element.
    let g = pool((1, 1), (1, 2), (1, 2), (1, 2), (0, 1));
    let (mut output, mut argmax) = ([0.0; 2], [0u32; 2]);
    max_pool2d_forward(&g, &[-inf, 1.0], &mut output, &mut argmax).unwrap();
    assert_eq!((output, argmax), ([-inf, 1.0], [0, 1]));
}

#[test]
fn max_pool_window_on_padding_only_is_empty() {
    // Width 1, kernel 2, dilation 2, padding 1: the taps land on columns -1 and 1.
    let g = Pool2dGeometry {
        dilation: (1, 2),
        ..pool((1, 1), (1, 1), (1, 2), (1, 1), (0, 1))
    };
    assert_eq!(g.output_len(), 1);
    let (mut output, mut argmax) = ([0.0], [0u32]);
    max_pool2d_forward(&g, &[4.0], &mut output, &mut argmax).unwrap();
    assert_eq!((output[0], argmax[0]), (f32::NEG_INFINITY, EMPTY_WINDOW));
    let mut grad = [5.0];
    max_pool2d_backward(&g, &[1.0], &argmax, &mut grad).unwrap();
    assert_eq!(grad, [0.0]);
}

#[test]
fn avg_pool_divisors_at_the_corners() {
    // x = torch.arange(1., 17).view(1, 1, 4, 4)
    // F.avg_pool2d(x, 3, 2, 1, count_include_pad=True)  -> [[14/9, 30/9], [57/9, 99/9]]
    // F.avg_pool2d(x, 3, 2, 1, count_include_pad=False) -> [[14/4, 30/6], [57/6, 99/9]]
    // (the top-left window holds 1, 2, 5, 6: four real elements of nine positions)
    let g = pool((1, 1), (4, 4), (3, 3), (2, 2), (1, 1));
    let input: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let mut output = [0.0; 4];
    avg_pool2d_forward(&g, true, &input, &mut output).unwrap();
    assert_close(
        "include pad",
        &output,
        &[14.0 / 9.0, 30.0 / 9.0, 57.0 / 9.0, 99.0 / 9.0],
    );
    avg_pool2d_forward(&g, false, &input, &mut output).unwrap();
    assert_close(
        "exclude pad",
        &output,
        &[14.0 / 4.0, 30.0 / 6.0, 57.0 / 6.0, 99.0 / 9.0],
    );
}

#[test]
fn avg_pool_ceil_mode_clips_the_divisor_to_the_padded_input() {
    // x = torch.arange(1., 7).view(1, 1, 1, 6)
    // F.avg_pool2d(x, (1, 3), (1, 2), (0, 1), ceil_mode=True, count_include_pad=True)
    //   -> [[[[1., 3., 5., 3.]]]]   (the last window is [6, right pad]: divisor 2, not 3)
    // ... count_include_pad=False -> [[[[1.5, 3., 5., 6.]]]]
    let g = Pool2dGeometry {
        ceil_mode: true,
        ..pool((1, 1), (1, 6), (1, 3), (1, 2), (0, 1))
    };
    let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut output = [0.0; 4];
    avg_pool2d_forward(&g, true, &input, &mut output).unwrap();
    assert_eq!(output, [1.0, 3.0, 5.0, 3.0]);
    avg_pool2d_forward(&g, false, &input, &mut output).unwrap();
    assert_eq!(output, [1.5, 3.0, 5.0, 6.0]);
    // x = torch.arange(1., 26).view(1, 1, 5, 5)
    // F.avg_pool2d(x, 2, 2, ceil_mode=True) -> [[4, 6, 7.5], [14, 16, 17.5], [21.5, 23.5, 25]]
    let g = Pool2dGeometry {
        ceil_mode: true,
        ..Pool2dGeometry::new(1, 1, (5, 5), (2, 2))
    };
    let input: Vec<f32> = (1..=25).map(|v| v as f32).collect();
    let mut output = [0.0; 9];
    avg_pool2d_forward(&g, true, &input, &mut output).unwrap();
    assert_eq!(output, [4.0, 6.0, 7.5, 14.0, 16.0, 17.5, 21.5, 23.5, 25.0]);
}

#[test]
fn ceil_mode_output_sizes() {
    // GoogLeNet: MaxPool2d(3, stride=2, ceil_mode=True) takes 112 to 56 (floor mode gives 55).
    let googlenet = Pool2dGeometry {
        stride: (2, 2),
        ceil_mode: true,
        ..Pool2dGeometry::new(1, 2, (112, 112), (3, 3))
    };
    assert_eq!((googlenet.out_height(), googlenet.out_width()), (56, 56));
    let input = TestRng::new(3).vec(googlenet.input_len(), -1.0, 1.0);
    let (mut output, mut argmax) = (vec![0.0; 2 * 56 * 56], vec![0; 2 * 56 * 56]);
    max_pool2d_forward(&googlenet, &input, &mut output, &mut argmax).unwrap();
    // The last window of the first row covers columns [110, 112): two, not three.
    assert!(matches!(argmax[55] % 112, 110 | 111));
    let floor_mode = Pool2dGeometry {
        ceil_mode: false,
        ..googlenet
    };
    assert_eq!(floor_mode.out_height(), 55);
    assert!(max_pool2d_forward(&googlenet, &input[1..], &mut output, &mut argmax).is_err());
}

#[test]
fn adaptive_windows_follow_pytorch() {
    // F.adaptive_avg_pool2d(torch.arange(1., 6).view(1, 1, 1, 5), (1, 3))
    //   -> windows [0, 2), [1, 4), [3, 5): [[1.5, 3., 4.5]]
    let g = AdaptivePool2dGeometry::new(1, 1, (1, 5), (1, 3));
    let mut output = [0.0; 3];
    adaptive_avg_pool2d_forward(&g, &[1.0, 2.0, 3.0, 4.0, 5.0], &mut output).unwrap();
    assert_eq!(output, [1.5, 3.0, 4.5]);
}

#[test]
fn errors_name_the_geometry_and_lengths() {
    let g = pool((1, 1), (4, 4), (2, 2), (2, 2), (0, 0));
    let error = avg_pool2d_forward(&g, true, &[0.0; 15], &mut [0.0; 4]).unwrap_err();
    assert!(error
        .message()
        .contains("input has 15 elements, the geometry needs 16"));
    assert!(error.message().contains("Pool2dGeometry"));
    let dilated = Pool2dGeometry {
        dilation: (2, 2),
        ..g
    };
    assert!(avg_pool2d_forward(&dilated, true, &[0.0; 16], &mut [0.0; 1]).is_err());
    let mut grad = [0.0; 16];
    let error = max_pool2d_backward(&g, &[1.0; 4], &[0, 1, 2, 16], &mut grad).unwrap_err();
    assert!(error.message().contains("argmax holds 16"));
}

#[test]
fn max_pool_on_a_plane_too_large_for_f32_indices_matches_reference() {
    // 2049 x 2049 > 2^22 elements: the fast kernel falls back to one window at a time.
    let g = Pool2dGeometry {
        padding: (1, 1),
        ..Pool2dGeometry::new(1, 1, (2049, 2049), (2, 2))
    };
    let input = TestRng::new(13).vec(g.input_len(), -1.0, 1.0);
    let (mut fast, mut fast_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
    let (mut slow, mut slow_argmax) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
    max_pool2d_forward(&g, &input, &mut fast, &mut fast_argmax).unwrap();
    reference::max_pool2d_forward(&g, &input, &mut slow, &mut slow_argmax);
    assert_eq!(fast, slow);
    assert_eq!(fast_argmax, slow_argmax);
}
