//! The closed-form parameters and gradients `scripts/torch_optim.py` feeds PyTorch, and the
//! comparison the optimiser tests share.

use super::Optimizer;
use crate::{numel, Tensor};

/// Shapes of the test parameters; a third slot, a buffer, never receives a gradient.
const SHAPES: [&[usize]; 3] = [&[2, 3], &[4], &[2]];

/// Element i of the concatenated parameters is `((i * 7 % 11) - 5) / 5`.
pub fn initial_params() -> Vec<Tensor> {
    let mut offset = 0;
    SHAPES
        .iter()
        .map(|shape| {
            let n = numel(shape);
            let data = (offset..offset + n)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                .collect();
            offset += n;
            Tensor::from_vec(data, shape).unwrap()
        })
        .collect()
}

/// Element i of slot k's gradient at step s (counted from 1) is `(((5i + 3s + 2k) % 13) - 6) / 4`;
/// the last slot is a buffer and gets `None`.
pub fn gradients(step: usize) -> Vec<Option<Tensor>> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(slot, shape)| {
            (slot + 1 < SHAPES.len()).then(|| {
                let data = (0..numel(shape))
                    .map(|i| (((5 * i + 3 * step + 2 * slot) % 13) as f32 - 6.0) / 4.0)
                    .collect();
                Tensor::from_vec(data, shape).unwrap()
            })
        })
        .collect()
}

/// Applies steps `from..=to` of the closed-form gradients.
pub fn run_steps(opt: &mut dyn Optimizer, params: &mut [Tensor], from: usize, to: usize) {
    for step in from..=to {
        opt.step(params, &gradients(step)).unwrap();
    }
}

/// Runs the 5 steps of the PyTorch script and compares slot by slot with relative tolerance
/// `rtol` (the expected values are `f64`: 8 printed digits are more than an `f32` holds).
pub fn assert_matches_torch(opt: &mut dyn Optimizer, expected: [&[f64]; 2], rtol: f64) {
    let mut params = initial_params();
    let buffer = params[2].clone();
    run_steps(opt, &mut params, 1, 5);
    assert_eq!(
        params[2],
        buffer,
        "{}: the buffer slot was updated",
        opt.name()
    );
    for (slot, want) in expected.iter().enumerate() {
        for (i, (&got, &want)) in params[slot].data().iter().zip(want.iter()).enumerate() {
            let diff = (f64::from(got) - want).abs() / want.abs();
            assert!(
                diff <= rtol,
                "{}: slot {slot}[{i}]: got {got:e}, PyTorch {want:e} (relative difference {diff:e})",
                opt.name()
            );
        }
    }
}

/// Steps 1-3, export, load into `fresh`, steps 4-5 must equal 5 uninterrupted steps bit for bit.
pub fn assert_resumes_exactly(mut make: impl FnMut() -> Box<dyn Optimizer>) {
    let mut straight = make();
    let mut expected = initial_params();
    run_steps(straight.as_mut(), &mut expected, 1, 5);

    let mut first = make();
    let mut params = initial_params();
    run_steps(first.as_mut(), &mut params, 1, 3);
    let state = first.state();
    let mut resumed = make();
    resumed.load_state(&state).unwrap();
    assert_eq!(resumed.state(), state);
    run_steps(resumed.as_mut(), &mut params, 4, 5);
    assert_eq!(params, expected, "{}: resumed run differs", straight.name());
    assert_eq!(resumed.state(), straight.state());
}

/// One parameter large enough for the optimiser to update it on several threads must end bit
/// for bit where the same values end as many small parameters, each updated on one thread.
pub fn assert_chunked_update_is_exact(mut make: impl FnMut() -> Box<dyn Optimizer>) {
    const LEN: usize = 200_003;
    const PIECE: usize = 1_000;
    let value = |i: usize, salt: usize| ((i * 7 + salt * 3) % 23) as f32 / 11.0 - 1.0;
    let pieces = |t: &Tensor| -> Vec<Tensor> {
        t.data()
            .chunks(PIECE)
            .map(|c| Tensor::from_vec(c.to_vec(), &[c.len()]).unwrap())
            .collect()
    };
    let start = Tensor::from_vec((0..LEN).map(|i| value(i, 0)).collect(), &[LEN]).unwrap();
    let (mut large, mut small) = (make(), make());
    let mut whole = vec![start.clone()];
    let mut split = pieces(&start);
    for step in 1..=3 {
        let grad = Tensor::from_vec((0..LEN).map(|i| value(i, step)).collect(), &[LEN]).unwrap();
        large.step(&mut whole, &[Some(grad.clone())]).unwrap();
        let grads: Vec<Option<Tensor>> = pieces(&grad).into_iter().map(Some).collect();
        small.step(&mut split, &grads).unwrap();
    }
    let joined: Vec<f32> = split.iter().flat_map(|t| t.data().to_vec()).collect();
    assert!(
        whole[0].data() == joined.as_slice(),
        "{}: the chunked update of a large parameter differs from the one-thread update",
        large.name()
    );
}
