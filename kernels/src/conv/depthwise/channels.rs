//! Depthwise passes on small maps: eight channels per vector instead of eight columns.
//!
//! The padded-plane kernels vectorise along a row of output columns, which at the end of a
//! network (MobileNet v2 at 32 x 32 ends on 1 x 1 and 2 x 2 maps of up to 960 channels) leaves
//! most lanes empty and spends more on copying each tiny plane than on its few multiply-adds:
//! 25 ns per output on a 1 x 1 map. With one channel per input channel (`multiplier == 1`) and
//! output rows narrower than a vector, each image is instead transposed to `[pixel][channel]`
//! (a copy when the map is 1 x 1), and every output pixel sums its in-bounds taps over whole
//! vectors of channels, from tables of `(input pixel, tap)` pairs computed once per call.
//!
//! - forward: per output pixel, `y = bias + sum over its pairs of x[pixel] * w[tap]`;
//! - backward-data: per input pixel, the same pairs inverted, against the output gradient;
//! - backward-weight: per pair, `dw[tap] += dy[output pixel] * x[input pixel]`, summed over the
//!   images of a task in vectors and over tasks at the end.
//!
//! Rayon runs over images (forward, backward-data) or ranges of images (backward-weight).

use super::LANES;
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Whether `g` is served here: one output channel per input channel, output rows narrower than
/// a vector, and input planes small enough to transpose in L1.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    let in_plane = g.in_height * g.in_width;
    g.out_channels == g.in_channels && g.out_width() < LANES && (1..=256).contains(&in_plane)
}

/// The `(input pixel, tap)` pairs of every output pixel, in the order the taps are stored.
struct Pairs {
    /// `pairs[starts[op]..starts[op + 1]]` belong to output pixel `op`.
    starts: Vec<usize>,
    pairs: Vec<(usize, usize)>,
}

impl Pairs {
    fn of_outputs(g: &Conv2dGeometry) -> Self {
        let (mut starts, mut pairs) = (vec![0], Vec::new());
        for oy in 0..g.out_height() {
            for ox in 0..g.out_width() {
                for ky in 0..g.kernel_height {
                    for kx in 0..g.kernel_width {
                        let iy = (oy * g.stride.0 + ky * g.dilation.0).checked_sub(g.padding.0);
                        let ix = (ox * g.stride.1 + kx * g.dilation.1).checked_sub(g.padding.1);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            if iy < g.in_height && ix < g.in_width {
                                pairs.push((iy * g.in_width + ix, ky * g.kernel_width + kx));
                            }
                        }
                    }
                }
                starts.push(pairs.len());
            }
        }
        Pairs { starts, pairs }
    }

    /// The same pairs grouped by input pixel: `(output pixel, tap)` for every input pixel.
    fn of_inputs(g: &Conv2dGeometry) -> Self {
        let outputs = Pairs::of_outputs(g);
        let in_plane = g.in_height * g.in_width;
        let mut grouped = vec![Vec::new(); in_plane];
        for op in 0..outputs.starts.len() - 1 {
            for &(ip, tap) in outputs.of(op) {
                grouped[ip].push((op, tap));
            }
        }
        let mut starts = vec![0];
        let mut pairs = Vec::with_capacity(outputs.pairs.len());
        for list in grouped {
            pairs.extend(list);
            starts.push(pairs.len());
        }
        Pairs { starts, pairs }
    }

    fn of(&self, pixel: usize) -> &[(usize, usize)] {
        &self.pairs[self.starts[pixel]..self.starts[pixel + 1]]
    }
}

/// Channels rounded up to whole vectors.
fn padded_channels(channels: usize) -> usize {
    channels.next_multiple_of(LANES)
}

/// `[channels, plane]` into `[plane][padded channels]` (the padding lanes left as they are).
fn to_pixel_major(image: &[f32], plane: usize, out: &mut [f32]) {
    let stride = out.len() / plane.max(1);
    for (c, values) in image.chunks_exact(plane).enumerate() {
        for (p, &value) in values.iter().enumerate() {
            out[p * stride + c] = value;
        }
    }
}

/// The inverse of [`to_pixel_major`]: `[plane][padded channels]` into `[channels, plane]`.
fn to_channel_major(pixels: &[f32], plane: usize, image: &mut [f32]) {
    let stride = pixels.len() / plane.max(1);
    for (c, values) in image.chunks_exact_mut(plane).enumerate() {
        for (p, value) in values.iter_mut().enumerate() {
            *value = pixels[p * stride + c];
        }
    }
}

/// The weights `[channel][tap]` as `[tap][padded channels]`, zero past the channels.
fn weights_by_tap(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
    let taps = g.kernel_height * g.kernel_width;
    let mut packed = vec![0.0; taps * padded_channels(g.out_channels)];
    to_pixel_major(weight, taps, &mut packed);
    packed
}

#[inline(always)]
fn vector(values: &[f32], at: usize) -> f32x8 {
    let lanes: [f32; LANES] = values[at..at + LANES].try_into().expect("a whole vector");
    f32x8::from(lanes)
}

#[inline(always)]
fn put(value: f32x8, values: &mut [f32], at: usize) {
    let lanes: &mut [f32; LANES] = (&mut values[at..at + LANES]).try_into().expect("a vector");
    *lanes = value.to_array();
}

/// For every pixel of `out` (`[pixels][padded channels]`), `start + sum over its pairs
/// (source pixel, tap) of source[source pixel] * weights[tap]`, vector by vector of channels.
fn gather_pixels(pairs: &Pairs, source: &[f32], weights: &[f32], start: &[f32], out: &mut [f32]) {
    let width = start.len();
    for (pixel, out) in out.chunks_exact_mut(width).enumerate() {
        let pairs = pairs.of(pixel);
        for at in (0..width).step_by(LANES) {
            let mut acc = vector(start, at);
            for &(from, tap) in pairs {
                acc = vector(source, from * width + at)
                    .mul_add(vector(weights, tap * width + at), acc);
            }
            put(acc, out, at);
        }
    }
}

/// `output = bias + depthwise(input, weight)`.
pub(super) fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (in_plane, out_plane) = (g.in_height * g.in_width, g.out_height() * g.out_width());
    let width = padded_channels(g.in_channels);
    let pairs = Pairs::of_outputs(g);
    let weights = weights_by_tap(g, weight);
    let mut start = vec![0.0; width];
    if let Some(bias) = bias {
        start[..bias.len()].copy_from_slice(bias);
    }
    let filters = (&pairs, &weights[..], &start[..]);
    convolve_images(
        filters,
        g.in_channels,
        (input, in_plane),
        (output, out_plane),
    );
}

/// `grad_input = transposed depthwise(grad_output, weight)`.
pub(super) fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    let (in_plane, out_plane) = (g.in_height * g.in_width, g.out_height() * g.out_width());
    let width = padded_channels(g.in_channels);
    let pairs = Pairs::of_inputs(g);
    let weights = weights_by_tap(g, weight);
    let zeros = vec![0.0; width];
    let filters = (&pairs, &weights[..], &zeros[..]);
    let source = (grad_output, out_plane);
    convolve_images(filters, g.in_channels, source, (grad_input, in_plane));
}

/// Image by image: `source` (`[channels, source plane]` per image) to pixel-major,
/// [`gather_pixels`] with `start` as each pixel's initial vectors, and the result back to
/// `[channels, out plane]` in `out`.
fn convolve_images(
    (pairs, weights, start): (&Pairs, &[f32], &[f32]),
    channels: usize,
    (source, source_plane): (&[f32], usize),
    (out, out_plane): (&mut [f32], usize),
) {
    let width = start.len();
    out.par_chunks_mut((channels * out_plane).max(1))
        .zip(source.par_chunks((channels * source_plane).max(1)))
        .for_each_init(
            || {
                (
                    vec![0.0; source_plane * width],
                    vec![0.0; out_plane * width],
                )
            },
            |(from, to), (out, source)| {
                to_pixel_major(source, source_plane, from);
                gather_pixels(pairs, from, weights, start, to);
                to_channel_major(to, out_plane, out);
            },
        );
}

/// `grad_weight[c][tap] = sum over images and pairs of grad_output * input`.
pub(super) fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    let (in_plane, out_plane) = (g.in_height * g.in_width, g.out_height() * g.out_width());
    let taps = g.kernel_height * g.kernel_width;
    let width = padded_channels(g.in_channels);
    let pairs = Pairs::of_outputs(g);
    let images_per_task = g.batch.div_ceil(2 * rayon::current_num_threads()).max(1);
    let image_len = (g.in_channels * in_plane, g.out_channels * out_plane);
    let partials: Vec<Vec<f32>> = (0..g.batch.div_ceil(images_per_task))
        .into_par_iter()
        .map(|task| {
            let (mut x, mut dy) = (vec![0.0; in_plane * width], vec![0.0; out_plane * width]);
            let mut sums = vec![f32x8::ZERO; taps * width / LANES];
            let last = g.batch.min((task + 1) * images_per_task);
            for n in task * images_per_task..last {
                to_pixel_major(&input[n * image_len.0..][..image_len.0], in_plane, &mut x);
                let dy_image = &grad_output[n * image_len.1..][..image_len.1];
                to_pixel_major(dy_image, out_plane, &mut dy);
                for op in 0..out_plane {
                    for &(ip, tap) in pairs.of(op) {
                        let sums = &mut sums[tap * width / LANES..][..width / LANES];
                        for (v, sum) in sums.iter_mut().enumerate() {
                            let at = v * LANES;
                            *sum = vector(&dy, op * width + at)
                                .mul_add(vector(&x, ip * width + at), *sum);
                        }
                    }
                }
            }
            sums.iter().flat_map(|v| v.to_array()).collect()
        })
        .collect();
    // `[tap][padded channels]`, summed over tasks, into `[channel][tap]`.
    let mut total = vec![0.0f32; taps * width];
    for partial in &partials {
        for (t, &p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    for (c, row) in grad_weight.chunks_exact_mut(taps).enumerate() {
        for (tap, value) in row.iter_mut().enumerate() {
            *value = total[tap * width + c];
        }
    }
}
