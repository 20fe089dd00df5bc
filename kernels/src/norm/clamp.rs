//! The ReLU or ReLU6 that follows most BatchNorms, applied in the BatchNorm's own passes.
//!
//! Forward, the clamp is applied to each normalised value before it is stored, which saves a
//! pass over the activation and a tensor. Backward, the upstream gradient is multiplied by the
//! clamp's derivative, read from the saved output `y`: `y` lies strictly inside the clamp's open
//! interval exactly when the BatchNorm's value did, so the mask needs no second saved tensor.
//! Both follow convgrad's unfused `relu` and `relu6` bit for bit, NaN and `-0.0` included.

use wide::f32x8;

/// A clamp that can run inside a batch normalisation pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clamp {
    /// `max(x, 0)`; NaN becomes 0, as `if x > 0 { x } else { 0 }`.
    Relu,
    /// `min(max(x, 0), 6)`; NaN stays NaN, as `f32::clamp`.
    Relu6,
}

impl Clamp {
    /// The clamp of one value.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Clamp::Relu => {
                if v > 0.0 {
                    v
                } else {
                    0.0
                }
            }
            Clamp::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    /// The derivative (1 or 0) at a value whose clamped output is `y`: 1 strictly inside
    /// the interval, 0 at and beyond its ends (PyTorch's subgradient convention).
    #[inline(always)]
    pub fn derivative_at_output(self, y: f32) -> f32 {
        let inside = match self {
            Clamp::Relu => y > 0.0,
            Clamp::Relu6 => y > 0.0 && y < 6.0,
        };
        if inside {
            1.0
        } else {
            0.0
        }
    }

    /// [`Clamp::apply`] on eight lanes.
    #[inline(always)]
    pub(crate) fn apply_lanes(self, v: f32x8) -> f32x8 {
        let zero = f32x8::ZERO;
        match self {
            Clamp::Relu => v.simd_gt(zero).select(v, zero),
            Clamp::Relu6 => {
                let six = f32x8::splat(6.0);
                let low = v.simd_lt(zero).select(zero, v);
                low.simd_gt(six).select(six, low)
            }
        }
    }

    /// [`Clamp::derivative_at_output`] on eight lanes.
    #[inline(always)]
    pub(crate) fn derivative_lanes(self, y: f32x8) -> f32x8 {
        let (zero, one) = (f32x8::ZERO, f32x8::ONE);
        let inside = match self {
            Clamp::Relu => y.simd_gt(zero),
            Clamp::Relu6 => y.simd_gt(zero) & y.simd_lt(f32x8::splat(6.0)),
        };
        inside.select(one, zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: [f32; 12] = [
        f32::NAN,
        -0.0,
        0.0,
        -1e-30,
        1e-30,
        5.999_999_5,
        6.0,
        6.000_001,
        -3.0,
        2.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];

    /// The lanes agree with the scalar definitions on the values where clamps go wrong.
    #[test]
    fn lanes_equal_the_scalar_clamp_bit_for_bit() {
        for clamp in [Clamp::Relu, Clamp::Relu6] {
            for chunk in SPECIAL.chunks(8) {
                let mut lanes = [1.5f32; 8];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let applied = clamp.apply_lanes(f32x8::new(lanes));
                let derivative = clamp.derivative_lanes(f32x8::new(lanes));
                for (i, &v) in lanes.iter().enumerate() {
                    let y = clamp.apply(v);
                    assert_eq!(
                        applied.as_array()[i].to_bits(),
                        y.to_bits(),
                        "{clamp:?}({v})"
                    );
                    assert_eq!(
                        derivative.as_array()[i],
                        clamp.derivative_at_output(v),
                        "{clamp:?}'({v})"
                    );
                }
            }
        }
    }

    /// The derivative read from the clamped output is the one the unfused op reads from its
    /// input.
    #[test]
    fn the_output_tells_the_derivative_of_the_input() {
        for clamp in [Clamp::Relu, Clamp::Relu6] {
            for x in SPECIAL.into_iter().chain((-80..80).map(|i| i as f32 * 0.1)) {
                // convgrad's unfused relu and relu6 backward, which read the input.
                let inside = match clamp {
                    Clamp::Relu => x > 0.0,
                    Clamp::Relu6 => x > 0.0 && x < 6.0,
                };
                let from_input = if inside { 1.0 } else { 0.0 };
                let from_output = clamp.derivative_at_output(clamp.apply(x));
                assert_eq!(from_output, from_input, "{clamp:?} at {x}");
            }
        }
    }

    #[test]
    fn definitions() {
        assert_eq!(Clamp::Relu.apply(-2.0), 0.0);
        assert_eq!(Clamp::Relu.apply(f32::NAN), 0.0);
        assert!(Clamp::Relu6.apply(f32::NAN).is_nan());
        assert_eq!(Clamp::Relu6.apply(7.0), 6.0);
        assert_eq!(Clamp::Relu6.derivative_at_output(6.0), 0.0);
        assert_eq!(Clamp::Relu6.derivative_at_output(0.0), 0.0);
        assert_eq!(Clamp::Relu.derivative_at_output(0.5), 1.0);
    }
}
