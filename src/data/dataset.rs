//! [`Dataset`]: labelled images stored as bytes, `[N, C, H, W]`, with their class names.

use std::fmt;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Labelled images kept as bytes in one contiguous `[N, C, H, W]` buffer.
///
/// Pixels stay `u8` (a quarter of the memory of `f32`); a [`Loader`](super::Loader) converts,
/// normalises and augments them when it builds a batch.
///
/// ```
/// use convgrad::data::Dataset;
/// let names = vec!["dark".to_string(), "light".to_string()];
/// let data = Dataset::new(vec![0, 0, 255, 255], vec![0, 1], [1, 1, 2], names)?;
/// assert_eq!(data.len(), 2);
/// assert_eq!(data.image(1), &[255, 255]);
/// assert_eq!(data.class_names()[data.label(1)], "light");
/// // A label must name a class.
/// assert!(Dataset::new(vec![0, 0], vec![2], [1, 1, 2], vec!["a".into(), "b".into()]).is_err());
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    pixels: Vec<u8>,
    labels: Vec<usize>,
    sample_shape: [usize; 3],
    class_names: Vec<String>,
}

impl Dataset {
    /// Checks that `pixels` holds `labels.len()` images of `sample_shape` (`[C, H, W]`, no zero
    /// dimension) and that every label is below `class_names.len()`.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<usize>,
        sample_shape: [usize; 3],
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        const OP: &str = "Dataset::new";
        if sample_shape.contains(&0) {
            return Err(Error::invalid(
                OP,
                format!("sample shape {sample_shape:?} has a zero dimension"),
            ));
        }
        if class_names.is_empty() {
            return Err(Error::invalid(OP, "a dataset needs at least one class"));
        }
        let sample_len: usize = sample_shape.iter().product();
        if labels.len().checked_mul(sample_len) != Some(pixels.len()) {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} pixel bytes are not {} images of shape {sample_shape:?}",
                    pixels.len(),
                    labels.len()
                ),
            ));
        }
        if let Some((index, label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &label)| label >= class_names.len())
        {
            return Err(Error::invalid(
                OP,
                format!(
                    "label {label} at index {index} is not below the class count {}",
                    class_names.len()
                ),
            ));
        }
        Ok(Dataset {
            pixels,
            labels,
            sample_shape,
            class_names,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one image, `[C, H, W]`.
    pub fn sample_shape(&self) -> [usize; 3] {
        self.sample_shape
    }

    /// Number of channels (1 for grey, 3 for RGB).
    pub fn channels(&self) -> usize {
        self.sample_shape[0]
    }

    /// Bytes per image, `C * H * W`.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All labels, one per image.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The label of image `index`. Panics if `index >= len()`.
    pub fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    /// The bytes of image `index`, `[C, H, W]`. Panics if `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let sample_len = self.sample_len();
        &self.pixels[index * sample_len..(index + 1) * sample_len]
    }

    /// All pixels, `[N, C, H, W]`.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// A new dataset holding the images at `indices`, in that order (repeats allowed): a quick
    /// run on the first thousand images, or a train/validation split.
    ///
    /// ```
    /// # use convgrad::data::Dataset;
    /// let data = Dataset::new(vec![10, 20, 30], vec![0, 1, 0], [1, 1, 1], vec!["a".into(), "b".into()])?;
    /// let picked = data.subset(&[2, 1])?;
    /// assert_eq!((picked.pixels(), picked.labels()), (&[30u8, 20][..], &[0usize, 1][..]));
    /// assert!(data.subset(&[3]).is_err());
    /// # Ok::<(), convgrad::Error>(())
    /// ```
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&index| index >= self.len()) {
            return Err(Error::invalid(
                "Dataset::subset",
                format!("index {bad} is out of range for {} images", self.len()),
            ));
        }
        let mut pixels = Vec::with_capacity(indices.len() * self.sample_len());
        for &index in indices {
            pixels.extend_from_slice(self.image(index));
        }
        Ok(Dataset {
            pixels,
            labels: indices.iter().map(|&index| self.labels[index]).collect(),
            sample_shape: self.sample_shape,
            class_names: self.class_names.clone(),
        })
    }

    /// Per-channel mean and standard deviation (population) of the pixels scaled to `[0, 1]`:
    /// the constants a [`Normalize`](super::Normalize) takes. Accumulated in integers, so exact.
    /// `None` for an empty dataset.
    pub fn channel_stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        if self.is_empty() {
            return None;
        }
        let channels = self.channels();
        let plane = self.sample_len() / channels;
        // Per channel: sum of values and sum of squares, as u64 (255^2 * 2^40 still fits).
        let zero = || vec![(0u64, 0u64); channels];
        let sums = self
            .pixels
            .par_chunks(self.sample_len())
            .fold(zero, |mut sums, image| {
                for (channel, values) in image.chunks_exact(plane).enumerate() {
                    for &v in values {
                        sums[channel].0 += u64::from(v);
                        sums[channel].1 += u64::from(v) * u64::from(v);
                    }
                }
                sums
            })
            .reduce(zero, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0 += y.0;
                    x.1 += y.1;
                }
                a
            });
        let count = (self.len() * plane) as f64;
        let (mut means, mut stds) = (Vec::new(), Vec::new());
        for (sum, sum_sq) in sums {
            let mean = sum as f64 / count;
            let variance = (sum_sq as f64 / count - mean * mean).max(0.0);
            means.push(mean / 255.0);
            stds.push(variance.sqrt() / 255.0);
        }
        Some((means, stds))
    }
}

impl fmt::Debug for Dataset {
    // The pixels would drown everything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("sample_shape", &self.sample_shape)
            .field("class_names", &self.class_names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| i.to_string()).collect()
    }

    #[test]
    fn new_checks_sizes_shapes_and_labels() {
        assert!(Dataset::new(vec![0; 8], vec![0, 1], [1, 2, 2], names(2)).is_ok());
        let err = Dataset::new(vec![0; 7], vec![0, 1], [1, 2, 2], names(2)).unwrap_err();
        assert!(err.to_string().contains("7 pixel bytes"), "{err}");
        assert!(Dataset::new(vec![], vec![], [1, 0, 2], names(2)).is_err());
        assert!(Dataset::new(vec![0; 4], vec![0], [1, 2, 2], vec![]).is_err());
        let err = Dataset::new(vec![0; 8], vec![0, 5], [1, 2, 2], names(2)).unwrap_err();
        assert!(err.to_string().contains("label 5 at index 1"), "{err}");
    }

    #[test]
    fn channel_stats_are_per_channel() {
        // Two 2-channel 1x2 images: channel 0 holds 0 and 255 (mean 0.5, std 0.5), channel 1
        // is constant 51 (mean 0.2, std 0).
        let pixels = vec![0, 255, 51, 51, 255, 0, 51, 51];
        let data = Dataset::new(pixels, vec![0, 0], [2, 1, 2], names(1)).unwrap();
        let (mean, std) = data.channel_stats().unwrap();
        assert!((mean[0] - 0.5).abs() < 1e-12 && (std[0] - 0.5).abs() < 1e-12);
        assert!((mean[1] - 0.2).abs() < 1e-12 && std[1].abs() < 1e-12);
        let empty = Dataset::new(vec![], vec![], [1, 1, 1], names(1)).unwrap();
        assert!(empty.channel_stats().is_none());
    }

    #[test]
    fn debug_does_not_print_pixels() {
        let data = Dataset::new(vec![7; 4], vec![0], [1, 2, 2], names(1)).unwrap();
        let text = format!("{data:?}");
        assert!(text.contains("len: 1") && !text.contains("7, 7"), "{text}");
    }
}
