//! The arithmetic the textbooks teach, reproduced by counting the parameters of real layers.

use convgrad::graph::{Graph, GraphBuilder};
use convgrad::nn::Conv2d;
use convgrad_kernels::Conv2dGeometry;

/// Parameters of a stack of bias-free convolutions over a `channels`-deep 16 x 16 map.
fn stack(channels: usize, convs: &[Conv2d]) -> usize {
    let (mut b, mut x) = GraphBuilder::new("stack", &[channels, 16, 16]);
    for (i, conv) in convs.iter().enumerate() {
        x = b
            .conv(format!("conv{i}"), x, conv.clone().bias(false))
            .unwrap();
    }
    let graph: Graph = b.build(x).unwrap();
    graph.parameter_count()
}

#[test]
fn two_3x3_filters_over_a_depth_3_map_need_54_weights_against_75_for_one_5x5() {
    // One filter each (a single output channel per layer), over 3 input channels.
    let two_3x3 = 2 * 3 * 3 * 3;
    let one_5x5 = 5 * 5 * 3;
    assert_eq!((two_3x3, one_5x5), (54, 75));
    // The same count from layers: 3 -> 1 channel with a 3x3, then again with a 3x3 over 3 maps.
    assert_eq!(stack(3, &[Conv2d::new(0, 1, 5)]), 75);
    assert_eq!(stack(3, &[Conv2d::new(0, 1, 3)]) * 2, 54);
}

#[test]
fn factorised_convolutions_save_weights_per_channel_pair() {
    // One input and one output channel: weights per channel pair.
    let five = stack(1, &[Conv2d::new(0, 1, 5)]);
    let two_threes = stack(1, &[Conv2d::new(0, 1, 3), Conv2d::new(0, 1, 3)]);
    assert_eq!((five, two_threes), (25, 18));

    let seven = stack(1, &[Conv2d::new(0, 1, 7)]);
    let asymmetric7 = stack(
        1,
        &[
            Conv2d::new(0, 1, 1).kernel((1, 7)).padding2((0, 3)),
            Conv2d::new(0, 1, 1).kernel((7, 1)).padding2((3, 0)),
        ],
    );
    assert_eq!((seven, asymmetric7), (49, 14));

    let three = stack(1, &[Conv2d::new(0, 1, 3)]);
    let asymmetric3 = stack(
        1,
        &[
            Conv2d::new(0, 1, 1).kernel((1, 3)).padding2((0, 1)),
            Conv2d::new(0, 1, 1).kernel((3, 1)).padding2((1, 0)),
        ],
    );
    assert_eq!((three, asymmetric3), (9, 6));
}

#[test]
fn depthwise_separable_costs_one_over_n_plus_one_over_k_squared() {
    // MobileNet (Howard et al. 2017), section 3.1, on a 14 x 14 x 512 -> 512 layer.
    let (m, n, k, size) = (512, 512, 3, 14);
    let standard = Conv2dGeometry::new(1, m, n, (size, size), (k, k)).with_padding((1, 1));
    let depthwise = Conv2dGeometry::new(1, m, m, (size, size), (k, k))
        .with_padding((1, 1))
        .with_groups(m);
    let pointwise = Conv2dGeometry::new(1, m, n, (size, size), (1, 1));
    let ratio = (depthwise.multiply_adds() + pointwise.multiply_adds()) as f64
        / standard.multiply_adds() as f64;
    let formula = 1.0 / n as f64 + 1.0 / (k * k) as f64;
    assert!((ratio - formula).abs() < 1e-12, "{ratio} vs {formula}");
    assert_eq!(standard.multiply_adds(), 3 * 3 * 512 * 512 * 14 * 14);
}
