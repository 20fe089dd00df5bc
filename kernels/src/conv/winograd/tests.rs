//! The Winograd passes against the scalar reference: random 3 x 3 geometries at stride 1 and 2
//! (proptest), groups of tiles that span images, the DESIGN layer shapes at a reduced batch, and
//! empty shapes; and each one-dimensional scheme against the sums it stands for. Backward-weight
//! is the direct kernel's, checked alongside.

use super::{backward_data, forward};
use crate::conv::direct::backward_weight;
use crate::conv::test_support::{check_empty_shapes, check_passes, design_3x3_shapes, Family};
use crate::conv::tile::PAIRED;
use crate::Conv2dGeometry;
use proptest::prelude::*;

const FAMILY: Family = Family {
    forward,
    backward_data,
    backward_weight,
};

/// Random 3 x 3 geometries: channel counts that are not multiples of the 6-channel block, odd
/// and even outputs (tiles partly outside), 1 x 1 outputs, and enough tiles per image for
/// several groups and runs that end mid-vector. At unit stride padding 0 to 2 on each axis; at
/// stride 2 padding 0 or 1 on both, with odd and even inputs (whose input gradients end
/// mid-tile).
fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        (1usize..=3, 1usize..=40, 1usize..=40),
        (1usize..=21, 1usize..=21, 0usize..=2, 0usize..=2),
        any::<bool>(),
    )
        .prop_filter_map(
            "output would be empty",
            |((batch, cin, cout), (h, w, py, px), strided)| {
                let g = Conv2dGeometry::new(batch, cin, cout, (h, w), (3, 3));
                let g = if strided {
                    g.with_stride((2, 2)).with_padding((py % 2, py % 2))
                } else {
                    g.with_padding((py, px))
                };
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
        Conv2dGeometry::new(24, 16, 20, (9, 6), (3, 3))
            .with_stride((2, 2))
            .with_padding((1, 1)),
        Conv2dGeometry::new(32, 20, 17, (11, 8), (3, 3)).with_stride((2, 2)),
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
    // The stride-2 layer: 64 -> 128 channels, 32 x 32 to 16 x 16.
    let strided = Conv2dGeometry::new(2, 64, 128, (32, 32), (3, 3))
        .with_stride((2, 2))
        .with_padding((1, 1));
    check_passes(&FAMILY, &strided, 410, true);
}

/// Each scheme's `A^T [(G w) ⊙ (B^T x)]` against the sums it stands for, on random taps and
/// inputs: at unit stride `y[i] = sum of w[k] x[i + k]`; at stride 2 `y[i] = sum of
/// w[k] x[2 i + k]`; in backward-data of stride 2, padded position `q` of the input gradient
/// gets `w[k] dy[m]` for every `2 m + k = q`.
#[test]
fn each_scheme_computes_its_sums() {
    use super::schemes::*;
    use wide::f32x8;

    fn apply<S: Scheme>(w: [f32; 3], x: &[f32]) -> Vec<f32> {
        let u = S::kernel_side(w);
        let mut d = [f32x8::ZERO; MAX_SIDE];
        for (value, &x) in d.iter_mut().zip(&x[..S::INPUT]) {
            *value = f32x8::splat(x);
        }
        let v = S::input_side(d);
        let mut m = [f32x8::ZERO; MAX_SIDE];
        for i in 0..S::SIDE {
            m[i] = v[i] * f32x8::splat(u[i]);
        }
        let y = S::output_side(m);
        y[..S::OUTPUT].iter().map(|y| y.to_array()[0]).collect()
    }
    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a:?} vs {b:?}");
        }
    }
    let mut rng = crate::test_support::TestRng::new(7);
    for _ in 0..100 {
        let w: [f32; 3] = rng.vec(3, -1.0, 1.0).try_into().unwrap();
        let x = rng.vec(6, -1.0, 1.0);
        let conv = |i: usize, step: usize| (0..3).map(|k| w[k] * x[step * i + k]).sum::<f32>();
        close(&apply::<UnitStride>(w, &x), &[conv(0, 1), conv(1, 1)]);
        let four: Vec<f32> = (0..4).map(|i| conv(i, 1)).collect();
        close(&apply::<UnitStrideFour>(w, &x), &four);
        close(&apply::<StrideTwo>(w, &x), &[conv(0, 2), conv(1, 2)]);
        // Backward-data: `dy` is `x`, read from `first`; position `q` gets `w[k] dy[m]` for
        // `2 m + k = q`, with `dy[m]` at `x[m - origin]` (zero outside).
        let gather = |q: usize, origin: isize| {
            (0..3)
                .filter(|k| (q + 6 - k) % 2 == 0)
                .map(|k| {
                    let m = (q as isize - k as isize).div_euclid(2);
                    x.get(usize::try_from(m - origin).unwrap_or(usize::MAX))
                        .map_or(0.0, |&dy| w[k] * dy)
                })
                .sum::<f32>()
        };
        // Even first: positions 4b.. read dy[2b - 1..], here b = 1 so dy[1] is x[0].
        let even: Vec<f32> = (4..8).map(|q| gather(q, 1)).collect();
        close(&apply::<StrideTwoBackEven>(w, &x), &even);
        // Odd first: positions 4b + 1.. read dy[2b..], here b = 1 so dy[2] is x[0].
        let odd: Vec<f32> = (5..9).map(|q| gather(q, 2)).collect();
        close(&apply::<StrideTwoBackOdd>(w, &x), &odd);
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
        // Stride 2 with padding 0 or 1, except in AVX-512 builds, where the direct kernel is
        // faster; not padding 2, nor stride 3.
        assert_eq!(super::applies(&layer.with_stride((2, 2))), !PAIRED);
        assert_eq!(
            super::applies(&layer.with_stride((2, 2)).with_padding((0, 0))),
            !PAIRED
        );
        assert!(!super::applies(
            &layer.with_stride((2, 2)).with_padding((2, 2))
        ));
        assert!(!super::applies(&layer.with_stride((3, 3))));
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
        // Small maps with few channels: the direct kernel's in AVX-512 builds.
        let middle = Conv2dGeometry::new(8, 128, 128, (4, 4), (3, 3)).with_padding((1, 1));
        assert_eq!(super::applies(&middle), !PAIRED);
        assert!(super::applies(&Conv2dGeometry {
            in_channels: 256,
            out_channels: 256,
            in_height: 8,
            in_width: 8,
            ..middle
        }));
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

/// F(4 x 4, 3 x 3) loses some precision (module docs): its largest error against `f64` sums, on
/// random data in `[-1, 1)` at 64 channels, stays below 3e-5 of the largest output, forward
/// and backward-data (5.7e-6 to 1.3e-5 measured at 64 to 256 channels).
#[test]
fn larger_tiles_stay_close_to_f64_sums() {
    let g = Conv2dGeometry::new(2, 64, 64, (32, 32), (3, 3)).with_padding((1, 1));
    assert!(super::four(&g, (32, 32), (64, 64)));
    let mut rng = crate::test_support::TestRng::new(11);
    let x = rng.vec(g.input_len(), -1.0, 1.0);
    let w = rng.vec(g.weight_len(), -1.0, 1.0);
    let dy = rng.vec(g.output_len(), -1.0, 1.0);
    let mut y = vec![0.0; g.output_len()];
    forward(&g, &x, &w, None, &mut y);
    let mut dx = vec![0.0; g.input_len()];
    backward_data(&g, &dy, &w, &mut dx);
    let (c, side) = (64, 32isize);
    let mut y64 = vec![0.0f64; y.len()];
    let mut dx64 = vec![0.0f64; dx.len()];
    let plane = |n: usize, ch: usize| (n * c + ch) * 1024;
    for n in 0..2 {
        for o in 0..c {
            for i in 0..c {
                for (tap, &weight) in w[(o * c + i) * 9..][..9].iter().enumerate() {
                    let (ky, kx) = (tap as isize / 3 - 1, tap as isize % 3 - 1);
                    for oy in 0..side {
                        for ox in 0..side {
                            let (iy, ix) = (oy + ky, ox + kx);
                            if (0..side).contains(&iy) && (0..side).contains(&ix) {
                                let at_x = plane(n, i) + (iy * side + ix) as usize;
                                let at_y = plane(n, o) + (oy * side + ox) as usize;
                                y64[at_y] += f64::from(weight) * f64::from(x[at_x]);
                                dx64[at_x] += f64::from(weight) * f64::from(dy[at_y]);
                            }
                        }
                    }
                }
            }
        }
    }
    for (name, fast, exact) in [("forward", &y, &y64), ("backward-data", &dx, &dx64)] {
        let largest = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let error = fast
            .iter()
            .zip(exact.iter())
            .map(|(&f, &e)| (f64::from(f) - e).abs())
            .fold(0.0, f64::max);
        assert!(error <= 3e-5 * largest, "{name}: {error} of {largest}");
    }
}
