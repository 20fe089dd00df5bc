//! Per-channel normalisation and training-time augmentation (random crop with zero padding,
//! horizontal flip), applied in the single pass that turns an image's bytes into `f32`.
//!
//! The order is torchvision's usual `RandomCrop(padding) -> RandomHorizontalFlip -> ToTensor ->
//! Normalize`: padding is black (byte 0) *before* normalisation, so a padded pixel becomes
//! `-mean / std`, as it does in PyTorch.

use crate::error::{Error, Result};
use crate::Rng;

use super::Dataset;

/// Per-channel normalisation of pixels scaled to `[0, 1]`: `(byte / 255 - mean) / std`.
///
/// ```
/// use convgrad::data::Normalize;
/// let norm = Normalize::new(&[0.5], &[0.25])?;
/// assert!((norm.apply(0, 255) - 2.0).abs() < 1e-6);
/// assert!((norm.apply(0, 0) + 2.0).abs() < 1e-6);
/// assert!(Normalize::new(&[0.5], &[0.0]).is_err());
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// One mean and one standard deviation per channel; every std must be positive and finite.
    pub fn new(mean: &[f32], std: &[f32]) -> Result<Normalize> {
        const OP: &str = "Normalize::new";
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} means and {} standard deviations; need one of each per channel",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if let Some(bad) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::invalid(
                OP,
                format!("standard deviation {bad} is not positive and finite"),
            ));
        }
        if let Some(bad) = mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::invalid(OP, format!("mean {bad} is not finite")));
        }
        Ok(Normalize {
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }

    /// Only the scaling to `[0, 1]` (mean 0, std 1), as torchvision's `ToTensor`.
    pub fn identity(channels: usize) -> Normalize {
        Normalize {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// Fashion-MNIST's training-set statistics: mean 0.2860, std 0.3530.
    pub fn fashion_mnist() -> Normalize {
        Normalize::new(&[0.2860], &[0.3530]).expect("valid constants")
    }

    /// MNIST's training-set statistics: mean 0.1307, std 0.3081.
    pub fn mnist() -> Normalize {
        Normalize::new(&[0.1307], &[0.3081]).expect("valid constants")
    }

    /// CIFAR-10's per-channel training-set statistics (RGB).
    pub fn cifar10() -> Normalize {
        Normalize::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
            .expect("valid constants")
    }

    /// The statistics of `data` itself (compute them on the training set, then apply them to
    /// both training and test sets). A channel of constant value gets std 1 rather than 0.
    pub fn from_dataset(data: &Dataset) -> Result<Normalize> {
        let (mean, std) = data.channel_stats().ok_or_else(|| {
            Error::invalid(
                "Normalize::from_dataset",
                "an empty dataset has no statistics",
            )
        })?;
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let std: Vec<f32> = std
            .iter()
            .map(|&s| if s > 0.0 { s as f32 } else { 1.0 })
            .collect();
        Normalize::new(&mean, &std)
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// The normalised value of `byte` in `channel`.
    pub fn apply(&self, channel: usize, byte: u8) -> f32 {
        let (scale, offset) = self.scale_offset(channel);
        f32::from(byte) * scale + offset
    }

    /// `value = byte * scale + offset`: one multiply-add per pixel in the batch loop.
    fn scale_offset(&self, channel: usize) -> (f32, f32) {
        let std = self.std[channel];
        (1.0 / (255.0 * std), -self.mean[channel] / std)
    }
}

/// Training-time augmentation, drawn afresh for every sample.
///
/// `pad`: pad each side with `pad` black pixels, then crop back to the original size at a
/// uniformly random offset (torchvision's `RandomCrop(size, padding=pad)`; 4 for CIFAR-10).
/// `flip`: mirror left-right with probability 1/2 (`RandomHorizontalFlip`).
/// `Augment::default()` does nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment {
    pub pad: usize,
    pub flip: bool,
}

impl Augment {
    /// The usual CIFAR-10 recipe: pad 4 and crop, flip.
    pub fn cifar10() -> Augment {
        Augment { pad: 4, flip: true }
    }

    /// `none`, `crop 4`, `flip` or `crop 4, flip`: how checkpoints and logs name it.
    pub fn describe(&self) -> String {
        match (self.pad, self.flip) {
            (0, false) => "none".into(),
            (0, true) => "flip".into(),
            (pad, false) => format!("crop {pad}"),
            (pad, true) => format!("crop {pad}, flip"),
        }
    }

    pub fn is_none(&self) -> bool {
        self.pad == 0 && !self.flip
    }

    /// Draws the transform for one sample.
    pub fn sample(&self, rng: &mut Rng) -> SampleTransform {
        let mut shift = || {
            if self.pad == 0 {
                0
            } else {
                rng.below(2 * self.pad + 1) as isize - self.pad as isize
            }
        };
        let (shift_y, shift_x) = (shift(), shift());
        let flip = self.flip && rng.below(2) == 1;
        SampleTransform {
            shift_y,
            shift_x,
            flip,
        }
    }
}

/// The augmentation chosen for one sample: output pixel `(y, x)` of the crop is input pixel
/// `(y + shift_y, x + shift_x)` (black outside the image), then the crop is mirrored if `flip`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleTransform {
    pub shift_y: isize,
    pub shift_x: isize,
    pub flip: bool,
}

impl SampleTransform {
    /// Writes `image` (`[C, H, W]` bytes) transformed and normalised into `out` (`C * H * W`).
    ///
    /// ```
    /// use convgrad::data::{Normalize, SampleTransform};
    /// let image = [1, 2, 3, 4, 5, 6]; // one channel, 2 x 3
    /// let mut out = [0.0; 6];
    /// let shift_right = SampleTransform { shift_y: 0, shift_x: -1, flip: false };
    /// shift_right.write(&image, [1, 2, 3], &Normalize::identity(1), &mut out);
    /// assert_eq!(out.map(|v| (v * 255.0).round()), [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    /// ```
    pub fn write(&self, image: &[u8], shape: [usize; 3], norm: &Normalize, out: &mut [f32]) {
        let [channels, height, width] = shape;
        assert_eq!(
            image.len(),
            channels * height * width,
            "image of shape {shape:?}"
        );
        assert_eq!(out.len(), image.len(), "output for shape {shape:?}");
        assert_eq!(norm.channels(), channels, "normalisation channels");
        let plane = height * width;
        for channel in 0..channels {
            let (scale, offset) = norm.scale_offset(channel);
            let src = &image[channel * plane..(channel + 1) * plane];
            let dst = &mut out[channel * plane..(channel + 1) * plane];
            for (y, dst_row) in dst.chunks_exact_mut(width).enumerate() {
                let src_y = y as isize + self.shift_y;
                if src_y < 0 || src_y >= height as isize {
                    dst_row.fill(offset); // a black row
                    continue;
                }
                let src_row = &src[src_y as usize * width..(src_y as usize + 1) * width];
                for (x, value) in dst_row.iter_mut().enumerate() {
                    // Flipping the crop reads its columns right to left.
                    let crop_x = if self.flip { width - 1 - x } else { x };
                    let src_x = crop_x as isize + self.shift_x;
                    *value = if src_x < 0 || src_x >= width as isize {
                        offset
                    } else {
                        f32::from(src_row[src_x as usize]) * scale + offset
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [2, 3, 4];

    /// Two channels of 3x4 with distinct values: channel c, (y, x) -> 100c + 10y + x + 1.
    fn image() -> Vec<u8> {
        let mut bytes = Vec::new();
        for c in 0..2u8 {
            for y in 0..3u8 {
                bytes.extend((0..4u8).map(|x| 100 * c + 10 * y + x + 1));
            }
        }
        bytes
    }

    fn bytes_of(transform: SampleTransform) -> Vec<u8> {
        let mut out = vec![0.0; 24];
        transform.write(&image(), SHAPE, &Normalize::identity(2), &mut out);
        out.iter().map(|v| (v * 255.0).round() as u8).collect()
    }

    #[test]
    fn identity_transform_copies() {
        assert_eq!(bytes_of(SampleTransform::default()), image());
    }

    #[test]
    fn flip_is_an_exact_mirror() {
        let flipped = bytes_of(SampleTransform {
            flip: true,
            ..Default::default()
        });
        for (row, mirrored) in image().chunks(4).zip(flipped.chunks(4)) {
            let reversed: Vec<u8> = row.iter().rev().copied().collect();
            assert_eq!(mirrored, reversed);
        }
    }

    #[test]
    fn crop_with_padding_shifts_content_and_fills_black() {
        let (dy, dx) = (1isize, -2isize);
        let out = bytes_of(SampleTransform {
            shift_y: dy,
            shift_x: dx,
            flip: false,
        });
        let source = image();
        for c in 0..2 {
            for y in 0..3isize {
                for x in 0..4isize {
                    let (sy, sx) = (y + dy, x + dx);
                    let expected = if (0..3).contains(&sy) && (0..4).contains(&sx) {
                        source[c * 12 + sy as usize * 4 + sx as usize]
                    } else {
                        0
                    };
                    assert_eq!(out[c * 12 + y as usize * 4 + x as usize], expected);
                }
            }
        }
    }

    #[test]
    fn padding_becomes_minus_mean_over_std() {
        let norm = Normalize::new(&[0.5, 0.2], &[0.25, 0.5]).unwrap();
        let mut out = vec![0.0; 24];
        let far = SampleTransform {
            shift_y: 5,
            ..Default::default()
        };
        far.write(&image(), SHAPE, &norm, &mut out);
        assert!(out[..12].iter().all(|&v| v == -2.0));
        assert!(out[12..].iter().all(|&v| (v + 0.4).abs() < 1e-6));
        assert!((norm.apply(0, 255) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn sampled_shifts_stay_within_the_padding_and_cover_it() {
        let augment = Augment { pad: 2, flip: true };
        let mut rng = Rng::seed(5);
        let mut seen = std::collections::HashSet::new();
        let mut flips = 0;
        for _ in 0..2_000 {
            let t = augment.sample(&mut rng);
            assert!(t.shift_y.abs() <= 2 && t.shift_x.abs() <= 2);
            seen.insert((t.shift_y, t.shift_x));
            flips += usize::from(t.flip);
        }
        assert_eq!(seen.len(), 25);
        assert!((800..1200).contains(&flips), "{flips}");
        let none = Augment::default().sample(&mut rng);
        assert_eq!(none, SampleTransform::default());
        assert!(Augment::default().is_none() && !Augment::cifar10().is_none());
    }

    #[test]
    fn normalize_rejects_mismatched_or_degenerate_constants() {
        assert!(Normalize::new(&[0.1, 0.2], &[0.3]).is_err());
        assert!(Normalize::new(&[], &[]).is_err());
        assert!(Normalize::new(&[f32::NAN], &[1.0]).is_err());
        assert!(Normalize::new(&[0.0], &[f32::INFINITY]).is_err());
        assert_eq!(Normalize::cifar10().channels(), 3);
    }
}
