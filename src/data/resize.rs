//! Resizing a whole dataset, so that a network built for larger images (AlexNet needs 63 x 63,
//! Inception-v3 75 x 75) can train on Fashion-MNIST's 28 x 28: every channel plane is resized
//! once, before training, with the same bilinear ("triangle") filter the image-folder loader uses.

use image::imageops::{self, FilterType};
use image::GrayImage;
use rayon::prelude::*;

use super::Dataset;
use crate::error::{Error, Result};

/// `dataset` with every image resized to `size x size` (a copy; the same dataset when the
/// images already have that size).
///
/// ```
/// use convgrad::data::{resize_images, Dataset};
/// let data = Dataset::new(vec![0, 255, 255, 0], vec![0], [1, 2, 2], vec!["x".into()])?;
/// let big = resize_images(&data, 8)?;
/// assert_eq!(big.sample_shape(), [1, 8, 8]);
/// assert_eq!(big.labels(), data.labels());
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn resize_images(dataset: &Dataset, size: usize) -> Result<Dataset> {
    let [channels, height, width] = dataset.sample_shape();
    if size == 0 || size > 4096 {
        return Err(Error::invalid(
            "resize",
            format!("an image size of {size} is outside 1..=4096"),
        ));
    }
    if (height, width) == (size, size) {
        return Ok(dataset.clone());
    }
    let plane_in = height * width;
    let plane_out = size * size;
    let mut pixels = vec![0u8; dataset.len() * channels * plane_out];
    pixels
        .par_chunks_mut(plane_out)
        .zip(dataset.pixels().par_chunks(plane_in))
        .for_each(|(out, plane)| {
            let image = GrayImage::from_raw(width as u32, height as u32, plane.to_vec())
                .expect("a plane holds height x width bytes");
            let resized = imageops::resize(&image, size as u32, size as u32, FilterType::Triangle);
            out.copy_from_slice(resized.as_raw());
        });
    Dataset::new(
        pixels,
        dataset.labels().to_vec(),
        [channels, size, size],
        dataset.class_names().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_image_stays_constant_and_labels_follow() {
        let data = Dataset::new(
            [vec![7u8; 2 * 9], vec![200u8; 2 * 9]].concat(),
            vec![1, 0],
            [2, 3, 3],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let big = resize_images(&data, 7).unwrap();
        assert_eq!(big.sample_shape(), [2, 7, 7]);
        assert!(big.image(0).iter().all(|&p| p == 7));
        assert!(big.image(1).iter().all(|&p| p == 200));
        assert_eq!(big.labels(), &[1, 0]);
    }

    #[test]
    fn a_bright_left_half_stays_on_the_left() {
        let plane: Vec<u8> = (0..16).map(|i| if i % 4 < 2 { 255 } else { 0 }).collect();
        let data = Dataset::new(plane, vec![0], [1, 4, 4], vec!["x".into()]).unwrap();
        let big = resize_images(&data, 8).unwrap();
        let row = &big.image(0)[..8];
        assert!(row[0] > 200 && row[7] < 50, "{row:?}");
    }

    #[test]
    fn sizes_of_zero_are_refused() {
        let data = Dataset::new(vec![0; 4], vec![0], [1, 2, 2], vec!["x".into()]).unwrap();
        assert!(resize_images(&data, 0)
            .unwrap_err()
            .to_string()
            .contains("resize"));
    }
}
