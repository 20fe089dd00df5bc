//! Histograms of oriented gradients (Dalal and Triggs, CVPR 2005), for small grey images.
//!
//! The recipe, step by step:
//! 1. **Gradients** by centred differences `[-1, 0, 1]` (Dalal and Triggs found that plain
//!    differences beat Sobel or smoothed ones), one-sided at the border.
//! 2. **Cells** of `cell` x `cell` pixels, each a histogram of the gradient *orientations* in
//!    it, unsigned (0 to 180 degrees: a dark-to-light edge and a light-to-dark one count alike),
//!    in `BINS` bins, every pixel voting with its gradient *magnitude*, split between the two
//!    nearest bins so that a small rotation changes the histogram smoothly.
//! 3. **Blocks** of 2 x 2 cells, overlapping by one cell, each normalised on its own with
//!    L2-Hys (normalise, clip at 0.2, normalise again): the feature becomes insensitive to
//!    local contrast, and the clipping keeps a few strong edges from dominating.
//!
//! The descriptor is every block's normalised histograms, concatenated. For a 28 x 28 image and
//! 4 x 4 cells: 7 x 7 cells, 6 x 6 blocks, 6 * 6 * 4 * 9 = 1296 numbers.

/// Orientation bins over 0-180 degrees (20 degrees each), as Dalal and Triggs.
pub const BINS: usize = 9;
/// Cells per block side.
const BLOCK: usize = 2;
/// L2-Hys clips normalised values at this (Lowe's SIFT value, kept by Dalal and Triggs).
const CLIP: f32 = 0.2;
/// Keeps the normalisation finite on blank blocks.
const EPS: f32 = 1e-6;

/// The shape of a HOG descriptor for one image size and cell size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HogGeometry {
    pub height: usize,
    pub width: usize,
    /// Cell side in pixels; the image is cut into whole cells (leftover rows and columns at the
    /// bottom and right are ignored).
    pub cell: usize,
}

impl HogGeometry {
    pub fn cells(&self) -> (usize, usize) {
        (self.height / self.cell, self.width / self.cell)
    }

    pub fn blocks(&self) -> (usize, usize) {
        let (rows, cols) = self.cells();
        (rows + 1 - BLOCK, cols + 1 - BLOCK)
    }

    /// Length of the descriptor.
    pub fn len(&self) -> usize {
        let (rows, cols) = self.blocks();
        rows * cols * BLOCK * BLOCK * BINS
    }
}

/// The HOG descriptor of a grey image (`height * width` values, row-major) into `out`
/// (`geometry.len()` values).
pub fn hog(image: &[f32], geometry: HogGeometry, out: &mut [f32]) {
    let HogGeometry {
        height,
        width,
        cell,
    } = geometry;
    assert_eq!(image.len(), height * width, "image size");
    assert_eq!(out.len(), geometry.len(), "descriptor size");
    let (cell_rows, cell_cols) = geometry.cells();
    assert!(
        cell_rows >= BLOCK && cell_cols >= BLOCK,
        "the image holds fewer than {BLOCK} x {BLOCK} cells"
    );

    // Steps 1 and 2: gradients, and each pixel's vote into its cell's histogram.
    let mut histograms = vec![0.0f32; cell_rows * cell_cols * BINS];
    let at = |row: usize, col: usize| image[row * width + col];
    let bin_width = 180.0 / BINS as f32;
    for row in 0..cell_rows * cell {
        for col in 0..cell_cols * cell {
            let dx = at(row, (col + 1).min(width - 1)) - at(row, col.saturating_sub(1));
            let dy = at((row + 1).min(height - 1), col) - at(row.saturating_sub(1), col);
            let magnitude = (dx * dx + dy * dy).sqrt();
            if magnitude == 0.0 {
                continue;
            }
            // Unsigned orientation in [0, 180).
            let angle = dy.atan2(dx).to_degrees().rem_euclid(180.0);
            // Bin centres sit at 10, 30, ..., 170 degrees; split the vote between the two
            // nearest, wrapping around (175 degrees is between 170 and 10).
            let position = angle / bin_width - 0.5;
            let lower = position.floor();
            let upper_share = position - lower;
            let lower_bin = (lower as isize).rem_euclid(BINS as isize) as usize;
            let upper_bin = (lower_bin + 1) % BINS;
            let hist = &mut histograms[((row / cell) * cell_cols + col / cell) * BINS..][..BINS];
            hist[lower_bin] += magnitude * (1.0 - upper_share);
            hist[upper_bin] += magnitude * upper_share;
        }
    }

    // Step 3: overlapping 2 x 2-cell blocks, each normalised with L2-Hys.
    let (block_rows, block_cols) = geometry.blocks();
    let block_len = BLOCK * BLOCK * BINS;
    for block_row in 0..block_rows {
        for block_col in 0..block_cols {
            let block = &mut out[(block_row * block_cols + block_col) * block_len..][..block_len];
            for r in 0..BLOCK {
                for c in 0..BLOCK {
                    let cell_index = (block_row + r) * cell_cols + block_col + c;
                    block[(r * BLOCK + c) * BINS..][..BINS]
                        .copy_from_slice(&histograms[cell_index * BINS..][..BINS]);
                }
            }
            l2_normalise(block);
            for v in block.iter_mut() {
                *v = v.min(CLIP);
            }
            l2_normalise(block);
        }
    }
}

fn l2_normalise(values: &mut [f32]) {
    let norm = (values.iter().map(|v| v * v).sum::<f32>() + EPS * EPS).sqrt();
    for v in values {
        *v /= norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEOMETRY: HogGeometry = HogGeometry {
        height: 28,
        width: 28,
        cell: 4,
    };

    fn descriptor(image: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; GEOMETRY.len()];
        hog(image, GEOMETRY, &mut out);
        out
    }

    /// A 28 x 28 image from a function of (row, column).
    fn image(f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        (0..28 * 28).map(|i| f(i / 28, i % 28)).collect()
    }

    #[test]
    fn a_28x28_image_with_4x4_cells_gives_1296_numbers() {
        assert_eq!(GEOMETRY.cells(), (7, 7));
        assert_eq!(GEOMETRY.blocks(), (6, 6));
        assert_eq!(GEOMETRY.len(), 1296);
    }

    #[test]
    fn a_blank_image_has_no_gradients_and_an_all_zero_descriptor() {
        assert!(descriptor(&image(|_, _| 0.7)).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn a_vertical_edge_votes_for_the_bins_around_0_degrees_only() {
        // Dark left half, light right half: horizontal gradients, orientation 0 degrees, which
        // lies halfway between the centres of the first (10) and last (170) bins.
        let features = descriptor(&image(|_, col| if col < 14 { 0.0 } else { 1.0 }));
        let mut per_bin = [0.0f32; BINS];
        for (i, v) in features.iter().enumerate() {
            per_bin[i % BINS] += v;
        }
        assert!(per_bin[0] > 0.0 && (per_bin[0] - per_bin[BINS - 1]).abs() < 1e-4);
        assert!(
            per_bin[1..BINS - 1].iter().all(|&v| v == 0.0),
            "{per_bin:?}"
        );
    }

    #[test]
    fn the_same_edge_at_a_tenth_of_the_contrast_gives_the_same_descriptor() {
        let strong = descriptor(&image(|r, c| if r + c < 28 { 0.1 } else { 0.9 }));
        let weak = descriptor(&image(|r, c| if r + c < 28 { 0.46 } else { 0.54 }));
        let max_diff = strong
            .iter()
            .zip(&weak)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_diff < 1e-4, "{max_diff}");
        assert!(strong.iter().any(|&v| v > 0.0));
    }

    #[test]
    fn every_block_with_edges_has_unit_norm_after_l2_hys() {
        let features = descriptor(&image(|r, c| ((r * 7 + c * 3) % 11) as f32 / 10.0));
        for block in features.chunks_exact(BLOCK * BLOCK * BINS) {
            let norm: f32 = block.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "{norm}");
            assert!(block.iter().all(|&v| (0.0..=1.0).contains(&v)));
        }
    }
}
