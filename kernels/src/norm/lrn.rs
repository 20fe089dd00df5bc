//! Fast local response normalisation: rayon over images, `f32x8` over eight pixels.
//!
//! The window runs across channels, which are a plane apart in NCHW, so a vector holds eight
//! neighbouring pixels of one channel and a pass over a block of pixels walks down the channels.
//! For each block of eight pixels the kernel first loads every channel (into a per-thread
//! scratch of `channels` vectors, a few KiB that stay in L1), then forms each channel's window
//! sum of squares from them. Window sums are recomputed per channel, not slid, so that no
//! subtraction can cancel; `size` is small (5 in AlexNet and GoogLeNet).
//!
//! `s^-beta` is `1 / sqrt(s * sqrt(s))` for the usual `beta = 0.75`, `1 / sqrt(s)` for 0.5,
//! `1 / s` for 1, and `exp(-beta * ln s)` otherwise.

use rayon::prelude::*;
use wide::f32x8;

use super::LrnGeometry;
use crate::lanes::{load_partial, store_partial, LANES};

/// `base^-beta`, lane by lane, for `base > 0`.
#[inline]
fn inverse_power(base: f32x8, beta: f32) -> f32x8 {
    let one = f32x8::splat(1.0);
    if beta == 0.75 {
        one / (base * base.sqrt()).sqrt()
    } else if beta == 0.5 {
        one / base.sqrt()
    } else if beta == 1.0 {
        one / base
    } else {
        (base.ln() * f32x8::splat(-beta)).exp()
    }
}

/// Per channel, for one block of pixels: the input, and `k + alpha / size * window sum`.
struct Block {
    input: Vec<f32x8>,
    base: Vec<f32x8>,
}

impl Block {
    fn new(channels: usize) -> Self {
        Block {
            input: vec![f32x8::ZERO; channels],
            base: vec![f32x8::ZERO; channels],
        }
    }

    /// Loads pixels `[pixel, pixel + 8)` of every channel of `image` and forms the bases.
    /// Lanes past the end of a plane load zero.
    fn load(&mut self, g: &LrnGeometry, image: &[f32], pixel: usize) {
        let plane = g.shape.plane_len();
        for (c, slot) in self.input.iter_mut().enumerate() {
            *slot = load_partial(&image[c * plane + pixel..(c + 1) * plane]);
        }
        let (k, alpha_over_size) = (f32x8::splat(g.k), f32x8::splat(g.alpha / g.size as f32));
        for c in 0..self.input.len() {
            let (first, end) = g.window(c);
            let mut sum_of_squares = f32x8::ZERO;
            for x in &self.input[first..end] {
                sum_of_squares = x.mul_add(*x, sum_of_squares);
            }
            self.base[c] = sum_of_squares.mul_add(alpha_over_size, k);
        }
    }
}

pub(super) fn forward(g: &LrnGeometry, input: &[f32], output: &mut [f32]) {
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    let image_len = channels * plane;
    if image_len == 0 {
        return;
    }
    input
        .par_chunks(image_len)
        .zip(output.par_chunks_mut(image_len))
        .for_each_init(
            || Block::new(channels),
            |block, (input_image, output_image)| {
                for pixel in (0..plane).step_by(LANES) {
                    block.load(g, input_image, pixel);
                    for c in 0..channels {
                        let normalised = block.input[c] * inverse_power(block.base[c], g.beta);
                        store_partial(
                            normalised,
                            &mut output_image[c * plane + pixel..(c + 1) * plane],
                        );
                    }
                }
            },
        );
}

pub(super) fn backward(
    g: &LrnGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    let image_len = channels * plane;
    if image_len == 0 {
        return;
    }
    let cross_scale = f32x8::splat(2.0 * g.alpha * g.beta / g.size as f32);
    input
        .par_chunks(image_len)
        .zip(grad_output.par_chunks(image_len))
        .zip(grad_input.par_chunks_mut(image_len))
        .for_each_init(
            || {
                (
                    Block::new(channels),
                    vec![f32x8::ZERO; channels],
                    vec![f32x8::ZERO; channels],
                )
            },
            |(block, direct, through), ((input_image, grad_image), grad_input_image)| {
                for pixel in (0..plane).step_by(LANES) {
                    block.load(g, input_image, pixel);
                    // direct[c] = dy[c] * s[c]^-beta; through[c] = dy[c] * x[c] * s[c]^(-beta - 1).
                    for c in 0..channels {
                        let dy = load_partial(&grad_image[c * plane + pixel..(c + 1) * plane]);
                        let scale = inverse_power(block.base[c], g.beta);
                        direct[c] = dy * scale;
                        through[c] = direct[c] * block.input[c] / block.base[c];
                    }
                    for j in 0..channels {
                        let (first, end) = g.windows_containing(j);
                        let gathered = through[first..end]
                            .iter()
                            .fold(f32x8::ZERO, |acc, &t| acc + t);
                        let grad = direct[j] - cross_scale * block.input[j] * gathered;
                        store_partial(
                            grad,
                            &mut grad_input_image[j * plane + pixel..(j + 1) * plane],
                        );
                    }
                }
            },
        );
}
