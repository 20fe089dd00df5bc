//! Test helpers shared by the kernel tests: a seeded RNG, a closeness check
//! against the scalar reference, and a finite-difference gradient check.

/// SplitMix64: a tiny seeded generator, good enough for test data.
pub(crate) struct TestRng(u64);

impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)`.
    pub(crate) fn uniform(&mut self, low: f32, high: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        low + (high - low) * unit
    }

    pub(crate) fn vec(&mut self, len: usize, low: f32, high: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(low, high)).collect()
    }

    /// `len` distinct values, each at least `gap` from every other, in random order: inputs for
    /// max pooling that stay away from ties under a finite-difference step smaller than `gap / 2`.
    pub(crate) fn distinct(&mut self, len: usize, gap: f32) -> Vec<f32> {
        let mut values: Vec<f32> = (0..len)
            .map(|i| (i as f32 - len as f32 / 2.0) * gap)
            .collect();
        for i in (1..len).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            values.swap(i, j);
        }
        values
    }
}

/// Asserts `fast` equals `reference` within `1e-4 * max(1, max |reference|)`.
pub(crate) fn assert_close(what: &str, fast: &[f32], reference: &[f32]) {
    assert_eq!(fast.len(), reference.len(), "{what}: lengths differ");
    let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    for (i, (&f, &r)) in fast.iter().zip(reference).enumerate() {
        let same_nan = f.is_nan() && r.is_nan();
        let same_inf = f.is_infinite() && f == r;
        assert!(
            same_nan || same_inf || (f - r).abs() <= 1e-4 * scale,
            "{what}: element {i}: fast {f} vs reference {r} (scale {scale})"
        );
    }
}

/// Largest relative disagreement between `analytic` (a backward's `d loss / d input`) and the
/// central difference of `loss(input) = sum(upstream * forward(input))`, accumulated in `f64`.
/// The error of each element is `|analytic - numeric| / max(1, |analytic|, |numeric|)`.
pub(crate) fn gradient_error(
    forward: impl Fn(&[f32]) -> Vec<f32>,
    input: &[f32],
    upstream: &[f32],
    analytic: &[f32],
    step: f32,
) -> f64 {
    let loss = |x: &[f32]| -> f64 {
        let output = forward(x);
        assert_eq!(output.len(), upstream.len(), "upstream gradient length");
        output
            .iter()
            .zip(upstream)
            .map(|(&y, &u)| f64::from(y) * f64::from(u))
            .sum()
    };
    let mut worst = 0.0f64;
    let mut probe = input.to_vec();
    for i in 0..input.len() {
        probe[i] = input[i] + step;
        let plus = loss(&probe);
        probe[i] = input[i] - step;
        let minus = loss(&probe);
        probe[i] = input[i];
        // The step actually taken in f32, not the one asked for.
        let taken = f64::from(input[i] + step) - f64::from(input[i] - step);
        let numeric = (plus - minus) / taken;
        let exact = f64::from(analytic[i]);
        let error = (exact - numeric).abs() / 1f64.max(exact.abs()).max(numeric.abs());
        worst = worst.max(error);
    }
    worst
}

/// The tolerance the gradient checks hold to (STYLE.md point 8).
pub(crate) const GRADIENT_TOLERANCE: f64 = 1e-2;
