//! The kernels that split a reduction across threads (backward-weight of every convolution,
//! batch-norm statistics and gradients) give bit-identical results run after run for a given
//! thread count: the work is cut into tasks by a plan that depends only on the shapes and the
//! thread count, and partial sums are added in task order, never in the order threads finish.
//! (A different thread count may round differently; the same one never does.)

use convgrad_kernels::norm::{
    batch_norm_backward_train, batch_norm_forward_train, BatchNormGeometry, BatchNormGrads,
    RunningStats,
};
use convgrad_kernels::pool::NchwShape;
use convgrad_kernels::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, Conv2dGeometry,
};

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Every output of a convolution's three passes, as bits.
fn conv_passes(g: &Conv2dGeometry) -> Vec<Vec<u32>> {
    let input = random(g.input_len(), 1);
    let weight = random(g.weight_len(), 2);
    let grad_output = random(g.output_len(), 3);
    let mut output = vec![0.0; g.output_len()];
    conv2d_forward(g, &input, &weight, None, &mut output).unwrap();
    let mut grad_input = vec![0.0; g.input_len()];
    conv2d_backward_data(g, &grad_output, &weight, &mut grad_input).unwrap();
    let mut grad_weight = vec![0.0; g.weight_len()];
    let mut grad_bias = vec![0.0; g.out_channels];
    conv2d_backward_weight(
        g,
        &input,
        &grad_output,
        &mut grad_weight,
        Some(&mut grad_bias),
    )
    .unwrap();
    vec![
        bits(&output),
        bits(&grad_input),
        bits(&grad_weight),
        bits(&grad_bias),
    ]
}

fn batch_norm_passes(shape: NchwShape) -> Vec<Vec<u32>> {
    let g = BatchNormGeometry::new(shape);
    let len = shape.batch * shape.channels * shape.height * shape.width;
    let input: Vec<f32> = random(len, 4).iter().map(|v| 3.0 + 5.0 * v).collect();
    let grad_output = random(len, 5);
    let (mut mean, mut var) = (vec![0.0; shape.channels], vec![1.0; shape.channels]);
    let mut output = vec![0.0; len];
    let running = RunningStats {
        mean: &mut mean,
        var: &mut var,
    };
    let saved =
        batch_norm_forward_train(&g, &input, None, None, Some(running), &mut output).unwrap();
    let mut grad_input = vec![0.0; len];
    let (mut grad_gamma, mut grad_beta) = (vec![0.0; shape.channels], vec![0.0; shape.channels]);
    let grads = BatchNormGrads {
        input: &mut grad_input,
        gamma: &mut grad_gamma,
        beta: &mut grad_beta,
    };
    batch_norm_backward_train(&g, &input, &grad_output, None, &saved, grads).unwrap();
    vec![
        bits(&output),
        bits(&mean),
        bits(&var),
        bits(&grad_input),
        bits(&grad_gamma),
        bits(&grad_beta),
    ]
}

#[test]
fn parallel_reductions_are_bit_identical_across_runs() {
    let direct = Conv2dGeometry::new(6, 24, 40, (17, 19), (3, 3)).with_padding((1, 1));
    // Batch 1 makes backward-weight split the taps as well as the images.
    let direct_single = Conv2dGeometry::new(1, 16, 24, (20, 20), (5, 5)).with_stride((2, 2));
    let grouped = Conv2dGeometry::new(4, 16, 32, (12, 12), (3, 3)).with_groups(4);
    let depthwise = Conv2dGeometry::new(5, 32, 32, (21, 15), (3, 3))
        .with_padding((1, 1))
        .with_groups(32);
    let pointwise = Conv2dGeometry::new(7, 48, 40, (9, 11), (1, 1));
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for g in [&direct, &direct_single, &grouped, &depthwise, &pointwise] {
                let first = conv_passes(g);
                for _ in 0..4 {
                    assert!(conv_passes(g) == first, "{threads} threads, {g:?}");
                }
            }
            let shape = NchwShape::new(9, 12, (13, 11));
            let first = batch_norm_passes(shape);
            for _ in 0..4 {
                assert!(
                    batch_norm_passes(shape) == first,
                    "{threads} threads, batch norm"
                );
            }
        });
    }
}
